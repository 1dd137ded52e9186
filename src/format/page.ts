/**
 * Page geometry and the padding rule (docs/format.md §3.2).
 *
 * A data file is a stream of records cut into 4096-byte pages. Records are aligned to their file's
 * record alignment (8 bytes in record version 1, 4 in version 2) and may span pages, but a record
 * header never does: where the rest of a page is shorter than a header the writer leaves it zero and
 * starts the next record on the next page. Readers apply the same rule, and also treat an all-zero
 * header as padding to the end of its page (the zero-padded tail that rotation or close seals).
 *
 * The gaps are the last 4, 8 or 12 bytes of a page (only 8 in version 1): `nextRecordPosition(4084)`
 * is 4096.
 */
import { integrityError } from '../errors.js';
import { PAGE_BYTES } from './constants.js';
import {
  RECORD_HEADER_BYTES,
  decodeRecordHeader,
  recordBytes,
  verifyRecordChecksum,
  type RecordAlignment,
  type RecordHeader,
} from './record.js';

export function pageIndexOf(position: number): number {
  return Math.floor(position / PAGE_BYTES);
}

export function pageStart(pageIndex: number): number {
  return pageIndex * PAGE_BYTES;
}

/** The first page boundary at or after `position`. */
export function alignUpToPage(position: number): number {
  return Math.ceil(position / PAGE_BYTES) * PAGE_BYTES;
}

/**
 * Where the next record header may start at or after `position`: `position` itself if a whole
 * header fits before the page ends, else the next page boundary.
 */
export function nextRecordPosition(position: number): number {
  const remainder = PAGE_BYTES - (position % PAGE_BYTES);
  return remainder < RECORD_HEADER_BYTES ? position + remainder : position;
}

/** Pages spanned by `length` bytes starting at `position` (first index, count). */
export function pageSpan(position: number, length: number): { firstPageIndex: number; pageCount: number } {
  const firstPageIndex = pageIndexOf(position);
  const lastPageIndex = pageIndexOf(position + Math.max(length, 1) - 1);
  return { firstPageIndex, pageCount: lastPageIndex - firstPageIndex + 1 };
}

/**
 * One record found by {@link scanRecords}. The object and its `key`/`value` views are reused for the
 * next record: copy what must outlive the callback.
 */
export interface ScannedRecord extends RecordHeader {
  /** Byte position of the record header in the file. */
  readonly position: number;
  /** Bytes the record occupies, padding included. */
  readonly recordBytes: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

interface MutableScannedRecord {
  sequence: number;
  tombstone: boolean;
  batchContinues: boolean;
  valueLength: number;
  position: number;
  recordBytes: number;
  key: Uint8Array;
  value: Uint8Array;
}

/**
 * Walks the records in `plaintext`, which holds the file's bytes from `bufferPosition` on, starting at
 * file position `fromPosition`. Stops at the end of the buffer or before a record the buffer holds only
 * part of, and returns the position to resume at once more bytes are available. Every record is
 * checked (alignment, reserved bits, length bound, CRC) before `visit` sees it. `alignment` is that
 * of the file's record version (§4.6).
 */
export function scanRecords(
  plaintext: Uint8Array,
  bufferPosition: number,
  fromPosition: number,
  keySize: number,
  maxValueBytes: number,
  alignment: RecordAlignment,
  visit: (record: ScannedRecord) => void,
): number {
  const bufferEnd = bufferPosition + plaintext.length;
  const record: MutableScannedRecord = {
    sequence: 0,
    tombstone: false,
    batchContinues: false,
    valueLength: 0,
    position: 0,
    recordBytes: 0,
    key: plaintext,
    value: plaintext,
  };
  let position = fromPosition;
  for (;;) {
    position = nextRecordPosition(position);
    if (position + RECORD_HEADER_BYTES > bufferEnd) return position;
    if (position % alignment !== 0) throw integrityError(`record position ${position} is not ${alignment}-byte aligned`);
    const local = position - bufferPosition;
    const header = decodeRecordHeader(plaintext, local, maxValueBytes);
    if (header === undefined) {
      position = alignUpToPage(position + 1);
      continue;
    }
    const length = recordBytes(keySize, header.valueLength, alignment);
    if (position + length > bufferEnd) return position;
    verifyRecordChecksum(plaintext, local, keySize, header.valueLength);
    const keyStart = local + RECORD_HEADER_BYTES;
    record.sequence = header.sequence;
    record.tombstone = header.tombstone;
    record.batchContinues = header.batchContinues;
    record.valueLength = header.valueLength;
    record.position = position;
    record.recordBytes = length;
    record.key = plaintext.subarray(keyStart, keyStart + keySize);
    record.value = plaintext.subarray(keyStart + keySize, keyStart + keySize + header.valueLength);
    visit(record);
    position += length;
  }
}
