/**
 * Backpressure of a leader with ack 'local' (`maxUnpublishedBytes`): while the NATS server does not
 * answer (stopped by PID with SIGSTOP), what the leader holds for the stream grows to the bound and no
 * further: new puts then throw ARMDB_REPLICATION, nothing already written is lost, and once the server
 * answers again the backlog is published, writes are accepted and a follower gets everything.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { codeOf, storeOptions as baseOptions } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const storeOptions = { ...baseOptions, keySize: 8 } as const;
const MAX_UNPUBLISHED_BYTES = 256 * 1024;
const VALUE_BYTES = 1024;
let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-backpressure-'));
});

afterAll(async () => {
  const pid = cluster?.nodes[0]?.process?.pid;
  if (pid !== undefined) process.kill(pid, 'SIGCONT');
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

const valueNumbered = (index: number): Uint8Array => new Uint8Array(VALUE_BYTES).fill(index % 251);

test("with ack 'local', writes stop at maxUnpublishedBytes while the server is stopped, and go on once it answers", async () => {
  // A lease far longer than the stop: the leader keeps it across the outage.
  const replication = (role: 'leader' | 'follower') =>
    natsReplication({
      servers: cluster.servers,
      name: 'backpressure',
      role,
      leaseTtlMs: 600_000,
      maxUnpublishedBytes: MAX_UNPUBLISHED_BYTES,
    });
  const leader = await VarMap.open(path.join(workDirectory, 'leader'), { ...storeOptions, replication: replication('leader') });
  let follower: VarMap | undefined;
  const pid = cluster.nodes[0]!.process!.pid!;
  try {
    leader.put(keys.u64(0), valueNumbered(0));
    await leader.sync();
    await leader.replication.caughtUp();

    process.kill(pid, 'SIGSTOP');
    // Writes without a sync: the engine's write buffer hands pages to the file system as it fills.
    let written = 1;
    let refusal = 'no error';
    while (written < 4 * (MAX_UNPUBLISHED_BYTES / VALUE_BYTES) && refusal === 'no error') {
      refusal = codeOf(() => leader.put(keys.u64(written), valueNumbered(written)));
      if (refusal === 'no error') written++;
    }
    expect(refusal).toBe('ARMDB_REPLICATION');
    // Refused at the bound, not long before it (the bound counts the pages written, the puts their values).
    expect(written * VALUE_BYTES).toBeGreaterThan(MAX_UNPUBLISHED_BYTES / 2);
    expect(written * VALUE_BYTES).toBeLessThanOrEqual(MAX_UNPUBLISHED_BYTES + 2 * storeOptions.writeBufferBytes * storeOptions.shards);
    expect(leader.replication.status().role).toBe('leader');
    // Reads go on, and what was written stays.
    expect(leader.get(keys.u64(written - 1))).toEqual(valueNumbered(written - 1));
    // sync() waits for the stream (backpressure) rather than resolving at once.
    const synced = leader.sync();
    synced.catch(() => undefined);

    process.kill(pid, 'SIGCONT');
    await synced;
    await leader.replication.caughtUp();
    // The backlog is out: writes are accepted again.
    expect(codeOf(() => leader.put(keys.u64(written), valueNumbered(written)))).toBe('no error');
    written++;
    await leader.sync();

    follower = await VarMap.open(path.join(workDirectory, 'follower'), { ...storeOptions, replication: replication('follower') });
    await follower.replication.caughtUp();
    expect(follower.size).toBe(written);
    for (const index of [0, 1, written - 2, written - 1]) expect(follower.get(keys.u64(index))).toEqual(valueNumbered(index));
  } finally {
    process.kill(pid, 'SIGCONT');
    await follower?.close();
    await leader.close();
  }
}, 180_000);

test("with ack 'local', a sync() whose lease check gets no answer fails with ARMDB_REPLICATION, and what it wrote is kept", async () => {
  const leader = await VarMap.open(path.join(workDirectory, 'unanswered'), {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name: 'unanswered', role: 'leader', leaseTtlMs: 600_000 }),
  });
  const pid = cluster.nodes[0]!.process!.pid!;
  try {
    leader.put(keys.u64(0), valueNumbered(0));
    await leader.sync();
    process.kill(pid, 'SIGSTOP');
    leader.put(keys.u64(1), valueNumbered(1));
    // Before, the NATS client's own timeout error came out of sync(), untyped.
    const code = await leader.sync().then(
      () => 'no error',
      (error: unknown) => (error as { code?: string }).code ?? `untyped: ${String(error)}`,
    );
    expect(code).toBe('ARMDB_REPLICATION');
    process.kill(pid, 'SIGCONT');
    await leader.sync();
    expect(leader.get(keys.u64(1))).toEqual(valueNumbered(1));
  } finally {
    process.kill(pid, 'SIGCONT');
    await leader.close();
  }
}, 180_000);
