/**
 * {@link ArmdbLevel}: an `abstract-level` 3 database over a {@link VarTree} (SPEC §12,
 * docs/level.md). Level keys are encoded order-preserving into `keySize` bytes
 * (src/level/key-codec.ts); iterators read an implicit snapshot (src/level/snapshot.ts) and reads
 * may name an explicit one (src/level/explicit-snapshot.ts); batches and clears are crash-atomic
 * write groups, which is why the store has exactly one shard.
 */
import { join } from 'node:path';
import {
  AbstractIterator,
  AbstractKeyIterator,
  AbstractLevel,
  AbstractValueIterator,
  type AbstractDatabaseOptions,
  type AbstractIteratorOptions,
  type AbstractKeyIteratorOptions,
  type AbstractValueIteratorOptions,
} from 'abstract-level';
import { DEFAULTS, type OpenOptions } from '../config.js';
import { VarTree } from '../collections/var-tree.js';
import { MANIFEST_NAME } from '../engine/paths.js';
import { ArmdbError } from '../errors.js';
import { Limits } from '../format/constants.js';
import { RECORD_HEADER_BYTES, recordBytes } from '../format/record.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { toLevelError, levelError } from './errors.js';
import { decodeLevelKey, encodeBound, encodeLevelKey, levelKeyCapacity, type EncodedBound } from './key-codec.js';
import { ArmdbSnapshot } from './explicit-snapshot.js';
import { SnapshotReader, type ReaderRange } from './snapshot.js';

/** Upper bound of one atomic group of `clear()`, in bytes of tombstone records (see `clearGroupBytes`). */
const CLEAR_GROUP_MAX_BYTES = 64 * 2 ** 20;

/** Default `keySize` of an {@link ArmdbLevel}: Level keys of up to 63 bytes. */
export const DEFAULT_LEVEL_KEY_SIZE = 64;

/**
 * Options of {@link ArmdbLevel}: Level's (`keyEncoding`, `valueEncoding`, `createIfMissing`,
 * `errorIfExists`) and armdb's `open` options, except `hook` (Level has its own hooks) and the
 * routing options: an ArmdbLevel store has one shard, so that every batch is one atomic group.
 */
export interface ArmdbLevelOptions<K = string, V = string>
  extends AbstractDatabaseOptions<K, V>,
    Omit<OpenOptions, 'keySize' | 'hook' | 'shards' | 'shardPrefixBits'> {
  /**
   * Bytes of every stored key, 2..1024, immutable once the store exists. Level keys of up to
   * `keySize − 1` bytes fit (`keySize − 2` above 256); a longer key is refused. Default 64.
   */
  readonly keySize?: number;
  /** Must be 1 (or absent): a batch is atomic only within one shard. */
  readonly shards?: 1;
}

/**
 * The options that go to armdb's `open`; every other one is Level's (abstract-level forwards unknown
 * ones to `open()` and its hooks, so they cannot be refused here). Keeps the key out of Level's copy.
 */
const ARMDB_OPTION_NAMES: ReadonlySet<string> = new Set(['keySize', 'encryption', 'expectedMinEpoch', 'hook', ...Object.keys(DEFAULTS)]);

type Bytes = Uint8Array;
type RangeOptions = { gt?: Bytes; gte?: Bytes; lt?: Bytes; lte?: Bytes; reverse?: boolean; snapshot?: unknown };
/** The options abstract-level hands the read methods: only `snapshot` matters here. */
type ReadOptions = { snapshot?: unknown } | undefined;
type BatchOperation = { type: 'put'; key: Bytes; value: Bytes } | { type: 'del'; key: Bytes };

/**
 * An [abstract-level](https://github.com/Level/abstract-level) 3 database stored in an encrypted
 * armdb {@link VarTree}: sublevels, encodings, iterators, batches, hooks and the modules built on
 * them, with every page sealed by AES-256-GCM. Passes abstract-level's own test suite.
 *
 * Level keys have variable length, armdb keys `keySize` bytes: a key of up to `keySize − 1` bytes
 * is stored zero-padded with its length last, which keeps bytewise order. Writing a longer key
 * rejects with `LEVEL_INVALID_KEY` (reading or deleting one finds nothing). Iterators read an
 * implicit snapshot, and `db.snapshot()` gives an explicit one for any read; batches and `clear()`
 * are applied atomically, also across a crash; `put`, `del` and `batch`
 * return once the write is in armdb's write buffer, and `{ sync: true }` waits for it to be durable.
 *
 * @example
 * ```ts
 * import { ArmdbLevel } from 'armdb/level';
 *
 * const db = new ArmdbLevel('./data', { encryption: { key }, valueEncoding: 'json' });
 * await db.put('user:1', { name: 'Ada' });
 * const users = db.sublevel('users');
 * for await (const [id, user] of db.iterator({ gte: 'user:', lt: 'user;' })) console.log(id, user);
 * await db.close();
 * ```
 */
export class ArmdbLevel<K = string, V = string> extends AbstractLevel<Bytes, K, V> {
  /** The directory of the store. */
  readonly location: string;
  /** Bytes of every stored (encoded) key. */
  readonly keySize: number;
  readonly #armdbOptions: Record<string, unknown>;
  #tree: VarTree | undefined;
  /** Open readers whose snapshots every write must keep. */
  readonly #readers = new Set<SnapshotReader>();
  /** Open explicit snapshots (`db.snapshot()`), oldest first, which every write must keep too. */
  #snapshots: ArmdbSnapshot[] = [];

  constructor(location: string, options: ArmdbLevelOptions<K, V>) {
    if (typeof location !== 'string' || location.length === 0) throw new TypeError('"location" expected a non-empty string');
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected { encryption, … }');
    const levelOptions: Record<string, unknown> = {};
    const armdbOptions: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(options)) (ARMDB_OPTION_NAMES.has(name) ? armdbOptions : levelOptions)[name] = value;
    const keySize = armdbOptions['keySize'] ?? DEFAULT_LEVEL_KEY_SIZE;
    if (typeof keySize !== 'number' || !Number.isInteger(keySize))
      throw new TypeError(`"keySize" expected integer 2..${Limits.maxKeyBytes}, got ${String(keySize)}`);
    if (keySize < 2 || keySize > Limits.maxKeyBytes)
      throw new RangeError(`"keySize" expected integer 2..${Limits.maxKeyBytes}, got ${keySize}`);
    const shards = armdbOptions['shards'];
    if (shards !== undefined && shards !== 1)
      throw new RangeError(`"shards" expected 1 for an ArmdbLevel (a batch is atomic within one shard), got ${String(shards)}`);
    if ('hook' in armdbOptions || 'shardPrefixBits' in armdbOptions)
      throw new TypeError('"hook" and "shardPrefixBits" are not options of an ArmdbLevel: use db.hooks for Level hooks');
    super(
      {
        encodings: { view: true },
        permanence: true,
        createIfMissing: true,
        errorIfExists: true,
        deferredOpen: true,
        seek: true,
        has: true,
        getSync: true,
        implicitSnapshots: true,
        explicitSnapshots: true,
        // getSync is in abstract-level 3.1's manifest but not yet in level-supports' type.
      } as ConstructorParameters<typeof AbstractLevel>[0],
      levelOptions as AbstractDatabaseOptions<K, V>,
    );
    this.location = location;
    this.keySize = keySize;
    this.#armdbOptions = { ...armdbOptions, keySize, shards: 1 };
  }

  /** Longest Level key, in bytes, this database stores: `keySize − 1` (`keySize − 2` above 256). */
  get maxKeyBytes(): number {
    return levelKeyCapacity(this.keySize);
  }

  /** @internal */
  async _open(options: { createIfMissing: boolean; errorIfExists: boolean }): Promise<void> {
    const exists = nodeFileSystem.exists(join(this.location, MANIFEST_NAME));
    if (!exists && options.createIfMissing === false)
      throw new Error(`the armdb store ${JSON.stringify(this.location)} does not exist (createIfMissing is false)`);
    if (exists && options.errorIfExists === true)
      throw new Error(`the armdb store ${JSON.stringify(this.location)} already exists (errorIfExists is true)`);
    try {
      this.#tree = await VarTree.open(this.location, this.#armdbOptions as unknown as OpenOptions);
    } catch (error) {
      // Level's LEVEL_DATABASE_NOT_OPEN wraps this; its cause is the armdb error (or LEVEL_LOCKED around it, as classic-level does).
      if (error instanceof ArmdbError && error.code === 'ARMDB_LOCKED') throw levelError('LEVEL_LOCKED', error.message, error);
      throw error;
    }
  }

  /** @internal */
  async _close(): Promise<void> {
    const tree = this.#tree;
    this.#tree = undefined;
    for (const reader of this.#readers) reader.close();
    this.#readers.clear();
    // abstract-level closes open snapshots with the database; they record nothing from here on.
    this.#snapshots = [];
    if (tree !== undefined) await tree.close().catch((error: unknown) => Promise.reject(toLevelError(error)));
  }

  /** @internal */
  async _get(key: Bytes, options?: ReadOptions): Promise<Bytes | undefined> {
    return this._getSync(key, options);
  }

  /** @internal */
  _getSync(key: Bytes, options?: ReadOptions): Bytes | undefined {
    const snapshot = this.#snapshotOf(options);
    const encoded = this.#encodeForRead(key);
    if (encoded === undefined) return undefined;
    try {
      const tree = this.#openTree();
      return snapshot === undefined ? tree.get(encoded) : snapshot.get(tree, encoded);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /** @internal */
  async _getMany(keys: Bytes[], options?: ReadOptions): Promise<(Bytes | undefined)[]> {
    const snapshot = this.#snapshotOf(options);
    const tree = this.#openTree();
    const encoded = keys.map((key) => this.#encodeForRead(key));
    const present = encoded.filter((key): key is Bytes => key !== undefined);
    let values: (Bytes | undefined)[];
    try {
      values = snapshot === undefined ? tree.getMany(present) : snapshot.getMany(tree, present);
    } catch (error) {
      throw toLevelError(error);
    }
    let next = 0;
    return encoded.map((key) => (key === undefined ? undefined : values[next++]));
  }

  /** @internal */
  async _has(key: Bytes, options?: ReadOptions): Promise<boolean> {
    return this.#hasOne(this.#openTree(), this.#snapshotOf(options), key);
  }

  /** @internal */
  async _hasMany(keys: Bytes[], options?: ReadOptions): Promise<boolean[]> {
    const snapshot = this.#snapshotOf(options);
    const tree = this.#openTree();
    return keys.map((key) => this.#hasOne(tree, snapshot, key));
  }

  /**
   * @internal A new explicit snapshot (docs/level.md §Snapshots): from now until it is closed, every
   * write keeps, in it, the value the key had before the first write to it since the snapshot.
   */
  _snapshot(options: { owner: unknown }): ArmdbSnapshot {
    this.#openTree();
    const snapshot = new ArmdbSnapshot(options, this, (closed) => {
      this.#snapshots = this.#snapshots.filter((open) => open !== closed);
    });
    this.#snapshots.push(snapshot);
    return snapshot;
  }

  /** @internal */
  async _put(key: Bytes, value: Bytes, options: { sync?: boolean }): Promise<void> {
    const encoded = encodeLevelKey(key, this.keySize);
    const tree = this.#openTree();
    try {
      if (this.#keeping) this.#keepSnapshots(tree, encoded);
      tree.put(encoded, value);
      if (options.sync === true) await tree.sync();
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /** @internal */
  async _del(key: Bytes, options: { sync?: boolean }): Promise<void> {
    const encoded = this.#encodeForRead(key);
    if (encoded === undefined) return;
    const tree = this.#openTree();
    try {
      if (this.#keeping) this.#keepSnapshots(tree, encoded);
      tree.delete(encoded);
      if (options.sync === true) await tree.sync();
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /**
   * @internal One crash-atomic group on the store's one shard (`writeGroup`, `atomic` without its
   * read overlay): every key is encoded first, so a key that is too long rejects the batch before
   * anything is applied.
   */
  async _batch(operations: BatchOperation[], options: { sync?: boolean }): Promise<void> {
    const keySize = this.keySize;
    const group: { key: Bytes; value: Bytes | undefined }[] = [];
    for (const operation of operations) {
      if (operation.type === 'put') group.push({ key: encodeLevelKey(operation.key, keySize), value: operation.value });
      else {
        const key = this.#encodeForRead(operation.key);
        if (key !== undefined) group.push({ key, value: undefined });
      }
    }
    const tree = this.#openTree();
    try {
      if (this.#keeping) for (const { key } of group) this.#keepSnapshots(tree, key);
      tree.writeGroup(group);
      if (options.sync === true) await tree.sync();
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /**
   * @internal Deletes the keys of a range (those of `options.snapshot` when given, else those present
   * now) as one crash-atomic write group, like a batch: all of the range or none of it, also across a
   * crash. A range whose tombstones exceed `#clearGroupBytes()` is deleted in successive groups of
   * at most that size, in key order (docs/level.md §Clear): a crash then leaves a tail of the range,
   * never holes. All groups are written in one synchronous step, so no other operation sees a part.
   * `{ sync: true }` resolves once the clear is durable, as for `put` and `batch`.
   */
  async _clear(options: RangeOptions & { limit: number; sync?: boolean }): Promise<void> {
    const snapshot = this.#snapshotOf(options);
    const tree = this.#openTree();
    const range = this.#readerRange(options);
    if (range === undefined) return;
    const reader = new SnapshotReader(tree, range, false, snapshot?.journalFor(range));
    // A tombstone takes its record (at most its 8-aligned size) and a header's worth of page-end slack
    // in the write buffer (DataFile.reserveBytes).
    const keysPerGroup = Math.max(1, Math.floor(this.#clearGroupBytes() / (recordBytes(this.keySize, 0, 8) + RECORD_HEADER_BYTES)));
    try {
      let remaining = options.limit < 0 ? Infinity : options.limit;
      let group: { key: Bytes; value: undefined }[] = [];
      for (let entry = reader.next(); entry !== undefined && remaining > 0; entry = reader.next(), remaining--) {
        group.push({ key: entry[0], value: undefined });
        if (group.length === keysPerGroup) {
          this.#deleteGroup(tree, group);
          group = [];
        }
      }
      if (group.length > 0) this.#deleteGroup(tree, group);
      if (options.sync === true) await tree.sync();
    } catch (error) {
      throw toLevelError(error);
    } finally {
      reader.close();
    }
  }

  /**
   * Bytes of tombstone records one atomic group of `clear()` holds at most: 64 MiB, or `maxFileBytes`
   * when that is smaller (a group never spans data files, so it cannot make one much larger than
   * that), which is about 760,000 keys at the default keySize of 64.
   */
  #clearGroupBytes(): number {
    const maxFileBytes = this.#armdbOptions['maxFileBytes'];
    return Math.min(CLEAR_GROUP_MAX_BYTES, typeof maxFileBytes === 'number' ? maxFileBytes : DEFAULTS.maxFileBytes);
  }

  #deleteGroup(tree: VarTree, group: readonly { key: Bytes; value: undefined }[]): void {
    if (this.#keeping) for (const { key } of group) this.#keepSnapshots(tree, key);
    tree.writeGroup(group);
  }

  /** @internal */
  _iterator(options: AbstractIteratorOptions<K, V>): ArmdbIterator<K, V> {
    return new ArmdbIterator(this, options, this.#reader(options as unknown as RangeOptions, options.values !== false));
  }

  /** @internal */
  _keys(options: AbstractKeyIteratorOptions<K>): ArmdbKeyIterator<K, V> {
    return new ArmdbKeyIterator(this, options, this.#reader(options as unknown as RangeOptions, false));
  }

  /** @internal */
  _values(options: AbstractValueIteratorOptions<K, V>): ArmdbValueIterator<K, V> {
    return new ArmdbValueIterator(this, options, this.#reader(options as unknown as RangeOptions, true));
  }

  /** @internal Forgets a closed reader: writes stop keeping its snapshot. */
  releaseReader(reader: SnapshotReader | undefined): void {
    if (reader === undefined) return;
    reader.close();
    this.#readers.delete(reader);
  }

  /** @internal A seek target in encoded form (a key too long to store still orders the ones stored). */
  seekTarget(target: Bytes, reverse: boolean): EncodedBound {
    return encodeBound(target, false, !reverse, this.keySize);
  }

  /**
   * A new reader over the range, registered so writes keep its snapshot; undefined for an empty
   * range. With `options.snapshot` it reads that explicit snapshot, which writes already keep.
   */
  #reader(options: RangeOptions, readValues: boolean): SnapshotReader | undefined {
    const snapshot = this.#snapshotOf(options);
    const range = this.#readerRange(options);
    if (range === undefined) return undefined;
    if (snapshot !== undefined) return new SnapshotReader(this.#openTree(), range, readValues, snapshot.journalFor(range));
    const reader = new SnapshotReader(this.#openTree(), range, readValues);
    this.#readers.add(reader);
    return reader;
  }

  /** Whether a write must record old values: an iterator or an explicit snapshot is open. */
  get #keeping(): boolean {
    return this.#readers.size > 0 || this.#snapshots.length > 0;
  }

  /** The explicit snapshot of a read's options, checked to be one of this database's; undefined for none. */
  #snapshotOf(options: ReadOptions): ArmdbSnapshot | undefined {
    const snapshot = options?.snapshot;
    if (snapshot === undefined || snapshot === null) return undefined;
    if (!(snapshot instanceof ArmdbSnapshot) || snapshot.database !== this)
      throw new TypeError('"snapshot" expected a snapshot of this database (db.snapshot())');
    return snapshot;
  }

  #hasOne(tree: VarTree, snapshot: ArmdbSnapshot | undefined, key: Bytes): boolean {
    const encoded = this.#encodeForRead(key);
    if (encoded === undefined) return false;
    try {
      return snapshot === undefined ? tree.has(encoded) : snapshot.has(tree, encoded);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  #readerRange(options: RangeOptions): ReaderRange | undefined {
    const keySize = this.keySize;
    // abstract-level's rule: gte wins over gt, lte over lt.
    const lowerKey = options.gte ?? options.gt;
    const upperKey = options.lte ?? options.lt;
    const lower = lowerKey === undefined ? undefined : encodeBound(lowerKey, options.gte === undefined, true, keySize);
    const upper = upperKey === undefined ? undefined : encodeBound(upperKey, options.lte === undefined, false, keySize);
    if (lower !== undefined && upper !== undefined) {
      const order = Buffer.compare(lower.key, upper.key);
      if (order > 0 || (order === 0 && (lower.exclusive || upper.exclusive))) return undefined;
    }
    return { lower, upper, reverse: options.reverse === true };
  }

  /**
   * Records, in every open reader whose range holds `key` and every open explicit snapshot, the value
   * `key` has before a write (once per key and snapshot: the first write after it is the one that
   * matters). Snapshots share one copy, apart from the one iterators share: an iterator hands its
   * value to the caller, who may change it.
   *
   * Snapshots are visited newest first and the walk stops at the first that already holds `key`: a
   * snapshot holds it once `key` was written after it was taken, and such a write came after every
   * older snapshot too, so they all hold it. A key written again costs one lookup, not one per snapshot.
   */
  #keepSnapshots(tree: VarTree, key: Bytes): void {
    let read = false;
    let value: Bytes | undefined;
    for (const reader of this.#readers) {
      if (!reader.journal.wants(key)) continue;
      if (!read) {
        value = tree.get(key);
        read = true;
      }
      reader.journal.record(key, value);
    }
    let kept: Bytes | undefined;
    let copied = false;
    const snapshots = this.#snapshots;
    for (let index = snapshots.length - 1; index >= 0; index--) {
      const journal = snapshots[index]!.journal;
      if (!journal.wants(key)) break;
      if (!read) {
        value = tree.get(key);
        read = true;
      }
      if (!copied) {
        kept = this.#readers.size > 0 ? value?.slice() : value;
        copied = true;
      }
      journal.record(key, kept);
    }
  }

  /** The encoded key, or undefined for a key too long to be stored (it cannot be present). */
  #encodeForRead(key: Bytes): Bytes | undefined {
    return key.length > levelKeyCapacity(this.keySize) ? undefined : encodeLevelKey(key, this.keySize);
  }

  #openTree(): VarTree {
    const tree = this.#tree;
    if (tree === undefined) throw levelError('LEVEL_DATABASE_NOT_OPEN', 'the database is not open');
    return tree;
  }
}

type Entry = [Bytes | undefined, Bytes | undefined];

/** Up to `size` entries (Level keys decoded), keys or values of the reader; none for an empty range. */
function nextEntries(reader: SnapshotReader | undefined, size: number): Entry[];
function nextEntries(reader: SnapshotReader | undefined, size: number, part: 0 | 1): (Bytes | undefined)[];
function nextEntries(reader: SnapshotReader | undefined, size: number, part?: 0 | 1): (Entry | Bytes | undefined)[] {
  const items: (Entry | Bytes | undefined)[] = [];
  if (reader === undefined) return items;
  try {
    while (items.length < size) {
      const entry = reader.next();
      if (entry === undefined) break;
      // The reader's entry is fresh: its key slot is reused for the decoded key.
      if (part === 1) items.push(entry[1]);
      else if (part === 0) items.push(decodeLevelKey(entry[0]));
      else {
        entry[0] = decodeLevelKey(entry[0]);
        items.push(entry);
      }
    }
  } catch (error) {
    throw toLevelError(error);
  }
  return items;
}

/** @internal Entries of a range, as of the moment it was created. */
class ArmdbIterator<K, V> extends AbstractIterator<ArmdbLevel<K, V>, K, V> {
  readonly #db: ArmdbLevel<K, V>;
  readonly #reader: SnapshotReader | undefined;
  readonly #reverse: boolean;

  constructor(db: ArmdbLevel<K, V>, options: AbstractIteratorOptions<K, V>, reader: SnapshotReader | undefined) {
    super(db, options);
    this.#db = db;
    this.#reader = reader;
    this.#reverse = options.reverse === true;
  }

  async _next(): Promise<Entry | undefined> {
    return nextEntries(this.#reader, 1)[0];
  }

  async _nextv(size: number): Promise<Entry[]> {
    return nextEntries(this.#reader, size);
  }

  async _all(): Promise<Entry[]> {
    return nextEntries(this.#reader, this.limit - this.count);
  }

  _seek(target: Bytes): void {
    this.#reader?.seek(this.#db.seekTarget(target, this.#reverse));
  }

  async _close(): Promise<void> {
    this.#db.releaseReader(this.#reader);
  }
}

/** @internal Keys of a range, as of the moment it was created; never reads a value. */
class ArmdbKeyIterator<K, V> extends AbstractKeyIterator<ArmdbLevel<K, V>, K> {
  readonly #db: ArmdbLevel<K, V>;
  readonly #reader: SnapshotReader | undefined;
  readonly #reverse: boolean;

  constructor(db: ArmdbLevel<K, V>, options: AbstractKeyIteratorOptions<K>, reader: SnapshotReader | undefined) {
    super(db, options);
    this.#db = db;
    this.#reader = reader;
    this.#reverse = options.reverse === true;
  }

  async _next(): Promise<Bytes | undefined> {
    return nextEntries(this.#reader, 1, 0)[0];
  }

  async _nextv(size: number): Promise<(Bytes | undefined)[]> {
    return nextEntries(this.#reader, size, 0);
  }

  async _all(): Promise<(Bytes | undefined)[]> {
    return nextEntries(this.#reader, this.limit - this.count, 0);
  }

  _seek(target: Bytes): void {
    this.#reader?.seek(this.#db.seekTarget(target, this.#reverse));
  }

  async _close(): Promise<void> {
    this.#db.releaseReader(this.#reader);
  }
}

/** @internal Values of a range in key order, as of the moment it was created. */
class ArmdbValueIterator<K, V> extends AbstractValueIterator<ArmdbLevel<K, V>, K, V> {
  readonly #db: ArmdbLevel<K, V>;
  readonly #reader: SnapshotReader | undefined;
  readonly #reverse: boolean;

  constructor(db: ArmdbLevel<K, V>, options: AbstractValueIteratorOptions<K, V>, reader: SnapshotReader | undefined) {
    super(db, options);
    this.#db = db;
    this.#reader = reader;
    this.#reverse = options.reverse === true;
  }

  async _next(): Promise<Bytes | undefined> {
    return nextEntries(this.#reader, 1, 1)[0];
  }

  async _nextv(size: number): Promise<(Bytes | undefined)[]> {
    return nextEntries(this.#reader, size, 1);
  }

  async _all(): Promise<(Bytes | undefined)[]> {
    return nextEntries(this.#reader, this.limit - this.count, 1);
  }

  _seek(target: Bytes): void {
    this.#reader?.seek(this.#db.seekTarget(target, this.#reverse));
  }

  async _close(): Promise<void> {
    this.#db.releaseReader(this.#reader);
  }
}
