/**
 * Batched scans of a VarTree (src/collections/scan-batch.ts) against a sorted Map model: `range`,
 * `keys` and `values` with random bounds, reverse and limit, stepped one entry at a time while puts,
 * inserts and deletes land between the steps (so between and inside read-ahead batches of every
 * size the scan reaches, 16 to 256 entries), over keys spread across the B+ tree and sorted runs
 * (tiny delta limits), with values in sealed pages, in the write buffer and across pages.
 *
 * Each step must hand out a key present at that moment with its value of that moment (reading ahead
 * never serves a stale value); the whole scan must be ordered, within bounds and limit, and hold every
 * key present throughout. Keys and values handed out are the caller's: writing into one changes
 * neither the store nor any other key or value handed out, and they keep their bytes through later
 * scans and writes.
 */
import fc from 'fast-check';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDeltaLimitsForTesting } from '../../src/index/ordered-index.js';
import { type RangeOptions, VarTree } from '../../src/index.js';
import { hex, patternBytes } from '../helpers/bytes.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const KEY = new Uint8Array(32).map((_, index) => (index * 11 + 5) & 0xff);
const KEY_SIZE = 2;
const keyArbitrary = fc.tuple(fc.nat(7), fc.nat(255)).map(([first, second]) => Uint8Array.of(first * 16, second));
/** Mostly small values (many per page), some across a page boundary or over several pages. */
const valueArbitrary = fc.record({
  length: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 200 }) },
    { weight: 1, arbitrary: fc.integer({ min: 3000, max: 9000 }) },
  ),
  seed: fc.nat(),
});
type ValueSpec = { length: number; seed: number };
const valueFor = (spec: ValueSpec): Uint8Array => patternBytes(spec.length, spec.seed);

const boundArbitrary = fc.option(fc.tuple(keyArbitrary, fc.boolean()), { nil: undefined });
const stepArbitrary = fc.record({
  write: fc.constantFrom('none', 'none', 'none', 'put', 'delete', 'insert', 'ahead', 'ahead'),
  key: keyArbitrary,
  /** For 'ahead': overwrite the key this many places ahead of the scan (likely read ahead already). */
  ahead: fc.oneof(fc.nat(3), fc.nat(40)),
  value: valueArbitrary,
  scribble: fc.boolean(),
});

/** What a step handed out: the arrays, their bytes then, and their bytes after any scribbling of the test's own. */
type Scanned = {
  key: Uint8Array | undefined;
  value: Uint8Array | undefined;
  keyHex: string | undefined;
  readValueHex: string | undefined;
  valueHex: string | undefined;
};

describe('VarTree batched scans against a sorted model', () => {
  beforeAll(() => setDeltaLimitsForTesting({ runKeys: 24, sliceKeys: 7, treeInsertKeys: 5, background: false }));
  afterAll(() => setDeltaLimitsForTesting(undefined));

  it('a value overwritten after the scan read it ahead is yielded as overwritten', async () => {
    const directory = makeTempDir('scan-batch-overwrite');
    const tree = await VarTree.open(directory, { keySize: KEY_SIZE, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0 });
    try {
      for (let index = 0; index < 100; index++) tree.put(Uint8Array.of(0, index), Uint8Array.of(1));
      await tree.sync();
      const entries = tree.range();
      entries.next();
      // Overwrites change no key, so the index does not move: the write sequence must drop the batch.
      tree.put(Uint8Array.of(0, 5), Uint8Array.of(2));
      const values = new Map([...entries].map(([key, value]) => [key[1]!, value[0]!]));
      expect(values.get(5)).toBe(2);
      expect(values.get(6)).toBe(1);
    } finally {
      await tree.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('a value that fails to read throws at its own step, as a single get would, and the scan goes on after it', async () => {
    const directory = makeTempDir('scan-batch-tamper');
    const options = { keySize: KEY_SIZE, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0, cacheBytes: 0 } as const;
    let tree = await VarTree.open(directory, options);
    try {
      // Keys in write order: one page holds a run of consecutive keys.
      for (let index = 0; index < 400; index++) tree.put(Uint8Array.of(index >> 8, index & 0xff), patternBytes(100, index));
      await tree.close();
      const shard = join(directory, readdirSync(directory).find((name) => statSync(join(directory, name)).isDirectory())!);
      const dataFile = join(shard, readdirSync(shard).find((name) => name.endsWith('.data'))!);
      const bytes = readFileSync(dataFile);
      bytes[4096 * 3 + 200] = bytes[4096 * 3 + 200]! ^ 0x40; // one ciphertext byte of a page in the middle
      writeFileSync(dataFile, bytes);
      tree = await VarTree.open(directory, options);
      // What stepping key by key gives: each key's value, or the error its read throws.
      const expected: string[] = [];
      for (let index = 0; index < 400; index++) {
        try {
          expected.push(hex(tree.get(Uint8Array.of(index >> 8, index & 0xff))!));
        } catch (error) {
          expected.push(`error ${(error as { code?: string }).code}`);
        }
      }
      expect(expected.filter((item) => item.startsWith('error')).length).toBeGreaterThan(0);
      const entries = tree.values();
      const scanned: string[] = [];
      for (;;) {
        try {
          const step = entries.next();
          if (step.done === true) break;
          scanned.push(hex(step.value));
        } catch (error) {
          scanned.push(`error ${(error as { code?: string }).code}`);
        }
      }
      expect(scanned).toEqual(expected);
    } finally {
      await tree.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('every step hands out a present key with its current value; ordered, bounded, complete; handed-out bytes are the caller’s', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(keyArbitrary, valueArbitrary), { selector: ([key]) => hex(key), maxLength: 700 }),
        fc.boolean(),
        fc.record({
          kind: fc.constantFrom('range', 'keys', 'values'),
          lower: boundArbitrary,
          upper: boundArbitrary,
          reverse: fc.boolean(),
          limit: fc.option(fc.nat(800), { nil: undefined }),
        }),
        fc.array(stepArbitrary, { maxLength: 900 }),
        async (initial, sync, scan, steps) => {
          const directory = makeTempDir(`scan-batch-${run++}`);
          const tree = await VarTree.open(directory, { keySize: KEY_SIZE, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0 });
          try {
            const model = new Map<string, Uint8Array>();
            for (const [key, spec] of initial) {
              tree.put(key, valueFor(spec));
              model.set(hex(key), valueFor(spec));
            }
            // Sealed pages in the cache, or (without a sync) partly in the write buffer.
            if (sync) await tree.sync();
            const options: { -readonly [K in keyof RangeOptions]: RangeOptions[K] } = { reverse: scan.reverse };
            if (scan.lower !== undefined) options[scan.lower[1] ? 'gt' : 'gte'] = scan.lower[0];
            if (scan.upper !== undefined) options[scan.upper[1] ? 'lt' : 'lte'] = scan.upper[0];
            if (scan.limit !== undefined) options.limit = scan.limit;
            const inBounds = (keyHex: string): boolean =>
              (scan.lower === undefined || (scan.lower[1] ? keyHex > hex(scan.lower[0]) : keyHex >= hex(scan.lower[0]))) &&
              (scan.upper === undefined || (scan.upper[1] ? keyHex < hex(scan.upper[0]) : keyHex <= hex(scan.upper[0])));
            const touched = new Set(steps.filter((step) => step.write !== 'none').map((step) => hex(step.key)));
            const presentThroughout = [...model.keys()].filter((keyHex) => !touched.has(keyHex) && inBounds(keyHex));

            const iterator = scan.kind === 'range' ? tree.range(options) : scan.kind === 'keys' ? tree.keys(options) : tree.values(options);
            const scanned: Scanned[] = [];
            const yieldedKeys: string[] = [];
            for (let stepIndex = 0; ; stepIndex++) {
              const result = iterator.next();
              if (result.done === true) break;
              const item = result.value;
              const key =
                scan.kind === 'range' ? (item as [Uint8Array, Uint8Array])[0] : scan.kind === 'keys' ? (item as Uint8Array) : undefined;
              const value =
                scan.kind === 'range' ? (item as [Uint8Array, Uint8Array])[1] : scan.kind === 'values' ? (item as Uint8Array) : undefined;
              if (key !== undefined) {
                const keyHex = hex(key);
                // Present now, with its value of now.
                expect(model.has(keyHex)).toBe(true);
                if (value !== undefined) expect(hex(value)).toBe(hex(model.get(keyHex)!));
                yieldedKeys.push(keyHex);
              }
              const entry: Scanned = {
                key,
                value,
                keyHex: key && hex(key),
                readValueHex: value && hex(value),
                valueHex: value && hex(value),
              };
              scanned.push(entry);
              const step = steps[stepIndex];
              if (step === undefined) continue;
              if (step.scribble && value !== undefined && value.length > 0) {
                // The caller writes into a value it was handed: its own bytes only.
                value.fill(0xa5);
                entry.valueHex = hex(value);
              }
              const stepKey = hex(step.key);
              if (step.write === 'ahead') {
                if (key === undefined) continue;
                const keyHex = hex(key);
                const later = [...model.keys()].filter((other) => (scan.reverse ? other < keyHex : other > keyHex)).sort();
                if (scan.reverse) later.reverse();
                const target = later[Math.min(step.ahead, later.length - 1)];
                if (target === undefined) continue;
                tree.put(Uint8Array.from(Buffer.from(target, 'hex')), valueFor(step.value));
                model.set(target, valueFor(step.value));
              } else if (step.write === 'put' || (step.write === 'insert' && !model.has(stepKey))) {
                tree.put(step.key, valueFor(step.value));
                model.set(stepKey, valueFor(step.value));
              } else if (step.write === 'delete') {
                tree.delete(step.key);
                model.delete(stepKey);
              }
            }
            if (scan.limit !== undefined) expect(scanned.length).toBeLessThanOrEqual(scan.limit);
            if (scan.kind !== 'values') {
              for (let at = 1; at < yieldedKeys.length; at++)
                expect(scan.reverse ? yieldedKeys[at - 1]! > yieldedKeys[at]! : yieldedKeys[at - 1]! < yieldedKeys[at]!).toBe(true);
              for (const keyHex of yieldedKeys) expect(inBounds(keyHex)).toBe(true);
              if (scan.limit === undefined || scanned.length < scan.limit) {
                const yieldedSet = new Set(yieldedKeys);
                for (const keyHex of presentThroughout) expect(yieldedSet.has(keyHex)).toBe(true);
              }
            } else if (steps.every((step) => step.write === 'none')) {
              // Without writes, values come in key order: compare with the model's.
              const expected = [...model.keys()].filter(inBounds).sort();
              if (scan.reverse) expected.reverse();
              const wanted = expected.slice(0, scan.limit ?? expected.length).map((keyHex) => hex(model.get(keyHex)!));
              expect(scanned.map((entry) => entry.readValueHex)).toEqual(wanted);
            }

            // The store still holds the model (a scribbled value was a copy), and a full scan says so.
            const full = [...tree.range()].map(([key, value]) => [hex(key), hex(value)]);
            expect(full).toEqual(
              [...model.entries()].sort(([left], [right]) => (left < right ? -1 : 1)).map(([keyHex, value]) => [keyHex, hex(value)]),
            );
            for (const [index, [key]] of initial.entries()) if (index % 7 === 0) tree.put(key, patternBytes(60, index));
            for (const _ of tree.range({ reverse: true })) void _;
            // Every key and value handed out kept its bytes through all of that.
            for (const entry of scanned) {
              if (entry.key !== undefined) expect(hex(entry.key)).toBe(entry.keyHex);
              if (entry.value !== undefined) expect(hex(entry.value)).toBe(entry.valueHex);
            }
          } finally {
            await tree.close();
            await rm(directory, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60, seed: 31 },
    );
  }, 600_000);
});
