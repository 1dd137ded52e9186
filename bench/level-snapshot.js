// What an open explicit snapshot of armdb/level costs (docs/level.md §Snapshots): `n` keys are loaded
// with one batch, `snapshots` snapshots are taken, then every key is overwritten once (awaited puts).
// Reported per snapshot count: CPU time of the overwrites, memory the snapshots keep (heap and
// array buffers after a full GC, against the same moment without the overwrites' garbage), memory
// left after snapshot.close(), and the CPU time of a scan through the first snapshot beside a live
// scan. CPU time (process.cpuUsage) rather than wall clock: the machine may be busy. Medians of
// `reps` repetitions, snapshot counts alternating within each.
//
//   npm run build && node bench/level-snapshot.js [--n 100000] [--reps 3]
//
// Keys are 12-byte strings (`keySize` 64 as by default), values 100 bytes, both 'buffer'.
import { randomBytes } from 'node:crypto';
import { median, parseOptions, printTable } from './lib/harness.js';
import { freshDirectory, gc, MiB, removeDirectory } from './lib/util.js';

const { n: count, reps } = parseOptions('npm run build && node bench/level-snapshot.js [options]', {
  n: { type: 'number', default: 100_000, min: 1000, integer: true, help: 'keys' },
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions (the median is reported)' },
});

const { ArmdbLevel } = await import('../dist/level/index.js').catch((error) => {
  throw new Error(`cannot load armdb/level from dist/ (run \`npm run build\` first): ${error.message}`);
});

const key = new Uint8Array(randomBytes(32));
const keys = Array.from({ length: count }, (_, index) => Buffer.from(`key${String(index).padStart(9, '0')}`));
const SNAPSHOT_COUNTS = [0, 1, 10];

const cpuMs = (start) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};
const heldBytes = () => {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
};

async function scanCpuMs(iterator) {
  const start = process.cpuUsage();
  let entries = 0;
  for await (const _ of iterator) entries++;
  if (entries !== count) throw new Error(`the scan saw ${entries} entries, expected ${count}`);
  return cpuMs(start);
}

async function measure(snapshotCount) {
  const directory = freshDirectory('level-snapshot');
  /** @type {any} buffer keys and values: the 'string' defaults of the type do not apply */
  const db = new ArmdbLevel(directory, { encryption: { key }, keyEncoding: 'buffer', valueEncoding: 'buffer', syncIntervalMs: 0 });
  try {
    await db.open();
    await db.batch(keys.map((level) => ({ type: 'put', key: level, value: Buffer.alloc(100, 1) })));
    const snapshots = Array.from({ length: snapshotCount }, () => db.snapshot());
    const before = heldBytes();
    const start = process.cpuUsage();
    for (const level of keys) await db.put(level, Buffer.alloc(100, 2));
    const overwriteMs = cpuMs(start);
    const keptBytes = heldBytes() - before;
    const snapshotScanMs = snapshotCount === 0 ? undefined : await scanCpuMs(db.iterator({ snapshot: snapshots[0] }));
    const liveScanMs = await scanCpuMs(db.iterator());
    await Promise.all(snapshots.map((snapshot) => snapshot.close()));
    const afterCloseBytes = heldBytes() - before;
    return { overwriteMs, keptBytes, afterCloseBytes, snapshotScanMs, liveScanMs };
  } finally {
    await db.close();
    removeDirectory(directory);
  }
}

/** @typedef {{ overwriteMs: number, keptBytes: number, afterCloseBytes: number, snapshotScanMs: number | undefined, liveScanMs: number }} Sample */
/** @type {Map<number, Sample[]>} */
const samples = new Map(SNAPSHOT_COUNTS.map((snapshots) => [snapshots, []]));
for (let repetition = 0; repetition < reps; repetition++) {
  const order = repetition % 2 === 0 ? SNAPSHOT_COUNTS : [...SNAPSHOT_COUNTS].reverse();
  for (const snapshots of order) samples.get(snapshots)?.push(await measure(snapshots));
}

/** @type {(snapshots: number, name: keyof Sample) => number} */
const field = (snapshots, name) => median((samples.get(snapshots) ?? []).map((sample) => sample[name])) ?? Number.NaN;
const baseline = field(0, 'overwriteMs');
console.log(`${count} keys overwritten once under open snapshots, medians of ${reps}\n`);
printTable(
  ['open snapshots', 'overwrite CPU ms', '× none', 'kept MB', 'after close MB', 'scan through snapshot CPU ms', 'live scan CPU ms'],
  SNAPSHOT_COUNTS.map((snapshots) => [
    snapshots,
    field(snapshots, 'overwriteMs').toFixed(0),
    (field(snapshots, 'overwriteMs') / baseline).toFixed(2),
    (field(snapshots, 'keptBytes') / MiB).toFixed(1),
    (field(snapshots, 'afterCloseBytes') / MiB).toFixed(1),
    snapshots === 0 ? '–' : field(snapshots, 'snapshotScanMs').toFixed(0),
    field(snapshots, 'liveScanMs').toFixed(0),
  ]),
);
