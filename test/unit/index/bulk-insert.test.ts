/**
 * The bulk insert open uses for a hint's keys (findOrInsertMany): whatever the order it places keys
 * in, the index ends holding the same keys as one findOrInsert per key, each source key gets the
 * handle of its key, a key already present or repeated keeps one handle, and removals and later
 * inserts still work on the result. The hash index names exactly the handles it added (the ordered
 * index places those in key order), and the ordered index stays exact for ranges afterwards.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashIndex } from '../../../src/index/hash-index.js';
import type { KeyIndex, KeySource } from '../../../src/index/key-index.js';
import { OrderedIndex } from '../../../src/index/ordered-index.js';
import { compareKeys } from '../../../src/index/key-order.js';
import { hex } from '../../helpers/bytes.js';

/** Keys of 3 bytes drawn from a small space: repeats within a batch and against the index. */
const keyArb = fc.integer({ min: 0, max: 9000 }).map((value) => Uint8Array.of(value >> 16, (value >> 8) & 255, value & 255));

/** The keys as one source at a stride, with filler bytes between them (as in a version-1 hint chunk). */
function sourceOf(keys: readonly Uint8Array[], stride: number, offset: number): KeySource {
  const keyBytes = new Uint8Array(offset + keys.length * stride).fill(0xee);
  keys.forEach((key, index) => {
    keyBytes.set(key, offset + index * stride);
  });
  return { keyBytes, keyOffset: offset, keyStride: stride, count: keys.length };
}

function checkAgainstModel(make: () => KeyIndex): void {
  fc.assert(
    fc.property(
      fc.array(keyArb, { maxLength: 300 }),
      // Large batches (above the bulk threshold) and small ones, split in two sources.
      fc.array(keyArb, { minLength: 4000, maxLength: 9000 }),
      fc.array(keyArb, { maxLength: 50 }),
      (before, batch, after) => {
        const index = make();
        const model = new Set<string>();
        for (const key of before) {
          const handle = index.findOrInsert(key);
          index.setLocation(handle, 1, 0, 1, 1);
          model.add(hex(key));
        }
        const half = batch.length >> 1;
        const sources = [sourceOf(batch.slice(0, half), 7, 3), sourceOf(batch.slice(half), 3, 0)];
        const handles = index.findOrInsertMany(sources);
        expect(handles.length).toBe(batch.length);
        batch.forEach((key, position) => {
          expect(hex(index.keyView(handles[position]!))).toBe(hex(key));
          expect(index.find(key)).toBe(handles[position]);
          index.setLocation(handles[position]!, 2, 8 * position, 1, position + 2);
          model.add(hex(key));
        });
        expect(index.size).toBe(model.size);
        for (const key of after) {
          const removed = index.remove(key);
          expect(removed).toBe(model.delete(hex(key)));
          expect(index.find(key)).toBe(-1);
        }
        expect(index.size).toBe(model.size);
        const visited: string[] = [];
        index.forEachHandle((handle) => visited.push(hex(index.keyView(handle))));
        expect(new Set(visited)).toEqual(model);
        expect(visited.length).toBe(model.size);
        if (index instanceof OrderedIndex) {
          // forEachHandle visits in hash order (src/index/ordered-index.ts); key order is the cursor's.
          const ordered = [...index.handles({})].map((handle) => hex(index.keyView(handle)));
          expect(ordered).toEqual([...visited].sort());
        }
      },
    ),
    // No shrinking: a counterexample of thousands of keys shrinks for minutes.
    { numRuns: 10, endOnFailure: true },
  );
}

describe('findOrInsertMany', () => {
  it('HashIndex: the same keys as one findOrInsert per key, each source key mapped to its own handle', () => {
    checkAgainstModel(() => new HashIndex(3));
  });

  it('OrderedIndex: the same keys, and a cursor afterwards walks them in order', () => {
    checkAgainstModel(() => new OrderedIndex(3));
  });

  it('OrderedIndex after a read in order: keys inserted in bulk are in order too', () => {
    const index = new OrderedIndex(3);
    index.findOrInsert(Uint8Array.of(0, 0, 1));
    index.setLocation(0, 1, 0, 1, 1);
    expect(index.firstHandle()).toBe(0);
    const batch = Array.from({ length: 5000 }, (_, value) => Uint8Array.of(1, value >> 8, value & 255));
    const handles = index.findOrInsertMany([sourceOf(batch.reverse(), 3, 0)]);
    handles.forEach((handle, position) => {
      index.setLocation(handle, 2, 0, 1, position + 2);
    });
    const ordered = [...index.handles({})].map((handle) => hex(index.keyView(handle)));
    expect(ordered.length).toBe(5001);
    expect(ordered).toEqual([...ordered].sort());
  });

  it('reserve sizes the index for the keys to come; inserts after it behave as before', () => {
    const index = new HashIndex(4);
    index.reserve(100_000);
    const memoryAfterReserve = index.memoryBytes;
    for (let value = 0; value < 100_000; value++) {
      const handle = index.findOrInsertAt(new Uint8Array(new Uint32Array([value]).buffer), 0);
      index.setLocation(handle, 1, 0, 1, value + 1);
    }
    // Nothing grew while the reserved keys went in.
    expect(index.memoryBytes).toBe(memoryAfterReserve);
    expect(index.size).toBe(100_000);
    expect(index.find(new Uint8Array(new Uint32Array([99_999]).buffer))).toBeGreaterThanOrEqual(0);
  });

  it('HashIndex.forEachHandle visits handles in handle order: released ones skipped, reused ones and ones not located yet visited', () => {
    const index = new HashIndex(1);
    for (const byte of [10, 11, 12, 13]) index.setLocation(index.findOrInsert(Uint8Array.of(byte)), 1, 8 * byte, 1, byte);
    const visit = (): number[] => {
      const visited: number[] = [];
      index.forEachHandle((handle) => visited.push(handle));
      return visited;
    };
    expect(visit()).toEqual([0, 1, 2, 3]);
    index.remove(Uint8Array.of(11));
    expect(visit()).toEqual([0, 2, 3]);
    // Reused, and its location not set yet: still an entry of the index.
    expect(index.findOrInsert(Uint8Array.of(20))).toBe(1);
    expect(visit()).toEqual([0, 1, 2, 3]);
    expect(index.isLive(1)).toBe(false);
  });

  it('HashIndex.insertMany names exactly the handles it added, released handles reused among them', () => {
    fc.assert(
      fc.property(
        fc.array(keyArb, { maxLength: 600, size: 'max' }),
        fc.array(fc.boolean(), { maxLength: 600, size: 'max' }),
        // Below and above the bulk threshold (4096 keys): the loop and the slot-ordered placement.
        fc.oneof(fc.array(keyArb, { maxLength: 200, size: 'max' }), fc.array(keyArb, { minLength: 4100, maxLength: 9000 })),
        fc.nat(),
        (before, removeBefore, drawn, cut) => {
          const index = new HashIndex(3);
          const present = new Set<string>();
          for (const key of before) {
            index.setLocation(index.findOrInsert(key), 1, 0, 1, 1);
            present.add(hex(key));
          }
          // Removals leave handles below the handle limit that the batch gets again.
          before.forEach((key, position) => {
            if (removeBefore[position] === true && index.remove(key)) present.delete(hex(key));
          });
          // Keys present and keys removed at both ends of the batch and among the drawn ones.
          const split = before.length === 0 ? 0 : cut % before.length;
          const batch = [...before.slice(split), ...drawn, ...before.slice(0, split)];
          const { handles, added } = index.insertMany([sourceOf(batch, 3, 0)]);
          const expectedAdded = new Map<string, number>();
          batch.forEach((key, position) => {
            if (!present.has(hex(key)) && !expectedAdded.has(hex(key))) expectedAdded.set(hex(key), handles[position]!);
          });
          expect([...added]).toEqual([...expectedAdded.values()]);
          expect(new Set(added).size).toBe(added.length);
        },
      ),
      // No shrinking: a counterexample of thousands of keys shrinks for minutes.
      { numRuns: 40, seed: 16, endOnFailure: true },
    );
  });
});

/** Keys of 3 bytes, each a uniform draw: random order and shared prefixes (the first byte repeats often). */
const orderedKeyArb = fc.integer({ min: 0, max: 0x3fff }).map((value) => Uint8Array.of(value >> 12, (value >> 4) & 255, value & 15));

describe('HashIndex.insertMany and released handles', () => {
  it('a new key can get a handle below the handle limit (one released before): numbers cannot tell new handles', () => {
    const index = new HashIndex(3);
    for (let value = 0; value < 100; value++) index.findOrInsert(Uint8Array.of(0, 0, value));
    for (let value = 0; value < 10; value++) index.remove(Uint8Array.of(0, 0, value));
    const handleLimit = index.handleLimit;
    const batch = Array.from({ length: 5000 }, (_, value) => Uint8Array.of(1, value >> 8, value & 255));
    const { handles, added } = index.insertMany([sourceOf([Uint8Array.of(0, 0, 50), ...batch], 3, 0)]);
    expect(added.length).toBe(5000);
    expect([...added]).toEqual([...handles.subarray(1)]);
    expect([...added].filter((handle) => handle < handleLimit).length).toBeGreaterThan(0);
  });
});

type Stage = 'empty' | 'tree' | 'runs';

describe('OrderedIndex.findOrInsertMany: ranges stay exact', () => {
  /**
   * Keys before (some removed again, so the batch reuses handles), then bulk inserts of random keys
   * (repeats, keys present, keys removed), removals, one-by-one inserts; every range with random
   * bounds, both directions, equals a sorted model. `runKeys` is small so that a bulk tail exceeds it
   * (into an empty tree: the tree is built from it; beside a tree or runs: it becomes a run).
   */
  it.each<Stage>(['empty', 'tree', 'runs'])('index holding keys in %s before the bulk inserts', (stage) => {
    fc.assert(
      fc.property(
        fc.array(orderedKeyArb, { maxLength: stage === 'empty' ? 0 : 400, size: 'max' }),
        fc.array(
          fc.oneof(fc.array(orderedKeyArb, { maxLength: 300, size: 'max' }), fc.array(orderedKeyArb, { minLength: 4100, maxLength: 6000 })),
          { minLength: 1, maxLength: 3 },
        ),
        fc.array(orderedKeyArb, { maxLength: 300, size: 'max' }),
        fc.array(fc.tuple(orderedKeyArb, orderedKeyArb, fc.boolean(), fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 8 }),
        (before, batches, changes, bounds) => {
          const index = new OrderedIndex(3, { delta: { runKeys: 256, sliceKeys: 64, treeInsertKeys: 16, background: false } });
          const model = new Set<string>();
          for (const key of before) {
            index.findOrInsert(key);
            model.add(hex(key));
          }
          for (const key of before.slice(0, before.length >> 2)) if (index.remove(key)) model.delete(hex(key));
          if (stage === 'tree') index.mergeAll();
          if (stage === 'runs') expect(index.firstHandle() >= 0).toBe(model.size > 0);
          for (const drawn of batches) {
            // Keys present, removed and new, the present ones first (the first source key is not always new).
            const batch = [...before.slice(0, 64), ...drawn, ...before.slice(64)];
            const handles = index.findOrInsertMany([sourceOf(batch, 3, 0)]);
            batch.forEach((key, position) => {
              expect(hex(index.keyView(handles[position]!))).toBe(hex(key));
              model.add(hex(key));
            });
          }
          // What finishIndex does at open: tombstones removed, here from the bulk tail.
          for (const key of changes.slice(0, changes.length >> 1)) expect(index.remove(key)).toBe(model.delete(hex(key)));
          const sorted = [...model].sort();
          expect(index.size).toBe(sorted.length);
          expect([...index.handles({})].map((handle) => hex(index.keyView(handle)))).toEqual(sorted);
          // Then the store is used: inserts and removals go through the tail, runs and the tree.
          for (const key of changes.slice(changes.length >> 1)) {
            if (model.has(hex(key))) expect(index.remove(key)).toBe(true);
            else index.findOrInsert(key);
            if (!model.delete(hex(key))) model.add(hex(key));
          }
          const after = [...model].sort();
          for (const [lowerKey, upperKey, lowerExclusive, upperExclusive, reverse] of bounds) {
            const lower = compareKeys(lowerKey, upperKey) <= 0 ? lowerKey : upperKey;
            const upper = lower === lowerKey ? upperKey : lowerKey;
            const expected = after.filter((key) => {
              const bytes = Buffer.from(key, 'hex');
              const fromLower = compareKeys(bytes, lower);
              const toUpper = compareKeys(bytes, upper);
              return (lowerExclusive ? fromLower > 0 : fromLower >= 0) && (upperExclusive ? toUpper < 0 : toUpper <= 0);
            });
            const found = [...index.handles({ lower, lowerExclusive, upper, upperExclusive, reverse })].map((handle) =>
              hex(index.keyView(handle)),
            );
            expect(found).toEqual(reverse ? expected.reverse() : expected);
          }
          index.mergeAll();
          expect([...index.handles({})].map((handle) => hex(index.keyView(handle)))).toEqual(after);
        },
      ),
      { numRuns: 25, seed: 1616, endOnFailure: true },
    );
  });

  it('a bulk tail into an empty index becomes the tree: no run to merge, and puts after it start runs as before', () => {
    const index = new OrderedIndex(3, { delta: { runKeys: 256, sliceKeys: 64, treeInsertKeys: 16, background: false } });
    const batch = Array.from({ length: 5000 }, (_, value) => Uint8Array.of(value % 7, value >> 8, value & 255));
    index.findOrInsertMany([sourceOf(batch.slice(0, 2500), 3, 0)]);
    index.findOrInsertMany([sourceOf(batch.slice(2500), 3, 0)]);
    // Open's keys wait in one tail, not cut into runs of runKeys.
    expect(index.deltaShape).toEqual({ tailKeys: 5000, runs: 0, merging: false });
    index.mergeInBackground();
    expect(index.deltaShape).toEqual({ tailKeys: 0, runs: 0, merging: false });
    expect(index.mergeStep()).toBe(0);
    for (let value = 0; value < 300; value++) index.findOrInsert(Uint8Array.of(9, value >> 8, value & 255));
    expect(index.deltaShape).toEqual({ tailKeys: 300 - 256, runs: 1, merging: false });
    const ordered = [...index.handles({})].map((handle) => hex(index.keyView(handle)));
    expect(ordered.length).toBe(5300);
    expect(ordered).toEqual([...ordered].sort());
  });
});
