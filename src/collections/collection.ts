/**
 * What every collection shares (SPEC §3): argument checks, the mutation API on top of the engine's
 * crash-atomic write groups, hooks, and lifecycle. Subclasses say how values are checked, encoded and
 * decoded.
 */
import { inspect } from 'node:util';
import { checkBytes, resolveCredential, type EncryptionOption } from '../config.js';
import { checkSlotLabel, type Credential, type KeySlotInfo, wipeCredential } from '../crypto/keys.js';
import type { WriteHook } from '../config.js';
import type { ValueHandler } from './values.js';
import type { Engine } from '../engine/engine.js';
import type { CompactionReport, CompactOptions, Stats, VerifyOptions, VerifyReport } from '../engine/reports.js';
import { Walk } from '../engine/walk.js';
import { copyBytes } from '../format/bytes.js';
import type { Transaction } from './transaction.js';
import { WriteHookPolicy } from './write-hook.js';
import { CollectionWrites } from './writes.js';
import { controllerOf, type Replication } from '../replication/contract.js';

export type { Transaction } from './transaction.js';

/**
 * Base of every collection class: the members {@link VarMap}, {@link ConstMap}, {@link TypedMap} and
 * the Tree collections share — synchronous reads, writes that return once the record is in the
 * shard's write buffer, {@link Collection.sync | sync()} as the durability barrier, and the
 * maintenance operations (compaction, verification, key changes). Not constructed directly: use
 * the `open` of a concrete class. `V` is the value type (`Uint8Array` for the Var and Const
 * collections).
 *
 * Errors are {@link ArmdbError}s with a stable `code`; a wrong argument type is a TypeError, a wrong
 * size or range a RangeError. Reads, writes and maintenance operations throw `ARMDB_CLOSED` once
 * {@link Collection.close | close()} has been called (`close` itself may be called again).
 *
 * @example
 * ```ts
 * async function copyAll(from: Collection<Uint8Array>, to: Collection<Uint8Array>, ids: Uint8Array[]) {
 *   const values = from.getMany(ids);              // sorted I/O, one call
 *   ids.forEach((id, i) => { if (values[i] !== undefined) to.put(id, values[i]); });
 *   await to.sync();                               // durable from here on
 *   return to.stats().keys;
 * }
 * ```
 */
export abstract class Collection<V> {
  /** @internal */
  protected readonly engine: Engine;
  /** @internal */
  protected readonly hook: WriteHook<V> | undefined;
  /** @internal */
  protected readonly valueHandler: ValueHandler<V>;
  readonly #hooks: WriteHookPolicy<V>;
  readonly #writes: CollectionWrites<V>;

  /** @internal */
  protected constructor(engine: Engine, hook: WriteHook<V> | undefined, values: ValueHandler<V>) {
    this.engine = engine;
    this.hook = hook;
    this.valueHandler = values;
    this.#hooks = new WriteHookPolicy(hook);
    this.#writes = new CollectionWrites(engine, values, this.#hooks);
  }

  /** @internal The caller's value of an index entry. Typed collections serve their decoded copy. */
  protected valueOfHandle(handle: number): V {
    return this.valueHandler.decode(this.engine.readHandle(handle));
  }

  /** @internal Calls `hook.onInit` for every live entry (at open), in slices. */
  protected initHook(): Promise<void> {
    return this.#hooks.initAll(this.engine.index, (handle) => this.valueOfHandle(handle));
  }

  /** @internal Checks a key's type and size (TypeError/RangeError). */
  protected checkKey(key: unknown): Uint8Array {
    return checkBytes('key', key, this.engine.keySize);
  }

  /**
   * The value of `key`, or undefined. Synchronous; byte values are fresh copies the caller may mutate
   * (Typed collections return their stored object: treat it as read-only). A copy of 65 bytes to
   * 4 KiB is a range of a shared 8 KiB buffer, as Node's Buffer pool does: pass `value.slice()` to code
   * that reads `value.buffer` (docs/security-model.md §12). Reads that miss the cache
   * authenticate the page first and throw `ARMDB_INTEGRITY` rather than return damaged bytes.
   *
   * @example
   * ```ts
   * const value = db.get(keys.fromString('session-42', 16));
   * if (value !== undefined) console.log(new TextDecoder().decode(value));
   * ```
   */
  get(key: Uint8Array): V | undefined {
    const checkedKey = this.checkKey(key);
    const handle = this.engine.find(checkedKey);
    return handle < 0 ? undefined : this.valueOfHandle(handle);
  }

  /**
   * Whether `key` is present. Never touches disk.
   *
   * @example
   * ```ts
   * if (!db.has(id)) db.put(id, defaults);
   * ```
   */
  has(key: Uint8Array): boolean {
    return this.engine.has(this.checkKey(key));
  }

  /**
   * Values of many keys in one call, in the order of `keys` (undefined for absent ones); I/O is
   * sorted by location on disk, which beats a loop of `get` on a cold cache.
   *
   * @example
   * ```ts
   * const [a, b] = db.getMany([keys.u64(1), keys.u64(2)]);
   * ```
   */
  getMany(keys: readonly Uint8Array[]): (V | undefined)[] {
    if (!Array.isArray(keys)) throw new TypeError('"keys" expected an array of Uint8Array');
    return this.engine
      .getMany(keys.map((key) => this.checkKey(key)))
      .map((bytes) => (bytes === undefined ? undefined : this.valueHandler.decode(bytes)));
  }

  /**
   * Inserts or overwrites. Returns once the record is in the write buffer; `sync()` makes it durable.
   * Throws `ARMDB_VALUE_TOO_LARGE` if the encoded value is longer than `maxValueBytes`, and
   * `ARMDB_POISONED` after an earlier write-path I/O error.
   *
   * @example
   * ```ts
   * db.put(keys.u64(7), new TextEncoder().encode('hello'));
   * await db.sync();   // only now is the write guaranteed to survive a crash
   * ```
   */
  put(key: Uint8Array, value: V): void {
    this.#writes.put(this.checkKey(key), value);
  }

  /**
   * Inserts only if absent; otherwise throws ARMDB_KEY_EXISTS and the old value stays.
   *
   * @example
   * ```ts
   * try {
   *   db.insert(id, value);
   * } catch (error) {
   *   if (!(error instanceof ArmdbError && error.code === 'ARMDB_KEY_EXISTS')) throw error;
   * }
   * ```
   */
  insert(key: Uint8Array, value: V): void {
    this.#writes.insert(this.checkKey(key), value);
  }

  /**
   * Deletes `key`; returns whether it existed. Deleting an absent key writes nothing.
   *
   * @example
   * ```ts
   * if (db.delete(id)) await db.sync();
   * ```
   */
  delete(key: Uint8Array): boolean {
    return this.#writes.delete(this.checkKey(key));
  }

  /**
   * Compare-and-swap: stores `next` only if the current value equals `expected` (byte-wise, after
   * encoding). ARMDB_KEY_NOT_FOUND if absent, ARMDB_CAS_MISMATCH if different.
   *
   * @example
   * ```ts
   * const current = db.get(id)!;
   * db.cas(id, current, next);   // throws ARMDB_CAS_MISMATCH if another write came in between
   * ```
   */
  cas(key: Uint8Array, expected: V, next: V): void {
    this.#writes.cas(this.checkKey(key), expected, next);
  }

  /**
   * `fn(current)` returns the new value, or undefined to leave it. Returns the value now stored, or
   * undefined if the key is absent (then `fn` is not called). `fn` must be synchronous; if it
   * throws, nothing is written and the error propagates.
   *
   * @example
   * ```ts
   * const counter = await TypedMap.open<number>('./counters', { keySize: 8, codec: codecs.json, encryption: { key } });
   * counter.update(keys.u64(1), (n) => n + 1);   // returns the new count, or undefined if absent
   * ```
   */
  update(key: Uint8Array, fn: (current: V) => V | undefined): V | undefined {
    return this.#writes.update(this.checkKey(key), fn, false);
  }

  /**
   * Like {@link update} but returns the previous value (undefined if the key is absent).
   *
   * @example
   * ```ts
   * const before = counter.fetchUpdate(keys.u64(1), (n) => n + 1);
   * ```
   */
  fetchUpdate(key: Uint8Array, fn: (current: V) => V | undefined): V | undefined {
    return this.#writes.update(this.checkKey(key), fn, true);
  }

  /**
   * Runs `fn(tx)` over keys of `key`'s shard and applies all of its mutations as one crash-atomic
   * group, or none if `fn` throws. `fn` must be synchronous.
   *
   * @example
   * ```ts
   * db.atomic(from, (tx) => {
   *   const balance = tx.get(from)!;
   *   tx.put(from, debit(balance));
   *   tx.put(to, credit(tx.get(to)));   // `to` must route to the same shard (shardPrefixBits helps)
   * });
   * ```
   */
  atomic<R>(key: Uint8Array, fn: (tx: Transaction<V>) => R): R {
    const shard = this.engine.shardOf(this.checkKey(key));
    if (typeof fn !== 'function') throw new TypeError('"fn" expected function');
    return this.#writes.atomic(shard, fn);
  }

  /**
   * @internal Puts and deletes (`value` undefined) as one crash-atomic group, all routing to the shard
   * of the first key (`ARMDB_SHARD_MISMATCH` otherwise): `atomic` for writes only, without its read
   * overlay. For armdb/level's batches.
   */
  writeGroup(operations: readonly { readonly key: Uint8Array; readonly value: V | undefined }[]): void {
    const first = operations[0];
    if (first === undefined) return;
    this.#writes.group(this.engine.shardOf(this.checkKey(first.key)), operations);
  }

  /** Number of live keys. */
  get size(): number {
    return this.engine.size;
  }

  /** Whether the collection holds no live key (`size === 0`). Never touches disk. */
  isEmpty(): boolean {
    return this.engine.size === 0;
  }

  /**
   * Seals the complete pages of every write buffer and hands them to the OS (no fsync, the partial
   * last page stays buffered): they then survive the death of the process, not power loss or a
   * kernel crash. Use {@link sync} for durability. Throws `ARMDB_POISONED` after a write-path I/O error.
   *
   * @example
   * ```ts
   * for (const [id, value] of batch) db.put(id, value);
   * db.flush();   // a crash of this process no longer loses the complete pages of the batch
   * ```
   */
  flush(): void {
    this.engine.flush();
  }

  /**
   * Durability barrier: every mutation that returned before the call survives a crash once it resolves.
   * Concurrent calls share one round of fsyncs. Rejects with `ARMDB_POISONED` if an fsync failed
   * (the collection then refuses all writes: close and reopen).
   *
   * @example
   * ```ts
   * db.put(id, value);
   * await db.sync();   // now acknowledge the write to the client
   * ```
   */
  sync(): Promise<void> {
    const controller = controllerOf(this.engine);
    return controller === undefined ? this.engine.sync() : controller.sync();
  }

  /**
   * The replication handle of a collection opened with `replication: natsReplication(…)`
   * (docs/replication.md). TypeError on a collection opened without it.
   *
   * @example
   * ```ts
   * await replica.replication.caughtUp();
   * replica.replication.status();      // { role: 'follower', epoch, appliedSequence, lagMs, leader, error }
   * await replica.replication.promote();
   * ```
   */
  get replication(): Replication {
    const controller = controllerOf(this.engine);
    if (controller === undefined) throw new TypeError('"replication": this collection was opened without a replication option');
    return controller;
  }

  /**
   * Rewrites the live records of files with dead bytes into new files and deletes the old ones, in
   * slices that keep the event loop responsive. With `reencrypt`, also every file not under the
   * active data key. Runs in the background on its own when `autoCompact` is on.
   *
   * An explicit call first seals the active file of every shard that holds data (so everything
   * written so far can be compacted) and makes it durable, then compacts files with at least one
   * page of dead bytes. On a Tree it also rewrites every file whose live records are out of key
   * order, and writes the records in key order, so that ranges read consecutive records afterwards
   * (a store loaded in random order is rewritten once; docs/durability.md §Compaction, "Key order").
   * Rejects with `ARMDB_ABORTED` when `options.signal` fires (files written so far are discarded),
   * `ARMDB_POISONED` after a write-path I/O error.
   *
   * @example
   * ```ts
   * const { bytesReclaimed, shreddedKeyIds } = await db.compact({ reencrypt: true });
   * ```
   */
  compact(options?: CompactOptions): Promise<CompactionReport> {
    return this.engine.compact(options);
  }

  /**
   * Replaces the credential of the key slot that opened the store (its label stays); data files are
   * untouched. Afterwards the old credential fails with ARMDB_WRONG_KEY and the new one opens the
   * store. With one slot the key-encryption key is replaced too (docs/security-model.md §Key slots).
   *
   * @example
   * ```ts
   * await db.changeKey({ key: newKey });            // or { passphrase }, or { provider }
   * ```
   */
  async changeKey(next: Exclude<EncryptionOption, 'none'>): Promise<void> {
    const credential = resolveCredential(next);
    if (credential === undefined) throw new TypeError('"next" expected { key }, { passphrase } or { provider }');
    try {
      await this.engine.changeKey(credential);
    } catch (error) {
      wipeCredential(credential);
      throw error;
    }
  }

  /**
   * Adds a key slot: from now on `credential` opens the store too, beside every other slot (16 at
   * most, labels unique, 1..64 bytes of UTF-8). A passphrase slot costs one scrypt here.
   *
   * @example
   * ```ts
   * await db.addKeySlot({ passphrase: recoveryPhrase }, { label: 'recovery' });
   * const reopened = await VarMap.open(dir, { keySize: 16, encryption: { passphrase: recoveryPhrase, slot: 'recovery' } });
   * ```
   */
  async addKeySlot(credential: Exclude<EncryptionOption, 'none'>, options: { readonly label: string }): Promise<void> {
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected { label }');
    const label = checkSlotLabel('label', options.label);
    const resolved = resolveCredential(credential);
    if (resolved === undefined) throw new TypeError('"credential" expected { key }, { passphrase } or { provider }');
    await this.engine.addKeySlot(resolved, label);
  }

  /**
   * Removes a key slot; the last one cannot be removed (RangeError). With `rotateKek` the
   * key-encryption key is replaced and re-wrapped in every remaining slot, so the removed credential
   * opens no KEYRING written from now on; remaining slots this handle did not open or add need their
   * credentials in `credentials`. What an old KEYRING copy still opens: docs/security-model.md §Key slots.
   *
   * @example
   * ```ts
   * await db.removeKeySlot('laptop', { rotateKek: true, credentials: [{ passphrase: recoveryPhrase }] });
   * ```
   */
  async removeKeySlot(
    label: string,
    options: { readonly rotateKek?: boolean; readonly credentials?: readonly Exclude<EncryptionOption, 'none'>[] } = {},
  ): Promise<void> {
    checkSlotLabel('label', label);
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected { rotateKek?, credentials? }');
    if (options.rotateKek !== undefined && typeof options.rotateKek !== 'boolean')
      throw new TypeError('"options.rotateKek" expected boolean');
    const credentials: Credential[] = [];
    try {
      for (const credential of options.credentials ?? []) {
        const resolved = resolveCredential(credential);
        if (resolved !== undefined) credentials.push(resolved);
      }
    } catch (error) {
      for (const credential of credentials) wipeCredential(credential);
      throw error;
    }
    await this.engine.removeKeySlot(label, { rotateKek: options.rotateKek === true, credentials });
  }

  /**
   * The key slots: label, kind (`'key'`, `'passphrase'`, `'provider'`), creation time and, for a
   * provider slot, the provider's id. Never a secret.
   *
   * @example
   * ```ts
   * for (const slot of db.keySlots()) console.log(slot.label, slot.kind, new Date(slot.createdAtMs));
   * ```
   */
  keySlots(): KeySlotInfo[] {
    return this.engine.keySlots();
  }

  /**
   * Makes a new data key active for files written from now on. `compact({ reencrypt: true })` then
   * rewrites older files under it and removes the old key from the keyring (crypto-shredding).
   * Rejects with `ARMDB_FORMAT_MISMATCH` on a store created with `encryption: 'none'`.
   *
   * @example
   * ```ts
   * await db.rotateDataKey();
   * await db.compact({ reencrypt: true });   // old data key is shredded once no file uses it
   * ```
   */
  rotateDataKey(): Promise<void> {
    return this.engine.rotateDataKey();
  }

  /**
   * Loads every live value into the cache: the pages of small values, then values spanning more than
   * two pages whole (sorted I/O, bounded by `cacheBytes`). A
   * no-op for Const and Typed collections, whose values are in memory already. Rejects with
   * `ARMDB_ABORTED` when `options.signal` fires.
   *
   * @example
   * ```ts
   * await db.warmup({ signal: AbortSignal.timeout(5_000) });
   * ```
   */
  warmup(options?: { readonly signal?: AbortSignal }): Promise<void> {
    return this.engine.warmup(options);
  }

  /**
   * Walks every entry once: `fn(key, value)` returns `'keep'`, `'delete'`, or a new value. Calls the
   * hook's `onInit` for kept entries and returns the number of mutations. Works in slices, one handle
   * after another, without first copying all keys (armdb's memory spike).
   *
   * @example
   * ```ts
   * const changed = await users.migrate((key, user) => (user.legacy ? 'delete' : 'keep'));
   * ```
   */
  async migrate(
    fn: (key: Uint8Array, value: V) => 'keep' | 'delete' | V,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<number> {
    if (typeof fn !== 'function') throw new TypeError('"fn" expected function');
    const index = this.engine.index;
    let mutations = 0;
    await new Walk({ operation: 'migrate', signal: options.signal }).each(index.liveHandles(), (handle) => {
      const key = index.keyOf(handle);
      const value = this.valueOfHandle(handle);
      const outcome = fn(copyBytes(key), value);
      if (outcome === 'keep') this.#hooks.init(key, value);
      else if (outcome === 'delete') {
        this.delete(key);
        mutations++;
      } else {
        this.put(key, outcome);
        mutations++;
      }
    });
    return mutations;
  }

  /**
   * Authenticates every page of every file; the report lists each failure with file and page.
   * Damaged pages are reported, not thrown; rejects with `ARMDB_ABORTED` when `options.signal` fires.
   *
   * @example
   * ```ts
   * const report = await db.verify({ onProgress: ({ pagesDone, pagesTotal }) => bar.update(pagesDone / pagesTotal) });
   * if (!report.ok) console.error(report.failures);
   * ```
   */
  verify(options?: VerifyOptions): Promise<VerifyReport> {
    return this.engine.verify(options);
  }

  /**
   * Counters and gauges (SPEC §8): a fresh snapshot on every call; see {@link Stats} for each field.
   *
   * @example
   * ```ts
   * const { keys: live, deadBytes, totalBytes } = db.stats();
   * ```
   */
  stats(): Stats {
    return this.engine.stats();
  }

  /**
   * Syncs, seals the active files and releases the directory lock. Idempotent. A running compaction
   * is stopped first.
   *
   * @example
   * ```ts
   * try { … } finally { await db.close(); }
   * ```
   */
  close(): Promise<void> {
    const controller = controllerOf(this.engine);
    return controller === undefined ? this.engine.close() : controller.close();
  }

  /**
   * `await using db = await VarMap.open(…)` closes it at the end of the scope.
   *
   * @example
   * ```ts
   * {
   *   await using db = await VarMap.open('./data', { keySize: 16, encryption: { key } });
   *   db.put(id, value);
   * } // closed (synced, sealed, unlocked) here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Shows the kind, directory and size only — never keys or values (util.inspect, console.log). */
  [inspect.custom](): string {
    return `${this.constructor.name} { directory: ${JSON.stringify(this.engine.directory)}, size: ${this.engine.isClosed ? 'closed' : this.engine.size} }`;
  }

  /**
   * `{ kind, directory }` for `JSON.stringify` — e.g. `{"kind":"VarMap","directory":"/data/sessions"}`.
   * Never includes keys, values or key material, so a collection can safely appear in logged objects.
   */
  toJSON(): object {
    return { kind: this.constructor.name, directory: this.engine.directory };
  }

  /** `[VarMap /data/sessions]`: the class name and directory only, never keys or values. */
  toString(): string {
    return `[${this.constructor.name} ${this.engine.directory}]`;
  }
}
