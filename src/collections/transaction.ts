/**
 * The transaction of {@link Collection.atomic | atomic()}: reads through an overlay of the mutations
 * staged so far, checks that every key routes to the transaction's shard, and collects the staged
 * mutations (with the old and new values the write hook is to see) for one crash-atomic commit.
 */
import type { WriteOperation } from '../engine/engine.js';
import { armdbError } from '../errors.js';
import { copyBytes } from '../format/bytes.js';

/**
 * The view of the store an {@link Collection.atomic | atomic()} callback works with. Reads see the
 * store plus the mutations staged earlier in the same transaction; mutations are staged and applied
 * together when the callback returns (or dropped, all of them, if it throws).
 *
 * Every key must route to the same shard as the transaction's key, otherwise the call throws
 * `ARMDB_SHARD_MISMATCH` (use `shardPrefixBits` so related keys share a shard). Using `tx` after the
 * callback has returned throws `ARMDB_CLOSED`. Keys are checked like the collection's own methods
 * (TypeError/RangeError for a wrong type or size).
 *
 * @example
 * ```ts
 * db.atomic(orderKey, (tx) => {
 *   if (tx.has(orderKey)) return false;        // nothing staged: nothing written
 *   tx.insert(orderKey, order);
 *   tx.delete(cartKey);                        // same shard as orderKey
 *   return true;
 * });
 * ```
 */
export interface Transaction<V> {
  /**
   * The value of `key` as this transaction sees it: a value staged earlier in the transaction, else
   * the stored one; undefined if absent or deleted earlier in the transaction.
   */
  get(key: Uint8Array): V | undefined;
  /** Whether `key` is present as this transaction sees it (staged mutations included). */
  has(key: Uint8Array): boolean;
  /**
   * Stages an insert-or-overwrite of `key`. Throws `ARMDB_VALUE_TOO_LARGE` if the encoded value is
   * longer than `maxValueBytes`; nothing is written until the callback returns.
   */
  put(key: Uint8Array, value: V): void;
  /** Throws ARMDB_KEY_EXISTS if the key is present (in the store or earlier in this transaction). */
  insert(key: Uint8Array, value: V): void;
  /**
   * Stages a delete of `key`. Returns whether the key was present as this transaction sees it; when
   * it was not, nothing is staged.
   */
  delete(key: Uint8Array): boolean;
}

/** @internal What a transaction needs from its collection. */
export interface TransactionHost<V> {
  /** Checks a key's type and size (TypeError/RangeError). */
  checkKey(key: unknown): Uint8Array;
  shardOf(key: Uint8Array): number;
  /** The stored bytes of a checked key, or undefined. */
  readBytes(key: Uint8Array): Uint8Array | undefined;
  decode(bytes: Uint8Array): V;
  /** Encodes a value and checks it against `maxValueBytes`. */
  encodeChecked(value: V): Uint8Array;
  /** Whether the write hook is to see old values (so staging reads them). */
  readonly wantsOldValue: boolean;
}

/** @internal The mutations a transaction staged, in order, with the values the write hook is to see. */
export interface StagedMutations<V> {
  readonly operations: WriteOperation[];
  readonly oldValues: (V | undefined)[];
  readonly newValues: (V | undefined)[];
}

const latin1 = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');

/**
 * @internal Runs `fn` over a new transaction on `shard` and returns its result with what it staged.
 * The transaction ends when `fn` returns or throws; a promise returned by `fn` is refused (TypeError,
 * nothing staged is to be applied).
 */
export function runTransaction<V, R>(
  host: TransactionHost<V>,
  shard: number,
  fn: (tx: Transaction<V>) => R,
): { result: R; staged: StagedMutations<V> } {
  const staged: StagedMutations<V> = { operations: [], oldValues: [], newValues: [] };
  const overlay = new Map<string, Uint8Array | null>();
  let open = true;
  const checkKey = (candidate: Uint8Array): Uint8Array => {
    if (!open) throw armdbError('ARMDB_CLOSED', 'the transaction has ended');
    const checked = host.checkKey(candidate);
    if (host.shardOf(checked) !== shard)
      throw armdbError('ARMDB_SHARD_MISMATCH', "a key inside atomic() routes to another shard than the transaction's key");
    return checked;
  };
  const currentBytes = (checked: Uint8Array): Uint8Array | undefined => {
    const pending = overlay.get(latin1(checked));
    if (pending !== undefined) return pending ?? undefined;
    return host.readBytes(checked);
  };
  const stage = (checked: Uint8Array, bytes: Uint8Array | undefined, value: V | undefined): void => {
    const previous = host.wantsOldValue ? currentBytes(checked) : undefined;
    staged.oldValues.push(previous === undefined ? undefined : host.decode(previous));
    staged.newValues.push(value);
    const keyCopy = copyBytes(checked);
    staged.operations.push({ key: keyCopy, value: bytes });
    overlay.set(latin1(keyCopy), bytes ?? null);
  };
  const tx = transactionOver(host, checkKey, currentBytes, stage);
  let result: R;
  try {
    result = fn(tx);
  } finally {
    open = false;
  }
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    throw new TypeError('atomic() callbacks must be synchronous; nothing was applied');
  }
  return { result, staged };
}

/** The callback's `tx`: plain functions (they may be passed around detached from `tx`). */
function transactionOver<V>(
  host: TransactionHost<V>,
  checkKey: (candidate: Uint8Array) => Uint8Array,
  currentBytes: (checked: Uint8Array) => Uint8Array | undefined,
  stage: (checked: Uint8Array, bytes: Uint8Array | undefined, value: V | undefined) => void,
): Transaction<V> {
  return {
    get: (candidate) => {
      const bytes = currentBytes(checkKey(candidate));
      return bytes === undefined ? undefined : host.decode(bytes);
    },
    has: (candidate) => currentBytes(checkKey(candidate)) !== undefined,
    put: (candidate, value) => {
      const checked = checkKey(candidate);
      const bytes = host.encodeChecked(value);
      stage(checked, copyBytes(bytes), value);
    },
    insert: (candidate, value) => {
      const checked = checkKey(candidate);
      const bytes = host.encodeChecked(value);
      if (currentBytes(checked) !== undefined) throw armdbError('ARMDB_KEY_EXISTS', 'the key is already present');
      stage(checked, copyBytes(bytes), value);
    },
    delete: (candidate) => {
      const checked = checkKey(candidate);
      if (currentBytes(checked) === undefined) return false;
      stage(checked, undefined, undefined);
      return true;
    },
  };
}
