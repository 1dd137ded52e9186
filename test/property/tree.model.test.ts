/**
 * Model-based property tests of the ordered collections (VarTree, ConstTree with valueSize 4): random
 * sequences of mutations (put, insert, delete, cas, update, fetchUpdate, atomic, sync, close + reopen)
 * over a small key space (16 keys of 2 bytes sharing first bytes, so collisions and shared prefixes
 * are frequent), interleaved with queries (range/keys/values with every kind of bound, reverse and
 * limit; prefix of 0, 1 and 2 bytes; first, last, size, get/has of every key) checked against a Map
 * model. Deterministic seeds; shards 1 and 3 alternate between runs; maxFileBytes 65536 in about half
 * of the runs, with bursts of 4000-byte values so that data files do rotate. A second pair of
 * properties uses a 1024-key space with bulk puts/deletes so that B+ tree leaves split and empty.
 */
import fc from 'fast-check';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDeltaLimitsForTesting } from '../../src/index/ordered-index.js';
import { ConstTree, VarTree, type OrderedCollection, type RangeOptions } from '../../src/index.js';
import { hex, patternBytes } from '../helpers/bytes.js';
import { expectCode } from '../helpers/errors.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const KEY = new Uint8Array(32).map((_, index) => (index * 7 + 3) & 0xff);
const FIRST_BYTES = [0x00, 0x10, 0x11, 0xff] as const;
const SECOND_BYTES = [0x00, 0x01, 0x80, 0xff] as const;
/** The 16 keys mutations use: 4 first bytes × 4 second bytes. */
const KEY_SPACE: readonly Uint8Array[] = FIRST_BYTES.flatMap((first) => SECOND_BYTES.map((second) => Uint8Array.of(first, second)));
/** Bounds that are not in the key space (between, below and above stored keys). */
const EXTRA_BOUNDS: readonly Uint8Array[] = [
  Uint8Array.of(0x00, 0x7f),
  Uint8Array.of(0x05, 0x00),
  Uint8Array.of(0x10, 0x02),
  Uint8Array.of(0x11, 0xfe),
  Uint8Array.of(0x12, 0x00),
  Uint8Array.of(0xfe, 0xff),
];
const ALL_BOUNDS = [...KEY_SPACE, ...EXTRA_BOUNDS];
const PREFIXES: readonly Uint8Array[] = [
  new Uint8Array(0),
  ...FIRST_BYTES.map((first) => Uint8Array.of(first)),
  Uint8Array.of(0x01),
  Uint8Array.of(0x12),
  Uint8Array.of(0x10, 0x80),
  Uint8Array.of(0x11, 0x00),
  Uint8Array.of(0x10, 0x02),
];

// ---- operations ----------------------------------------------------------------------------------

/** A value drawn as (length, seed): small or page-crossing for VarTree; the length is ignored by ConstTree. */
interface ValueSpec {
  readonly length: number;
  readonly seed: number;
}
type TxOp =
  | { readonly t: 'put'; readonly second: number; readonly value: ValueSpec }
  | { readonly t: 'insert'; readonly second: number; readonly value: ValueSpec }
  | { readonly t: 'delete'; readonly second: number }
  | { readonly t: 'get'; readonly second: number }
  | { readonly t: 'has'; readonly second: number };
type BoundKind = 'none' | 'exclusive' | 'inclusive';
type Op =
  | { readonly t: 'put'; readonly key: number; readonly value: ValueSpec }
  | { readonly t: 'insert'; readonly key: number; readonly value: ValueSpec }
  | { readonly t: 'delete'; readonly key: number }
  | { readonly t: 'cas'; readonly key: number; readonly matching: boolean; readonly other: ValueSpec; readonly next: ValueSpec }
  | { readonly t: 'update'; readonly key: number; readonly fetch: boolean; readonly next: ValueSpec | undefined }
  | { readonly t: 'atomic'; readonly first: number; readonly anchor: number; readonly ops: readonly TxOp[]; readonly abort: boolean }
  | { readonly t: 'sync' }
  | { readonly t: 'reopen' }
  /** 20 puts of 4000-byte values (VarTree): crosses maxFileBytes 65536 within a few of these. */
  | { readonly t: 'fill'; readonly seed: number }
  | {
      readonly t: 'range';
      readonly kind: 'range' | 'keys' | 'values';
      readonly lower: BoundKind;
      readonly lowerKey: number;
      readonly upper: BoundKind;
      readonly upperKey: number;
      readonly reverse: boolean | undefined;
      readonly limit: number | undefined;
    }
  | { readonly t: 'prefix'; readonly prefix: number; readonly reverse: boolean; readonly limit: number | undefined }
  | { readonly t: 'point' };

const valueArbitrary: fc.Arbitrary<ValueSpec> = fc.record({
  length: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 24 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 5000 }) },
  ),
  seed: fc.nat(1000),
});
const keyIndex = fc.integer({ min: 0, max: KEY_SPACE.length - 1 });
const secondIndex = fc.integer({ min: 0, max: SECOND_BYTES.length - 1 });
const limitArbitrary = fc.constantFrom<number | undefined>(undefined, 0, 1, 2, 5);
const boundKind = fc.constantFrom<BoundKind>('none', 'exclusive', 'inclusive');
const boundIndex = fc.integer({ min: 0, max: ALL_BOUNDS.length - 1 });

const txOpArbitrary: fc.Arbitrary<TxOp> = fc.oneof(
  fc.record({ t: fc.constant('put' as const), second: secondIndex, value: valueArbitrary }),
  fc.record({ t: fc.constant('insert' as const), second: secondIndex, value: valueArbitrary }),
  fc.record({ t: fc.constant('delete' as const), second: secondIndex }),
  fc.record({ t: fc.constant('get' as const), second: secondIndex }),
  fc.record({ t: fc.constant('has' as const), second: secondIndex }),
);

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('put' as const), key: keyIndex, value: valueArbitrary }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('insert' as const), key: keyIndex, value: valueArbitrary }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('delete' as const), key: keyIndex }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('cas' as const),
      key: keyIndex,
      matching: fc.boolean(),
      other: valueArbitrary,
      next: valueArbitrary,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('update' as const),
      key: keyIndex,
      fetch: fc.boolean(),
      next: fc.option(valueArbitrary, { nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('atomic' as const),
      first: fc.integer({ min: 0, max: FIRST_BYTES.length - 1 }),
      anchor: secondIndex,
      ops: fc.array(txOpArbitrary, { maxLength: 6 }),
      abort: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'sync' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fill' as const), seed: fc.nat(1000) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('range' as const),
      kind: fc.constantFrom('range' as const, 'keys' as const, 'values' as const),
      lower: boundKind,
      lowerKey: boundIndex,
      upper: boundKind,
      upperKey: boundIndex,
      reverse: fc.constantFrom<boolean | undefined>(undefined, false, true),
      limit: limitArbitrary,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('prefix' as const),
      prefix: fc.integer({ min: 0, max: PREFIXES.length - 1 }),
      reverse: fc.boolean(),
      limit: limitArbitrary,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'point' as const }) },
);

// ---- the model -----------------------------------------------------------------------------------

/** Sorted [keyHex, valueHex] of the model within bounds. */
function modelRange(
  model: ReadonlyMap<string, string>,
  filter: (keyHex: string) => boolean,
  reverse: boolean,
  limit: number | undefined,
): [string, string][] {
  const entries = [...model].filter(([key]) => filter(key)).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
  if (reverse) entries.reverse();
  return limit === undefined ? entries : entries.slice(0, limit);
}

function rangeFilter(options: RangeOptions): (keyHex: string) => boolean {
  const gt = options.gt === undefined ? undefined : hex(options.gt);
  const gte = options.gte === undefined ? undefined : hex(options.gte);
  const lt = options.lt === undefined ? undefined : hex(options.lt);
  const lte = options.lte === undefined ? undefined : hex(options.lte);
  return (key) =>
    (gt === undefined || key > gt) &&
    (gte === undefined || key >= gte) &&
    (lt === undefined || key < lt) &&
    (lte === undefined || key <= lte);
}

function rangeOptions(
  lower: BoundKind,
  lowerKey: Uint8Array,
  upper: BoundKind,
  upperKey: Uint8Array,
  reverse: boolean | undefined,
  limit: number | undefined,
): RangeOptions {
  const options: { gt?: Uint8Array; gte?: Uint8Array; lt?: Uint8Array; lte?: Uint8Array; reverse?: boolean; limit?: number } = {};
  if (lower === 'exclusive') options.gt = lowerKey.slice();
  if (lower === 'inclusive') options.gte = lowerKey.slice();
  if (upper === 'exclusive') options.lt = upperKey.slice();
  if (upper === 'inclusive') options.lte = upperKey.slice();
  if (reverse !== undefined) options.reverse = reverse;
  if (limit !== undefined) options.limit = limit;
  return options;
}

type Tree = OrderedCollection<Uint8Array>;

interface Flavour {
  readonly name: string;
  /** The stored bytes of a drawn value. */
  value(spec: ValueSpec): Uint8Array;
  open(directory: string, config: RunConfig): Promise<Tree>;
}

interface RunConfig {
  readonly shards: number;
  readonly shardPrefixBits: number;
  readonly maxFileBytes: number | undefined;
  readonly writeBufferBytes: number | undefined;
  readonly cacheBytes: number | undefined;
}

function baseOptions(config: RunConfig): {
  keySize: number;
  encryption: { key: Uint8Array };
  syncIntervalMs: number;
  shards: number;
  shardPrefixBits: number;
  maxFileBytes?: number;
  writeBufferBytes?: number;
  cacheBytes?: number;
} {
  return {
    keySize: 2,
    encryption: { key: KEY },
    syncIntervalMs: 0,
    shards: config.shards,
    shardPrefixBits: config.shardPrefixBits,
    ...(config.maxFileBytes === undefined ? {} : { maxFileBytes: config.maxFileBytes }),
    ...(config.writeBufferBytes === undefined ? {} : { writeBufferBytes: config.writeBufferBytes }),
    ...(config.cacheBytes === undefined ? {} : { cacheBytes: config.cacheBytes }),
  };
}

const VAR_TREE: Flavour = {
  name: 'VarTree',
  value: (spec) => patternBytes(spec.length, spec.seed),
  open: (directory, config) => VarTree.open(directory, baseOptions(config)),
};

const CONST_TREE: Flavour = {
  name: 'ConstTree',
  // Only a few distinct 4-byte values, so cas with a "different" expected value may still match.
  value: (spec) => patternBytes(4, spec.seed % 7),
  open: (directory, config) => ConstTree.open(directory, { ...baseOptions(config), valueSize: 4 }),
};

const entryHex = ([key, value]: [Uint8Array, Uint8Array]): [string, string] => [hex(key), hex(value)];

/** Every query of the tree against the model. */
function checkQuery(tree: Tree, model: ReadonlyMap<string, string>, op: Op & { t: 'range' | 'prefix' | 'point' }): void {
  if (op.t === 'range') {
    const options = rangeOptions(op.lower, ALL_BOUNDS[op.lowerKey]!, op.upper, ALL_BOUNDS[op.upperKey]!, op.reverse, op.limit);
    const expected = modelRange(model, rangeFilter(options), op.reverse === true, op.limit);
    if (op.kind === 'range') expect([...tree.range(options)].map(entryHex)).toEqual(expected);
    else if (op.kind === 'keys') expect([...tree.keys(options)].map(hex)).toEqual(expected.map(([key]) => key));
    else expect([...tree.values(options)].map(hex)).toEqual(expected.map(([, value]) => value));
    return;
  }
  if (op.t === 'prefix') {
    const prefix = PREFIXES[op.prefix]!;
    const prefixHex = hex(prefix);
    const options = op.limit === undefined ? { reverse: op.reverse } : { reverse: op.reverse, limit: op.limit };
    expect([...tree.prefix(prefix, options)].map(entryHex)).toEqual(
      modelRange(model, (key) => key.startsWith(prefixHex), op.reverse, op.limit),
    );
    return;
  }
  checkEverything(tree, model);
}

/** size, first, last, get/has of every key, whole-tree iteration both ways. */
function checkEverything(tree: Tree, model: ReadonlyMap<string, string>): void {
  const sorted = modelRange(model, () => true, false, undefined);
  expect(tree.size).toBe(model.size);
  expect(tree.isEmpty()).toBe(model.size === 0);
  const first = tree.first();
  const last = tree.last();
  expect(first === undefined ? undefined : entryHex(first)).toEqual(sorted[0]);
  expect(last === undefined ? undefined : entryHex(last)).toEqual(sorted.at(-1));
  for (const key of KEY_SPACE) {
    const value = tree.get(key);
    expect(value === undefined ? undefined : hex(value), `get ${hex(key)}`).toBe(model.get(hex(key)));
    expect(tree.has(key)).toBe(model.has(hex(key)));
  }
  for (const bound of EXTRA_BOUNDS) expect(tree.get(bound)).toBeUndefined();
  expect([...tree.range()].map(entryHex)).toEqual(sorted);
  expect([...tree.keys({ reverse: true })].map(hex)).toEqual(sorted.map(([key]) => key).reverse());
  expect([...tree.values()].map(hex)).toEqual(sorted.map(([, value]) => value));
}

/** Every combination of lower/upper bound kinds, both directions, several limits. */
function checkAllBoundCombinations(tree: Tree, model: ReadonlyMap<string, string>, lowerKey: Uint8Array, upperKey: Uint8Array): void {
  const kinds: BoundKind[] = ['none', 'exclusive', 'inclusive'];
  for (const lower of kinds) {
    for (const upper of kinds) {
      for (const reverse of [false, true]) {
        for (const limit of [undefined, 0, 1, 3]) {
          const options = rangeOptions(lower, lowerKey, upper, upperKey, reverse, limit);
          const expected = modelRange(model, rangeFilter(options), reverse, limit);
          expect([...tree.range(options)].map(entryHex), JSON.stringify({ lower, upper, reverse, limit })).toEqual(expected);
          expect([...tree.keys(options)].map(hex)).toEqual(expected.map(([key]) => key));
        }
      }
    }
  }
}

/** Runs one sequence; returns how many data-file rotations happened (coverage of maxFileBytes). */
async function runModel(
  flavour: Flavour,
  config: RunConfig,
  ops: readonly Op[],
  finalBounds: readonly [number, number][],
): Promise<number> {
  const directory = makeTempDir('tree-model');
  let tree: Tree | undefined;
  let rotations = 0;
  try {
    tree = await flavour.open(directory, config);
    const model = new Map<string, string>();
    for (const op of ops) {
      const current: Tree = tree;
      switch (op.t) {
        case 'put': {
          const key = KEY_SPACE[op.key]!;
          const value = flavour.value(op.value);
          current.put(key, value);
          model.set(hex(key), hex(value));
          break;
        }
        case 'insert': {
          const key = KEY_SPACE[op.key]!;
          const value = flavour.value(op.value);
          if (model.has(hex(key))) expectCode(() => current.insert(key, value), 'ARMDB_KEY_EXISTS');
          else {
            current.insert(key, value);
            model.set(hex(key), hex(value));
          }
          break;
        }
        case 'delete': {
          const key = KEY_SPACE[op.key]!;
          expect(current.delete(key)).toBe(model.delete(hex(key)));
          break;
        }
        case 'cas': {
          const key = KEY_SPACE[op.key]!;
          const stored = model.get(hex(key));
          const next = flavour.value(op.next);
          const expected = op.matching && stored !== undefined ? Uint8Array.from(Buffer.from(stored, 'hex')) : flavour.value(op.other);
          if (stored === undefined) expectCode(() => current.cas(key, expected, next), 'ARMDB_KEY_NOT_FOUND');
          else if (hex(expected) !== stored) expectCode(() => current.cas(key, expected, next), 'ARMDB_CAS_MISMATCH');
          else {
            current.cas(key, expected, next);
            model.set(hex(key), hex(next));
          }
          break;
        }
        case 'update': {
          const key = KEY_SPACE[op.key]!;
          const stored = model.get(hex(key));
          const next = op.next === undefined ? undefined : flavour.value(op.next);
          const seen: string[] = [];
          const fn = (value: Uint8Array): Uint8Array | undefined => {
            seen.push(hex(value));
            return next;
          };
          const result = op.fetch ? current.fetchUpdate(key, fn) : current.update(key, fn);
          if (stored === undefined) {
            expect(seen).toEqual([]);
            expect(result).toBeUndefined();
            break;
          }
          expect(seen).toEqual([stored]);
          const now = next === undefined ? stored : hex(next);
          expect(result === undefined ? undefined : hex(result)).toBe(op.fetch ? stored : now);
          model.set(hex(key), now);
          break;
        }
        case 'atomic': {
          const first = FIRST_BYTES[op.first]!;
          const keyOf = (second: number): Uint8Array => Uint8Array.of(first, SECOND_BYTES[second]!);
          const staged = new Map(model);
          const sentinel = new Error('abort the transaction');
          const run = (): string =>
            current.atomic(keyOf(op.anchor), (tx) => {
              for (const txOp of op.ops) {
                const key = keyOf(txOp.second);
                const keyHex = hex(key);
                switch (txOp.t) {
                  case 'put': {
                    const value = flavour.value(txOp.value);
                    tx.put(key, value);
                    staged.set(keyHex, hex(value));
                    break;
                  }
                  case 'insert': {
                    const value = flavour.value(txOp.value);
                    if (staged.has(keyHex)) expectCode(() => tx.insert(key, value), 'ARMDB_KEY_EXISTS');
                    else {
                      tx.insert(key, value);
                      staged.set(keyHex, hex(value));
                    }
                    break;
                  }
                  case 'delete':
                    expect(tx.delete(key)).toBe(staged.delete(keyHex));
                    break;
                  case 'get': {
                    const value = tx.get(key);
                    expect(value === undefined ? undefined : hex(value)).toBe(staged.get(keyHex));
                    break;
                  }
                  case 'has':
                    expect(tx.has(key)).toBe(staged.has(keyHex));
                    break;
                }
              }
              if (op.abort) throw sentinel;
              return 'done';
            });
          if (op.abort) {
            expect(run).toThrow(sentinel);
          } else {
            expect(run()).toBe('done');
            model.clear();
            for (const [key, value] of staged) model.set(key, value);
          }
          break;
        }
        case 'sync':
          await current.sync();
          break;
        case 'fill':
          for (let index = 0; index < 20; index++) {
            const key = KEY_SPACE[(op.seed + index * 5) % KEY_SPACE.length]!;
            const value = flavour.value({ length: 4000, seed: op.seed + index });
            current.put(key, value);
            model.set(hex(key), hex(value));
          }
          break;
        case 'reopen':
          rotations += current.stats().rotations;
          await current.close();
          tree = undefined;
          tree = await flavour.open(directory, config);
          checkEverything(tree, model);
          break;
        default:
          checkQuery(current, model, op);
      }
    }
    checkEverything(tree, model);
    for (const [lower, upper] of finalBounds) checkAllBoundCombinations(tree, model, ALL_BOUNDS[lower]!, ALL_BOUNDS[upper]!);
    rotations += tree.stats().rotations;
    await tree.close();
    tree = undefined;
    // What was written survives a clean close.
    tree = await flavour.open(directory, config);
    checkEverything(tree, model);
    return rotations;
  } finally {
    await tree?.close().catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  }
}

const runArbitrary = fc.record({
  maxFileBytes: fc.constantFrom<number | undefined>(undefined, 65_536),
  writeBufferBytes: fc.constantFrom<number | undefined>(undefined, 4096),
  cacheBytes: fc.constantFrom<number | undefined>(undefined, 0),
  ops: fc.array(opArbitrary, { maxLength: 80 }),
  finalBounds: fc.array(fc.tuple(boundIndex, boundIndex), { minLength: 1, maxLength: 2 }),
});

for (const flavour of [VAR_TREE, CONST_TREE]) {
  // Concurrent: the runs wait mostly on fsync, so the four properties overlap well.
  describe.concurrent(`${flavour.name} against a sorted-map model`, () => {
    for (const [shards, seed] of [
      [1, 101],
      [3, 202],
    ] as const) {
      it(`random mutations and queries, shards ${shards}`, async () => {
        let rotations = 0;
        await fc.assert(
          fc.asyncProperty(runArbitrary, async ({ maxFileBytes, writeBufferBytes, cacheBytes, ops, finalBounds }) => {
            // With several shards, shardPrefixBits 8 routes keys that share a first byte to one shard (atomic needs it).
            const config: RunConfig = { shards, shardPrefixBits: shards === 1 ? 0 : 8, maxFileBytes, writeBufferBytes, cacheBytes };
            rotations += await runModel(flavour, config, ops, finalBounds);
          }),
          { numRuns: 50, seed: flavour === VAR_TREE ? seed : seed + 1 },
        );
        // Some runs did rotate data files (maxFileBytes 65536 with large values).
        if (flavour === VAR_TREE) expect(rotations).toBeGreaterThan(0);
      });
    }
  });
}

// ---- a larger key space: bulk mutations that split and empty B+ tree leaves, across reopen -------

type BulkOp =
  | { readonly t: 'bulkPut'; readonly start: number; readonly count: number; readonly stride: number; readonly seed: number }
  | { readonly t: 'bulkDelete'; readonly start: number; readonly count: number; readonly stride: number }
  | { readonly t: 'reopen' }
  /** Lets the event loop turn: background merge steps of the ordered index run. */
  | { readonly t: 'turn'; readonly turns: number }
  /** Walks keys() while putting and deleting between its steps, turns of the event loop among them. */
  | {
      readonly t: 'iterate';
      readonly reverse: boolean;
      readonly mutations: readonly { readonly remove: boolean; readonly n: number }[];
      readonly turnEvery: number;
    }
  | {
      readonly t: 'query';
      readonly lower: BoundKind;
      readonly lowerKey: number;
      readonly upper: BoundKind;
      readonly upperKey: number;
      /** Take the bounds from the stored keys (by position) rather than from the whole key space. */
      readonly boundsFromModel: boolean;
      readonly reverse: boolean;
      readonly limit: number | undefined;
      readonly prefix: number;
    };

const WIDE_KEYS = 1024; // first byte 0..3, second byte anything
const wideKey = (n: number): Uint8Array => Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
const wideIndex = fc.integer({ min: 0, max: WIDE_KEYS + 16 }); // a little past the end: bounds above every key

const bulkOpArbitrary: fc.Arbitrary<BulkOp> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('bulkPut' as const),
      start: fc.integer({ min: 0, max: WIDE_KEYS - 1 }),
      count: fc.integer({ min: 1, max: 300 }),
      stride: fc.integer({ min: 1, max: 5 }),
      seed: fc.nat(1000),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('bulkDelete' as const),
      start: fc.integer({ min: 0, max: WIDE_KEYS - 1 }),
      count: fc.integer({ min: 1, max: 300 }),
      stride: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('turn' as const), turns: fc.integer({ min: 1, max: 20 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('iterate' as const),
      reverse: fc.boolean(),
      mutations: fc.array(fc.record({ remove: fc.boolean(), n: fc.integer({ min: 0, max: WIDE_KEYS - 1 }) }), { maxLength: 200 }),
      turnEvery: fc.integer({ min: 1, max: 10 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('query' as const),
      lower: boundKind,
      lowerKey: wideIndex,
      upper: boundKind,
      upperKey: wideIndex,
      boundsFromModel: fc.boolean(),
      reverse: fc.boolean(),
      limit: fc.constantFrom<number | undefined>(undefined, 0, 1, 7, 100),
      prefix: fc.integer({ min: 0, max: 5 }),
    }),
  },
);

async function runWideModel(flavour: Flavour, config: RunConfig, ops: readonly BulkOp[]): Promise<void> {
  const directory = makeTempDir('tree-model');
  let tree: Tree | undefined;
  const checkAll = (current: Tree, model: ReadonlyMap<string, string>): void => {
    const sorted = modelRange(model, () => true, false, undefined);
    expect(current.size).toBe(model.size);
    expect([...current.range()].map(entryHex)).toEqual(sorted);
    expect([...current.keys({ reverse: true })].map(hex)).toEqual(sorted.map(([key]) => key).reverse());
    const first = current.first();
    const last = current.last();
    expect(first === undefined ? undefined : entryHex(first)).toEqual(sorted[0]);
    expect(last === undefined ? undefined : entryHex(last)).toEqual(sorted.at(-1));
  };
  try {
    tree = await flavour.open(directory, config);
    const model = new Map<string, string>();
    for (const op of ops) {
      const current: Tree = tree;
      switch (op.t) {
        case 'bulkPut':
          for (let index = 0; index < op.count; index++) {
            const n = op.start + index * op.stride;
            if (n >= WIDE_KEYS) break;
            const value = flavour.value({ length: (n + op.seed) % 20, seed: op.seed + n });
            current.put(wideKey(n), value);
            model.set(hex(wideKey(n)), hex(value));
          }
          break;
        case 'bulkDelete':
          for (let index = 0; index < op.count; index++) {
            const n = op.start + index * op.stride;
            if (n >= WIDE_KEYS) break;
            expect(current.delete(wideKey(n))).toBe(model.delete(hex(wideKey(n))));
          }
          break;
        case 'reopen':
          await current.close();
          tree = undefined;
          tree = await flavour.open(directory, config);
          checkAll(tree, model);
          break;
        case 'turn':
          for (let turn = 0; turn < op.turns; turn++) await new Promise((resolve) => setImmediate(resolve));
          break;
        case 'iterate': {
          const before = new Set(model.keys());
          const touched = new Set<string>();
          const yielded: string[] = [];
          let step = 0;
          for (const key of current.keys({ reverse: op.reverse })) {
            yielded.push(hex(key));
            const mutation = op.mutations[step++];
            if (mutation !== undefined) {
              const mutated = wideKey(mutation.n);
              touched.add(hex(mutated));
              if (mutation.remove) expect(current.delete(mutated)).toBe(model.delete(hex(mutated)));
              else {
                const value = flavour.value({ length: mutation.n % 20, seed: mutation.n });
                current.put(mutated, value);
                model.set(hex(mutated), hex(value));
              }
            }
            if (step % op.turnEvery === 0) await new Promise((resolve) => setImmediate(resolve));
          }
          // Strictly in order, each key once; every key present throughout is there, nothing never stored is.
          for (let position = 1; position < yielded.length; position++) {
            expect(op.reverse ? yielded[position - 1]! > yielded[position]! : yielded[position - 1]! < yielded[position]!).toBe(true);
          }
          const yieldedSet = new Set(yielded);
          for (const key of before) if (!touched.has(key)) expect(yieldedSet.has(key)).toBe(true);
          for (const key of yielded) expect(before.has(key) || touched.has(key)).toBe(true);
          break;
        }
        case 'query': {
          const stored = [...model.keys()];
          const boundKey = (n: number): Uint8Array =>
            op.boundsFromModel && stored.length > 0 ? Uint8Array.from(Buffer.from(stored[n % stored.length]!, 'hex')) : wideKey(n);
          const options = rangeOptions(op.lower, boundKey(op.lowerKey), op.upper, boundKey(op.upperKey), op.reverse, op.limit);
          expect([...current.range(options)].map(entryHex)).toEqual(modelRange(model, rangeFilter(options), op.reverse, op.limit));
          const prefix = op.prefix < 4 ? Uint8Array.of(op.prefix) : op.prefix === 4 ? new Uint8Array(0) : wideKey(op.lowerKey);
          const prefixHex = hex(prefix);
          const prefixOptions = op.limit === undefined ? { reverse: op.reverse } : { reverse: op.reverse, limit: op.limit };
          expect([...current.prefix(prefix, prefixOptions)].map(entryHex)).toEqual(
            modelRange(model, (key) => key.startsWith(prefixHex), op.reverse, op.limit),
          );
          break;
        }
      }
    }
    checkAll(tree, model);
    await tree.close();
    tree = undefined;
    tree = await flavour.open(directory, config);
    checkAll(tree, model);
  } finally {
    await tree?.close().catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
  }
}

describe.concurrent('wide key space with bulk mutations (leaf splits and unlinks)', () => {
  for (const flavour of [VAR_TREE, CONST_TREE]) {
    it(`${flavour.name} against a sorted-map model`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(1, 3), fc.array(bulkOpArbitrary, { maxLength: 25 }), async (shards, ops) => {
          const config: RunConfig = {
            shards,
            shardPrefixBits: shards === 1 ? 0 : 8,
            maxFileBytes: 65_536,
            writeBufferBytes: undefined,
            cacheBytes: undefined,
          };
          await runWideModel(flavour, config, ops);
        }),
        { numRuns: 25, seed: flavour === VAR_TREE ? 303 : 304 },
      );
    });
  }
});

// ---- the same with a tiny delta: sorted runs of 7 keys, merge steps of 5 slots, background merging ----

describe('wide key space with a tiny delta (runs and merges between every few puts, reads in between)', () => {
  // Not concurrent, and the limits are restored after: only the stores opened here get them.
  beforeAll(() => setDeltaLimitsForTesting({ runKeys: 7, sliceKeys: 5, treeInsertKeys: 3, background: true }));
  afterAll(() => setDeltaLimitsForTesting(undefined));
  for (const flavour of [VAR_TREE, CONST_TREE]) {
    it(`${flavour.name} against a sorted-map model`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(1, 3), fc.array(bulkOpArbitrary, { maxLength: 25 }), async (shards, ops) => {
          const config: RunConfig = {
            shards,
            shardPrefixBits: shards === 1 ? 0 : 8,
            maxFileBytes: 65_536,
            writeBufferBytes: undefined,
            cacheBytes: undefined,
          };
          await runWideModel(flavour, config, ops);
        }),
        { numRuns: 25, seed: flavour === VAR_TREE ? 305 : 306 },
      );
    });
  }
});
