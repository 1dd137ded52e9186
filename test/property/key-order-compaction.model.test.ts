/**
 * Key-order compaction of the Tree collections (docs/durability.md §Compaction): random writes and
 * deletes, compactions between them (explicit, with writes made while one runs, and background runs
 * after barriers when autoCompact is on), then every range
 * equals a plain sorted model's; after an explicit compact() every file's live records lie in key
 * order, so a second compact() with nothing written in between rewrites nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.js';
import { type RangeOptions, VarTree } from '../../src/index.js';
import { directoriesRemovedAfterEach } from '../helpers/temp-dir.js';

const KEY = new Uint8Array(32).fill(0x5a);
const makeDirectory = directoriesRemovedAfterEach(true);
const KEY_SIZE = 4;
const KEY_SPACE = 400;

const keyOf = (index: number): Uint8Array => Uint8Array.of(0, 0, index >> 8, index & 0xff);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const valueFor = (index: number, round: number, length: number): Uint8Array =>
  new Uint8Array(length).map((_, at) => (index * 31 + round * 7 + at) & 0xff);

/** The engine behind a collection (tests only). */
function engineOf(tree: VarTree): Engine {
  return (tree as unknown as { engine: Engine }).engine;
}

/** Files whose live records are out of key order, by walking the index in key order. */
function filesOutOfKeyOrder(tree: VarTree): number[] {
  const engine = engineOf(tree);
  const ordered = engine.ordered!;
  const last = new Map<number, number>();
  const unordered = new Set<number>();
  for (const handle of ordered.handles({})) {
    const fileId = ordered.fileIdOf(handle);
    const position = ordered.positionOf(handle);
    if ((last.get(fileId) ?? -1) > position) unordered.add(fileId);
    last.set(fileId, position);
  }
  return [...unordered];
}

type Step =
  | { kind: 'put'; key: number; length: number }
  | { kind: 'delete'; key: number }
  | { kind: 'compact' }
  | { kind: 'compactWhileWriting'; keys: number[] }
  | { kind: 'sync' }
  | { kind: 'reopen' };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      key: fc.nat(KEY_SPACE - 1),
      length: fc.oneof(fc.nat(120), fc.integer({ min: 3000, max: 9000 })),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(KEY_SPACE - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('compactWhileWriting' as const), keys: fc.array(fc.nat(KEY_SPACE - 1), { maxLength: 30 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

function modelRange(model: Map<string, Uint8Array>, options: RangeOptions): [string, string][] {
  const lower = options.gte === undefined ? '' : hex(options.gte);
  const upper = options.lt === undefined ? '\uffff' : hex(options.lt);
  const entries = [...model].filter(([key]) => key >= lower && key < upper).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (options.reverse === true) entries.reverse();
  return entries.slice(0, options.limit ?? Number.POSITIVE_INFINITY).map(([key, value]) => [key, hex(value)]);
}

function expectRangesEqual(tree: VarTree, model: Map<string, Uint8Array>, bounds: readonly [number, number][]): void {
  expect(tree.size).toBe(model.size);
  const whole = [...tree.range()].map(([key, value]) => [hex(key), hex(value)]);
  expect(whole).toEqual(modelRange(model, {}));
  for (const [from, to] of bounds) {
    for (const reverse of [false, true]) {
      const options: RangeOptions = { gte: keyOf(Math.min(from, to)), lt: keyOf(Math.max(from, to)), reverse, limit: 50 };
      expect([...tree.range(options)].map(([key, value]) => [hex(key), hex(value)])).toEqual(modelRange(model, options));
    }
  }
}

describe('key-order compaction (VarTree)', () => {
  it('every range equals the model after random writes, deletes and compactions; compact() leaves every file in key order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArbitrary, { minLength: 20, maxLength: 80 }),
        fc.array(fc.tuple(fc.nat(KEY_SPACE), fc.nat(KEY_SPACE)), { minLength: 3, maxLength: 6 }),
        fc.constantFrom(1, 3),
        fc.boolean(),
        async (steps, bounds, shards, autoCompact) => {
          const directory = makeDirectory('key-order');
          const options = {
            keySize: KEY_SIZE,
            encryption: { key: KEY },
            shards,
            syncIntervalMs: 0,
            maxFileBytes: 65536,
            autoCompact,
            compactionThreshold: 0.2,
          };
          let tree = await VarTree.open(directory, options);
          const model = new Map<string, Uint8Array>();
          try {
            for (const [round, step] of steps.entries()) {
              if (step.kind === 'put') {
                const value = valueFor(step.key, round, step.length);
                tree.put(keyOf(step.key), value);
                model.set(hex(keyOf(step.key)), value);
              } else if (step.kind === 'delete') {
                tree.delete(keyOf(step.key));
                model.delete(hex(keyOf(step.key)));
              } else if (step.kind === 'compact') {
                await tree.compact();
                expect(filesOutOfKeyOrder(tree)).toEqual([]);
                expectRangesEqual(tree, model, bounds);
                // Nothing written since: every file is in key order with nothing dead.
                expect((await tree.compact()).filesIn).toBe(0);
              } else if (step.kind === 'compactWhileWriting') {
                const running = tree.compact();
                for (const key of step.keys) {
                  const value = valueFor(key, round, 40);
                  tree.put(keyOf(key), value);
                  model.set(hex(keyOf(key)), value);
                  // Let compaction's slices run between writes.
                  await new Promise<void>((resolve) => setImmediate(resolve));
                }
                await running;
              } else if (step.kind === 'sync') {
                // With autoCompact, a barrier may start a background run (file order or key order).
                await tree.sync();
              } else {
                await tree.close();
                tree = await VarTree.open(directory, options);
              }
            }
            expectRangesEqual(tree, model, bounds);
            await tree.compact();
            expect(filesOutOfKeyOrder(tree)).toEqual([]);
            expectRangesEqual(tree, model, bounds);
            await tree.close();
            tree = await VarTree.open(directory, options);
            expectRangesEqual(tree, model, bounds);
            expect(filesOutOfKeyOrder(tree)).toEqual([]);
          } finally {
            await tree.close();
          }
        },
      ),
      { numRuns: 30, seed: 1616 },
    );
  }, 600_000);

  it('an explicit compact() rewrites random-order files with no dead bytes, in key order', async () => {
    const directory = makeDirectory('key-order');
    const options = { keySize: KEY_SIZE, encryption: { key: KEY }, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false };
    const tree = await VarTree.open(directory, options);
    try {
      // A fixed permutation of the key space: written in random order, never overwritten.
      const order = Array.from({ length: 3000 }, (_, index) => (index * 1237) % 3000);
      for (const index of order) tree.put(Uint8Array.of(0, index >> 16, (index >> 8) & 0xff, index & 0xff), valueFor(index, 0, 100));
      await tree.sync();
      expect(filesOutOfKeyOrder(tree).length).toBeGreaterThan(0);
      const report = await tree.compact();
      expect(report.filesIn).toBeGreaterThan(0);
      expect(report.recordsMoved).toBe(3000);
      expect(filesOutOfKeyOrder(tree)).toEqual([]);
      let expected = 0;
      for (const [key, value] of tree.range()) {
        expect(key).toEqual(Uint8Array.of(0, expected >> 16, (expected >> 8) & 0xff, expected & 0xff));
        expect(value).toEqual(valueFor(expected, 0, 100));
        expected++;
      }
      expect(expected).toBe(3000);
    } finally {
      await tree.close();
    }
  });
});
