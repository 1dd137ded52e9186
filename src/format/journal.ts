/**
 * The commit journal of an active data file (docs/format.md §6A): a 32-byte header, then chunks.
 * Each chunk holds the bytes a barrier added to the file's partial page, sealed as one unit; chunk
 * `i` of the file is the `(i - firstChunk)`th frame after the header. This module only frames bytes;
 * sealing is src/crypto/journal-cipher.ts.
 *
 * ```
 * header  magic "ARMDBJNL" (8) ‖ version u16 = 1 ‖ algorithm u8 ‖ kind u8 = 3 ‖ shard u16 ‖ 0 u16
 *         ‖ file id u32 ‖ key id u32 ‖ first chunk index u64                          (32 bytes)
 * chunk   page index u32 ‖ offset in page u16 ‖ length u16 ‖ ciphertext (length) ‖ tag (16)
 * ```
 */
import { integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import { FileKind, Magic, PAGE_BYTES, TAG_BYTES } from './constants.js';

export const JOURNAL_FORMAT_VERSION = 1;
export const JOURNAL_HEADER_BYTES = 32;
export const JOURNAL_CHUNK_FRAME_BYTES = 8;

/** What the header names: the data file the journal belongs to, and the index of its first chunk. */
export interface JournalHeader {
  readonly algorithm: number;
  readonly shard: number;
  readonly fileId: number;
  readonly keyId: number;
  readonly firstChunk: number;
}

/** Where a chunk's bytes go in the data file's stream: `length` bytes at `offset` of page `pageIndex`. */
export interface JournalChunkPlace {
  readonly pageIndex: number;
  readonly offset: number;
  readonly length: number;
}

/** A chunk as framed on disk (not yet authenticated). */
export interface JournalFrame extends JournalChunkPlace {
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

export function encodeJournalHeader(header: JournalHeader): Uint8Array {
  return new ByteWriter(JOURNAL_HEADER_BYTES)
    .raw(Magic.journal, 8)
    .u16(JOURNAL_FORMAT_VERSION)
    .u8(header.algorithm)
    .u8(FileKind.journal)
    .u16(header.shard)
    .zeros(2)
    .u32(header.fileId)
    .u32(header.keyId)
    .u64(header.firstChunk)
    .finish();
}

/** Parses a header; undefined when the bytes are not one (short, wrong magic, version or kind). */
export function decodeJournalHeader(bytes: Uint8Array): JournalHeader | undefined {
  if (bytes.length < JOURNAL_HEADER_BYTES) return undefined;
  const reader = new ByteReader(bytes.subarray(0, JOURNAL_HEADER_BYTES), 'journal header');
  if (!equalBytes(reader.bytesView(8), Magic.journal)) return undefined;
  if (reader.u16() !== JOURNAL_FORMAT_VERSION) return undefined;
  const algorithm = reader.u8();
  if (reader.u8() !== FileKind.journal) return undefined;
  const shard = reader.u16();
  if (reader.u16() !== 0) return undefined;
  const fileId = reader.u32();
  const keyId = reader.u32();
  let firstChunk: number;
  try {
    firstChunk = reader.u64();
  } catch {
    return undefined;
  }
  return { algorithm, shard, fileId, keyId, firstChunk };
}

/** Bytes of a framed chunk of `length` bytes of records. */
export function journalChunkBytes(length: number): number {
  return JOURNAL_CHUNK_FRAME_BYTES + length + TAG_BYTES;
}

/** Checks a chunk's place: inside one page, not empty. */
export function checkChunkPlace(place: JournalChunkPlace): void {
  if (place.length < 1 || place.offset + place.length > PAGE_BYTES || !Number.isSafeInteger(place.pageIndex))
    throw new RangeError('a journal chunk holds 1 or more bytes of one page');
}

export function encodeJournalChunk(place: JournalChunkPlace, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array {
  checkChunkPlace(place);
  return new ByteWriter(journalChunkBytes(place.length))
    .u32(place.pageIndex)
    .u16(place.offset)
    .u16(place.length)
    .raw(ciphertext, place.length)
    .raw(tag, TAG_BYTES)
    .finish();
}

/**
 * The frames after the header, in order, up to the first that is cut short or out of range (a torn
 * tail: whether that is allowed is the reader's decision, against the MANIFEST). Nothing is authenticated here.
 */
export function decodeJournalFrames(bytes: Uint8Array): { frames: JournalFrame[]; endsCleanly: boolean } {
  const frames: JournalFrame[] = [];
  let at = JOURNAL_HEADER_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (at < bytes.length) {
    if (bytes.length - at < JOURNAL_CHUNK_FRAME_BYTES) return { frames, endsCleanly: false };
    const pageIndex = view.getUint32(at, true);
    const offset = view.getUint16(at + 4, true);
    const length = view.getUint16(at + 6, true);
    if (length < 1 || offset + length > PAGE_BYTES) return { frames, endsCleanly: false };
    const end = at + journalChunkBytes(length);
    if (end > bytes.length) return { frames, endsCleanly: false };
    const body = at + JOURNAL_CHUNK_FRAME_BYTES;
    frames.push({
      pageIndex,
      offset,
      length,
      ciphertext: bytes.subarray(body, body + length),
      tag: bytes.subarray(body + length, end),
    });
    at = end;
  }
  return { frames, endsCleanly: true };
}

/** An integrity error about a journal (the shard and file it belongs to). */
export function journalIntegrityError(shard: number, fileId: number, message: string, path: string) {
  return integrityError(`shard ${shard}: journal of file ${fileId}: ${message}`, undefined, { shard, fileId, path });
}
