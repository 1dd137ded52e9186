/**
 * A cache of verified, decrypted pages bounded by bytes, with S3-FIFO eviction (Yang et al., SOSP '23),
 * as armdb uses: new pages enter a small FIFO (10 % of the budget); pages read again while there move
 * to the main FIFO, the rest are evicted but remembered in a ghost FIFO so that their next miss goes
 * straight to main. A scan therefore passes through the small queue without flushing the hot set.
 *
 * Entries are weighted by their bytes: a page (`PAGE_BYTES`), or a whole value that spans more than two pages,
 * cached under an id of its own (negative, disjoint from page ids), so small and large values share
 * one budget and whichever is read again stays.
 *
 * Pages live in slots of a few large arrays (an arena, grown a chunk at a time up to the budget), found
 * through one table per file indexed by page number. A hot get thus reads a table entry and the page
 * bytes, where a `Map` of page objects cost a hash-table probe, an entry object, a typed-array object
 * and its own memory, each a likely cache miss (docs/benchmarks.md, hot get).
 *
 * Only plaintext that passed authentication is ever inserted (storage/data-file.ts decrypts first).
 */

import { copyOut } from '../format/bytes.js';
import { PAGE_BYTES } from '../format/constants.js';

/** A whole value of more than two pages, cached under its (negative) id. */
interface LargeEntry {
  readonly id: number;
  readonly bytes: Uint8Array;
  frequency: number;
  inMain: boolean;
}

/** Consumed slots a {@link Fifo} tolerates before it considers compacting its array. */
const FIFO_COMPACT_MIN_HEAD = 1024;
/** Fewest pages the ghost queue remembers, however small the cache. */
const MIN_GHOST_PAGES = 16;
/** Pages per arena chunk (256 KiB): the arena grows by this much when every slot is taken. */
const CHUNK_SHIFT = 6;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_PAGES - 1;
/** Page indexes stay below this in a cache id (docs/format.md: a file holds fewer than 2^20 pages). */
const PAGES_PER_FILE_ID = 2 ** 20;
/** Highest access count S3-FIFO keeps per entry. */
const MAX_FREQUENCY = 3;

/**
 * A FIFO of numbers over an array with a moving head; compacts itself when half of it is consumed.
 * Items are page slots (≥ 0) or large-value ids (< 0).
 */
class Fifo {
  private items: number[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: number): void {
    this.items.push(item);
  }

  shift(): number | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > FIFO_COMPACT_MIN_HEAD && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Keeps only the items `keep` accepts, in order. */
  filter(keep: (item: number) => boolean): void {
    this.items = this.items.slice(this.head).filter(keep);
    this.head = 0;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Cache id of page `pageIndex` of file `fileId`: ≥ 0 (page indexes stay below 2^20, file ids below 2^32, so ids below 2^52). */
export function pageCacheId(fileId: number, pageIndex: number): number {
  return fileId * PAGES_PER_FILE_ID + pageIndex;
}

/**
 * Cache id of the whole value that starts at byte `position` of file `fileId` and spans more than two
 * pages: negative, so never a page's id. Built from the page the value starts in: two such values
 * never start in the same page (each runs past the next two), so ids of different values never collide.
 */
export function largeValueCacheId(fileId: number, position: number): number {
  return -1 - (fileId * PAGES_PER_FILE_ID + Math.floor(position / PAGE_BYTES));
}

/** The file of a cache id of either kind. */
function fileOfCacheId(id: number): number {
  return Math.floor((id >= 0 ? id : -1 - id) / PAGES_PER_FILE_ID);
}

export class BlockCache {
  readonly capacityBytes: number;
  private readonly smallCapacityBytes: number;
  /** Per file: slot + 1 of each cached page by page index (0: not cached). */
  private readonly tables = new Map<number, Int32Array>();
  /** The arena: chunk `slot >> CHUNK_SHIFT` holds slot `slot` at `(slot & CHUNK_MASK) * PAGE_BYTES`. */
  private chunks: Uint8Array[] = [];
  /** Per slot: the page's cache id (free slots: -1), access count, and queue. */
  private slotIds = new Float64Array(0);
  private slotFrequency = new Uint8Array(0);
  private slotInMain = new Uint8Array(0);
  /** Slots handed out and freed again, reused before the arena grows. */
  private freeSlots: number[] = [];
  private slotCount = 0;
  private readonly large = new Map<number, LargeEntry>();
  private readonly small = new Fifo();
  private readonly main = new Fifo();
  private readonly ghost = new Fifo();
  private readonly ghostSet = new Set<number>();
  private smallBytes = 0;
  private mainBytes = 0;
  private pages = 0;
  hits = 0;
  misses = 0;
  /**
   * Times a slot was given to another page (after an eviction or a dropped file): a view of a cached
   * page ({@link get}) taken before stays right only while this has not changed.
   */
  slotReuses = 0;

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
    this.smallCapacityBytes = Math.max(Math.floor(capacityBytes / 10), 1);
  }

  get bytes(): number {
    return this.smallBytes + this.mainBytes;
  }

  /** Entries cached: pages and large values. */
  get pageCount(): number {
    return this.pages + this.large.size;
  }

  /**
   * A fresh copy ({@link copyOut}) of `length` bytes at `offset` of page `pageIndex` of file `fileId`,
   * or undefined when that page is not cached. Counts a hit or a miss. The hot get's path: nothing is
   * allocated but the copy.
   */
  copyFromPage(fileId: number, pageIndex: number, offset: number, length: number): Uint8Array | undefined {
    const slot = this.slotOf(fileId, pageIndex);
    if (slot < 0) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (this.slotFrequency[slot]! < MAX_FREQUENCY) this.slotFrequency[slot]!++;
    const start = (slot & CHUNK_MASK) * PAGE_BYTES + offset;
    return copyOut(this.chunks[slot >> CHUNK_SHIFT]!.subarray(start, start + length));
  }

  /**
   * Copies `length` bytes at `offset` of page `pageIndex` of file `fileId` into `output` at `at`;
   * false (nothing copied) when that page is not cached. Counts a hit or a miss.
   */
  copyPageInto(fileId: number, pageIndex: number, offset: number, length: number, output: Uint8Array, at: number): boolean {
    const slot = this.slotOf(fileId, pageIndex);
    if (slot < 0) {
      this.misses++;
      return false;
    }
    this.hits++;
    if (this.slotFrequency[slot]! < MAX_FREQUENCY) this.slotFrequency[slot]!++;
    const start = (slot & CHUNK_MASK) * PAGE_BYTES + offset;
    output.set(this.chunks[slot >> CHUNK_SHIFT]!.subarray(start, start + length), at);
    return true;
  }

  /** Whether page `pageIndex` of file `fileId` is cached (counts nothing, changes nothing). */
  hasPage(fileId: number, pageIndex: number): boolean {
    return this.slotOf(fileId, pageIndex) >= 0;
  }

  /**
   * The cached page or large value of `id`, or undefined. Counts a hit or a miss. A page comes back
   * as a view of the arena that the next {@link insert} may overwrite: copy from it at once, never
   * keep it.
   */
  get(id: number): Uint8Array | undefined {
    if (id < 0) {
      const entry = this.large.get(id);
      if (entry === undefined) {
        this.misses++;
        return undefined;
      }
      this.hits++;
      if (entry.frequency < MAX_FREQUENCY) entry.frequency++;
      return entry.bytes;
    }
    const slot = this.slotOf(fileOfCacheId(id), id % PAGES_PER_FILE_ID);
    if (slot < 0) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (this.slotFrequency[slot]! < MAX_FREQUENCY) this.slotFrequency[slot]!++;
    return this.pageView(slot);
  }

  /**
   * Inserts a verified page (its bytes are copied into the arena) or a large value (kept as it is:
   * the caller must not change it afterwards). Entries larger than the whole budget are not cached.
   * `warm` entries (from `warmup()`, which the caller asked for on purpose) skip the probation queue.
   */
  insert(id: number, bytes: Uint8Array, warm = false): void {
    if (this.capacityBytes === 0 || bytes.length > this.capacityBytes) return;
    const inMain = this.ghostSet.delete(id) || warm;
    if (id < 0) {
      if (this.large.has(id)) return;
      this.large.set(id, { id, bytes, frequency: 0, inMain });
      this.account(id, bytes.length, inMain);
    } else {
      if (bytes.length !== PAGE_BYTES || PAGE_BYTES > this.capacityBytes) return;
      const fileId = fileOfCacheId(id);
      const pageIndex = id % PAGES_PER_FILE_ID;
      if (this.slotOf(fileId, pageIndex) >= 0) return;
      // Room first, so that the slot taken below is never the one an eviction frees for a page of its own.
      while (this.bytes + PAGE_BYTES > this.capacityBytes) this.evict();
      const slot = this.takeSlot();
      this.pageView(slot).set(bytes);
      this.slotIds[slot] = id;
      this.slotFrequency[slot] = 0;
      this.slotInMain[slot] = inMain ? 1 : 0;
      this.tableFor(fileId, pageIndex)[pageIndex] = slot + 1;
      this.pages++;
      this.account(slot, PAGE_BYTES, inMain);
    }
    while (this.bytes > this.capacityBytes) this.evict();
  }

  /** Drops every page and value of a file (it was deleted or rewritten); their plaintext is wiped. */
  dropFile(fileId: number): void {
    const table = this.tables.get(fileId);
    const dropped = new Set<number>();
    if (table !== undefined) {
      for (const stored of table) if (stored !== 0) dropped.add(stored - 1);
      this.tables.delete(fileId);
    }
    for (const id of this.large.keys()) if (fileOfCacheId(id) === fileId) dropped.add(id);
    if (dropped.size === 0) return;
    const keep = (item: number) => !dropped.has(item);
    this.small.filter(keep);
    this.main.filter(keep);
    for (const item of dropped) {
      if (item >= 0) {
        this.pageView(item).fill(0);
        this.removeItem(item);
      } else {
        this.large.get(item)?.bytes.fill(0);
        this.removeLarge(item);
      }
    }
  }

  /** Drops everything; the arena's plaintext is wiped and released. */
  clear(): void {
    for (const chunk of this.chunks) chunk.fill(0);
    for (const entry of this.large.values()) entry.bytes.fill(0);
    this.chunks = [];
    this.tables.clear();
    this.slotIds = new Float64Array(0);
    this.slotFrequency = new Uint8Array(0);
    this.slotInMain = new Uint8Array(0);
    this.freeSlots = [];
    this.slotCount = 0;
    this.pages = 0;
    this.large.clear();
    this.small.clear();
    this.main.clear();
    this.ghost.clear();
    this.ghostSet.clear();
    this.smallBytes = 0;
    this.mainBytes = 0;
  }

  /** The slot of a cached page, or -1. */
  private slotOf(fileId: number, pageIndex: number): number {
    const table = this.tables.get(fileId);
    if (table === undefined || pageIndex >= table.length) return -1;
    return table[pageIndex]! - 1;
  }

  private pageView(slot: number): Uint8Array {
    const start = (slot & CHUNK_MASK) * PAGE_BYTES;
    return this.chunks[slot >> CHUNK_SHIFT]!.subarray(start, start + PAGE_BYTES);
  }

  /** The table of `fileId`, long enough for `pageIndex`. */
  private tableFor(fileId: number, pageIndex: number): Int32Array {
    let table = this.tables.get(fileId);
    if (table === undefined || pageIndex >= table.length) {
      let length = Math.max(table?.length ?? 0, 256);
      while (length <= pageIndex) length *= 2;
      const larger = new Int32Array(Math.min(length, PAGES_PER_FILE_ID));
      if (table !== undefined) larger.set(table);
      table = larger;
      this.tables.set(fileId, table);
    }
    return table;
  }

  /** A free slot: a freed one, else the next of the arena (a new chunk when the last is full). */
  private takeSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) {
      this.slotReuses++;
      return reused;
    }
    const slot = this.slotCount++;
    if (slot >> CHUNK_SHIFT >= this.chunks.length) {
      // No more memory than the budget holds pages: the last chunk may be short. (Slots never outnumber
      // the pages the budget holds: insert makes room before it takes one, and freed slots go first.)
      const budgetPages = Math.floor(this.capacityBytes / PAGE_BYTES);
      const chunkPages = Math.min(CHUNK_PAGES, budgetPages - this.chunks.length * CHUNK_PAGES);
      this.chunks.push(new Uint8Array(chunkPages * PAGE_BYTES));
    }
    if (slot >= this.slotIds.length) {
      const length = Math.max(2 * this.slotIds.length, CHUNK_PAGES);
      const ids = new Float64Array(length);
      ids.set(this.slotIds);
      this.slotIds = ids;
      const frequency = new Uint8Array(length);
      frequency.set(this.slotFrequency);
      this.slotFrequency = frequency;
      const inMain = new Uint8Array(length);
      inMain.set(this.slotInMain);
      this.slotInMain = inMain;
    }
    return slot;
  }

  private removeLarge(id: number): void {
    const entry = this.large.get(id);
    if (entry === undefined) return;
    this.large.delete(id);
    if (entry.inMain) this.mainBytes -= entry.bytes.length;
    else this.smallBytes -= entry.bytes.length;
  }

  private account(item: number, bytes: number, inMain: boolean): void {
    if (inMain) {
      this.main.push(item);
      this.mainBytes += bytes;
    } else {
      this.small.push(item);
      this.smallBytes += bytes;
    }
  }

  private frequencyOf(item: number): number {
    return item >= 0 ? this.slotFrequency[item]! : this.large.get(item)!.frequency;
  }

  private setFrequency(item: number, frequency: number): void {
    if (item >= 0) this.slotFrequency[item] = frequency;
    else this.large.get(item)!.frequency = frequency;
  }

  private bytesOf(item: number): number {
    return item >= 0 ? PAGE_BYTES : this.large.get(item)!.bytes.length;
  }

  private idOf(item: number): number {
    return item >= 0 ? this.slotIds[item]! : item;
  }

  /** Removes an evicted item (no wipe: a slot's next page overwrites it whole). */
  private removeItem(item: number): void {
    if (item < 0) {
      this.removeLarge(item);
      return;
    }
    const id = this.slotIds[item]!;
    const table = this.tables.get(fileOfCacheId(id));
    const pageIndex = id % PAGES_PER_FILE_ID;
    if (table !== undefined && table[pageIndex] === item + 1) table[pageIndex] = 0;
    if (this.slotInMain[item] === 1) this.mainBytes -= PAGE_BYTES;
    else this.smallBytes -= PAGE_BYTES;
    this.slotIds[item] = -1;
    this.pages--;
    this.freeSlots.push(item);
  }

  private evict(): void {
    if (this.smallBytes >= this.smallCapacityBytes || this.mainBytes === 0) this.evictSmall();
    else this.evictMain();
  }

  // Every cached entry is in exactly one of small and main, once (dropFile filters both queues), so
  // an item shifted off a queue is always live.
  private evictSmall(): void {
    for (let item = this.small.shift(); item !== undefined; item = this.small.shift()) {
      if (this.frequencyOf(item) > 0) {
        // Read again while on probation: promote.
        const bytes = this.bytesOf(item);
        this.smallBytes -= bytes;
        this.setInMain(item);
        this.setFrequency(item, 0);
        this.main.push(item);
        this.mainBytes += bytes;
        if (this.bytes <= this.capacityBytes) return;
        continue;
      }
      const id = this.idOf(item);
      this.removeItem(item);
      this.remember(id);
      return;
    }
    if (this.mainBytes > 0) this.evictMain();
  }

  private setInMain(item: number): void {
    if (item >= 0) this.slotInMain[item] = 1;
    else this.large.get(item)!.inMain = true;
  }

  private evictMain(): void {
    for (let item = this.main.shift(); item !== undefined; item = this.main.shift()) {
      const frequency = this.frequencyOf(item);
      if (frequency > 0) {
        this.setFrequency(item, frequency - 1);
        this.main.push(item);
        continue;
      }
      this.removeItem(item);
      return;
    }
  }

  private remember(id: number): void {
    this.ghost.push(id);
    this.ghostSet.add(id);
    // The ghost queue remembers about as many pages as main can hold.
    const ghostLimit = Math.max(MIN_GHOST_PAGES, Math.ceil(this.capacityBytes / PAGE_BYTES));
    while (this.ghostSet.size > ghostLimit) {
      const oldest = this.ghost.shift();
      if (oldest === undefined) break;
      this.ghostSet.delete(oldest);
    }
  }
}
