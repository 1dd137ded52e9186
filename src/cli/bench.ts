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
import { byteSize, choiceOption, flag, integerOption, print, UsageError, type Command } from './command.js';

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
    const base = positionals[0] ?? os.tmpdir();
    if (!fs.existsSync(base) || !fs.statSync(base).isDirectory()) throw new UsageError(`directory ${base} does not exist`);
    const shards = integerOption(values, 'shards', 1, Limits.maxShards, DEFAULTS.shards);
    const cacheBytes = integerOption(values, 'cache-bytes', 0, Number.MAX_SAFE_INTEGER, DEFAULTS.cacheBytes);
    const cipher = choiceOption(values, 'cipher', ['node', 'noble'] as const, 'node');
    const count = integerOption(values, 'count', 1, 100_000_000, 100_000);
    const valueBytes = integerOption(values, 'value-bytes', 0, Limits.maxValueBytes, 100);
    const syncRounds = integerOption(values, 'sync-rounds', 1, 1_000_000, 100);
    const encrypted = !flag(values, 'no-encryption');

    const directory = fs.mkdtempSync(path.join(base, 'armdb-bench-'));
    const key = new Uint8Array(randomBytes(32));
    const options = {
      keySize: 16,
      encryption: encrypted ? { key } : ('none' as const),
      shards,
      cacheBytes,
      cipher,
      syncIntervalMs: 0,
      autoCompact: false,
      maxValueBytes: Math.max(valueBytes, DEFAULTS.maxValueBytes),
    };
    const phases: Phase[] = [];
    const value = new Uint8Array(randomBytes(valueBytes));
    let db: VarMap | undefined;
    try {
      db = await VarMap.open(directory, options);
      let started = performance.now();
      for (let index = 0; index < count; index++) db.put(benchKey(index), value);
      phases.push({ name: 'put', shown: 'rate', operations: count, milliseconds: performance.now() - started });

      started = performance.now();
      await db.sync();
      phases.push({
        name: 'sync',
        shown: 'total',
        operations: 1,
        milliseconds: performance.now() - started,
        detail: `${count.toLocaleString('en-US')} records`,
      });

      const latencies: number[] = [];
      for (let round = 0; round < syncRounds; round++) {
        const roundStart = performance.now();
        db.put(benchKey(count + round), value);
        await db.sync();
        latencies.push(performance.now() - roundStart);
      }
      latencies.sort((left, right) => left - right);
      phases.push({
        name: 'sync rtt',
        shown: 'each',
        operations: syncRounds,
        milliseconds: latencies.reduce((sum, latency) => sum + latency, 0),
        detail: `median ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`,
      });

      let missing = 0;
      for (let index = 0; index < count; index++) if (db.get(benchKey(index)) === undefined) missing++;
      const warmStats = db.stats();
      started = performance.now();
      for (let index = 0; index < count; index++) if (db.get(benchKey(index)) === undefined) missing++;
      const hotMs = performance.now() - started;
      const hotStats = db.stats();
      phases.push({
        name: 'hot get',
        shown: 'rate',
        operations: count,
        milliseconds: hotMs,
        detail: `cache hits ${hotStats.cacheHits - warmStats.cacheHits}, misses ${hotStats.cacheMisses - warmStats.cacheMisses}`,
      });

      await db.close();
      started = performance.now();
      db = await VarMap.open(directory, options);
      phases.push({
        name: 'reopen',
        shown: 'total',
        operations: 1,
        milliseconds: performance.now() - started,
        detail: `${db.size.toLocaleString('en-US')} keys`,
      });

      const order = shuffled(count);
      started = performance.now();
      for (let index = 0; index < count; index++) if (db.get(benchKey(order[index]!)) === undefined) missing++;
      const coldMs = performance.now() - started;
      const coldStats = db.stats();
      phases.push({
        name: 'cold get',
        shown: 'rate',
        operations: count,
        milliseconds: coldMs,
        detail: `cache hits ${coldStats.cacheHits}, misses ${coldStats.cacheMisses}`,
      });
      assert(missing === 0, `bench: every key written is read back (${missing} reads found no value)`);
      const final = db.stats();
      await db.close();
      db = undefined;

      const setup = {
        shards,
        cacheBytes,
        cipher,
        encrypted,
        count,
        valueBytes,
        syncRounds,
        totalBytes: final.totalBytes,
        files: final.files,
      };
      if (flag(values, 'json')) {
        print(JSON.stringify({ setup, phases: phases.map((phase) => ({ ...phase, opsPerSecond: opsPerSecond(phase) })) }, null, 2));
      } else {
        print(
          `armdb bench: ${count.toLocaleString('en-US')} records of ${valueBytes} bytes, ${shards} shards, cache ${cacheBytes.toLocaleString('en-US')} bytes, ` +
            `${encrypted ? `AES-256-GCM (${cipher})` : 'no encryption'}, ${byteSize(final.totalBytes)} on disk`,
        );
        for (const phase of phases) {
          const rate =
            phase.shown === 'rate'
              ? `${Math.round(opsPerSecond(phase)).toLocaleString('en-US').padStart(12)}/s`
              : `${(phase.shown === 'each' ? phase.milliseconds / phase.operations : phase.milliseconds).toFixed(2).padStart(12)} ms${phase.shown === 'each' ? ' avg' : ''}`;
          print(`  ${phase.name.padEnd(10)}${rate}${phase.detail === undefined ? '' : `   ${phase.detail}`}`);
        }
      }
      return 0;
    } finally {
      key.fill(0);
      await db?.close().catch(() => undefined);
      fs.rmSync(directory, { recursive: true, force: true });
    }
  },
};
