/**
 * Point-in-time restore from a real stream: to a sequence and to a time it gives the contents the
 * leader had then; `armdb restore` and `armdb replicate status` do the same from the command line
 * (through dist/: `npm run build`).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication, restoreFromStream } from '../../src/replication/index.js';
import { encryption, storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const DIST_BUILT = fs.existsSync(fileURLToPath(new URL('../../dist/replication/restore.js', import.meta.url)));

let cluster: NatsCluster;
let workDirectory: string;
/** The leader's contents after each round, and the stream sequence and a time just after it. */
const points: { model: Map<string, string>; sequence: number; after: Date }[] = [];
const KEY_COUNT = 60;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-restore-'));
  const leader = await VarMap.open(path.join(workDirectory, 'leader'), {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name: 'restore', role: 'leader', ack: 'replicated' }),
  });
  const model = new Map<string, string>();
  try {
    for (let round = 0; round < 3; round++) {
      for (let index = round; index < KEY_COUNT; index += 2) {
        const value = `round ${round} key ${index}`;
        leader.put(keys.fromString(`k${index}`, 16), text(value));
        model.set(`k${index}`, value);
      }
      for (let index = round; index < KEY_COUNT; index += 7) {
        leader.delete(keys.fromString(`k${index}`, 16));
        model.delete(`k${index}`);
      }
      await leader.sync();
      points.push({ model: new Map(model), sequence: leader.replication.status().appliedSequence, after: new Date() });
    }
  } finally {
    await leader.close();
  }
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

async function expectContents(directory: string, model: Map<string, string>): Promise<void> {
  const db = await VarMap.open(directory, { ...storeOptions });
  try {
    expect(db.size).toBe(model.size);
    for (let index = 0; index < KEY_COUNT; index++) {
      const expected = model.get(`k${index}`);
      expect(db.get(keys.fromString(`k${index}`, 16)), `k${index}`).toEqual(expected === undefined ? undefined : text(expected));
    }
  } finally {
    await db.close();
  }
}

test('restores the contents as of a stream sequence, as of a time, and as of the end', async () => {
  const atSequence = path.join(workDirectory, 'at-sequence');
  const report = await restoreFromStream({ servers: cluster.servers, name: 'restore', to: atSequence, at: points[0]!.sequence });
  expect(report.sequence).toBe(points[0]!.sequence);
  await expectContents(atSequence, points[0]!.model);

  const atTime = path.join(workDirectory, 'at-time');
  await restoreFromStream({ servers: cluster.servers, name: 'restore', to: atTime, at: points[1]!.after });
  await expectContents(atTime, points[1]!.model);

  const atEnd = path.join(workDirectory, 'at-end');
  await restoreFromStream({ servers: cluster.servers, name: 'restore', to: atEnd });
  await expectContents(atEnd, points[2]!.model);
});

test.skipIf(!DIST_BUILT)('armdb restore and armdb replicate status', async () => {
  const keyFile = path.join(workDirectory, 'key');
  fs.writeFileSync(keyFile, encryption.key, { mode: 0o600 });
  const to = path.join(workDirectory, 'cli');
  const run = promisify(execFile);
  const restored = await run(process.execPath, [
    CLI,
    'restore',
    '--nats',
    cluster.servers[0]!,
    '--name',
    'restore',
    '--to',
    to,
    '--at',
    String(points[1]!.sequence),
    '--key-file',
    keyFile,
  ]);
  expect(restored.stdout).toContain(`as of stream sequence ${points[1]!.sequence}`);
  expect(restored.stdout).toContain(`${points[1]!.model.size} keys`);
  const status = await run(process.execPath, [CLI, 'replicate', 'status', '--nats', cluster.servers[0]!, '--name', 'restore', '--json']);
  const parsed = JSON.parse(status.stdout) as { lastSequence: number; snapshotSequence: number; leaseHolder?: string };
  // close() ships its last barrier and hints after the last point.
  expect(parsed.lastSequence).toBeGreaterThan(points[2]!.sequence);
  expect(parsed.snapshotSequence).toBe(1);
  // The leader closed cleanly: it handed the lease back.
  expect(parsed.leaseHolder).toBeUndefined();
});
