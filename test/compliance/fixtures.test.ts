/**
 * The committed stores of test/fixtures/stores (README.md there): most written by armdb 0.1.0 with
 * the format of docs/format.md (tag, hint and KEYRING files version 1, MANIFEST version 2), two in
 * record version 2 (tag files version 2, hints version 3, §4.6), each opened here and held to its
 * documented outcome. A change to the on-disk format, or to what
 * recovery makes of a crashed or damaged store, fails this file.
 *
 * Every test opens a copy in a temporary directory, never the committed files (an open rewrites the
 * MANIFEST and hints). Git keeps no file modes, so the copy's KEYRING is set to 0600, as a store
 * expects of it (security-model.md: a group- or world-accessible KEYRING is refused).
 */
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { type OpenOptions, VarMap, VarTree } from '../../src/index.js';
import {
  applyWrites,
  fixtureKey,
  fixtureWrites,
  KEY_SIZE,
  SCRYPT_LOG_N,
  SHARDS,
  TEST_KEY,
  TEST_PASSPHRASE,
} from '../fixtures/stores/contents.mjs';
import { expectCode, expectRejectCode } from '../helpers/errors.js';
import { storeTest as it, trackStore } from '../helpers/store.js';

const STORES = fileURLToPath(new URL('../fixtures/stores/', import.meta.url));
/** What make.mjs recorded and the files alone cannot tell: the anchored epoch, the torn bytes, the flipped byte. */
const recorded = JSON.parse(readFileSync(path.join(STORES, 'expected.json'), 'utf8')) as {
  tamperedPage: { file: string; offset: number; page: number };
  tornTail: { tornKey: number; recoveredTornBytes: number };
  olderGeneration: { anchoredEpoch: number; keys: number };
};

const keyed = (extra: Partial<OpenOptions> = {}): OpenOptions => ({
  keySize: KEY_SIZE,
  shards: SHARDS,
  encryption: { key: TEST_KEY },
  syncIntervalMs: 0,
  ...extra,
});

/** A fresh copy of fixture `name` in a temporary directory, with the modes a store expects. */
function copyOf(name: string, tempDir: () => string): string {
  const dir = path.join(tempDir(), name);
  cpSync(path.join(STORES, name), dir, { recursive: true });
  const keyring = path.join(dir, 'KEYRING');
  if (existsSync(keyring)) chmodSync(keyring, 0o600);
  return dir;
}

/** The contents of a model (key index → value), by key index 0 … `keyCount - 1`, read from `db`. */
function expectContents(db: VarMap, model: ReadonlyMap<number, Uint8Array>, keyCount: number): void {
  for (let index = 0; index < keyCount; index++) expect(db.get(fixtureKey(index)), `key ${index}`).toEqual(model.get(index));
  expect(db.size).toBe(model.size);
}

const modelOf = (...sessions: [seed: number, first: number, count: number][]): Map<number, Uint8Array> => {
  const model = new Map<number, Uint8Array>();
  for (const [seed, first, count] of sessions) applyWrites(model, fixtureWrites(seed, first, count));
  return model;
};

describe('committed fixture stores (format of armdb 0.1.0)', () => {
  it('pristine: opens with the raw test key, holds exactly the seeded contents, and verifies', async ({ tempDir }) => {
    const dir = copyOf('pristine', tempDir);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    expectContents(db, modelOf([1, 0, 24]), 30);
    expect(db.stats().recoveredTornBytes).toBe(0);
    expect(db.stats().damagedHints).toBe(0);
    const report = await db.verify();
    expect(report.ok).toBe(true);
    expect(report.failures).toEqual([]);
  });

  it('pristine: its version-1 hints index it (no data file scanned), and are kept as they are', async ({ tempDir }) => {
    const dir = copyOf('pristine', tempDir);
    const hints = ['shard-000/000001.hint', 'shard-001/000002.hint'].map((name) => path.join(dir, name));
    const before = hints.map((hint) => readFileSync(hint));
    for (const bytes of before) expect(bytes.readUInt16LE(8)).toBe(1);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    expect(db.stats().filesFromHints).toBe(2);
    expectContents(db, modelOf([1, 0, 24]), 30);
    await db.close();
    hints.forEach((hint, index) => {
      expect(readFileSync(hint).equals(before[index]!)).toBe(true);
    });
  });

  it('pristine: another key is ARMDB_WRONG_KEY, and another class ARMDB_FORMAT_MISMATCH', async ({ tempDir }) => {
    const dir = copyOf('pristine', tempDir);
    const otherKey = TEST_KEY.map((byte: number) => byte ^ 0xff);
    await expectRejectCode(VarMap.open(dir, keyed({ encryption: { key: otherKey } })), 'ARMDB_WRONG_KEY');
    await expectRejectCode(VarTree.open(dir, keyed()), 'ARMDB_FORMAT_MISMATCH');
  });

  it('passphrase: opens with the test passphrase (scrypt logN 10) and holds the seeded contents; a wrong one is ARMDB_WRONG_KEY', async ({
    tempDir,
  }) => {
    const dir = copyOf('passphrase', tempDir);
    const encryption = { passphrase: TEST_PASSPHRASE, scryptLogN: SCRYPT_LOG_N };
    await expectRejectCode(VarMap.open(dir, keyed({ encryption: { ...encryption, passphrase: 'not the passphrase' } })), 'ARMDB_WRONG_KEY');
    const db = trackStore(dir, await VarMap.open(dir, keyed({ encryption })));
    expectContents(db, modelOf([2, 0, 24]), 30);
    expect((await db.verify()).ok).toBe(true);
  });

  it('torn tail: the torn, never-synced write is discarded and counted; every synced write is there', async ({ tempDir }) => {
    const dir = copyOf('torn-tail', tempDir);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    expect(db.has(fixtureKey(recorded.tornTail.tornKey))).toBe(false);
    expectContents(db, modelOf([3, 0, 24]), 30);
    expect(db.stats().recoveredTornBytes).toBe(recorded.tornTail.recoveredTornBytes);
    expect(recorded.tornTail.recoveredTornBytes).toBeGreaterThan(0);
    expect((await db.verify()).ok).toBe(true);
    // Recovery made the store consistent: a second open has nothing left to discard.
    await db.close();
    const again = trackStore(dir, await VarMap.open(dir, keyed()));
    expect(again.stats().recoveredTornBytes).toBe(0);
    expectContents(again, modelOf([3, 0, 24]), 30);
  });

  it('tampered page: refused with ARMDB_INTEGRITY at open when the data file is scanned (hints: false)', async ({ tempDir }) => {
    const dir = copyOf('tampered-page', tempDir);
    await expectRejectCode(VarMap.open(dir, keyed({ hints: false })), 'ARMDB_INTEGRITY');
  });

  it('tampered page: indexed from its hint it opens; the keys on that page throw ARMDB_INTEGRITY, the rest read back, verify names the page', async ({
    tempDir,
  }) => {
    const dir = copyOf('tampered-page', tempDir);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    const model = modelOf([1, 0, 24]);
    const damaged: number[] = [];
    for (const [index, value] of model) {
      try {
        expect(db.get(fixtureKey(index)), `key ${index}`).toEqual(value);
      } catch (error) {
        damaged.push(index);
        expectCode(() => {
          throw error;
        }, 'ARMDB_INTEGRITY');
      }
    }
    expect(damaged.length).toBeGreaterThan(0);
    expect(damaged.length).toBeLessThan(model.size);
    const report = await db.verify();
    expect(report.ok).toBe(false);
    // The flipped byte is in shard-000/000001.data (README.md): shard 0, file 1, the recorded page.
    const [shard, file] = recorded.tamperedPage.file.split('/');
    expect(report.failures.map(({ shard, fileId, pageIndex }) => ({ shard, fileId, pageIndex }))).toEqual([
      { shard: Number(shard!.slice('shard-'.length)), fileId: Number.parseInt(file!, 10), pageIndex: recorded.tamperedPage.page },
    ]);
  });

  it('older generation: refused with ARMDB_ROLLBACK when the application anchored the later epoch', async ({ tempDir }) => {
    const dir = copyOf('older-generation', tempDir);
    await expectRejectCode(VarMap.open(dir, keyed({ expectedMinEpoch: recorded.olderGeneration.anchoredEpoch })), 'ARMDB_ROLLBACK');
  });

  it('older generation: without an anchor it opens with the older contents (a whole-directory rollback is undetectable from the files)', async ({
    tempDir,
  }) => {
    const dir = copyOf('older-generation', tempDir);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    const older = modelOf([5, 0, 24]);
    expect(older.size).toBe(recorded.olderGeneration.keys);
    expectContents(db, older, 40);
    expect(db.stats().epoch).toBeLessThan(recorded.olderGeneration.anchoredEpoch);
  });
});

/** The u16 format version at offset 8 of every tag (or hint) file of a store, by file name. */
function headerVersions(dir: string, extension: 'tags' | 'hint'): Map<string, number> {
  const versions = new Map<string, number>();
  for (const shard of readdirSync(dir)
    .filter((name) => name.startsWith('shard-'))
    .sort())
    for (const name of readdirSync(path.join(dir, shard))
      .filter((file) => file.endsWith(`.${extension}`))
      .sort())
      versions.set(`${shard}/${name}`, readFileSync(path.join(dir, shard, name)).readUInt16LE(8));
  return versions;
}

describe('committed fixture stores of record version 2 (4-byte-aligned records, docs/format.md §4.6)', () => {
  it('aligned4: tag files version 2 and hints version 3; opens from its hints with exactly the seeded contents, and verifies', async ({
    tempDir,
  }) => {
    const dir = copyOf('aligned4', tempDir);
    expect([...headerVersions(dir, 'tags').values()]).toEqual([2, 2]);
    expect([...headerVersions(dir, 'hint').values()]).toEqual([3, 3]);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    expect(db.stats().filesFromHints).toBe(2);
    expect(db.stats().damagedHints).toBe(0);
    expectContents(db, modelOf([7, 0, 40]), 45);
    const report = await db.verify();
    expect(report.ok).toBe(true);
  });

  it('aligned4: scanned without hints it holds the same contents (the record scan reads 4-byte alignment)', async ({ tempDir }) => {
    const dir = copyOf('aligned4', tempDir);
    const db = trackStore(dir, await VarMap.open(dir, keyed({ hints: false })));
    expect(db.stats().filesFromHints).toBe(0);
    expectContents(db, modelOf([7, 0, 40]), 45);
  });

  it('aligned4-journal: copied after sync() while open, every synced write recovers from pages and journal', async ({ tempDir }) => {
    const dir = copyOf('aligned4-journal', tempDir);
    expect(readdirSync(path.join(dir, 'shard-000')).some((name) => name.endsWith('.journal'))).toBe(true);
    const db = trackStore(dir, await VarMap.open(dir, keyed()));
    expectContents(db, modelOf([8, 0, 40]), 45);
    expect(db.stats().recoveredTornBytes).toBe(0);
    await db.close();
    const again = trackStore(dir, await VarMap.open(dir, keyed()));
    expectContents(again, modelOf([8, 0, 40]), 45);
    expect((await again.verify()).ok).toBe(true);
  });

  it('a mixed store (version-1 files of pristine, version-2 files written now) opens, reads, and compacts into version 2', async ({
    tempDir,
  }) => {
    const dir = copyOf('pristine', tempDir);
    const options = keyed({ writeBufferBytes: 4096, maxFileBytes: 65536, autoCompact: false });
    let db = trackStore(dir, await VarMap.open(dir, options));
    const model = modelOf([1, 0, 24]);
    const later = fixtureWrites(9, 12, 30);
    for (const [index, value] of later) {
      if (value === undefined) db.delete(fixtureKey(index));
      else db.put(fixtureKey(index), value);
    }
    applyWrites(model, later);
    await db.close();
    const mixed = headerVersions(dir, 'tags');
    expect(new Set(mixed.values())).toEqual(new Set([1, 2]));
    // Each file's hint belongs to its record version: the old files keep their version-1 hints, the new have version 3.
    for (const [name, version] of headerVersions(dir, 'hint'))
      expect(version, name).toBe(mixed.get(name.replace('.hint', '.tags')) === 1 ? 1 : 3);

    db = trackStore(dir, await VarMap.open(dir, options));
    expect(db.stats().damagedHints).toBe(0);
    expectContents(db, model, 45);
    expect((await db.verify()).ok).toBe(true);
    await db.compact();
    expectContents(db, model, 45);
    await db.close();
    expect(new Set(headerVersions(dir, 'tags').values())).toEqual(new Set([2]));

    for (const hints of [true, false]) {
      db = trackStore(dir, await VarMap.open(dir, keyed({ hints })));
      expectContents(db, model, 45);
      await db.close();
    }
  });
});
