/**
 * The key hierarchy (src/crypto/keys.ts): keyring sealing and opening with a raw key or a
 * passphrase, wrong credentials, damaged and doctored keyrings, and secrets never printed.
 */
import { inspect } from 'node:util';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArmdbError, type ArmdbErrorCode } from '../../../src/errors.js';
import {
  createKeySet,
  DEFAULT_SCRYPT,
  KeySet,
  makeCredential,
  openKeyring,
  sealKeyring,
  wipeCredential,
  type Credential,
} from '../../../src/crypto/keys.js';
import { nobleProvider } from '../../../src/crypto/noble-provider.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import type { CryptoProvider } from '../../../src/crypto/provider.js';
import { decodeKeyring, SlotKind, type ScryptParameters } from '../../../src/format/keyring.js';
import { hex } from '../../helpers/bytes.js';

/** Cheap scrypt for tests (the lowest cost the keyring accepts). */
const FAST_SCRYPT: ScryptParameters = { logN: 10, r: 8, p: 1 };
const SEED = process.env['FC_SEED'] === undefined ? 0x4b455953 : Number(process.env['FC_SEED']);
const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];
const encoder = new TextEncoder();

/** Byte offsets of the first slot's fields in a one-key version-2 keyring (docs/format.md §8.4): 40 + 60 + 72. */
const SLOT = 172;
const OFFSET = {
  kekKind: SLOT,
  logN: SLOT + 6,
  r: SLOT + 7,
  p: SLOT + 8,
} as const;
const NOW_MS = 1_700_000_000_000;

const RAW_KEY = new Uint8Array(32).fill(0xab);
const PASSPHRASE = 'correct horse battery staple';

const rawCredential = (key: Uint8Array = RAW_KEY): Credential => makeCredential({ kind: 'key', key });
const passphraseCredential = (passphrase = PASSPHRASE, scrypt: ScryptParameters = FAST_SCRYPT): Credential =>
  makeCredential({ kind: 'passphrase', passphrase: encoder.encode(passphrase), scrypt });

/** The rejection of `promise`, or undefined when it resolved. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return undefined;
}

async function expectArmdbRejection(promise: Promise<unknown>, codes: readonly ArmdbErrorCode[], what = ''): Promise<ArmdbError> {
  const error = await rejectionOf(promise);
  expect(error, `${what}: must reject with an ArmdbError`).toBeInstanceOf(ArmdbError);
  expect(codes, `${what}: unexpected code ${(error as ArmdbError).code}`).toContain((error as ArmdbError).code);
  return error as ArmdbError;
}

/** Rewrites the trailing CRC-32 (u32 LE over everything before it) so that checks behind it are reached. */
function fixCrc(bytes: Uint8Array): Uint8Array {
  const body = bytes.subarray(0, bytes.length - 4);
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(bytes.length - 4, crc32(body) >>> 0, true);
  return bytes;
}

/** A copy of `keyring` with its scrypt fields replaced and its CRC recomputed. */
function withScrypt(keyring: Uint8Array, parameters: ScryptParameters): Uint8Array {
  const copy = keyring.slice();
  const view = new DataView(copy.buffer);
  view.setUint8(OFFSET.logN, parameters.logN);
  view.setUint8(OFFSET.r, parameters.r);
  view.setUint8(OFFSET.p, parameters.p);
  return fixCrc(copy);
}

function flipBit(source: Uint8Array, bit: number): Uint8Array {
  const copy = source.slice();
  copy[bit >>> 3]! ^= 1 << (bit & 7);
  return copy;
}

/** Ways a secret could show up in printed text. */
function leakPatterns(secret: Uint8Array): string[] {
  const buffer = Buffer.from(secret);
  const head = [...secret.subarray(0, 4)];
  return [
    buffer.toString('hex'),
    buffer.toString('hex').toUpperCase(),
    buffer.toString('hex').slice(0, 8),
    buffer.toString('hex').slice(0, 8).toUpperCase(),
    head.map((byte) => byte.toString(16).padStart(2, '0')).join(' '), // <Buffer ab ab ...>
    head.join(', '), // Uint8Array(32) [ 171, 171, ...
    head.join(','), // Array.prototype.join
    `"0":${head[0]},"1":${head[1]}`, // JSON of a typed array
    buffer.toString('base64'),
    buffer.toString('base64').slice(0, 8),
    buffer.toString('base64url'),
  ];
}

function renderings(value: unknown): string[] {
  return [
    inspect(value),
    inspect(value, { showHidden: true, depth: Infinity, getters: true }),
    inspect({ nested: [value] }, { depth: Infinity }),
    JSON.stringify(value) ?? '',
    JSON.stringify({ nested: [value] }),
    String(value),
    `${value as string}`,
    // biome-ignore lint/style/useTemplate: `+ ''` converts with the "default" hint, a template with "string": both renderings are checked
    (value as string) + '',
  ];
}

function expectNoLeak(value: unknown, secrets: readonly Uint8Array[], extra: readonly string[] = []): void {
  for (const text of renderings(value)) {
    for (const secret of secrets) {
      for (const pattern of leakPatterns(secret)) expect(text, `leaks ${pattern}`).not.toContain(pattern);
    }
    for (const pattern of extra) expect(text, `leaks ${pattern}`).not.toContain(pattern);
  }
}

function expectSameKeys(actual: KeySet, expected: KeySet): void {
  expect(hex(actual.databaseId)).toBe(hex(expected.databaseId));
  expect(actual.activeKeyId).toBe(expected.activeKeyId);
  expect(actual.keyIds).toEqual(expected.keyIds);
  expect(hex(actual.entries().metaKey)).toBe(hex(expected.entries().metaKey));
  for (const keyId of expected.keyIds) expect(hex(actual.dataKey(keyId)), `data key ${keyId}`).toBe(hex(expected.dataKey(keyId)));
  expect(hex(actual.manifestMacKey(nodeProvider))).toBe(hex(expected.manifestMacKey(nodeProvider)));
}

const context = (provider: CryptoProvider = nodeProvider) => ({ provider, providerTimeoutMs: 1000, now: () => NOW_MS });

/** A key set with one slot under `credential`, as a new store's. */
function keySet(credential: Credential = rawCredential(), provider?: CryptoProvider): Promise<KeySet> {
  return createKeySet(credential, context(provider));
}

/** A key set with two data keys, the second active. */
async function twoKeySet(credential: Credential = rawCredential()): Promise<KeySet> {
  const keys = await keySet(credential);
  keys.activeKeyId = keys.addDataKey(NOW_MS);
  return keys;
}

/** The sealed keyring of a key set made under `credential`. */
async function sealedUnder(credential: Credential, provider?: CryptoProvider, two = false): Promise<Uint8Array> {
  return sealKeyring(two ? await twoKeySet(credential) : await keySet(credential, provider), provider);
}

function open(bytes: Uint8Array, credential: Credential, provider?: CryptoProvider): Promise<KeySet> {
  return openKeyring(bytes, credential, context(provider));
}

describe('keyring round trip', () => {
  it.each(providers.flatMap((seal) => providers.map((open) => ({ seal, open, sealName: seal.name, openName: open.name }))))(
    'raw key: sealed with $sealName, opened with $openName',
    async ({ seal, open }) => {
      const keys = await twoKeySet();
      const bytes = sealKeyring(keys, seal);
      expect(decodeKeyring(bytes).slots.map((slot) => slot.kind)).toEqual([SlotKind.rawKey]);
      expectSameKeys(await openKeyring(bytes, rawCredential(), context(open)), keys);
    },
  );

  it.each(providers.map((provider) => ({ provider, name: provider.name })))(
    'passphrase (fast scrypt), $name provider',
    async ({ provider }) => {
      const keys = await twoKeySet(passphraseCredential());
      const bytes = sealKeyring(keys, provider);
      const [slot] = decodeKeyring(bytes).slots;
      expect(slot!.kind).toBe(SlotKind.passphrase);
      expect(slot!.scrypt).toEqual(FAST_SCRYPT);
      expectSameKeys(await open(bytes, passphraseCredential(), provider), keys);
    },
  );

  it('passphrase with DEFAULT_SCRYPT', async () => {
    const credential = passphraseCredential(PASSPHRASE, DEFAULT_SCRYPT);
    const keys = await keySet(credential);
    const bytes = sealKeyring(keys);
    expect(decodeKeyring(bytes).slots[0]!.scrypt).toEqual(DEFAULT_SCRYPT);
    expectSameKeys(await open(bytes, credential), keys);
  });

  it('the passphrase credential used to open does not need the same scrypt settings (they come from the file)', async () => {
    const keys = await keySet(passphraseCredential(PASSPHRASE, FAST_SCRYPT));
    const bytes = sealKeyring(keys);
    expectSameKeys(await open(bytes, passphraseCredential(PASSPHRASE, { logN: 12, r: 8, p: 1 })), keys);
  });

  it('sealing twice gives different bytes (fresh wrap nonces) that both open', async () => {
    const keys = await keySet();
    const first = sealKeyring(keys);
    const second = sealKeyring(keys);
    expect(hex(first)).not.toBe(hex(second));
    expectSameKeys(await open(first, rawCredential()), keys);
    expectSameKeys(await open(second, rawCredential()), keys);
  });

  it('a removed data key is not in the resealed keyring', async () => {
    const keys = await twoKeySet();
    keys.removeDataKey(1);
    const opened = await open(sealKeyring(keys), rawCredential());
    expect(opened.keyIds).toEqual([2]);
    expect(() => opened.dataKey(1)).toThrow(ArmdbError);
  });
});

describe('wrong credentials', () => {
  it.each(providers.map((provider) => ({ provider, name: provider.name })))(
    'wrong raw key → ARMDB_WRONG_KEY ($name)',
    async ({ provider }) => {
      const bytes = await sealedUnder(rawCredential(), provider);
      const other = RAW_KEY.slice();
      other[31] = 0xaa;
      await expectArmdbRejection(open(bytes, rawCredential(other), provider), ['ARMDB_WRONG_KEY'], 'one byte off');
      await expectArmdbRejection(open(bytes, rawCredential(new Uint8Array(32)), provider), ['ARMDB_WRONG_KEY'], 'zero key');
      await expectArmdbRejection(open(bytes, rawCredential(RAW_KEY.subarray(0, 16)), provider), ['ARMDB_WRONG_KEY'], 'short key');
    },
  );

  it('wrong passphrase → ARMDB_WRONG_KEY', async () => {
    const bytes = await sealedUnder(passphraseCredential());
    await expectArmdbRejection(open(bytes, passphraseCredential(`${PASSPHRASE}!`)), ['ARMDB_WRONG_KEY']);
    await expectArmdbRejection(open(bytes, passphraseCredential('')), ['ARMDB_WRONG_KEY']);
  });

  it('a passphrase keyring opened with a raw key, and the reverse → ARMDB_WRONG_KEY', async () => {
    const passphraseKeyring = await sealedUnder(passphraseCredential());
    await expectArmdbRejection(open(passphraseKeyring, rawCredential()), ['ARMDB_WRONG_KEY'], 'raw key on passphrase keyring');
    const rawKeyring = await sealedUnder(rawCredential());
    await expectArmdbRejection(open(rawKeyring, passphraseCredential()), ['ARMDB_WRONG_KEY'], 'passphrase on raw-key keyring');
  });

  it('the error does not show the credential', async () => {
    const bytes = await sealedUnder(rawCredential());
    const wrong = new Uint8Array(32).fill(0xab ^ 0x11);
    const error = await expectArmdbRejection(open(bytes, rawCredential(wrong)), ['ARMDB_WRONG_KEY']);
    for (const text of [error.message, String(error), inspect(error), error.stack ?? '']) {
      for (const pattern of [...leakPatterns(wrong), ...leakPatterns(RAW_KEY)]) expect(text).not.toContain(pattern);
    }
  });
});

describe('damaged keyrings', () => {
  it('every single-bit flip anywhere in a raw-key keyring → ArmdbError INTEGRITY or WRONG_KEY', async () => {
    const bytes = await sealedUnder(rawCredential(), undefined, true);
    const failures: string[] = [];
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const error = await rejectionOf(open(flipBit(bytes, bit), rawCredential()));
      if (!(error instanceof ArmdbError) || !['ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY', 'ARMDB_FORMAT_MISMATCH'].includes(error.code)) {
        failures.push(`bit ${bit}: ${error === undefined ? 'opened' : String(error)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('every single-bit flip anywhere in a passphrase keyring → ArmdbError (the CRC refuses it before scrypt)', async () => {
    const bytes = await sealedUnder(passphraseCredential());
    const failures: string[] = [];
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const error = await rejectionOf(open(flipBit(bytes, bit), passphraseCredential()));
      if (!(error instanceof ArmdbError) || !['ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY', 'ARMDB_FORMAT_MISMATCH'].includes(error.code)) {
        failures.push(`bit ${bit}: ${error === undefined ? 'opened' : String(error)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('every single-bit flip before the CRC, with the CRC recomputed, of a raw-key keyring → ArmdbError', async () => {
    const bytes = await sealedUnder(rawCredential(), undefined, true);
    const failures: string[] = [];
    const codes = new Set<string>();
    for (let bit = 0; bit < (bytes.length - 4) * 8; bit++) {
      const error = await rejectionOf(open(fixCrc(flipBit(bytes, bit)), rawCredential()));
      if (!(error instanceof ArmdbError) || !['ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY', 'ARMDB_FORMAT_MISMATCH'].includes(error.code)) {
        failures.push(`bit ${bit}: ${error === undefined ? 'opened' : String(error)}`);
      } else codes.add(error.code);
    }
    expect(failures).toEqual([]);
    // Framing checks and the MAC both got exercised.
    expect([...codes].sort()).toEqual(['ARMDB_FORMAT_MISMATCH', 'ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY']);
  });

  it('single-bit flips, with the CRC recomputed, of a passphrase keyring → ArmdbError (header bits + random sample)', async () => {
    const bytes = await sealedUnder(passphraseCredential());
    const check = async (bit: number): Promise<void> => {
      const error = await rejectionOf(open(fixCrc(flipBit(bytes, bit)), passphraseCredential()));
      expect(error, `bit ${bit}`).toBeInstanceOf(ArmdbError);
      expect(['ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY', 'ARMDB_FORMAT_MISMATCH'], `bit ${bit}: ${String(error)}`).toContain(
        (error as ArmdbError).code,
      );
    };
    // Every bit of the version and of the slot's kind, lengths, logN, r, p and reserved bytes: some
    // of these reach scrypt with other (in-bounds) parameters, others must be refused by the bounds.
    for (let bit = 8 * 8; bit < 12 * 8; bit++) await check(bit);
    for (let bit = SLOT * 8; bit < (SLOT + 16) * 8; bit++) await check(bit);
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: (bytes.length - 4) * 8 - 1 }), check), { numRuns: 60, seed: SEED });
  });

  it('a truncated or extended keyring → ARMDB_INTEGRITY', async () => {
    const bytes = await sealedUnder(rawCredential());
    for (const length of [0, 1, 4, 100, bytes.length - 1]) {
      await expectArmdbRejection(
        open(fixCrcIfLongEnough(bytes.slice(0, length)), rawCredential()),
        ['ARMDB_INTEGRITY'],
        `length ${length}`,
      );
    }
    const longer = new Uint8Array(bytes.length + 64);
    longer.set(bytes);
    await expectArmdbRejection(open(fixCrc(longer), rawCredential()), ['ARMDB_INTEGRITY'], 'extended');
  });
});

function fixCrcIfLongEnough(bytes: Uint8Array): Uint8Array {
  return bytes.length >= 4 ? fixCrc(bytes) : bytes;
}

describe('scrypt parameters in the keyring', () => {
  it('sit at the documented offsets of the slot (logN u8 @+6, r u8 @+7, p u8 @+8) and an in-bounds edit reaches scrypt', async () => {
    const bytes = await sealedUnder(passphraseCredential());
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(view.getUint8(OFFSET.kekKind)).toBe(SlotKind.passphrase);
    expect(view.getUint8(OFFSET.logN)).toBe(FAST_SCRYPT.logN);
    expect(view.getUint8(OFFSET.r)).toBe(FAST_SCRYPT.r);
    expect(view.getUint8(OFFSET.p)).toBe(FAST_SCRYPT.p);

    // Control: rewriting the same values and the CRC changes nothing.
    const same = withScrypt(bytes, FAST_SCRYPT);
    expect(hex(same)).toBe(hex(bytes));
    await expect(open(same, passphraseCredential())).resolves.toBeInstanceOf(KeySet);

    // In-bounds edits parse as edited and derive another KEK: the MAC then fails.
    for (const edited of [
      { logN: 11, r: 8, p: 1 },
      { logN: 10, r: 9, p: 1 },
      { logN: 10, r: 8, p: 2 },
    ]) {
      const doctored = withScrypt(bytes, edited);
      expect(decodeKeyring(doctored).slots[0]!.scrypt).toEqual(edited);
      await expectArmdbRejection(open(doctored, passphraseCredential()), ['ARMDB_WRONG_KEY'], JSON.stringify(edited));
    }
  });

  // Each of these would take minutes, gigabytes or forever if it reached scrypt; the test finishing
  // (well inside the 60 s test timeout) shows the bounds refuse them first.
  const outOfBounds: readonly ScryptParameters[] = [
    { logN: 30, r: 8, p: 1 },
    { logN: 255, r: 8, p: 1 },
    { logN: 21, r: 8, p: 1 },
    { logN: 9, r: 8, p: 1 },
    { logN: 0, r: 8, p: 1 },
    { logN: 10, r: 0, p: 1 },
    { logN: 10, r: 33, p: 1 },
    { logN: 10, r: 0xff, p: 1 },
    { logN: 10, r: 8, p: 0 },
    { logN: 10, r: 8, p: 17 },
    { logN: 10, r: 8, p: 0xff },
    // Each field in range, the combination not: 1 GiB of memory; 2^24 work.
    { logN: 20, r: 8, p: 1 },
    { logN: 18, r: 32, p: 1 },
    { logN: 20, r: 2, p: 8 },
  ];

  it.each(outOfBounds.map((parameters) => [`logN ${parameters.logN}, r ${parameters.r}, p ${parameters.p}`, parameters] as const))(
    '%s → ARMDB_INTEGRITY before any KDF runs',
    async (_label, parameters) => {
      const bytes = await sealedUnder(passphraseCredential());
      const doctored = withScrypt(bytes, parameters);
      expect(() => decodeKeyring(doctored)).toThrow(ArmdbError);
      await expectArmdbRejection(open(doctored, passphraseCredential()), ['ARMDB_INTEGRITY'], JSON.stringify(parameters));
    },
  );

  it('a raw-key keyring that carries scrypt parameters → ARMDB_INTEGRITY', async () => {
    const bytes = await sealedUnder(rawCredential());
    expect(decodeKeyring(bytes).slots[0]!.scrypt).toEqual({ logN: 0, r: 0, p: 0 });
    await expectArmdbRejection(open(withScrypt(bytes, FAST_SCRYPT), rawCredential()), ['ARMDB_INTEGRITY']);
  });

  // KNOWN BUG (src/format/keyring.ts checkScryptParameters): the bounds accept r = 1 with logN ≥ 16,
  // but OpenSSL's scrypt requires N < 2^(16·r), so node:crypto throws RangeError
  // ERR_CRYPTO_INVALID_SCRYPT_PARAMS instead of the keyring being refused as ARMDB_INTEGRITY.
  // `it.fails` keeps the suite green while the bug exists; turn it into `it` once it is fixed.
  it('r = 1 with logN 16 (accepted by the bounds, refused by OpenSSL) → ARMDB_INTEGRITY', async () => {
    const bytes = await sealedUnder(passphraseCredential());
    const doctored = withScrypt(bytes, { logN: 16, r: 1, p: 1 });
    await expectArmdbRejection(open(doctored, passphraseCredential()), ['ARMDB_INTEGRITY']);
  });
});

describe('secrets are never printed', () => {
  it('a raw-key credential', () => {
    const credential = rawCredential();
    expectNoLeak(credential, [RAW_KEY], ['q6ur']);
    expect(inspect(credential)).toContain('redacted');
  });

  it('a passphrase credential', () => {
    const credential = passphraseCredential();
    expectNoLeak(credential, [encoder.encode(PASSPHRASE)], [PASSPHRASE, 'horse']);
  });

  it('makeCredential copies the secret; wipeCredential zeroes the copy only', () => {
    const key = RAW_KEY.slice();
    const credential = makeCredential({ kind: 'key', key });
    key.fill(0);
    expect(credential.kind === 'key' && hex(credential.key)).toBe(hex(RAW_KEY));
    wipeCredential(credential);
    expect(credential.kind === 'key' && credential.key.every((byte) => byte === 0)).toBe(true);

    const passphrase = encoder.encode(PASSPHRASE);
    const secret = makeCredential({ kind: 'passphrase', passphrase, scrypt: FAST_SCRYPT });
    wipeCredential(secret);
    expect(secret.kind === 'passphrase' && secret.passphrase.every((byte) => byte === 0)).toBe(true);
    expect(new TextDecoder().decode(passphrase)).toBe(PASSPHRASE);
  });

  it('a KeySet, created and opened', async () => {
    const keys = await twoKeySet();
    const secretsOf = (set: KeySet): Uint8Array[] => [set.entries().metaKey, set.entries().kek, ...set.entries().dataKeys.values()];
    expectNoLeak(keys, secretsOf(keys));
    const opened = await open(sealKeyring(keys), rawCredential());
    expectNoLeak(opened, secretsOf(opened));
    expect(JSON.parse(JSON.stringify(opened))).toEqual({ keyIds: [1, 2], activeKeyId: 2, slots: ['default'] });
  });
});

describe('KeySet.destroy', () => {
  const isZero = (bytes: Uint8Array): boolean => bytes.length === 32 && bytes.every((byte) => byte === 0);

  it('zeroes the meta key and every data key, created or opened', async () => {
    const keys = await twoKeySet(passphraseCredential());
    const opened = await open(sealKeyring(keys), passphraseCredential());
    for (const set of [keys, opened]) {
      const { metaKey, dataKeys, kek } = set.entries();
      expect(kek.every((byte) => byte === 0)).toBe(false);
      expect(isZero(metaKey)).toBe(false);
      expect(dataKeys.size).toBe(2);
      for (const key of dataKeys.values()) expect(isZero(key)).toBe(false);
      set.destroy();
      expect(isZero(set.entries().metaKey)).toBe(true);
      for (const key of set.entries().dataKeys.values()) expect(isZero(key)).toBe(true);
      // The views handed out before destroy() see the zeroes too (no stale copies).
      expect(isZero(metaKey)).toBe(true);
      expect(kek.every((byte) => byte === 0)).toBe(true);
    }
  });

  it('removeDataKey zeroes the removed key', async () => {
    const keys = await twoKeySet();
    const first = keys.dataKey(1);
    keys.removeDataKey(1);
    expect(isZero(first)).toBe(true);
    expect(() => keys.removeDataKey(keys.activeKeyId)).toThrow();
  });
});
