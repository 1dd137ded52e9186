/**
 * Reads the records of a data file in order, a chunk of pages at a time, and hands out only records
 * of complete `atomic` groups (docs/format.md §4.5). Recovery, hint writing and compaction all read
 * files through it; async callers yield to the event loop between {@link RecordStream.step} calls.
 */
import { ArmdbError } from '../errors.js';
import { PAGE_BYTES } from '../format/constants.js';
import { scanRecords, type ScannedRecord } from '../format/page.js';
import type { DataFile } from './data-file.js';

/** A record of a complete group. `key` and `value` are valid only during the callback. */
export interface StreamRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly sequence: number;
  readonly tombstone: boolean;
  readonly position: number;
  readonly valueLength: number;
  readonly recordBytes: number;
}

/**
 * Pages read and decrypted per step: bounds a step's memory and the event-loop time between yields.
 * Other long passes over pages (verify, warmup, the read scratch buffer of a data file) use the same bound.
 */
export const STREAM_CHUNK_PAGES = 64;

export class RecordStream {
  readonly #file: DataFile;
  readonly #pageCount: number;
  readonly #durablePages: number;
  readonly #keySize: number;
  readonly #visit: (record: StreamRecord) => void;
  #pending: StreamRecord[] = [];
  #carry = new Uint8Array(0);
  #carryPosition = 0;
  #resumePosition = 0;
  #nextPage = 0;
  #done = false;
  /** Pages that authenticated, from the start. */
  validPages = 0;
  highestSequence = 0;
  lowestSequence = Number.MAX_SAFE_INTEGER;

  /**
   * @param pageCount Pages to read. A page at or beyond `durablePages` that fails authentication ends
   *   the stream (a torn tail); one below it is ARMDB_INTEGRITY.
   */
  constructor(file: DataFile, pageCount: number, durablePages: number, keySize: number, visit: (record: StreamRecord) => void) {
    this.#file = file;
    this.#pageCount = pageCount;
    this.#durablePages = durablePages;
    this.#keySize = keySize;
    this.#visit = visit;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Reads the next chunk; returns false once the stream has ended. */
  step(): boolean {
    if (this.#done) return false;
    const firstPage = this.#nextPage;
    const count = Math.min(STREAM_CHUNK_PAGES, this.#pageCount - firstPage);
    if (count <= 0) {
      this.#done = true;
      return false;
    }
    const pages = this.#readPages(firstPage, count);
    const plaintext = new Uint8Array(this.#carry.length + pages.length * PAGE_BYTES);
    plaintext.set(this.#carry);
    for (const [offset, page] of pages.entries()) plaintext.set(page, this.#carry.length + offset * PAGE_BYTES);
    this.validPages = firstPage + pages.length;
    this.#resumePosition = scanRecords(
      plaintext,
      this.#carryPosition,
      this.#resumePosition,
      this.#keySize,
      Number.MAX_SAFE_INTEGER,
      (record) => this.#onRecord(record),
    );
    this.#carry = plaintext.subarray(this.#resumePosition - this.#carryPosition);
    this.#carryPosition = this.#resumePosition;
    this.#nextPage = firstPage + count;
    if (pages.length < count || this.#nextPage >= this.#pageCount) this.#done = true;
    return !this.#done;
  }

  /** Runs the stream to its end synchronously. */
  drain(): this {
    while (this.step());
    return this;
  }

  /**
   * Bytes inside the valid pages after the last complete group: an unfinished group, or a record cut
   * by the end of the valid pages. A barrier only ever seals whole groups, but recovery seals the
   * authentic pages of a torn file as they are, so a sealed file may end in such a tail; its records
   * are never applied, and the bytes count as dead. (Pages are authenticated: nobody else can make one.)
   */
  tailBytes(): number {
    const validBytes = this.validPages * PAGE_BYTES;
    const tornStart =
      this.#pending.length > 0 ? this.#pending[0]!.position : this.#resumePosition < validBytes ? this.#resumePosition : undefined;
    return tornStart === undefined ? 0 : validBytes - tornStart;
  }

  #readPages(firstPage: number, count: number): Uint8Array[] {
    try {
      return this.#file.readVerifiedPages(firstPage, count);
    } catch (error) {
      if (!(error instanceof ArmdbError)) throw error;
    }
    // Find the exact first bad page of the chunk.
    const pages: Uint8Array[] = [];
    for (let page = firstPage; page < firstPage + count; page++) {
      try {
        pages.push(...this.#file.readVerifiedPages(page, 1));
      } catch (error) {
        if (!(error instanceof ArmdbError) || page < this.#durablePages) throw error;
        break;
      }
    }
    return pages;
  }

  #onRecord(record: ScannedRecord): void {
    if (record.sequence > this.highestSequence) this.highestSequence = record.sequence;
    if (record.sequence < this.lowestSequence) this.lowestSequence = record.sequence;
    if (!record.batchContinues && this.#pending.length === 0) {
      this.#visit(record);
      return;
    }
    this.#pending.push({
      key: record.key.slice(),
      value: record.value.slice(),
      sequence: record.sequence,
      tombstone: record.tombstone,
      position: record.position,
      valueLength: record.valueLength,
      recordBytes: record.recordBytes,
    });
    if (!record.batchContinues) {
      for (const member of this.#pending) this.#visit(member);
      this.#pending = [];
    }
  }
}
