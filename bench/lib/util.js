// Small helpers of the peer harness: deterministic randomness, percentiles, data sets, disk usage.
// (The median, the option parser and the table printer every script uses are in harness.js.)
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A garbage-collection trigger without needing `node --expose-gc` on the command line. */
export const gc = (() => {
  if (typeof globalThis.gc === 'function') return globalThis.gc;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc');
})();

/** mulberry32: a small seeded PRNG, so every store sees the same access pattern. Returns [0, 1). */
export function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` random indexes in [0, bound). */
export function randomIndexes(count, bound, seed) {
  const random = seededRandom(seed);
  const indexes = new Uint32Array(count);
  for (let i = 0; i < count; i++) indexes[i] = Math.floor(random() * bound);
  return indexes;
}

/** `count` random keys of `size` bytes, as Buffer views over one allocation (Buffer is a Uint8Array). */
export function makeKeys(count, size = 16) {
  const backing = randomBytes(count * size);
  const list = new Array(count);
  for (let i = 0; i < count; i++) list[i] = backing.subarray(i * size, (i + 1) * size);
  return list;
}

/** A pool of distinct random (incompressible) values of `size` bytes; workloads pick `pool[i % length]`. */
export function makeValues(size, count) {
  const backing = randomBytes(size * count);
  return Array.from({ length: count }, (_, i) => backing.subarray(i * size, (i + 1) * size));
}

/** Indexes of `keys` in bytewise order. */
export function sortedOrder(keys) {
  const order = Array.from(keys.keys());
  order.sort((a, b) => Buffer.compare(keys[a], keys[b]));
  return order;
}

/** Nearest-rank percentile, `p` in (0, 100]. */
export function percentile(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const perSecond = (operations, milliseconds) => (operations / milliseconds) * 1000;

/** Runs `fn` and returns its duration in milliseconds (awaits a promise if `fn` returns one). */
export async function timed(fn) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Awaits `value` only when it is a promise: keeps synchronous stores free of microtask overhead. */
export function isPromise(value) {
  return value !== undefined && value !== null && typeof value.then === 'function';
}

/**
 * Bytes a directory occupies: `allocated` (st_blocks, what du reports), `apparent` (file sizes), and
 * allocated bytes per file extension (`data`, `tags`, `hint`, … ; `other` for files without one).
 */
export function diskUsage(directory) {
  let allocated = 0;
  let apparent = 0;
  const byExtension = {};
  for (const entry of fs.readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const stat = fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name));
    allocated += stat.blocks * 512;
    apparent += stat.size;
    const extension = path.extname(entry.name).slice(1) || 'other';
    byExtension[extension] = (byExtension[extension] ?? 0) + stat.blocks * 512;
  }
  return { allocated, apparent, byExtension };
}

/** True when any file in the tree ends in `suffix`. */
export function hasFileEnding(directory, suffix) {
  return fs.readdirSync(directory, { recursive: true }).some((name) => String(name).endsWith(suffix));
}

const liveDirectories = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const directory of liveDirectories) fs.rmSync(directory, { recursive: true, force: true });
    process.exit(130);
  });
}

/** A fresh, empty temporary directory (one per store per repetition), removed even on Ctrl-C. */
export function freshDirectory(label) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), `armdb-bench-${label}-`));
  liveDirectories.add(directory);
  return directory;
}

export function removeDirectory(directory) {
  fs.rmSync(directory, { recursive: true, force: true });
  liveDirectories.delete(directory);
}

/** Rotation of `list` by `by` places; odd repetitions also reverse it, so neighbours change too. */
export function orderForRepetition(list, repetition) {
  const shift = repetition % list.length;
  const rotated = [...list.slice(shift), ...list.slice(0, shift)];
  return repetition % 2 === 1 ? rotated.reverse() : rotated;
}

export const MiB = 2 ** 20;
