/**
 * A leader's publish is stored but its acknowledgement is lost (the connection drops right after the
 * message reaches the server), and the resend comes after the stream's duplicate window: the stream
 * no longer recognises the message id and refuses the resend's `expect.lastSequence`. The leader
 * finds its own part stored there and goes on, rather than fencing itself. A loopback proxy between
 * the leader and the server cuts the connection after the first data part passes.
 */
import * as fs from 'node:fs';
import { once } from 'node:events';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-lost-ack-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

/** Forwards to `port`; once armed, the client's first chunk naming `subject` reaches the server and the connection is cut before any answer. */
async function cuttingProxy(port: number, subject: string) {
  const state = { armed: false, cuts: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let cut = false;
    client.on('data', (chunk: Buffer) => {
      if (cut) return;
      if (state.armed && chunk.includes(subject)) {
        state.armed = false;
        state.cuts++;
        cut = true;
        upstream.end(chunk);
        client.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        if (!cut) upstream.destroy();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `nats://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    state,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

test('a part stored whose acknowledgement was lost, resent after the duplicate window, is taken as acknowledged', async () => {
  const name = 'lostack';
  const node = cluster.nodes[0]!;
  const connection = await connect({ servers: cluster.servers });
  const jsm = await jetstreamManager(connection);
  // The stream as a leader creates it, but with a duplicate window of 100 ms.
  await jsm.streams.add({
    name: `ARMDB_${name}`,
    subjects: [`armdb.${name}.>`],
    storage: StorageType.File,
    num_replicas: 1,
    duplicate_window: 100_000_000,
  });
  const proxy = await cuttingProxy(node.clientPort, `armdb.${name}.files`);
  const leader = await VarMap.open(path.join(workDirectory, 'a'), {
    ...storeOptions,
    replication: natsReplication({ servers: proxy.url, name, role: 'leader', ack: 'replicated' }),
  });
  let follower: VarMap | undefined;
  try {
    leader.put(keys.fromString('first', 16), text('stored, ack lost'));
    proxy.state.armed = true;
    await leader.sync();
    expect(proxy.state.cuts).toBe(1);
    expect(leader.replication.status().role).toBe('leader');
    leader.put(keys.fromString('second', 16), text('after'));
    await leader.sync();

    // The lost-ack part is in the stream once, and a follower holds both writes.
    // Every part is in the stream once: the lost-ack one was not stored a second time.
    const messageIds: string[] = [];
    const lastSequence = (await jsm.streams.info(`ARMDB_${name}`)).state.last_seq;
    for (let sequence = 1; sequence <= lastSequence; sequence++) {
      const stored = await jsm.streams.getMessage(`ARMDB_${name}`, { seq: sequence });
      messageIds.push(stored!.header.get('Nats-Msg-Id'));
    }
    expect(new Set(messageIds).size).toBe(messageIds.length);
    follower = await VarMap.open(path.join(workDirectory, 'b'), {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });
    await follower.replication.caughtUp();
    expect(follower.get(keys.fromString('first', 16))).toEqual(text('stored, ack lost'));
    expect(follower.get(keys.fromString('second', 16))).toEqual(text('after'));
  } finally {
    await follower?.close();
    await leader.close();
    await connection.close();
    await proxy.close();
  }
});
