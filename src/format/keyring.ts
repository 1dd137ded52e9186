/**
 * The `KEYRING` (docs/format.md §8): random data keys wrapped under the key-encryption key (KEK).
 *
 * Version 2 (§8.1): the KEK is random; each key slot wraps it under one credential (a raw key through
 * HKDF, a passphrase through scrypt with the slot's own parameters, or a key provider's blob).
 * Version 1 (§8.7): the KEK came from the one credential directly.
 * The body ends in an HMAC under the KEK's MAC key — only the right KEK produces it — and then an
 * unkeyed CRC-32 over everything before it, so accidental corruption is reported as ARMDB_INTEGRITY
 * rather than as a wrong key.
 */
import { armdbError, integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import { DATABASE_ID_BYTES, KEY_BYTES, Limits, Magic, MAC_BYTES, SALT_BYTES, TAG_BYTES } from './constants.js';
import { crc32 } from './crc32.js';
import type { MacFunction } from './tag-file.js';

/** Version 1: one credential (docs/format.md §8.7). Read, upgraded on the next key operation, never written. */
export const KEYRING_V1 = 1;
/** Version 2: key slots and key ages (docs/format.md §8.1). */
export const KEYRING_V2 = 2;
/** The version this armdb writes. */
export const KEYRING_FORMAT_VERSION = KEYRING_V2;

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

/** A version-1 KEYRING (docs/format.md §8.7): one credential, no slots, no key ages. */
export interface KeyringV1 {
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

export function encodeKeyringV1(keyring: KeyringV1, mac: MacFunction): Uint8Array {
  const bodyBytes = KEYRING_HEADER_BYTES + WRAPPED_KEY_BYTES + keyring.dataKeys.length * KEYRING_ENTRY_BYTES;
  const writer = new ByteWriter(bodyBytes + MAC_BYTES + 4);
  writer
    .raw(Magic.keyring, 8)
    .u16(KEYRING_V1)
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
export function decodeKeyringV1(bytes: Uint8Array): KeyringV1 {
  const minimum = KEYRING_HEADER_BYTES + WRAPPED_KEY_BYTES + MAC_BYTES + 4;
  if (bytes.length < minimum) throw integrityError(`keyring of ${bytes.length} bytes is truncated`);
  const checksummed = bytes.subarray(0, bytes.length - 4);
  const storedCrc = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if (crc32(checksummed) !== storedCrc) throw integrityError('keyring fails its CRC-32 (the file is damaged)');
  const reader = new ByteReader(bytes.subarray(0, bytes.length - 4 - MAC_BYTES), 'keyring');
  if (!equalBytes(reader.bytesView(8), Magic.keyring)) throw integrityError('keyring has a wrong magic number');
  const version = reader.u16();
  if (version !== KEYRING_V1)
    throw armdbError('ARMDB_FORMAT_MISMATCH', `the keyring has format version ${version}; expected version ${KEYRING_V1} here`);
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

/** True when the keyring's MAC (either version: the MAC sits before the CRC) verifies under `mac` (the KEK's MAC key). */
export function verifyKeyringMac(bytes: Uint8Array, mac: MacFunction): boolean {
  const bodyEnd = bytes.length - 4 - MAC_BYTES;
  return equalBytes(mac(bytes.subarray(0, bodyEnd)), bytes.subarray(bodyEnd, bodyEnd + MAC_BYTES));
}

// ---------------------------------------------------------------------------------------------
// Version 2 (docs/format.md §8.1–§8.6)

export const KEYRING_V2_HEADER_BYTES = 40;
/** A data-key entry of version 2: key id, creation time, wrapped key. */
export const KEYRING_V2_ENTRY_BYTES = 4 + 8 + WRAPPED_KEY_BYTES;
/** The fixed part of a slot, before its label, provider id and blob. */
export const SLOT_FIXED_BYTES = 56;
/** The KEK of version 2: a 32-byte wrap key ‖ a 32-byte MAC key, random. */
export const KEK_BYTES = 2 * KEY_BYTES;
/** A KEK wrapped under a slot key: 12-byte nonce, 64-byte ciphertext, 16-byte GCM tag. */
export const WRAPPED_KEK_BYTES = 12 + KEK_BYTES + TAG_BYTES;

export const SlotKind = {
  /** A raw 32-byte key through HKDF-SHA256 with the slot's salt. */
  rawKey: 1,
  /** A passphrase through scrypt with the slot's parameters and salt. */
  passphrase: 2,
  /** A key provider (KMS, HSM): the blob is whatever its wrap() returned. */
  provider: 3,
} as const;
export type SlotKindId = (typeof SlotKind)[keyof typeof SlotKind];

export const SlotLimits = {
  /** Slots per keyring (LUKS2 has 32; 16 keeps open's worst case bounded). */
  maxSlots: 16,
  /** Label bytes (UTF-8). */
  maxLabelBytes: 64,
  /** Provider id bytes (UTF-8). */
  maxProviderIdBytes: 64,
  /** Provider blob bytes. */
  maxProviderBlobBytes: 1024,
} as const;

/** One key slot: everything but the label, provider id and blob is fixed-size. No secret here. */
export interface KeySlotRecord {
  readonly kind: SlotKindId;
  /** UTF-8 label, unique in the keyring. */
  readonly label: string;
  /** Zero for anything but a passphrase slot. */
  readonly scrypt: ScryptParameters;
  /** Milliseconds since the epoch. */
  readonly createdAtMs: number;
  /** 32 bytes; zeros for a provider slot. */
  readonly salt: Uint8Array;
  /** The provider's `id` (provider slots), else empty. */
  readonly providerId: string;
  /** The wrapped KEK ({@link WRAPPED_KEK_BYTES} for key and passphrase slots), or the provider's blob. */
  readonly blob: Uint8Array;
}

export interface KeyringEntryV2 extends KeyringEntry {
  /** Milliseconds since the epoch. */
  readonly createdAtMs: number;
}

export interface Keyring {
  readonly databaseId: Uint8Array;
  readonly activeKeyId: number;
  readonly wrappedMetaKey: Uint8Array;
  readonly dataKeys: readonly KeyringEntryV2[];
  readonly slots: readonly KeySlotRecord[];
}

/** The largest version-2 keyring: every key, 16 slots of the largest size (docs/format.md §9). */
export const MAX_KEYRING_V2_BYTES =
  KEYRING_V2_HEADER_BYTES +
  WRAPPED_KEY_BYTES +
  Limits.maxKeyringKeys * KEYRING_V2_ENTRY_BYTES +
  SlotLimits.maxSlots * (SLOT_FIXED_BYTES + SlotLimits.maxLabelBytes + SlotLimits.maxProviderIdBytes + SlotLimits.maxProviderBlobBytes) +
  MAC_BYTES +
  4;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** The fixed part of a slot plus its label and provider id: the AAD of its wrapped KEK (§8.4). */
export function encodeSlotHead(slot: KeySlotRecord): Uint8Array {
  const label = utf8.encode(slot.label);
  const providerId = utf8.encode(slot.providerId);
  return new ByteWriter(SLOT_FIXED_BYTES + label.length + providerId.length)
    .u8(slot.kind)
    .u8(label.length)
    .u8(providerId.length)
    .zeros(1)
    .u16(slot.blob.length)
    .u8(slot.scrypt.logN)
    .u8(slot.scrypt.r)
    .u8(slot.scrypt.p)
    .zeros(7)
    .u64(slot.createdAtMs)
    .raw(slot.salt, SALT_BYTES)
    .raw(label)
    .raw(providerId)
    .finish();
}

function keyringBodyBytes(keyring: Keyring, slotHeads: readonly Uint8Array[]): number {
  let bytes = KEYRING_V2_HEADER_BYTES + WRAPPED_KEY_BYTES + keyring.dataKeys.length * KEYRING_V2_ENTRY_BYTES;
  keyring.slots.forEach((slot, index) => {
    bytes += slotHeads[index]!.length + slot.blob.length;
  });
  return bytes;
}

/** Encodes a version-2 keyring (docs/format.md §8.1); `mac` is the KEK's MAC key as a function. */
export function encodeKeyring(keyring: Keyring, mac: MacFunction): Uint8Array {
  const slotHeads = keyring.slots.map(encodeSlotHead);
  const bodyBytes = keyringBodyBytes(keyring, slotHeads);
  const writer = new ByteWriter(bodyBytes + MAC_BYTES + 4);
  writer
    .raw(Magic.keyring, 8)
    .u16(KEYRING_V2)
    .u16(keyring.slots.length)
    .u32(keyring.dataKeys.length)
    .raw(keyring.databaseId, DATABASE_ID_BYTES)
    .u32(keyring.activeKeyId)
    .zeros(4)
    .raw(keyring.wrappedMetaKey, WRAPPED_KEY_BYTES);
  for (const entry of keyring.dataKeys) writer.u32(entry.keyId).u64(entry.createdAtMs).raw(entry.wrapped, WRAPPED_KEY_BYTES);
  keyring.slots.forEach((slot, index) => {
    writer.raw(slotHeads[index]!).raw(slot.blob);
  });
  writer.raw(mac(writer.bytes.subarray(0, bodyBytes)), MAC_BYTES);
  writer.u32(crc32(writer.bytes.subarray(0, bodyBytes + MAC_BYTES)));
  return writer.finish();
}

/** The version field of a keyring whose CRC and magic check out (1 or 2; anything else is refused). */
export function keyringVersion(bytes: Uint8Array): number {
  checkKeyringCrc(bytes);
  if (!equalBytes(bytes.subarray(0, 8), Magic.keyring)) throw integrityError('keyring has a wrong magic number');
  const version = new DataView(bytes.buffer, bytes.byteOffset + 8, 2).getUint16(0, true);
  if (version !== KEYRING_V1 && version !== KEYRING_V2)
    throw armdbError('ARMDB_FORMAT_MISMATCH', `the keyring has format version ${version}; this armdb reads versions 1 and 2`);
  return version;
}

function checkKeyringCrc(bytes: Uint8Array): void {
  if (bytes.length < KEYRING_V2_HEADER_BYTES + MAC_BYTES + 4) throw integrityError(`keyring of ${bytes.length} bytes is truncated`);
  const storedCrc = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== storedCrc) throw integrityError('keyring fails its CRC-32 (the file is damaged)');
}

function readUtf8(reader: ByteReader, length: number, what: string): string {
  try {
    return utf8Strict.decode(reader.bytesView(length));
  } catch (error) {
    throw integrityError(`keyring ${what} is not valid UTF-8`, error);
  }
}

function decodeSlot(reader: ByteReader): KeySlotRecord {
  const kind = reader.u8();
  if (kind !== SlotKind.rawKey && kind !== SlotKind.passphrase && kind !== SlotKind.provider)
    throw integrityError(`keyring slot names unknown kind ${kind}`);
  const labelBytes = reader.u8();
  const providerIdBytes = reader.u8();
  reader.zeros(1);
  const blobBytes = reader.u16();
  const scrypt = { logN: reader.u8(), r: reader.u8(), p: reader.u8() };
  reader.zeros(7);
  const createdAtMs = reader.u64();
  const salt = reader.copy(SALT_BYTES);
  if (labelBytes < 1 || labelBytes > SlotLimits.maxLabelBytes) throw integrityError(`keyring slot label of ${labelBytes} bytes`);
  const label = readUtf8(reader, labelBytes, 'slot label');
  if (kind === SlotKind.provider) {
    if (providerIdBytes < 1 || providerIdBytes > SlotLimits.maxProviderIdBytes)
      throw integrityError(`keyring provider id of ${providerIdBytes} bytes`);
    if (blobBytes < 1 || blobBytes > SlotLimits.maxProviderBlobBytes) throw integrityError(`keyring provider blob of ${blobBytes} bytes`);
    if (salt.some((byte) => byte !== 0)) throw integrityError('keyring provider slot carries a salt');
  } else {
    if (providerIdBytes !== 0) throw integrityError('keyring key or passphrase slot names a provider');
    if (blobBytes !== WRAPPED_KEK_BYTES) throw integrityError(`keyring slot holds a wrapped KEK of ${blobBytes} bytes`);
  }
  // Bounds before any KDF runs: a doctored slot cannot make open allocate gigabytes or hang (§8.6).
  if (kind === SlotKind.passphrase) checkScryptParameters(scrypt);
  else if (scrypt.logN !== 0 || scrypt.r !== 0 || scrypt.p !== 0)
    throw integrityError('keyring slot carries scrypt parameters it has no use for');
  const providerId = readUtf8(reader, providerIdBytes, 'provider id');
  const blob = reader.copy(blobBytes);
  return { kind: kind as SlotKindId, label, scrypt, createdAtMs, salt, providerId, blob };
}

/**
 * Parses a version-2 keyring and checks its CRC, framing and bounds (every slot's scrypt parameters
 * included), but not its MAC: that needs the KEK a slot yields. Call {@link verifyKeyringMac} then.
 */
export function decodeKeyring(bytes: Uint8Array): Keyring {
  if (keyringVersion(bytes) !== KEYRING_V2) throw armdbError('ARMDB_FORMAT_MISMATCH', `expected a keyring of version ${KEYRING_V2}`);
  const reader = new ByteReader(bytes.subarray(0, bytes.length - 4 - MAC_BYTES), 'keyring', 10);
  const slotCount = reader.u16();
  const keyCount = reader.u32();
  if (slotCount < 1 || slotCount > SlotLimits.maxSlots) throw integrityError(`keyring claims ${slotCount} slots`);
  if (keyCount < 1 || keyCount > Limits.maxKeyringKeys) throw integrityError(`keyring claims ${keyCount} keys`);
  const databaseId = reader.copy(DATABASE_ID_BYTES);
  const activeKeyId = reader.u32();
  reader.zeros(4);
  const wrappedMetaKey = reader.copy(WRAPPED_KEY_BYTES);
  if (keyCount * KEYRING_V2_ENTRY_BYTES > reader.remaining)
    throw integrityError(`keyring claims ${keyCount} keys but holds ${reader.remaining} bytes`);
  const dataKeys: KeyringEntryV2[] = [];
  let previousKeyId = 0;
  for (let index = 0; index < keyCount; index++) {
    const keyId = reader.u32();
    if (keyId <= previousKeyId) throw integrityError('keyring key ids are not ascending');
    previousKeyId = keyId;
    const createdAtMs = reader.u64();
    dataKeys.push({ keyId, createdAtMs, wrapped: reader.copy(WRAPPED_KEY_BYTES) });
  }
  const slots: KeySlotRecord[] = [];
  const labels = new Set<string>();
  for (let index = 0; index < slotCount; index++) {
    const slot = decodeSlot(reader);
    if (labels.has(slot.label)) throw integrityError('keyring holds two slots with one label');
    labels.add(slot.label);
    slots.push(slot);
  }
  reader.end();
  if (!dataKeys.some((entry) => entry.keyId === activeKeyId)) throw integrityError(`keyring's active key ${activeKeyId} is not in it`);
  return { databaseId, activeKeyId, wrappedMetaKey, dataKeys, slots };
}

/**
 * The database id a keyring claims, unauthenticated (its CRC and magic checked): for the audit event
 * of a failed open, which has no key to check it with. Undefined when the bytes are no keyring.
 */
export function peekKeyringDatabaseId(bytes: Uint8Array): Uint8Array | undefined {
  try {
    const version = keyringVersion(bytes);
    const offset = version === KEYRING_V2 ? 16 : 56;
    return bytes.slice(offset, offset + DATABASE_ID_BYTES);
  } catch {
    return undefined;
  }
}
