import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockCache, largeValueCacheId, pageCacheId } from '../../../src/storage/block-cache.js';

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

  it('against a plain model, with pages and large values of several files and dropFile: every hit is the bytes inserted, within budget', () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('page' as const), file: fc.nat(3), pageIndex: fc.nat(30) }),
      fc.record({ kind: fc.constant('large' as const), file: fc.nat(3), pageIndex: fc.nat(30), pages: fc.integer({ min: 3, max: 5 }) }),
      fc.record({ kind: fc.constant('read' as const), file: fc.nat(3), pageIndex: fc.nat(30), offset: fc.nat(4000) }),
      fc.record({ kind: fc.constant('drop' as const), file: fc.nat(3) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 600 }), fc.integer({ min: 1, max: 24 }), (operations, budgetPages) => {
        const cache = new BlockCache(budgetPages * 4096);
        // What each id was last inserted with; the cache may have evicted it, never changed it.
        const model = new Map<number, Uint8Array>();
        const fillOf = (file: number, pageIndex: number, salt: number) => (file * 31 + pageIndex * 7 + salt) % 251;
        let salt = 0;
        for (const op of operations) {
          if (op.kind === 'page') {
            const id = pageCacheId(op.file, op.pageIndex);
            const bytes = new Uint8Array(4096).fill(fillOf(op.file, op.pageIndex, ++salt));
            if (cache.get(id) === undefined) {
              cache.insert(id, bytes);
              model.set(id, bytes.slice());
              bytes.fill(0); // the cache holds a copy of a page
            }
          } else if (op.kind === 'large') {
            const id = largeValueCacheId(op.file, op.pageIndex * 4096);
            if (cache.get(id) === undefined) {
              const bytes = new Uint8Array(op.pages * 4096).fill(fillOf(op.file, op.pageIndex, ++salt));
              cache.insert(id, bytes);
              model.set(id, bytes.slice());
            }
          } else if (op.kind === 'read') {
            const id = pageCacheId(op.file, op.pageIndex);
            const copy = cache.copyFromPage(op.file, op.pageIndex, op.offset, 96);
            expect(cache.hasPage(op.file, op.pageIndex)).toBe(copy !== undefined);
            const output = new Uint8Array(100);
            expect(cache.copyPageInto(op.file, op.pageIndex, op.offset, 96, output, 4)).toBe(copy !== undefined);
            if (copy !== undefined) expect(output.subarray(4)).toEqual(copy);
            else expect(output.every((byte) => byte === 0)).toBe(true);
            if (copy !== undefined) {
              expect(copy).toEqual(model.get(id)!.subarray(op.offset, op.offset + 96));
              copy.fill(255); // a fresh copy: the cached page does not change
              expect(cache.copyFromPage(op.file, op.pageIndex, op.offset, 96)).toEqual(model.get(id)!.subarray(op.offset, op.offset + 96));
            }
          } else {
            cache.dropFile(op.file);
            for (let pageIndex = 0; pageIndex <= 30; pageIndex++) {
              expect(cache.get(pageCacheId(op.file, pageIndex))).toBeUndefined();
              expect(cache.get(largeValueCacheId(op.file, pageIndex * 4096))).toBeUndefined();
            }
          }
          expect(cache.bytes).toBeLessThanOrEqual(budgetPages * 4096);
        }
        // At the end (a get counts as a read, so not after every step): every entry still cached holds
        // the bytes it was inserted with, and the byte count is theirs.
        let cachedBytes = 0;
        let entries = 0;
        for (const [id, bytes] of model) {
          const found = cache.get(id);
          if (found === undefined) continue;
          expect(Buffer.from(found.buffer, found.byteOffset, found.length).equals(bytes)).toBe(true);
          cachedBytes += bytes.length;
          entries++;
        }
        expect(cache.bytes).toBe(cachedBytes);
        expect(cache.pageCount).toBe(entries);
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  it('dropFile and clear wipe the plaintext they drop; an evicted slot is reused, never grown past the budget', () => {
    const cache = new BlockCache(4 * 4096);
    cache.insert(pageCacheId(1, 0), page(9));
    const view = cache.get(pageCacheId(1, 0))!;
    const large = new Uint8Array(3 * 4096).fill(9);
    cache.insert(largeValueCacheId(2, 0), large);
    cache.dropFile(1);
    expect(view.every((byte) => byte === 0)).toBe(true);
    expect(large.every((byte) => byte === 9)).toBe(true);
    cache.dropFile(2);
    expect(large.every((byte) => byte === 0)).toBe(true);
    // Many more pages than the budget: the arena stays at its 4 pages.
    for (let pageIndex = 0; pageIndex < 100; pageIndex++) cache.insert(pageCacheId(3, pageIndex), page(pageIndex));
    expect(cache.pageCount).toBe(4);
    const last = cache.get(pageCacheId(3, 99))!;
    expect(last.buffer.byteLength).toBe(4 * 4096);
    expect(last[0]).toBe(99);
    cache.clear();
    expect(last.every((byte) => byte === 0)).toBe(true);
    expect(cache.get(pageCacheId(3, 99))).toBeUndefined();
  });
});
