/**
 * The NATS node that leads the store's stream is killed with SIGKILL while the leader ships: the R3
 * stream elects another, the leader's `ack: 'replicated'` syncs go on, and the follower catches up.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-node-kill-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

test('replication continues when the stream leader node is SIGKILLed mid-stream', async () => {
  const replication = (role: 'leader' | 'follower') => natsReplication({ servers: cluster.servers, name: 'kill', role, ack: 'replicated' });
  const leader = await VarMap.open(path.join(workDirectory, 'a'), { ...storeOptions, replication: replication('leader') });
  const follower = await VarMap.open(path.join(workDirectory, 'b'), { ...storeOptions, replication: replication('follower') });
  const connection = await connect({ servers: cluster.servers });
  try {
    for (let index = 0; index < 200; index++) leader.put(keys.fromString(`before-${index}`, 16), text(`value ${index}`));
    await leader.sync();
    const info = await (await jetstreamManager(connection)).streams.info('ARMDB_kill');
    expect(info.config.num_replicas).toBe(3);
    const streamLeader = cluster.nodes.find((node) => node.name === info.cluster?.leader);
    expect(streamLeader).toBeDefined();

    for (let index = 0; index < 200; index++) leader.put(keys.fromString(`during-${index}`, 16), text(`value ${index}`));
    const during = leader.sync();
    await cluster.kill(streamLeader!);
    await during;
    for (let index = 0; index < 200; index++) leader.put(keys.fromString(`after-${index}`, 16), text(`value ${index}`));
    await leader.sync();

    await follower.replication.caughtUp();
    expect(follower.size).toBe(600);
    for (const prefix of ['before', 'during', 'after'])
      expect(follower.get(keys.fromString(`${prefix}-199`, 16))).toEqual(text('value 199'));
    expect(follower.replication.status().error).toBeUndefined();
  } finally {
    await connection.close();
    await follower.close();
    await leader.close();
  }
});
