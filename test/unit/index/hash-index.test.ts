import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashIndex } from '../../../src/index/hash-index.js';
import { hex } from '../../helpers/bytes.js';

describe('HashIndex', () => {
  it('agrees with a Map under random inserts, updates and removals (backward-shift deletion included)', () => {
    // Small key space and 3-byte keys: long probe runs, many removals inside runs, several resizes.
    const operation = fc.record({
      remove: fc.boolean(),
      key: fc.uint8Array({ minLength: 3, maxLength: 3 }).map((key) => {
        key[0] = key[0]! % 4;
        return key;
      }),
      position: fc.nat(1_000_000),
    });
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 3000 }), (operations) => {
        const index = new HashIndex(3);
        const model = new Map<string, number>();
        for (const { remove, key, position } of operations) {
          if (remove) {
            expect(index.remove(key)).toBe(model.delete(hex(key)));
          } else {
            const handle = index.findOrInsert(key);
            index.entries.setLocation(handle, 1, position * 8, 1, 1);
            model.set(hex(key), position * 8);
          }
        }
        expect(index.size).toBe(model.size);
        for (const [key, position] of model) {
          const handle = index.find(Buffer.from(key, 'hex'));
          expect(handle).toBeGreaterThanOrEqual(0);
          expect(index.positionOf(handle)).toBe(position);
          expect(hex(index.entries.keyView(handle))).toBe(key);
        }
        const visited = new Set<string>();
        index.forEachHandle((handle) => visited.add(hex(index.entries.keyView(handle))));
        expect(visited).toEqual(new Set(model.keys()));
      }),
      { numRuns: 60, seed: 0x1d3 },
    );
  });

  it('reuses handles after removal, so memory follows live keys', () => {
    const index = new HashIndex(8);
    const key = (n: number) => {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setUint32(4, n);
      return bytes;
    };
    for (let round = 0; round < 5; round++) {
      for (let n = 0; n < 5000; n++) index.findOrInsert(key(n));
      for (let n = 0; n < 5000; n++) expect(index.remove(key(n))).toBe(true);
    }
    expect(index.size).toBe(0);
    expect(index.entries.capacity).toBeLessThan(10_000);
  });
});
