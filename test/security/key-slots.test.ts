/**
 * Key slots (docs/security-model.md §Key slots, docs/format.md §8): several credentials open one
 * store, each slot wraps the one KEK; what a removed slot's credential still opens with an old
 * KEYRING copy, with and without `rotateKek`; forged labels and doctored scrypt parameters in one
 * slot; version-1 KEYRINGs (the committed fixtures) open and are upgraded by the next key operation.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { describe, expect } from 'vitest';
import { makeCredential, openKeyring } from '../../src/crypto/keys.js';
import { nodeProvider } from '../../src/crypto/node-provider.js';
import { decodeKeyring, verifyKeyringMac } from '../../src/format/keyring.js';
import { type OpenOptions, VarMap } from '../../src/index.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { KEY_SIZE as FIXTURE_KEY_SIZE, SHARDS as FIXTURE_SHARDS, TEST_KEY, TEST_PASSPHRASE } from '../fixtures/stores/contents.mjs';
import { expectRejectCode } from '../helpers/errors.js';
import { storeTest as it, trackStore } from '../helpers/store.js';

const KEY_SIZE = 16;
const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`key-${String(index).padStart(12, '0')}`);
const valueAt = (index: number): Uint8Array => encoder.encode(`value ${index} `.repeat(10));

/** A clock the test moves by hand. */
function manualClock(startMs = Date.UTC(2026, 0, 1)): { now: () => number; advance: (ms: number) => void } {
  let current = startMs;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

type Encryption = OpenOptions['encryption'];

function optionsOf(encryption: Encryption, extra: Partial<OpenOptions> = {}): OpenOptions {
  return { keySize: KEY_SIZE, encryption, shards: 1, syncIntervalMs: 0, autoCompact: false, ...extra };
}

const phrase = (text: string) => ({ passphrase: text, scryptLogN: 10 });

async function openStore(dir: string, encryption: Encryption, now?: () => number): Promise<VarMap> {
  const options = optionsOf(encryption);
  return trackStore(dir, await VarMap.open(dir, now === undefined ? options : withEngineHooks({ ...options }, { now })));
}

async function fill(db: VarMap, first: number, count: number): Promise<void> {
  for (let index = first; index < first + count; index++) await db.put(keyOf(index), valueAt(index));
  await db.sync();
}

async function expectContents(dir: string, encryption: Encryption, count: number): Promise<void> {
  const db = await VarMap.open(dir, optionsOf(encryption));
  try {
    for (let index = 0; index < count; index++) expect(db.get(keyOf(index)), `key ${index}`).toEqual(valueAt(index));
  } finally {
    await db.close();
  }
}

const keyringPath = (dir: string): string => path.join(dir, 'KEYRING');

function withKeyringCrc(bytes: Buffer): Buffer {
  const fixed = Buffer.from(bytes);
  fixed.writeUInt32LE(crc32(fixed.subarray(0, fixed.length - 4)) >>> 0, fixed.length - 4);
  return fixed;
}

/** Byte offset of slot `index` in a version-2 KEYRING (docs/format.md §8.1, §8.4). */
function slotOffset(bytes: Uint8Array, index: number): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 100 + 72 * view.readUInt32LE(12);
  for (let slot = 0; slot < index; slot++) offset += 56 + view[offset + 1]! + view[offset + 2]! + view.readUInt16LE(offset + 4);
  return offset;
}

const context = { provider: nodeProvider, providerTimeoutMs: 1000, now: Date.now };

describe('key slots', () => {
  it('any slot opens the store; keySlots() lists labels, kinds and creation times, never secrets', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const clock = manualClock();
    const db = await openStore(dir, { key }, clock.now);
    await fill(db, 0, 20);
    clock.advance(1000);
    await db.addKeySlot(phrase('recovery words'), { label: 'recovery' });
    clock.advance(1000);
    const second = randomBytes(32);
    await db.addKeySlot({ key: second }, { label: 'ops' });
    expect(db.keySlots()).toEqual([
      { label: 'default', kind: 'key', createdAtMs: clock.now() - 2000 },
      { label: 'recovery', kind: 'passphrase', createdAtMs: clock.now() - 1000 },
      { label: 'ops', kind: 'key', createdAtMs: clock.now() },
    ]);
    const listed = JSON.stringify(db.keySlots());
    for (const secret of [key, second]) expect(listed).not.toContain(secret.toString('hex'));
    await db.close();
    for (const encryption of [{ key }, phrase('recovery words'), { key: second }, { key: second, slot: 'ops' }]) {
      await expectContents(dir, encryption, 20);
    }
    await expectRejectCode(VarMap.open(dir, optionsOf({ key: randomBytes(32) })), 'ARMDB_WRONG_KEY');
    // encryption.slot goes straight to one slot: another slot's credential is refused there.
    await expectRejectCode(VarMap.open(dir, optionsOf({ key: second, slot: 'default' })), 'ARMDB_WRONG_KEY');
    await expectRejectCode(VarMap.open(dir, optionsOf({ ...phrase('recovery words'), slot: 'no-such-slot' })), 'ARMDB_WRONG_KEY');
  });

  it('16 slots at most, labels unique; the last slot cannot be removed; removed credentials stop opening the store', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const keys = Array.from({ length: 16 }, () => randomBytes(32));
    const db = await openStore(dir, { key: keys[0]! });
    await fill(db, 0, 5);
    for (let index = 1; index < 16; index++) await db.addKeySlot({ key: keys[index]! }, { label: `slot-${index}` });
    expect(db.keySlots()).toHaveLength(16);
    await expect(db.addKeySlot({ key: randomBytes(32) }, { label: 'seventeenth' })).rejects.toThrow(RangeError);
    await expect(db.addKeySlot({ key: randomBytes(32) }, { label: 'slot-3' })).rejects.toThrow(RangeError);
    await expect(db.addKeySlot({ key: randomBytes(32) }, { label: '' })).rejects.toThrow(RangeError);
    await expect(db.addKeySlot({ key: randomBytes(32) }, { label: 'x'.repeat(65) })).rejects.toThrow(RangeError);
    await expect(db.removeKeySlot('no-such-slot')).rejects.toThrow(RangeError);
    for (let index = 1; index < 16; index++) await db.removeKeySlot(`slot-${index}`);
    await expect(db.removeKeySlot('default')).rejects.toThrow(RangeError);
    expect(db.keySlots().map((slot) => slot.label)).toEqual(['default']);
    await db.close();
    await expectContents(dir, { key: keys[0]! }, 5);
    for (const removed of keys.slice(1, 4)) await expectRejectCode(VarMap.open(dir, optionsOf({ key: removed })), 'ARMDB_WRONG_KEY');
  });

  it('changeKey replaces only the slot that opened the store; the other slots keep opening it', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const db = await openStore(dir, { key });
    await fill(db, 0, 10);
    await db.addKeySlot(phrase('recovery words'), { label: 'recovery' });
    await db.close();
    const reopened = await openStore(dir, phrase('recovery words'));
    await reopened.changeKey(phrase('new recovery words'));
    expect(reopened.keySlots().map((slot) => [slot.label, slot.kind])).toEqual([
      ['default', 'key'],
      ['recovery', 'passphrase'],
    ]);
    await reopened.close();
    await expectContents(dir, { key }, 10);
    await expectContents(dir, phrase('new recovery words'), 10);
    await expectRejectCode(VarMap.open(dir, optionsOf(phrase('recovery words'))), 'ARMDB_WRONG_KEY');
  });
});

describe('key slots, adversarial', () => {
  it('a KEYRING copy from before a slot was removed: without rotateKek its KEK opens the current KEYRING; with it, no longer', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const laptop = randomBytes(32);
    const db = await openStore(dir, { key });
    await fill(db, 0, 10);
    await db.addKeySlot({ key: laptop }, { label: 'laptop' });
    const stolen = fs.readFileSync(keyringPath(dir));
    await db.removeKeySlot('laptop');
    await db.rotateDataKey();
    await fill(db, 10, 5);
    const current = fs.readFileSync(keyringPath(dir));
    // The removed credential opens the stolen copy (its slot is there) and gets the KEK...
    const fromCopy = await openKeyring(stolen, makeCredential({ kind: 'key', key: laptop }), context);
    const kek = fromCopy.entries().kek.slice();
    fromCopy.destroy();
    // ...which is still the KEK of today's KEYRING: its MAC verifies, its data keys (the new one too) unwrap.
    expect(verifyKeyringMac(current, (body) => nodeProvider.hmac(kek.subarray(32), body))).toBe(true);
    expect(decodeKeyring(current).dataKeys.map((entry) => entry.keyId)).toEqual([1, 2]);
    // The copy put back in place does not open the store: its meta key no longer signs the MANIFEST.
    fs.writeFileSync(keyringPath(dir), stolen, { mode: 0o600 });
    await db.close().catch(() => undefined);
    await expectRejectCode(VarMap.open(dir, optionsOf({ key: laptop })), 'ARMDB_INTEGRITY');
    await expectRejectCode(VarMap.open(dir, optionsOf({ key })), 'ARMDB_INTEGRITY');
    fs.writeFileSync(keyringPath(dir), current, { mode: 0o600 });
    await expectContents(dir, { key }, 15);

    // With rotateKek the KEK of the stolen copy opens nothing written afterwards.
    const again = await openStore(dir, { key });
    await again.addKeySlot({ key: laptop }, { label: 'laptop' });
    const stolenAgain = fs.readFileSync(keyringPath(dir));
    await again.removeKeySlot('laptop', { rotateKek: true });
    await again.close();
    const rotated = fs.readFileSync(keyringPath(dir));
    const fromSecondCopy = await openKeyring(stolenAgain, makeCredential({ kind: 'key', key: laptop }), context);
    const oldKek = fromSecondCopy.entries().kek.slice();
    fromSecondCopy.destroy();
    expect(verifyKeyringMac(rotated, (body) => nodeProvider.hmac(oldKek.subarray(32), body))).toBe(false);
    await expectRejectCode(VarMap.open(dir, optionsOf({ key: laptop })), 'ARMDB_WRONG_KEY');
    await expectContents(dir, { key }, 15);
  });

  it('rotateKek needs every remaining slot: refused with ARMDB_WRONG_KEY (nothing changed) until their credentials are given', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const first = await openStore(dir, { key });
    await fill(first, 0, 5);
    await first.addKeySlot(phrase('recovery words'), { label: 'recovery' });
    await first.addKeySlot({ key: randomBytes(32) }, { label: 'laptop' });
    await first.close();
    const db = await openStore(dir, { key });
    const before = fs.readFileSync(keyringPath(dir));
    await expectRejectCode(db.removeKeySlot('laptop', { rotateKek: true }), 'ARMDB_WRONG_KEY');
    expect(fs.readFileSync(keyringPath(dir)).equals(before)).toBe(true);
    await expectRejectCode(db.removeKeySlot('laptop', { rotateKek: true, credentials: [phrase('wrong words')] }), 'ARMDB_WRONG_KEY');
    await db.removeKeySlot('laptop', { rotateKek: true, credentials: [phrase('recovery words')] });
    expect(db.keySlots().map((slot) => slot.label)).toEqual(['default', 'recovery']);
    await db.close();
    await expectContents(dir, { key }, 5);
    await expectContents(dir, phrase('recovery words'), 5);
  });

  it('a forged slot label (CRC recomputed): the other slot → ARMDB_INTEGRITY, the forged slot → ARMDB_WRONG_KEY', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const db = await openStore(dir, { key });
    await fill(db, 0, 5);
    const admin = randomBytes(32);
    await db.addKeySlot({ key: admin }, { label: 'guest' });
    await db.close();
    const original = fs.readFileSync(keyringPath(dir));
    const offset = slotOffset(original, 1);
    expect(original.subarray(offset + 56, offset + 61).toString()).toBe('guest');
    const forged = Buffer.from(original);
    forged.write('admin', offset + 56);
    fs.writeFileSync(keyringPath(dir), withKeyringCrc(forged), { mode: 0o600 });
    await expectRejectCode(VarMap.open(dir, optionsOf({ key })), 'ARMDB_INTEGRITY');
    await expectRejectCode(VarMap.open(dir, optionsOf({ key: admin })), 'ARMDB_WRONG_KEY');
    await expectRejectCode(VarMap.open(dir, optionsOf({ key: admin, slot: 'admin' })), 'ARMDB_WRONG_KEY');
    fs.writeFileSync(keyringPath(dir), original, { mode: 0o600 });
    await expectContents(dir, { key: admin }, 5);
  });

  it('scrypt parameters doctored in one slot only: in bounds → that slot WRONG_KEY, the other INTEGRITY; out of bounds → INTEGRITY before any scrypt', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const db = await openStore(dir, phrase('first words'));
    await fill(db, 0, 5);
    await db.addKeySlot(phrase('second words'), { label: 'second' });
    await db.close();
    const original = fs.readFileSync(keyringPath(dir));
    const second = slotOffset(original, 1);
    expect([original[second], original[second + 6], original[second + 7], original[second + 8]]).toEqual([2, 10, 8, 1]);
    const doctor = (logN: number, r: number, p: number): void => {
      const doctored = Buffer.from(original);
      doctored[second + 6] = logN;
      doctored[second + 7] = r;
      doctored[second + 8] = p;
      fs.writeFileSync(keyringPath(dir), withKeyringCrc(doctored), { mode: 0o600 });
    };
    doctor(11, 8, 1);
    await expectRejectCode(VarMap.open(dir, optionsOf(phrase('second words'))), 'ARMDB_WRONG_KEY');
    await expectRejectCode(VarMap.open(dir, optionsOf(phrase('first words'))), 'ARMDB_INTEGRITY');
    // 1 GiB, 2^30 work, zero: refused while parsing, so neither passphrase runs any scrypt.
    for (const [logN, r, p] of [
      [30, 8, 1],
      [20, 32, 1],
      [10, 0, 1],
      [10, 8, 0],
    ] as const) {
      doctor(logN, r, p);
      await expectRejectCode(VarMap.open(dir, optionsOf(phrase('first words'))), 'ARMDB_INTEGRITY');
      await expectRejectCode(VarMap.open(dir, optionsOf(phrase('second words'))), 'ARMDB_INTEGRITY');
    }
    fs.writeFileSync(keyringPath(dir), original, { mode: 0o600 });
    await expectContents(dir, phrase('second words'), 5);
  });
});

describe('version-1 KEYRINGs (committed fixtures) open and are upgraded by the next key operation', () => {
  const STORES = fileURLToPath(new URL('../fixtures/stores/', import.meta.url));
  const copyOf = (name: string, tempDir: () => string): string => {
    const dir = path.join(tempDir(), name);
    fs.cpSync(path.join(STORES, name), dir, { recursive: true });
    fs.chmodSync(keyringPath(dir), 0o600);
    return dir;
  };
  const fixtureOptions = (encryption: Encryption): OpenOptions => ({
    keySize: FIXTURE_KEY_SIZE,
    shards: FIXTURE_SHARDS,
    encryption,
    syncIntervalMs: 0,
  });
  const versionOf = (dir: string): number => fs.readFileSync(keyringPath(dir)).readUInt16LE(8);

  it('raw key: stays version 1 while only read and written; addKeySlot writes version 2 that both slots open', async ({ tempDir }) => {
    const dir = copyOf('pristine', tempDir);
    const before = fs.readFileSync(keyringPath(dir));
    const db = trackStore(dir, await VarMap.open(dir, fixtureOptions({ key: TEST_KEY })));
    const count = db.size;
    expect(db.keySlots().map((slot) => [slot.label, slot.kind])).toEqual([['default', 'key']]);
    await db.put(new Uint8Array(FIXTURE_KEY_SIZE).fill(7), encoder.encode('after the upgrade'));
    await db.sync();
    expect(versionOf(dir)).toBe(1);
    expect(fs.readFileSync(keyringPath(dir)).equals(before)).toBe(true);
    await db.addKeySlot(phrase('added words'), { label: 'added' });
    expect(versionOf(dir)).toBe(2);
    await db.close();
    for (const encryption of [{ key: TEST_KEY }, phrase('added words')]) {
      const reopened = await VarMap.open(dir, fixtureOptions(encryption));
      expect(reopened.size).toBe(count + 1);
      expect(reopened.keySlots().map((slot) => slot.label)).toEqual(['default', 'added']);
      await reopened.close();
    }
  });

  it('passphrase: rotateDataKey upgrades to version 2, and the same passphrase (the same scrypt) opens it', async ({ tempDir }) => {
    const dir = copyOf('passphrase', tempDir);
    const db = trackStore(dir, await VarMap.open(dir, fixtureOptions({ passphrase: TEST_PASSPHRASE })));
    const count = db.size;
    await db.rotateDataKey();
    expect(versionOf(dir)).toBe(2);
    const [slot] = decodeKeyring(fs.readFileSync(keyringPath(dir))).slots;
    expect([slot!.label, slot!.scrypt.logN]).toEqual(['default', 10]);
    await db.close();
    const reopened = await VarMap.open(dir, fixtureOptions({ passphrase: TEST_PASSPHRASE }));
    expect(reopened.size).toBe(count);
    await reopened.close();
    await expectRejectCode(VarMap.open(dir, fixtureOptions({ passphrase: 'not the passphrase' })), 'ARMDB_WRONG_KEY');
  });
});
