// The ordered-scan rows of docs/benchmarks.md (issue 16) in one short run, armdb (VarTree, AES-GCM)
// beside lmdb-js:
//
//   npm run build && node bench/scan.js [--reps 5] [--n 1000000] [--length 100000] [--starts 3]
//
// N random keys of 16 bytes (so written in random order) with 100-byte values are loaded into each
// store, which is closed, reopened with every page in cache and warmed; then `starts` ranges of
// `length` entries from fixed random keys, through the bench's adapters (`range({ gte, limit })` /
// `getRange({ start, limit })`, every value read). armdb is then compacted (`compact()`: on a Tree it
// rewrites the live records in key order), reopened, warmed and scanned again: the row "scan after
// compact()". lmdb-js has no such step; its one scan is the reference of both rows.
//
// Stores alternate order per repetition; figures are medians, ratios of the same run, per second of
// wall time and per second of process CPU time (which moves far less when other work shares the machine).
import * as os from 'node:os';
import { median, parseOptions, printTable } from './lib/harness.js';
import { loadAdapters } from './lib/adapters.js';
import { freshDirectory, gc, isPromise, makeKeys, makeValues, perSecond, randomIndexes, removeDirectory, sortedOrder } from './lib/util.js';
import { warmCache } from './lib/workloads.js';

const options = parseOptions('npm run build && node bench/scan.js [options]', {
  reps: { type: 'number', default: 5, min: 1, integer: true, help: 'repetitions' },
  n: { type: 'number', default: 1_000_000, min: 1000, integer: true, help: 'keys of 100-byte values' },
  length: { type: 'number', default: 100_000, min: 1, integer: true, help: 'entries per range' },
  starts: { type: 'number', default: 3, min: 1, integer: true, help: 'ranges per scan row' },
});
const MiB = 2 ** 20;
const KEY_SIZE = 16;
const VALUE_SIZE = 100;
const length = Math.min(options.length, Math.floor(options.n / 2));

/** Runs `work` (returning an operation count); `{ wall, cpu }` operations per second of each. */
async function timedOps(work) {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const operations = await work();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { wall: perSecond(operations, wallMs), cpu: perSecond(operations, (cpu.user + cpu.system) / 1000) };
}

/** The ranges, each checked for its full length. */
function scans(store, keys, starts) {
  return timedOps(async () => {
    let visited = 0;
    for (const start of starts) {
      let count = store.scan(keys[start], length);
      if (isPromise(count)) count = await count;
      if (count !== length) throw new Error(`scan: ${count} of ${length} entries`);
      visited += count;
    }
    return visited;
  });
}

/** Opens `directory` with every page in cache, warms it, scans (an untimed pass first, for the JIT). */
async function openAndScan(adapter, directory, keys, starts) {
  const store = await adapter.open(directory, { cacheBytes: Math.max(64 * MiB, options.n * 200) });
  try {
    await warmCache(store);
    await scans(store, keys, starts.slice(0, 1));
    return await scans(store, keys, starts);
  } finally {
    await store.close();
  }
}

const loaded = await loadAdapters();
const adapters = loaded.adapters.filter((adapter) => adapter.id === 'armdb' || adapter.id === 'lmdb');
if (adapters.length < 2) throw new Error(`need armdb and lmdb-js: ${JSON.stringify(loaded.skipped)}`);

const keys = makeKeys(options.n, KEY_SIZE);
const values = makeValues(VALUE_SIZE, 4096);
const sorted = sortedOrder(keys);
const starts = Array.from(randomIndexes(options.starts, options.n - length, 64), (position) => sorted[position]);

/** @type {Record<string, Record<string, {wall: number, cpu: number, files?: number}[]>>} */
const samples = {};
const record = (row, store, value) => {
  samples[row] ??= {};
  samples[row][store] ??= [];
  samples[row][store].push(value);
};

for (let rep = 0; rep < options.reps; rep++) {
  for (const adapter of rep % 2 === 0 ? adapters : [...adapters].reverse()) {
    gc();
    const directory = freshDirectory(`${adapter.id}-scan`);
    try {
      const store = await adapter.open(directory, { cacheBytes: 64 * MiB });
      for (let i = 0; i < options.n; i++) {
        const pending = store.put(keys[i], values[i % values.length]);
        if (isPromise(pending)) await pending;
      }
      await store.sync();
      await store.close();
      const scanned = await openAndScan(adapter, directory, keys, starts);
      record('scan', adapter.id, scanned);
      if (adapter.id === 'lmdb') {
        record('scan after compact()', adapter.id, scanned);
        continue;
      }
      const compacting = await adapter.open(directory, { cacheBytes: 64 * MiB });
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      if (compacting.compact === undefined) throw new Error('armdb without compact()');
      const report = await compacting.compact();
      const cpu = process.cpuUsage(cpuBefore);
      record('compact()', 'armdb', { wall: performance.now() - started, cpu: (cpu.user + cpu.system) / 1000, files: report.filesIn });
      await compacting.close();
      record('scan after compact()', adapter.id, await openAndScan(adapter, directory, keys, starts));
    } finally {
      removeDirectory(directory);
    }
  }
}

const table = [];
for (const row of ['scan', 'scan after compact()']) {
  for (const clock of ['wall', 'cpu']) {
    const rate = (store) => median(samples[row][store].map((sample) => sample[clock])) ?? Number.NaN;
    const armdb = rate('armdb');
    const lmdb = rate('lmdb');
    table.push([
      row,
      clock,
      Math.round(armdb).toLocaleString('en-US'),
      Math.round(lmdb).toLocaleString('en-US'),
      `${(armdb / lmdb).toFixed(2)}×`,
    ]);
  }
}
const compactions = samples['compact()'].armdb;
const compactMedian = (clock) => Math.round(median(compactions.map((sample) => sample[clock])) ?? Number.NaN);
console.log(
  `armdb ordered scan: N = ${options.n}, ${options.starts} ranges of ${length}, ${options.reps} repetitions, node ${process.version}, ` +
    `load average ${os.loadavg()[0].toFixed(1)}; compact(): median ${compactMedian('wall')} ms wall, ${compactMedian('cpu')} ms CPU, ` +
    `${compactions[0].files} files in`,
);
printTable(['row', 'per second of', 'armdb keys/s', 'lmdb-js keys/s', 'armdb / lmdb-js'], table);
