/**
 * The entry record (docs/format.md §4): a 16-byte header, the key, the value, zero padding to the
 * record alignment of its data file: 8 bytes in record version 1, 4 bytes in record version 2 (§4.6).
 *
 * ```
 * 0   u64 LE  sequence number (bits 0..52) and flags (bit 63 tombstone, bit 62 batch continues)
 * 8   u32 LE  CRC-32 (IEEE) over bytes 0..8 ‖ bytes 12..16 ‖ key ‖ value
 * 12  u32 LE  value length
 * 16  key (keySize bytes), value, zero padding to a multiple of the alignment
 * ```
 * A sequence number of 0 is never written, so an all-zero header is padding.
 */
import { assert } from '../assert.js';
import { integrityError } from '../errors.js';
import { Limits } from './constants.js';
import { crc32 } from './crc32.js';

export const RECORD_HEADER_BYTES = 16;

/**
 * Record versions (docs/format.md §4.6). The version of a data file's records is the version of its
 * tag file (§5.2): the header layout is the same in both, only the alignment differs.
 */
export const RecordVersion = {
  /** Records start at multiples of 8 and are padded to 8 (tag files of version 1). */
  aligned8: 1,
  /** Records start at multiples of 4 and are padded to 4 (tag files of version 2). */
  aligned4: 2,
} as const;
export type RecordVersionId = (typeof RecordVersion)[keyof typeof RecordVersion];

/** The record version new data files are written in. */
export const RECORD_VERSION: RecordVersionId = RecordVersion.aligned4;

/** Alignment of record positions and sizes, in bytes: 8 or 4. */
export type RecordAlignment = 8 | 4;

/** The alignment records of `version` keep. */
export function recordAlignment(version: RecordVersionId): RecordAlignment {
  return version === RecordVersion.aligned8 ? 8 : 4;
}

/** Largest sequence number: the low 53 bits of the first header word. */
export const MAX_SEQUENCE = 2 ** 53 - 1;

/** Record flags, stored in the top bits of the sequence word. */
export const RecordFlag = {
  /** The key was deleted; the value is empty. */
  tombstone: 1 << 31,
  /** More records of the same `atomic()` group follow; the group ends at the first record without it. */
  batchContinues: 1 << 30,
} as const;

const FLAG_MASK_HIGH = (RecordFlag.tombstone | RecordFlag.batchContinues) >>> 0;
/** Bits 53..61 of the sequence word: reserved, must be zero. */
const RESERVED_MASK_HIGH = 0x3fe00000;
const SEQUENCE_MASK_HIGH = 0x001fffff;
const TWO_POW_32 = 2 ** 32;

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/** Longest copy done in a loop rather than by `set`. */
const SHORT_COPY_BYTES = 64;

/** Short copies in a loop: cheaper than a native call for the keys and small values of most records. */
function copyInto(target: Uint8Array, offset: number, source: Uint8Array): void {
  if (source.length > SHORT_COPY_BYTES) {
    target.set(source, offset);
    return;
  }
  for (let index = 0; index < source.length; index++) target[offset + index] = source[index]!;
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
  bytes[offset + 2] = (value >>> 16) & 0xff;
  bytes[offset + 3] = (value >>> 24) & 0xff;
}

export interface RecordHeader {
  readonly sequence: number;
  readonly tombstone: boolean;
  readonly batchContinues: boolean;
  readonly valueLength: number;
}

/**
 * Bytes a record with this key and value length occupies, padding included, at `alignment` (that of
 * its file's record version; 8, the larger, is an upper bound for both).
 */
export function recordBytes(keySize: number, valueLength: number, alignment: RecordAlignment): number {
  const unpadded = RECORD_HEADER_BYTES + keySize + valueLength;
  return Math.ceil(unpadded / alignment) * alignment;
}

/** CRC-32 over sequence word ‖ value length ‖ key ‖ value of the record laid out at `offset`. */
function crcAt(bytes: Uint8Array, offset: number, keySize: number, valueLength: number): number {
  const crc = crc32(bytes, offset, offset + 8);
  return crc32(bytes, offset + 12, offset + RECORD_HEADER_BYTES + keySize + valueLength, crc);
}

/**
 * Writes one record at `offset` of `target` and returns the number of bytes it occupies.
 * `target` must hold `recordBytes(key.length, value.length, alignment)` bytes from `offset`; padding
 * bytes are zeroed. `alignment` is that of the file's record version (8 for version 1, the default).
 */
export function encodeRecord(
  target: Uint8Array,
  offset: number,
  sequence: number,
  flags: number,
  key: Uint8Array,
  value: Uint8Array,
  alignment: RecordAlignment = 8,
): number {
  // Constant messages: this runs for every record written.
  assert(Number.isSafeInteger(sequence) && sequence >= 1 && sequence <= MAX_SEQUENCE, 'record sequence number is 1..MAX_SEQUENCE');
  assert((flags & ~FLAG_MASK_HIGH) === 0, 'record flags are known RecordFlag bits');
  assert((flags & RecordFlag.tombstone) === 0 || value.length === 0, 'a tombstone carries no value');
  const total = recordBytes(key.length, value.length, alignment);
  assert(offset + total <= target.length, 'record fits its target');
  writeU32(target, offset, sequence % TWO_POW_32);
  writeU32(target, offset + 4, (Math.floor(sequence / TWO_POW_32) | flags) >>> 0);
  writeU32(target, offset + 12, value.length);
  copyInto(target, offset + RECORD_HEADER_BYTES, key);
  copyInto(target, offset + RECORD_HEADER_BYTES + key.length, value);
  for (let index = offset + RECORD_HEADER_BYTES + key.length + value.length; index < offset + total; index++) target[index] = 0;
  writeU32(target, offset + 8, crcAt(target, offset, key.length, value.length));
  return total;
}

/**
 * Parses a record header. Returns `undefined` for an all-zero header (padding).
 * `maxValueBytes` bounds the length before anything is allocated for it.
 */
export function decodeRecordHeader(bytes: Uint8Array, offset: number, maxValueBytes: number): RecordHeader | undefined {
  if (offset < 0 || offset + RECORD_HEADER_BYTES > bytes.length) throw integrityError(`record header at ${offset} is truncated`);
  const low = readU32(bytes, offset);
  const high = readU32(bytes, offset + 4);
  if (low === 0 && high === 0 && readU32(bytes, offset + 8) === 0 && readU32(bytes, offset + 12) === 0) return undefined;
  if ((high & RESERVED_MASK_HIGH) !== 0) throw integrityError(`record at ${offset} has reserved flag bits set`);
  const sequence = (high & SEQUENCE_MASK_HIGH) * TWO_POW_32 + low;
  if (sequence === 0) throw integrityError(`record at ${offset} has sequence number 0`);
  const valueLength = readU32(bytes, offset + 12);
  const tombstone = (high & RecordFlag.tombstone) !== 0;
  if (valueLength > Math.min(maxValueBytes, Limits.maxValueBytes)) {
    throw integrityError(`record at ${offset} claims a ${valueLength}-byte value, above the ${maxValueBytes}-byte limit`);
  }
  if (tombstone && valueLength !== 0) throw integrityError(`tombstone at ${offset} carries a value`);
  return { sequence, tombstone, batchContinues: (high & RecordFlag.batchContinues) !== 0, valueLength };
}

/** Checks the CRC of a whole record laid out contiguously at `offset`. */
export function verifyRecordChecksum(bytes: Uint8Array, offset: number, keySize: number, valueLength: number): void {
  const keyStart = offset + RECORD_HEADER_BYTES;
  const valueStart = keyStart + keySize;
  if (offset < 0 || valueStart + valueLength > bytes.length) throw integrityError(`record at ${offset} is truncated`);
  if (readU32(bytes, offset + 8) !== crcAt(bytes, offset, keySize, valueLength))
    throw integrityError(`record at ${offset} fails its CRC-32`);
}
