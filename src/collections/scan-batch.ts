/**
 * The batched cursor behind the Tree collections' ordered iteration (`range`, `keys`, `values`,
 * `prefix`) and armdb/level's iterators. A step of a plain cursor costs an index walk, a key copy and
 * a value read of its own; a batch takes up to {@link MAX_BATCH_ENTRIES} handles from the ordered
 * index in one walk (src/index/cursor.ts `nextHandles`), copies their keys into one fresh buffer and
 * reads their values in one pass of the engine (`Engine.readHandles`: one slab, each page looked up
 * once per run of values in it).
 *
 * Reading ahead must not change what an iteration yields (SPEC §3: every key present for the whole
 * iteration exactly once, in order; a value as it is when its entry is reached). So a batch is
 * dropped as soon as anything was written after it was read (the index's version moved: a key was
 * inserted, removed or moved between sources; or the engine's write sequence moved: a value may
 * have changed), and the cursor re-seeks from the last key handed out. Keys and values handed out are
 * ranges of buffers allocated for their batch and never reused: callers may keep and mutate them.
 */
import type { Engine } from '../engine/engine.js';
import { armdbError } from '../errors.js';
import type { Cursor, CursorBounds, OrderedIndex } from '../index/ordered-index.js';

/** Which parts of each entry a scan reads. */
export const ScanParts = { entries: 0, keys: 1, values: 2 } as const;
export type ScanParts = (typeof ScanParts)[keyof typeof ScanParts];

/**
 * The first batch is small, so that a scan that stops early (`limit: 1`, a `break` after the first
 * entry) reads little ahead; each refill doubles it up to {@link MAX_BATCH_ENTRIES}.
 */
const FIRST_BATCH_ENTRIES = 16;
/** Entries read ahead at most: bounds the work done for a scan that stops, and the memory held. */
export const MAX_BATCH_ENTRIES = 256;

const EMPTY_BYTES = new Uint8Array(0);

/** Reads the values of a batch's handles: the collection's, so that typed collections decode their own way. */
export type BatchValueReader<V> = (handles: Int32Array, count: number, values: V[]) => void;

/** Up to {@link MAX_BATCH_ENTRIES} entries of an ordered scan, read ahead; see the module comment. */
export class ScanBatch<V> {
  /** Handles of the batch, in scan order. */
  readonly handles = new Int32Array(MAX_BATCH_ENTRIES);
  /** Keys of the batch (when the scan reads keys): ranges of one fresh buffer, the caller's to keep. */
  readonly keys: Uint8Array[] = [];
  /** Values of the batch (when the scan reads values), the caller's to keep. */
  readonly values: V[] = [];
  readonly #ordered: OrderedIndex;
  readonly #engine: Engine;
  readonly #readValues: BatchValueReader<V>;
  readonly #parts: ScanParts;
  readonly #cursor: Cursor;
  /** The batch's keys, `keySize` bytes each in scan order: where the cursor re-seeks from. */
  #keyBytes: Uint8Array = EMPTY_BYTES;
  #count = 0;
  #position = 0;
  #size = FIRST_BATCH_ENTRIES;
  #remaining: number;
  #indexVersion = -1;
  #writeSequence = -1;
  #ended = false;
  /** A value of the batch that failed to read: the batch ends before it, and the error is thrown there. */
  #failure: { error: unknown; position: number } | undefined;

  constructor(
    ordered: OrderedIndex,
    engine: Engine,
    readValues: BatchValueReader<V>,
    bounds: CursorBounds,
    limit: number,
    parts: ScanParts,
  ) {
    this.#ordered = ordered;
    this.#engine = engine;
    this.#readValues = readValues;
    this.#parts = parts;
    this.#cursor = ordered.cursor(bounds);
    this.#remaining = limit;
  }

  /**
   * Moves to the next entry and returns its position in {@link keys}/{@link values}, or -1 at the
   * end. Positions are valid until the next call.
   */
  advance(): number {
    // A follower's collection reaches its engine through a slot that swaps in a newly opened engine
    // (src/replication/engine-slot.ts): the cursor's handles are the old index's and mean other keys in
    // the new one, so the scan ends here rather than read them there.
    if (this.#engine.ordered !== this.#ordered && !this.#ended) {
      this.close();
      throw armdbError('ARMDB_CLOSED', 'the engine was replaced during iteration (a replica reopened): iterate again');
    }
    if (this.#position === this.#count && this.#failure !== undefined) {
      // The value at this position failed to read (ARMDB_INTEGRITY, …): throw it here, where a
      // step-by-step scan would have, and go on after its key at the next call.
      const failure = this.#failure;
      this.#failure = undefined;
      this.#ordered.rewindCursor(this.#cursor, this.#keyBytes, failure.position * this.#engine.keySize);
      this.#count = 0;
      this.#position = 0;
      throw failure.error;
    }
    if (this.#position < this.#count) {
      if (this.#ordered.version === this.#indexVersion && this.#engine.writeSequence === this.#writeSequence) {
        this.#remaining--;
        return this.#position++;
      }
      // Written since the batch was read: drop the rest; the cursor goes on after the last key handed out.
      const keySize = this.#engine.keySize;
      this.#ordered.rewindCursor(this.#cursor, this.#keyBytes, (this.#position - 1) * keySize);
      this.#count = 0;
      this.#position = 0;
    }
    if (this.#ended || this.#remaining <= 0) return -1;
    const count = this.#fill(Math.min(this.#size, this.#remaining));
    if (count === 0 && this.#failure !== undefined) return this.advance();
    if (count === 0) {
      this.close();
      return -1;
    }
    this.#size = Math.min(this.#size * 2, MAX_BATCH_ENTRIES);
    this.#count = count;
    this.#position = 1;
    this.#remaining--;
    return 0;
  }

  /** Ends the scan: releases the cursor and what the batch holds; later {@link advance} calls return -1. */
  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#count = 0;
    this.#position = 0;
    this.keys.length = 0;
    this.values.length = 0;
    this.#ordered.closeCursor(this.#cursor);
  }

  #fill(max: number): number {
    const handles = this.handles;
    const keySize = this.#engine.keySize;
    // One fresh buffer per batch: every key a range of it, never overwritten.
    const keyBytes = new Uint8Array(max * keySize);
    const count = this.#ordered.nextHandles(this.#cursor, handles, keyBytes, max);
    if (count === 0) return 0;
    this.#indexVersion = this.#ordered.version;
    this.#writeSequence = this.#engine.writeSequence;
    this.#keyBytes = keyBytes;
    if (this.#parts !== ScanParts.values) {
      const keys = this.keys;
      const buffer = keyBytes.buffer;
      for (let position = 0; position < count; position++) keys[position] = new Uint8Array(buffer, position * keySize, keySize);
    }
    if (this.#parts === ScanParts.keys) return count;
    try {
      this.#readValues(handles, count, this.values);
      return count;
    } catch {
      // Read one by one to find the first value that fails; the batch ends before it.
      const single = this.values.slice(0, 1);
      for (let position = 0; position < count; position++) {
        try {
          this.#readValues(handles.subarray(position, position + 1), 1, single);
          this.values[position] = single[0]!;
        } catch (error) {
          this.#failure = { error, position };
          return position;
        }
      }
      return count;
    }
  }
}
