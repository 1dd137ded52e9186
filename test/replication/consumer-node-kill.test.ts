/**
 * A follower whose NATS node dies: the node it is connected to, which also leads the store's stream
 * (and so holds the follower's consumer), is SIGKILLed. The client reconnects to another node; the
 * follower must notice that its consumer is gone and consume again from the next sequence, so that
 * `caughtUp()` resolves with everything the leader published after the kill.
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
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-consumer-node-kill-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

test('a follower connected to the stream leader node catches up after that node is SIGKILLed', async () => {
  const name = 'consumer-kill';
  const leader = await VarMap.open(path.join(workDirectory, 'a'), {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated' }),
  });
  const connection = await connect({ servers: cluster.servers });
  let follower: VarMap | undefined;
  try {
    for (let index = 0; index < 100; index++) leader.put(keys.fromString(`before-${index}`, 16), text(`value ${index}`));
    await leader.sync();
    const info = await (await jetstreamManager(connection)).streams.info(`ARMDB_${name}`);
    const streamLeader = cluster.nodes.find((node) => node.name === info.cluster?.leader)!;
    expect(streamLeader).toBeDefined();
    // Only the stream leader's URL: the follower connects to it (and learns the others from it).
    follower = await VarMap.open(path.join(workDirectory, 'b'), {
      ...storeOptions,
      replication: natsReplication({ servers: `nats://127.0.0.1:${streamLeader.clientPort}`, name, role: 'follower' }),
    });
    await follower.replication.caughtUp();
    expect(follower.size).toBe(100);

    await cluster.kill(streamLeader);
    for (let index = 0; index < 100; index++) leader.put(keys.fromString(`after-${index}`, 16), text(`value ${index}`));
    await leader.sync();
    await follower.replication.caughtUp();
    expect(follower.size).toBe(200);
    expect(follower.get(keys.fromString('after-99', 16))).toEqual(text('value 99'));
    expect(follower.replication.status().error).toBeUndefined();
  } finally {
    await connection.close();
    await follower?.close();
    await leader.close();
  }
});
