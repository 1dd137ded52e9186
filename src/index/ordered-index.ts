/**
 * The ordered index of the Tree collections: the hash index for point lookups (so a Tree `get` costs
 * what a Map `get` costs) plus a B+ tree over entry handles for order, seeks and cursors
 * (src/index/handle-tree.ts, src/index/cursor.ts).
 *
 * A new index defers the tree: inserts and removals go to the hash index only until the first
 * operation that needs order, which sorts the handles (radix sorts on the key bytes) and builds
 * the tree bottom-up with leaves three quarters full. Recovery inserts every key of the store before
 * anything asks for order, and one sort plus one pass costs a fraction of a million random inserts.
 */
import { assert } from '../assert.js';
import { type Cursor, type CursorBounds, closeCursor, newCursor, nextHandle } from './cursor.js';
import { HandleTree, LEAF_CAPACITY, type Leaf } from './handle-tree.js';
import { HashIndex } from './hash-index.js';
import { sortHandlesByKey } from './key-order.js';
import { KeyIndex, type KeySource } from './key-index.js';

export type { Cursor, CursorBounds } from './cursor.js';

export class OrderedIndex extends KeyIndex {
  readonly #hash: HashIndex;
  readonly #tree: HandleTree;
  /** Grows with every insert or removal; cursors compare it to know when to re-seek. */
  version = 0;
  /** True until the tree is first needed: the hash index alone holds the keys. */
  #deferred = true;

  constructor(keySize: number, options: { valueSize?: number; keepsObjects?: boolean } = {}) {
    const hash = new HashIndex(keySize, options);
    super(hash.entries);
    this.#hash = hash;
    this.#tree = new HandleTree(hash.entries);
  }

  override get size(): number {
    return this.#hash.size;
  }

  override get memoryBytes(): number {
    // Leaves: handles and key prefixes plus ~80 bytes of object; inner nodes are few (1 per 64 leaves).
    const leaves = Math.ceil(this.size / (LEAF_CAPACITY * 0.7)) + 1;
    return this.#hash.memoryBytes + leaves * (LEAF_CAPACITY * 8 + 80);
  }

  override find(key: Uint8Array): number {
    return this.#hash.find(key);
  }

  override findOrInsert(key: Uint8Array): number {
    const sizeBefore = this.#hash.size;
    const handle = this.#hash.findOrInsert(key);
    if (this.#hash.size !== sizeBefore) {
      if (!this.#deferred) this.#tree.insert(key, handle);
      this.version++;
    }
    return handle;
  }

  /** Bulk path for open (src/index/hash-index.ts): while the tree is deferred, the hash index alone takes the keys. */
  override reserve(count: number): void {
    this.#hash.reserve(count);
  }

  override findOrInsertMany(sources: readonly KeySource[]): Int32Array {
    if (!this.#deferred) return super.findOrInsertMany(sources);
    const handles = this.#hash.findOrInsertMany(sources);
    this.version++;
    return handles;
  }

  override remove(key: Uint8Array): boolean {
    const handle = this.#hash.find(key);
    if (handle < 0) return false;
    if (!this.#deferred) this.#tree.remove(key, handle);
    this.#hash.remove(key);
    this.version++;
    return true;
  }

  /** Visits every handle in key order; the callback must not insert or remove. */
  override forEachHandle(visit: (handle: number) => void): void {
    this.#buildIfDeferred();
    for (let leaf: Leaf | undefined = this.#tree.firstLeaf; leaf !== undefined; leaf = leaf.next) {
      for (let slot = 0; slot < leaf.count; slot++) visit(leaf.handles[slot]!);
    }
  }

  #buildIfDeferred(): void {
    if (!this.#deferred) return;
    const entries = this.entries;
    const handles = new Int32Array(this.#hash.size);
    let count = 0;
    this.#hash.forEachHandle((handle) => {
      handles[count++] = handle;
    });
    assert(count === handles.length, 'the hash index visits each of its entries once');
    sortHandlesByKey(handles, entries.keys, entries.keySize);
    this.#tree.load(handles);
    // Only now: a build that threw (out of memory) leaves the index deferred, still whole.
    this.#deferred = false;
  }

  /** Handle of the smallest key, or -1. */
  firstHandle(): number {
    this.#buildIfDeferred();
    const position = this.#tree.seekForward(undefined, false);
    return position === undefined ? -1 : position.leaf.handles[position.slot]!;
  }

  /** Handle of the largest key, or -1. */
  lastHandle(): number {
    this.#buildIfDeferred();
    const position = this.#tree.seekBackward(undefined, false);
    return position === undefined ? -1 : position.leaf.handles[position.slot]!;
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
    this.#buildIfDeferred();
    return nextHandle(cursor, this.#tree, this.version, this.entries);
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
