// armdb against lmdb-js, LevelDB, SQLite and encrypted SQLite, and against this machine's physical limits.
//
//   npm run build && (cd bench && npm install) && node bench/run.js          quick profile, N = 200,000
//   node bench/run.js --full                                                 N = 1,000,000, plus 4 KiB / 64 KiB values
//   options: --reps 5   --only armdb,lmdb   --n 50000 (a smaller N, for trying the harness out)
//
// Every store runs in this one process, in a fresh temporary directory per store per repetition; the order
// of the stores rotates (and on odd repetitions reverses) between repetitions; each figure is the median of
// the repetitions. The report gives ratios to the best peer of the same run: absolute numbers depend on the
// machine and its neighbours. What each workload measures and how each store is configured:
// docs/benchmarks.md.
// Results: bench/results/<timestamp>.json and .md (git-ignored); the Markdown is also printed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAdapters } from './lib/adapters.js';
import { measureIndexMemory } from './lib/memory.js';
import { createColdBaseline, measurePhysical } from './lib/physical.js';
import { median, parseOptions } from './lib/harness.js';
import { judgeTargets, medians, ratios, renderMarkdown } from './lib/report.js';
import {
  freshDirectory,
  gc,
  hasFileEnding,
  makeKeys,
  makeValues,
  MiB,
  orderForRepetition,
  randomIndexes,
  removeDirectory,
  seededRandom,
  sortedOrder,
} from './lib/util.js';
import {
  coldGetWorkload,
  compactWorkload,
  hotGetWorkload,
  largeValueWorkload,
  loadWorkload,
  mixWorkload,
  openWorkload,
  scanWorkload,
  spaceWorkload,
  syncWorkload,
  warmCache,
} from './lib/workloads.js';

/**
 * A profile with the cache budgets derived from its N.
 * @typedef {typeof PROFILES.full & { hotCacheBytes: number, coldCacheBytes: number }} Profile
 */
const PROFILES = {
  quick: {
    name: 'quick',
    n: 200_000,
    reps: 3,
    // 200,000 as in bench/reads.js: 50,000 gets lasted about 0.15 s, which one descheduling on a busy
    // machine halved (docs/benchmarks.md, issue 16, fourth pass).
    hotGets: 200_000,
    coldGets: 5_000,
    mixOps: 50_000,
    scanLength: 100_000,
    scanStarts: 2,
    syncRounds: 40,
    syncBatch: 100,
    memoryReps: 1,
    large: [],
    physical: { fileBytes: 32 * MiB, reads: 20_000, sealMs: 100 },
    // The VarMap reference store (armdb-map): left out so that the quick profile stays under 3 minutes.
    varMapReference: false,
  },
  full: {
    name: 'full',
    n: 1_000_000,
    reps: 3,
    hotGets: 500_000,
    coldGets: 50_000,
    mixOps: 500_000,
    scanLength: 100_000,
    scanStarts: 3,
    syncRounds: 200,
    syncBatch: 100,
    memoryReps: 3,
    large: [
      { name: '4k', valueSize: 4096, count: 50_000, gets: 50_000 },
      { name: '64k', valueSize: 65_536, count: 3_000, gets: 3_000 },
    ],
    physical: { fileBytes: 256 * MiB, reads: 200_000, sealMs: 1000 },
    varMapReference: true,
  },
};

const VALUE_SIZE = 100;
const KEY_SIZE = 16;

function parseProfile() {
  const values = parseOptions('npm run bench -- [options]', {
    full: { type: 'boolean', help: 'N = 1,000,000, plus 4 KiB / 64 KiB values' },
    reps: { type: 'number', min: 1, integer: true, help: 'repetitions (default 3)' },
    only: { type: 'string', help: 'store ids, comma-separated: armdb,lmdb,…' },
    n: { type: 'number', min: 1000, integer: true, help: 'keys (a smaller N, to try the harness out)' },
  });
  /** @type {Profile} */
  const profile = { ...PROFILES[values.full ? 'full' : 'quick'], hotCacheBytes: 0, coldCacheBytes: 0 };
  if (values.reps !== undefined) profile.reps = values.reps;
  if (values.n !== undefined) {
    profile.n = values.n;
    profile.name += ` (n=${profile.n})`;
  }
  profile.hotGets = Math.min(profile.hotGets, profile.n);
  profile.coldGets = Math.min(profile.coldGets, profile.n);
  profile.mixOps = Math.min(profile.mixOps, profile.n);
  profile.scanLength = Math.min(profile.scanLength, Math.floor(profile.n / 2));
  profile.hotCacheBytes = Math.max(64 * MiB, profile.n * 200); // holds every armdb page (136 B per record)
  profile.coldCacheBytes = Math.max(64 * 1024, Math.floor((profile.n * (KEY_SIZE + VALUE_SIZE)) / 32));
  return { profile, only: values.only?.split(',') };
}

/** Keys, values and access plans, identical for every store. */
function prepareData(profile) {
  const keys = makeKeys(profile.n, KEY_SIZE);
  const sorted = sortedOrder(keys);
  const random = seededRandom(6);
  const mixIndexes = randomIndexes(profile.mixOps, profile.n, 61);
  const isPut = new Uint8Array(profile.mixOps).map(() => (random() < 0.1 ? 1 : 0));
  return {
    keys,
    values: makeValues(VALUE_SIZE, 4096),
    hotIndexes: randomIndexes(profile.hotGets, profile.n, 62),
    coldIndexes: randomIndexes(profile.coldGets, profile.n, 63),
    mixPlan: { indexes: mixIndexes, isPut },
    scanStarts: Array.from(randomIndexes(profile.scanStarts, profile.n - profile.scanLength, 64), (position) => sorted[position]),
    syncKeys: makeKeys(profile.syncRounds * profile.syncBatch, KEY_SIZE),
    large: profile.large.map((spec) => ({
      ...spec,
      keys: makeKeys(spec.count, KEY_SIZE),
      values: makeValues(spec.valueSize, 64),
      getIndexes: randomIndexes(spec.gets, spec.count, 65),
    })),
  };
}

/** An untimed small load and get pass per store, so JIT warm-up does not land on the first store measured. */
async function warmUp(adapter, data) {
  const count = Math.min(10_000, data.keys.length);
  const directory = freshDirectory(`${adapter.id}-warmup`);
  try {
    await loadWorkload(adapter, directory, { keys: data.keys, values: data.values, count, cacheBytes: 16 * MiB });
    const store = await adapter.open(directory, { cacheBytes: 16 * MiB, valueSize: VALUE_SIZE });
    await warmCache(store);
    hotGetWorkload(store, { keys: data.keys, indexes: data.hotIndexes.filter((index) => index < count) });
    await store.close();
  } finally {
    removeDirectory(directory);
  }
}

/** Load N entries into an empty store, then measure what the directory occupies. */
async function loadPhase(adapter, directory, profile, data, result) {
  const load = await loadWorkload(adapter, directory, { keys: data.keys, values: data.values, cacheBytes: profile.hotCacheBytes });
  result.load = load.opsPerSecond;
  result.loadMbPerSecond = load.mbPerSecond;
  if (load.indexBytesPerKey !== undefined) result.indexBytesPerKey = load.indexBytesPerKey;
  const space = spaceWorkload(directory, profile.n * (KEY_SIZE + VALUE_SIZE));
  result.space = space.spaceRatio;
  result.apparentSpace = space.apparentSpaceRatio;
  if (adapter.family === 'armdb') for (const [kind, ratio] of Object.entries(space.byKind)) result[`space.${kind}`] = ratio;
}

/** armdb only: open time with `hints: false` (the index rebuilt from the data files). */
async function openWithoutHintsPhase(adapter, directory, profile, result, armdbDetails) {
  armdbDetails.hintFiles ||= hasFileEnding(directory, '.hint');
  const opened = await openWorkload(adapter, directory, { cacheBytes: profile.hotCacheBytes, hints: false });
  result.openNoHintsMs = opened.milliseconds;
  await opened.store.close();
  armdbDetails.hintFilesAfterNoHintsOpen ||= hasFileEnding(directory, '.hint');
}

/** Timed open, then on that store: hot gets, scan, 90/10 mix, sync latency, and (armdb) compaction and the scan after it. */
async function openStorePhase(adapter, directory, profile, data, result, phase) {
  const opened = await openWorkload(adapter, directory, { cacheBytes: profile.hotCacheBytes, valueSize: VALUE_SIZE });
  result.openMs = opened.milliseconds;
  result.openCpuMs = opened.cpuMilliseconds;
  const store = opened.store;
  try {
    await warmCache(store);
    const hot = hotGetWorkload(store, { keys: data.keys, indexes: data.hotIndexes });
    result.hotGet = hot.opsPerSecond;
    result.hotGetCpu = hot.cpuOpsPerSecond;
    if (hot.cacheHitRate !== undefined) result.hotCacheHitRate = hot.cacheHitRate;
    phase('open+hotGet');
    if (store.scan !== undefined) {
      result.scan = (await scanWorkload(store, { keys: data.keys, starts: data.scanStarts, length: profile.scanLength })).keysPerSecond;
    }
    phase('scan');
    result.mix = (await mixWorkload(store, { keys: data.keys, values: data.values, plan: data.mixPlan })).opsPerSecond;
    phase('mix');
    const sync = await syncWorkload(store, {
      keys: data.syncKeys,
      values: data.values,
      rounds: profile.syncRounds,
      batch: profile.syncBatch,
    });
    result.syncP50 = sync.p50Ms;
    result.syncP99 = sync.p99Ms;
    // Compaction is measured on the main armdb store only: the layout (and so the space) is the same for all three.
    if (adapter.id === 'armdb' && store.compact !== undefined) {
      const compaction = await compactWorkload(store);
      result.compactMs = compaction.milliseconds;
      result.compactFilesIn = compaction.filesIn;
      result.compactReclaimedBytes = compaction.bytesReclaimed;
      result.compactMbPerSecond = compaction.bytesIn / 1e6 / (compaction.milliseconds / 1000);
      result.compactLoopP99Ms = compaction.eventLoopP99Ms;
      result.compactLoopMaxMs = compaction.eventLoopMaxMs;
      // The same scan again: compact() on a Tree writes the live records in key order
      // (docs/benchmarks.md, "scan after compact()"). Its own row; the scan row above is before it.
      if (store.scan !== undefined) {
        phase('sync+compact');
        await warmCache(store);
        result.scanCompacted = (
          await scanWorkload(store, { keys: data.keys, starts: data.scanStarts, length: profile.scanLength })
        ).keysPerSecond;
        phase('scanCompacted');
      }
    }
  } finally {
    await store.close();
  }
  if (result.compactMs !== undefined) {
    // Live data now: the N keys (the mix overwrote some of them) plus the keys the sync rounds added.
    const compacted = spaceWorkload(directory, (profile.n + profile.syncRounds * profile.syncBatch) * (KEY_SIZE + VALUE_SIZE));
    result.spaceCompacted = compacted.spaceRatio;
    for (const [kind, ratio] of Object.entries(compacted.byKind)) result[`spaceCompacted.${kind}`] = ratio;
  }
}

/** Reopen with a cache of 1/32 of the data, random gets; then the bare pread + decrypt floor, right away. */
async function coldPhase(adapter, directory, profile, data, result) {
  const cold = await coldGetWorkload(adapter, directory, {
    keys: data.keys,
    indexes: data.coldIndexes,
    cacheBytes: profile.coldCacheBytes,
  });
  result.coldGet = cold.opsPerSecond;
  if (cold.cacheHitRate !== undefined) result.coldCacheHitRate = cold.cacheHitRate;
  result.coldBaseline = data.coldBaseline.run(profile.coldGets, 7);
  result.coldVsBaseline = result.coldBaseline / result.coldGet;
}

/** Full profile: 4 KiB and 64 KiB values, each in its own fresh directory. */
async function largeValuePhase(adapter, spec, result) {
  const directory = freshDirectory(`${adapter.id}-${spec.name}`);
  try {
    const cacheBytes = Math.ceil(spec.count * (spec.valueSize + 64) * 1.5);
    const large = await largeValueWorkload(adapter, directory, { ...spec, cacheBytes });
    result[`load${spec.name}`] = large.loadOpsPerSecond;
    result[`load${spec.name}MbPerSecond`] = large.loadMbPerSecond;
    result[`get${spec.name}`] = large.getOpsPerSecond;
    if (large.getCacheHitRate !== undefined) result[`get${spec.name}CacheHitRate`] = large.getCacheHitRate;
  } finally {
    removeDirectory(directory);
  }
}

/** Every workload for one store in one repetition, in a fresh directory. Returns { metric: value }. */
async function runStore(adapter, profile, data, armdbDetails, phases) {
  const result = {};
  let mark = { wall: performance.now(), cpu: process.cpuUsage() };
  const phase = (name) => {
    const now = { wall: performance.now(), cpu: process.cpuUsage() };
    const cpu = now.cpu.user + now.cpu.system - mark.cpu.user - mark.cpu.system;
    phases[name] = { wall: (now.wall - mark.wall) / 1000, cpu: cpu / 1e6 };
    mark = now;
  };
  const directory = freshDirectory(adapter.id);
  try {
    await loadPhase(adapter, directory, profile, data, result);
    phase('load');
    if (adapter.family === 'armdb') await openWithoutHintsPhase(adapter, directory, profile, result, armdbDetails);
    phase('openNoHints');
    await openStorePhase(adapter, directory, profile, data, result, phase);
    phase('sync+compact+close');
    await coldPhase(adapter, directory, profile, data, result);
    phase('coldGet');
  } finally {
    removeDirectory(directory);
  }
  for (const spec of data.large) {
    await largeValuePhase(adapter, spec, result);
    phase(spec.name);
  }
  return result;
}

function physicalLimits(profile) {
  const samples = [];
  for (let rep = 0; rep < profile.reps; rep++) {
    const directory = freshDirectory('physical');
    try {
      samples.push(measurePhysical(directory, { ...profile.physical, seed: 100 + rep }));
    } finally {
      removeDirectory(directory);
    }
  }
  return Object.fromEntries(Object.keys(samples[0]).map((name) => [name, median(samples.map((sample) => sample[name]))]));
}

function indexMemory(profile) {
  const figures = {};
  for (const collection of ['VarTree', 'VarMap']) {
    const runs = Array.from({ length: profile.memoryReps }, () => measureIndexMemory(collection, profile.n));
    figures[collection] = {
      count: profile.n,
      ...Object.fromEntries(
        ['heapBytesPerKey', 'rssBytesPerKey', 'indexBytesPerKey'].map((name) => [name, median(runs.map((run) => run[name]))]),
      ),
    };
  }
  return figures;
}

function machine() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    openssl: process.versions.openssl,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

function writeResults(result) {
  const directory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  fs.mkdirSync(directory, { recursive: true });
  const stamp = result.meta.date.replace(/[:.]/g, '-');
  const markdown = renderMarkdown(result);
  fs.writeFileSync(path.join(directory, `${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(directory, `${stamp}.md`), markdown);
  return { markdown, files: [`bench/results/${stamp}.json`, `bench/results/${stamp}.md`] };
}

async function main() {
  const started = performance.now();
  const { profile, only } = parseProfile();
  const loaded = await loadAdapters();
  const adapters =
    only === undefined
      ? loaded.adapters.filter((adapter) => (adapter.id !== 'armdb-map' || profile.varMapReference) && adapter.id !== 'armdb-seal')
      : loaded.adapters.filter((adapter) => only.includes(adapter.id));
  for (const entry of loaded.skipped) console.error(`skipping ${entry.label}: ${entry.reason}`);
  const log = (message) => console.error(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`);

  log(
    `profile ${profile.name}: N = ${profile.n}, ${profile.reps} repetitions, stores: ${adapters.map((adapter) => adapter.id).join(', ')}`,
  );
  const data = prepareData(profile);
  const baselineDirectory = freshDirectory('cold-baseline');
  data.coldBaseline = createColdBaseline(baselineDirectory, profile.physical.fileBytes);
  const samples = Object.fromEntries(adapters.map((adapter) => [adapter.id, {}]));
  const armdbDetails = { hintFiles: false, hintFilesAfterNoHintsOpen: false, compaction: loaded.armdbFeatures.compaction };
  const loadAverageBefore = os.loadavg();
  for (const adapter of adapters) await warmUp(adapter, data);
  log('warm-up done');
  for (let rep = 0; rep < profile.reps; rep++) {
    for (const adapter of orderForRepetition(adapters, rep)) {
      gc();
      const phases = {};
      const result = await runStore(adapter, profile, data, armdbDetails, phases);
      const storeSamples = samples[adapter.id];
      for (const [metric, value] of Object.entries(result)) {
        storeSamples[metric] ??= [];
        storeSamples[metric].push(value);
      }
      const spent = Object.entries(phases).map(([name, { wall, cpu }]) => `${name} ${wall.toFixed(1)}/${cpu.toFixed(1)}`);
      log(`rep ${rep + 1}/${profile.reps} ${adapter.id}: seconds per phase (wall/CPU): ${spent.join(', ')}`);
    }
  }
  removeDirectory(baselineDirectory);
  log('physical limits');
  const physical = physicalLimits(profile);
  log('index memory (child processes)');
  const memory = adapters.some((adapter) => adapter.family === 'armdb') ? indexMemory(profile) : undefined;

  const values = medians(samples);
  const result = {
    meta: { ...machine(), loadAverageBefore, loadAverageAfter: os.loadavg() },
    profile,
    adapters: adapters.map(({ id, label, family, encrypted, config }) => ({ id, label, family, encrypted, config })),
    skipped: loaded.skipped,
    samples,
    values,
    ratioTable: ratios(adapters, values),
    physical,
    memory,
    armdbDetails,
    durationSeconds: (performance.now() - started) / 1000,
  };
  result.targets = judgeTargets(values, physical, memory);
  const { markdown, files } = writeResults(result);
  console.log(markdown);
  log(`done in ${result.durationSeconds.toFixed(0)} s; wrote ${files.join(', ')}`);
}

await main();
