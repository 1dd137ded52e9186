import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareKeys, sortHandlesByKey } from '../../../src/index/key-order.js';
import { type DeltaLimits, OrderedIndex } from '../../../src/index/ordered-index.js';
import { hex } from '../../helpers/bytes.js';

const keyArbitrary = fc.uint8Array({ minLength: 2, maxLength: 2 }).map((key) => {
  key[0] = key[0]! % 8;
  return key;
});

function keysOf(index: OrderedIndex, handles: Iterable<number>): string[] {
  return [...handles].map((handle) => hex(index.entries.keyView(handle)));
}

/**
 * The same properties over the default delta (runs of 65,536: the tree alone at these sizes) and over
 * tiny runs and merge steps, so that cursors walk the tree and several runs at once and merge steps
 * land between their steps.
 */
const DELTAS: [string, Partial<DeltaLimits>][] = [
  ['default delta', {}],
  ['runs of 3, merge steps of 2, tails of 1 into the tree', { runKeys: 3, sliceKeys: 2, treeInsertKeys: 1, background: false }],
  ['runs of 16, merge steps of 5, tails of 4 into the tree', { runKeys: 16, sliceKeys: 5, treeInsertKeys: 4, background: false }],
];

describe.each(DELTAS)('OrderedIndex, %s', (_, delta) => {
  it('keeps keys in bytewise order under random inserts and removals, with splits and unlinks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ remove: fc.boolean(), key: keyArbitrary, merge: fc.nat(3) }), { maxLength: 2500 }),
        fc.nat(),
        (operations, buildAt) => {
          const index = new OrderedIndex(2, { delta });
          const model = new Set<string>();
          for (const [step, { remove, key, merge }] of operations.entries()) {
            if (merge === 0) index.mergeStep();
            // The tree is deferred until first needed: build it at a random step, so both the bulk
            // build and the one-by-one maintenance after it are exercised.
            if (step === buildAt % (operations.length + 1)) index.firstHandle();
            if (remove) expect(index.remove(key)).toBe(model.delete(hex(key)));
            else {
              index.findOrInsert(key);
              model.add(hex(key));
            }
          }
          const sorted = [...model].sort();
          expect(keysOf(index, index.handles({}))).toEqual(sorted);
          expect(keysOf(index, index.handles({ reverse: true }))).toEqual([...sorted].reverse());
          expect(index.size).toBe(model.size);
          expect(index.firstHandle() < 0 ? undefined : hex(index.entries.keyView(index.firstHandle()))).toBe(sorted[0]);
          expect(index.lastHandle() < 0 ? undefined : hex(index.entries.keyView(index.lastHandle()))).toBe(sorted.at(-1));
        },
      ),
      { numRuns: 60, seed: 11 },
    );
  });

  it('honours every combination of inclusive/exclusive bounds in both directions', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArbitrary, { selector: hex, maxLength: 400 }),
        fc.option(keyArbitrary, { nil: undefined }),
        fc.option(keyArbitrary, { nil: undefined }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (keys, lower, upper, lowerExclusive, upperExclusive, reverse) => {
          const index = new OrderedIndex(2, { delta });
          for (const key of keys) index.findOrInsert(key);
          const expected = keys
            .filter((key) => lower === undefined || (lowerExclusive ? compareKeys(key, lower) > 0 : compareKeys(key, lower) >= 0))
            .filter((key) => upper === undefined || (upperExclusive ? compareKeys(key, upper) < 0 : compareKeys(key, upper) <= 0))
            .map(hex)
            .sort();
          if (reverse) expected.reverse();
          expect(keysOf(index, index.handles({ lower, upper, lowerExclusive, upperExclusive, reverse }))).toEqual(expected);
        },
      ),
      { numRuns: 300, seed: 12 },
    );
  });

  it('while mutating during iteration, yields every key present throughout exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArbitrary, { selector: hex, minLength: 1, maxLength: 300 }),
        fc.array(fc.record({ remove: fc.boolean(), key: keyArbitrary, merge: fc.boolean() }), { maxLength: 300 }),
        fc.boolean(),
        (initial, mutations, reverse) => {
          const index = new OrderedIndex(2, { delta });
          for (const key of initial) index.findOrInsert(key);
          const touched = new Set(mutations.map((mutation) => hex(mutation.key)));
          const presentThroughout = initial.map(hex).filter((key) => !touched.has(key));
          const yielded: string[] = [];
          let step = 0;
          for (const handle of index.handles({ reverse })) {
            yielded.push(hex(index.entries.keyView(handle)));
            const mutation = mutations[step++];
            if (mutation !== undefined) {
              if (mutation.merge) index.mergeStep();
              if (mutation.remove) index.remove(mutation.key);
              else index.findOrInsert(mutation.key);
            }
          }
          // Strictly ordered, no duplicates.
          for (let position = 1; position < yielded.length; position++) {
            expect(reverse ? yielded[position - 1]! > yielded[position]! : yielded[position - 1]! < yielded[position]!).toBe(true);
          }
          const yieldedSet = new Set(yielded);
          for (const key of presentThroughout) expect(yieldedSet.has(key)).toBe(true);
        },
      ),
      { numRuns: 300, seed: 13 },
    );
  });

  it('deleting the current key while iterating continues with the next one', () => {
    const index = new OrderedIndex(2, { delta });
    for (let n = 0; n < 500; n++) index.findOrInsert(new Uint8Array([n >> 8, n & 255]));
    const seen: number[] = [];
    for (const handle of index.handles({})) {
      const key = index.entries.keyView(handle).slice();
      seen.push((key[0]! << 8) | key[1]!);
      index.remove(key);
    }
    expect(seen).toEqual(Array.from({ length: 500 }, (_, n) => n));
    expect(index.size).toBe(0);
    expect([...index.handles({})]).toEqual([]);
  });
});

const scrambledKey = (n: number): Uint8Array => {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, Math.imul(n, 2654435761) >>> 0);
  return bytes;
};

describe('OrderedIndex at depth', () => {
  it('stays ordered through inner-node splits and multi-level unlinks (200k keys, 3 levels)', () => {
    const index = new OrderedIndex(4);
    index.firstHandle(); // build the (empty) tree now: every insert below goes through it one by one
    const all = Array.from({ length: 200_000 }, (_, n) => scrambledKey(n));
    for (const k of all) index.findOrInsert(k);
    for (let n = 0; n < all.length; n += 3) index.remove(all[n]!);
    // Remove a long contiguous run so whole leaves and inner nodes empty out.
    const sorted = all.filter((_, n) => n % 3 !== 0).sort(compareKeys);
    for (const k of sorted.slice(10_000, 120_000)) index.remove(k);
    const expected = [...sorted.slice(0, 10_000), ...sorted.slice(120_000)].map(hex);
    expect(keysOf(index, index.handles({}))).toEqual(expected);
    expect(keysOf(index, index.handles({ reverse: true }))).toEqual([...expected].reverse());
    const middle = Buffer.from(expected[5000]!, 'hex');
    expect(keysOf(index, index.handles({ lower: middle, lowerExclusive: true })).length).toBe(expected.length - 5001);
  });
});

describe('OrderedIndex bulk build', () => {
  it('sortHandlesByKey orders handles like a plain sort of their keys, for any key size and shared prefixes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 255 }),
        fc.integer(),
        (keySize, sharedPrefix, count, alphabet, seed) => {
          let state = seed >>> 0;
          const random = (): number => {
            state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
            return state / 2 ** 32;
          };
          // Keys share their first `sharedPrefix` bytes and draw the rest from a small alphabet, so the
          // sort meets long common prefixes, skipped bytes and ranges of every size.
          const unique = new Map<string, Uint8Array>();
          for (let n = 0; n < count; n++) {
            const key = new Uint8Array(keySize);
            for (let byte = Math.min(sharedPrefix, keySize); byte < keySize; byte++) key[byte] = Math.floor(random() * (alphabet + 1));
            unique.set(hex(key), key);
          }
          const keys = new Uint8Array(unique.size * keySize);
          for (const [handle, key] of [...unique.values()].entries()) keys.set(key, handle * keySize);
          const handles = Int32Array.from({ length: unique.size }, (_, n) => unique.size - 1 - n);
          sortHandlesByKey(handles, keys, keySize);
          const sorted = [...handles].map((handle) => hex(keys.subarray(handle * keySize, (handle + 1) * keySize)));
          expect(sorted).toEqual([...unique.keys()].sort());
        },
      ),
      { numRuns: 200, seed: 21 },
    );
  });

  it('a tree built in bulk from 150k keys (3 levels) stays ordered through later inserts, removals and seeks', () => {
    const index = new OrderedIndex(4);
    const all = Array.from({ length: 150_000 }, (_, n) => scrambledKey(n));
    for (const k of all) index.findOrInsert(k);
    for (let n = 0; n < all.length; n += 5) index.remove(all[n]!); // removed before the build: the hash only
    expect(index.firstHandle()).toBeGreaterThanOrEqual(0); // builds the tree
    const live = new Map(all.filter((_, n) => n % 5 !== 0).map((k) => [hex(k), k]));
    for (let n = 150_000; n < 180_000; n++) {
      const k = scrambledKey(n);
      index.findOrInsert(k);
      live.set(hex(k), k);
    }
    for (let n = 1; n < 150_000; n += 7) {
      if (index.remove(all[n]!)) live.delete(hex(all[n]!));
    }
    const expected = [...live.keys()].sort();
    expect(index.size).toBe(expected.length);
    expect(keysOf(index, index.handles({}))).toEqual(expected);
    expect(keysOf(index, index.handles({ reverse: true }))).toEqual([...expected].reverse());
    const lower = Buffer.from(expected[1000]!, 'hex');
    const upper = Buffer.from(expected[90_000]!, 'hex');
    expect(keysOf(index, index.handles({ lower, upper, upperExclusive: true }))).toEqual(expected.slice(1000, 90_000));
  });
});
