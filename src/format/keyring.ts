/**
 * The `KEYRING` (docs/format.md §8): random data keys wrapped under the key-encryption key (KEK).
 *
 * The KEK comes from the caller's raw key (HKDF) or passphrase (scrypt with the stored parameters).
 * The body ends in an HMAC under a key derived with the KEK — a wrong key fails it — and then an
 * unkeyed CRC-32 over everything before it, so accidental corruption is reported as ARMDB_INTEGRITY
 * rather than as a wrong key.
 */
import { armdbError, integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import { DATABASE_ID_BYTES, FORMAT_VERSION, KEY_BYTES, Limits, Magic, MAC_BYTES, SALT_BYTES, TAG_BYTES } from './constants.js';
import { crc32 } from './crc32.js';
import type { MacFunction } from './tag-file.js';

export const KEYRING_HEADER_BYTES = 80;
/** A wrapped key: 12-byte nonce, 32-byte ciphertext, 16-byte GCM tag. */
export const WRAPPED_KEY_BYTES = 12 + KEY_BYTES + TAG_BYTES;
export const KEYRING_ENTRY_BYTES = 4 + WRAPPED_KEY_BYTES;

export const KekKind = {
  /** The caller's 32-byte key through HKDF-SHA256. */
  rawKey: 1,
  /** The caller's passphrase through scrypt. */
  passphrase: 2,
} as const;
export type KekKindId = (typeof KekKind)[keyof typeof KekKind];

/** scrypt bounds, checked *before* the KDF runs so a doctored keyring cannot make open hang. */
export const ScryptBounds = {
  minLogN: 10,
  maxLogN: 20,
  maxR: 32,
  maxP: 16,
  /** 128 · r · N bytes of memory at most. */
  maxMemoryBytes: 256 * 2 ** 20,
  /** N · r · p at most (work). */
  maxWork: 2 ** 23,
} as const;

export interface ScryptParameters {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

export function checkScryptParameters(parameters: ScryptParameters): void {
  const { logN, r, p } = parameters;
  const ok =
    Number.isInteger(logN) &&
    logN >= ScryptBounds.minLogN &&
    logN <= ScryptBounds.maxLogN &&
    Number.isInteger(r) &&
    r >= 1 &&
    r <= ScryptBounds.maxR &&
    Number.isInteger(p) &&
    p >= 1 &&
    p <= ScryptBounds.maxP &&
    // RFC 7914 §2 requires N < 2^(128·r/8) = 2^(16·r); OpenSSL refuses anything else.
    logN < 16 * r &&
    128 * r * 2 ** logN <= ScryptBounds.maxMemoryBytes &&
    2 ** logN * r * p <= ScryptBounds.maxWork;
  if (!ok) throw integrityError(`keyring scrypt parameters (logN ${logN}, r ${r}, p ${p}) are outside the accepted bounds`);
}

export interface KeyringEntry {
  readonly keyId: number;
  readonly wrapped: Uint8Array;
}

export interface Keyring {
  readonly kekKind: KekKindId;
  /** Zero for a raw key. */
  readonly scrypt: ScryptParameters;
  readonly kdfSalt: Uint8Array;
  readonly databaseId: Uint8Array;
  readonly activeKeyId: number;
  /** The wrapped meta key (MAC key of the manifest), key id 0. */
  readonly wrappedMetaKey: Uint8Array;
  /** The wrapped data keys, ids ≥ 1, ascending. */
  readonly dataKeys: readonly KeyringEntry[];
}

export function encodeKeyring(keyring: Keyring, mac: MacFunction): Uint8Array {
  const bodyBytes = KEYRING_HEADER_BYTES + WRAPPED_KEY_BYTES + keyring.dataKeys.length * KEYRING_ENTRY_BYTES;
  const writer = new ByteWriter(bodyBytes + MAC_BYTES + 4);
  writer
    .raw(Magic.keyring, 8)
    .u16(FORMAT_VERSION)
    .u8(keyring.kekKind)
    .zeros(1)
    .u8(keyring.scrypt.logN)
    .zeros(3)
    .u32(keyring.scrypt.r)
    .u32(keyring.scrypt.p)
    .raw(keyring.kdfSalt, SALT_BYTES)
    .raw(keyring.databaseId, DATABASE_ID_BYTES)
    .u32(keyring.activeKeyId)
    .u32(keyring.dataKeys.length)
    .raw(keyring.wrappedMetaKey, WRAPPED_KEY_BYTES);
  for (const entry of keyring.dataKeys) writer.u32(entry.keyId).raw(entry.wrapped, WRAPPED_KEY_BYTES);
  writer.raw(mac(writer.bytes.subarray(0, bodyBytes)), MAC_BYTES);
  writer.u32(crc32(writer.bytes.subarray(0, bodyBytes + MAC_BYTES)));
  return writer.finish();
}

/**
 * Parses a keyring and checks its CRC and bounds, but not its MAC: the MAC key is derived from the
 * KEK, which needs the KDF parameters parsed here. Call {@link verifyKeyringMac} once the KEK is known.
 */
export function decodeKeyring(bytes: Uint8Array): Keyring {
  const minimum = KEYRING_HEADER_BYTES + WRAPPED_KEY_BYTES + MAC_BYTES + 4;
  if (bytes.length < minimum) throw integrityError(`keyring of ${bytes.length} bytes is truncated`);
  const checksummed = bytes.subarray(0, bytes.length - 4);
  const storedCrc = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if (crc32(checksummed) !== storedCrc) throw integrityError('keyring fails its CRC-32 (the file is damaged)');
  const reader = new ByteReader(bytes.subarray(0, bytes.length - 4 - MAC_BYTES), 'keyring');
  if (!equalBytes(reader.bytesView(8), Magic.keyring)) throw integrityError('keyring has a wrong magic number');
  const version = reader.u16();
  if (version !== FORMAT_VERSION)
    throw armdbError('ARMDB_FORMAT_MISMATCH', `the keyring has format version ${version}; this armdb reads version ${FORMAT_VERSION}`);
  const kekKind = reader.u8();
  if (kekKind !== KekKind.rawKey && kekKind !== KekKind.passphrase) throw integrityError(`keyring names unknown key kind ${kekKind}`);
  reader.zeros(1);
  const logN = reader.u8();
  reader.zeros(3);
  const r = reader.u32();
  const p = reader.u32();
  const scrypt = { logN, r, p };
  if (kekKind === KekKind.passphrase) checkScryptParameters(scrypt);
  else if (logN !== 0 || r !== 0 || p !== 0) throw integrityError('keyring for a raw key carries scrypt parameters');
  const kdfSalt = reader.copy(SALT_BYTES);
  const databaseId = reader.copy(DATABASE_ID_BYTES);
  const activeKeyId = reader.u32();
  const keyCount = reader.u32();
  if (keyCount < 1 || keyCount > Limits.maxKeyringKeys || keyCount * KEYRING_ENTRY_BYTES !== reader.remaining - WRAPPED_KEY_BYTES) {
    throw integrityError(`keyring claims ${keyCount} keys but holds ${reader.remaining} bytes`);
  }
  const wrappedMetaKey = reader.copy(WRAPPED_KEY_BYTES);
  const dataKeys: KeyringEntry[] = [];
  let previousKeyId = 0;
  for (let index = 0; index < keyCount; index++) {
    const keyId = reader.u32();
    if (keyId <= previousKeyId) throw integrityError('keyring key ids are not ascending');
    previousKeyId = keyId;
    dataKeys.push({ keyId, wrapped: reader.copy(WRAPPED_KEY_BYTES) });
  }
  reader.end();
  if (!dataKeys.some((entry) => entry.keyId === activeKeyId)) throw integrityError(`keyring's active key ${activeKeyId} is not in it`);
  return { kekKind, scrypt, kdfSalt, databaseId, activeKeyId, wrappedMetaKey, dataKeys };
}

/** True when the keyring's MAC verifies under `mac` (the KEK's MAC key). */
export function verifyKeyringMac(bytes: Uint8Array, mac: MacFunction): boolean {
  const bodyEnd = bytes.length - 4 - MAC_BYTES;
  return equalBytes(mac(bytes.subarray(0, bodyEnd)), bytes.subarray(bodyEnd, bodyEnd + MAC_BYTES));
}
