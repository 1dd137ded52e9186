/**
 * The pairwise generator the behavioural suite relies on: every pair of values of every two
 * dimensions appears in some row, the rows are deterministic, and they are fewer than the product.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Dimensions, pairwise } from './pairwise.js';

/** Every (dimension a, value i, dimension b, value j) pair that no row holds. */
function missingPairs(dimensions: Dimensions, rows: readonly Record<string, unknown>[]): string[] {
  const names = Object.keys(dimensions);
  const missing: string[] = [];
  for (const [a, left] of names.entries()) {
    for (const right of names.slice(a + 1)) {
      for (const leftValue of dimensions[left]!) {
        for (const rightValue of dimensions[right]!) {
          if (!rows.some((row) => row[left] === leftValue && row[right] === rightValue)) {
            missing.push(`${left}=${String(leftValue)} ${right}=${String(rightValue)}`);
          }
        }
      }
    }
  }
  return missing;
}

describe('pairwise', () => {
  it('covers every pair of the suite matrix in fewer rows than the product, the same rows every time', () => {
    const dimensions = {
      shards: [1, 4],
      cacheBytes: [64 * 2 ** 20, 0],
      cipher: ['node', 'noble'],
      encryption: ['none', 'key', 'passphrase'],
      reopened: [false, true],
    } as const;
    const rows = pairwise(dimensions);
    expect(missingPairs(dimensions, rows)).toEqual([]);
    expect(rows.length).toBeGreaterThanOrEqual(6); // 3 encryptions × 2 of any other dimension
    expect(rows.length).toBeLessThan(48);
    expect(pairwise(dimensions)).toEqual(rows);
    for (const row of rows)
      for (const [name, values] of Object.entries(dimensions)) expect(values).toContain(row[name as keyof typeof row]);
  });

  it('covers every pair of any small set of dimensions, and every value of a single one', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 6 }), (sizes) => {
        const dimensions = Object.fromEntries(sizes.map((size, index) => [`d${index}`, Array.from({ length: size }, (_, value) => value)]));
        const rows = pairwise(dimensions);
        expect(missingPairs(dimensions, rows)).toEqual([]);
        if (sizes.length === 1) expect(rows.map((row) => row['d0'])).toEqual(dimensions['d0']);
        const product = sizes.reduce((total, size) => total * size, 1);
        expect(rows.length).toBeLessThanOrEqual(product);
      }),
      { seed: 14, numRuns: 200 },
    );
  });

  it('refuses a dimension without values', () => {
    expect(() => pairwise({ shards: [1, 4], cipher: [] })).toThrow(RangeError);
  });
});
