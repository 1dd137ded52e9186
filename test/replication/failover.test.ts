/**
 * Failover over a real 3-node JetStream cluster: promote() takes the lease with the next epoch and the
 * old leader is fenced (ARMDB_FENCED on its next sync and write, and when it reopens as a leader);
 * the old leader's directory rejoins as a follower of the new one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { codeOf, filesOf, storeOptions as baseOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const storeOptions = { ...baseOptions, keySize: 8 } as const;
let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-failover-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

const replication = (role: 'leader' | 'follower', holder: string) =>
  natsReplication({ servers: cluster.servers, name: 'failover', role, ack: 'replicated', holder });

describe('promote()', () => {
  test('fences the old leader, and the old directory rejoins as a follower of the new one', async () => {
    const directoryA = path.join(workDirectory, 'a');
    const directoryB = path.join(workDirectory, 'b');
    const oldLeader = await VarMap.open(directoryA, { ...storeOptions, replication: replication('leader', 'node-a') });
    for (let index = 0; index < 50; index++) oldLeader.put(keys.u64(index), text(`a${index}`));
    await oldLeader.sync();
    const replica = await VarMap.open(directoryB, { ...storeOptions, replication: replication('follower', 'node-b') });
    let rejoined: VarMap | undefined;
    try {
      expect(replica.replication.status().leader).toBe('node-a');
      const oldEpoch = oldLeader.replication.status().epoch;
      await replica.replication.promote();
      const promoted = replica.replication.status();
      expect(promoted.role).toBe('leader');
      expect(promoted.epoch).toBeGreaterThan(oldEpoch);
      expect(promoted.leader).toBe('node-b');

      // Its watch of the lease fences the old leader at once (test/replication/leader-lease.test.ts);
      // if the watch has not said so yet, its next sync finds out. From then on every write is refused.
      expect(['no error', 'ARMDB_FENCED']).toContain(codeOf(() => oldLeader.put(keys.u64(1000), text('lost'))));
      await expect(oldLeader.sync()).rejects.toMatchObject({ code: 'ARMDB_FENCED' });
      expect(codeOf(() => oldLeader.put(keys.u64(1001), text('refused')))).toBe('ARMDB_FENCED');
      expect(oldLeader.replication.status().role).toBe('fenced');
      await oldLeader.close();

      // It cannot come back as a leader while the new one holds the lease.
      await expect(VarMap.open(directoryA, { ...storeOptions, replication: replication('leader', 'node-a') })).rejects.toMatchObject({
        code: 'ARMDB_FENCED',
      });

      // The promoted replica writes, and the old directory follows it: the fenced write is gone.
      expect(replica.get(keys.u64(7))).toEqual(text('a7'));
      replica.put(keys.u64(7), text('b7'));
      replica.put(keys.u64(2000), text('b2000'));
      await replica.sync();
      rejoined = await VarMap.open(directoryA, { ...storeOptions, replication: replication('follower', 'node-a') });
      await rejoined.replication.caughtUp();
      expect(rejoined.get(keys.u64(7))).toEqual(text('b7'));
      expect(rejoined.get(keys.u64(2000))).toEqual(text('b2000'));
      expect(rejoined.has(keys.u64(1000))).toBe(false);
      expect(rejoined.size).toBe(51);
      await replica.replication.caughtUp();
      await rejoined.replication.caughtUp();
      const leaderFiles = filesOf(directoryB);
      const followerFiles = filesOf(directoryA);
      expect([...followerFiles.keys()].sort()).toEqual([...leaderFiles.keys()].sort());
      for (const [name, bytes] of leaderFiles) expect(followerFiles.get(name)?.equals(bytes), name).toBe(true);
    } finally {
      await rejoined?.close();
      await replica.close();
      await oldLeader.close();
    }
  });
});
