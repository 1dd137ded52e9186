/**
 * The batched cursor step (OrderedIndex.nextHandles, src/index/cursor.ts): batches of random sizes
 * give exactly what single steps give (handles and their keys), over the tree alone and over the tree
 * with several runs, in every bound combination and both directions; and a cursor rewound to the last
 * key a reader consumed goes on from there when the index changed in the middle of a batch.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareKeys } from '../../../src/index/key-order.js';
import { type DeltaLimits, OrderedIndex } from '../../../src/index/ordered-index.js';
import { hex } from '../../helpers/bytes.js';

const KEY_SIZE = 2;
const keyArbitrary = fc.uint8Array({ minLength: KEY_SIZE, maxLength: KEY_SIZE }).map((key) => {
  key[0] = key[0]! % 8;
  return key;
});

const DELTAS: [string, Partial<DeltaLimits>][] = [
  ['the tree alone', {}],
  ['tree and runs (runs of 3, merge steps of 2)', { runKeys: 3, sliceKeys: 2, treeInsertKeys: 1, background: false }],
  ['tree and runs (runs of 16, merge steps of 5)', { runKeys: 16, sliceKeys: 5, treeInsertKeys: 4, background: false }],
];

const boundsArbitrary = fc.record({
  lower: fc.option(keyArbitrary, { nil: undefined }),
  upper: fc.option(keyArbitrary, { nil: undefined }),
  lowerExclusive: fc.boolean(),
  upperExclusive: fc.boolean(),
  reverse: fc.boolean(),
});

function inBounds(
  key: Uint8Array,
  bounds: { lower?: Uint8Array | undefined; upper?: Uint8Array | undefined; lowerExclusive: boolean; upperExclusive: boolean },
): boolean {
  const { lower, upper, lowerExclusive, upperExclusive } = bounds;
  if (lower !== undefined && (lowerExclusive ? compareKeys(key, lower) <= 0 : compareKeys(key, lower) < 0)) return false;
  if (upper !== undefined && (upperExclusive ? compareKeys(key, upper) >= 0 : compareKeys(key, upper) > 0)) return false;
  return true;
}

describe.each(DELTAS)('OrderedIndex.nextHandles over %s', (_, delta) => {
  it('batches of random sizes yield the sorted model within bounds, with each handle’s key', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArbitrary, { selector: hex, maxLength: 400 }),
        fc.array(fc.nat(5), { maxLength: 400 }),
        boundsArbitrary,
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }),
        (keys, mergeAt, bounds, sizes) => {
          const index = new OrderedIndex(KEY_SIZE, { delta });
          for (const [position, key] of keys.entries()) {
            index.findOrInsert(key);
            // Merge steps and ordered reads at random points leave keys spread over the tree and runs.
            if (mergeAt[position] === 0) index.mergeStep();
            if (mergeAt[position] === 1) index.firstHandle();
          }
          const expected = keys
            .filter((key) => inBounds(key, bounds))
            .map(hex)
            .sort();
          if (bounds.reverse) expected.reverse();
          const cursor = index.cursor(bounds);
          const yielded: string[] = [];
          const handles = new Int32Array(40);
          const keyBytes = new Uint8Array(40 * KEY_SIZE);
          for (let step = 0; ; step++) {
            const max = sizes[step % sizes.length]!;
            const count = index.nextHandles(cursor, handles, keyBytes, max);
            expect(count).toBeLessThanOrEqual(max);
            for (let position = 0; position < count; position++) {
              const key = hex(keyBytes.subarray(position * KEY_SIZE, (position + 1) * KEY_SIZE));
              expect(hex(index.entries.keyView(handles[position]!))).toBe(key);
              yielded.push(key);
            }
            if (count < max) break;
          }
          expect(yielded).toEqual(expected);
          // At the end it stays at the end; and it ends a single-step cursor's way too.
          expect(index.nextHandles(cursor, handles, keyBytes, 5)).toBe(0);
          expect(index.nextHandle(cursor)).toBe(-1);
        },
      ),
      { numRuns: 300, seed: 21 },
    );
  });

  it('batches and single steps mix: the cursor stands after the last handle of a batch', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArbitrary, { selector: hex, maxLength: 300 }),
        fc.boolean(),
        fc.array(fc.nat(12)),
        (keys, reverse, plan) => {
          const index = new OrderedIndex(KEY_SIZE, { delta });
          for (const key of keys) index.findOrInsert(key);
          const expected = keys.map(hex).sort();
          if (reverse) expected.reverse();
          const cursor = index.cursor({ reverse });
          const yielded: string[] = [];
          const handles = new Int32Array(12);
          const keyBytes = new Uint8Array(12 * KEY_SIZE);
          for (let step = 0; yielded.length < expected.length + 1; step++) {
            const max = plan[step % Math.max(plan.length, 1)] ?? 0;
            if (max === 0) {
              const handle = index.nextHandle(cursor);
              if (handle < 0) break;
              yielded.push(hex(index.entries.keyView(handle)));
              continue;
            }
            const count = index.nextHandles(cursor, handles, keyBytes, max);
            for (let position = 0; position < count; position++) yielded.push(hex(index.entries.keyView(handles[position]!)));
            if (count < max) break;
          }
          expect(yielded).toEqual(expected);
        },
      ),
      { numRuns: 200, seed: 22 },
    );
  });

  it('read ahead, consumed one by one while mutating: rewinding on a change yields every key present throughout once, in order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArbitrary, { selector: hex, minLength: 1, maxLength: 300 }),
        fc.array(fc.record({ remove: fc.boolean(), key: keyArbitrary, merge: fc.boolean(), skip: fc.nat(3) }), { maxLength: 300 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 32 }),
        (initial, mutations, reverse, batchSize) => {
          const index = new OrderedIndex(KEY_SIZE, { delta });
          for (const key of initial) index.findOrInsert(key);
          const present = new Set(initial.map(hex));
          const touched = new Set(mutations.map((mutation) => hex(mutation.key)));
          const presentThroughout = initial.map(hex).filter((key) => !touched.has(key));
          const cursor = index.cursor({ reverse });
          const handles = new Int32Array(batchSize);
          let keyBytes = new Uint8Array(batchSize * KEY_SIZE);
          let count = 0;
          let position = 0;
          let version = -1;
          const yielded: string[] = [];
          let step = 0;
          for (;;) {
            // What ScanBatch does: drop the rest of a batch once the index changed, rewind, refill.
            if (position < count && index.version !== version) {
              index.rewindCursor(cursor, keyBytes, (position - 1) * KEY_SIZE);
              count = 0;
              position = 0;
            }
            if (position === count) {
              keyBytes = new Uint8Array(batchSize * KEY_SIZE);
              count = index.nextHandles(cursor, handles, keyBytes, batchSize);
              position = 0;
              version = index.version;
              if (count === 0) break;
            }
            const key = hex(keyBytes.subarray(position * KEY_SIZE, (position + 1) * KEY_SIZE));
            // Every key handed out is in the index at that moment, under that handle.
            expect(present.has(key)).toBe(true);
            expect(hex(index.entries.keyView(handles[position]!))).toBe(key);
            yielded.push(key);
            position++;
            const mutation = mutations[step++];
            if (mutation === undefined || mutation.skip === 0) continue;
            if (mutation.merge) index.mergeStep();
            if (mutation.remove) {
              index.remove(mutation.key);
              present.delete(hex(mutation.key));
            } else {
              index.findOrInsert(mutation.key);
              present.add(hex(mutation.key));
            }
          }
          for (let at = 1; at < yielded.length; at++) {
            expect(reverse ? yielded[at - 1]! > yielded[at]! : yielded[at - 1]! < yielded[at]!).toBe(true);
          }
          const yieldedSet = new Set(yielded);
          for (const key of presentThroughout) expect(yieldedSet.has(key)).toBe(true);
        },
      ),
      { numRuns: 300, seed: 23 },
    );
  });
});
