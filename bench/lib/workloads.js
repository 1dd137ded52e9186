// One function per workload. Each takes a store adapter (or an open store) plus a prepared data set and
// returns plain numbers. Every get and scan is checked (a missing key or a short scan throws), so a broken
// adapter cannot look fast.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { diskUsage, isPromise, percentile, perSecond, timed } from './util.js';

const MB = 1e6;

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

/** Puts keys[0..count) with values from the pool, then makes them durable. Returns throughput. */
export async function loadWorkload(adapter, directory, { keys, values, count = keys.length, cacheBytes }) {
  const valueSize = values[0].length;
  const store = await adapter.open(directory, { cacheBytes, valueSize });
  const milliseconds = await timed(async () => {
    for (let i = 0; i < count; i++) {
      const pending = store.put(keys[i], values[i % values.length]);
      if (isPromise(pending)) await pending;
    }
    await store.sync();
  });
  const stats = store.stats?.();
  await store.close();
  return {
    opsPerSecond: perSecond(count, milliseconds),
    mbPerSecond: perSecond((count * (keys[0].length + valueSize)) / MB, milliseconds),
    indexBytesPerKey: stats === undefined ? undefined : stats.indexBytes / count,
  };
}

/** Bytes the directory occupies (du) per byte of live data (keys + values), in total and per file kind. */
export function spaceWorkload(directory, liveBytes) {
  const usage = diskUsage(directory);
  const byKind = Object.fromEntries(Object.entries(usage.byExtension).map(([kind, bytes]) => [kind, bytes / liveBytes]));
  return { spaceRatio: usage.allocated / liveBytes, apparentSpaceRatio: usage.apparent / liveBytes, byKind };
}

/**
 * armdb only: an explicit compact() on the open store, while perf_hooks.monitorEventLoopDelay samples
 * the event loop every 5 ms. Returns its duration, bytes in and reclaimed, and the event-loop delay
 * beyond the sampling interval (the histogram records the whole interval between two ticks).
 */
export async function compactWorkload(store) {
  const resolutionMs = 5;
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  /** @type {import('../../dist/index.js').CompactionReport | undefined} */
  let report;
  histogram.enable();
  const milliseconds = await timed(async () => {
    report = await store.compact();
  });
  histogram.disable();
  const beyond = (nanoseconds) => Math.max(0, nanoseconds / 1e6 - resolutionMs);
  return {
    milliseconds,
    filesIn: report?.filesIn ?? 0,
    bytesIn: report?.bytesIn ?? 0,
    bytesReclaimed: report?.bytesReclaimed ?? 0,
    eventLoopP99Ms: histogram.count > 0 ? beyond(histogram.percentile(99)) : 0,
    eventLoopMaxMs: histogram.count > 0 ? beyond(histogram.max) : 0,
  };
}

/** Milliseconds from open() to a usable store on the loaded directory; returns the open store too. */
export async function openWorkload(adapter, directory, options) {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const store = await adapter.open(directory, options);
  const milliseconds = performance.now() - started;
  // CPU time of the whole process (every thread): on a machine other processes share, wall time
  // swings with their load, the CPU an open spends much less.
  const cpu = process.cpuUsage(cpuBefore);
  return { milliseconds, cpuMilliseconds: (cpu.user + cpu.system) / 1000, store };
}

/** Loads the whole store into its cache (untimed), each store the way it does that best. */
export async function warmCache(store) {
  await store.warm();
}

/**
 * Random gets on an open store whose cache holds the data (call warmCache first), after an untimed
 * pass over the first 10,000 (as bench/reads.js does: the get path of the store just opened reaches
 * optimised code before the clock starts).
 */
export function hotGetWorkload(store, { keys, indexes }) {
  for (let i = 0; i < Math.min(10_000, indexes.length); i++) store.get(keys[indexes[i]]);
  return timedGets(store, keys, indexes, 'hot get');
}

/**
 * Gets keys[indexes[i]] in order; throughput per wall second and per second of process CPU time, and
 * the block-cache hit rate over exactly these gets.
 */
function timedGets(store, keys, indexes, label) {
  const before = store.stats?.();
  let found = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < indexes.length; i++) if (store.get(keys[indexes[i]]) !== undefined) found++;
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const after = store.stats?.();
  expect(found === indexes.length, `${label}: ${indexes.length - found} keys missing`);
  return {
    opsPerSecond: perSecond(indexes.length, elapsed),
    cpuOpsPerSecond: perSecond(indexes.length, (cpu.user + cpu.system) / 1000),
    cacheHitRate: hitRate(before, after),
  };
}

function hitRate(before, after) {
  if (before === undefined || after === undefined) return undefined;
  const hits = after.cacheHits - before.cacheHits;
  const misses = after.cacheMisses - before.cacheMisses;
  return hits / Math.max(1, hits + misses);
}

/** Random gets on a freshly opened store whose cache is much smaller than the data. */
export async function coldGetWorkload(adapter, directory, { keys, indexes, cacheBytes }) {
  const store = await adapter.open(directory, { cacheBytes });
  try {
    return timedGets(store, keys, indexes, 'cold get');
  } finally {
    await store.close();
  }
}

/** `length` keys in order from each start (a key chosen so that `length` keys follow it). */
export async function scanWorkload(store, { keys, starts, length }) {
  let visited = 0;
  const milliseconds = await timed(async () => {
    for (const start of starts) {
      let count = store.scan(keys[start], length);
      if (isPromise(count)) count = await count;
      expect(count === length, `scan: ${count} of ${length} entries`);
      visited += count;
    }
  });
  return { keysPerSecond: perSecond(visited, milliseconds) };
}

/** 90 % random gets, 10 % overwrites of random existing keys, then settle (writes applied, not fsynced). */
export async function mixWorkload(store, { keys, values, plan }) {
  const { indexes, isPut } = plan;
  let found = 0;
  const milliseconds = await timed(async () => {
    for (let i = 0; i < indexes.length; i++) {
      const key = keys[indexes[i]];
      if (isPut[i] === 1) {
        const pending = store.put(key, values[(i * 7) % values.length]);
        if (isPromise(pending)) await pending;
      } else if (store.get(key) !== undefined) found++;
    }
    await store.settle();
  });
  const gets = isPut.length - isPut.reduce((sum, bit) => sum + bit, 0);
  expect(found === gets, `mix: ${gets - found} keys missing`);
  return { opsPerSecond: perSecond(indexes.length, milliseconds) };
}

/** Rounds of `batch` puts of new keys, each followed by a timed durable commit. Latency in ms. */
export async function syncWorkload(store, { keys, values, rounds, batch }) {
  const latencies = [];
  let next = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < batch; i++, next++) {
      const pending = store.put(keys[next], values[next % values.length]);
      if (isPromise(pending)) await pending;
    }
    const started = performance.now();
    await store.sync();
    latencies.push(performance.now() - started);
  }
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

/** Larger values: load `count` entries, then random gets with the data in cache (full profile only). */
export async function largeValueWorkload(adapter, directory, { keys, values, count, getIndexes, cacheBytes }) {
  const load = await loadWorkload(adapter, directory, { keys, values, count, cacheBytes });
  const store = await adapter.open(directory, { cacheBytes, valueSize: values[0].length });
  await warmCache(store);
  const get = hotGetWorkload(store, { keys, indexes: getIndexes });
  await store.close();
  return {
    loadOpsPerSecond: load.opsPerSecond,
    loadMbPerSecond: load.mbPerSecond,
    getOpsPerSecond: get.opsPerSecond,
    getCacheHitRate: get.cacheHitRate,
  };
}
