/**
 * Sorted runs of the ordered index: newly inserted handles, sorted by key once when a run is sealed,
 * with a private copy of each key beside them. The copy keeps every comparison inside the run's own
 * memory (a scan or a seek over a run reads sequential bytes, never the entry store), and it stays
 * valid when a removed handle is reused for another key: a removal leaves a hole (handle -1) whose
 * key bytes still order the slot.
 *
 * Two runs merge into one in bounded steps ({@link mergeRunsStep}); until the merge completes,
 * readers see the two inputs and the output stays private.
 */
import { assert } from '../assert.js';
import type { EntryStore } from './entry-store.js';
import { keyPrefix } from './key-order.js';

export interface KeyRun {
  /** Names the run in the ordered index's per-handle map (never 0). */
  readonly serial: number;
  /** Handles in key order; -1 where a key was removed. */
  readonly handles: Int32Array;
  /** The key of each slot, `keySize` bytes a slot, in slot order. */
  readonly keys: Uint8Array;
  readonly keySize: number;
  /** Slots in the run (holes included); grows only while a merge fills the run. */
  count: number;
  /** Handles in the run: slots that are not holes. */
  live: number;
}

/** A run over `sorted` (distinct handles in key order), copying their keys out of `entries`. */
export function sealRun(serial: number, sorted: Int32Array, entries: EntryStore): KeyRun {
  assert(serial !== 0, 'a run serial is never 0');
  const keySize = entries.keySize;
  const count = sorted.length;
  const keys = new Uint8Array(count * keySize);
  const source = entries.keys;
  for (let slot = 0; slot < count; slot++) {
    const from = sorted[slot]! * keySize;
    const to = slot * keySize;
    for (let index = 0; index < keySize; index++) keys[to + index] = source[from + index]!;
  }
  return { serial, handles: sorted, keys, keySize, count, live: count };
}

/**
 * The first four key bytes of `slot`, big-endian, as {@link keyPrefix} gives them: read from the
 * key copy rather than kept in an array of their own (4 bytes a key saved; same cache line).
 */
export function runPrefix(run: KeyRun, slot: number): number {
  return keyPrefix(run.keys, slot * run.keySize, run.keySize);
}

/** compareKeys(key of `slot`, `key`) over the run's own copy. */
export function compareRunSlot(run: KeyRun, slot: number, key: Uint8Array): number {
  const keys = run.keys;
  const keySize = run.keySize;
  const begin = slot * keySize;
  const length = Math.min(keySize, key.length);
  for (let index = 0; index < length; index++) {
    const difference = keys[begin + index]! - key[index]!;
    if (difference !== 0) return difference;
  }
  return keySize - key.length;
}

/** First slot of `run` whose key is ≥ `key` (> when `strict`); holes order by their old key. */
export function runLowerBound(run: KeyRun, key: Uint8Array, strict: boolean): number {
  const prefix = keyPrefix(key, 0, key.length);
  let low = 0;
  let high = run.count;
  while (low < high) {
    const middle = (low + high) >>> 1;
    let comparison = runPrefix(run, middle) - prefix;
    if (comparison === 0) comparison = compareRunSlot(run, middle, key);
    if (comparison < 0 || (strict && comparison === 0)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Turns the slot of `key` into a hole if `run` holds `handle` there; returns whether it did. */
export function removeFromRun(run: KeyRun, key: Uint8Array, handle: number): boolean {
  const slot = runLowerBound(run, key, false);
  if (slot >= run.count || run.handles[slot] !== handle) return false;
  run.handles[slot] = -1;
  run.live--;
  return true;
}

/** A merge of two runs in progress: `output` fills from `left` and `right`, which readers still use. */
export interface RunMerge {
  readonly left: KeyRun;
  readonly right: KeyRun;
  readonly output: KeyRun;
  leftSlot: number;
  rightSlot: number;
}

/** Starts merging `left` and `right` into a new run named `serial`. */
export function startRunMerge(serial: number, left: KeyRun, right: KeyRun): RunMerge {
  const capacity = left.live + right.live;
  const keySize = left.keySize;
  const output: KeyRun = {
    serial,
    handles: new Int32Array(capacity),
    keys: new Uint8Array(capacity * keySize),
    keySize,
    count: 0,
    live: 0,
  };
  return { left, right, output, leftSlot: 0, rightSlot: 0 };
}

/**
 * Moves up to `slotBudget` slots of the inputs (holes count: they cost a look) into the output, in
 * key order, calling `moved(handle)` for each handle copied. Returns the slots consumed; the merge is
 * complete when both inputs are consumed ({@link isRunMergeDone}).
 */
export function mergeRunsStep(merge: RunMerge, slotBudget: number, moved: (handle: number) => void): number {
  const { left, right, output } = merge;
  const keySize = left.keySize;
  let consumed = 0;
  while (consumed < slotBudget) {
    const leftOpen = merge.leftSlot < left.count;
    const rightOpen = merge.rightSlot < right.count;
    if (!leftOpen && !rightOpen) break;
    let fromLeft: boolean;
    if (!rightOpen) fromLeft = true;
    else if (!leftOpen) fromLeft = false;
    else {
      const leftPrefix = runPrefix(left, merge.leftSlot);
      const rightPrefix = runPrefix(right, merge.rightSlot);
      if (leftPrefix !== rightPrefix) fromLeft = leftPrefix < rightPrefix;
      else fromLeft = compareSlots(left, merge.leftSlot, right, merge.rightSlot) < 0;
    }
    const source = fromLeft ? left : right;
    const slot = fromLeft ? merge.leftSlot++ : merge.rightSlot++;
    consumed++;
    const handle = source.handles[slot]!;
    if (handle < 0) continue;
    const target = output.count++;
    output.handles[target] = handle;
    // A byte loop: a subarray per key would allocate in the hottest loop of the merge.
    const from = slot * keySize;
    const to = target * keySize;
    for (let index = 0; index < keySize; index++) output.keys[to + index] = source.keys[from + index]!;
    output.live++;
    moved(handle);
  }
  return consumed;
}

export function isRunMergeDone(merge: RunMerge): boolean {
  return merge.leftSlot >= merge.left.count && merge.rightSlot >= merge.right.count;
}

function compareSlots(left: KeyRun, leftSlot: number, right: KeyRun, rightSlot: number): number {
  const keySize = left.keySize;
  const leftStart = leftSlot * keySize;
  const rightStart = rightSlot * keySize;
  for (let index = 0; index < keySize; index++) {
    const difference = left.keys[leftStart + index]! - right.keys[rightStart + index]!;
    if (difference !== 0) return difference;
  }
  return 0;
}
