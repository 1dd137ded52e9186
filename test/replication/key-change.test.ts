/**
 * Changing the secret of a replicated store without stopping its followers (docs/replication.md §Key
 * operations on a replicated leader): a key slot added on the leader ships in its KEYRING, followers go
 * on with the old secret, a reopened leader's new epoch carries both slots in its snapshot, and a
 * follower reopened with the new secret follows from there; then the old slot is removed on the leader.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { testKey } from '../helpers/bytes.js';
import { storeOptions as baseOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const storeOptions = { ...baseOptions, keySize: 8 } as const;
const newSecret = { key: testKey(8) };
let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-key-change-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

test('a new key slot on the leader, a leader reopen, then followers reopened with the new secret', async () => {
  const replication = (role: 'leader' | 'follower') =>
    natsReplication({ servers: cluster.servers, name: 'key-change', role, ack: 'replicated' });
  const leaderDirectory = path.join(workDirectory, 'leader');
  const followerDirectory = path.join(workDirectory, 'follower');
  let leader = await VarMap.open(leaderDirectory, { ...storeOptions, replication: replication('leader') });
  let follower = await VarMap.open(followerDirectory, { ...storeOptions, replication: replication('follower') });
  try {
    leader.put(keys.u64(1), text('before'));
    await leader.sync();
    // 1. A slot for the new secret: the followers, on the old one, go on.
    await leader.addKeySlot(newSecret, { label: 'next' });
    leader.put(keys.u64(2), text('after the slot'));
    await leader.sync();
    await follower.replication.caughtUp();
    expect(follower.get(keys.u64(2))).toEqual(text('after the slot'));
    expect(follower.replication.status().error).toBeUndefined();

    // 2. The leader reopens (with either secret): its new epoch starts with a snapshot of both slots.
    await leader.close();
    leader = await VarMap.open(leaderDirectory, { ...storeOptions, encryption: newSecret, replication: replication('leader') });
    leader.put(keys.u64(3), text('new epoch'));
    await leader.sync();

    // 3. A follower reopened with the new secret follows from that snapshot on.
    await follower.close();
    follower = await VarMap.open(followerDirectory, { ...storeOptions, encryption: newSecret, replication: replication('follower') });
    await follower.replication.caughtUp();
    expect(follower.get(keys.u64(3))).toEqual(text('new epoch'));
    expect(follower.get(keys.u64(1))).toEqual(text('before'));

    // 4. The old slot goes (its KEK replaced): the follower on the new secret goes on.
    await leader.removeKeySlot('default', { rotateKek: true });
    leader.put(keys.u64(4), text('old slot gone'));
    await leader.sync();
    await follower.replication.caughtUp();
    expect(follower.get(keys.u64(4))).toEqual(text('old slot gone'));
    expect(follower.replication.status().error).toBeUndefined();
  } finally {
    await follower.close();
    await leader.close();
  }
}, 120_000);
