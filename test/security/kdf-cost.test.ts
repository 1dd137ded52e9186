/**
 * The scrypt cost of a passphrase store is never lowered silently (issue 13, item 5).
 *
 * rotateDataKey, crypto-shredding and `armdb rotate-key` used to re-seal the KEYRING with the cost of
 * the current open options (default log N 17, or whatever `scryptLogN` the opener passed), not the
 * stored one: a store created with log N 18 dropped to 17, and reopening with `scryptLogN: 10`
 * dropped it to 10. Every rewrite now keeps the stored cost unless `changeKey` is asked for another.
 * log N 19 and 20 used to pass validation and then always fail at creation with ARMDB_INTEGRITY (the
 * KEYRING's 256 MiB bound); they are refused by validation now, with the usual RangeError.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { VarMap } from '../../src/index.js';
import { storeTest, testKey } from '../helpers/store.js';

/** scrypt log N of the KEYRING's first slot (docs/format.md §8.4: slot at 40 + 60 + 72·keys, logN at +6). */
function storedLogN(dir: string): number {
  const keyring = fs.readFileSync(path.join(dir, 'KEYRING'));
  return keyring[100 + 72 * keyring.readUInt32LE(12) + 6]!;
}

const PHRASE = 'kdf cost passphrase';
const options = (scryptLogN?: number) => ({
  keySize: 8,
  shards: 1,
  syncIntervalMs: 0,
  encryption: scryptLogN === undefined ? { passphrase: PHRASE } : { passphrase: PHRASE, scryptLogN },
});

describe('scrypt cost across key operations', () => {
  storeTest(
    'rotateDataKey and crypto-shredding keep the stored cost, whatever scryptLogN the store was opened with',
    async ({ tempDir }) => {
      const dir = tempDir();
      const created = await VarMap.open(dir, options(12));
      created.put(new Uint8Array(8).fill(1), new Uint8Array([1]));
      await created.close();
      expect(storedLogN(dir)).toBe(12);

      // Opened with a lower cost in its options: the KEYRING's own cost opens it, and stays.
      const db = await VarMap.open(dir, options(10));
      try {
        await db.rotateDataKey();
        expect(storedLogN(dir)).toBe(12);
        const report = await db.compact({ reencrypt: true });
        expect(report.shreddedKeyIds).toEqual([1]);
        expect(storedLogN(dir)).toBe(12);
      } finally {
        await db.close();
      }
      // And the default options (log N 17 when creating) do not raise or lower it either.
      const again = await VarMap.open(dir, options());
      try {
        await again.rotateDataKey();
        expect(storedLogN(dir)).toBe(12);
        expect(again.get(new Uint8Array(8).fill(1))).toEqual(new Uint8Array([1]));
      } finally {
        await again.close();
      }
    },
  );

  storeTest(
    'changeKey keeps the stored cost unless it is given one; a raw-key store becoming a passphrase store gets the default',
    async ({ tempDir }) => {
      const dir = tempDir();
      const db = await VarMap.open(dir, options(11));
      try {
        await db.changeKey({ passphrase: 'second passphrase' });
        expect(storedLogN(dir)).toBe(11);
        await db.changeKey({ passphrase: 'third passphrase', scryptLogN: 10 });
        expect(storedLogN(dir), 'an explicit choice is honoured').toBe(10);
        await db.changeKey({ key: testKey(3) });
        expect(storedLogN(dir)).toBe(0);
        await db.changeKey({ passphrase: 'fourth passphrase', scryptLogN: 12 });
        expect(storedLogN(dir)).toBe(12);
      } finally {
        await db.close();
      }
      const reopened = await VarMap.open(dir, { ...options(), encryption: { passphrase: 'fourth passphrase' } });
      await reopened.close();
    },
  );

  storeTest('scryptLogN 19 and 20 are refused by validation (RangeError), before anything is created or changed', async ({ tempDir }) => {
    for (const scryptLogN of [19, 20]) {
      const dir = tempDir();
      const refused = await VarMap.open(dir, options(scryptLogN)).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RangeError);
      expect((refused as Error).message).toContain('"encryption.scryptLogN" expected integer 10..18');
      expect(fs.readdirSync(dir)).toEqual([]);
    }
    const dir = tempDir();
    const db = await VarMap.open(dir, options(10));
    try {
      const before = fs.readFileSync(path.join(dir, 'KEYRING'));
      await expect(db.changeKey({ passphrase: 'other', scryptLogN: 19 })).rejects.toBeInstanceOf(RangeError);
      expect(fs.readFileSync(path.join(dir, 'KEYRING')).equals(before)).toBe(true);
      // log N 18 is accepted (256 MiB).
      const accepted = await db.changeKey({ passphrase: 'other', scryptLogN: 18 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(accepted).toBeUndefined();
      expect(storedLogN(dir)).toBe(18);
    } finally {
      await db.close();
    }
  });
});
