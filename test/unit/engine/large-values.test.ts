/**
 * Values spanning more than two pages are read in one pread and cached whole, in the same cache (and
 * budget) as pages, under ids of their own. Their cache ids must never collide: an early id scheme mapped the record at 16 MiB of one file
 * and the record at 0 of the next file to the same id, so get() returned another key's value.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VarMap, keys } from '../../../src/index.js';

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) fs.rmSync(directory, { recursive: true, force: true });
});

describe('large values', () => {
  it('values at the same offset of different files never share a cache entry', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-large-'));
    directories.push(directory);
    // 16-byte header + 16-byte key + 16352-byte value = 16384 bytes: record n sits at n * 16 KiB.
    const options = {
      keySize: 16,
      encryption: { key: new Uint8Array(32).fill(9) },
      shards: 1,
      syncIntervalMs: 0,
      maxFileBytes: 17 * 2 ** 20,
      autoCompact: false,
    } as const;
    const valueFor = (index: number) => new Uint8Array(16352).fill(index % 251);
    let db = await VarMap.open(directory, options);
    const count = 1100 + 50; // file 1 holds ~1088 records (rotation past 17 MiB), file 2 the rest
    for (let index = 0; index < count; index++) db.put(keys.fromString(`k${index}`, 16), valueFor(index));
    await db.close();
    db = await VarMap.open(directory, options);
    expect(db.stats().files).toBeGreaterThanOrEqual(2);
    // Read everything twice: the second pass is served from the value cache.
    const wrong: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      for (let index = 0; index < count; index++) {
        const value = db.get(keys.fromString(`k${index}`, 16));
        if (value === undefined || !Buffer.from(value).equals(valueFor(index))) wrong.push(index);
      }
    }
    expect(wrong).toEqual([]);
    expect(db.stats().cacheHits).toBeGreaterThan(0);
    await db.close();
  });

  it('a 4 KiB value, which spans two pages, reads back as a fresh copy from the cache and from disk, before and after sync()', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-large-'));
    directories.push(directory);
    const options = { keySize: 8, encryption: { key: new Uint8Array(32).fill(7) }, shards: 1, syncIntervalMs: 0 } as const;
    const valueFor = (index: number) => Uint8Array.from({ length: 4096 }, (_, offset) => (index * 7 + offset) & 0xff);
    const count = 300;
    let db = await VarMap.open(directory, options);
    for (let index = 0; index < count; index++) db.put(keys.u64(index), valueFor(index));
    const readAll = () => {
      const wrong: number[] = [];
      const values: Uint8Array[] = [];
      for (let index = 0; index < count; index++) {
        const value = db.get(keys.u64(index));
        if (value === undefined || !Buffer.from(value).equals(valueFor(index))) wrong.push(index);
        else values.push(value);
      }
      // Every value is its own copy: overwriting one changes no other, and nothing stored.
      for (const value of values) value.fill(0xee);
      return wrong;
    };
    expect(readAll()).toEqual([]);
    await db.sync();
    expect(readAll()).toEqual([]);
    expect(readAll()).toEqual([]);
    await db.close();
    db = await VarMap.open(directory, { ...options, cacheBytes: 0 });
    expect(readAll()).toEqual([]);
    await db.close();
  });

  it('pages and whole large values share one cacheBytes budget: a store that fits is read from memory', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-large-'));
    directories.push(directory);
    // 200 values of 64 KiB (12.5 MiB) and 2,000 small ones, under a 24 MiB cache. A fixed split with
    // 1/8 for large values (3 MiB) held 46 of them; one shared budget holds them all.
    const options = {
      keySize: 16,
      encryption: { key: new Uint8Array(32).fill(9) },
      shards: 1,
      syncIntervalMs: 0,
      cacheBytes: 24 * 2 ** 20,
    } as const;
    const large = (index: number) => new Uint8Array(65536).fill(index % 251);
    const small = (index: number) => new Uint8Array(100).fill(index % 13);
    let db = await VarMap.open(directory, options);
    for (let index = 0; index < 200; index++) db.put(keys.fromString(`large${index}`, 16), large(index));
    for (let index = 0; index < 2000; index++) db.put(keys.fromString(`small${index}`, 16), small(index));
    await db.close();
    db = await VarMap.open(directory, options);
    const same = (value: Uint8Array | undefined, expected: Uint8Array): boolean =>
      value !== undefined && Buffer.from(value).equals(expected);
    const readAll = (): void => {
      const wrong: string[] = [];
      for (let index = 0; index < 200; index++)
        if (!same(db.get(keys.fromString(`large${index}`, 16)), large(index))) wrong.push(`large${index}`);
      for (let index = 0; index < 2000; index++)
        if (!same(db.get(keys.fromString(`small${index}`, 16)), small(index))) wrong.push(`small${index}`);
      expect(wrong).toEqual([]);
    };
    // Two passes: S3-FIFO admits on the first read and promotes on the second.
    readAll();
    readAll();
    const before = db.stats();
    readAll();
    const after = db.stats();
    expect(after.cacheMisses - before.cacheMisses).toBe(0);
    expect(after.cacheBytes).toBeLessThanOrEqual(24 * 2 ** 20);
    // warmup() after a reopen loads the large values whole (the form get() caches) and the small
    // values' pages: the first pass is then served from memory.
    await db.close();
    db = await VarMap.open(directory, options);
    await db.warmup();
    const warmed = db.stats();
    readAll();
    expect(db.stats().cacheMisses - warmed.cacheMisses).toBe(0);
    // Compaction drops the retired files' values and pages from the cache; reads stay correct.
    for (let index = 0; index < 200; index += 2) db.delete(keys.fromString(`large${index}`, 16));
    await db.compact();
    for (let index = 0; index < 200; index++) {
      const value = db.get(keys.fromString(`large${index}`, 16));
      expect(index % 2 === 0 ? value === undefined : same(value, large(index))).toBe(true);
    }
    await db.close();
  });
});

describe('pages written but not yet durable', () => {
  it('more than the kept copies (1024 pages a file) between barriers: every value reads back, before and after sync()', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-unsynced-'));
    directories.push(directory);
    // 8,000 records of ~1 KiB in one shard: about 2,000 pages written before the only barrier. The
    // copies of the oldest pages are recycled for newer ones; reads of those pages go to the file.
    const db = await VarMap.open(directory, {
      keySize: 16,
      encryption: { key: new Uint8Array(32).fill(5) },
      shards: 1,
      syncIntervalMs: 0,
      writeBufferBytes: 64 * 1024,
    });
    const valueFor = (index: number) => new Uint8Array(1000).fill((index * 7) % 251);
    const wrongValues = (): number[] => {
      const wrong: number[] = [];
      for (let index = 0; index < 8000; index++) {
        const value = db.get(keys.fromString(`u${index}`, 16));
        if (value === undefined || !Buffer.from(value).equals(valueFor(index))) wrong.push(index);
      }
      return wrong;
    };
    for (let index = 0; index < 8000; index++) {
      db.put(keys.fromString(`u${index}`, 16), valueFor(index));
      // Read back an older record now and then, while its page may have lost its copy.
      if (index % 500 === 499)
        expect(Buffer.from(db.get(keys.fromString(`u${index - 450}`, 16))!).equals(valueFor(index - 450))).toBe(true);
    }
    expect(wrongValues()).toEqual([]);
    await db.sync();
    expect(wrongValues()).toEqual([]);
    await db.close();
  });
  it('pages inside one large value are read back from disk, not kept as unsynced copies nor promoted into the page cache', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-large-'));
    directories.push(directory);
    const options = {
      keySize: 8,
      encryption: { key: new Uint8Array(32).fill(5) },
      shards: 1,
      syncIntervalMs: 0,
      cacheBytes: 64 * 2 ** 20,
    } as const;
    // 64 KiB values span 17 pages: 15 of them hold nothing but the value. A small record between two
    // large ones shares a page with each, so those boundary pages must still be served.
    const largeFor = (index: number) => Uint8Array.from({ length: 65536 }, (_, offset) => (index * 13 + offset * 7) & 0xff);
    const smallFor = (index: number) => new Uint8Array(40).fill(index & 0xff);
    const count = 40;
    const db = await VarMap.open(directory, options);
    const readAll = () => {
      const wrong: string[] = [];
      for (let index = 0; index < count; index++) {
        if (!Buffer.from(db.get(keys.u64(2 * index)) ?? []).equals(largeFor(index))) wrong.push(`large ${index}`);
        if (!Buffer.from(db.get(keys.u64(2 * index + 1)) ?? []).equals(smallFor(index))) wrong.push(`small ${index}`);
      }
      return wrong;
    };
    for (let index = 0; index < count; index++) {
      db.put(keys.u64(2 * index), largeFor(index));
      db.put(keys.u64(2 * index + 1), smallFor(index));
      // Right after the write, before any barrier: from the write buffer, unsynced copies or disk.
      expect(Buffer.from(db.get(keys.u64(2 * index)) ?? []).equals(largeFor(index))).toBe(true);
    }
    expect(readAll()).toEqual([]);
    const cachedBeforeSync = db.stats().cacheBytes;
    await db.sync();
    // Promoted by the barrier: at most the two boundary pages of each large value (a page copy of all
    // 17 pages of each would be 40 × 17 × 4 KiB here).
    const promoted = db.stats().cacheBytes - cachedBeforeSync;
    expect(promoted).toBeLessThanOrEqual(count * 2 * 4096 + 4096);
    expect(readAll()).toEqual([]);
    expect(readAll()).toEqual([]);
    await db.close();
  });
});
