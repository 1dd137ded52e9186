// Durable commits (issue 16): one 100 B put, then a durable commit, `--commits` times (VarMap for armdb),
// each store with its own sync option (armdb sync(), lmdb-js flushed, LevelDB a { sync: true } batch,
// SQLite synchronous=FULL commit; docs/benchmarks.md). Reports, per store, the growth of the directory
// per commit (file sizes, before any compaction), bytes on disk per live byte at the end, and commits/s.
//
//   npm run build && node bench/durable-commit.js [--commits 3000] [--only armdb,lmdb,leveldb]
//
// Ratios to the best peer of the same run are what matter: the machine is shared.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAdapters } from './lib/adapters.js';
import { makeKeys, makeValues, freshDirectory, removeDirectory } from './lib/util.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const COMMITS = Number(option('commits', '3000'));
const ONLY = option('only', 'armdb,lmdb,leveldb,sqlite')
  .split(',')
  .filter((id) => id !== '');
const WARMUP = 20;
const VALUE_BYTES = 100;
const KEY_BYTES = 16;

/** Apparent bytes (file sizes) of every file under `directory`. */
function apparentBytes(directory) {
  let total = 0;
  for (const entry of fs.readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

async function measure(adapter) {
  const directory = freshDirectory(`commit-${adapter.id}`);
  try {
    const keys = makeKeys(COMMITS + WARMUP, KEY_BYTES);
    const values = makeValues(VALUE_BYTES, 64);
    const store = await adapter.open(directory, { cacheBytes: 8 << 20, valueSize: VALUE_BYTES });
    try {
      for (let index = 0; index < WARMUP; index++) {
        const pending = store.put(keys[index], values[index % values.length]);
        if (pending instanceof Promise) await pending;
        await store.sync();
      }
      const before = apparentBytes(directory);
      const started = performance.now();
      for (let index = WARMUP; index < WARMUP + COMMITS; index++) {
        const pending = store.put(keys[index], values[index % values.length]);
        if (pending instanceof Promise) await pending;
        await store.sync();
      }
      const milliseconds = performance.now() - started;
      const after = apparentBytes(directory);
      return {
        bytesPerCommit: (after - before) / COMMITS,
        spaceRatio: after / ((COMMITS + WARMUP) * (KEY_BYTES + VALUE_BYTES)),
        commitsPerSecond: COMMITS / (milliseconds / 1000),
      };
    } finally {
      await store.close();
    }
  } finally {
    removeDirectory(directory);
  }
}

const { adapters, skipped } = await loadAdapters();
const chosen = adapters.filter((adapter) => ONLY.some((id) => adapter.id === id || (id === 'sqlite' && adapter.id.startsWith('sqlite'))));
for (const { id, reason } of skipped) console.log(`skipped ${id}: ${reason}`);
const rows = [];
for (const adapter of chosen) {
  const result = await measure(adapter);
  rows.push({ id: adapter.id, ...result });
  console.error(`${adapter.id}: done`);
}
const best = Math.max(...rows.filter((row) => !row.id.startsWith('armdb')).map((row) => row.commitsPerSecond));
console.log(`\ndurable commit: one ${VALUE_BYTES} B put then a durable commit, ${COMMITS} times\n`);
console.log('| store | store growth per commit (B) | on disk / live (keys + values) | commits/s | commits/s vs best peer |');
console.log('|---|---|---|---|---|');
for (const row of rows) {
  const ratio = Number.isFinite(best) && best > 0 ? (row.commitsPerSecond / best).toFixed(2) : '–';
  console.log(
    `| ${row.id} | ${row.bytesPerCommit.toFixed(0)} | ${row.spaceRatio.toFixed(2)}× | ${row.commitsPerSecond.toFixed(0)} | ${ratio} |`,
  );
}
