/**
 * Columnar storage of index entries in typed arrays: one key slot and one packed disk location per
 * live key, 20 bytes beside the key itself instead of ~200 for a JS Map keyed by strings.
 * Entry handles are small integers, reused after removal.
 *
 * A location is one record of four 32-bit words, `locations[4 * handle ..]`: file id, position,
 * value length, and the low 32 bits of the sequence (its high bits, at most 21 of them, in
 * `sequenceHighs`). A get reads the first three words, which lie in one 16-byte record and so in one
 * cache line, where three arrays of their own cost three dependent-looking memory misses (docs/benchmarks.md,
 * issue 16, the index's share of a hot get).
 *
 * Code outside src/index reaches entries through {@link KeyIndex} methods, never these arrays: a
 * grown store replaces them, and the layout stays the index's own business.
 */
import { assert } from '../assert.js';
import { copyOut } from '../format/bytes.js';

/** Words of one location record: file id, position, value length, sequence's low 32 bits. */
export const LOCATION_WORDS = 4;
/** Word offsets inside a location record. */
export const FILE_ID_WORD = 0;
export const POSITION_WORD = 1;
export const VALUE_LENGTH_WORD = 2;
export const SEQUENCE_LOW_WORD = 3;
const TWO_TO_32 = 2 ** 32;

/** Marks a tombstone entry (used only while recovery replays the log). */
export const TOMBSTONE_LENGTH = 0xffffffff;

/**
 * The position of a released handle: odd, so no record is there (records start 4- or 8-aligned, docs/format.md
 * §4.1). It tells a released handle from an allocated one whose location is not set yet.
 */
const RELEASED_POSITION = 1;

export class EntryStore {
  readonly keySize: number;
  /** Bytes of every value held inline (Const collections), or 0. */
  readonly valueSize: number;
  /** Inline values, `valueSize` bytes per handle (Const collections). */
  values: Uint8Array;
  /** Decoded values per handle (Typed collections), or undefined. */
  readonly objects: unknown[] | undefined;
  capacity: number;
  keys: Uint8Array;
  /** {@link LOCATION_WORDS} words per handle: file id, position, value length, sequence's low bits. */
  locations: Uint32Array;
  /** The sequence's bits above the low 32, per handle (a sequence is below 2^53). */
  sequenceHighs: Uint32Array;
  private freeHandles: Int32Array;
  private freeCount = 0;
  private highWater = 0;

  constructor(keySize: number, options: { valueSize?: number; keepsObjects?: boolean } = {}, initialCapacity = 1024) {
    this.keySize = keySize;
    this.valueSize = options.valueSize ?? 0;
    this.values = new Uint8Array(initialCapacity * this.valueSize);
    this.objects = options.keepsObjects === true ? [] : undefined;
    this.capacity = initialCapacity;
    this.keys = new Uint8Array(initialCapacity * keySize);
    this.locations = new Uint32Array(initialCapacity * LOCATION_WORDS);
    this.sequenceHighs = new Uint32Array(initialCapacity);
    this.freeHandles = new Int32Array(16);
  }

  /** Every handle ever handed out is below this; a handle is live when its sequence is not 0. */
  get handleLimit(): number {
    return this.highWater;
  }

  /** Handles in use (live entries). */
  get count(): number {
    return this.highWater - this.freeCount;
  }

  /** Bytes held by the typed arrays (for stats and the memory benchmark). */
  get memoryBytes(): number {
    return (
      this.keys.byteLength +
      this.values.byteLength +
      this.locations.byteLength +
      this.sequenceHighs.byteLength +
      this.freeHandles.byteLength
    );
  }

  allocate(key: Uint8Array): number {
    assert(key.length === this.keySize, 'a key to index has keySize bytes');
    let handle: number;
    if (this.freeCount > 0) handle = this.freeHandles[--this.freeCount]!;
    else {
      if (this.highWater === this.capacity) this.grow();
      handle = this.highWater++;
    }
    this.keys.set(key, handle * this.keySize);
    // Sequence 0 is never written, so it marks an entry whose location is not set yet.
    this.setLocation(handle, 0, 0, 0, 0);
    return handle;
  }

  /** Grows the arrays at once to hold `count` entries (bulk loads at open: one copy instead of many). */
  reserve(count: number): void {
    if (count > this.capacity) this.grow(count);
  }

  /** Whether the key of `handle` equals `keySize` bytes of `bytes` at `offset`. */
  keyEqualsAt(handle: number, bytes: Uint8Array, offset: number): boolean {
    const keys = this.keys;
    const start = handle * this.keySize;
    for (let index = 0; index < this.keySize; index++) if (keys[start + index] !== bytes[offset + index]) return false;
    return true;
  }

  /** Like {@link allocate}, with the key read from `bytes` at `offset` (no view made). */
  allocateAt(bytes: Uint8Array, offset: number): number {
    let handle: number;
    if (this.freeCount > 0) handle = this.freeHandles[--this.freeCount]!;
    else {
      if (this.highWater === this.capacity) this.grow();
      handle = this.highWater++;
    }
    const keys = this.keys;
    const keySize = this.keySize;
    const start = handle * keySize;
    for (let index = 0; index < keySize; index++) keys[start + index] = bytes[offset + index]!;
    this.setLocation(handle, 0, 0, 0, 0);
    return handle;
  }

  /**
   * {@link allocateAt} for `count` keys laid out at `stride` from `offset`, their handles written to
   * `handles` from `at` (a hint's keys at open). Released handles go first, one by one; the rest are
   * fresh handles past the high water, whose keys are copied in one go when they lie back to back. A
   * fresh handle's location needs no write: nothing was ever stored past the high water (the arrays
   * grow zeroed, and {@link release} marks only handles below it), so it reads as unset already.
   */
  allocateManyAt(bytes: Uint8Array, offset: number, stride: number, count: number, handles: Int32Array, at: number): void {
    let index = 0;
    for (; index < count && this.freeCount > 0; index++) handles[at + index] = this.allocateAt(bytes, offset + index * stride);
    const fresh = count - index;
    if (fresh === 0) return;
    if (this.highWater + fresh > this.capacity) this.grow(this.highWater + fresh);
    const first = this.highWater;
    const keySize = this.keySize;
    const keys = this.keys;
    const from = offset + index * stride;
    if (stride === keySize) keys.set(bytes.subarray(from, from + fresh * keySize), first * keySize);
    else {
      for (let key = 0; key < fresh; key++) {
        const source = from + key * stride;
        const target = (first + key) * keySize;
        for (let byte = 0; byte < keySize; byte++) keys[target + byte] = bytes[source + byte]!;
      }
    }
    for (let key = 0; key < fresh; key++) handles[at + index + key] = first + key;
    assert(this.sequenceOf(first) === 0 && this.positionOf(first) === 0, 'a handle past the high water was never written');
    this.highWater += fresh;
  }

  release(handle: number): void {
    assert(handle >= 0 && handle < this.highWater, 'a released handle was handed out');
    if (this.freeCount === this.freeHandles.length) {
      const larger = new Int32Array(this.freeHandles.length * 2);
      larger.set(this.freeHandles);
      this.freeHandles = larger;
    }
    this.freeHandles[this.freeCount++] = handle;
    const record = handle * LOCATION_WORDS;
    this.locations[record + POSITION_WORD] = RELEASED_POSITION;
    this.locations[record + VALUE_LENGTH_WORD] = 0;
    this.locations[record + SEQUENCE_LOW_WORD] = 0;
    this.sequenceHighs[handle] = 0;
    if (this.objects !== undefined) this.objects[handle] = undefined;
  }

  setLocation(handle: number, fileId: number, position: number, valueLength: number, sequence: number): void {
    assert(position !== RELEASED_POSITION, 'a record position is 4- or 8-aligned');
    const locations = this.locations;
    const record = handle * LOCATION_WORDS;
    locations[record + FILE_ID_WORD] = fileId;
    locations[record + POSITION_WORD] = position;
    locations[record + VALUE_LENGTH_WORD] = valueLength;
    // Sequences are integers below 2^53 (docs/format.md): the low word by truncation, the rest above.
    locations[record + SEQUENCE_LOW_WORD] = sequence >>> 0;
    this.sequenceHighs[handle] = Math.floor(sequence / TWO_TO_32);
  }

  /** Id of the data file that holds the record of `handle`. */
  fileIdOf(handle: number): number {
    return this.locations[handle * LOCATION_WORDS + FILE_ID_WORD]!;
  }

  /** Offset of the record of `handle` in its file's stream. */
  positionOf(handle: number): number {
    return this.locations[handle * LOCATION_WORDS + POSITION_WORD]!;
  }

  /** Bytes of the value of `handle`. */
  valueLengthOf(handle: number): number {
    return this.locations[handle * LOCATION_WORDS + VALUE_LENGTH_WORD]!;
  }

  /** Sequence number of the record of `handle`; 0 while its location is unset or once released. */
  sequenceOf(handle: number): number {
    return this.sequenceHighs[handle]! * TWO_TO_32 + this.locations[handle * LOCATION_WORDS + SEQUENCE_LOW_WORD]!;
  }

  /** Whether `handle` is handed out (below {@link handleLimit} and not released), its location set or not. */
  isAllocated(handle: number): boolean {
    return this.locations[handle * LOCATION_WORDS + POSITION_WORD] !== RELEASED_POSITION;
  }

  /** Whether `handle` holds a key whose location is set (sequence 0 is never written). */
  isLive(handle: number): boolean {
    return this.locations[handle * LOCATION_WORDS + SEQUENCE_LOW_WORD] !== 0 || this.sequenceHighs[handle] !== 0;
  }

  /** Moves the record of `handle` to another place on disk; its length and sequence stay (compaction). */
  relocate(handle: number, fileId: number, position: number): void {
    const record = handle * LOCATION_WORDS;
    this.locations[record + FILE_ID_WORD] = fileId;
    this.locations[record + POSITION_WORD] = position;
  }

  /** Orders two handles by where their records lie on disk: file id, then position. */
  compareLocations(left: number, right: number): number {
    return this.fileIdOf(left) - this.fileIdOf(right) || this.positionOf(left) - this.positionOf(right);
  }

  /** The decoded value kept for `handle` (Typed collections), or undefined when not decoded yet. */
  objectOf(handle: number): unknown {
    return this.objects![handle];
  }

  /** Keeps the decoded value of `handle` (Typed collections); undefined forgets it. */
  setObject(handle: number, value: unknown): void {
    this.objects![handle] = value;
  }

  /** A view of the key of `handle` (valid until the store grows; copy before keeping it). */
  keyView(handle: number): Uint8Array {
    const start = handle * this.keySize;
    return this.keys.subarray(start, start + this.keySize);
  }

  /** Stores a value inline (Const collections). */
  setValue(handle: number, value: Uint8Array): void {
    assert(value.length === this.valueSize, 'an inline value has valueSize bytes');
    this.values.set(value, handle * this.valueSize);
  }

  /** A copy of the inline value of `handle`. */
  valueCopy(handle: number): Uint8Array {
    const start = handle * this.valueSize;
    return copyOut(this.values.subarray(start, start + this.valueSize));
  }

  keyEquals(handle: number, key: Uint8Array): boolean {
    const keys = this.keys;
    const start = handle * this.keySize;
    for (let index = 0; index < key.length; index++) if (keys[start + index] !== key[index]) return false;
    return true;
  }

  private grow(atLeast = 0): void {
    const capacity = Math.max(atLeast, Math.ceil(this.capacity * 1.5) + 16);
    const keys = new Uint8Array(capacity * this.keySize);
    keys.set(this.keys);
    this.keys = keys;
    if (this.valueSize > 0) {
      const values = new Uint8Array(capacity * this.valueSize);
      values.set(this.values);
      this.values = values;
    }
    this.locations = growU32(this.locations, capacity * LOCATION_WORDS);
    this.sequenceHighs = growU32(this.sequenceHighs, capacity);
    this.capacity = capacity;
  }
}

function growU32(array: Uint32Array, capacity: number): Uint32Array {
  const larger = new Uint32Array(capacity);
  larger.set(array);
  return larger;
}
