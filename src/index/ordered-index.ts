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
 */
import type { EntryStore } from './entry-store.js';
import { HashIndex } from './hash-index.js';
import type { KeyIndex } from './key-index.js';

export const LEAF_CAPACITY = 64;
const INNER_CAPACITY = 64;

interface Leaf {
  readonly leaf: true;
  handles: Int32Array;
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
  return { leaf: true, handles: new Int32Array(LEAF_CAPACITY), count: 0, next: undefined, previous: undefined, parent: undefined };
}

/** Where a cursor stands: a leaf and a slot in it. */
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
    // Leaves: handles plus ~80 bytes of object; inner nodes are few (1 per 64 leaves).
    const leaves = Math.ceil(this.size / (LEAF_CAPACITY * 0.7)) + 1;
    return this.#hash.memoryBytes + leaves * (LEAF_CAPACITY * 4 + 80);
  }

  find(key: Uint8Array): number {
    return this.#hash.find(key);
  }

  findOrInsert(key: Uint8Array): number {
    const sizeBefore = this.#hash.size;
    const handle = this.#hash.findOrInsert(key);
    if (this.#hash.size !== sizeBefore) {
      this.#insertHandle(key, handle);
      this.version++;
    }
    return handle;
  }

  remove(key: Uint8Array): boolean {
    const handle = this.#hash.find(key);
    if (handle < 0) return false;
    this.#removeHandle(key, handle);
    this.#hash.remove(key);
    this.version++;
    return true;
  }

  forEachHandle(visit: (handle: number) => void): void {
    for (let leaf: Leaf | undefined = this.#first; leaf !== undefined; leaf = leaf.next) {
      for (let slot = 0; slot < leaf.count; slot++) visit(leaf.handles[slot]!);
    }
  }

  // ---- tree maintenance ----------------------------------------------------------------------

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

  /** First slot in `leaf` whose key is ≥ `key` (or > when `strict`). */
  #slotIn(leaf: Leaf, key: Uint8Array, strict: boolean): number {
    let low = 0;
    let high = leaf.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const comparison = compareKeys(this.#keyOf(leaf.handles[middle]!), key);
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
    leaf.count++;
    if (leaf.count === LEAF_CAPACITY) this.#splitLeaf(leaf);
  }

  #splitLeaf(leaf: Leaf): void {
    const right = newLeaf();
    const half = leaf.count >>> 1;
    right.handles.set(leaf.handles.subarray(half, leaf.count));
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

  /**
   * Handles in key order within bounds, robust to mutation between steps. `lower`/`upper` are
   * inclusive unless the matching `exclusive` flag is set.
   */
  *handles(bounds: {
    lower?: Uint8Array | undefined;
    lowerExclusive?: boolean;
    upper?: Uint8Array | undefined;
    upperExclusive?: boolean;
    reverse?: boolean;
  }): Generator<number, void, undefined> {
    const { lower, upper, reverse = false } = bounds;
    const lowerExclusive = bounds.lowerExclusive ?? false;
    const upperExclusive = bounds.upperExclusive ?? false;
    let position = reverse ? this.#seekBackward(upper, upperExclusive) : this.#seekForward(lower, lowerExclusive);
    let version = this.version;
    let lastKey: Uint8Array | undefined;
    for (;;) {
      if (version !== this.version) {
        // The tree changed while the caller held the iterator: find our place again by key.
        position = reverse
          ? lastKey === undefined ? this.#seekBackward(upper, upperExclusive) : this.#seekBackward(lastKey, true)
          : lastKey === undefined ? this.#seekForward(lower, lowerExclusive) : this.#seekForward(lastKey, true);
        version = this.version;
      }
      if (position === undefined) return;
      const handle = position.leaf.handles[position.slot]!;
      const key = this.#keyOf(handle);
      if (!reverse && upper !== undefined) {
        const comparison = compareKeys(key, upper);
        if (comparison > 0 || (upperExclusive && comparison === 0)) return;
      }
      if (reverse && lower !== undefined) {
        const comparison = compareKeys(key, lower);
        if (comparison < 0 || (lowerExclusive && comparison === 0)) return;
      }
      lastKey = key.slice();
      yield handle;
      if (version !== this.version) continue;
      position = reverse ? this.#stepBackward(position) : this.#stepForward(position);
    }
  }

  #stepForward(position: Position): Position | undefined {
    let { leaf, slot } = position;
    slot++;
    let current: Leaf | undefined = leaf;
    while (current !== undefined && slot >= current.count) {
      current = current.next;
      slot = 0;
    }
    return current === undefined ? undefined : { leaf: current, slot };
  }

  #stepBackward(position: Position): Position | undefined {
    let current: Leaf | undefined = position.leaf;
    let slot = position.slot - 1;
    while (current !== undefined && slot < 0) {
      current = current.previous;
      slot = current === undefined ? -1 : current.count - 1;
    }
    return current === undefined ? undefined : { leaf: current, slot };
  }
}
