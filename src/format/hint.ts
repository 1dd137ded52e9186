/**
 * Hint files `NNNNNN.hint` (docs/format.md §6): the header of a tag file with magic `ARMDBHNT` and
 * kind = hint, then sealed chunks of hint entries. Each entry says where one record of the data file
 * with the same id lives, so open can rebuild the index without reading the data file.
 *
 * ```
 * chunk:     u32 plaintext length | u32 flags (bit 0: last chunk) | ciphertext | 16-byte tag
 * version 2: u32 entry count | every entry's key | per entry: varint head [varint sequence] [varint position / 8] [varint value length]
 * version 3: version 2 for a data file of record version 2: positions / 4, records aligned to 4, and a
 *            head bit for "same value length as the previous entry" (head = delta · 8 + flags, §6.5.3)
 * version 1: per entry: key (keySize) | u64 sequence word (as in the record header) | u32 position | u32 value length
 * ```
 *
 * Version 2 (§6.5) spends 2 to 3 bytes beside the key where version 1 spends 16: sequence numbers
 * are deltas, positions are implied by the previous record's size, and only what breaks the pattern
 * is written. Its decoder is canonical: a chunk decodes only if encoding its entries gives the same
 * bytes back. Both decode into {@link HintColumns}, typed arrays that open applies in one pass.
 */
import { integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import { FileKind, Limits, Magic, MAC_BYTES, TAG_BYTES } from './constants.js';
import { assert } from '../assert.js';
import { RecordFlag, RecordVersion, recordBytes, type RecordAlignment, type RecordVersionId } from './record.js';
import { decodeIdentity, encodeIdentity, type MacFunction, TAG_HEADER_BYTES, type FileIdentity, type TagFileHeader } from './tag-file.js';

export const HINT_HEADER_BYTES = TAG_HEADER_BYTES;
/**
 * Hint format versions (§6.2): 1 has fixed-size entries, 2 compact ones, both for data files of
 * record version 1 (8-byte aligned); 3 is version 2 for data files of record version 2 (4-byte
 * aligned, §6.5.3). Writers write the compact version of their data file's record version.
 */
export const HintVersion = { fixed: 1, compact: 2, compactAligned4: 3 } as const;
export type HintVersionId = (typeof HintVersion)[keyof typeof HintVersion];
const HINT_VERSIONS: readonly number[] = [HintVersion.fixed, HintVersion.compact, HintVersion.compactAligned4];

/** The hint version written for a data file of record version `recordVersion`. */
export function hintVersionFor(recordVersion: RecordVersionId): HintVersionId {
  return recordVersion === RecordVersion.aligned8 ? HintVersion.compact : HintVersion.compactAligned4;
}

/** The record version of the data files a hint of `version` describes (a hint of another is refused). */
export function recordVersionOfHint(version: HintVersionId): RecordVersionId {
  return version === HintVersion.compactAligned4 ? RecordVersion.aligned4 : RecordVersion.aligned8;
}
/** Byte offset of the u16 version in the header (§5.2). */
const VERSION_OFFSET = 8;
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

export function encodeHintHeader(identity: FileIdentity, mac: MacFunction, version: HintVersionId = HintVersion.compact): Uint8Array {
  const writer = new ByteWriter(HINT_HEADER_BYTES);
  encodeIdentity(writer, Magic.hintHeader, identity, version);
  writer.raw(mac(writer.bytes.subarray(0, HINT_HEADER_BYTES - MAC_BYTES)), MAC_BYTES);
  return writer.finish();
}

export interface HintFileHeader extends TagFileHeader {
  readonly version: HintVersionId;
}

export function decodeHintHeader(bytes: Uint8Array): HintFileHeader {
  if (bytes.length < HINT_HEADER_BYTES) throw integrityError('hint file header is truncated');
  const reader = new ByteReader(bytes.subarray(0, HINT_HEADER_BYTES), 'hint file header');
  const identity = decodeIdentity(reader, Magic.hintHeader, 'hint file header', FileKind.hint, HINT_VERSIONS);
  const version = (bytes[VERSION_OFFSET]! | (bytes[VERSION_OFFSET + 1]! << 8)) as HintVersionId;
  return { ...identity, mac: reader.copy(MAC_BYTES), version };
}

export function verifyHintHeader(bytes: Uint8Array, header: TagFileHeader, mac: MacFunction): void {
  if (!equalBytes(mac(bytes.subarray(0, HINT_HEADER_BYTES - MAC_BYTES)), header.mac))
    throw integrityError('hint file header fails its MAC');
}

/**
 * The entries of one chunk as columns: entry `i` has its key at `keyBytes[keyOffset + i * keyStride]`
 * (a view into the chunk's plaintext) and its other fields at index `i` of the arrays.
 */
export interface HintColumns {
  readonly count: number;
  readonly keyBytes: Uint8Array;
  readonly keyOffset: number;
  readonly keyStride: number;
  readonly sequences: Float64Array;
  readonly positions: Uint32Array;
  /** 0 for a tombstone. */
  readonly valueLengths: Uint32Array;
  /** 1 for a tombstone. */
  readonly tombstones: Uint8Array;
}

/** Decodes one chunk's plaintext of a hint of `version`; throws ARMDB_INTEGRITY for anything a writer would not write. */
export function decodeHintChunk(plaintext: Uint8Array, keySize: number, version: HintVersionId): HintColumns {
  if (version === HintVersion.fixed) return decodeFixedChunk(plaintext, keySize);
  return decodeCompactChunk(plaintext, keySize, version === HintVersion.compactAligned4 ? 4 : 8);
}

/** One entry of `columns` as an object (tests, tools); open reads the columns. */
export function hintEntryAt(columns: HintColumns, index: number, keySize: number): HintEntry {
  const keyStart = columns.keyOffset + index * columns.keyStride;
  return {
    key: columns.keyBytes.subarray(keyStart, keyStart + keySize),
    sequence: columns.sequences[index]!,
    tombstone: columns.tombstones[index] === 1,
    position: columns.positions[index]!,
    valueLength: columns.valueLengths[index]!,
  };
}

function emptyColumns(count: number, keyBytes: Uint8Array, keyOffset: number, keyStride: number): HintColumns {
  return {
    count,
    keyBytes,
    keyOffset,
    keyStride,
    sequences: new Float64Array(count),
    positions: new Uint32Array(count),
    valueLengths: new Uint32Array(count),
    tombstones: new Uint8Array(count),
  };
}

// ---- version 1: fixed-size entries (§6.5.1) ------------------------------------------------------

/** Packs entries into one chunk's plaintext, version 1 (kept for tests and fixtures; writers write version 2). */
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

/** Unpacks one version-1 chunk's plaintext; `key` of each entry is a view into `plaintext`. */
export function decodeHintEntries(plaintext: Uint8Array, keySize: number, visit: (entry: HintEntry) => void): void {
  const columns = decodeFixedChunk(plaintext, keySize);
  for (let index = 0; index < columns.count; index++) visit(hintEntryAt(columns, index, keySize));
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

function decodeFixedChunk(plaintext: Uint8Array, keySize: number): HintColumns {
  const entryBytes = hintEntryBytes(keySize);
  if (plaintext.length % entryBytes !== 0) throw integrityError(`hint chunk of ${plaintext.length} bytes does not hold whole entries`);
  const columns = emptyColumns(plaintext.length / entryBytes, plaintext, 0, entryBytes);
  const { sequences, positions, valueLengths, tombstones } = columns;
  for (let index = 0, at = keySize; index < columns.count; index++, at += entryBytes) {
    const low = readU32(plaintext, at);
    const high = readU32(plaintext, at + 4);
    if ((high & RESERVED_MASK_HIGH) !== 0) throw integrityError('hint entry has reserved bits set');
    const sequence = (high & SEQUENCE_MASK_HIGH) * TWO_POW_32 + low;
    if (sequence === 0) throw integrityError('hint entry has sequence number 0');
    const position = readU32(plaintext, at + 8);
    const valueLength = readU32(plaintext, at + 12);
    if (position % 8 !== 0) throw integrityError('hint entry position is not 8-byte aligned');
    const tombstone = (high & TOMBSTONE_HIGH) !== 0;
    if (tombstone && valueLength !== 0) throw integrityError('hint entry for a tombstone has a value length');
    if (valueLength > Limits.maxValueBytes) throw integrityError('hint entry value length is beyond the format limit');
    sequences[index] = sequence;
    positions[index] = position;
    valueLengths[index] = valueLength;
    tombstones[index] = tombstone ? 1 : 0;
  }
  return columns;
}

// ---- version 2: compact entries (§6.5.2) ---------------------------------------------------------

/** Bytes of the entry count at the start of a version-2 chunk. */
const COMPACT_COUNT_BYTES = 4;
/** Head bit 0: the entry is a tombstone (no value length follows). */
const HEAD_TOMBSTONE = 1;
/** Head bit 1: the position is written (it is not where the previous record ends). */
const HEAD_POSITION = 2;
/** Head bit 2, version 3 only: the value length is the previous entry's, and is not written. */
const HEAD_SAME_LENGTH = 4;
/** Sequence deltas 1..2^40 go in the head (head = delta · 4 + flags); any other sequence is written whole. */
const MAX_SEQUENCE_DELTA = 2 ** 40;
/** A varint holds at most 8 groups of 7 bits; every value written is below 2^53. */
const MAX_VARINT_BYTES = 8;

/**
 * The most bytes a version-2 or version-3 entry takes: its key, a head of at most 7 bytes (below
 * 2^43 + 8 in version 3, 2^42 in version 2), a whole sequence (8), a position / 8 or / 4 (below
 * 2^30: 5) and a value length (5). Writers size chunks by it.
 */
export function compactHintEntryMaxBytes(keySize: number): number {
  return keySize + 7 + 8 + 5 + 5;
}

/** Whether a compact chunk of this alignment has the same-length head bit (version 3, §6.5.3). */
function hasSameLengthBit(alignment: RecordAlignment): boolean {
  return alignment === 4;
}

/** Bytes of `value` (a safe non-negative integer) as an unsigned LEB128 varint. */
function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value >= 128) {
    target[at++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}

/** What the compact encoding writes for each entry beside its key: the head and the optional fields. */
interface CompactFields {
  head: number;
  sequence: number | undefined;
  positionUnits: number | undefined;
  valueLength: number | undefined;
}

function compactFields(
  entry: HintEntry,
  previousSequence: number,
  expectedPosition: number,
  previousValueLength: number,
  alignment: RecordAlignment,
): CompactFields {
  const delta = entry.sequence - previousSequence;
  const inHead = delta >= 1 && delta <= MAX_SEQUENCE_DELTA;
  const positionWritten = entry.position !== expectedPosition;
  const withFlag = hasSameLengthBit(alignment);
  const sameLength = withFlag && !entry.tombstone && entry.valueLength === previousValueLength;
  return {
    head:
      (inHead ? delta * (withFlag ? 8 : 4) : 0) +
      (sameLength ? HEAD_SAME_LENGTH : 0) +
      (positionWritten ? HEAD_POSITION : 0) +
      (entry.tombstone ? HEAD_TOMBSTONE : 0),
    sequence: inHead ? undefined : entry.sequence,
    positionUnits: positionWritten ? entry.position / alignment : undefined,
    valueLength: entry.tombstone || sameLength ? undefined : entry.valueLength,
  };
}

/**
 * Packs entries into one chunk's plaintext, version 2 (`alignment` 8) or version 3 (`alignment` 4,
 * the data file's record alignment); entries in record-stream order compress best.
 */
export function encodeCompactHintChunk(entries: readonly HintEntry[], keySize: number, alignment: RecordAlignment = 8): Uint8Array {
  const fields: CompactFields[] = [];
  let total = COMPACT_COUNT_BYTES + entries.length * keySize;
  let previousSequence = 0;
  let expectedPosition = 0;
  let previousValueLength = 0;
  for (const entry of entries) {
    assert(entry.position % alignment === 0, 'a hint entry points at an aligned record');
    const entryFields = compactFields(entry, previousSequence, expectedPosition, previousValueLength, alignment);
    previousValueLength = entry.valueLength;
    total += varintBytes(entryFields.head);
    if (entryFields.sequence !== undefined) total += varintBytes(entryFields.sequence);
    if (entryFields.positionUnits !== undefined) total += varintBytes(entryFields.positionUnits);
    if (entryFields.valueLength !== undefined) total += varintBytes(entryFields.valueLength);
    fields.push(entryFields);
    previousSequence = entry.sequence;
    expectedPosition = entry.position + recordBytes(keySize, entry.valueLength, alignment);
  }
  const bytes = new Uint8Array(total);
  new DataView(bytes.buffer).setUint32(0, entries.length, true);
  let at = COMPACT_COUNT_BYTES;
  for (const entry of entries) {
    bytes.set(entry.key.subarray(0, keySize), at);
    at += keySize;
  }
  for (const entryFields of fields) {
    at = writeVarint(bytes, at, entryFields.head);
    if (entryFields.sequence !== undefined) at = writeVarint(bytes, at, entryFields.sequence);
    if (entryFields.positionUnits !== undefined) at = writeVarint(bytes, at, entryFields.positionUnits);
    if (entryFields.valueLength !== undefined) at = writeVarint(bytes, at, entryFields.valueLength);
  }
  return bytes;
}

/** Reads varints from a chunk, each checked: within the chunk, at most 8 bytes, minimal, below 2^53. */
class VarintReader {
  at: number;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array, at: number) {
    this.#bytes = bytes;
    this.at = at;
  }

  read(): number {
    const bytes = this.#bytes;
    let byte = bytes[this.at++];
    if (byte === undefined) throw integrityError('hint chunk ends inside an entry');
    if (byte < 128) return byte;
    let value = byte & 127;
    let scale = 128;
    for (let count = 2; ; count++) {
      byte = bytes[this.at++];
      if (byte === undefined) throw integrityError('hint chunk ends inside an entry');
      value += (byte & 127) * scale;
      if (byte < 128) break;
      if (count === MAX_VARINT_BYTES) throw integrityError('hint entry has a varint longer than 8 bytes');
      scale *= 128;
    }
    if (byte === 0) throw integrityError('hint entry has a varint that is not minimal');
    if (value > Number.MAX_SAFE_INTEGER) throw integrityError('hint entry has a varint above 2^53');
    return value;
  }
}

/** Decodes a version-2 (`alignment` 8) or version-3 (`alignment` 4) chunk; positions are in units of the alignment. */
function decodeCompactChunk(plaintext: Uint8Array, keySize: number, alignment: RecordAlignment): HintColumns {
  if (plaintext.length < COMPACT_COUNT_BYTES) throw integrityError('hint chunk is too short for its entry count');
  const count = readU32(plaintext, 0);
  // Bound before allocating: every entry takes its key and at least a one-byte head.
  if (count * (keySize + 1) > plaintext.length - COMPACT_COUNT_BYTES)
    throw integrityError(`hint chunk claims ${count} entries, more than its ${plaintext.length} bytes hold`);
  const columns = emptyColumns(count, plaintext, COMPACT_COUNT_BYTES, keySize);
  const { sequences, positions, valueLengths, tombstones } = columns;
  const reader = new VarintReader(plaintext, COMPACT_COUNT_BYTES + count * keySize);
  let previousSequence = 0;
  let expectedPosition = 0;
  let previousValueLength = 0;
  const withFlag = hasSameLengthBit(alignment);
  for (let index = 0; index < count; index++) {
    const head = reader.read();
    const tombstone = (head & HEAD_TOMBSTONE) !== 0;
    const sameLength = withFlag && (head & HEAD_SAME_LENGTH) !== 0;
    if (sameLength && tombstone) throw integrityError('hint entry for a tombstone says it has the previous value length');
    const delta = Math.floor(head / (withFlag ? 8 : 4));
    let sequence: number;
    if (delta !== 0) sequence = previousSequence + delta;
    else {
      sequence = reader.read();
      if (sequence === 0) throw integrityError('hint entry has sequence number 0');
      const wholeDelta = sequence - previousSequence;
      if (wholeDelta >= 1 && wholeDelta <= MAX_SEQUENCE_DELTA) throw integrityError('hint entry writes a sequence its head could hold');
    }
    if (delta > MAX_SEQUENCE_DELTA) throw integrityError('hint entry has a sequence delta above 2^40');
    if (sequence > Number.MAX_SAFE_INTEGER) throw integrityError('hint entry has a sequence number above 2^53 - 1');
    let position = expectedPosition;
    if ((head & HEAD_POSITION) !== 0) {
      position = reader.read() * alignment;
      if (position === expectedPosition) throw integrityError('hint entry writes the position its head implies');
    }
    if (position >= TWO_POW_32) throw integrityError('hint entry position is beyond 2^32');
    let valueLength = 0;
    if (sameLength) valueLength = previousValueLength;
    else if (!tombstone) {
      valueLength = reader.read();
      if (withFlag && valueLength === previousValueLength) throw integrityError('hint entry writes the value length its head could imply');
    }
    if (valueLength > Limits.maxValueBytes) throw integrityError('hint entry value length is beyond the format limit');
    previousValueLength = valueLength;
    sequences[index] = sequence;
    positions[index] = position;
    valueLengths[index] = valueLength;
    tombstones[index] = tombstone ? 1 : 0;
    previousSequence = sequence;
    expectedPosition = position + recordBytes(keySize, valueLength, alignment);
  }
  if (reader.at !== plaintext.length) throw integrityError('hint chunk has bytes after its last entry');
  return columns;
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
