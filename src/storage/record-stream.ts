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

/**
 * Recovery of an active file with a commit journal (docs/format.md §6A): after the last valid page,
 * the stream goes on into what the journal holds of the next page. Records of a group that reaches
 * into it go to `carry` instead of `visit` (they are written again into the shard's new active file).
 */
export interface JournalTail {
  /** The journaled prefix of page `pageIndex` (the first page that is not a valid page), if any. */
  readonly tailOf: (pageIndex: number) => Uint8Array | undefined;
  /** A record of a complete group that reaches into the journaled prefix; valid only during the call. */
  readonly carry: (record: StreamRecord, batchContinues: boolean) => void;
}

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
  readonly #journal: JournalTail | undefined;
  /** File position where the journaled prefix starts, once it is read. */
  #tailStart = Number.POSITIVE_INFINITY;
  #tailEnd: number | undefined;
  /** Pages that authenticated, from the start. */
  validPages = 0;
  highestSequence = 0;
  lowestSequence = Number.MAX_SAFE_INTEGER;

  /**
   * @param pageCount Pages to read. A page at or beyond `durablePages` that fails authentication ends
   *   the stream (a torn tail); one below it is ARMDB_INTEGRITY.
   */
  constructor(
    file: DataFile,
    pageCount: number,
    durablePages: number,
    keySize: number,
    visit: (record: StreamRecord) => void,
    journal?: JournalTail,
  ) {
    this.#journal = journal;
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
    if (count <= 0 && this.#journal === undefined) {
      this.#done = true;
      return false;
    }
    const pages = count > 0 ? this.#readPages(firstPage, count) : [];
    const last = pages.length < count || firstPage + Math.max(count, 0) >= this.#pageCount;
    const tail = last ? this.#journal?.tailOf(firstPage + pages.length) : undefined;
    const plaintext = new Uint8Array(this.#carry.length + (pages.length + (tail === undefined ? 0 : 1)) * PAGE_BYTES);
    plaintext.set(this.#carry);
    for (const [offset, page] of pages.entries()) plaintext.set(page, this.#carry.length + offset * PAGE_BYTES);
    this.validPages = firstPage + pages.length;
    if (tail !== undefined) {
      // The journaled prefix, zero-padded as a barrier used to pad the page (§3.2).
      plaintext.set(tail, this.#carry.length + pages.length * PAGE_BYTES);
      this.#tailStart = this.validPages * PAGE_BYTES;
      this.#tailEnd = this.#tailStart + tail.length;
    }
    this.#resumePosition = scanRecords(
      plaintext,
      this.#carryPosition,
      this.#resumePosition,
      this.#keySize,
      Number.MAX_SAFE_INTEGER,
      this.#file.recordAlignment,
      (record) => this.#onRecord(record),
    );
    this.#carry = plaintext.subarray(this.#resumePosition - this.#carryPosition);
    this.#carryPosition = this.#resumePosition;
    this.#nextPage = firstPage + Math.max(count, 0);
    if (last) this.#done = true;
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
    const validBytes = this.#tailEnd ?? this.validPages * PAGE_BYTES;
    const tornStart =
      this.#pending.length > 0 ? this.#pending[0]!.position : this.#resumePosition < validBytes ? this.#resumePosition : undefined;
    return tornStart === undefined ? 0 : Math.max(0, validBytes - tornStart);
  }

  /** Whether the stream read a journaled prefix after its valid pages. */
  get readJournal(): boolean {
    return this.#tailEnd !== undefined;
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
      if (record.position + record.recordBytes > this.#tailStart) this.#journal!.carry(record, false);
      else this.#visit(record);
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
      const group = this.#pending;
      this.#pending = [];
      if (record.position + record.recordBytes > this.#tailStart)
        for (const [index, member] of group.entries()) this.#journal!.carry(member, index < group.length - 1);
      else for (const member of group) this.#visit(member);
    }
  }
}
