/**
 * An iterator of a follower's ordered collection, opened before the follower swapped in a newly
 * opened engine (a compaction on the leader is applied by a reopen), never yields a value of another
 * key: its cursor holds the old engine's index handles, which mean other keys in the new engine. It
 * ends with ARMDB_CLOSED instead (src/replication/engine-slot.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keys, VarTree } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

const name = (index: number): string => `k${String(index).padStart(4, '0')}`;
const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('an iterator on a follower', () => {
  test('never yields another key’s value across an engine swap: it ends with ARMDB_CLOSED', async () => {
    const replication = (role: 'leader' | 'follower') =>
      natsReplication({ servers: cluster.servers, name: 'iterswap', role, ack: 'replicated' });
    const leader = await VarTree.open(path.join(workDirectory, 'a'), { ...storeOptions, replication: replication('leader') });
    // Inserted in an order unlike the key order, so that index handles and key order differ.
    const count = 400;
    for (let step = 0; step < count; step++) {
      const index = (step * 7919) % count;
      leader.put(keys.fromString(name(index), 16), text(`${name(index)} v1 `.repeat(1 + (index % 5))));
    }
    await leader.sync();
    const follower = await VarTree.open(path.join(workDirectory, 'b'), { ...storeOptions, replication: replication('follower') });
    try {
      await follower.replication.caughtUp();
      const iterator = follower.range();
      const seen: string[] = [];
      const check = (entry: [Uint8Array, Uint8Array]): void => {
        const key = decode(entry[0]).replace(/\0+$/, '');
        seen.push(key);
        // Every value yielded is one this key held (v1 or v2), never another key's.
        expect(decode(entry[1]).startsWith(`${key} v`), `${key}: ${decode(entry[1]).slice(0, 20)}`).toBe(true);
      };
      for (let step = 0; step < 20; step++) {
        const result = iterator.next();
        expect(result.done).toBe(false);
        check(result.value as [Uint8Array, Uint8Array]);
      }
      // The leader deletes half the keys, rewrites the rest and compacts: the follower applies the
      // compaction by reopening its engine, whose handles mean other keys.
      for (let index = 0; index < count; index += 2) leader.delete(keys.fromString(name(index), 16));
      for (let index = count - 1; index >= 1; index -= 2)
        leader.put(keys.fromString(name(index), 16), text(`${name(index)} v2 `.repeat(2)));
      await leader.sync();
      await leader.compact();
      await leader.sync();
      await leader.replication.caughtUp();
      await follower.replication.caughtUp();
      let ending = 'done';
      try {
        for (let result = iterator.next(); !result.done; result = iterator.next()) check(result.value as [Uint8Array, Uint8Array]);
      } catch (error) {
        ending = (error as { code?: string }).code ?? String(error);
      }
      expect(ending).toBe('ARMDB_CLOSED');
      // Keys came in order, each once.
      expect(seen).toEqual([...seen].sort());
      expect(new Set(seen).size).toBe(seen.length);
      // A new iterator reads the new engine whole.
      const after = [...follower.range()];
      expect(after.length).toBe(count / 2);
      for (const entry of after) check(entry);
    } finally {
      await follower.close();
      await leader.close();
    }
  });
});
