import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockCache, pageCacheId } from '../../../src/storage/block-cache.js';

const page = (fill: number) => new Uint8Array(4096).fill(fill);

describe('BlockCache (S3-FIFO)', () => {
  it('never exceeds its byte budget and returns exactly what was inserted', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.nat(200), read: fc.boolean() }), { maxLength: 2000 }),
        fc.integer({ min: 1, max: 40 }),
        (operations, pages) => {
          const cache = new BlockCache(pages * 4096);
          for (const { id, read } of operations) {
            if (read) {
              const found = cache.get(id);
              if (found !== undefined) expect(found[0]).toBe(id % 256);
            } else cache.insert(id, page(id % 256));
            expect(cache.bytes).toBeLessThanOrEqual(pages * 4096);
            expect(cache.bytes).toBe(cache.pageCount * 4096);
          }
        },
      ),
      { numRuns: 100, seed: 7 },
    );
  });

  it('resists a scan: a hot set read repeatedly survives a long one-pass scan', () => {
    const cache = new BlockCache(100 * 4096);
    for (let round = 0; round < 3; round++)
      for (let id = 0; id < 50; id++) {
        if (cache.get(id) === undefined) cache.insert(id, page(1));
      }
    for (let id = 1000; id < 11_000; id++) if (cache.get(id) === undefined) cache.insert(id, page(2));
    let hot = 0;
    for (let id = 0; id < 50; id++) if (cache.get(id) !== undefined) hot++;
    expect(hot).toBe(50);
  });

  it('dropFile removes every page of that file and no other', () => {
    const cache = new BlockCache(64 * 4096);
    for (let pageIndex = 0; pageIndex < 10; pageIndex++) {
      cache.insert(pageCacheId(1, pageIndex), page(1));
      cache.insert(pageCacheId(2, pageIndex), page(2));
    }
    cache.dropFile(1);
    for (let pageIndex = 0; pageIndex < 10; pageIndex++) {
      expect(cache.get(pageCacheId(1, pageIndex))).toBeUndefined();
      expect(cache.get(pageCacheId(2, pageIndex))).toBeDefined();
    }
    expect(cache.bytes).toBe(10 * 4096);
  });

  it('a zero budget caches nothing', () => {
    const cache = new BlockCache(0);
    cache.insert(1, page(1));
    expect(cache.get(1)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });
});
