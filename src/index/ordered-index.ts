/**
 * The ordered index of the Tree collections: the hash index for point lookups (so a Tree `get` costs
 * what a Map `get` costs) plus, for order, seeks and cursors, a B+ tree over entry handles
 * (src/index/handle-tree.ts) and sorted runs of keys (src/index/key-run.ts).
 *
 * An insert costs what a hash-index insert costs: the new handle goes to an unsorted tail, and only
 * every {@link DeltaLimits.runKeys} inserts is that tail sorted (radix sort, src/index/key-order.ts)
 * into a run. Nothing else happens until something asks for order. From then on runs of similar
 * size are merged pairwise (as in a log-structured merge), at most {@link DeltaLimits.sliceKeys}
 * slots a step and one step per turn of the event loop, so that the runs stay few; a tail of at most
 * {@link DeltaLimits.treeInsertKeys} keys (the puts between two reads) goes straight into the tree.
 * Reads are exact all along: a cursor walks the tree and every run together (src/index/cursor.ts),
 * and the tail is placed before it starts, so a range sees every key inserted before it.
 */
import { assert } from '../assert.js';
import { type Cursor, type CursorBounds, closeCursor, newCursor, nextHandle, nextHandles, rewindCursor } from './cursor.js';
import { HandleTree, LEAF_CAPACITY } from './handle-tree.js';
import { HashIndex } from './hash-index.js';
import { sortHandlesByKey } from './key-order.js';
import { KeyIndex, type KeySource } from './key-index.js';
import { isRunMergeDone, type KeyRun, mergeRunsStep, removeFromRun, type RunMerge, sealRun, startRunMerge } from './key-run.js';

export type { Cursor, CursorBounds } from './cursor.js';

/** How the delta of new keys is cut and merged: every bound is a count of keys, so of work. */
export interface DeltaLimits {
  /** New keys per sorted run: the tail is sorted when it reaches this many (bounds that sort). */
  readonly runKeys: number;
  /** Slots one merge step moves from two runs into their merged run (bounds the step). */
  readonly sliceKeys: number;
  /** A tail of at most this many keys goes into the B+ tree when order is asked for, a longer one becomes a run. */
  readonly treeInsertKeys: number;
  /** Whether merge steps run by themselves on later turns of the event loop (tests step by hand). */
  readonly background: boolean;
}

/**
 * A sort of 65,536 keys takes a few milliseconds, a merge step over 16,384 slots or 1,024 tree
 * inserts about one: every step stays far below the 50 ms an event-loop pause may take. Starting a
 * merge (allocating its output, up to a few tens of megabytes for millions of keys) is a step of its own.
 */
export const DEFAULT_DELTA_LIMITS: DeltaLimits = Object.freeze({
  runKeys: 65_536,
  sliceKeys: 16_384,
  treeInsertKeys: 1_024,
  background: true,
});

/** Above this many runs, the two smallest merge whatever their sizes. */
const MAX_RUNS = 16;

let limitsForNewIndexes: DeltaLimits = DEFAULT_DELTA_LIMITS;

/**
 * Test hook: the delta limits of indexes created from now on (undefined restores the defaults), so
 * that the collection-level tests exercise runs and merge steps with a handful of keys.
 */
export function setDeltaLimitsForTesting(limits: Partial<DeltaLimits> | undefined): void {
  limitsForNewIndexes = { ...DEFAULT_DELTA_LIMITS, ...limits };
}

/** Where a handle is held: in the tree, in the tail (negative: -(slot + 1)) or in the run with that serial. */
const IN_TREE = 0;

export class OrderedIndex extends KeyIndex {
  readonly #hash: HashIndex;
  readonly #tree: HandleTree;
  readonly #limits: DeltaLimits;
  /** Grows with every change of the keys or of where they are held; cursors re-seek when it moved. */
  version = 0;
  /** Per handle: {@link IN_TREE}, -(tail slot + 1), or the serial of its run. */
  #where = new Int32Array(1024);
  /** New handles in insertion order, not sorted yet. */
  #tail: Int32Array;
  #tailCount = 0;
  /** Sorted runs that readers see (a merge's output joins them when it completes). */
  #runs: KeyRun[] = [];
  #merge: RunMerge | undefined;
  #nextSerial = 1;
  /** Keys in the tree. */
  #treeSize = 0;
  /** Set once anything asked for order, or a reopened index asked for merging: from then on runs are merged. */
  #orderWanted = false;
  #mergeScheduled = false;
  #stopped = false;

  constructor(keySize: number, options: { valueSize?: number; keepsObjects?: boolean; delta?: Partial<DeltaLimits> } = {}) {
    const hash = new HashIndex(keySize, options);
    super(hash.entries);
    this.#hash = hash;
    this.#tree = new HandleTree(hash.entries);
    this.#limits = { ...limitsForNewIndexes, ...options.delta };
    assert(this.#limits.runKeys >= 1 && this.#limits.sliceKeys >= 1 && this.#limits.treeInsertKeys >= 0, 'delta limits are positive');
    this.#tail = new Int32Array(Math.min(this.#limits.runKeys, 1024));
  }

  override get size(): number {
    return this.#hash.size;
  }

  override get memoryBytes(): number {
    // Leaves: handles and key prefixes plus ~80 bytes of object; inner nodes are few (1 per 64 leaves).
    const leaves = Math.ceil(this.#treeSize / (LEAF_CAPACITY * 0.7)) + 1;
    let deltaBytes = this.#tail.byteLength + this.#where.byteLength;
    const runs = this.#merge === undefined ? this.#runs : [...this.#runs, this.#merge.output];
    for (const run of runs) deltaBytes += run.handles.byteLength + run.keys.byteLength;
    return this.#hash.memoryBytes + leaves * (LEAF_CAPACITY * 8 + 80) + deltaBytes;
  }

  /** How the delta is held right now: unsorted keys in the tail, sorted runs, whether a merge is under way. */
  get deltaShape(): { tailKeys: number; runs: number; merging: boolean } {
    return { tailKeys: this.#tailCount, runs: this.#runs.length, merging: this.#merge !== undefined };
  }

  override find(key: Uint8Array): number {
    return this.#hash.find(key);
  }

  override findOrInsert(key: Uint8Array): number {
    const sizeBefore = this.#hash.size;
    const handle = this.#hash.findOrInsert(key);
    if (this.#hash.size !== sizeBefore) {
      this.#appendToTail(handle);
      this.version++;
    }
    return handle;
  }

  /**
   * Open's bulk path (src/engine/replay.ts): the hash index places a hint's keys in bulk and names
   * the handles it added, which join the tail together. Unlike one insert at a time, this tail is not
   * cut into runs of `runKeys`: recovery fills the index before anything can read it, and the
   * collection asks for order as soon as it opens ({@link mergeInBackground}). Then the keys of every
   * hint are sorted once and, in an index that holds nothing else yet, become the B+ tree in one
   * bulk build: where merging runs would end, without merging. The pause is open's, not a put's.
   */
  override findOrInsertMany(sources: readonly KeySource[]): Int32Array {
    const { handles, added } = this.#hash.insertMany(sources);
    if (added.length > 0) {
      this.#appendManyToTail(added);
      this.version++;
    }
    return handles;
  }

  override reserve(count: number): void {
    this.#hash.reserve(count);
  }

  override remove(key: Uint8Array): boolean {
    const handle = this.#hash.find(key);
    if (handle < 0) return false;
    const where = this.#where[handle]!;
    if (where === IN_TREE) {
      this.#tree.remove(key, handle);
      this.#treeSize--;
    } else if (where < 0) this.#removeFromTail(-where - 1);
    else this.#removeFromRuns(where, key, handle);
    this.#where[handle] = IN_TREE;
    this.#hash.remove(key);
    this.version++;
    return true;
  }

  /**
   * Visits every handle; the callback must not insert or remove. In hash order, not key order: the
   * engine's walks (recovery, warmup) need every entry, not order, and so never wait for a merge.
   */
  override forEachHandle(visit: (handle: number) => void): void {
    this.#hash.forEachHandle(visit);
  }

  // ---- the delta ---------------------------------------------------------------------------------

  #appendToTail(handle: number): void {
    this.#makeRoom(handle, 1);
    this.#tail[this.#tailCount] = handle;
    this.#where[handle] = -(this.#tailCount + 1);
    this.#tailCount++;
    if (this.#tailCount >= this.#limits.runKeys) this.#sealTail();
  }

  /** Appends handles a bulk insert added, past `runKeys` if need be (see {@link findOrInsertMany}). */
  #appendManyToTail(handles: Int32Array): void {
    let largest = 0;
    for (let index = 0; index < handles.length; index++) largest = Math.max(largest, handles[index]!);
    this.#makeRoom(largest, handles.length);
    const tail = this.#tail;
    const where = this.#where;
    let slot = this.#tailCount;
    for (let index = 0; index < handles.length; index++) {
      const handle = handles[index]!;
      tail[slot] = handle;
      where[handle] = -++slot;
    }
    this.#tailCount = slot;
  }

  /** Grows the per-handle map to hold `handle` and the tail to take `count` more. */
  #makeRoom(handle: number, count: number): void {
    if (handle >= this.#where.length) {
      // Grows with the entry store (1.5×), so its slack is the store's, not a doubling's.
      const larger = new Int32Array(Math.max(handle + 1, this.entries.capacity));
      larger.set(this.#where);
      this.#where = larger;
    }
    const needed = this.#tailCount + count;
    if (needed > this.#tail.length) {
      // One at a time the tail doubles up to `runKeys`; a bulk insert sizes it at once.
      const larger = new Int32Array(Math.max(needed, Math.min(this.#tail.length * 2, this.#limits.runKeys)));
      larger.set(this.#tail.subarray(0, this.#tailCount));
      this.#tail = larger;
    }
  }

  #removeFromTail(slot: number): void {
    const last = this.#tail[--this.#tailCount]!;
    this.#tail[slot] = last;
    this.#where[last] = -(slot + 1);
  }

  /** A handle copied into a merge's output is still in one of its inputs, which readers see: both lose it. */
  #removeFromRuns(serial: number, key: Uint8Array, handle: number): void {
    const merge = this.#merge;
    if (merge !== undefined && serial === merge.output.serial) {
      assert(removeFromRun(merge.output, key, handle), 'a merged handle is in the merge output');
      assert(removeFromRun(merge.left, key, handle) || removeFromRun(merge.right, key, handle), 'a merged handle is still in an input');
      return;
    }
    const position = this.#runs.findIndex((run) => run.serial === serial);
    assert(position >= 0, 'a handle in the delta names a run that exists');
    const run = this.#runs[position]!;
    assert(removeFromRun(run, key, handle), 'a delta run is in step with the hash index');
    if (run.live === 0 && run !== merge?.left && run !== merge?.right) this.#runs.splice(position, 1);
  }

  /**
   * Sorts the tail into a run: at most `runKeys` keys, a bounded step, unless a bulk insert at open
   * filled it (see {@link findOrInsertMany}). Such a tail, in an index with nothing in the tree or in
   * runs, becomes the tree.
   */
  #sealTail(): void {
    if (this.#tailCount === 0) return;
    if (this.#tailCount > this.#limits.runKeys && this.#treeSize === 0 && this.#runs.length === 0 && this.#merge === undefined) {
      this.#loadTailIntoTree();
      return;
    }
    const sorted = this.#tail.slice(0, this.#tailCount);
    sortHandlesByKey(sorted, this.entries.keys, this.entries.keySize);
    const run = sealRun(this.#nextSerial++, sorted, this.entries);
    for (let slot = 0; slot < sorted.length; slot++) this.#where[sorted[slot]!] = run.serial;
    this.#runs.push(run);
    this.#tailCount = 0;
    this.#shrinkTail();
    this.version++;
    this.#scheduleMerge();
  }

  /** Builds the (empty) tree from the whole tail: one sort, and the leaves take the sort's key prefixes. */
  #loadTailIntoTree(): void {
    const count = this.#tailCount;
    // Sorted where it lies: the tail is longer than a run here, so #shrinkTail replaces it below.
    const sorted = this.#tail.subarray(0, count);
    const prefixes = sortHandlesByKey(sorted, this.entries.keys, this.entries.keySize);
    this.#tree.load(sorted, prefixes);
    // Every handle is in the tail (nothing is in the tree or in runs), so every live one goes to the
    // tree: one sequential fill of the map; a released handle's entry is set again when it is reused.
    this.#where.fill(IN_TREE, 0, this.entries.handleLimit);
    this.#treeSize = count;
    this.#tailCount = 0;
    this.#shrinkTail();
    this.version++;
  }

  /** A tail a bulk insert grew past `runKeys` goes back to the size inserts one at a time need. */
  #shrinkTail(): void {
    if (this.#tail.length > this.#limits.runKeys) this.#tail = new Int32Array(this.#limits.runKeys);
  }

  /** Inserts the tail (at most `treeInsertKeys` keys) into the tree. */
  #insertTailIntoTree(): void {
    const sorted = this.#tail.slice(0, this.#tailCount);
    sortHandlesByKey(sorted, this.entries.keys, this.entries.keySize);
    for (let slot = 0; slot < sorted.length; slot++) {
      const handle = sorted[slot]!;
      this.#tree.insert(this.entries.keyView(handle), handle);
      this.#where[handle] = IN_TREE;
    }
    this.#treeSize += sorted.length;
    this.#tailCount = 0;
    this.version++;
  }

  /** Called by every ordered read: places the tail, and from now on runs are merged. */
  #wantOrder(): void {
    if (this.#tailCount > 0) {
      if (this.#tailCount <= this.#limits.treeInsertKeys) this.#insertTailIntoTree();
      else this.#sealTail();
    }
    if (!this.#orderWanted) {
      this.#orderWanted = true;
      this.#scheduleMerge();
    }
  }

  /** The next two runs to merge, or undefined: the two smallest when of similar size, or a run that is mostly holes. */
  #nextMergePair(): [KeyRun, KeyRun | undefined] | undefined {
    const runs = this.#runs;
    for (const run of runs) if (run.live * 2 < run.count) return [run, undefined];
    if (runs.length < 2) return undefined;
    let smallest = runs[0]!;
    let second = runs[1]!;
    if (second.live < smallest.live) [smallest, second] = [second, smallest];
    for (let index = 2; index < runs.length; index++) {
      const run = runs[index]!;
      if (run.live < smallest.live) [smallest, second] = [run, smallest];
      else if (run.live < second.live) second = run;
    }
    return runs.length > MAX_RUNS || smallest.live * 4 >= second.live ? [smallest, second] : undefined;
  }

  #scheduleMerge(): void {
    if (!this.#orderWanted || this.#mergeScheduled || this.#stopped || !this.#limits.background) return;
    if (this.#merge === undefined && this.#nextMergePair() === undefined) return;
    this.#mergeScheduled = true;
    // Unreferenced: a pending merge step never keeps the process alive.
    setImmediate(() => {
      this.#mergeScheduled = false;
      if (this.#stopped) return;
      this.mergeStep();
      this.#scheduleMerge();
    }).unref();
  }

  /**
   * One bounded step of merging runs: moves at most `sliceKeys` slots from two runs into their
   * merged run, starting a merge if none is under way. Returns the slots it moved (0: nothing to
   * merge), the bound the tests check.
   */
  mergeStep(): number {
    if (this.#merge === undefined) {
      const pair = this.#nextMergePair();
      if (pair === undefined) return 0;
      const empty: KeyRun = { ...pair[0], handles: new Int32Array(0), count: 0, live: 0 };
      this.#merge = startRunMerge(this.#nextSerial++, pair[0], pair[1] ?? empty);
      return 1;
    }
    const merge = this.#merge;
    const serial = merge.output.serial;
    const where = this.#where;
    const consumed = mergeRunsStep(merge, this.#limits.sliceKeys, (handle) => {
      where[handle] = serial;
    });
    if (isRunMergeDone(merge)) {
      // Readers switch from the inputs to the output in one step, between two of theirs.
      this.#runs = this.#runs.filter((run) => run !== merge.left && run !== merge.right);
      if (merge.output.live > 0) this.#runs.push(merge.output);
      this.#merge = undefined;
      this.version++;
    }
    return Math.max(consumed, 1);
  }

  /** Places the tail and merges runs until no pair is due, step by step (tests, and callers that want no work left). */
  mergeAll(): void {
    this.#wantOrder();
    while (this.mergeStep() > 0);
  }

  /**
   * Starts merging runs in the background without waiting for an ordered read: for an index that
   * recovery filled (a Tree is opened to be read in order; its runs merge while the caller warms
   * up). The tail is sorted into a run first, a bounded step; a tail open's bulk inserts filled
   * becomes the tree instead when nothing else is held (see {@link findOrInsertMany}). An empty index
   * waits as before, so a bulk load into a new store pays for no merge.
   */
  mergeInBackground(): void {
    if (this.#hash.size === 0 || this.#orderWanted) return;
    this.#sealTail();
    this.#orderWanted = true;
    this.#scheduleMerge();
  }

  /** Ends background merging for good (the collection closed); reads still work. */
  stopMerging(): void {
    this.#stopped = true;
  }

  // ---- ordered reads -----------------------------------------------------------------------------

  /** Handle of the smallest key, or -1. */
  firstHandle(): number {
    return this.#edgeHandle(false);
  }

  /** Handle of the largest key, or -1. */
  lastHandle(): number {
    return this.#edgeHandle(true);
  }

  #edgeHandle(reverse: boolean): number {
    const cursor = this.cursor({ reverse });
    return this.nextHandle(cursor);
  }

  /** A cursor over the handles in key order within `bounds`; step it with {@link nextHandle}. */
  cursor(bounds: CursorBounds): Cursor {
    return newCursor(bounds, this.entries.keySize);
  }

  /**
   * The next handle of `cursor`, or -1 at the end. Robust to mutation between steps (see
   * src/index/cursor.ts); allocates nothing on a plain step.
   */
  nextHandle(cursor: Cursor): number {
    if (this.#tailCount > 0 || !this.#orderWanted) this.#wantOrder();
    return nextHandle(cursor, this.#tree, this.#runs, this.version, this.entries);
  }

  /**
   * Up to `max` next handles of `cursor` into `handles` (from index 0) and their keys into `keys`
   * (`keySize` bytes each), as many {@link nextHandle} calls would give them; returns how many
   * (fewer than `max` only at the end).
   */
  nextHandles(cursor: Cursor, handles: Int32Array, keys: Uint8Array, max: number): number {
    if (this.#tailCount > 0 || !this.#orderWanted) this.#wantOrder();
    return nextHandles(cursor, this.#tree, this.#runs, this.version, this.entries, handles, keys, max);
  }

  /** Makes `cursor` continue after the key at `offset` of `bytes` (one it yielded): see src/index/cursor.ts. */
  rewindCursor(cursor: Cursor, bytes: Uint8Array, offset: number): void {
    rewindCursor(cursor, bytes, offset);
  }

  /** A copy of the key `cursor` last yielded, the caller's to keep. */
  keyAt(cursor: Cursor): Uint8Array {
    return cursor.lastKey.slice();
  }

  /** Ends `cursor`: every later {@link nextHandle} returns -1. */
  closeCursor(cursor: Cursor): void {
    closeCursor(cursor);
  }

  /** Handles in key order within bounds, robust to mutation between steps (see {@link nextHandle}). */
  *handles(bounds: CursorBounds): Generator<number, void, undefined> {
    const cursor = this.cursor(bounds);
    for (let handle = this.nextHandle(cursor); handle >= 0; handle = this.nextHandle(cursor)) yield handle;
  }
}
