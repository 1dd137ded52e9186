/**
 * One data file and its tag file (docs/format.md §3, §5), for writing (the active file of a shard) or
 * reading (sealed files, and the active file's own pages).
 *
 * Writing: records go into a page-aligned write buffer. When it fills, only complete pages are sealed
 * and written; the partial page stays in memory. A barrier seals what it gained since the last
 * barrier as one chunk of the file's commit journal (docs/format.md §6A) and leaves the page open;
 * only rotation and close seal it zero-padded. A page index is sealed once, a journal chunk index too.
 *
 * Reading: pages are authenticated and decrypted before anything sees them, then cached — but a page
 * of the active file only once it is durable (so the cache never holds what a crash could take back).
 */
import { createHash, type Hash } from 'node:crypto';
import { assert } from '../assert.js';
import type { FileCipher } from '../crypto/file-cipher.js';
import { integrityError, type ArmdbErrorDetails } from '../errors.js';
import { allocOut, copyOut } from '../format/bytes.js';
import { MAC_BYTES, PAGE_BYTES, TAG_BYTES } from '../format/constants.js';
import { alignUpToPage, nextRecordPosition, pageIndexOf } from '../format/page.js';
import {
  RECORD_HEADER_BYTES,
  RECORD_VERSION,
  encodeRecord,
  recordAlignment,
  recordBytes,
  type RecordAlignment,
  type RecordVersionId,
} from '../format/record.js';
import { encodeJournalChunk, encodeJournalHeader } from '../format/journal.js';
import { encodeTagFileFooter, encodeTagFileHeader, tagOffset } from '../format/tag-file.js';
import type { JournalCipher } from '../crypto/journal-cipher.js';
import type { SealRing, SealRingFile } from '../crypto/seal-ring.js';
import type { FileHandle } from '../io/file-system.js';
import { largeValueCacheId, pageCacheId, type BlockCache } from './block-cache.js';
import { type DurableState, EMPTY_DIGEST } from './durable-state.js';
import { ciphertextScratch } from './read-scratch.js';
import { WriteBuffer } from './write-buffer.js';

/** At most this many unsynced plaintext pages are kept per file (4 MiB). */
const MAX_UNSYNCED_PAGES = 1024;

/** How an active file reaches its commit journal (two files, used in turn; created when first needed). */
export interface JournalParts {
  readonly cipher: JournalCipher;
  /** Creates journal file `slot` (0 or 1; it must not exist). */
  readonly create: (slot: number) => FileHandle;
  /** Removes journal file `slot` (its data file is sealed and durable). */
  readonly remove: (slot: number) => void;
}

/** A journal file starts over in the other slot once it holds this many bytes (docs/format.md §6A.4). */
export const JOURNAL_SWITCH_BYTES = 2 * PAGE_BYTES;

interface JournalSlot {
  readonly handle: FileHandle;
  /** Bytes written: where the next chunk goes. */
  bytes: number;
  /** Index of the first chunk after its header. */
  firstChunk: number;
  /** Written since the last snapshot / to be fsynced by the barrier of the last snapshot. */
  written: boolean;
  toSync: boolean;
}

/** Counters the writer adds to (shared with the engine's stats). */
export interface WriteCounters {
  pagesSealed: number;
  bytesWritten: number;
}

export class DataFile implements SealRingFile {
  readonly shard: number;
  readonly fileId: number;
  readonly keyId: number;
  readonly cipher: FileCipher;
  readonly headerMac: Uint8Array;
  readonly dataHandle: FileHandle;
  readonly tagHandle: FileHandle;
  /** Version of the file's records: its tag file's version (docs/format.md §4.6, §5.2). */
  readonly recordVersion: RecordVersionId;
  /** Alignment of the file's record positions and sizes (8 or 4 bytes), from {@link recordVersion}. */
  readonly recordAlignment: RecordAlignment;
  /**
   * Pages sealed and written, or handed to the sealing worker (their unit indexes reserved) and not
   * written yet: {@link pagesInFlight} of them, the last ones.
   */
  pageCount: number;
  /** The last pages of {@link pageCount} that the sealing worker holds: not on disk, their tags not known yet. */
  #pagesInFlight = 0;
  sealed: boolean;
  /** Bytes of records (and padding) in the stream: the file's logical length. */
  streamBytes: number;
  /** Bytes of records the index still points at. */
  liveBytes = 0;
  // Bookkeeping: what the barrier and the MANIFEST know of the file. Set when the file is made (create,
  // opened) and by the file's own writes (which make it dirty); after that only the shard changes it
  // (src/engine/shard.ts), through the methods under "bookkeeping" below.
  #durable: DurableState;
  #dirty = false;
  #listed = false;
  #hintMac: Uint8Array | undefined = undefined;
  #liveBytesWhenCompacted = Number.POSITIVE_INFINITY;
  /** Lowest sequence number of a record in the file (compaction keeps a tombstone while an older record may exist). */
  lowestSequence = Number.MAX_SAFE_INTEGER;
  #tags: Uint8Array;
  #tagHash: Hash;
  #writer: WriteBuffer | undefined;
  /**
   * Plaintext of pages written but not yet durable, so reads right after writes need not decrypt
   * them again. They move into the cache only once a barrier made them durable. Bounded.
   */
  readonly #unsyncedPages = new Map<number, Uint8Array>();
  #counters: WriteCounters | undefined;
  // The commit journal (active files only).
  #journal: JournalParts | undefined;
  readonly #journalSlots: (JournalSlot | undefined)[] = [undefined, undefined];
  /** The slot chunks go to. */
  #journalSlot = 0;
  /** The page of the last chunk sealed. */
  #lastChunkPage = 0;
  /** Stream position up to which the records are in sealed pages or journal chunks. */
  #journaledTo = 0;
  // Written since the last snapshot, and so to be fsynced by the barrier that takes the next one.
  #pagesWritten = false;
  #syncPages = false;

  private constructor(
    cipher: FileCipher,
    headerMac: Uint8Array,
    dataHandle: FileHandle,
    tagHandle: FileHandle,
    tags: Uint8Array,
    pageCount: number,
    sealed: boolean,
    durable: DurableState,
    recordVersion: RecordVersionId,
  ) {
    this.cipher = cipher;
    this.recordVersion = recordVersion;
    this.recordAlignment = recordAlignment(recordVersion);
    this.shard = cipher.identity.shard;
    this.fileId = cipher.identity.fileId;
    this.keyId = cipher.identity.keyId;
    this.headerMac = headerMac;
    this.dataHandle = dataHandle;
    this.tagHandle = tagHandle;
    this.#tags = tags;
    this.pageCount = pageCount;
    this.sealed = sealed;
    this.#durable = durable;
    this.streamBytes = pageCount * PAGE_BYTES;
    this.#tagHash = createHash('sha256').update(tags.subarray(0, pageCount * TAG_BYTES));
  }

  /** Starts a new, empty active file: writes the tag-file header. Handles must be freshly created. */
  static create(
    cipher: FileCipher,
    dataHandle: FileHandle,
    tagHandle: FileHandle,
    writeBufferBytes: number,
    counters: WriteCounters,
    journal?: JournalParts,
  ): DataFile {
    // New files take the latest record version; the tag-file version says which (§5.2).
    const header = encodeTagFileHeader(cipher.identity, cipher.mac, RECORD_VERSION);
    tagHandle.write(header, 0);
    const headerMac = header.slice(header.length - MAC_BYTES);
    const file = new DataFile(
      cipher,
      headerMac,
      dataHandle,
      tagHandle,
      new Uint8Array(64 * TAG_BYTES),
      0,
      false,
      { pageCount: 0, tagDigest: EMPTY_DIGEST, sealed: false, journalChunks: 0, journalPage: 0 },
      RECORD_VERSION,
    );
    file.#writer = new WriteBuffer(writeBufferBytes);
    file.#counters = counters;
    file.#journal = journal;
    file.#dirty = true;
    file.#pagesWritten = true;
    counters.bytesWritten += header.length;
    return file;
  }

  /** A file recovered from disk, sealed, with its verified tags; `recordVersion` is its tag file's version. */
  static opened(
    cipher: FileCipher,
    headerMac: Uint8Array,
    dataHandle: FileHandle,
    tagHandle: FileHandle,
    tags: Uint8Array,
    pageCount: number,
    recordVersion: RecordVersionId,
  ): DataFile {
    const file = new DataFile(
      cipher,
      headerMac,
      dataHandle,
      tagHandle,
      tags,
      pageCount,
      true,
      { pageCount, tagDigest: new Uint8Array(0), sealed: true, journalChunks: 0, journalPage: 0 },
      recordVersion,
    );
    file.#durable = { pageCount, tagDigest: file.currentDigest(), sealed: true, journalChunks: 0, journalPage: 0 };
    file.#listed = true;
    return file;
  }

  /** Recovery kept the first `validPages` of a file that was active when last seen, and seals it. */
  keepPages(validPages: number): void {
    this.pageCount = validPages;
    this.streamBytes = validPages * PAGE_BYTES;
    this.#tagHash = createHash('sha256').update(this.#tags.subarray(0, validPages * TAG_BYTES));
  }

  // ---- bookkeeping (changed by src/engine/shard.ts only) -------------------------------------

  /** What the manifest records of the file, as of the last barrier that covered it. */
  get durable(): DurableState {
    return this.#durable;
  }

  /** Written since its last fsync (or since the barrier that is making it durable took its snapshot). */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Recorded in the manifest (a barrier has made it durable at least once). */
  get listed(): boolean {
    return this.#listed;
  }

  /** MAC of the file's hint, once a hint the manifest may vouch for is on disk. */
  get hintMac(): Uint8Array | undefined {
    return this.#hintMac;
  }

  /**
   * Written by compaction: live bytes when it was written. It is a candidate again only once some of
   * them died (its tombstones and tail padding alone must not make it rewrite itself forever).
   */
  get liveBytesWhenCompacted(): number {
    return this.#liveBytesWhenCompacted;
  }

  /**
   * Recovery sealed this file, active when last seen: its durable state stays what the manifest
   * recorded (`listed`, or nothing for a file it did not list) until the next barrier covers it.
   */
  markRecoveredActive(
    listed: { pageCount: number; tagDigest: Uint8Array; journalChunks?: number; journalPage?: number } | undefined,
  ): void {
    this.#durable =
      listed === undefined
        ? { pageCount: 0, tagDigest: EMPTY_DIGEST, sealed: false, journalChunks: 0, journalPage: 0 }
        : {
            pageCount: listed.pageCount,
            tagDigest: listed.tagDigest,
            sealed: false,
            journalChunks: listed.journalChunks ?? 0,
            journalPage: listed.journalPage ?? 0,
          };
    this.#listed = listed !== undefined;
    this.#dirty = true;
    // Recovery cut it and wrote its footer: the next barrier fsyncs both before the MANIFEST says sealed.
    this.#pagesWritten = true;
  }

  /** A barrier's snapshot: the state its fsyncs will make durable. The file is clean until its next write. */
  takeDurableSnapshot(): DurableState {
    this.#dirty = false;
    this.#syncPages = this.#pagesWritten;
    this.#pagesWritten = false;
    for (const slot of this.#journalSlots) {
      if (slot === undefined) continue;
      slot.toSync = slot.written;
      slot.written = false;
    }
    const journalChunks = this.sealed || this.#journal === undefined ? 0 : this.#journal.cipher.nextChunkIndex;
    return {
      pageCount: this.pageCount,
      tagDigest: this.currentDigest(),
      sealed: this.sealed,
      journalChunks,
      journalPage: journalChunks === 0 ? 0 : this.#lastChunkPage,
    };
  }

  /** The fsyncs that make the last snapshot durable: the parts written before it. */
  syncHandles(): Promise<void>[] {
    const syncs: Promise<void>[] = [];
    if (this.#syncPages) syncs.push(this.dataHandle.sync(), this.tagHandle.sync());
    for (const slot of this.#journalSlots) if (slot?.toSync === true) syncs.push(slot.handle.sync());
    // Dirty for another reason than a write of its own (never expected): the fsyncs of old.
    if (syncs.length === 0) syncs.push(this.dataHandle.sync(), this.tagHandle.sync());
    return syncs;
  }

  /** The barrier's fsyncs made `state` durable; the MANIFEST about to be written lists the file. */
  markDurable(state: DurableState): void {
    this.#durable = state;
    this.#listed = true;
  }

  /** A compaction output, synced and renamed, joins the store: durable as it is, and listed from the next MANIFEST on. */
  markAdopted(): void {
    this.#durable = { pageCount: this.pageCount, tagDigest: this.currentDigest(), sealed: true, journalChunks: 0, journalPage: 0 };
    this.#dirty = false;
    this.#listed = true;
    this.#liveBytesWhenCompacted = this.liveBytes;
  }

  /** A hint whose header MAC is `hintMac` is durable on disk (or the manifest vouched for one at open). */
  recordHint(hintMac: Uint8Array): void {
    this.#hintMac = hintMac;
  }

  get isActive(): boolean {
    return this.#writer !== undefined;
  }

  /** Position where the next record will start (active files). */
  get writePosition(): number {
    return this.#writer?.position ?? this.streamBytes;
  }

  /** SHA-256 over the tags of all sealed pages. */
  currentDigest(): Uint8Array {
    this.#drainRing();
    return this.#tagHash.copy().digest();
  }

  /** The tag of a sealed page. */
  tagOf(pageIndex: number): Uint8Array {
    if (pageIndex >= this.pageCount - this.#pagesInFlight) this.#drainRing();
    return this.#tags.subarray(pageIndex * TAG_BYTES, (pageIndex + 1) * TAG_BYTES);
  }

  /**
   * Bytes a record will need at most in the write buffer, including a page-end gap before it: the
   * record at the larger alignment (8), and a gap of at most 12 bytes (§3.2: shorter than a header).
   */
  static reserveBytes(keySize: number, valueLength: number): number {
    return recordBytes(keySize, valueLength, 8) + RECORD_HEADER_BYTES;
  }

  /** Bytes a record of this file with this key size and value length occupies, padding included (§4.6). */
  recordBytes(keySize: number, valueLength: number): number {
    return recordBytes(keySize, valueLength, this.recordAlignment);
  }

  /**
   * Makes room for `bytes` more in the write buffer, sealing and writing complete pages if needed.
   * The only I/O on the mutation path; call it before changing any state so a failure applies nothing.
   */
  reserve(bytes: number): void {
    const writer = this.#requireWriter();
    if (writer.fits(bytes)) return;
    this.writeCompletePages();
    writer.ensureCapacity(bytes);
  }

  /** Appends one record (room must have been reserved) and returns its position in the file. */
  append(sequence: number, flags: number, key: Uint8Array, value: Uint8Array): number {
    const writer = this.#requireWriter();
    if (sequence < this.lowestSequence) this.lowestSequence = sequence;
    const position = nextRecordPosition(writer.position);
    const length = encodeRecord(writer.buffer, position - writer.bufferPosition, sequence, flags, key, value, this.recordAlignment);
    writer.position = position + length;
    this.streamBytes = writer.position;
    if (this.keepsUnsyncedPages && value.length > PAGE_BYTES)
      this.#noteLargeValue(position + RECORD_HEADER_BYTES + key.length, value.length);
    return position;
  }

  /** Seals and writes the pages of the write buffer, the last one zero-padded. Afterwards writing continues on a fresh page. */
  sealPartialPage(): void {
    const writer = this.#writer;
    if (writer === undefined || writer.position === writer.bufferPosition) return;
    writer.position = alignUpToPage(writer.position);
    this.streamBytes = writer.position;
    this.writeCompletePages();
  }

  /**
   * A barrier: seals the complete pages, then what the partial page gained since the last chunk as
   * one journal chunk (docs/format.md §6A). Returns true when this created a journal file (a new
   * directory entry for the barrier to make durable). Without journal parts, seals the page padded.
   *
   * Space stays bounded by using two journal files in turn (§6A.4): once the current one holds
   * {@link JOURNAL_SWITCH_BYTES} and a MANIFEST has recorded a chunk of it, the other one (which no
   * durable state needs any more) is started over, its first chunk the whole journaled prefix of the
   * partial page again, sealed under the next chunk index (never the same index twice).
   */
  journalPartialPage(): boolean {
    const writer = this.#writer;
    const journal = this.#journal;
    if (writer === undefined) return false;
    if (journal === undefined) {
      this.sealPartialPage();
      return false;
    }
    this.writeCompletePages();
    const pageStart = this.pageCount * PAGE_BYTES;
    let from = Math.max(this.#journaledTo, pageStart);
    const to = writer.position;
    if (to <= from) return false;
    assert(writer.bufferPosition === pageStart, 'the write buffer holds the partial page only');
    let created = false;
    let slot = this.#journalSlots[this.#journalSlot];
    if (slot === undefined || (slot.bytes >= JOURNAL_SWITCH_BYTES && this.#durable.journalChunks > slot.firstChunk)) {
      if (slot !== undefined) {
        this.#journalSlot = 1 - this.#journalSlot;
        from = pageStart;
      }
      const index = this.#journalSlot;
      const reused = this.#journalSlots[index];
      if (reused === undefined) created = true;
      else reused.handle.truncate(0);
      const header = encodeJournalHeader({ ...this.#journalHeaderFields(), firstChunk: journal.cipher.nextChunkIndex });
      const handle = reused?.handle ?? journal.create(index);
      handle.write(header, 0);
      slot = { handle, bytes: header.length, firstChunk: journal.cipher.nextChunkIndex, written: true, toSync: false };
      this.#journalSlots[index] = slot;
      if (this.#counters !== undefined) this.#counters.bytesWritten += header.length;
    }
    const place = { pageIndex: this.pageCount, offset: from - pageStart, length: to - from };
    const sealed = journal.cipher.seal(place, writer.buffer.subarray(from - pageStart, to - pageStart));
    const chunk = encodeJournalChunk(place, sealed.ciphertext, sealed.tag);
    slot.handle.write(chunk, slot.bytes);
    slot.bytes += chunk.length;
    slot.written = true;
    this.#lastChunkPage = place.pageIndex;
    this.#journaledTo = to;
    this.#dirty = true;
    if (this.#counters !== undefined) this.#counters.bytesWritten += chunk.length;
    return created;
  }

  #journalHeaderFields() {
    const { algorithm, shard, fileId, keyId } = this.cipher.identity;
    return { algorithm, shard, fileId, keyId };
  }

  /** Stream position up to which records are in sealed pages or journal chunks. */
  get journaledTo(): number {
    return Math.max(this.#journaledTo, this.pageCount * PAGE_BYTES);
  }

  /**
   * Removes the journal once the file is sealed and durable (its padded last page fsynced): nothing
   * in the journal is needed any more (§6A.4). Returns whether it removed one.
   */
  retireJournal(): boolean {
    if (!this.#durable.sealed) return false;
    let removed = false;
    for (const [index, slot] of this.#journalSlots.entries()) {
      if (slot === undefined) continue;
      slot.handle.close();
      this.#journalSlots[index] = undefined;
      this.#journal?.remove(index);
      removed = true;
    }
    return removed;
  }

  /** Rotation and close: seal the partial page, then write the footer. The file is then read-only. */
  seal(): void {
    this.sealPartialPage();
    this.#drainRing();
    this.sealRing?.forget(this);
    const footer = encodeTagFileFooter({ pageCount: this.pageCount, tagDigest: this.currentDigest() }, this.cipher.mac);
    this.tagHandle.write(footer, tagOffset(this.pageCount));
    if (this.#counters !== undefined) this.#counters.bytesWritten += footer.length;
    this.#dirty = true;
    this.#pagesWritten = true;
    this.sealed = true;
    this.#writer = undefined;
  }

  #requireWriter(): WriteBuffer {
    assert(this.#writer !== undefined, 'sealed files are never appended to');
    return this.#writer;
  }

  /** Seals and writes the complete pages of the write buffer (no fsync). */
  writeCompletePages(): void {
    const writer = this.#writer;
    if (writer === undefined) return;
    const completePages = Math.floor((writer.position - writer.bufferPosition) / PAGE_BYTES);
    if (completePages === 0) return;
    const firstPageIndex = writer.bufferPosition / PAGE_BYTES;
    assert(firstPageIndex === this.pageCount, 'the write buffer starts at the first page not sealed yet');
    if (this.keepsUnsyncedPages) this.#rememberUnsyncedPages(firstPageIndex, completePages, writer.buffer);
    const ring = this.sealRing;
    // A run long enough goes to the sealing worker; once some of the file's pages are there, every run
    // does, so that pages are written (and their tags hashed) in order.
    if (ring !== undefined && (completePages >= ring.minimumPages || this.#pagesInFlight > 0) && this.cipher.ringSealing !== undefined) {
      this.cipher.reserveUnits(firstPageIndex, completePages);
      this.#dirty = true;
      this.#pagesWritten = true;
      this.pageCount += completePages;
      this.#pagesInFlight += completePages;
      if (this.#counters !== undefined) this.#counters.pagesSealed += completePages;
      ring.submit(this, firstPageIndex, writer.buffer.subarray(0, completePages * PAGE_BYTES));
      writer.consume(completePages * PAGE_BYTES);
      return;
    }
    // Scratch shared by every cipher: written (and the tags copied) below, before anything seals again.
    const { ciphertext, tags } = this.cipher.sealUnits(firstPageIndex, writer.buffer.subarray(0, completePages * PAGE_BYTES), PAGE_BYTES);
    this.#dirty = true;
    this.#pagesWritten = true;
    this.dataHandle.write(ciphertext, firstPageIndex * PAGE_BYTES);
    this.tagHandle.write(tags, tagOffset(firstPageIndex));
    this.#appendTags(tags, firstPageIndex);
    this.pageCount += completePages;
    if (this.#counters !== undefined) {
      this.#counters.pagesSealed += completePages;
      this.#counters.bytesWritten += ciphertext.length + tags.length;
    }
    writer.consume(completePages * PAGE_BYTES);
  }

  /** Set by the engine when a cache exists. */
  keepsUnsyncedPages = false;

  /** The engine's sealing worker (active files of a store opened with `sealThreads: 1`). */
  sealRing: SealRing | undefined = undefined;

  /** Pages handed to the sealing worker and not written yet. */
  get pagesInFlight(): number {
    return this.#pagesInFlight;
  }

  /** {@link SealRingFile}: the key and AAD template the worker seals this file's pages with. */
  get sealing(): { readonly key: import('node:crypto').KeyObject; readonly aad: Uint8Array; readonly kind: number } {
    const sealing = this.cipher.ringSealing;
    assert(sealing !== undefined, 'only files with a ring key are sealed by the worker');
    return sealing;
  }

  /** {@link SealRingFile}: the sealing worker finished pages `firstPageIndex`, …; written in order here. */
  writeSealed(firstPageIndex: number, ciphertext: Uint8Array, tags: Uint8Array): void {
    const pages = tags.length / TAG_BYTES;
    assert(firstPageIndex === this.pageCount - this.#pagesInFlight && pages <= this.#pagesInFlight, 'sealed pages are written in order');
    this.dataHandle.write(ciphertext, firstPageIndex * PAGE_BYTES);
    this.tagHandle.write(tags, tagOffset(firstPageIndex));
    this.#appendTags(tags, firstPageIndex);
    this.#pagesInFlight -= pages;
    if (this.#counters !== undefined) this.#counters.bytesWritten += ciphertext.length + tags.length;
  }

  /** Waits until the sealing worker has written every page of this file (their tags are then known). */
  #drainRing(): void {
    if (this.#pagesInFlight > 0) this.sealRing!.drain();
    assert(this.#pagesInFlight === 0, 'the ring wrote every page of the file');
  }

  /**
   * Pages that hold nothing but the inside of one value spanning more than two pages, not yet sealed:
   * (first, last) page index pairs in file order. A read of such a value never asks for them by page
   * (it reads the value's whole span, see {@link read}), so they are neither copied into the unsynced
   * set nor promoted into the page cache: a 64 KiB value would otherwise cost 14 page copies and push
   * 14 pages nobody looks up through the cache.
   */
  readonly #valueInteriorPages: number[] = [];

  #noteLargeValue(valuePosition: number, valueLength: number): void {
    const firstInterior = pageIndexOf(valuePosition) + 1;
    const lastInterior = pageIndexOf(valuePosition + valueLength - 1) - 1;
    if (lastInterior >= firstInterior) this.#valueInteriorPages.push(firstInterior, lastInterior);
  }

  /** Copies the pages `firstPageIndex`, … (`count` of them, from `plaintext`) into the unsynced set, but value interiors. */
  #rememberUnsyncedPages(firstPageIndex: number, count: number, plaintext: Uint8Array): void {
    const interiors = this.#valueInteriorPages;
    let next = 0;
    for (let page = 0; page < count; page++) {
      const pageIndex = firstPageIndex + page;
      while (next < interiors.length && interiors[next + 1]! < pageIndex) next += 2;
      if (next < interiors.length && interiors[next]! <= pageIndex) continue;
      this.#rememberUnsynced(pageIndex, plaintext.subarray(page * PAGE_BYTES, (page + 1) * PAGE_BYTES));
    }
    // Interiors of pages now sealed are done with.
    const sealedTo = firstPageIndex + count;
    let done = 0;
    while (done < interiors.length && interiors[done + 1]! < sealedTo) done += 2;
    if (done > 0) interiors.splice(0, done);
  }

  /**
   * Keeps a copy of a written page until it is durable. Past the limit the oldest copy goes, and its
   * memory takes the new page: a long run of writes between barriers then allocates nothing here.
   * (Nothing else holds an unsynced copy: readers copy out of it at once, and a copy that moves into
   * the cache leaves this set first.)
   */
  #rememberUnsynced(pageIndex: number, plaintext: Uint8Array): void {
    let copy: Uint8Array | undefined;
    if (this.#unsyncedPages.size >= MAX_UNSYNCED_PAGES) {
      const oldest = this.#unsyncedPages.entries().next().value;
      if (oldest !== undefined) {
        this.#unsyncedPages.delete(oldest[0]);
        copy = oldest[1];
      }
    }
    copy ??= new Uint8Array(PAGE_BYTES);
    copy.set(plaintext);
    this.#unsyncedPages.set(pageIndex, copy);
  }

  /** After a barrier: pages now durable move from the unsynced set into the cache. */
  promoteDurablePages(cache: BlockCache | undefined): void {
    for (const [pageIndex, page] of this.#unsyncedPages) {
      if (pageIndex >= this.#durable.pageCount) continue;
      this.#unsyncedPages.delete(pageIndex);
      cache?.insert(pageCacheId(this.fileId, pageIndex), page);
    }
  }

  #appendTags(tags: Uint8Array, firstPageIndex: number): void {
    const needed = firstPageIndex * TAG_BYTES + tags.length;
    if (needed > this.#tags.length) {
      const larger = new Uint8Array(Math.max(needed, this.#tags.length * 2));
      larger.set(this.#tags.subarray(0, firstPageIndex * TAG_BYTES));
      this.#tags = larger;
    }
    this.#tags.set(tags, firstPageIndex * TAG_BYTES);
    this.#tagHash.update(tags);
  }

  /**
   * Copies `length` bytes at `position` of the stream into a new array: from the write buffer, the
   * cache, or disk (one pread per run of missing pages, each page verified before use).
   */
  read(position: number, length: number, cache: BlockCache | undefined): Uint8Array {
    const writer = this.#writer;
    const firstPageIndex = Math.floor(position / PAGE_BYTES);
    const inFirstPage = position - firstPageIndex * PAGE_BYTES;
    if (inFirstPage + length <= PAGE_BYTES && firstPageIndex < this.pageCount) {
      // The common case: a value inside one sealed page, copied straight out of the cache's arena.
      const cached = cache?.copyFromPage(this.fileId, firstPageIndex, inFirstPage, length);
      if (cached !== undefined) return cached;
      return copyOut(this.#uncachedPage(firstPageIndex, cache, firstPageIndex).subarray(inFirstPage, inFirstPage + length));
    }
    const lastPageIndex = pageIndexOf(position + length - 1);
    if (lastPageIndex - firstPageIndex + 1 > 2 && lastPageIndex < this.pageCount) return this.#readLargeValue(position, length, cache);
    const output = allocOut(length);
    if (length === 0) return output;
    let copied = 0;
    let pageIndex = firstPageIndex;
    while (copied < length) {
      const at = position + copied;
      const inPage = at - pageIndex * PAGE_BYTES;
      const take = Math.min(PAGE_BYTES - inPage, length - copied);
      if (writer !== undefined && at >= writer.bufferPosition) {
        const local = at - writer.bufferPosition;
        output.set(writer.buffer.subarray(local, local + (length - copied)), copied);
        return output;
      }
      if (cache?.copyPageInto(this.fileId, pageIndex, inPage, take, output, copied) !== true) {
        const page = this.#uncachedPage(pageIndex, cache, lastPageIndex);
        output.set(page.subarray(inPage, inPage + take), copied);
      }
      copied += take;
      pageIndex++;
    }
    return output;
  }

  /**
   * Plaintext of sealed page `pageIndex` (below {@link pageCount}), from the cache, the unsynced
   * pages or disk, as {@link read} takes it: for a batch reader copying several values out of one
   * page. A cached page comes back as a view of the cache's arena, which a later insert may overwrite
   * (a slot is reused: {@link BlockCache.slotReuses}); a page read from disk or the unsynced set is the
   * caller's. Copy out of it, never keep or hand it out.
   */
  sealedPage(pageIndex: number, cache: BlockCache | undefined): Uint8Array {
    assert(pageIndex >= 0 && pageIndex < this.pageCount, 'a sealed page is read');
    return cache?.get(pageCacheId(this.fileId, pageIndex)) ?? this.#uncachedPage(pageIndex, cache, pageIndex);
  }

  /**
   * A value spanning more than two sealed pages: one pread of its exact page span, every page
   * authenticated, and the value cached whole (not page by page) under its own id in the same cache.
   */
  #readLargeValue(position: number, length: number, cache: BlockCache | undefined): Uint8Array {
    const id = largeValueCacheId(this.fileId, position);
    const cached = cache?.get(id);
    if (cached !== undefined) return copyOut(cached);
    const value = this.#assembleLargeValue(position, length);
    if (cache === undefined || pageIndexOf(position + length - 1) >= this.#durable.pageCount) return value;
    cache.insert(id, value);
    return copyOut(value);
  }

  /** The value at `position` read from its authenticated pages (one pread of the exact page span). */
  #assembleLargeValue(position: number, length: number): Uint8Array {
    const firstPageIndex = pageIndexOf(position);
    const pages = this.readVerifiedPages(firstPageIndex, pageIndexOf(position + length - 1) - firstPageIndex + 1);
    const value = new Uint8Array(length);
    let copied = 0;
    for (let index = 0; index < pages.length; index++) {
      const from = index === 0 ? position - firstPageIndex * PAGE_BYTES : 0;
      const take = Math.min(PAGE_BYTES - from, length - copied);
      value.set(pages[index]!.subarray(from, from + take), copied);
      copied += take;
    }
    return value;
  }

  /**
   * Plaintext of a sealed page the cache does not hold (its miss counted by the caller): the unsynced
   * copy, or disk, reading ahead up to `lastWantedPage` in one pread; verified pages enter the cache.
   */
  #uncachedPage(pageIndex: number, cache: BlockCache | undefined, lastWantedPage: number): Uint8Array {
    const unsynced = this.#unsyncedPages.get(pageIndex);
    if (unsynced !== undefined) return unsynced;
    const lastPage = Math.min(lastWantedPage, this.pageCount - 1);
    if (pageIndex > lastPage)
      throw integrityError(
        `file ${this.fileId} of shard ${this.shard}: page ${pageIndex} is beyond its ${this.pageCount} pages`,
        undefined,
        this.#location(pageIndex),
      );
    let runEnd = pageIndex + 1;
    while (runEnd <= lastPage && cache?.hasPage(this.fileId, runEnd) !== true) runEnd++;
    const pages = this.readVerifiedPages(pageIndex, runEnd - pageIndex);
    let first: Uint8Array | undefined;
    for (let index = 0; index < pages.length; index++) {
      const page = pages[index]!;
      if (cache !== undefined && pageIndex + index < this.#durable.pageCount)
        cache.insert(pageCacheId(this.fileId, pageIndex + index), page);
      if (index === 0) first = page;
    }
    return first!;
  }

  /** Reads pages into the cache (warmup): one pread per run, durable pages only. Returns pages added. */
  warmPages(firstPageIndex: number, count: number, cache: BlockCache): number {
    const last = Math.min(firstPageIndex + count, this.#durable.pageCount);
    if (last <= firstPageIndex) return 0;
    const pages = this.readVerifiedPages(firstPageIndex, last - firstPageIndex);
    for (const [offset, page] of pages.entries()) cache.insert(pageCacheId(this.fileId, firstPageIndex + offset), page, true);
    return pages.length;
  }

  /**
   * Loads the whole value at `position` (one that spans more than two pages, all durable) into the
   * cache past its probation queue, as {@link warmPages} does for pages. Returns the bytes cached.
   */
  warmLargeValue(position: number, length: number, cache: BlockCache): number {
    if (pageIndexOf(position + length - 1) >= this.#durable.pageCount) return 0;
    cache.insert(largeValueCacheId(this.fileId, position), this.#assembleLargeValue(position, length), true);
    return length;
  }

  /** Reads and authenticates `count` pages from disk (no cache). Throws ARMDB_INTEGRITY on the first bad page. */
  readVerifiedPages(firstPageIndex: number, count: number): Uint8Array[] {
    // Pages the worker still holds are read once written (those kept in plaintext never come here).
    if (firstPageIndex + count > this.pageCount - this.#pagesInFlight) this.#drainRing();
    const ciphertext = ciphertextScratch(count * PAGE_BYTES);
    const read = this.dataHandle.read(ciphertext, firstPageIndex * PAGE_BYTES);
    if (read !== ciphertext.length) {
      // The location is the first page not read whole: those before it are there to authenticate.
      throw integrityError(
        `file ${this.fileId} of shard ${this.shard}: pages ${firstPageIndex}..${firstPageIndex + count - 1} are missing (short read)`,
        undefined,
        this.#location(firstPageIndex + Math.floor(read / PAGE_BYTES)),
      );
    }
    const pages: Uint8Array[] = [];
    for (let index = 0; index < count; index++) {
      const pageIndex = firstPageIndex + index;
      pages.push(this.cipher.open(pageIndex, ciphertext.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES), this.tagOf(pageIndex)));
    }
    return pages;
  }

  /** Where page `pageIndex` of this file is, for the `details` of an error about it. */
  #location(pageIndex: number): ArmdbErrorDetails {
    return { shard: this.shard, fileId: this.fileId, pageIndex, path: this.dataHandle.path };
  }

  close(): void {
    // Pages still in flight are not written (close after a failure); the worker forgets the key.
    this.sealRing?.forget(this);
    this.#unsyncedPages.clear();
    for (const [index, slot] of this.#journalSlots.entries()) {
      slot?.handle.close();
      this.#journalSlots[index] = undefined;
    }
    this.dataHandle.close();
    this.tagHandle.close();
    this.cipher.destroy();
  }
}
