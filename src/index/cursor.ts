/**
 * Cursors of the ordered index. A cursor does not hold a position across mutations: each step
 * re-seeks from the last key it yielded when the tree changed since (a version counter), so
 * iterating while mutating yields every key that was present throughout exactly once, in order.
 */
import type { EntryStore } from './entry-store.js';
import type { HandleTree, Leaf, Position } from './handle-tree.js';

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

/** Where an iteration stands (see {@link OrderedIndex.nextHandle}); opaque to callers. */
export interface Cursor {
  readonly lower: Uint8Array | undefined;
  readonly lowerExclusive: boolean;
  readonly upper: Uint8Array | undefined;
  readonly upperExclusive: boolean;
  readonly reverse: boolean;
  leaf: Leaf | undefined;
  slot: number;
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
    version: -1,
    lastKey: new Uint8Array(keySize),
    state: CursorState.unstarted,
  };
}

/** Ends `cursor`: every later step returns -1. */
export function closeCursor(cursor: Cursor): void {
  cursor.state = CursorState.done;
  cursor.leaf = undefined;
}

/**
 * The next handle of `cursor` in `tree` (whose version is `version`), or -1 at the end. When the tree
 * changed since the last step, the cursor finds its place again from the last key it returned (kept
 * in the cursor, so a removed or reused handle does not matter); otherwise it steps within the leaf
 * chain and allocates nothing.
 */
export function nextHandle(cursor: Cursor, tree: HandleTree, version: number, entries: EntryStore): number {
  if (cursor.state === CursorState.done) return -1;
  if (cursor.state === CursorState.unstarted || cursor.version !== version) seek(cursor, tree, version);
  else if (cursor.reverse) stepBackward(cursor);
  else stepForward(cursor);
  const leaf = cursor.leaf;
  if (leaf === undefined || isPastBound(cursor, tree, leaf.handles[cursor.slot]!)) {
    cursor.state = CursorState.done;
    return -1;
  }
  const handle = leaf.handles[cursor.slot]!;
  const keys = entries.keys;
  const lastKey = cursor.lastKey;
  const start = handle * lastKey.length;
  for (let index = 0; index < lastKey.length; index++) lastKey[index] = keys[start + index]!;
  return handle;
}

/** Places `cursor` from its bounds (first step) or just past its last key (after a mutation). */
function seek(cursor: Cursor, tree: HandleTree, version: number): void {
  let position: Position | undefined;
  if (cursor.state === CursorState.unstarted)
    position = cursor.reverse
      ? tree.seekBackward(cursor.upper, cursor.upperExclusive)
      : tree.seekForward(cursor.lower, cursor.lowerExclusive);
  else position = cursor.reverse ? tree.seekBackward(cursor.lastKey, true) : tree.seekForward(cursor.lastKey, true);
  cursor.state = CursorState.started;
  cursor.version = version;
  cursor.leaf = position?.leaf;
  cursor.slot = position?.slot ?? 0;
}

function stepForward(cursor: Cursor): void {
  let leaf = cursor.leaf;
  let slot = cursor.slot + 1;
  while (leaf !== undefined && slot >= leaf.count) {
    leaf = leaf.next;
    slot = 0;
  }
  cursor.leaf = leaf;
  cursor.slot = slot;
}

function stepBackward(cursor: Cursor): void {
  let leaf = cursor.leaf;
  let slot = cursor.slot - 1;
  while (leaf !== undefined && slot < 0) {
    leaf = leaf.previous;
    slot = leaf === undefined ? -1 : leaf.count - 1;
  }
  cursor.leaf = leaf;
  cursor.slot = slot;
}

/** Whether `handle` lies beyond the bound the cursor walks towards. */
function isPastBound(cursor: Cursor, tree: HandleTree, handle: number): boolean {
  if (cursor.reverse) {
    if (cursor.lower === undefined) return false;
    const comparison = tree.compareStored(handle, cursor.lower);
    return comparison < 0 || (cursor.lowerExclusive && comparison === 0);
  }
  if (cursor.upper === undefined) return false;
  const comparison = tree.compareStored(handle, cursor.upper);
  return comparison > 0 || (cursor.upperExclusive && comparison === 0);
}
