/**
 * `armdb bench [dir]`: a quick profile of armdb on this machine — put, hot get, cold get, sync
 * latency, reopen — in a fresh temporary store (under `dir`, default the OS temp directory) that is
 * removed afterwards. armdb only: no other database is a dependency of the product (the repository's
 * bench/ compares peers).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assert } from '../assert.js';
import { DEFAULTS } from '../config.js';
import { VarMap } from '../collections/var-map.js';
import { Limits } from '../format/constants.js';
import { byteSize, choiceOption, flag, integerOption, type OptionValues, print, UsageError, type Command } from './command.js';
import type { Stats } from '../engine/reports.js';

interface Phase {
  readonly name: string;
  /** How the text output shows it: operations per second, or milliseconds (total or per operation). */
  readonly shown: 'rate' | 'total' | 'each';
  readonly operations: number;
  readonly milliseconds: number;
  readonly detail?: string;
}

function opsPerSecond(phase: Phase): number {
  return phase.milliseconds === 0 ? Infinity : (phase.operations / phase.milliseconds) * 1000;
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

/** Key `index` of the benchmark: 16 bytes, the index big-endian in the last 8. */
function benchKey(index: number): Uint8Array {
  const key = new Uint8Array(16);
  new DataView(key.buffer).setBigUint64(8, BigInt(index));
  key[0] = 0x62;
  return key;
}

/** A random permutation of 0..count-1 (deterministic: the profile is repeatable). */
function shuffled(count: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let index = 0; index < count; index++) order[index] = index;
  let state = 0x9e3779b9;
  for (let index = count - 1; index > 0; index--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const other = state % (index + 1);
    const swap = order[index]!;
    order[index] = order[other]!;
    order[other] = swap;
  }
  return order;
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'quick profile: put, hot get, cold get, sync latency, reopen',
  maxPositionals: 1,
  options: {
    shards: { type: 'string' },
    'cache-bytes': { type: 'string' },
    cipher: { type: 'string' },
    count: { type: 'string' },
    'value-bytes': { type: 'string' },
    'sync-rounds': { type: 'string' },
    'no-encryption': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  help: `Usage: armdb bench [dir] [--shards N] [--cache-bytes N] [--cipher node|noble] [--count N]
                  [--value-bytes N] [--sync-rounds N] [--no-encryption] [--json]

Profiles armdb on this machine in a new temporary store created under [dir] (default the OS
temporary directory; it must exist) and removed afterwards. The store is encrypted with a random
key held in memory only. Phases:
  put        --count puts of 16-byte keys and --value-bytes values (buffered, no sync)
  sync       one durability barrier over everything put
  sync rtt   --sync-rounds rounds of one put + sync: median and p99 latency
  hot get    every key read again after a first pass warmed the decrypted-page cache
  reopen     close and open again (recovery: hint files where present, else every page)
  cold get   every key in random order right after the reopen: armdb's cache is empty (the
             operating system's page cache may still hold the file bytes)

Options:
  --shards N            shards (default ${DEFAULTS.shards})
  --cache-bytes N       decrypted-page cache budget, 0 disables it (default ${DEFAULTS.cacheBytes})
  --cipher node|noble   page cipher provider (default node)
  --count N             records (default 100000)
  --value-bytes N       bytes per value (default 100)
  --sync-rounds N       put+sync rounds for sync latency (default 100)
  --no-encryption       measure an unencrypted (CRC-32) store instead
  --json                print the results as JSON
  -h, --help            show this help

Exit codes: 0 ok; 1 I/O error; 2 usage.`,
  async run(values, positionals) {
    const setup = benchSetup(values, positionals);
    const directory = fs.mkdtempSync(path.join(setup.base, 'armdb-bench-'));
    const key = new Uint8Array(randomBytes(32));
    const options = {
      keySize: 16,
      encryption: setup.encrypted ? { key } : ('none' as const),
      shards: setup.shards,
      cacheBytes: setup.cacheBytes,
      cipher: setup.cipher,
      syncIntervalMs: 0,
      autoCompact: false,
      maxValueBytes: Math.max(setup.valueBytes, DEFAULTS.maxValueBytes),
    };
    const value = new Uint8Array(randomBytes(setup.valueBytes));
    let db: VarMap | undefined;
    try {
      db = await VarMap.open(directory, options);
      const phases = await measureWrites(db, setup, value);
      let missing = 0;
      const hot = measureReads(db, 'hot get', setup.count, (index) => index);
      missing += hot.missing;
      await db.close();
      const started = performance.now();
      db = await VarMap.open(directory, options);
      phases.push(hot.phase, {
        name: 'reopen',
        shown: 'total',
        operations: 1,
        milliseconds: performance.now() - started,
        detail: `${db.size.toLocaleString('en-US')} keys`,
      });
      const order = shuffled(setup.count);
      const cold = measureReads(db, 'cold get', setup.count, (index) => order[index]!);
      missing += cold.missing;
      phases.push(cold.phase);
      assert(missing === 0, `bench: every key written is read back (${missing} reads found no value)`);
      const final = db.stats();
      await db.close();
      db = undefined;
      if (flag(values, 'json')) printJson(setup, phases, final);
      else printText(setup, phases, final);
      return 0;
    } finally {
      key.fill(0);
      await db?.close().catch(() => undefined);
      fs.rmSync(directory, { recursive: true, force: true });
    }
  },
};

interface BenchSetup {
  readonly base: string;
  readonly shards: number;
  readonly cacheBytes: number;
  readonly cipher: 'node' | 'noble';
  readonly count: number;
  readonly valueBytes: number;
  readonly syncRounds: number;
  readonly encrypted: boolean;
}

function benchSetup(values: OptionValues, positionals: string[]): BenchSetup {
  const base = positionals[0] ?? os.tmpdir();
  if (!fs.existsSync(base) || !fs.statSync(base).isDirectory()) throw new UsageError(`directory ${base} does not exist`);
  return {
    base,
    shards: integerOption(values, 'shards', 1, Limits.maxShards, DEFAULTS.shards),
    cacheBytes: integerOption(values, 'cache-bytes', 0, Number.MAX_SAFE_INTEGER, DEFAULTS.cacheBytes),
    cipher: choiceOption(values, 'cipher', ['node', 'noble'] as const, 'node'),
    count: integerOption(values, 'count', 1, 100_000_000, 100_000),
    valueBytes: integerOption(values, 'value-bytes', 0, Limits.maxValueBytes, 100),
    syncRounds: integerOption(values, 'sync-rounds', 1, 1_000_000, 100),
    encrypted: !flag(values, 'no-encryption'),
  };
}

/** put, one sync over all of it, then rounds of one put + sync. */
async function measureWrites(db: VarMap, setup: BenchSetup, value: Uint8Array): Promise<Phase[]> {
  const phases: Phase[] = [];
  let started = performance.now();
  for (let index = 0; index < setup.count; index++) db.put(benchKey(index), value);
  phases.push({ name: 'put', shown: 'rate', operations: setup.count, milliseconds: performance.now() - started });
  started = performance.now();
  await db.sync();
  const detail = `${setup.count.toLocaleString('en-US')} records`;
  phases.push({ name: 'sync', shown: 'total', operations: 1, milliseconds: performance.now() - started, detail });
  const latencies: number[] = [];
  for (let round = 0; round < setup.syncRounds; round++) {
    const roundStart = performance.now();
    db.put(benchKey(setup.count + round), value);
    await db.sync();
    latencies.push(performance.now() - roundStart);
  }
  latencies.sort((left, right) => left - right);
  phases.push({
    name: 'sync rtt',
    shown: 'each',
    operations: setup.syncRounds,
    milliseconds: latencies.reduce((sum, latency) => sum + latency, 0),
    detail: `median ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`,
  });
  return phases;
}

/**
 * Reads every key once in the order `keyAt` gives. A hot read is measured after a first pass that
 * warmed the cache; a cold one right after an open, with the cache empty.
 */
function measureReads(
  db: VarMap,
  name: 'hot get' | 'cold get',
  count: number,
  keyAt: (index: number) => number,
): { phase: Phase; missing: number } {
  let missing = 0;
  if (name === 'hot get') for (let index = 0; index < count; index++) if (db.get(benchKey(keyAt(index))) === undefined) missing++;
  const before = db.stats();
  const started = performance.now();
  for (let index = 0; index < count; index++) if (db.get(benchKey(keyAt(index))) === undefined) missing++;
  const milliseconds = performance.now() - started;
  const after = db.stats();
  const detail = `cache hits ${after.cacheHits - before.cacheHits}, misses ${after.cacheMisses - before.cacheMisses}`;
  return { phase: { name, shown: 'rate', operations: count, milliseconds, detail }, missing };
}

function printJson(setup: BenchSetup, phases: readonly Phase[], final: Stats): void {
  const { base: _base, ...shown } = setup;
  const report = {
    setup: { ...shown, totalBytes: final.totalBytes, files: final.files },
    phases: phases.map((phase) => ({ ...phase, opsPerSecond: opsPerSecond(phase) })),
  };
  print(JSON.stringify(report, null, 2));
}

function printText(setup: BenchSetup, phases: readonly Phase[], final: Stats): void {
  print(
    `armdb bench: ${setup.count.toLocaleString('en-US')} records of ${setup.valueBytes} bytes, ${setup.shards} shards, cache ${setup.cacheBytes.toLocaleString('en-US')} bytes, ` +
      `${setup.encrypted ? `AES-256-GCM (${setup.cipher})` : 'no encryption'}, ${byteSize(final.totalBytes)} on disk`,
  );
  for (const phase of phases) {
    const rate =
      phase.shown === 'rate'
        ? `${Math.round(opsPerSecond(phase)).toLocaleString('en-US').padStart(12)}/s`
        : `${(phase.shown === 'each' ? phase.milliseconds / phase.operations : phase.milliseconds).toFixed(2).padStart(12)} ms${phase.shown === 'each' ? ' avg' : ''}`;
    print(`  ${phase.name.padEnd(10)}${rate}${phase.detail === undefined ? '' : `   ${phase.detail}`}`);
  }
}
