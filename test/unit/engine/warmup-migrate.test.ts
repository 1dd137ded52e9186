/**
 * warmup(): every page holding a live value is in the cache afterwards (reads then miss nothing),
 * within cacheBytes. migrate(fn): each entry visited once; 'keep' calls onInit, 'delete' deletes,
 * a value replaces; the result counts mutations and survives a reopen.
 */
import { describe, expect, it } from 'vitest';
import { TypedMap, VarMap, VarTree, codecs, keys } from '../../../src/index.js';
import { directoriesRemovedAfterEach } from '../../helpers/temp-dir.js';

const makeDirectory = directoriesRemovedAfterEach(false);
const temporaryDirectory = (): string => makeDirectory('warm');

const base = { keySize: 8, encryption: { key: new Uint8Array(32).fill(3) }, shards: 2, syncIntervalMs: 0, autoCompact: false } as const;

describe('warmup', () => {
  it('after warmup every get is a cache hit', async () => {
    const directory = temporaryDirectory();
    let db = await VarMap.open(directory, base);
    for (let index = 0; index < 3000; index++) db.put(keys.u64(index), new Uint8Array(200).fill(index % 256));
    await db.close();
    db = await VarMap.open(directory, base);
    await db.warmup();
    const before = db.stats();
    for (let index = 0; index < 3000; index++) expect(db.get(keys.u64(index))![0]).toBe(index % 256);
    const after = db.stats();
    expect(after.cacheMisses - before.cacheMisses).toBe(0);
    expect(after.cacheHits - before.cacheHits).toBeGreaterThanOrEqual(3000);
    await db.close();
  });

  it('stays within cacheBytes when the data is larger', async () => {
    const directory = temporaryDirectory();
    let db = await VarMap.open(directory, base);
    for (let index = 0; index < 4000; index++) db.put(keys.u64(index), new Uint8Array(400));
    await db.close();
    db = await VarMap.open(directory, { ...base, cacheBytes: 256 * 1024 });
    await db.warmup();
    expect(db.stats().cacheBytes).toBeLessThanOrEqual(256 * 1024);
    expect(db.stats().cacheBytes).toBeGreaterThan(128 * 1024);
    await db.close();
  });

  it('an aborted warmup rejects with ARMDB_ABORTED', async () => {
    const directory = temporaryDirectory();
    let db = await VarMap.open(directory, base);
    for (let index = 0; index < 100; index++) db.put(keys.u64(index), new Uint8Array(100));
    await db.close();
    db = await VarMap.open(directory, base);
    await expect(db.warmup({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ARMDB_ABORTED' });
    await db.close();
  });
});

describe('migrate', () => {
  it('keeps, deletes and rewrites as fn says, counts mutations, and calls onInit for kept entries', async () => {
    const directory = temporaryDirectory();
    const initialised: number[] = [];
    const hook = {
      onWrite() {},
      onInit(key: Uint8Array) {
        initialised.push(Number(new DataView(key.buffer, key.byteOffset).getBigUint64(0)));
      },
    };
    let db = await VarTree.open(directory, base);
    for (let index = 0; index < 1000; index++) db.put(keys.u64(index), new Uint8Array([index % 3]));
    await db.close();
    db = await VarTree.open(directory, { ...base, hook });
    initialised.length = 0; // onInit also ran at open
    const seen = new Set<number>();
    const mutations = await db.migrate((key, value) => {
      const index = Number(new DataView(key.buffer, key.byteOffset).getBigUint64(0));
      expect(seen.has(index)).toBe(false);
      seen.add(index);
      if (value[0] === 0) return 'keep';
      if (value[0] === 1) return 'delete';
      return new Uint8Array([7, 7]);
    });
    expect(seen.size).toBe(1000);
    const kept = [...seen].filter((index) => index % 3 === 0);
    expect(mutations).toBe(1000 - kept.length);
    expect(initialised.sort((a, b) => a - b)).toEqual(kept.sort((a, b) => a - b));
    await db.close();
    db = await VarTree.open(directory, base);
    expect(db.size).toBe([...seen].filter((index) => index % 3 !== 1).length);
    for (let index = 0; index < 1000; index++) {
      const value = db.get(keys.u64(index));
      if (index % 3 === 0) expect(value).toEqual(new Uint8Array([0]));
      else if (index % 3 === 1) expect(value).toBeUndefined();
      else expect(value).toEqual(new Uint8Array([7, 7]));
    }
    await db.close();
  });

  it('works on typed values and can be aborted', async () => {
    const directory = temporaryDirectory();
    const db = await TypedMap.open<{ n: number }>(directory, { ...base, codec: codecs.json });
    for (let index = 0; index < 3000; index++) db.put(keys.u64(index), { n: index });
    expect(await db.migrate((_key, value) => ({ n: value.n * 2 }))).toBe(3000);
    expect(db.get(keys.u64(21))).toEqual({ n: 42 });
    await expect(db.migrate(() => 'keep', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ARMDB_ABORTED' });
    await db.close();
  });
});
