/**
 * Hint files `NNNNNN.hint` (docs/format.md §6): the header of a tag file with magic `ARMDBHNT` and
 * kind = hint, then sealed chunks of hint entries. Each entry says where one record of the data file
 * with the same id lives, so open can rebuild the index without reading the data file.
 *
 * ```
 * chunk:  u32 plaintext length | u32 flags (bit 0: last chunk) | ciphertext | 16-byte tag
 * entry:  key (keySize) | u64 sequence word (as in the record header) | u32 position | u32 value length
 * ```
 */
import { integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import { FileKind, Limits, Magic, MAC_BYTES, TAG_BYTES } from './constants.js';
import { RecordFlag } from './record.js';
import { decodeIdentity, encodeIdentity, type MacFunction, TAG_HEADER_BYTES, type FileIdentity, type TagFileHeader } from './tag-file.js';

export const HINT_HEADER_BYTES = TAG_HEADER_BYTES;
export const HINT_CHUNK_FRAME_BYTES = 8;
export const HintChunkFlag = { last: 1 } as const;

const TWO_POW_32 = 2 ** 32;
/** The tombstone bit of the sequence word's high half, as in the record header (§4.2). */
const TOMBSTONE_HIGH = RecordFlag.tombstone >>> 0;
/** Bits 53..62 of the sequence word: reserved in a hint entry, which has no batch flag (§6.5). */
const RESERVED_MASK_HIGH = 0x7fe00000;
/** Bits 32..52 of the sequence word: the high part of the sequence number. */
const SEQUENCE_MASK_HIGH = 0x001fffff;

export interface HintEntry {
  readonly key: Uint8Array;
  readonly sequence: number;
  readonly tombstone: boolean;
  readonly position: number;
  readonly valueLength: number;
}

export function hintEntryBytes(keySize: number): number {
  return keySize + 16;
}

export function encodeHintHeader(identity: FileIdentity, mac: MacFunction): Uint8Array {
  const writer = new ByteWriter(HINT_HEADER_BYTES);
  encodeIdentity(writer, Magic.hintHeader, identity);
  writer.raw(mac(writer.bytes.subarray(0, HINT_HEADER_BYTES - MAC_BYTES)), MAC_BYTES);
  return writer.finish();
}

export function decodeHintHeader(bytes: Uint8Array): TagFileHeader {
  if (bytes.length < HINT_HEADER_BYTES) throw integrityError('hint file header is truncated');
  const reader = new ByteReader(bytes.subarray(0, HINT_HEADER_BYTES), 'hint file header');
  const identity = decodeIdentity(reader, Magic.hintHeader, 'hint file header', FileKind.hint);
  return { ...identity, mac: reader.copy(MAC_BYTES) };
}

export function verifyHintHeader(bytes: Uint8Array, header: TagFileHeader, mac: MacFunction): void {
  if (!equalBytes(mac(bytes.subarray(0, HINT_HEADER_BYTES - MAC_BYTES)), header.mac))
    throw integrityError('hint file header fails its MAC');
}

/** Packs entries into one chunk's plaintext. */
export function encodeHintEntries(entries: readonly HintEntry[], keySize: number): Uint8Array {
  const entryBytes = hintEntryBytes(keySize);
  const writer = new ByteWriter(entries.length * entryBytes);
  for (const entry of entries) {
    const sequenceHigh = Math.floor(entry.sequence / TWO_POW_32) | (entry.tombstone ? TOMBSTONE_HIGH : 0);
    writer
      .raw(entry.key, keySize)
      .u32(entry.sequence % TWO_POW_32)
      .u32(sequenceHigh >>> 0)
      .u32(entry.position)
      .u32(entry.valueLength);
  }
  return writer.finish();
}

/** Unpacks one chunk's plaintext; `key` of each entry is a view into `plaintext`. */
export function decodeHintEntries(plaintext: Uint8Array, keySize: number, visit: (entry: HintEntry) => void): void {
  const entryBytes = hintEntryBytes(keySize);
  if (plaintext.length % entryBytes !== 0) throw integrityError(`hint chunk of ${plaintext.length} bytes does not hold whole entries`);
  const reader = new ByteReader(plaintext, 'hint chunk');
  while (reader.remaining > 0) {
    const key = reader.bytesView(keySize);
    const low = reader.u32();
    const high = reader.u32();
    if ((high & RESERVED_MASK_HIGH) !== 0) throw integrityError('hint entry has reserved bits set');
    const sequence = (high & SEQUENCE_MASK_HIGH) * TWO_POW_32 + low;
    if (sequence === 0) throw integrityError('hint entry has sequence number 0');
    const position = reader.u32();
    const valueLength = reader.u32();
    if (position % 8 !== 0) throw integrityError('hint entry position is not 8-byte aligned');
    const tombstone = (high & TOMBSTONE_HIGH) !== 0;
    if (tombstone && valueLength !== 0) throw integrityError('hint entry for a tombstone has a value length');
    if (valueLength > Limits.maxValueBytes) throw integrityError('hint entry value length is beyond the format limit');
    visit({ key, sequence, tombstone, position, valueLength });
  }
}

export interface HintChunkFrame {
  readonly plaintextBytes: number;
  readonly last: boolean;
}

export function encodeHintChunkFrame(frame: HintChunkFrame): Uint8Array {
  return new ByteWriter(HINT_CHUNK_FRAME_BYTES)
    .u32(frame.plaintextBytes)
    .u32(frame.last ? HintChunkFlag.last : 0)
    .finish();
}

/** Parses a chunk frame and checks its length against the format bound and the bytes left in the file. */
export function decodeHintChunkFrame(bytes: Uint8Array, bytesLeftAfterFrame: number): HintChunkFrame {
  const reader = new ByteReader(bytes, 'hint chunk frame');
  const plaintextBytes = reader.u32();
  const flags = reader.u32();
  reader.end();
  if ((flags & ~HintChunkFlag.last) !== 0) throw integrityError('hint chunk frame has unknown flags');
  if (plaintextBytes > Limits.maxHintChunkBytes) throw integrityError(`hint chunk claims ${plaintextBytes} bytes, above the limit`);
  if (plaintextBytes + TAG_BYTES > bytesLeftAfterFrame) throw integrityError('hint chunk is truncated');
  return { plaintextBytes, last: (flags & HintChunkFlag.last) !== 0 };
}
