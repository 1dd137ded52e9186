/**
 * The bulk insert open uses for a hint's keys (findOrInsertMany): whatever the order it places keys
 * in, the index ends holding the same keys as one findOrInsert per key, each source key gets the
 * handle of its key, a key already present or repeated keeps one handle, and removals and later
 * inserts still work on the result.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashIndex } from '../../../src/index/hash-index.js';
import type { KeyIndex, KeySource } from '../../../src/index/key-index.js';
import { OrderedIndex } from '../../../src/index/ordered-index.js';
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
        if (index instanceof OrderedIndex) expect(visited).toEqual([...visited].sort());
      },
    ),
    { numRuns: 10 },
  );
}

describe('findOrInsertMany', () => {
  it('HashIndex: the same keys as one findOrInsert per key, each source key mapped to its own handle', () => {
    checkAgainstModel(() => new HashIndex(3));
  });

  it('OrderedIndex, tree deferred: the same keys, and the tree built afterwards holds them in order', () => {
    checkAgainstModel(() => new OrderedIndex(3));
  });

  it('OrderedIndex with its tree built: keys inserted in bulk are in the tree too', () => {
    const index = new OrderedIndex(3);
    index.findOrInsert(Uint8Array.of(0, 0, 1));
    index.setLocation(0, 1, 0, 1, 1);
    expect(index.firstHandle()).toBe(0);
    const batch = Array.from({ length: 5000 }, (_, value) => Uint8Array.of(1, value >> 8, value & 255));
    const handles = index.findOrInsertMany([sourceOf(batch.reverse(), 3, 0)]);
    handles.forEach((handle, position) => {
      index.setLocation(handle, 2, 0, 1, position + 2);
    });
    const ordered: string[] = [];
    index.forEachHandle((handle) => ordered.push(hex(index.keyView(handle))));
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
});
