/**
 * A promotion that fails after it took the lease hands the lease back. An 'auto' replica B takes the
 * lease when the leader closes, then fails to open its writable engine (its FileSystem refuses the
 * lock file). B must stop renewing and release the lease, and stop replicating with the error, so
 * that another 'auto' replica C, opened afterwards, becomes the leader. Before, B kept renewing a
 * lease it never led with, and no node could write again while B's process lived.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { natsReplication } from '../../src/replication/index.js';
import { ForwardingFileSystem } from '../helpers/forwarding-file-system.js';
import { storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

/** Short, to keep the test short; long enough that a loaded machine still renews in time. */
const LEASE_TTL_MS = 2000;

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-failed-promotion-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

/** Resolves once `condition` holds, looking again every 50 ms (bounded only by the test's timeout). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** The node file system, refusing to create the lock file once armed (the writable open's first step). */
class LockRefusing extends ForwardingFileSystem {
  armed = false;
  override createLockFile(filePath: string, bytes: Uint8Array): void {
    if (this.armed) throw Object.assign(new Error('EIO (injected)'), { code: 'EIO' });
    super.createLockFile(filePath, bytes);
  }
}

test('an auto replica whose promotion fails after taking the lease releases it, and another replica leads', async () => {
  const replication = (role: 'leader' | 'auto') =>
    natsReplication({ servers: cluster.servers, name: 'failed-promotion', role, leaseTtlMs: LEASE_TTL_MS });
  const leader = await VarMap.open(path.join(workDirectory, 'a'), { ...storeOptions, replication: replication('leader') });
  leader.put(keys.fromString('k', 16), text('v'));
  await leader.sync();
  const refusing = new LockRefusing();
  const b = await VarMap.open(
    path.join(workDirectory, 'b'),
    withEngineHooks({ ...storeOptions, replication: replication('auto') }, { fileSystem: refusing }),
  );
  let c: VarMap | undefined;
  try {
    await b.replication!.caughtUp();
    refusing.armed = true;
    await leader.close(); // hands the lease back: B takes it at once, and its writable open fails
    await until(() => b.replication!.status().error !== undefined);
    expect(b.replication!.status().role).toBe('follower');
    expect(b.get(keys.fromString('k', 16))).toEqual(text('v')); // reads go on
    c = await VarMap.open(path.join(workDirectory, 'c'), { ...storeOptions, replication: replication('auto') });
    await until(() => c!.replication!.status().role === 'leader');
    c.put(keys.fromString('k2', 16), text('v2'));
    await c.sync();
  } finally {
    await c?.close();
    await b.close();
  }
}, 120_000);
