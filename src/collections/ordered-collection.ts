/**
 * Ordered iteration of the Tree collections (SPEC §3): `range`, `keys`, `values`, `prefix`, `first`,
 * `last`. Iterators are synchronous, yield copies, and stay correct while the tree is mutated: every
 * key present for the whole iteration is yielded exactly once, in order (src/index/ordered-index.ts).
 */
import { checkBytes, checkInteger } from '../config.js';
import { armdbError } from '../errors.js';
import type { CursorBounds, OrderedIndex } from '../index/ordered-index.js';
import type { WriteHook } from '../config.js';
import type { Engine } from '../engine/engine.js';
import { Collection } from './collection.js';
import { ScanBatch, ScanParts } from './scan-batch.js';
import type { ValueHandler } from './values.js';

/** Bounds and direction of a range. At most one of `gt`/`gte` and one of `lt`/`lte`. */
export interface RangeOptions {
  /** Keys greater than this. */
  readonly gt?: Uint8Array;
  /** Keys greater than or equal to this. */
  readonly gte?: Uint8Array;
  /** Keys less than this. */
  readonly lt?: Uint8Array;
  /** Keys less than or equal to this. */
  readonly lte?: Uint8Array;
  /** Largest key first. */
  readonly reverse?: boolean;
  /** Stop after this many entries. */
  readonly limit?: number;
}

/** Direction and count of a {@link OrderedCollection.prefix | prefix} scan. */
export interface PrefixOptions {
  /** Largest matching key first. Default false (ascending bytewise order). */
  readonly reverse?: boolean;
  /**
   * Stop after this many entries: an integer 0..`Number.MAX_SAFE_INTEGER` (TypeError/RangeError
   * otherwise). Default: no limit.
   */
  readonly limit?: number;
}

/**
 * A synchronous iterator that can be closed early with `return()` or `using`. `for … of` calls
 * `return()` for you when the loop exits early (`break`, `return`, a thrown error). `next()` throws
 * `ARMDB_CLOSED` if the collection was closed during the iteration.
 *
 * @example
 * ```ts
 * using entries = tree.range({ gte: from });
 * const first = entries.next();      // manual stepping; `using` closes the iterator at scope end
 * ```
 */
export interface EntryIterator<T> extends IterableIterator<T> {
  /**
   * Ends the iteration early: releases the cursor, and every later `next()` returns
   * `{ done: true }`. The argument is ignored. Safe to call more than once.
   */
  return(value?: unknown): IteratorResult<T, undefined>;
  /** Same as {@link EntryIterator.return | return()}, for `using iterator = tree.range(…)`. */
  [Symbol.dispose](): void;
}

type Bounds = CursorBounds;

/**
 * Base of {@link VarTree}, {@link ConstTree} and {@link TypedTree}: everything {@link Collection}
 * has, plus ordered reads. Keys compare bytewise (as unsigned bytes, like `Buffer.compare`), so
 * big-endian integers from {@link keys} sort numerically. Iterators are synchronous, yield copies of
 * the keys, and stay valid while the tree is mutated: every key present for the whole iteration is
 * yielded exactly once, in order.
 *
 * @example
 * ```ts
 * function latest(tree: OrderedCollection<Uint8Array>, count: number): [Uint8Array, Uint8Array][] {
 *   return [...tree.range({ reverse: true, limit: count })];   // the `count` largest keys
 * }
 * ```
 */
export abstract class OrderedCollection<V> extends Collection<V> {
  /** @internal */
  protected constructor(engine: Engine, hook: WriteHook<V> | undefined, values: ValueHandler<V>) {
    super(engine, hook, values);
    // The keys recovery found sit in sorted runs: merge them while the caller warms up.
    this.engine.ordered?.mergeInBackground();
  }

  /** @internal */
  protected get ordered(): OrderedIndex {
    return this.engine.ordered!;
  }

  #bounds(options: RangeOptions | undefined): { bounds: Bounds; limit: number } {
    if (options === undefined) return { bounds: {}, limit: Infinity };
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected { gt, gte, lt, lte, reverse, limit }');
    if (options.gt !== undefined && options.gte !== undefined) throw new TypeError('"gt" and "gte" cannot both be given');
    if (options.lt !== undefined && options.lte !== undefined) throw new TypeError('"lt" and "lte" cannot both be given');
    const keySize = this.engine.keySize;
    const lowerKey = options.gt ?? options.gte;
    const upperKey = options.lt ?? options.lte;
    const bounds: Bounds = {
      lower: lowerKey === undefined ? undefined : checkBytes(options.gt !== undefined ? 'gt' : 'gte', lowerKey, keySize),
      lowerExclusive: options.gt !== undefined,
      upper: upperKey === undefined ? undefined : checkBytes(options.lt !== undefined ? 'lt' : 'lte', upperKey, keySize),
      upperExclusive: options.lt !== undefined,
      reverse: options.reverse === undefined ? false : Boolean(options.reverse),
    };
    const limit = options.limit === undefined ? Infinity : checkInteger('limit', options.limit, 0, Number.MAX_SAFE_INTEGER);
    return { bounds, limit };
  }

  /**
   * Ends background work of the ordered index (merging its runs) before the engine closes.
   *
   * @example
   * ```ts
   * await tree.close();
   * ```
   */
  override close(): Promise<void> {
    this.engine.ordered?.stopMerging();
    return super.close();
  }

  /**
   * The values of `handles[0..count)` into `values`, as {@link Collection.valueOfHandle} gives each:
   * one by one here; VarTree reads raw bytes in one batched pass of the engine.
   *
   * @internal
   */
  protected valuesOfHandles(handles: Int32Array, count: number, values: V[]): void {
    for (let position = 0; position < count; position++) values[position] = this.valueOfHandle(handles[position]!);
  }

  /**
   * An iterator that reads ahead in batches (see {@link ScanBatch}): `project` makes the item from a
   * key (undefined when `parts` has no keys) and a value (undefined when it has no values).
   */
  #iterate<T>(bounds: Bounds, limit: number, parts: ScanParts, project: (key: Uint8Array, value: V) => T): EntryIterator<T> {
    const batch = this.scanBatch(bounds, limit, parts);
    let finished = false;
    const finish = (): IteratorResult<T, undefined> => {
      if (!finished) {
        finished = true;
        batch.close();
      }
      return { done: true, value: undefined };
    };
    const iterator: EntryIterator<T> = {
      next: () => {
        if (finished) return { done: true, value: undefined };
        if (this.engine.isClosed) {
          finish();
          throw armdbError('ARMDB_CLOSED', 'the collection was closed during iteration');
        }
        const position = batch.advance();
        if (position < 0) return finish();
        return { done: false, value: project(batch.keys[position]!, batch.values[position]!) };
      },
      return: () => finish(),
      [Symbol.iterator]: () => iterator,
      [Symbol.dispose]: () => {
        finish();
      },
    };
    return iterator;
  }

  /**
   * @internal A batched scan of `bounds` (for armdb/level's iterators, which step it themselves):
   * see src/collections/scan-batch.ts.
   */
  scanBatch(bounds: CursorBounds, limit: number, parts: ScanParts): ScanBatch<V> {
    if (this.engine.isClosed) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    return new ScanBatch<V>(
      this.ordered,
      this.engine,
      (handles, count, values) => this.valuesOfHandles(handles, count, values),
      bounds,
      limit,
      parts,
    );
  }

  #keyCopy(handle: number): Uint8Array {
    return this.engine.index.keyOf(handle);
  }

  /**
   * Entries in key order within bounds.
   *
   * @example
   * ```ts
   * for (const [key, value] of tree.range({ gte: keys.u64(100), lt: keys.u64(200), limit: 10 })) { … }
   * ```
   */
  range(options?: RangeOptions): EntryIterator<[Uint8Array, V]> {
    const { bounds, limit } = this.#bounds(options);
    return this.#iterate(bounds, limit, ScanParts.entries, (key, value) => [key, value]);
  }

  /**
   * Keys in order within bounds; never reads or decrypts a value.
   *
   * @example
   * ```ts
   * const count = [...tree.keys({ gte: keys.u64(100), lt: keys.u64(200) })].length;
   * ```
   */
  keys(options?: RangeOptions): EntryIterator<Uint8Array> {
    const { bounds, limit } = this.#bounds(options);
    return this.#iterate(bounds, limit, ScanParts.keys, (key) => key);
  }

  /**
   * Values in key order within bounds.
   *
   * @example
   * ```ts
   * for (const body of events.values({ reverse: true, limit: 10 })) render(body);   // newest ten
   * ```
   */
  values(options?: RangeOptions): EntryIterator<V> {
    const { bounds, limit } = this.#bounds(options);
    return this.#iterate(bounds, limit, ScanParts.values, (_, value) => value);
  }

  /**
   * Entries whose key starts with `bytes`, in key order. `bytes` may be empty (every entry) and at
   * most `keySize` bytes long (RangeError otherwise).
   *
   * @example
   * ```ts
   * // keys are 4-byte tenant id ‖ 8-byte timestamp
   * for (const [key, value] of tree.prefix(tenantId, { reverse: true, limit: 50 })) { … }
   * ```
   */
  prefix(bytes: Uint8Array, options: PrefixOptions = {}): EntryIterator<[Uint8Array, V]> {
    const keySize = this.engine.keySize;
    const prefix = checkBytes('prefix', bytes);
    if (prefix.length > keySize) throw new RangeError(`"prefix" expected at most ${keySize} bytes, got ${prefix.length}`);
    const lower = new Uint8Array(keySize);
    lower.set(prefix);
    const upper = new Uint8Array(keySize).fill(0xff);
    upper.set(prefix);
    const limit = options.limit === undefined ? Infinity : checkInteger('limit', options.limit, 0, Number.MAX_SAFE_INTEGER);
    return this.#iterate({ lower, upper, reverse: options.reverse === true }, limit, ScanParts.entries, (key, value) => [key, value]);
  }

  /**
   * The entry with the smallest key, or undefined when empty.
   *
   * @example
   * ```ts
   * const oldest = events.first();   // [key, value] | undefined
   * ```
   */
  first(): [Uint8Array, V] | undefined {
    if (this.engine.isClosed) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    const handle = this.ordered.firstHandle();
    return handle < 0 ? undefined : [this.#keyCopy(handle), this.valueOfHandle(handle)];
  }

  /**
   * The entry with the largest key, or undefined when empty.
   *
   * @example
   * ```ts
   * const [newestKey] = events.last() ?? [];
   * ```
   */
  last(): [Uint8Array, V] | undefined {
    if (this.engine.isClosed) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    const handle = this.ordered.lastHandle();
    return handle < 0 ? undefined : [this.#keyCopy(handle), this.valueOfHandle(handle)];
  }
}
