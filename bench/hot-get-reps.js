// bench/run.js's hot-get phase, repetition by repetition, with where its time goes: the same steps on
// the same data (load N keys into a fresh directory, open without hints, open with hints, warm the
// cache, then random gets on that store), CPU time per get, the garbage collections that landed in the
// timed loop, and the heap before it. It exists to tell a product cause (memory kept from one store to
// the next, work left running during the gets) from a bench cause (docs/benchmarks.md, issue 16).
//
//   npm run build && node bench/hot-get-reps.js [--n 1000000] [--reps 3] [--gets 50000] [--peer]
//
//   --gets   timed gets per repetition (bench/run.js: 50,000 in its quick profile, 500,000 with --full)
//   --peer   run lmdb-js's same phase between armdb's repetitions, as run.js does with --only armdb,lmdb
import { PerformanceObserver } from 'node:perf_hooks';
import { parseOptions } from './lib/harness.js';
import { loadAdapters } from './lib/adapters.js';
import { freshDirectory, gc, makeKeys, makeValues, MiB, randomIndexes, removeDirectory } from './lib/util.js';
import { loadWorkload, openWorkload, warmCache } from './lib/workloads.js';

const options = parseOptions('npm run build && node bench/hot-get-reps.js [options]', {
  n: { type: 'number', default: 1_000_000, min: 1000, integer: true, help: 'keys of 100-byte values' },
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions' },
  gets: { type: 'number', default: 50_000, min: 1, integer: true, help: 'timed gets per repetition' },
  batches: { type: 'number', default: 1, min: 1, integer: true, help: 'timed passes over the same gets, reported one by one' },
  'gc-first': { type: 'boolean', help: 'a full garbage collection after the warm-up, before the timed gets' },
  peer: { type: 'boolean', help: 'lmdb-js between repetitions, in the same process' },
});
const KEY_SIZE = 16;
const VALUE_SIZE = 100;

const loaded = await loadAdapters();
const armdb = loaded.adapters.find((adapter) => adapter.id === 'armdb');
const lmdb = loaded.adapters.find((adapter) => adapter.id === 'lmdb');
if (armdb === undefined) throw new Error('armdb adapter missing');
if (options.peer && lmdb === undefined) throw new Error(`lmdb-js missing: ${JSON.stringify(loaded.skipped)}`);

// The data of bench/run.js's prepareData (same seeds).
const keys = makeKeys(options.n, KEY_SIZE);
const values = makeValues(VALUE_SIZE, 4096);
const hotIndexes = randomIndexes(Math.min(options.gets, options.n), options.n, 62);
const hotCacheBytes = Math.max(64 * MiB, options.n * 200);

/** Collections whose start fell in the timed window (entries arrive on a later turn of the event loop). */
let gcMs = 0;
let gcCount = 0;
let window = { from: Number.POSITIVE_INFINITY, to: Number.NEGATIVE_INFINITY };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.startTime < window.from || entry.startTime > window.to) continue;
    gcMs += entry.duration;
    gcCount++;
  }
}).observe({ entryTypes: ['gc'] });

async function phase(adapter, rep) {
  const directory = freshDirectory(`${adapter.id}-hot-reps`);
  try {
    gc();
    const loadCpu = process.cpuUsage();
    await loadWorkload(adapter, directory, { keys, values, cacheBytes: hotCacheBytes });
    const loadMs = cpuMs(loadCpu);
    if (adapter.family === 'armdb')
      await (await openWorkload(adapter, directory, { cacheBytes: hotCacheBytes, hints: false })).store.close();
    const openCpu = process.cpuUsage();
    const { store } = await openWorkload(adapter, directory, { cacheBytes: hotCacheBytes, valueSize: VALUE_SIZE });
    const openMs = cpuMs(openCpu);
    try {
      await warmCache(store);
      if (options['gc-first']) gc();
      const { heapUsed, rss, arrayBuffers } = process.memoryUsage();
      const heapMiB = heapUsed / MiB;
      const rssMiB = rss / MiB;
      const buffersMiB = arrayBuffers / MiB;
      for (let batch = 0; batch < options.batches; batch++) {
        gcMs = 0;
        gcCount = 0;
        const cpu = process.cpuUsage();
        const started = performance.now();
        let found = 0;
        for (let i = 0; i < hotIndexes.length; i++) if (store.get(keys[hotIndexes[i]]) !== undefined) found++;
        const wallMs = performance.now() - started;
        const getCpuMs = cpuMs(cpu);
        window = { from: started, to: started + wallMs };
        await new Promise((resolve) => setImmediate(resolve));
        if (found !== hotIndexes.length) throw new Error(`${hotIndexes.length - found} keys missing`);
        console.log(
          `rep ${rep + 1} ${adapter.id.padEnd(5)} pass ${batch + 1}: hot get ${((getCpuMs * 1000) / found).toFixed(2)} µs CPU/get, ` +
            `${Math.round(found / (wallMs / 1000)).toLocaleString('en-US')} gets/s wall; GC in loop ${gcCount}× ${gcMs.toFixed(1)} ms; ` +
            `heap before ${heapMiB.toFixed(0)} MiB, array buffers ${buffersMiB.toFixed(0)} MiB, rss ${rssMiB.toFixed(0)} MiB; ` +
            `load ${loadMs.toFixed(0)} ms CPU, open ${openMs.toFixed(0)} ms CPU`,
        );
      }
    } finally {
      await store.close();
    }
  } finally {
    removeDirectory(directory);
  }
}

function cpuMs(before) {
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / 1000;
}

for (let rep = 0; rep < options.reps; rep++) {
  await phase(armdb, rep);
  if (options.peer) await phase(lmdb, rep);
  // Two turns of the event loop first: work a closed store left scheduled runs, then a full collection.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
  const { heapUsed, arrayBuffers, rss } = process.memoryUsage();
  console.log(
    `after rep ${rep + 1}, every store closed, after a full GC: heap ${(heapUsed / MiB).toFixed(0)} MiB, ` +
      `array buffers ${(arrayBuffers / MiB).toFixed(0)} MiB, rss ${(rss / MiB).toFixed(0)} MiB`,
  );
}
