/**
 * A follower over a real 3-node JetStream cluster: it catches up, its files are the leader's byte for
 * byte, reads serve what the leader wrote, and every write is refused with ARMDB_READ_ONLY.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { codeOf, filesOf, storeOptions, text } from './harness.js';
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

describe('a follower', () => {
  test('catches up, holds byte-identical files, serves reads and refuses writes', async () => {
    const replication = (role: 'leader' | 'follower') =>
      natsReplication({ servers: cluster.servers, name: 'follow', role, ack: 'replicated' });
    const leader = await VarMap.open(path.join(workDirectory, 'a'), { ...storeOptions, replication: replication('leader') });
    for (let index = 0; index < 300; index++) leader.put(keys.fromString(`k${index}`, 16), text(`value ${index} `.repeat(index % 40)));
    await leader.sync();
    const follower = await VarMap.open(path.join(workDirectory, 'b'), { ...storeOptions, replication: replication('follower') });
    try {
      expect(follower.size).toBe(300);
      // More writes after the follower started: it applies them as they come.
      for (let index = 0; index < 100; index++) leader.put(keys.fromString(`k${index}`, 16), text(`second ${index}`));
      leader.delete(keys.fromString('k299', 16));
      await leader.sync();
      await follower.replication.caughtUp();
      expect(follower.size).toBe(299);
      expect(follower.get(keys.fromString('k5', 16))).toEqual(text('second 5'));
      expect(follower.get(keys.fromString('k150', 16))).toEqual(text('value 150 '.repeat(150 % 40)));
      expect(follower.has(keys.fromString('k299', 16))).toBe(false);

      await leader.replication.caughtUp();
      await follower.replication.caughtUp();
      const leaderFiles = filesOf(path.join(workDirectory, 'a'));
      const followerFiles = filesOf(path.join(workDirectory, 'b'));
      expect([...leaderFiles.keys()].filter((name) => name.endsWith('.data')).length).toBeGreaterThan(0);
      expect([...followerFiles.keys()].sort()).toEqual([...leaderFiles.keys()].sort());
      for (const [name, bytes] of leaderFiles) expect(followerFiles.get(name)?.equals(bytes), name).toBe(true);

      const status = follower.replication.status();
      expect(status.role).toBe('follower');
      expect(status.epoch).toBe(leader.replication.status().epoch);
      expect(status.error).toBeUndefined();

      expect(codeOf(() => follower.put(keys.fromString('x', 16), text('y')))).toBe('ARMDB_READ_ONLY');
      expect(codeOf(() => follower.delete(keys.fromString('k1', 16)))).toBe('ARMDB_READ_ONLY');
      await expect(follower.sync()).rejects.toMatchObject({ code: 'ARMDB_READ_ONLY' });
      await expect(follower.compact()).rejects.toMatchObject({ code: 'ARMDB_READ_ONLY' });
      expect(follower.get(keys.fromString('k5', 16))).toEqual(text('second 5'));
    } finally {
      await follower.close();
      await leader.close();
    }
  });
});
