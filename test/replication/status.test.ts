/**
 * `armdb replicate status` (and `replicationStatus`, behind it) over a real JetStream server: besides
 * the stream and the lease it lists the object store's snapshots (sequence, epoch, time, size) and
 * the manifest history's range, which trimming moves up to the oldest snapshot kept. The CLI runs
 * through dist/ (`npm run build`).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { replicationStatus } from '../../src/replication/inspect.js';
import { storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const DIST_BUILT = fs.existsSync(fileURLToPath(new URL('../../dist/replication/inspect.js', import.meta.url)));
let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-status-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

test('status lists the snapshots kept and the history range', async () => {
  const name = 'status';
  const leader = await VarMap.open(path.join(workDirectory, 'leader'), {
    ...storeOptions,
    replication: natsReplication({
      servers: cluster.servers,
      name,
      role: 'leader',
      ack: 'replicated',
      snapshotEveryBytes: 1,
      retainSnapshots: 2,
    }),
  });
  const epoch = leader.replication.status().epoch;
  const published: number[] = [];
  try {
    for (let round = 0; round < 4; round++) {
      for (let index = 0; index < 40; index++) leader.put(keys.fromString(`k${index}`, 16), text(`round ${round} key ${index}`));
      await leader.sync();
      await leader.replication.caughtUp();
      published.push(leader.replication.status().appliedSequence);
    }
  } finally {
    await leader.close();
  }
  const status = await replicationStatus(cluster.servers, name);
  expect(status.snapshots).toHaveLength(2);
  const [older, newer] = status.snapshots;
  expect(older!.sequence).toBeLessThan(newer!.sequence);
  // One is stored at a time, and none while a file write runs off the event loop: not every batch has one.
  expect(newer!.sequence).toBeLessThanOrEqual(status.lastSequence);
  expect(newer!.sequence).toBeGreaterThan(published[0]!);
  for (const snapshot of status.snapshots) {
    expect(snapshot.epoch).toBe(epoch);
    expect(snapshot.bytes).toBeGreaterThan(0);
    expect(snapshot.files).toBeGreaterThan(0);
    expect(new Date(snapshot.time).toISOString()).toBe(snapshot.time);
  }
  // Trimmed to the oldest snapshot kept; the last entry is the close's last batch.
  expect(status.history).toBeDefined();
  expect(status.history!.firstSequence).toBeGreaterThanOrEqual(older!.sequence);
  expect(status.history!.lastSequence).toBe(status.lastSequence);
  expect(status.history!.entries).toBeGreaterThan(0);
  expect(Date.parse(status.history!.firstTime)).toBeLessThanOrEqual(Date.parse(status.history!.lastTime));
  expect(published.at(-1)).toBeLessThanOrEqual(status.lastSequence);

  if (!DIST_BUILT) return;
  const run = promisify(execFile);
  const printed = await run(process.execPath, [CLI, 'replicate', 'status', '--nats', cluster.servers[0]!, '--name', name]);
  expect(printed.stdout).toMatch(/^snapshots +2$/m);
  expect(printed.stdout).toContain(
    `sequence ${newer!.sequence}  epoch ${epoch}  ${newer!.time}  ${newer!.bytes} bytes in ${newer!.files} files`,
  );
  expect(printed.stdout).toContain(`${status.history!.entries} entries, sequence ${status.history!.firstSequence} (`);
  const json = JSON.parse(
    (await run(process.execPath, [CLI, 'replicate', 'status', '--nats', cluster.servers[0]!, '--name', name, '--json'])).stdout,
  );
  expect(json.snapshots).toEqual(status.snapshots);
  expect(json.history).toEqual(status.history);
}, 120_000);
