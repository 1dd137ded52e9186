/**
 * What the engine and the collections need from an index, implemented by the hash index (Maps) and
 * the ordered index (Trees). An entry is addressed by a handle, a small integer into the shared
 * {@link EntryStore}; every read and write of an entry goes through a method here, never through
 * the store's arrays.
 *
 * The accessors are defined once, on this base class, and each is a load or a store in a typed
 * array: calls from a hot path (get, commit, recovery) inline and allocate nothing.
 */
import { copyBytes } from '../format/bytes.js';
import type { EntryStore } from './entry-store.js';

/** Keys laid out at a stride in a buffer (a decrypted hint chunk): key `i` at `keyOffset + i * keyStride`. */
export interface KeySource {
  readonly keyBytes: Uint8Array;
  readonly keyOffset: number;
  readonly keyStride: number;
  readonly count: number;
}

export abstract class KeyIndex {
  /**
   * The columnar store of entries: src/index's own (the ordered index shares its hash index's, the
   * tree and cursors read its key bytes). Code elsewhere uses the methods below, never its arrays.
   */
  readonly entries: EntryStore;
  /** One key's bytes for {@link findOrInsertAt}'s default. */
  #scratchKey: Uint8Array | undefined;

  protected constructor(entries: EntryStore) {
    this.entries = entries;
  }

  /** Number of entries (live keys, plus tombstones while recovery runs). */
  abstract get size(): number;
  /** Approximate bytes of memory held. */
  abstract get memoryBytes(): number;
  /** Handle of `key`, or -1. */
  abstract find(key: Uint8Array): number;
  /** Handle of `key`, inserting an entry (location unset) if absent. */
  abstract findOrInsert(key: Uint8Array): number;
  /** Removes `key`; returns whether it was present. */
  abstract remove(key: Uint8Array): boolean;
  /** Visits every handle, in no particular order; the callback must not insert or remove. */
  abstract forEachHandle(visit: (handle: number) => void): void;

  /**
   * Makes room for `count` more entries at once (open, before a hint's entries go in); a hint only
   * sizes what the index grows to anyway. Indexes without a cheaper way keep growing on demand.
   */
  reserve(count: number): void {
    this.entries.reserve(this.size + count);
  }

  /**
   * {@link findOrInsert} for the key of `keySize` bytes at `offset` of `bytes`: bulk loads read keys
   * where they lie in a decrypted chunk. This default copies the key into a scratch buffer; an index
   * that can hash and compare in place overrides it.
   */
  findOrInsertAt(bytes: Uint8Array, offset: number): number {
    this.#scratchKey ??= new Uint8Array(this.keySize);
    const scratch = this.#scratchKey;
    for (let index = 0; index < scratch.length; index++) scratch[index] = bytes[offset + index]!;
    return this.findOrInsert(scratch);
  }

  /**
   * {@link findOrInsertAt} for every key of `sources`, in order; returns their handles in the same
   * order. The index may hand out handles in another order than one call per key would, but ends
   * holding the same keys. This default is the loop; the hash index sorts the keys by hash slot first.
   */
  findOrInsertMany(sources: readonly KeySource[]): Int32Array {
    const handles = new Int32Array(sources.reduce((sum, source) => sum + source.count, 0));
    let next = 0;
    for (const { keyBytes, keyOffset, keyStride, count } of sources) {
      for (let index = 0; index < count; index++) handles[next++] = this.findOrInsertAt(keyBytes, keyOffset + index * keyStride);
    }
    return handles;
  }

  /** Bytes of every key. */
  get keySize(): number {
    return this.entries.keySize;
  }

  /** Bytes of every value held inline (Const collections), or 0. */
  get valueSize(): number {
    return this.entries.valueSize;
  }

  /** Whether decoded values are kept per entry (Typed collections). */
  get keepsObjects(): boolean {
    return this.entries.objects !== undefined;
  }

  /** Every handle ever handed out is below this. */
  get handleLimit(): number {
    return this.entries.handleLimit;
  }

  /**
   * Live handles in handle order (which is neither key nor disk order), for walks that may mutate
   * the index meanwhile: a handle freed before the walk reaches it is skipped, and entries allocated
   * after the walk began are not visited.
   */
  *liveHandles(): Generator<number, void, undefined> {
    const entries = this.entries;
    const limit = entries.handleLimit;
    for (let handle = 0; handle < limit; handle++) if (entries.isLive(handle)) yield handle;
  }

  /** Whether `handle` holds a key with its location set. */
  isLive(handle: number): boolean {
    return this.entries.isLive(handle);
  }

  /** A copy of the key of `handle` in a buffer of its own, the caller's to keep. */
  keyOf(handle: number): Uint8Array {
    return copyBytes(this.entries.keyView(handle));
  }

  /** A view of the key of `handle`, valid until the next insert: read it at once, never keep it. */
  keyView(handle: number): Uint8Array {
    return this.entries.keyView(handle);
  }

  /** Id of the data file that holds the record of `handle`. */
  fileIdOf(handle: number): number {
    return this.entries.fileIdOf(handle);
  }

  /** Offset of the record of `handle` in its file's stream. */
  positionOf(handle: number): number {
    return this.entries.positionOf(handle);
  }

  /** Bytes of the value of `handle` (`TOMBSTONE_LENGTH` for a tombstone while recovery runs). */
  valueLengthOf(handle: number): number {
    return this.entries.valueLengthOf(handle);
  }

  /** Sequence number of the record of `handle`; 0 while its location is unset. */
  sequenceOf(handle: number): number {
    return this.entries.sequenceOf(handle);
  }

  /** Orders two handles by where their records lie on disk: file id, then position. */
  compareLocations(left: number, right: number): number {
    return this.entries.compareLocations(left, right);
  }

  /** Points `handle` at a record. */
  setLocation(handle: number, fileId: number, position: number, valueLength: number, sequence: number): void {
    this.entries.setLocation(handle, fileId, position, valueLength, sequence);
  }

  /** Points `handle` at a copy of its record elsewhere (compaction); length and sequence stay. */
  relocate(handle: number, fileId: number, position: number): void {
    this.entries.relocate(handle, fileId, position);
  }

  /** A copy of the value held inline for `handle` (Const collections). */
  inlineValueOf(handle: number): Uint8Array {
    return this.entries.valueCopy(handle);
  }

  /** Holds `value` inline for `handle` (Const collections). */
  setInlineValue(handle: number, value: Uint8Array): void {
    this.entries.setValue(handle, value);
  }

  /** The decoded value kept for `handle` (Typed collections only), or undefined if not decoded yet. */
  objectOf(handle: number): unknown {
    return this.entries.objectOf(handle);
  }

  /** Keeps the decoded value of `handle` (Typed collections only); undefined forgets it. */
  setObject(handle: number, value: unknown): void {
    this.entries.setObject(handle, value);
  }
}
