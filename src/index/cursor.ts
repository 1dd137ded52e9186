/**
 * Cursors of the ordered index. A cursor does not hold a position across mutations: each step
 * re-seeks from the last key it yielded when the index changed since (a version counter), so
 * iterating while mutating yields every key that was present throughout exactly once, in order.
 *
 * The index is the B+ tree plus, while newly inserted keys wait to be merged into it, a few sorted
 * runs (src/index/key-run.ts). With no runs a step walks the leaf chain alone; with runs the cursor
 * keeps one head per source and yields the smallest (the largest in reverse), so a range sees every
 * key whether it is merged yet or not.
 */
import type { EntryStore } from './entry-store.js';
import type { HandleTree, Leaf, Position } from './handle-tree.js';
import { type KeyRun, runLowerBound, runPrefix } from './key-run.js';

/** Bounds of a cursor: `lower`/`upper` are inclusive unless the matching `exclusive` flag is set. */
export interface CursorBounds {
  lower?: Uint8Array | undefined;
  lowerExclusive?: boolean;
  upper?: Uint8Array | undefined;
  upperExclusive?: boolean;
  reverse?: boolean;
}

// A plain object rather than a const enum: const enums do not survive isolated-module compilers.
const CursorState = { unstarted: 0, started: 1, done: 2 } as const;
type CursorState = (typeof CursorState)[keyof typeof CursorState];

/** The source of the last key: the tree, or a run (its index in the runs). */
const TREE_SOURCE = -1;

/** Where an iteration stands (see {@link OrderedIndex.nextHandle}); opaque to callers. */
export interface Cursor {
  readonly lower: Uint8Array | undefined;
  readonly lowerExclusive: boolean;
  readonly upper: Uint8Array | undefined;
  readonly upperExclusive: boolean;
  readonly reverse: boolean;
  /** Position in the tree (undefined when the tree has no more keys for this cursor). */
  leaf: Leaf | undefined;
  slot: number;
  /** With runs: the head slot in each run (past the end, or -1 in reverse, when spent). */
  runSlots: Int32Array;
  /** Which source gave the last key ({@link TREE_SOURCE} or a run index). */
  source: number;
  version: number;
  /** A copy of the key last returned: where to find the place again after a mutation. */
  readonly lastKey: Uint8Array;
  state: CursorState;
}

/** A cursor within `bounds` over keys of `keySize` bytes, not started yet. */
export function newCursor(bounds: CursorBounds, keySize: number): Cursor {
  return {
    lower: bounds.lower,
    lowerExclusive: bounds.lowerExclusive ?? false,
    upper: bounds.upper,
    upperExclusive: bounds.upperExclusive ?? false,
    reverse: bounds.reverse ?? false,
    leaf: undefined,
    slot: 0,
    runSlots: EMPTY_SLOTS,
    source: TREE_SOURCE,
    version: -1,
    lastKey: new Uint8Array(keySize),
    state: CursorState.unstarted,
  };
}

const EMPTY_SLOTS = new Int32Array(0);

/** Ends `cursor`: every later step returns -1. */
export function closeCursor(cursor: Cursor): void {
  cursor.state = CursorState.done;
  cursor.leaf = undefined;
}

/**
 * The next handle of `cursor` over `tree` and `runs` (whose version is `version`), or -1 at the end.
 * When the index changed since the last step, the cursor finds its place again from the last key it
 * returned (kept in the cursor, so a removed or reused handle does not matter); otherwise it steps
 * and allocates nothing.
 */
export function nextHandle(cursor: Cursor, tree: HandleTree, runs: readonly KeyRun[], version: number, entries: EntryStore): number {
  if (cursor.state === CursorState.done) return -1;
  // Runs only change with the version, so a cursor that steps without re-seeking sees the same runs.
  if (runs.length > 0) return nextMerged(cursor, tree, runs, version, entries);
  if (cursor.state === CursorState.unstarted || cursor.version !== version) {
    const { key, strict } = seekKey(cursor);
    seekTree(cursor, tree, key, strict);
    cursor.state = CursorState.started;
    cursor.version = version;
  } else if (cursor.reverse) stepTreeBackward(cursor);
  else stepTreeForward(cursor);
  const leaf = cursor.leaf;
  if (leaf === undefined) return finish(cursor);
  const handle = leaf.handles[cursor.slot]!;
  const keySize = entries.keySize;
  if (isPastBound(cursor, entries.keys, handle * keySize, keySize)) return finish(cursor);
  copyKey(cursor.lastKey, entries.keys, handle * keySize);
  return handle;
}

/**
 * Up to `max` next handles of `cursor`, written to `handles` from index 0, and their keys to `keys`
 * (`keySize` bytes each, from offset 0); returns how many (fewer than `max` only at the end). The same handles, in the same order, as `max` calls of
 * {@link nextHandle}, but a batch walks each leaf with one bound check and copies the last key once:
 * the cursor stands after the last handle written, as if it had been stepped there one by one.
 */
export function nextHandles(
  cursor: Cursor,
  tree: HandleTree,
  runs: readonly KeyRun[],
  version: number,
  entries: EntryStore,
  handles: Int32Array,
  keys: Uint8Array,
  max: number,
): number {
  if (max <= 0 || cursor.state === CursorState.done) return 0;
  const keySize = entries.keySize;
  if (runs.length > 0) {
    // Tree and runs interleave: step the merge, and after a key from a run take the run's next keys
    // directly for as long as they order before every other source's head.
    let count = 0;
    while (count < max) {
      const handle = nextMerged(cursor, tree, runs, version, entries);
      if (handle < 0) break;
      copyKeyTo(keys, count * keySize, cursor.lastKey, 0, keySize);
      handles[count++] = handle;
      if (cursor.source !== TREE_SOURCE && count < max) count = drainRun(cursor, runs, entries, handles, keys, count, max);
    }
    return count;
  }
  const first = nextHandle(cursor, tree, runs, version, entries);
  if (first < 0) return 0;
  handles[0] = first;
  copyKeyTo(keys, 0, cursor.lastKey, 0, keySize);
  let count = 1;
  const entryKeys = entries.keys;
  let leaf = cursor.leaf;
  let slot = cursor.slot;
  while (count < max && leaf !== undefined) {
    // The next slots in this leaf, in the cursor's direction, then the next leaf.
    let take: number;
    let from: number;
    if (cursor.reverse) {
      if (slot === 0) {
        leaf = leaf.previous;
        slot = leaf === undefined ? 0 : leaf.count;
        continue;
      }
      take = Math.min(slot, max - count);
      from = slot - take;
    } else {
      if (slot + 1 >= leaf.count) {
        leaf = leaf.next;
        slot = -1;
        continue;
      }
      take = Math.min(leaf.count - slot - 1, max - count);
      from = slot + 1;
    }
    const leafHandles = leaf.handles;
    // Keys grow along the leaf: if the farthest one taken is within the bound, they all are.
    const farthest = cursor.reverse ? from : from + take - 1;
    if (isPastBound(cursor, entryKeys, leafHandles[farthest]! * keySize, keySize)) {
      let within = 0;
      while (within < take) {
        const at = cursor.reverse ? slot - 1 - within : from + within;
        if (isPastBound(cursor, entryKeys, leafHandles[at]! * keySize, keySize)) break;
        within++;
      }
      take = within;
      if (take === 0) break;
      from = cursor.reverse ? slot - take : from;
      copySlots(leafHandles, from, take, cursor.reverse, handles, count);
      copyHandleKeys(entryKeys, handles, count, take, keys, keySize);
      count += take;
      finish(cursor);
      return count;
    }
    copySlots(leafHandles, from, take, cursor.reverse, handles, count);
    copyHandleKeys(entryKeys, handles, count, take, keys, keySize);
    count += take;
    slot = cursor.reverse ? from : from + take - 1;
  }
  if (leaf === undefined) {
    finish(cursor);
    return count;
  }
  cursor.leaf = leaf;
  cursor.slot = slot;
  copyKeyTo(cursor.lastKey, 0, keys, (count - 1) * keySize, keySize);
  return count;
}

/** Copies `take` handles of a leaf from slot `from` up (or, in reverse, down from the last of them). */
function copySlots(leafHandles: Int32Array, from: number, take: number, reverse: boolean, handles: Int32Array, at: number): void {
  if (!reverse) {
    handles.set(leafHandles.subarray(from, from + take), at);
    return;
  }
  for (let index = 0; index < take; index++) handles[at + index] = leafHandles[from + take - 1 - index]!;
}

/** Copies the keys of `handles[at..at + take)` from the entry store to their places in `keys`. */
function copyHandleKeys(entryKeys: Uint8Array, handles: Int32Array, at: number, take: number, keys: Uint8Array, keySize: number): void {
  for (let position = at; position < at + take; position++)
    copyKeyTo(keys, position * keySize, entryKeys, handles[position]! * keySize, keySize);
}

/**
 * Makes `cursor` continue after the key at `offset` of `bytes` (a key it yielded), as if that were
 * the last key it returned: its next step re-seeks from there. For a caller that read ahead in a
 * batch and must drop the rest of it because the index changed.
 */
export function rewindCursor(cursor: Cursor, bytes: Uint8Array, offset: number): void {
  if (cursor.state === CursorState.unstarted) return;
  copyKey(cursor.lastKey, bytes, offset);
  cursor.state = CursorState.started;
  cursor.version = -1;
  cursor.leaf = undefined;
}

function finish(cursor: Cursor): number {
  cursor.state = CursorState.done;
  cursor.leaf = undefined;
  return -1;
}

/** Where the cursor seeks from: its bound on the first step, just past its last key after a mutation. */
function seekKey(cursor: Cursor): { key: Uint8Array | undefined; strict: boolean } {
  if (cursor.state !== CursorState.unstarted) return { key: cursor.lastKey, strict: true };
  return cursor.reverse ? { key: cursor.upper, strict: cursor.upperExclusive } : { key: cursor.lower, strict: cursor.lowerExclusive };
}

function seekTree(cursor: Cursor, tree: HandleTree, key: Uint8Array | undefined, strict: boolean): void {
  const position: Position | undefined = cursor.reverse ? tree.seekBackward(key, strict) : tree.seekForward(key, strict);
  cursor.leaf = position?.leaf;
  cursor.slot = position?.slot ?? 0;
}

function stepTreeForward(cursor: Cursor): void {
  let leaf = cursor.leaf;
  let slot = cursor.slot + 1;
  while (leaf !== undefined && slot >= leaf.count) {
    leaf = leaf.next;
    slot = 0;
  }
  cursor.leaf = leaf;
  cursor.slot = slot;
}

function stepTreeBackward(cursor: Cursor): void {
  let leaf = cursor.leaf;
  let slot = cursor.slot - 1;
  while (leaf !== undefined && slot < 0) {
    leaf = leaf.previous;
    slot = leaf === undefined ? -1 : leaf.count - 1;
  }
  cursor.leaf = leaf;
  cursor.slot = slot;
}

// ---- tree and runs together -------------------------------------------------------------------

function nextMerged(cursor: Cursor, tree: HandleTree, runs: readonly KeyRun[], version: number, entries: EntryStore): number {
  if (cursor.state === CursorState.unstarted || cursor.version !== version) {
    const { key, strict } = seekKey(cursor);
    seekTree(cursor, tree, key, strict);
    seekRuns(cursor, runs, key, strict);
    cursor.state = CursorState.started;
    cursor.version = version;
  } else if (cursor.source === TREE_SOURCE) {
    if (cursor.reverse) stepTreeBackward(cursor);
    else stepTreeForward(cursor);
  } else {
    const run = runs[cursor.source]!;
    cursor.runSlots[cursor.source] = cursor.reverse
      ? skipHolesBackward(run, cursor.runSlots[cursor.source]! - 1)
      : skipHolesForward(run, cursor.runSlots[cursor.source]! + 1);
  }
  const keySize = entries.keySize;
  const entryKeys = entries.keys;
  const direction = cursor.reverse ? -1 : 1;
  let bestSource = -2;
  let bestBytes: Uint8Array = entryKeys;
  let bestOffset = 0;
  let bestPrefix = 0;
  let bestHandle = -1;
  const leaf = cursor.leaf;
  if (leaf !== undefined) {
    bestSource = TREE_SOURCE;
    bestHandle = leaf.handles[cursor.slot]!;
    bestOffset = bestHandle * keySize;
    bestPrefix = leaf.prefixes[cursor.slot]!;
  }
  const runSlots = cursor.runSlots;
  for (let index = 0; index < runs.length; index++) {
    const run = runs[index]!;
    const slot = runSlots[index]!;
    if (slot < 0 || slot >= run.count) continue;
    const prefix = runPrefix(run, slot);
    if (bestSource !== -2) {
      let comparison = prefix - bestPrefix;
      if (comparison === 0) comparison = compareAt(run.keys, slot * keySize, bestBytes, bestOffset, keySize);
      if (comparison * direction >= 0) continue;
    }
    bestSource = index;
    bestBytes = run.keys;
    bestOffset = slot * keySize;
    bestPrefix = prefix;
    bestHandle = run.handles[slot]!;
  }
  if (bestSource === -2 || isPastBound(cursor, bestBytes, bestOffset, keySize)) return finish(cursor);
  cursor.source = bestSource;
  copyKey(cursor.lastKey, bestBytes, bestOffset);
  return bestHandle;
}

/**
 * After {@link nextMerged} gave a key of run `cursor.source`: appends that run's next handles to
 * `handles` while each orders before the head of every other source (the tree's and the other runs')
 * and lies within the bound, and leaves the cursor on the last one taken. Returns the new count.
 */
function drainRun(
  cursor: Cursor,
  runs: readonly KeyRun[],
  entries: EntryStore,
  handles: Int32Array,
  keys: Uint8Array,
  count: number,
  max: number,
): number {
  const source = cursor.source;
  const run = runs[source]!;
  const keySize = entries.keySize;
  const reverse = cursor.reverse;
  const direction = reverse ? -1 : 1;
  // The nearest head among the other sources: the run's keys may be taken up to it, not past it.
  let limitBytes: Uint8Array | undefined;
  let limitOffset = 0;
  const leaf = cursor.leaf;
  if (leaf !== undefined) {
    limitBytes = entries.keys;
    limitOffset = leaf.handles[cursor.slot]! * keySize;
  }
  const runSlots = cursor.runSlots;
  for (let index = 0; index < runs.length; index++) {
    if (index === source) continue;
    const other = runs[index]!;
    const slot = runSlots[index]!;
    if (slot < 0 || slot >= other.count) continue;
    if (limitBytes === undefined || compareAt(other.keys, slot * keySize, limitBytes, limitOffset, keySize) * direction < 0) {
      limitBytes = other.keys;
      limitOffset = slot * keySize;
    }
  }
  const runKeys = run.keys;
  const runHandles = run.handles;
  let slot = runSlots[source]!;
  let taken = slot;
  while (count < max) {
    slot = reverse ? skipHolesBackward(run, slot - 1) : skipHolesForward(run, slot + 1);
    if (slot < 0 || slot >= run.count) break;
    const offset = slot * keySize;
    if (limitBytes !== undefined && compareAt(runKeys, offset, limitBytes, limitOffset, keySize) * direction > 0) break;
    if (isPastBound(cursor, runKeys, offset, keySize)) break;
    copyKeyTo(keys, count * keySize, runKeys, offset, keySize);
    handles[count++] = runHandles[slot]!;
    taken = slot;
  }
  if (taken !== runSlots[source]) {
    runSlots[source] = taken;
    copyKey(cursor.lastKey, runKeys, taken * keySize);
  }
  return count;
}

function seekRuns(cursor: Cursor, runs: readonly KeyRun[], key: Uint8Array | undefined, strict: boolean): void {
  if (cursor.runSlots.length < runs.length) cursor.runSlots = new Int32Array(runs.length);
  for (let index = 0; index < runs.length; index++) {
    const run = runs[index]!;
    let slot: number;
    if (cursor.reverse) slot = key === undefined ? run.count - 1 : runLowerBound(run, key, !strict) - 1;
    else slot = key === undefined ? 0 : runLowerBound(run, key, strict);
    cursor.runSlots[index] = cursor.reverse ? skipHolesBackward(run, slot) : skipHolesForward(run, slot);
  }
}

function skipHolesForward(run: KeyRun, slot: number): number {
  while (slot < run.count && run.handles[slot] === -1) slot++;
  return slot;
}

function skipHolesBackward(run: KeyRun, slot: number): number {
  while (slot >= 0 && run.handles[slot] === -1) slot--;
  return slot;
}

// ---- keys ---------------------------------------------------------------------------------------

/** compareKeys of two keys of `keySize` bytes held at offsets of two arrays. */
function compareAt(left: Uint8Array, leftOffset: number, right: Uint8Array, rightOffset: number, keySize: number): number {
  for (let index = 0; index < keySize; index++) {
    const difference = left[leftOffset + index]! - right[rightOffset + index]!;
    if (difference !== 0) return difference;
  }
  return 0;
}

/** compareKeys(the key at `offset` of `bytes`, `key`). */
function compareToKey(bytes: Uint8Array, offset: number, keySize: number, key: Uint8Array): number {
  const length = Math.min(keySize, key.length);
  for (let index = 0; index < length; index++) {
    const difference = bytes[offset + index]! - key[index]!;
    if (difference !== 0) return difference;
  }
  return keySize - key.length;
}

function copyKey(target: Uint8Array, bytes: Uint8Array, offset: number): void {
  for (let index = 0; index < target.length; index++) target[index] = bytes[offset + index]!;
}

function copyKeyTo(target: Uint8Array, targetOffset: number, bytes: Uint8Array, offset: number, keySize: number): void {
  for (let index = 0; index < keySize; index++) target[targetOffset + index] = bytes[offset + index]!;
}

/** Whether the key at `offset` of `bytes` lies beyond the bound the cursor walks towards. */
function isPastBound(cursor: Cursor, bytes: Uint8Array, offset: number, keySize: number): boolean {
  if (cursor.reverse) {
    if (cursor.lower === undefined) return false;
    const comparison = compareToKey(bytes, offset, keySize, cursor.lower);
    return comparison < 0 || (cursor.lowerExclusive && comparison === 0);
  }
  if (cursor.upper === undefined) return false;
  const comparison = compareToKey(bytes, offset, keySize, cursor.upper);
  return comparison > 0 || (cursor.upperExclusive && comparison === 0);
}
