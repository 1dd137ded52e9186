/**
 * The ordered index of the Tree collections: the hash index for point lookups (so a Tree `get` costs
 * what a Map `get` costs) plus a B+ tree over entry handles for order, seeks and cursors.
 *
 * Leaves hold up to {@link LEAF_CAPACITY} handles sorted by key (keys compare bytewise, in the
 * {@link EntryStore}); inner nodes hold copies of separator keys, so removing a key never leaves a
 * dangling separator. Leaves are linked both ways for cursors. Removal does not rebalance: a leaf
 * that empties is unlinked, a parent that loses its last child goes with it.
 *
 * Cursors do not hold positions across mutations: each step re-seeks from the last key it yielded
 * when the tree changed since (a version counter), so iterating while mutating yields every key that
 * was present throughout exactly once, in order.
 *
 * A new index defers the tree: inserts and removals go to the hash index only until the first
 * operation that needs order, which sorts the handles (radix sorts on the key bytes) and builds
 * the tree bottom-up with leaves three quarters full. Recovery inserts every key of the store before
 * anything asks for order, and one sort plus one pass costs a fraction of a million random inserts.
 */
import type { EntryStore } from './entry-store.js';
import { HashIndex } from './hash-index.js';
import type { KeyIndex } from './key-index.js';

export const LEAF_CAPACITY = 64;
const INNER_CAPACITY = 64;
/** Entries per node of a bulk-built tree: room for inserts before the first splits. */
const LEAF_FILL = (LEAF_CAPACITY * 3) >>> 2;
const INNER_FILL = (INNER_CAPACITY * 3) >>> 2;
/** Ranges of the radix sort at most this long are finished by insertion sort. */
const INSERTION_SORT_MAX = 24;

interface Leaf {
  readonly leaf: true;
  handles: Int32Array;
  /** The first four key bytes of each slot's handle, big-endian: most comparisons end here. */
  prefixes: Uint32Array;
  count: number;
  next: Leaf | undefined;
  previous: Leaf | undefined;
  parent: Inner | undefined;
}

interface Inner {
  readonly leaf: false;
  /** separators[i] is the smallest key of children[i + 1]. */
  separators: Uint8Array[];
  children: Node[];
  parent: Inner | undefined;
}

type Node = Leaf | Inner;

/** Bytewise comparison of two keys. */
export function compareKeys(left: Uint8Array, right: Uint8Array): number {
  const length = Math.min(left.length, right.length);
  for (let index = 0; index < length; index++) {
    const difference = left[index]! - right[index]!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

function newLeaf(): Leaf {
  return {
    leaf: true,
    handles: new Int32Array(LEAF_CAPACITY),
    prefixes: new Uint32Array(LEAF_CAPACITY),
    count: 0,
    next: undefined,
    previous: undefined,
    parent: undefined,
  };
}

/**
 * Sorts `handles` by their keys (`keySize` bytes at `handle * keySize` in `keys`), bytewise; keys are
 * distinct. The first four bytes of each key are copied into a packed array and sorted with the
 * handles by an LSD radix sort (sequential memory, no comparisons); runs that share those four bytes
 * are then finished by an MSD radix sort on the remaining bytes, which skips a byte all keys of a run
 * share. Random keys have almost no such runs; keys with a long common prefix go through the second.
 */
export function sortHandlesByKey(handles: Int32Array, keys: Uint8Array, keySize: number): void {
  const count = handles.length;
  let prefixes = new Uint32Array(count);
  const prefixBytes = Math.min(4, keySize);
  for (let index = 0; index < count; index++) {
    const start = handles[index]! * keySize;
    let prefix = 0;
    for (let byte = 0; byte < 4; byte++) prefix = prefix * 256 + (byte < prefixBytes ? keys[start + byte]! : 0);
    prefixes[index] = prefix;
  }
  let sortedHandles: Int32Array = handles;
  let otherPrefixes = new Uint32Array(count);
  let otherHandles: Int32Array = new Int32Array(count);
  const counts = new Int32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let index = 0; index < count; index++) counts[(prefixes[index]! >>> shift) & 255]!++;
    if (counts.includes(count)) continue;
    let total = 0;
    for (let digit = 0; digit < 256; digit++) {
      const digitCount = counts[digit]!;
      counts[digit] = total;
      total += digitCount;
    }
    for (let index = 0; index < count; index++) {
      const prefix = prefixes[index]!;
      const target = counts[(prefix >>> shift) & 255]!++;
      otherPrefixes[target] = prefix;
      otherHandles[target] = sortedHandles[index]!;
    }
    [prefixes, otherPrefixes] = [otherPrefixes, prefixes];
    [sortedHandles, otherHandles] = [otherHandles, sortedHandles];
  }
  // After an odd number of passes the result is in the other buffer: copy it back, and that buffer
  // becomes the scratch space of the second sort.
  let scratch = otherHandles;
  if (sortedHandles !== handles) {
    handles.set(sortedHandles);
    scratch = sortedHandles;
  }
  if (keySize <= 4) return;
  let runStart = 0;
  for (let index = 1; index <= count; index++) {
    if (index < count && prefixes[index] === prefixes[runStart]) continue;
    if (index - runStart > 1) msdSortByKey(handles, scratch, keys, keySize, runStart, index, 4);
    runStart = index;
  }
}

/** Sorts handles[low, high) whose keys share their first `byte` bytes: an MSD radix sort, one byte a level. */
function msdSortByKey(
  handles: Int32Array,
  scratch: Int32Array,
  keys: Uint8Array,
  keySize: number,
  low: number,
  high: number,
  byte: number,
): void {
  for (;;) {
    if (high - low <= INSERTION_SORT_MAX || byte >= keySize) {
      insertionSortByKey(handles, keys, keySize, low, high, byte);
      return;
    }
    const counts = new Int32Array(257);
    for (let index = low; index < high; index++) counts[keys[handles[index]! * keySize + byte]! + 1]!++;
    if (counts.includes(high - low)) {
      byte++;
      continue;
    }
    for (let digit = 1; digit <= 256; digit++) counts[digit]! += counts[digit - 1]!;
    const starts = counts.slice(0, 256);
    for (let index = low; index < high; index++) {
      const handle = handles[index]!;
      scratch[low + counts[keys[handle * keySize + byte]!]!++] = handle;
    }
    handles.set(scratch.subarray(low, high), low);
    for (let digit = 0; digit < 256; digit++) {
      const start = low + starts[digit]!;
      const end = digit === 255 ? high : low + starts[digit + 1]!;
      if (end - start > 1) msdSortByKey(handles, scratch, keys, keySize, start, end, byte + 1);
    }
    return;
  }
}

function insertionSortByKey(handles: Int32Array, keys: Uint8Array, keySize: number, low: number, high: number, fromByte: number): void {
  for (let index = low + 1; index < high; index++) {
    const handle = handles[index]!;
    const start = handle * keySize;
    let position = index - 1;
    for (; position >= low; position--) {
      const otherStart = handles[position]! * keySize;
      let difference = 0;
      for (let byte = fromByte; byte < keySize && difference === 0; byte++) difference = keys[otherStart + byte]! - keys[start + byte]!;
      if (difference <= 0) break;
      handles[position + 1] = handles[position]!;
    }
    handles[position + 1] = handle;
  }
}

/** Bounds of a cursor: `lower`/`upper` are inclusive unless the matching `exclusive` flag is set. */
export interface CursorBounds {
  lower?: Uint8Array | undefined;
  lowerExclusive?: boolean;
  upper?: Uint8Array | undefined;
  upperExclusive?: boolean;
  reverse?: boolean;
}

const enum CursorState {
  unstarted,
  started,
  done,
}

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

/**
 * The first four bytes of `length` bytes at `offset`, big-endian, missing bytes as zero. Two keys
 * whose prefixes differ compare as their prefixes do (a shorter key, padded with zeros, is smaller
 * than any longer key it starts, as in {@link compareKeys}); equal prefixes need the full comparison.
 */
function keyPrefix(bytes: Uint8Array, offset: number, length: number): number {
  let prefix = 0;
  for (let index = 0; index < 4; index++) prefix = prefix * 256 + (index < length ? bytes[offset + index]! : 0);
  return prefix;
}

/** Where a seek lands: a leaf and a slot in it. */
interface Position {
  leaf: Leaf;
  slot: number;
}

export class OrderedIndex implements KeyIndex {
  readonly #hash: HashIndex;
  #root: Node = newLeaf();
  #first: Leaf;
  #last: Leaf;
  /** Grows with every insert or removal; cursors compare it to know when to re-seek. */
  version = 0;
  /** True until the tree is first needed: the hash index alone holds the keys. */
  #deferred = true;

  constructor(keySize: number, options: { valueSize?: number; keepsObjects?: boolean } = {}) {
    this.#hash = new HashIndex(keySize, options);
    this.#first = this.#root as Leaf;
    this.#last = this.#root as Leaf;
  }

  get entries(): EntryStore {
    return this.#hash.entries;
  }

  get size(): number {
    return this.#hash.size;
  }

  get memoryBytes(): number {
    // Leaves: handles and key prefixes plus ~80 bytes of object; inner nodes are few (1 per 64 leaves).
    const leaves = Math.ceil(this.size / (LEAF_CAPACITY * 0.7)) + 1;
    return this.#hash.memoryBytes + leaves * (LEAF_CAPACITY * 8 + 80);
  }

  find(key: Uint8Array): number {
    return this.#hash.find(key);
  }

  findOrInsert(key: Uint8Array): number {
    const sizeBefore = this.#hash.size;
    const handle = this.#hash.findOrInsert(key);
    if (this.#hash.size !== sizeBefore) {
      if (!this.#deferred) this.#insertHandle(key, handle);
      this.version++;
    }
    return handle;
  }

  remove(key: Uint8Array): boolean {
    const handle = this.#hash.find(key);
    if (handle < 0) return false;
    if (!this.#deferred) this.#removeHandle(key, handle);
    this.#hash.remove(key);
    this.version++;
    return true;
  }

  forEachHandle(visit: (handle: number) => void): void {
    this.#buildIfDeferred();
    for (let leaf: Leaf | undefined = this.#first; leaf !== undefined; leaf = leaf.next) {
      for (let slot = 0; slot < leaf.count; slot++) visit(leaf.handles[slot]!);
    }
  }

  // ---- tree maintenance ----------------------------------------------------------------------

  #buildIfDeferred(): void {
    if (!this.#deferred) return;
    const entries = this.#hash.entries;
    const handles = new Int32Array(this.#hash.size);
    let count = 0;
    this.#hash.forEachHandle((handle) => {
      handles[count++] = handle;
    });
    sortHandlesByKey(handles, entries.keys, entries.keySize);
    const leaves: Leaf[] = [];
    for (let start = 0; start < count; start += LEAF_FILL) {
      const leaf = newLeaf();
      leaf.handles.set(handles.subarray(start, Math.min(start + LEAF_FILL, count)));
      leaf.count = Math.min(LEAF_FILL, count - start);
      for (let slot = 0; slot < leaf.count; slot++) leaf.prefixes[slot] = this.#prefixOfHandle(leaf.handles[slot]!);
      const previous = leaves[leaves.length - 1];
      if (previous !== undefined) {
        previous.next = leaf;
        leaf.previous = previous;
      }
      leaves.push(leaf);
    }
    if (leaves.length === 0) {
      this.#deferred = false;
      return;
    }
    this.#first = leaves[0]!;
    this.#last = leaves[leaves.length - 1]!;
    let level: Node[] = leaves;
    while (level.length > 1) {
      const parents: Node[] = [];
      for (let start = 0; start < level.length; start += INNER_FILL) {
        const children = level.slice(start, start + INNER_FILL);
        const node: Inner = {
          leaf: false,
          separators: children.slice(1).map((child) => this.#smallestKey(child).slice()),
          children,
          parent: undefined,
        };
        for (const child of children) child.parent = node;
        parents.push(node);
      }
      level = parents;
    }
    this.#root = level[0]!;
    // Only now: a build that threw (out of memory) leaves the index deferred, still whole.
    this.#deferred = false;
  }

  #smallestKey(node: Node): Uint8Array {
    while (!node.leaf) node = node.children[0]!;
    return this.#keyOf(node.handles[0]!);
  }

  #keyOf(handle: number): Uint8Array {
    return this.#hash.entries.keyView(handle);
  }

  #leafFor(key: Uint8Array): Leaf {
    let node = this.#root;
    while (!node.leaf) {
      const separators = node.separators;
      let low = 0;
      let high = separators.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (compareKeys(separators[middle]!, key) <= 0) low = middle + 1;
        else high = middle;
      }
      node = node.children[low]!;
    }
    return node;
  }

  /** compareKeys(key of `handle`, `key`) without a view of the stored key. */
  #compareStored(handle: number, key: Uint8Array): number {
    const entries = this.#hash.entries;
    const keys = entries.keys;
    const keySize = entries.keySize;
    const start = handle * keySize;
    const length = Math.min(keySize, key.length);
    for (let index = 0; index < length; index++) {
      const difference = keys[start + index]! - key[index]!;
      if (difference !== 0) return difference;
    }
    return keySize - key.length;
  }

  #prefixOfHandle(handle: number): number {
    const entries = this.#hash.entries;
    return keyPrefix(entries.keys, handle * entries.keySize, entries.keySize);
  }

  /** First slot in `leaf` whose key is ≥ `key` (or > when `strict`). */
  #slotIn(leaf: Leaf, key: Uint8Array, strict: boolean): number {
    const prefix = keyPrefix(key, 0, key.length);
    const prefixes = leaf.prefixes;
    let low = 0;
    let high = leaf.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      // The prefix is in the leaf itself: only a tie reads the stored key (elsewhere in memory).
      let comparison = prefixes[middle]! - prefix;
      if (comparison === 0) comparison = this.#compareStored(leaf.handles[middle]!, key);
      if (comparison < 0 || (strict && comparison === 0)) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #insertHandle(key: Uint8Array, handle: number): void {
    const leaf = this.#leafFor(key);
    const slot = this.#slotIn(leaf, key, false);
    leaf.handles.copyWithin(slot + 1, slot, leaf.count);
    leaf.handles[slot] = handle;
    leaf.prefixes.copyWithin(slot + 1, slot, leaf.count);
    leaf.prefixes[slot] = keyPrefix(key, 0, key.length);
    leaf.count++;
    if (leaf.count === LEAF_CAPACITY) this.#splitLeaf(leaf);
  }

  #splitLeaf(leaf: Leaf): void {
    const right = newLeaf();
    const half = leaf.count >>> 1;
    right.handles.set(leaf.handles.subarray(half, leaf.count));
    right.prefixes.set(leaf.prefixes.subarray(half, leaf.count));
    right.count = leaf.count - half;
    leaf.count = half;
    right.next = leaf.next;
    right.previous = leaf;
    if (leaf.next !== undefined) leaf.next.previous = right;
    else this.#last = right;
    leaf.next = right;
    this.#insertIntoParent(leaf, this.#keyOf(right.handles[0]!).slice(), right);
  }

  #insertIntoParent(left: Node, separator: Uint8Array, right: Node): void {
    const parent = left.parent;
    if (parent === undefined) {
      const root: Inner = { leaf: false, separators: [separator], children: [left, right], parent: undefined };
      left.parent = root;
      right.parent = root;
      this.#root = root;
      return;
    }
    const index = parent.children.indexOf(left);
    parent.children.splice(index + 1, 0, right);
    parent.separators.splice(index, 0, separator);
    right.parent = parent;
    if (parent.children.length > INNER_CAPACITY) this.#splitInner(parent);
  }

  #splitInner(node: Inner): void {
    const half = node.children.length >>> 1;
    const promoted = node.separators[half - 1]!;
    const right: Inner = { leaf: false, separators: node.separators.slice(half), children: node.children.slice(half), parent: node.parent };
    node.separators = node.separators.slice(0, half - 1);
    node.children = node.children.slice(0, half);
    for (const child of right.children) child.parent = right;
    this.#insertIntoParent(node, promoted, right);
  }

  #removeHandle(key: Uint8Array, handle: number): void {
    const leaf = this.#leafFor(key);
    const slot = this.#slotIn(leaf, key, false);
    if (slot >= leaf.count || leaf.handles[slot] !== handle) throw new Error('ordered index out of step with the hash index');
    leaf.handles.copyWithin(slot, slot + 1, leaf.count);
    leaf.prefixes.copyWithin(slot, slot + 1, leaf.count);
    leaf.count--;
    if (leaf.count === 0 && leaf.parent !== undefined) this.#unlink(leaf);
  }

  #unlink(leaf: Leaf): void {
    if (leaf.previous !== undefined) leaf.previous.next = leaf.next;
    else this.#first = leaf.next!;
    if (leaf.next !== undefined) leaf.next.previous = leaf.previous;
    else this.#last = leaf.previous!;
    let child: Node = leaf;
    let parent = leaf.parent;
    while (parent !== undefined) {
      const index = parent.children.indexOf(child);
      parent.children.splice(index, 1);
      // Drop the separator that pointed at the removed child (or the first one if it was the leftmost).
      parent.separators.splice(Math.max(0, index - 1), 1);
      if (parent.children.length > 0) break;
      child = parent;
      parent = parent.parent;
    }
    // Collapse a root with a single child.
    while (!this.#root.leaf && this.#root.children.length === 1) {
      this.#root = this.#root.children[0]!;
      this.#root.parent = undefined;
    }
    if (!this.#root.leaf && this.#root.children.length === 0) {
      const empty = newLeaf();
      this.#root = empty;
      this.#first = empty;
      this.#last = empty;
    }
  }

  // ---- seeks and cursors ---------------------------------------------------------------------

  /** Position of the first key ≥ `key` (> when `strict`), or undefined past the end. */
  #seekForward(key: Uint8Array | undefined, strict: boolean): Position | undefined {
    this.#buildIfDeferred();
    let leaf: Leaf | undefined = key === undefined ? this.#first : this.#leafFor(key);
    let slot = key === undefined ? 0 : this.#slotIn(leaf, key, strict);
    while (leaf !== undefined && slot >= leaf.count) {
      leaf = leaf.next;
      slot = 0;
    }
    return leaf === undefined ? undefined : { leaf, slot };
  }

  /** Position of the last key ≤ `key` (< when `strict`), or undefined before the start. */
  #seekBackward(key: Uint8Array | undefined, strict: boolean): Position | undefined {
    this.#buildIfDeferred();
    let leaf: Leaf | undefined = key === undefined ? this.#last : this.#leafFor(key);
    let slot = key === undefined ? leaf.count - 1 : this.#slotIn(leaf, key, !strict) - 1;
    while (leaf !== undefined && slot < 0) {
      leaf = leaf.previous;
      slot = leaf === undefined ? -1 : leaf.count - 1;
    }
    return leaf === undefined ? undefined : { leaf, slot };
  }

  /** Handle of the smallest key, or -1. */
  firstHandle(): number {
    const position = this.#seekForward(undefined, false);
    return position === undefined ? -1 : position.leaf.handles[position.slot]!;
  }

  /** Handle of the largest key, or -1. */
  lastHandle(): number {
    const position = this.#seekBackward(undefined, false);
    return position === undefined ? -1 : position.leaf.handles[position.slot]!;
  }

  /** A cursor over the handles in key order within `bounds`; step it with {@link nextHandle}. */
  cursor(bounds: CursorBounds): Cursor {
    return {
      lower: bounds.lower,
      lowerExclusive: bounds.lowerExclusive ?? false,
      upper: bounds.upper,
      upperExclusive: bounds.upperExclusive ?? false,
      reverse: bounds.reverse ?? false,
      leaf: undefined,
      slot: 0,
      version: -1,
      lastKey: new Uint8Array(this.#hash.entries.keySize),
      state: CursorState.unstarted,
    };
  }

  /**
   * The next handle of `cursor`, or -1 at the end. Robust to mutation between steps: when the tree
   * changed since the last step (the version counter moved), the cursor finds its place again from
   * the last key it returned (kept in the cursor, so a removed or reused handle does not matter);
   * otherwise it steps within the leaf chain. Allocates nothing on a plain step.
   */
  nextHandle(cursor: Cursor): number {
    if (cursor.state === CursorState.done) return -1;
    const { reverse } = cursor;
    if (cursor.state === CursorState.unstarted || cursor.version !== this.version) {
      const position =
        cursor.state === CursorState.unstarted
          ? reverse
            ? this.#seekBackward(cursor.upper, cursor.upperExclusive)
            : this.#seekForward(cursor.lower, cursor.lowerExclusive)
          : reverse
            ? this.#seekBackward(cursor.lastKey, true)
            : this.#seekForward(cursor.lastKey, true);
      cursor.state = CursorState.started;
      cursor.version = this.version;
      cursor.leaf = position?.leaf;
      cursor.slot = position?.slot ?? 0;
    } else if (reverse) {
      let leaf = cursor.leaf;
      let slot = cursor.slot - 1;
      while (leaf !== undefined && slot < 0) {
        leaf = leaf.previous;
        slot = leaf === undefined ? -1 : leaf.count - 1;
      }
      cursor.leaf = leaf;
      cursor.slot = slot;
    } else {
      let leaf = cursor.leaf;
      let slot = cursor.slot + 1;
      while (leaf !== undefined && slot >= leaf.count) {
        leaf = leaf.next;
        slot = 0;
      }
      cursor.leaf = leaf;
      cursor.slot = slot;
    }
    const leaf = cursor.leaf;
    if (leaf === undefined) {
      cursor.state = CursorState.done;
      return -1;
    }
    const handle = leaf.handles[cursor.slot]!;
    if (!reverse && cursor.upper !== undefined) {
      const comparison = this.#compareStored(handle, cursor.upper);
      if (comparison > 0 || (cursor.upperExclusive && comparison === 0)) {
        cursor.state = CursorState.done;
        return -1;
      }
    }
    if (reverse && cursor.lower !== undefined) {
      const comparison = this.#compareStored(handle, cursor.lower);
      if (comparison < 0 || (cursor.lowerExclusive && comparison === 0)) {
        cursor.state = CursorState.done;
        return -1;
      }
    }
    const entries = this.#hash.entries;
    const keys = entries.keys;
    const lastKey = cursor.lastKey;
    const start = handle * lastKey.length;
    for (let index = 0; index < lastKey.length; index++) lastKey[index] = keys[start + index]!;
    return handle;
  }

  /** Ends `cursor`: every later {@link nextHandle} returns -1. */
  closeCursor(cursor: Cursor): void {
    cursor.state = CursorState.done;
    cursor.leaf = undefined;
  }

  /** Handles in key order within bounds, robust to mutation between steps (see {@link nextHandle}). */
  *handles(bounds: CursorBounds): Generator<number, void, undefined> {
    const cursor = this.cursor(bounds);
    for (let handle = this.nextHandle(cursor); handle >= 0; handle = this.nextHandle(cursor)) yield handle;
  }
}
