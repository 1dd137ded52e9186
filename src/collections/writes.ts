/**
 * @internal The write path every collection shares: keys and values checked, values encoded, the
 * value being replaced read only when the write hook wants it, and each mutation committed to the
 * engine — one put or delete on its allocation-free path when no hook watches, else as a group that
 * the hook is told about afterwards (src/collections/write-hook.ts).
 */
import { checkBytes } from '../config.js';
import type { Engine, WriteOperation } from '../engine/engine.js';
import { armdbError } from '../errors.js';
import { copyBytes, equalBytes } from '../format/bytes.js';
import { runTransaction, type StagedMutations, type Transaction, type TransactionHost } from './transaction.js';
import type { ValueHandler } from './values.js';
import type { WriteHookPolicy } from './write-hook.js';

const latin1 = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');

/** @internal Writes of one collection; keys given to the mutation methods are checked already. */
export class CollectionWrites<V> implements TransactionHost<V> {
  readonly #engine: Engine;
  readonly #values: ValueHandler<V>;
  readonly #hooks: WriteHookPolicy<V>;

  constructor(engine: Engine, values: ValueHandler<V>, hooks: WriteHookPolicy<V>) {
    this.#engine = engine;
    this.#values = values;
    this.#hooks = hooks;
  }

  get wantsOldValue(): boolean {
    return this.#hooks.wantsOldValue;
  }

  checkKey(key: unknown): Uint8Array {
    return checkBytes('key', key, this.#engine.keySize);
  }

  shardOf(key: Uint8Array): number {
    return this.#engine.shardOf(key);
  }

  readBytes(key: Uint8Array): Uint8Array | undefined {
    return this.#engine.get(key);
  }

  decode(bytes: Uint8Array): V {
    return this.#values.decode(bytes);
  }

  encode(value: V): Uint8Array {
    return this.#values.encode(value);
  }

  /** Encodes `value` and checks it against `maxValueBytes` (`ARMDB_VALUE_TOO_LARGE`). */
  encodeChecked(value: V): Uint8Array {
    const bytes = this.encode(value);
    const maxValueBytes = this.#engine.options.maxValueBytes;
    if (bytes.length > maxValueBytes)
      throw armdbError('ARMDB_VALUE_TOO_LARGE', `a ${bytes.length}-byte value exceeds maxValueBytes (${maxValueBytes})`);
    return bytes;
  }

  put(key: Uint8Array, value: V): void {
    const bytes = this.encodeChecked(value);
    this.#commitOne(key, bytes, this.#oldValue(key), value);
  }

  insert(key: Uint8Array, value: V): void {
    const bytes = this.encodeChecked(value);
    if (this.#engine.has(key)) throw armdbError('ARMDB_KEY_EXISTS', 'the key is already present');
    this.#commitOne(key, bytes, undefined, value);
  }

  delete(key: Uint8Array): boolean {
    if (!this.#engine.has(key)) return false;
    this.#commitOne(key, undefined, this.#oldValue(key), undefined);
    return true;
  }

  cas(key: Uint8Array, expected: V, next: V): void {
    const expectedBytes = this.encode(expected);
    const nextBytes = this.encodeChecked(next);
    const current = this.readBytes(key);
    if (current === undefined) throw armdbError('ARMDB_KEY_NOT_FOUND', 'cas of an absent key');
    if (!equalBytes(current, expectedBytes)) throw armdbError('ARMDB_CAS_MISMATCH', 'the current value differs from the expected one');
    const old = this.wantsOldValue ? this.decode(current) : undefined;
    this.#commitGroup(this.shardOf(key), { operations: [{ key, value: nextBytes }], oldValues: [old], newValues: [next] });
  }

  /** `update` (the value now stored) or `fetchUpdate` (the previous value) of a checked key. */
  update(key: Uint8Array, fn: (current: V) => V | undefined, returnPrevious: boolean): V | undefined {
    if (typeof fn !== 'function') throw new TypeError('"fn" expected function');
    const currentBytes = this.readBytes(key);
    if (currentBytes === undefined) return undefined;
    const current = this.decode(currentBytes);
    const next = fn(this.decode(copyBytes(currentBytes)));
    if (next === undefined) return current;
    const nextBytes = this.encodeChecked(next);
    const old = this.wantsOldValue ? current : undefined;
    this.#commitGroup(this.shardOf(key), { operations: [{ key, value: nextBytes }], oldValues: [old], newValues: [next] });
    return returnPrevious ? current : this.decode(nextBytes);
  }

  /** Runs `fn` over a transaction on `shard` and commits what it staged as one crash-atomic group. */
  atomic<R>(shard: number, fn: (tx: Transaction<V>) => R): R {
    const { result, staged } = runTransaction(this, shard, fn);
    if (staged.operations.length > 0) this.#commitGroup(shard, staged);
    return result;
  }

  /**
   * Puts and deletes (`value` undefined) applied in order as one crash-atomic group on `shard`: what
   * `atomic` does for a callback that only writes, without a transaction's read overlay and copies
   * (armdb/level's batches). Every key and value is checked before anything is applied. A delete of a
   * key that is absent and not put earlier in the group is dropped, as `tx.delete` drops it. When a
   * write hook watches, it runs as a transaction, so the hook sees what it sees there.
   */
  group(shard: number, operations: readonly { readonly key: Uint8Array; readonly value: V | undefined }[]): void {
    if (this.#hooks.watchesWrites) {
      this.atomic(shard, (tx) => {
        for (const { key, value } of operations) value === undefined ? tx.delete(key) : tx.put(key, value);
      });
      return;
    }
    const staged: WriteOperation[] = [];
    /** Keys put so far in the group, built at the first delete of an absent key. */
    let putKeys: Set<string> | undefined;
    for (const operation of operations) {
      const key = this.checkKey(operation.key);
      if (this.shardOf(key) !== shard)
        throw armdbError('ARMDB_SHARD_MISMATCH', "a key of the group routes to another shard than the group's");
      if (operation.value === undefined) {
        if (!this.#engine.has(key)) {
          putKeys ??= new Set(staged.filter((staging) => staging.value !== undefined).map((staging) => latin1(staging.key)));
          if (!putKeys.has(latin1(key))) continue;
        }
        staged.push({ key, value: undefined });
      } else {
        staged.push({ key, value: this.encodeChecked(operation.value) });
        putKeys?.add(latin1(key));
      }
    }
    if (staged.length > 0) this.#engine.commit(shard, staged);
  }

  #oldValue(key: Uint8Array): V | undefined {
    if (!this.wantsOldValue) return undefined;
    const bytes = this.readBytes(key);
    return bytes === undefined ? undefined : this.decode(bytes);
  }

  #commitGroup(shard: number, staged: StagedMutations<V>): void {
    this.#engine.commit(shard, staged.operations);
    this.#hooks.committed(staged.operations, staged.oldValues, staged.newValues);
  }

  /** One put or delete: the allocation-free path when no hook watches. */
  #commitOne(key: Uint8Array, bytes: Uint8Array | undefined, oldValue: V | undefined, newValue: V | undefined): void {
    const shard = this.shardOf(key);
    if (this.#hooks.watchesWrites) {
      const operations: WriteOperation[] = [{ key, value: bytes }];
      this.#commitGroup(shard, { operations, oldValues: [oldValue], newValues: [newValue] });
      return;
    }
    this.#engine.commitOne(shard, key, bytes);
  }
}
