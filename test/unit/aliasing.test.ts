/**
 * Node's Buffer.prototype.slice returns a view, not a copy. These tests pin that no caller-supplied
 * Buffer is ever aliased or modified by the store, and that values handed out are independent copies.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/config.js';
import { Engine } from '../../src/engine/engine.js';
import { CollectionKind } from '../../src/format/manifest.js';
import { ArmdbError, VarMap, VarTree } from '../../src/index.js';
import { directoriesRemovedAfterEach } from '../helpers/temp-dir.js';

const makeDirectory = directoriesRemovedAfterEach(false);
const temporaryDirectory = (): string => makeDirectory('alias');

describe('no aliasing of caller buffers', () => {
  it("close() wipes armdb's copy of the key, never the caller's Buffer", async () => {
    const key = randomBytes(32);
    const original = Buffer.from(key);
    const directory = temporaryDirectory();
    const db = await VarMap.open(directory, { keySize: 16, encryption: { key }, syncIntervalMs: 0 });
    await db.close();
    expect(key.equals(original)).toBe(true);
    const again = await VarMap.open(directory, { keySize: 16, encryption: { key }, syncIntervalMs: 0 });
    await again.close();
  });

  it("an open refused before it takes the lock (ARMDB_LOCKED) still zeroes the engine's copy of the secret", async () => {
    const directory = temporaryDirectory();
    const key = randomBytes(32);
    const db = await VarMap.open(directory, { keySize: 16, encryption: { key }, syncIntervalMs: 0 });
    for (const encryption of [{ key }, { passphrase: 'correct horse', scryptLogN: 10 }]) {
      const resolved = resolveOptions({ keySize: 16, encryption, syncIntervalMs: 0 }, 0);
      const credential = resolved.credential!;
      if (credential.kind === 'provider') throw new Error('a key or passphrase credential was resolved');
      const secret = credential.kind === 'key' ? credential.key : credential.passphrase;
      expect(secret.some((byte) => byte !== 0)).toBe(true);
      const error = await Engine.open(directory, resolved, CollectionKind.varMap).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ArmdbError);
      expect((error as ArmdbError).code).toBe('ARMDB_LOCKED');
      expect(secret.every((byte) => byte === 0)).toBe(true);
    }
    await db.close();
  });

  it.each([
    ['node', { key: new Uint8Array(32).fill(1) }, 'node'],
    ['noble', { key: new Uint8Array(32).fill(1) }, 'noble'],
    ['none', 'none', 'node'],
  ] as const)(
    'pages read from disk (%s) never share memory with the next read: cached pages and values stay as written',
    async (_name, encryption, cipher) => {
      // Reads share one ciphertext buffer; what decryption returns (and the cache keeps) must be fresh memory.
      const directory = temporaryDirectory();
      const options = { keySize: 16, encryption, cipher, syncIntervalMs: 0, shards: 1 } as const;
      const valueFor = (index: number): Uint8Array => new Uint8Array(3000).fill(index & 0xff);
      const keyOf = (index: number): Uint8Array => new Uint8Array(16).fill(index + 1);
      let db = await VarMap.open(directory, options);
      for (let index = 0; index < 40; index++) db.put(keyOf(index), valueFor(index));
      await db.close();
      db = await VarMap.open(directory, { ...options, hints: false });
      const first = [0, 1, 2].map((index) => db.get(keyOf(index)));
      for (let index = 0; index < 40; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index));
      for (let index = 0; index < 40; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index)); // from the cache
      expect(first).toEqual([0, 1, 2].map(valueFor));
      expect(db.stats().cacheHits).toBeGreaterThan(0);
      await db.close();
    },
  );

  it('shard routing with shardPrefixBits does not modify the caller key', async () => {
    const db = await VarMap.open(temporaryDirectory(), {
      keySize: 4,
      shards: 4,
      shardPrefixBits: 12,
      encryption: 'none',
      syncIntervalMs: 0,
    });
    const key = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    db.put(key, Buffer.from('v'));
    expect([...key]).toEqual([0xff, 0xff, 0xff, 0xff]);
    await db.close();
  });

  it('mutating what get(), range() and atomic() handed out or were given leaves stored bytes intact', async () => {
    const secret = randomBytes(32);
    const directory = temporaryDirectory();
    let db = await VarTree.open(directory, { keySize: 4, encryption: { key: secret }, cipher: 'node', syncIntervalMs: 0 });
    const key = Buffer.from([0, 0, 0, 1]);
    db.put(key, Buffer.from('value-one'));
    await db.close();
    db = await VarTree.open(directory, { keySize: 4, encryption: { key: secret }, cipher: 'node', syncIntervalMs: 0 });
    const first = db.get(key)!;
    first.fill(0x41); // the page is now in the cache; this must not reach it
    expect(Buffer.from(db.get(key)!).toString()).toBe('value-one');
    for (const [rangeKey, value] of db.range()) {
      rangeKey.fill(0);
      value.fill(0);
    }
    expect(Buffer.from(db.get(key)!).toString()).toBe('value-one');
    const stagedKey = Buffer.from([0, 0, 0, 2]);
    const stagedValue = Buffer.from('staged');
    db.atomic(stagedKey, (tx) => {
      tx.put(stagedKey, stagedValue);
      stagedKey[3] = 9;
      stagedValue.fill(0x5a);
    });
    expect(Buffer.from(db.get(Buffer.from([0, 0, 0, 2]))!).toString()).toBe('staged');
    expect(db.get(Buffer.from([0, 0, 0, 9]))).toBeUndefined();
    await db.close();
  });
});

describe('after close', () => {
  it('size, isEmpty() and an atomic() that never touches its transaction throw ARMDB_CLOSED', async () => {
    const db = await VarMap.open(temporaryDirectory(), { keySize: 4, encryption: 'none', syncIntervalMs: 0 });
    await db.close();
    expect(() => db.size).toThrow(expect.objectContaining({ code: 'ARMDB_CLOSED' }));
    expect(() => db.isEmpty()).toThrow(expect.objectContaining({ code: 'ARMDB_CLOSED' }));
    expect(() => db.atomic(new Uint8Array(4), () => 1)).toThrow(expect.objectContaining({ code: 'ARMDB_CLOSED' }));
  });
});
