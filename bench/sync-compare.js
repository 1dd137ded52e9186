// sync() latency of two builds side by side: 100 puts, then `await sync()`, `--rounds` times per store
// (the "sync latency" rows of bench/run.js, with more rounds), for armdb VarTree and VarMap of this
// checkout and of another one (`--before`, a checkout with its own dist/ and bench/node_modules), and
// LevelDB (classic-level, a batch with { sync: true }) as the peer. Stores are interleaved within each
// repetition so that a busy machine slows them alike; ratios to LevelDB are taken within a repetition.
//
//   npm run build && node bench/sync-compare.js --before <other checkout> [--rounds 200] [--reps 7]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadAdapters } from './lib/adapters.js';
import { median, parseOptions } from './lib/harness.js';
import { syncWorkload } from './lib/workloads.js';

const options = parseOptions('npm run build && node bench/sync-compare.js --before <checkout> [options]', {
  before: { type: 'string', help: 'another checkout of armdb, built (dist/) with bench/node_modules' },
  rounds: { type: 'number', default: 200, min: 1, integer: true, help: 'syncs per store and repetition' },
  reps: { type: 'number', default: 7, min: 1, integer: true, help: 'repetitions' },
});
if (options.before === undefined) throw new Error('--before <checkout> is required');

const BATCH = 100;
const after = await loadAdapters();
const before = await import(pathToFileURL(path.join(path.resolve(options.before), 'bench/lib/adapters.js')).href).then((module) =>
  module.loadAdapters(),
);
const find = (set, id) => {
  const adapter = set.adapters.find((candidate) => candidate.id === id);
  if (adapter === undefined) throw new Error(`no ${id} store`);
  return adapter;
};
const stores = [
  ['before VarTree', find(before, 'armdb')],
  ['after VarTree', find(after, 'armdb')],
  ['before VarMap', find(before, 'armdb-map')],
  ['after VarMap', find(after, 'armdb-map')],
  ['LevelDB', find(after, 'leveldb')],
];
const keys = Array.from({ length: options.rounds * BATCH }, () => new Uint8Array(randomBytes(16)));
const values = Array.from({ length: 1000 }, () => new Uint8Array(randomBytes(100)));
/** @type {Map<string, { p50Ms: number; p99Ms: number }[]>} */
const results = new Map(stores.map(([name]) => [name, []]));
for (let rep = 0; rep < options.reps; rep++) {
  for (const [name, adapter] of stores) {
    const directory = mkdtempSync(path.join(tmpdir(), 'armdb-sync-compare-'));
    try {
      const store = await adapter.open(path.join(directory, 'store'), { cacheBytes: 64 << 20 });
      const latency = await syncWorkload(store, { keys, values, rounds: options.rounds, batch: BATCH });
      await store.close();
      results.get(name)?.push(latency);
      console.log(`rep ${rep + 1}/${options.reps} ${name}: p50 ${latency.p50Ms.toFixed(2)} ms, p99 ${latency.p99Ms.toFixed(2)} ms`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }
}
/** @param {number[]} samples */
const middle = (samples) => median(samples) ?? Number.NaN;
const peer = results.get('LevelDB') ?? [];
const beforeOf = (name) => results.get(name.replace('after', 'before')) ?? [];
console.log(`\n| store | p50 ms | p99 ms | p50 ÷ LevelDB | p99 ÷ LevelDB | p50 after ÷ before | p99 after ÷ before |`);
console.log('|---|---|---|---|---|---|---|');
for (const [name, runs] of results) {
  const within = (pick, others) => middle(runs.map((run, rep) => pick(run) / pick(others[rep])));
  const afterBefore = name.startsWith('after')
    ? [within((run) => run.p50Ms, beforeOf(name)).toFixed(2), within((run) => run.p99Ms, beforeOf(name)).toFixed(2)]
    : ['', ''];
  console.log(
    `| ${name} | ${middle(runs.map((run) => run.p50Ms)).toFixed(2)} | ${middle(runs.map((run) => run.p99Ms)).toFixed(2)} | ` +
      `${within((run) => run.p50Ms, peer).toFixed(2)} | ${within((run) => run.p99Ms, peer).toFixed(2)} | ${afterBefore.join(' | ')} |`,
  );
}
