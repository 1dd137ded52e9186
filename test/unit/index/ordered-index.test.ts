import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareKeys, OrderedIndex } from '../../../src/index/ordered-index.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const keyArbitrary = fc.uint8Array({ minLength: 2, maxLength: 2 }).map((key) => { key[0] = key[0]! % 8; return key; });

function keysOf(index: OrderedIndex, handles: Iterable<number>): string[] {
  return [...handles].map((handle) => hex(index.entries.keyView(handle)));
}

describe('OrderedIndex', () => {
  it('keeps keys in bytewise order under random inserts and removals, with splits and unlinks', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ remove: fc.boolean(), key: keyArbitrary }), { maxLength: 2500 }), (operations) => {
        const index = new OrderedIndex(2);
        const model = new Set<string>();
        for (const { remove, key } of operations) {
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
      }),
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
          const index = new OrderedIndex(2);
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
        fc.array(fc.record({ remove: fc.boolean(), key: keyArbitrary }), { maxLength: 300 }),
        fc.boolean(),
        (initial, mutations, reverse) => {
          const index = new OrderedIndex(2);
          for (const key of initial) index.findOrInsert(key);
          const touched = new Set(mutations.map((mutation) => hex(mutation.key)));
          const presentThroughout = initial.map(hex).filter((key) => !touched.has(key));
          const yielded: string[] = [];
          let step = 0;
          for (const handle of index.handles({ reverse })) {
            yielded.push(hex(index.entries.keyView(handle)));
            const mutation = mutations[step++];
            if (mutation !== undefined) {
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
    const index = new OrderedIndex(2);
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

describe('OrderedIndex at depth', () => {
  it('stays ordered through inner-node splits and multi-level unlinks (200k keys, 3 levels)', () => {
    const index = new OrderedIndex(4);
    const key = (n: number) => { const bytes = new Uint8Array(4); new DataView(bytes.buffer).setUint32(0, Math.imul(n, 2654435761) >>> 0); return bytes; };
    const all = Array.from({ length: 200_000 }, (_, n) => key(n));
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
