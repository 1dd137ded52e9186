/**
 * Open-addressing hash index with linear probing and backward-shift deletion over an Int32Array of
 * slots (handle + 1; 0 = empty), load factor at most 0.75. The key hash is seeded per process so
 * that chosen keys cannot force collisions (hash flooding).
 */
import { randomBytes } from 'node:crypto';
import { assert } from '../assert.js';
import { EntryStore, LOCATION_WORDS } from './entry-store.js';
import { KeyIndex, type KeySource } from './key-index.js';

const SEED = randomBytes(4).readUInt32LE(0);

/** Below this many keys a bulk insert is the plain loop: sorting would cost more than it saves. */
const BULK_INSERT_MIN_KEYS = 4096;
/** Bits of the slot number each pass of the bulk insert's radix sort orders by. */
const RADIX_BITS = 11;

/** What a bulk insert did: the handle of every source key, in source order, and the handles it added. */
export interface BulkInsert {
  readonly handles: Int32Array;
  /** Handles of keys the index did not hold before, each once, in the order of their first source key. */
  readonly added: Int32Array;
}

/** murmur3-style 32-bit hash of a key. */
export function hashKey(key: Uint8Array): number {
  return hashKeyAt(key, 0, key.length);
}

/** {@link hashKey} of the `length` bytes at `offset` of `bytes`. */
export function hashKeyAt(key: Uint8Array, offset: number, length: number): number {
  let hash = SEED ^ length;
  const whole = offset + (length & ~3);
  const end = offset + length;
  let index = offset;
  for (; index < whole; index += 4) {
    let word = key[index]! | (key[index + 1]! << 8) | (key[index + 2]! << 16) | (key[index + 3]! << 24);
    word = Math.imul(word, 0xcc9e2d51);
    word = (word << 15) | (word >>> 17);
    hash ^= Math.imul(word, 0x1b873593);
    hash = (hash << 13) | (hash >>> 19);
    hash = (Math.imul(hash, 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  for (let shift = 0; index < end; index++, shift += 8) tail |= key[index]! << shift;
  if (length & 3) {
    tail = Math.imul(tail, 0xcc9e2d51);
    tail = (tail << 15) | (tail >>> 17);
    hash ^= Math.imul(tail, 0x1b873593);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/**
 * Slots are pairs in one Int32Array: [handle + 1 (0 = empty), hash]. Keeping the hash beside the
 * handle means a probe touches one cache line for the slot and one for the key, not three.
 */
export class HashIndex extends KeyIndex {
  private slots: Int32Array;
  private mask: number;
  private used = 0;
  /** Where {@link find} leaves the word it loads ahead, so that the load is not optimised away. */
  protected touchedWord = 0;
  /** Bits of the key hash kept (all 32 but in tests, which narrow it to force equal hashes). */
  readonly #hashMask: number;

  /**
   * `hashBits` is for tests only: keeping fewer bits of every key hash makes distinct keys share
   * slot hashes, so the key comparison behind every hash match, and long probe runs, are exercised.
   */
  constructor(keySize: number, options: { valueSize?: number; keepsObjects?: boolean; hashBits?: number } = {}) {
    super(new EntryStore(keySize, options));
    const hashBits = options.hashBits ?? 32;
    assert(Number.isInteger(hashBits) && hashBits >= 1 && hashBits <= 32, 'hashBits is 1..32');
    this.#hashMask = hashBits === 32 ? -1 : (1 << hashBits) - 1;
    this.slots = new Int32Array(2 * 2048);
    this.mask = 2048 - 1;
  }

  override get size(): number {
    return this.used;
  }

  override get memoryBytes(): number {
    return this.entries.memoryBytes + this.slots.byteLength;
  }

  override find(key: Uint8Array): number {
    const hash = hashKey(key) & this.#hashMask;
    const slots = this.slots;
    const mask = this.mask;
    const entries = this.entries;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const stored = slots[2 * slot]!;
      if (stored === 0) return -1;
      if (slots[2 * slot + 1] === hash) {
        // Load the entry's location record before comparing its key: both addresses come from the
        // handle alone, so the two misses overlap, and a get then finds the record in cache.
        this.touchedWord = entries.locations[(stored - 1) * LOCATION_WORDS]!;
        if (entries.keyEquals(stored - 1, key)) return stored - 1;
      }
    }
  }

  override findOrInsert(key: Uint8Array): number {
    const hash = hashKey(key) & this.#hashMask;
    const slots = this.slots;
    const mask = this.mask;
    let slot = hash & mask;
    for (; ; slot = (slot + 1) & mask) {
      const stored = slots[2 * slot]!;
      if (stored === 0) break;
      if (slots[2 * slot + 1] === hash && this.entries.keyEquals(stored - 1, key)) return stored - 1;
    }
    const handle = this.entries.allocate(key);
    slots[2 * slot] = handle + 1;
    slots[2 * slot + 1] = hash;
    this.used++;
    if (this.used * 4 > (mask + 1) * 3) this.resize((mask + 1) * 2);
    return handle;
  }

  override findOrInsertAt(bytes: Uint8Array, offset: number): number {
    const entries = this.entries;
    const hash = hashKeyAt(bytes, offset, entries.keySize) & this.#hashMask;
    const slots = this.slots;
    const mask = this.mask;
    let slot = hash & mask;
    for (; ; slot = (slot + 1) & mask) {
      const stored = slots[2 * slot]!;
      if (stored === 0) break;
      if (slots[2 * slot + 1] === hash && entries.keyEqualsAt(stored - 1, bytes, offset)) return stored - 1;
    }
    const handle = entries.allocateAt(bytes, offset);
    slots[2 * slot] = handle + 1;
    slots[2 * slot + 1] = hash;
    this.used++;
    if (this.used * 4 > (mask + 1) * 3) this.resize((mask + 1) * 2);
    return handle;
  }

  /**
   * Bulk insert (open, a hint's keys): the keys are first copied into the entry store in their order,
   * then placed in the slots in the order of their home slot. One key at a time, each placement is a
   * random access into the slots, a cache and TLB miss per key once the slots outgrow the cache;
   * sorted by slot (a radix sort of the hashes, two passes for a million keys) the slots are walked
   * from one end to the other. A key already present, or twice in the sources, keeps its first
   * handle; the copy made for it is released.
   */
  override findOrInsertMany(sources: readonly KeySource[]): Int32Array {
    return this.insertMany(sources).handles;
  }

  /**
   * {@link findOrInsertMany} that also says which handles it added: the ordered index must place
   * those, and only those, in key order. A handle's number cannot tell (a released handle is handed
   * out again, below the handle limit before the insert), so the placement loop names them.
   */
  insertMany(sources: readonly KeySource[]): BulkInsert {
    const count = sources.reduce((sum, source) => sum + source.count, 0);
    if (count < BULK_INSERT_MIN_KEYS) return this.#insertOneByOne(sources, count);
    // No resize below: the mask stays what the sort orders by.
    this.reserve(count);
    const entries = this.entries;
    const keySize = entries.keySize;
    const handles = new Int32Array(count);
    let next = 0;
    for (const { keyBytes, keyOffset, keyStride, count: sourceCount } of sources) {
      entries.allocateManyAt(keyBytes, keyOffset, keyStride, sourceCount, handles, next);
      next += sourceCount;
    }
    const keys = entries.keys;
    let hashes = new Int32Array(count);
    const hashMask = this.#hashMask;
    for (let index = 0; index < count; index++) hashes[index] = hashKeyAt(keys, handles[index]! * keySize, keySize) & hashMask;
    const mask = this.mask;
    // order[k]: the k-th source key by home slot (hash & mask); LSD radix sort carrying the hashes.
    let order = new Int32Array(count);
    for (let index = 0; index < count; index++) order[index] = index;
    let otherOrder = new Int32Array(count);
    let otherHashes = new Int32Array(count);
    const buckets = new Int32Array(1 << RADIX_BITS);
    for (let shift = 0; mask >>> shift !== 0; shift += RADIX_BITS) {
      buckets.fill(0);
      for (let index = 0; index < count; index++) buckets[((hashes[index]! & mask) >>> shift) & (buckets.length - 1)]!++;
      let total = 0;
      for (let digit = 0; digit < buckets.length; digit++) {
        const digitCount = buckets[digit]!;
        buckets[digit] = total;
        total += digitCount;
      }
      for (let index = 0; index < count; index++) {
        const hash = hashes[index]!;
        const target = buckets[((hash & mask) >>> shift) & (buckets.length - 1)]!++;
        otherOrder[target] = order[index]!;
        otherHashes[target] = hash;
      }
      [order, otherOrder] = [otherOrder, order];
      [hashes, otherHashes] = [otherHashes, hashes];
    }
    const slots = this.slots;
    // Which source keys got a handle of their own, so that the added handles can be listed in source
    // order: allocation order, which the ordered index's sort then reads the keys in (front to back).
    const isNew = new Uint8Array(count);
    let addedCount = 0;
    for (let rank = 0; rank < count; rank++) {
      const source = order[rank]!;
      const handle = handles[source]!;
      const hash = hashes[rank]!;
      let slot = hash & mask;
      let existing = -1;
      for (; ; slot = (slot + 1) & mask) {
        const stored = slots[2 * slot]!;
        if (stored === 0) break;
        if (slots[2 * slot + 1] === hash && entries.keyEqualsAt(stored - 1, keys, handle * keySize)) {
          existing = stored - 1;
          break;
        }
      }
      if (existing >= 0) {
        entries.release(handle);
        handles[source] = existing;
        continue;
      }
      slots[2 * slot] = handle + 1;
      slots[2 * slot + 1] = hash;
      isNew[source] = 1;
      addedCount++;
      this.used++;
    }
    assert(this.used * 4 <= (mask + 1) * 3, 'a bulk insert stays within the reserved slots');
    // The sort's spare buffer is free now: it lists the new handles.
    const added = otherOrder.subarray(0, addedCount);
    let listed = 0;
    for (let source = 0; source < count; source++) if (isNew[source] === 1) added[listed++] = handles[source]!;
    assert(listed === addedCount, 'every handle placed is listed as added');
    return { handles, added };
  }

  #insertOneByOne(sources: readonly KeySource[], count: number): BulkInsert {
    const handles = new Int32Array(count);
    const added = new Int32Array(count);
    let next = 0;
    let addedCount = 0;
    for (const { keyBytes, keyOffset, keyStride, count: sourceCount } of sources) {
      for (let index = 0; index < sourceCount; index++) {
        const sizeBefore = this.used;
        const handle = this.findOrInsertAt(keyBytes, keyOffset + index * keyStride);
        handles[next++] = handle;
        if (this.used !== sizeBefore) added[addedCount++] = handle;
      }
    }
    return { handles, added: added.subarray(0, addedCount) };
  }

  /** Sizes the slots for `count` more keys at once (load factor at most 0.75), and the entry store. */
  override reserve(count: number): void {
    super.reserve(count);
    const wanted = this.used + count;
    let slotCount = this.mask + 1;
    while (wanted * 4 > slotCount * 3) slotCount *= 2;
    if (slotCount !== this.mask + 1) this.resize(slotCount);
  }

  override remove(key: Uint8Array): boolean {
    const hash = hashKey(key) & this.#hashMask;
    const slots = this.slots;
    const mask = this.mask;
    let slot = hash & mask;
    for (; ; slot = (slot + 1) & mask) {
      const stored = slots[2 * slot]!;
      if (stored === 0) return false;
      if (slots[2 * slot + 1] === hash && this.entries.keyEquals(stored - 1, key)) break;
    }
    this.entries.release(slots[2 * slot]! - 1);
    this.used--;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = slot;
    for (let next = (hole + 1) & mask; ; next = (next + 1) & mask) {
      const stored = slots[2 * next]!;
      if (stored === 0) break;
      const home = slots[2 * next + 1]! & mask;
      if (((hole - home) & mask) <= ((next - home) & mask)) {
        slots[2 * hole] = stored;
        slots[2 * hole + 1] = slots[2 * next + 1]!;
        hole = next;
      }
    }
    slots[2 * hole] = 0;
    slots[2 * hole + 1] = 0;
    return true;
  }

  /**
   * Visits handles in handle order, which is insertion order for a store opened from its files: the
   * entry store is read front to back (a sort of the handles by key, which reads every key, then
   * reads it in order too), where slot order would be a random walk through it.
   */
  override forEachHandle(visit: (handle: number) => void): void {
    const entries = this.entries;
    const handleLimit = entries.handleLimit;
    for (let handle = 0; handle < handleLimit; handle++) if (entries.isAllocated(handle)) visit(handle);
  }

  private resize(slotCount: number): void {
    // The probe sequence masks hashes: a slot count that is not a power of two would skip slots.
    assert((slotCount & (slotCount - 1)) === 0, 'the slot count is a power of two');
    const slots = new Int32Array(2 * slotCount);
    const mask = slotCount - 1;
    const old = this.slots;
    for (let index = 0; index < old.length; index += 2) {
      const stored = old[index]!;
      if (stored === 0) continue;
      const hash = old[index + 1]!;
      let slot = hash & mask;
      while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
      slots[2 * slot] = stored;
      slots[2 * slot + 1] = hash;
    }
    this.slots = slots;
    this.mask = mask;
  }
}
