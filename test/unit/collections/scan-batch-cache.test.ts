/**
 * A batched scan (src/collections/scan-batch.ts, Engine.readHandles) holds views of cached pages
 * while it reads the rest of its batch. The block cache keeps pages in reused slots of an arena, so a
 * miss later in the same batch can evict a page whose view the batch holds and write another page
 * into its slot. Every value the scan hands out must still be the value stored: with a cache of a
 * few pages, over keys written in random order (each batch touches many pages, hits and misses
 * mixed), a full scan equals the model.
 */
import { describe, expect, it } from 'vitest';
import { VarTree } from '../../../src/index.js';
import { patternBytes } from '../../helpers/bytes.js';
import { directoriesRemovedAfterEach } from '../../helpers/temp-dir.js';

const KEY = new Uint8Array(32).fill(9);
const COUNT = 6000;

const keyOf = (index: number): Uint8Array => Uint8Array.of(index >>> 8, index & 0xff);
/** Keys in an order far from key order, so that neighbours in a scan sit on different pages. */
const writeOrder = Array.from({ length: COUNT }, (_, index) => (index * 2557) % COUNT);

const tempDir = directoriesRemovedAfterEach(false);

describe('batched scans over a small block cache', () => {
  it('every value equals the stored one while misses in a batch reuse the slots of its earlier hits', async () => {
    const dir = tempDir('armdb-scan-cache-');
    const options = { keySize: 2, shards: 1, encryption: { key: KEY }, cacheBytes: 6 * 4096 } as const;
    let db = await VarTree.open(dir, options);
    for (const index of writeOrder) db.put(keyOf(index), patternBytes(40 + (index % 60), index));
    await db.close();
    db = await VarTree.open(dir, options);
    try {
      for (let pass = 0; pass < 2; pass++) {
        let expected = 0;
        for (const [key, value] of db.range({})) {
          expect(key).toEqual(keyOf(expected));
          expect(value).toEqual(patternBytes(40 + (expected % 60), expected));
          expected++;
        }
        expect(expected).toBe(COUNT);
      }
    } finally {
      await db.close();
    }
  });
});
