/**
 * The committed stores of test/fixtures/stores (README.md there): each written by armdb 0.1.0 with
 * the format of docs/format.md (tag, hint and KEYRING files version 1, MANIFEST version 2), each
 * opened here and held to its documented outcome. A change to the on-disk format, or to what
 * recovery makes of a crashed or damaged store, fails this file.
 *
 * Every test opens a copy in a temporary directory, never the committed files (an open rewrites the
 * MANIFEST and hints). Git keeps no file modes, so the copy's KEYRING is set to 0600, as a store
 * expects of it (security-model.md: a group- or world-accessible KEYRING is refused).
 */
import { chmodSync, cpSync, existsSync, readFileSync } from 'node:fs';
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
