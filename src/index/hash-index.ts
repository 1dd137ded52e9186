/**
 * Open-addressing hash index with linear probing and backward-shift deletion over an Int32Array of
 * slots (handle + 1; 0 = empty), load factor at most 0.75. The key hash is seeded per process so
 * that chosen keys cannot force collisions (hash flooding).
 */
import { randomBytes } from 'node:crypto';
import { assert } from '../assert.js';
import { EntryStore } from './entry-store.js';
import { KeyIndex } from './key-index.js';

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

/**
 * Slots are pairs in one Int32Array: [handle + 1 (0 = empty), hash]. Keeping the hash beside the
 * handle means a probe touches one cache line for the slot and one for the key, not three.
 */
export class HashIndex extends KeyIndex {
  private slots: Int32Array;
  private mask: number;
  private used = 0;

  constructor(keySize: number, options: { valueSize?: number; keepsObjects?: boolean } = {}) {
    super(new EntryStore(keySize, options));
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
    const hash = hashKey(key) | 0;
    const slots = this.slots;
    const mask = this.mask;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const stored = slots[2 * slot]!;
      if (stored === 0) return -1;
      if (slots[2 * slot + 1] === hash && this.entries.keyEquals(stored - 1, key)) return stored - 1;
    }
  }

  override findOrInsert(key: Uint8Array): number {
    const hash = hashKey(key) | 0;
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

  override remove(key: Uint8Array): boolean {
    const hash = hashKey(key) | 0;
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

  override forEachHandle(visit: (handle: number) => void): void {
    const slots = this.slots;
    for (let slot = 0; slot < slots.length; slot += 2) {
      const stored = slots[slot]!;
      if (stored !== 0) visit(stored - 1);
    }
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
