/**
 * A follower's durability (docs/replication.md §The follower): it fsyncs what it applied at its
 * caught-up points and records the stream sequence in its progress file (REPLICA), so that a follower
 * SIGKILLed while applying goes on from there when restarted (the stream below that point is purged
 * here, so a follower that started from a snapshot again could not open at all) and ends with the
 * leader's files byte for byte. And a follower that was stopped while the stream was trimmed past it
 * bootstraps again from the newest object-store snapshot by itself. The follower child opens the store
 * through dist/ (`npm run build`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { decodeProgress } from '../../src/replication/progress.js';
import { encryption, filesOf, storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const CHILD = fileURLToPath(new URL('./follower-child.mjs', import.meta.url));
const DIST_BUILT = fs.existsSync(fileURLToPath(new URL('../../dist/replication/index.js', import.meta.url)));

let cluster: NatsCluster;
let connection: NatsConnection;
let workDirectory: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  connection = await connect({ servers: cluster.servers });
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-follower-restart-'));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  await connection?.close();
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

/** A follower child on `directory`, and a way to wait for a line of its output. */
function startFollower(directory: string, name: string) {
  const child = spawn(process.execPath, [CHILD], {
    env: {
      ...process.env,
      ARMDB_TEST_KEY: Buffer.from(encryption.key).toString('hex'),
      ARMDB_TEST_DIRECTORY: directory,
      ARMDB_TEST_SERVERS: cluster.servers.join(','),
      ARMDB_TEST_NAME: name,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = once(child, 'exit');
  /** Resolves once `satisfied(output)`; rejects if the child exits first. */
  const waitFor = (satisfied: (output: string) => boolean): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!satisfied(output)) return;
        child.stdout!.off('data', check);
        resolve();
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stdout!.on('data', check);
      child.once('exit', () => reject(new Error(`the follower child exited:\n${output}\n${errors}`)));
      check();
    });
  const lastApplied = (): number => Math.max(0, ...[...output.matchAll(/applied (\d+)\n/g)].map((match) => Number(match[1])));
  const kill = async (): Promise<void> => {
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  return { child, waitFor, lastApplied, output: () => output, kill };
}

async function streamState(name: string): Promise<{ first: number; last: number }> {
  const jsm = await jetstreamManager(connection);
  const info = await jsm.streams.info(`ARMDB_${name}`);
  return { first: info.state.first_seq, last: info.state.last_seq };
}

function expectSameFiles(leaderDirectory: string, followerDirectory: string): void {
  const leaderFiles = filesOf(leaderDirectory);
  const followerFiles = filesOf(followerDirectory);
  expect([...followerFiles.keys()].sort()).toEqual([...leaderFiles.keys()].sort());
  for (const [name, bytes] of leaderFiles) expect(followerFiles.get(name)?.equals(bytes), name).toBe(true);
}

const value = (index: number, round: number): Uint8Array => text(`value ${index} round ${round} `.repeat(1 + (index % 30)));

test.skipIf(!DIST_BUILT)('a follower SIGKILLed while applying resumes from its durable progress and ends byte-identical', async () => {
  const name = 'follower-restart';
  const directoryA = path.join(workDirectory, 'a');
  const directoryB = path.join(workDirectory, 'b');
  const leader = await VarMap.open(directoryA, {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated' }),
  });
  try {
    for (let index = 0; index < 200; index++) leader.put(keys.fromString(`k${index}`, 16), value(index, 0));
    await leader.sync();
    const follower = startFollower(directoryB, name);
    await follower.waitFor((output) => /applied \d+\n/.test(output));
    // A burst of batches; the follower is killed while it applies them, once it recorded progress.
    let round = 1;
    const burst = (async () => {
      for (; round <= 60; round++) {
        for (let index = 0; index < 20; index++) leader.put(keys.fromString(`k${(round * 20 + index) % 300}`, 16), value(index, round));
        await leader.sync();
      }
    })();
    const progressPath = path.join(directoryB, 'REPLICA');
    await follower.waitFor((output) => [...output.matchAll(/applied/g)].length >= 4);
    // Recorded at its first caught-up point, before it said it had applied anything.
    expect(fs.existsSync(progressPath)).toBe(true);
    const { last } = await streamState(name);
    await follower.kill();
    expect(follower.lastApplied()).toBeLessThanOrEqual(last);
    await burst;
    await leader.replication.caughtUp();

    const progress = decodeProgress(new Uint8Array(fs.readFileSync(progressPath)));
    expect(progress.sequence).toBeGreaterThanOrEqual(1);
    // Everything the follower had durably applied goes from the stream, its first snapshot included:
    // only a follower that goes on from its progress can open now.
    const jsm = await jetstreamManager(connection);
    await jsm.streams.purge(`ARMDB_${name}`, { seq: progress.sequence + 1 });
    expect((await streamState(name)).first).toBe(progress.sequence + 1);

    const replica = await VarMap.open(directoryB, {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });
    try {
      await replica.replication.caughtUp();
      expect(replica.replication.status().error).toBeUndefined();
      expect(replica.size).toBe(leader.size);
      for (let index = 0; index < 300; index++) {
        const key = keys.fromString(`k${index}`, 16);
        expect(replica.get(key), `k${index}`).toEqual(leader.get(key));
      }
      expectSameFiles(directoryA, directoryB);
    } finally {
      await replica.close();
    }
  } finally {
    await leader.close();
  }
});

test.skipIf(!DIST_BUILT)('a follower stopped while the stream is trimmed past it bootstraps again from the newest snapshot', async () => {
  const name = 'follower-trimmed';
  const directoryA = path.join(workDirectory, 'c');
  const directoryB = path.join(workDirectory, 'd');
  const leader = await VarMap.open(directoryA, {
    ...storeOptions,
    replication: natsReplication({
      servers: cluster.servers,
      name,
      role: 'leader',
      ack: 'replicated',
      snapshotEveryBytes: 1,
      retainSnapshots: 1,
      trimStream: true,
    }),
  });
  try {
    for (let index = 0; index < 100; index++) leader.put(keys.fromString(`k${index}`, 16), value(index, 0));
    await leader.sync();
    const follower = startFollower(directoryB, name);
    await follower.waitFor((output) => /applied \d+\n/.test(output));
    process.kill(follower.child.pid!, 'SIGSTOP');
    const stoppedAt = follower.lastApplied();
    // The leader writes on, stores snapshots and trims the stream until the follower's next message is
    // gone, well past what its consumer may have pulled before it stopped (a pull asks for 100 messages).
    const trimmedPast = stoppedAt + 200;
    for (let round = 1; round <= 2000 && (await streamState(name)).first <= trimmedPast; ) {
      for (const end = round + 50; round < end; round++) {
        for (let index = 0; index < 10; index++) leader.put(keys.fromString(`k${(round * 10 + index) % 150}`, 16), value(index, round));
        await leader.sync();
      }
      await leader.replication.caughtUp();
    }
    expect((await streamState(name)).first).toBeGreaterThan(trimmedPast);
    const { last } = await streamState(name);
    process.kill(follower.child.pid!, 'SIGCONT');
    await follower.waitFor((output) => /error /.test(output) || follower.lastApplied() >= last);
    expect(follower.output()).not.toMatch(/error /);
    await follower.kill();
    expectSameFiles(directoryA, directoryB);
  } finally {
    await leader.close();
  }
});
