/**
 * The B+ tree of the ordered index: entry handles in key order, the keys themselves in the
 * {@link EntryStore}.
 *
 * Leaves hold up to {@link LEAF_CAPACITY} handles sorted by key (keys compare bytewise); inner nodes
 * hold copies of separator keys, so removing a key never leaves a dangling separator. Leaves are
 * linked both ways for cursors. Removal does not rebalance: a leaf that empties is unlinked, a
 * parent that loses its last child goes with it.
 */
import { assert } from '../assert.js';
import type { EntryStore } from './entry-store.js';
import { compareKeys, keyPrefix } from './key-order.js';

export const LEAF_CAPACITY = 64;
const INNER_CAPACITY = 64;
/** Entries per node of a bulk-built tree: room for inserts before the first splits. */
const LEAF_FILL = (LEAF_CAPACITY * 3) >>> 2;
const INNER_FILL = (INNER_CAPACITY * 3) >>> 2;

export interface Leaf {
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

/** Where a seek lands: a leaf and a slot in it. */
export interface Position {
  leaf: Leaf;
  slot: number;
}

function newLeaf(handles = new Int32Array(LEAF_CAPACITY), prefixes = new Uint32Array(LEAF_CAPACITY)): Leaf {
  return {
    leaf: true,
    handles,
    prefixes,
    count: 0,
    next: undefined,
    previous: undefined,
    parent: undefined,
  };
}

/** The position after `leaf`/`slot` in key order, or undefined past the last key. */
export function stepForward(leaf: Leaf | undefined, slot: number): Position | undefined {
  while (leaf !== undefined && slot >= leaf.count) {
    leaf = leaf.next;
    slot = 0;
  }
  return leaf === undefined ? undefined : { leaf, slot };
}

/** The position at or before `leaf`/`slot` in key order, or undefined before the first key. */
export function stepBackward(leaf: Leaf | undefined, slot: number): Position | undefined {
  while (leaf !== undefined && slot < 0) {
    leaf = leaf.previous;
    slot = leaf === undefined ? -1 : leaf.count - 1;
  }
  return leaf === undefined ? undefined : { leaf, slot };
}

export class HandleTree {
  readonly #entries: EntryStore;
  #root: Node = newLeaf();
  #first: Leaf;
  #last: Leaf;

  constructor(entries: EntryStore) {
    this.#entries = entries;
    this.#first = this.#root as Leaf;
    this.#last = this.#root as Leaf;
  }

  /** The leftmost leaf (empty when the tree is). */
  get firstLeaf(): Leaf {
    return this.#first;
  }

  /** The rightmost leaf (empty when the tree is). */
  get lastLeaf(): Leaf {
    return this.#last;
  }

  // ---- bulk build ----------------------------------------------------------------------------

  /**
   * Replaces the tree by one over `sorted` (handles in key order), nodes three quarters full.
   * `prefixes`, when given, holds {@link keyPrefix} of each slot's key (as the sort produced them):
   * the leaves copy them instead of reading every key from the entry store, a random access each.
   */
  load(sorted: Int32Array, prefixes?: Uint32Array): void {
    assert(prefixes === undefined || prefixes.length === sorted.length, 'a prefix for every sorted handle');
    const leaves = this.#leavesOf(sorted, prefixes);
    if (leaves.length === 0) return;
    let level: Node[] = leaves;
    while (level.length > 1) level = this.#parentsOf(level);
    // Only now: a build that threw (out of memory) leaves the tree as it was.
    this.#root = level[0]!;
    this.#first = leaves[0]!;
    this.#last = leaves[leaves.length - 1]!;
  }

  #leavesOf(sorted: Int32Array, prefixes: Uint32Array | undefined): Leaf[] {
    const count = sorted.length;
    const leafCount = Math.ceil(count / LEAF_FILL);
    // Every leaf's arrays are views into two blocks: two allocations for the whole build, where a
    // pair per leaf (tens of thousands at a million keys) cost open a tenth of its time in
    // allocation and garbage collection. A leaf that splits later gets arrays of its own; the
    // blocks live while any leaf of the build does.
    const handleBlock = new Int32Array(leafCount * LEAF_CAPACITY);
    const prefixBlock = new Uint32Array(leafCount * LEAF_CAPACITY);
    const leaves: Leaf[] = new Array(leafCount);
    let previous: Leaf | undefined;
    for (let leafIndex = 0; leafIndex < leafCount; leafIndex++) {
      const start = leafIndex * LEAF_FILL;
      const end = Math.min(start + LEAF_FILL, count);
      const blockStart = leafIndex * LEAF_CAPACITY;
      const leaf = newLeaf(
        handleBlock.subarray(blockStart, blockStart + LEAF_CAPACITY),
        prefixBlock.subarray(blockStart, blockStart + LEAF_CAPACITY),
      );
      leaf.handles.set(sorted.subarray(start, end));
      leaf.count = end - start;
      if (prefixes !== undefined) leaf.prefixes.set(prefixes.subarray(start, end));
      else for (let slot = 0; slot < leaf.count; slot++) leaf.prefixes[slot] = this.#prefixOfHandle(leaf.handles[slot]!);
      if (previous !== undefined) {
        previous.next = leaf;
        leaf.previous = previous;
      }
      leaves[leafIndex] = leaf;
      previous = leaf;
    }
    return leaves;
  }

  #parentsOf(level: Node[]): Node[] {
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
    return parents;
  }

  // ---- keys ----------------------------------------------------------------------------------

  #smallestKey(node: Node): Uint8Array {
    while (!node.leaf) node = node.children[0]!;
    return this.#entries.keyView(node.handles[0]!);
  }

  /** compareKeys(key of `handle`, `key`) without a view of the stored key. */
  compareStored(handle: number, key: Uint8Array): number {
    const entries = this.#entries;
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
    const entries = this.#entries;
    return keyPrefix(entries.keys, handle * entries.keySize, entries.keySize);
  }

  // ---- descent -------------------------------------------------------------------------------

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
      if (comparison === 0) comparison = this.compareStored(leaf.handles[middle]!, key);
      if (comparison < 0 || (strict && comparison === 0)) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Position of the first key ≥ `key` (> when `strict`; the smallest key when undefined), or undefined past the end. */
  seekForward(key: Uint8Array | undefined, strict: boolean): Position | undefined {
    if (key === undefined) return stepForward(this.#first, 0);
    const leaf = this.#leafFor(key);
    return stepForward(leaf, this.#slotIn(leaf, key, strict));
  }

  /** Position of the last key ≤ `key` (< when `strict`; the largest key when undefined), or undefined before the start. */
  seekBackward(key: Uint8Array | undefined, strict: boolean): Position | undefined {
    if (key === undefined) return stepBackward(this.#last, this.#last.count - 1);
    const leaf = this.#leafFor(key);
    return stepBackward(leaf, this.#slotIn(leaf, key, !strict) - 1);
  }

  // ---- insert --------------------------------------------------------------------------------

  /** Adds `handle`, whose key is `key` and not in the tree yet. */
  insert(key: Uint8Array, handle: number): void {
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
    this.#insertIntoParent(leaf, this.#entries.keyView(right.handles[0]!).slice(), right);
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

  // ---- remove --------------------------------------------------------------------------------

  /** Removes `handle`, whose key is `key`. */
  remove(key: Uint8Array, handle: number): void {
    const leaf = this.#leafFor(key);
    const slot = this.#slotIn(leaf, key, false);
    assert(slot < leaf.count && leaf.handles[slot] === handle, 'the ordered index is in step with the hash index');
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
    this.#detach(leaf);
    this.#shrinkRoot();
  }

  /** Takes `node` out of its parent, and every ancestor it leaves without children. */
  #detach(node: Node): void {
    let child = node;
    let parent = node.parent;
    while (parent !== undefined) {
      const index = parent.children.indexOf(child);
      parent.children.splice(index, 1);
      // Drop the separator that pointed at the removed child (or the first one if it was the leftmost).
      parent.separators.splice(Math.max(0, index - 1), 1);
      if (parent.children.length > 0) break;
      child = parent;
      parent = parent.parent;
    }
  }

  /** Collapses a root with a single child; an empty root becomes one empty leaf. */
  #shrinkRoot(): void {
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
}
