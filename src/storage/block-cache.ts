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
 * Only plaintext that passed authentication is ever inserted (storage/data-file.ts decrypts first).
 */

import { PAGE_BYTES } from '../format/constants.js';

interface Entry {
  readonly id: number;
  readonly page: Uint8Array;
  frequency: number;
  inMain: boolean;
}

/** Consumed slots a {@link Fifo} tolerates before it considers compacting its array. */
const FIFO_COMPACT_MIN_HEAD = 1024;
/** Fewest pages the ghost queue remembers, however small the cache. */
const MIN_GHOST_PAGES = 16;

/** A FIFO over an array with a moving head; compacts itself when half of it is consumed. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > FIFO_COMPACT_MIN_HEAD && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Cache id of page `pageIndex` of file `fileId`: ≥ 0 (page indexes stay below 2^20, file ids below 2^32, so ids below 2^52). */
export function pageCacheId(fileId: number, pageIndex: number): number {
  return fileId * 2 ** 20 + pageIndex;
}

/**
 * Cache id of the whole value that starts at byte `position` of file `fileId` and spans more than two
 * pages: negative, so never a page's id. Built from the page the value starts in: two such values
 * never start in the same page (each runs past the next two), so ids of different values never collide.
 */
export function largeValueCacheId(fileId: number, position: number): number {
  return -1 - (fileId * 2 ** 20 + Math.floor(position / PAGE_BYTES));
}

/** The file of a cache id of either kind. */
function fileOfCacheId(id: number): number {
  return Math.floor((id >= 0 ? id : -1 - id) / 2 ** 20);
}

export class BlockCache {
  readonly capacityBytes: number;
  private readonly smallCapacityBytes: number;
  private readonly entries = new Map<number, Entry>();
  private readonly small = new Fifo<Entry>();
  private readonly main = new Fifo<Entry>();
  private readonly ghost = new Fifo<number>();
  private readonly ghostSet = new Set<number>();
  private smallBytes = 0;
  private mainBytes = 0;
  hits = 0;
  misses = 0;

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
    this.smallCapacityBytes = Math.max(Math.floor(capacityBytes / 10), 1);
  }

  get bytes(): number {
    return this.smallBytes + this.mainBytes;
  }

  get pageCount(): number {
    return this.entries.size;
  }

  /** The cached page, or undefined. Counts a hit or a miss. */
  get(id: number): Uint8Array | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (entry.frequency < 3) entry.frequency++;
    return entry.page;
  }

  /**
   * Inserts a verified page. Pages larger than the whole budget are not cached. `warm` pages (from
   * `warmup()`, which the caller asked for on purpose) skip the probation queue.
   */
  insert(id: number, page: Uint8Array, warm = false): void {
    if (this.capacityBytes === 0 || page.length > this.capacityBytes || this.entries.has(id)) return;
    const inMain = this.ghostSet.delete(id) || warm;
    const entry: Entry = { id, page, frequency: 0, inMain };
    this.entries.set(id, entry);
    if (inMain) {
      this.main.push(entry);
      this.mainBytes += page.length;
    } else {
      this.small.push(entry);
      this.smallBytes += page.length;
    }
    while (this.bytes > this.capacityBytes) this.evict();
  }

  /** Drops every page and value of a file (it was deleted or rewritten). */
  dropFile(fileId: number): void {
    for (const [id, entry] of this.entries) {
      if (fileOfCacheId(id) === fileId) this.remove(entry);
    }
  }

  clear(): void {
    this.entries.clear();
    this.small.clear();
    this.main.clear();
    this.ghost.clear();
    this.ghostSet.clear();
    this.smallBytes = 0;
    this.mainBytes = 0;
  }

  private remove(entry: Entry): void {
    // Removed entries stay in their FIFO until reached; eviction skips entries no longer in the map.
    if (this.entries.get(entry.id) !== entry) return;
    this.entries.delete(entry.id);
    if (entry.inMain) this.mainBytes -= entry.page.length;
    else this.smallBytes -= entry.page.length;
  }

  private evict(): void {
    if (this.smallBytes >= this.smallCapacityBytes || this.mainBytes === 0) this.evictSmall();
    else this.evictMain();
  }

  private evictSmall(): void {
    for (let entry = this.small.shift(); entry !== undefined; entry = this.small.shift()) {
      if (this.entries.get(entry.id) !== entry) continue;
      if (entry.frequency > 0) {
        // Read again while on probation: promote.
        this.smallBytes -= entry.page.length;
        entry.inMain = true;
        entry.frequency = 0;
        this.main.push(entry);
        this.mainBytes += entry.page.length;
        if (this.bytes <= this.capacityBytes) return;
        continue;
      }
      this.remove(entry);
      this.remember(entry.id);
      return;
    }
    if (this.mainBytes > 0) this.evictMain();
  }

  private evictMain(): void {
    for (let entry = this.main.shift(); entry !== undefined; entry = this.main.shift()) {
      if (this.entries.get(entry.id) !== entry) continue;
      if (entry.frequency > 0) {
        entry.frequency--;
        this.main.push(entry);
        continue;
      }
      this.remove(entry);
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
