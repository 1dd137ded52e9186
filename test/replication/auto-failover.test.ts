/**
 * role 'auto' over a real 3-node JetStream cluster: the leader process is SIGKILLed; of two 'auto'
 * replicas exactly one takes the lease once it expires, the other follows the new leader, no write
 * acknowledged with `ack: 'replicated'` is lost, and the old leader is fenced when it returns. The
 * child opens the store through dist/ (`npm run build`).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { encryption, storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const CHILD = fileURLToPath(new URL('./leader-child.mjs', import.meta.url));
const DIST_BUILT = fs.existsSync(fileURLToPath(new URL('../../dist/replication/index.js', import.meta.url)));
/** Short, to keep the test short; long enough that a loaded machine still renews in time. */
const LEASE_TTL_MS = 4000;

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-auto-failover-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

/** Resolves once `condition` holds, looking again every 50 ms (a wait on status(), bounded only by the test's timeout). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
}

test.skipIf(!DIST_BUILT)('an auto replica takes over from a SIGKILLed leader; the other follows it; the old leader is fenced', async () => {
  const name = 'auto-failover';
  const directoryA = path.join(workDirectory, 'a');
  const child = spawn(process.execPath, [CHILD], {
    env: {
      ...process.env,
      ARMDB_TEST_KEY: Buffer.from(encryption.key).toString('hex'),
      ARMDB_TEST_DIRECTORY: directoryA,
      ARMDB_TEST_SERVERS: cluster.servers.join(','),
      ARMDB_TEST_NAME: name,
      ARMDB_TEST_LEASE_TTL_MS: String(LEASE_TTL_MS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = once(child, 'exit');
  const printed = (pattern: RegExp): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (pattern.test(output)) {
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stdout!.on('data', check);
      child.once('exit', () => reject(new Error(`the leader child exited:\n${errors}`)));
      check();
    });
  await printed(/acked 19\n/);
  const auto = (holder: string) =>
    natsReplication({ servers: cluster.servers, name, role: 'auto', ack: 'replicated', leaseTtlMs: LEASE_TTL_MS, holder });
  const replicas = [
    await VarMap.open(path.join(workDirectory, 'b'), { ...storeOptions, replication: auto('replica-b') }),
    await VarMap.open(path.join(workDirectory, 'c'), { ...storeOptions, replication: auto('replica-c') }),
  ];
  try {
    for (const replica of replicas) {
      expect(replica.replication.status()).toMatchObject({ role: 'follower', leader: 'child' });
    }
    await printed(/acked 59\n/);
    process.kill(child.pid!, 'SIGKILL');
    await exited;
    const lastAcknowledged = Math.max(...[...output.matchAll(/acked (\d+)\n/g)].map((match) => Number(match[1])));
    expect(lastAcknowledged).toBeGreaterThanOrEqual(59);

    await until(() => replicas.some((replica) => replica.replication.status().role === 'leader'));
    const leaders = replicas.filter((replica) => replica.replication.status().role === 'leader');
    expect(leaders).toHaveLength(1);
    const newLeader = leaders[0]!;
    const other = replicas.find((replica) => replica !== newLeader)!;
    const leaderStatus = newLeader.replication.status();
    for (let index = 0; index <= lastAcknowledged; index++) {
      expect(newLeader.get(keys.fromString(`acked-${index}`, 16)), `write ${index}`).toEqual(text(`value ${index}`));
    }

    // The other follows the new leader: its writes, its epoch, its name.
    newLeader.put(keys.fromString('after-failover', 16), text('new leader'));
    await newLeader.sync();
    await other.replication.caughtUp();
    expect(other.get(keys.fromString('after-failover', 16))).toEqual(text('new leader'));
    expect(other.replication.status()).toMatchObject({
      role: 'follower',
      epoch: leaderStatus.epoch,
      leader: leaderStatus.leader,
      error: undefined,
    });
    expect(newLeader.replication.status().role).toBe('leader');
    expect(other.size).toBe(newLeader.size);

    // The old leader returns: as a leader it is fenced.
    await expect(
      VarMap.open(directoryA, {
        ...storeOptions,
        replication: natsReplication({ servers: cluster.servers, name, role: 'leader', holder: 'child', leaseTtlMs: LEASE_TTL_MS }),
      }),
    ).rejects.toMatchObject({ code: 'ARMDB_FENCED' });
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    for (const replica of replicas) await replica.close();
  }
});
