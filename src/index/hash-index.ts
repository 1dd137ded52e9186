/**
 * Open-addressing hash index with linear probing and backward-shift deletion over an Int32Array of
 * slots (handle + 1; 0 = empty), load factor at most 0.75. The key hash is seeded per process so
 * that chosen keys cannot force collisions (hash flooding).
 */
import { randomBytes } from 'node:crypto';
import { EntryStore } from './entry-store.js';
import type { KeyIndex } from './key-index.js';

const SEED = randomBytes(4).readUInt32LE(0);

/** murmur3-style 32-bit hash of a key. */
export function hashKey(key: Uint8Array): number {
  let hash = SEED ^ key.length;
  const length = key.length;
  const whole = length & ~3;
  let index = 0;
  for (; index < whole; index += 4) {
    let word = key[index]! | (key[index + 1]! << 8) | (key[index + 2]! << 16) | (key[index + 3]! << 24);
    word = Math.imul(word, 0xcc9e2d51);
    word = (word << 15) | (word >>> 17);
    hash ^= Math.imul(word, 0x1b873593);
    hash = (hash << 13) | (hash >>> 19);
    hash = (Math.imul(hash, 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  for (let shift = 0; index < length; index++, shift += 8) tail |= key[index]! << shift;
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

export class HashIndex implements KeyIndex {
  readonly entries: EntryStore;
  private slots: Int32Array;
  private mask: number;
  private used = 0;

  constructor(keySize: number) {
    this.entries = new EntryStore(keySize);
    this.slots = new Int32Array(2048);
    this.mask = this.slots.length - 1;
  }

  get size(): number {
    return this.used;
  }

  get memoryBytes(): number {
    return this.entries.memoryBytes + this.slots.byteLength;
  }

  find(key: Uint8Array): number {
    const hash = hashKey(key);
    const slots = this.slots;
    const hashes = this.entries.hashes;
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const stored = slots[slot]!;
      if (stored === 0) return -1;
      const handle = stored - 1;
      if (hashes[handle] === hash && this.entries.keyEquals(handle, key)) return handle;
    }
  }

  findOrInsert(key: Uint8Array): number {
    const hash = hashKey(key);
    const hashes = this.entries.hashes;
    let slot = hash & this.mask;
    for (; ; slot = (slot + 1) & this.mask) {
      const stored = this.slots[slot]!;
      if (stored === 0) break;
      const handle = stored - 1;
      if (hashes[handle] === hash && this.entries.keyEquals(handle, key)) return handle;
    }
    const handle = this.entries.allocate(key, hash);
    this.slots[slot] = handle + 1;
    this.used++;
    if (this.used * 4 > this.slots.length * 3) this.resize(this.slots.length * 2);
    return handle;
  }

  remove(key: Uint8Array): boolean {
    const hash = hashKey(key);
    const slots = this.slots;
    const hashes = this.entries.hashes;
    let slot = hash & this.mask;
    for (; ; slot = (slot + 1) & this.mask) {
      const stored = slots[slot]!;
      if (stored === 0) return false;
      const handle = stored - 1;
      if (hashes[handle] === hash && this.entries.keyEquals(handle, key)) break;
    }
    this.entries.release(slots[slot]! - 1);
    this.used--;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = slot;
    for (let next = (hole + 1) & this.mask; ; next = (next + 1) & this.mask) {
      const stored = slots[next]!;
      if (stored === 0) break;
      const home = hashes[stored - 1]! & this.mask;
      const distanceToNext = (next - home) & this.mask;
      const distanceToHole = (hole - home) & this.mask;
      if (distanceToHole <= distanceToNext) {
        slots[hole] = stored;
        hole = next;
      }
    }
    slots[hole] = 0;
    return true;
  }

  forEachHandle(visit: (handle: number) => void): void {
    const slots = this.slots;
    for (let slot = 0; slot < slots.length; slot++) {
      const stored = slots[slot]!;
      if (stored !== 0) visit(stored - 1);
    }
  }

  private resize(slotCount: number): void {
    const slots = new Int32Array(slotCount);
    const mask = slotCount - 1;
    const hashes = this.entries.hashes;
    for (const stored of this.slots) {
      if (stored === 0) continue;
      let slot = hashes[stored - 1]! & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = stored;
    }
    this.slots = slots;
    this.mask = mask;
  }
}
