/**
 * The leader's side of the lease over a real 3-node JetStream cluster: an idle leader is fenced as
 * soon as another node takes its lease (its next put throws ARMDB_FENCED, not only its next sync), and
 * role 'auto' on a store nobody published yet makes exactly one of several nodes the first leader.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { codeOf, storeOptions as baseOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const storeOptions = { ...baseOptions, keySize: 8 } as const;
/** Renewals every 200 s: within the test only the lease watch can tell the old leader it lost the lease. */
const LONG_LEASE_TTL_MS = 600_000;
let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-leader-lease-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

/** Resolves once `condition` holds, looking again every 50 ms (bounded only by the test's timeout). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
}

test('an idle leader is fenced when another node takes its lease: its next put throws ARMDB_FENCED', async () => {
  const replication = (role: 'leader' | 'follower', holder: string) =>
    natsReplication({ servers: cluster.servers, name: 'lease-watch', role, holder, leaseTtlMs: LONG_LEASE_TTL_MS });
  const oldLeader = await VarMap.open(path.join(workDirectory, 'a'), { ...storeOptions, replication: replication('leader', 'node-a') });
  const replica = await VarMap.open(path.join(workDirectory, 'b'), { ...storeOptions, replication: replication('follower', 'node-b') });
  try {
    for (let index = 0; index < 20; index++) oldLeader.put(keys.u64(index), text(`a${index}`));
    await oldLeader.sync();
    await oldLeader.replication.caughtUp();
    await replica.replication.caughtUp();
    expect(replica.get(keys.u64(3))).toEqual(text('a3'));

    await replica.replication.promote();
    // The old leader neither writes nor syncs: only its watch of the lease can tell it.
    await until(() => oldLeader.replication.status().role === 'fenced');
    expect(codeOf(() => oldLeader.put(keys.u64(100), text('refused')))).toBe('ARMDB_FENCED');
    expect(codeOf(() => oldLeader.delete(keys.u64(1)))).toBe('ARMDB_FENCED');
    await expect(oldLeader.sync()).rejects.toMatchObject({ code: 'ARMDB_FENCED' });
    expect(oldLeader.replication.status().error).toMatchObject({ code: 'ARMDB_FENCED' });

    // The new leader is not disturbed by its own renewals or by the old one's close.
    await oldLeader.close();
    replica.put(keys.u64(100), text('b100'));
    await replica.sync();
    expect(replica.replication.status().role).toBe('leader');
  } finally {
    await replica.close();
    await oldLeader.close();
  }
}, 120_000);

test("two 'auto' nodes opened together on a store nobody published: one leads, the other follows it", async () => {
  const auto = (holder: string) =>
    natsReplication({ servers: cluster.servers, name: 'auto-first', role: 'auto', holder, ack: 'replicated' });
  const opened = await Promise.allSettled([
    VarMap.open(path.join(workDirectory, 'auto-1'), { ...storeOptions, replication: auto('node-1') }),
    VarMap.open(path.join(workDirectory, 'auto-2'), { ...storeOptions, replication: auto('node-2') }),
  ]);
  const stores = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  try {
    expect(opened.map((result) => (result.status === 'rejected' ? String((result.reason as Error).stack) : 'opened'))).toEqual([
      'opened',
      'opened',
    ]);
    const roles = stores.map((store) => store.replication.status().role).sort();
    expect(roles).toEqual(['follower', 'leader']);
    const leader = stores.find((store) => store.replication.status().role === 'leader')!;
    const follower = stores.find((store) => store.replication.status().role === 'follower')!;
    expect(follower.replication.status().epoch).toBe(leader.replication.status().epoch);
    for (let index = 0; index < 30; index++) leader.put(keys.u64(index), text(`v${index}`));
    await leader.sync();
    await follower.replication.caughtUp();
    expect(follower.size).toBe(30);
    expect(follower.get(keys.u64(29))).toEqual(text('v29'));
    expect(codeOf(() => follower.put(keys.u64(1), text('x')))).toBe('ARMDB_READ_ONLY');
    expect(follower.replication.status().leader).toBe(leader.replication.status().leader);
  } finally {
    for (const store of stores) await store.close();
  }
}, 120_000);
