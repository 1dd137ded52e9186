/**
 * The primary process is SIGKILLed while it writes with `ack: 'replicated'`; the replica is promoted
 * and holds every write whose sync resolved; the old primary, when it returns, is fenced. The child
 * opens the store through dist/ (`npm run build`).
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

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-primary-kill-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

test.skipIf(!DIST_BUILT)('a promoted replica holds every write acknowledged before the primary was SIGKILLed', async () => {
  const name = 'primary-kill';
  const directoryA = path.join(workDirectory, 'a');
  const child = spawn(process.execPath, [CHILD], {
    env: {
      ...process.env,
      ARMDB_TEST_KEY: Buffer.from(encryption.key).toString('hex'),
      ARMDB_TEST_DIRECTORY: directoryA,
      ARMDB_TEST_SERVERS: cluster.servers.join(','),
      ARMDB_TEST_NAME: name,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = once(child, 'exit');
  // The replica follows from the child's first snapshot on.
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/acked 29\n/.test(output)) resolve();
    });
    child.once('exit', () => reject(new Error(`the leader child exited:\n${errors}`)));
  });
  const replica = await VarMap.open(path.join(workDirectory, 'b'), {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name, role: 'follower', holder: 'replica' }),
  });
  try {
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (/acked 79\n/.test(output)) {
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      check();
    });
    process.kill(child.pid!, 'SIGKILL');
    await exited;
    const acknowledged = [...output.matchAll(/acked (\d+)\n/g)].map((match) => Number(match[1]));
    const lastAcknowledged = Math.max(...acknowledged);
    expect(lastAcknowledged).toBeGreaterThanOrEqual(79);

    await replica.replication.promote();
    expect(replica.replication.status().role).toBe('leader');
    for (let index = 0; index <= lastAcknowledged; index++) {
      expect(replica.get(keys.fromString(`acked-${index}`, 16)), `write ${index}`).toEqual(text(`value ${index}`));
    }
    replica.put(keys.fromString('after-failover', 16), text('new leader'));
    await replica.sync();

    // The old primary returns: as a leader it is fenced.
    await expect(
      VarMap.open(directoryA, {
        ...storeOptions,
        replication: natsReplication({ servers: cluster.servers, name, role: 'leader', holder: 'child' }),
      }),
    ).rejects.toMatchObject({ code: 'ARMDB_FENCED' });
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    await replica.close();
  }
});
