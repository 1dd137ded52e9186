/**
 * The engine shared by every collection (SPEC §4), as the composition root of its parts: routing,
 * reads, the commit path, stats and close live here; everything else is a part that owns its state:
 *
 * - `shard.ts`: per shard the active file, rotation and the file set; the one writer of a data file's bookkeeping
 * - `barrier.ts`: the durability barrier (group commit, MANIFEST write) and its interval timer
 * - `root-files.ts`: reading, creating, checking and replacing MANIFEST and KEYRING
 * - `recovery.ts` (and `leftovers.ts`): what open makes of the files on disk
 * - `hints.ts`: hint files, queued and written off the write path
 * - `key-lifecycle.ts`: changeKey, rotateDataKey, crypto-shredding, the MANIFEST signing key
 * - `compaction-policy.ts` beside `compaction.ts`: what to compact and when, and the engine's side of a run
 * - `verify.ts`, `warmup.ts`: the two walks over the files; `reports.ts`: the report types
 *
 * Collections add value handling and the public API on top.
 */
import { channel } from 'node:diagnostics_channel';
import * as path from 'node:path';
import xxhash from 'xxhash-wasm';
import type { ResolvedOptions } from '../config.js';
import { type Credential, type KeySlotInfo, wipeCredential } from '../crypto/keys.js';
import { nobleProvider } from '../crypto/noble-provider.js';
import { nodeProvider } from '../crypto/node-provider.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ArmdbError, integrityError } from '../errors.js';
import { copyBytes } from '../format/bytes.js';
import { PAGE_BYTES } from '../format/constants.js';
import { peekKeyringDatabaseId } from '../format/keyring.js';
import { CollectionKind, type CollectionKindId } from '../format/manifest.js';
import { RECORD_HEADER_BYTES, RecordFlag } from '../format/record.js';
import { FILE_ID_WORD, LOCATION_WORDS, POSITION_WORD, VALUE_LENGTH_WORD } from '../index/entry-store.js';
import { HashIndex } from '../index/hash-index.js';
import type { KeyIndex } from '../index/key-index.js';
import { OrderedIndex } from '../index/ordered-index.js';
import type { EngineHooks } from '../internal/engine-hooks.js';
import type { FileSystem } from '../io/file-system.js';
import type { DirectoryLock } from '../io/lock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { BlockCache } from '../storage/block-cache.js';
import { DataFile } from '../storage/data-file.js';
import { type AuditSource, publishAudit } from './audit.js';
import { crashPoint } from './crash-points.js';
import { EngineGuard } from './guard.js';
import type { RemoveKeySlotOptions } from './key-lifecycle.js';
import { type EngineParts, makeParts } from './parts.js';
import { type RecoveryFigures, startUp } from './startup.js';
import { KEYRING_NAME, MAX_KEYRING_BYTES, TEMPORARY_SUFFIX } from './paths.js';
import { newCounters, type CompactionReport, type CompactOptions, type Stats, type VerifyOptions, type VerifyReport } from './reports.js';
import { destroyRootKeys, lockStore, openOrCreateRootFiles, type RootFiles } from './root-files.js';
import { verifyFiles } from './verify.js';
import { warmCache } from './warmup.js';

export type { Stats, VerifyOptions, VerifyReport } from './reports.js';

const syncChannel = channel('armdb:sync');
const EMPTY = new Uint8Array(0);

/** One mutation of a write group: a put, or a delete when `value` is undefined. */
export interface WriteOperation {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasherPromise: Promise<Hasher> | undefined;

interface EngineInit {
  readonly directory: string;
  readonly options: ResolvedOptions;
  readonly collectionKind: CollectionKindId;
  readonly fileSystem: FileSystem;
  readonly provider: CryptoProvider;
  readonly rootFiles: RootFiles;
  readonly lock: DirectoryLock;
  readonly hasher: Hasher;
  readonly now: () => number;
}

/** @internal The engine every collection runs on. */
/** Values up to this size share one slab in {@link Engine.readHandles}; larger ones get their own memory. */
const MAX_SLAB_VALUE_BYTES = 1024;
/** Bound of one {@link Engine.readHandles} slab: what one kept value can hold in memory. */
const MAX_SLAB_BYTES = 64 * 1024;

/** Per-value working columns of {@link Engine.readHandles}, reused (numbers and page references only, never handed out). */
interface ReadScratch {
  lengths: Uint32Array;
  offsets: Float64Array;
  fileIds: Uint32Array;
  pages: (Uint8Array | undefined)[];
  /** 1 where the value's page is a view of the block cache's arena (a hit), which a slot reuse overwrites. */
  viewed: Uint8Array;
  /** Where the touch pass leaves its result, so that its loads are not optimised away. */
  touched: number;
}

let scratchColumns: ReadScratch = {
  lengths: new Uint32Array(0),
  offsets: new Float64Array(0),
  fileIds: new Uint32Array(0),
  pages: [],
  viewed: new Uint8Array(0),
  touched: 0,
};

function readScratch(count: number): ReadScratch {
  if (scratchColumns.lengths.length < count) {
    const capacity = Math.max(count, 256);
    scratchColumns = {
      lengths: new Uint32Array(capacity),
      offsets: new Float64Array(capacity),
      fileIds: new Uint32Array(capacity),
      pages: new Array<Uint8Array | undefined>(capacity).fill(undefined),
      viewed: new Uint8Array(capacity),
      touched: 0,
    };
  }
  return scratchColumns;
}

/** Scratch of {@link Engine.shardOf}: the 64-bit routing hash and its 32-bit halves (little-endian). */
const routingHash = new BigUint64Array(1);
const routingHalves = new Uint32Array(routingHash.buffer);
/** Index of the low half in {@link routingHalves}: typed arrays use the platform's byte order. */
const LOW_HALF = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1 ? 0 : 1;

export class Engine {
  readonly directory: string;
  readonly options: ResolvedOptions;
  readonly keySize: number;
  readonly index: KeyIndex;
  /** The same index, when it is ordered (Tree collections). */
  readonly ordered: OrderedIndex | undefined;
  /** Verified plaintext: pages, and whole values that span more than two pages. */
  readonly cache: BlockCache | undefined;
  readonly collectionKind: CollectionKindId;
  /** The store's random 16-byte id (docs/format.md §2.4); names its replication messages. */
  readonly databaseId: Uint8Array;
  readonly #fileSystem: FileSystem;
  readonly #lock: DirectoryLock;
  readonly #hasher: Hasher;
  /** 2^32 mod shards, for {@link shardOf}. */
  readonly #twoPow32ModShards: number;
  readonly #guard = new EngineGuard();
  readonly #counters = newCounters();
  /** The parts that own the engine's state (parts.ts). */
  readonly #parts: EngineParts;
  /** close() stops a running compaction with it. */
  readonly #closeSignal = new AbortController();
  #closing: Promise<void> | undefined;
  /** Where `armdb:audit` events of this store come from (audit.ts). */
  readonly #auditSource: AuditSource;
  #sequence = 0;
  #recovered: RecoveryFigures = { highestSequence: 0, tornBytes: 0, filesFromHints: 0, damagedHints: 0, quarantinedFiles: [] };

  private constructor(init: EngineInit) {
    const { options, fileSystem } = init;
    this.directory = init.directory;
    this.options = options;
    this.keySize = options.keySize;
    this.collectionKind = init.collectionKind;
    this.databaseId = copyBytes(init.rootFiles.manifest.databaseId);
    this.#fileSystem = fileSystem;
    this.#lock = init.lock;
    this.#hasher = init.hasher;
    this.#twoPow32ModShards = 2 ** 32 % options.shards;
    this.#auditSource = { directory: init.directory, databaseId: init.rootFiles.manifest.databaseId, now: init.now };
    this.ordered = Engine.#isTree(init.collectionKind) ? new OrderedIndex(this.keySize, Engine.#indexOptions(init)) : undefined;
    this.index = this.ordered ?? new HashIndex(this.keySize, Engine.#indexOptions(init));
    // One budget for pages and for whole large values (more than two pages): whichever is read again stays.
    this.cache = options.cacheBytes > 0 ? new BlockCache(options.cacheBytes) : undefined;
    this.#parts = makeParts({
      ...init,
      index: this.index,
      cache: this.cache,
      guard: this.#guard,
      counters: this.#counters,
      closeSignal: this.#closeSignal.signal,
    });
  }

  static #isTree(kind: CollectionKindId): boolean {
    return kind === CollectionKind.varTree || kind === CollectionKind.constTree || kind === CollectionKind.typedTree;
  }

  static #indexOptions(init: EngineInit): { valueSize: number; keepsObjects: boolean } {
    const kind = init.collectionKind;
    return { valueSize: init.options.valueSize, keepsObjects: kind === CollectionKind.typedMap || kind === CollectionKind.typedTree };
  }

  /** Opens or creates the store in `directory`. */
  static async open(
    directory: string,
    options: ResolvedOptions,
    collectionKind: CollectionKindId,
    hooks: EngineHooks = {},
  ): Promise<Engine> {
    const fileSystem = hooks.fileSystem ?? nodeFileSystem;
    const now = hooks.now ?? Date.now;
    // xxhash-wasm is initialised here, never at module load (no top-level await: require() must work).
    hasherPromise ??= xxhash();
    const hasher = await hasherPromise;
    const root = path.resolve(directory);
    const lock = await lockStore(fileSystem, root, options);
    let rootFiles: RootFiles | undefined;
    let engine: Engine | undefined;
    try {
      for (const name of fileSystem.list(root)) if (name.endsWith(TEMPORARY_SUFFIX)) fileSystem.unlink(path.join(root, name));
      const provider = options.cipher === 'noble' ? nobleProvider : nodeProvider;
      rootFiles = await openOrCreateRootFiles(fileSystem, root, options, collectionKind, provider, now);
      engine = new Engine({ directory: root, options, collectionKind, fileSystem, provider, rootFiles, lock, hasher, now });
      await engine.#start(rootFiles, provider);
      const { keys } = rootFiles;
      publishAudit({ directory: root, databaseId: rootFiles.manifest.databaseId, now }, 'open', {
        epoch: engine.#parts.barrier.epoch,
        slot: keys?.openedSlotLabel,
        keyringVersion: keys?.keyringVersion,
      });
      // dataKeyMaxAgeMs is checked at open too: a service that restarts often still rotates.
      await engine.#parts.keys.checkDataKeyAge();
      return engine;
    } catch (error) {
      const databaseId = rootFiles?.manifest.databaseId ?? Engine.#claimedDatabaseId(fileSystem, root);
      publishAudit({ directory: root, databaseId, now }, 'open-failed', {
        code: error instanceof ArmdbError ? error.code : error instanceof Error ? error.name : 'ERROR',
      });
      // Once there is an engine, its release zeroes the keys and the credential and releases the lock.
      if (engine !== undefined) engine.#releaseResources();
      else {
        destroyRootKeys(rootFiles?.keys, rootFiles?.manifestMacKey);
        if (options.credential !== undefined) wipeCredential(options.credential);
        lock.release();
      }
      throw error;
    }
  }

  /** The database id the KEYRING claims (unauthenticated), for the audit event of a failed open. */
  static #claimedDatabaseId(fileSystem: FileSystem, root: string): Uint8Array | undefined {
    try {
      const bytes = fileSystem.readFile(path.join(root, KEYRING_NAME), MAX_KEYRING_BYTES);
      return bytes === undefined ? undefined : peekKeyringDatabaseId(bytes);
    } catch {
      return undefined;
    }
  }

  /** Recovery (docs/durability.md §Recovery), then the parts take over (startup.ts), then the sync timer. */
  async #start(rootFiles: RootFiles, provider: CryptoProvider): Promise<void> {
    const { directory, index, keySize, options } = this;
    const init = { directory, fileSystem: this.#fileSystem, manifest: rootFiles.manifest, keys: rootFiles.keys, provider, keySize, index };
    // Const collections need their values in memory: hints do not carry them.
    this.#recovered = await startUp({ ...init, useHints: options.hints && options.valueSize === 0 }, this.#parts);
    this.#sequence = this.#recovered.highestSequence;
    this.#parts.barrier.startTimer(options.syncIntervalMs, () => this.sync());
  }

  // ---- routing -------------------------------------------------------------------------------

  /** The shard `key` belongs to: xxh64 of the key (or its first `shardPrefixBits` bits) mod shards. */
  shardOf(key: Uint8Array): number {
    this.#guard.assertOpen();
    const shards = this.options.shards;
    if (shards === 1) return 0;
    const bits = this.options.shardPrefixBits;
    let routed = key;
    if (bits > 0) {
      const bytes = Math.ceil(bits / 8);
      routed = copyBytes(key.subarray(0, bytes));
      const spare = bytes * 8 - bits;
      if (spare > 0) routed[bytes - 1]! &= (0xff << spare) & 0xff;
    }
    // xxh64 mod shards without a second BigInt: the hash's two 32-bit halves through a typed array,
    // (high · 2^32 + low) mod n = ((high mod n) · (2^32 mod n) + low mod n) mod n, exact for n ≤ 256.
    routingHash[0] = this.#hasher.h64Raw(routed, 0n);
    return ((routingHalves[1 - LOW_HALF]! % shards) * this.#twoPow32ModShards + (routingHalves[LOW_HALF]! % shards)) % shards;
  }

  /** Grows with every put and delete: a reader that read values ahead knows they may be stale once it moved. */
  get writeSequence(): number {
    return this.#sequence;
  }

  get isClosed(): boolean {
    return this.#guard.closing;
  }

  // ---- reads ---------------------------------------------------------------------------------

  get size(): number {
    this.#guard.assertOpen();
    return this.index.size;
  }

  has(key: Uint8Array): boolean {
    this.#guard.assertOpen();
    return this.index.find(key) >= 0;
  }

  /** The index handle of `key`, or -1 (counts a get). */
  find(key: Uint8Array): number {
    this.#guard.assertOpen();
    this.#counters.gets++;
    return this.index.find(key);
  }

  /** The stored value of `key` (a fresh copy), or undefined. */
  get(key: Uint8Array): Uint8Array | undefined {
    this.#guard.assertOpen();
    this.#counters.gets++;
    const handle = this.index.find(key);
    return handle < 0 ? undefined : this.readHandle(handle);
  }

  /** Reads the value an index entry points at. */
  readHandle(handle: number): Uint8Array {
    const index = this.index;
    if (index.valueSize > 0) return index.inlineValueOf(handle);
    const file = this.#parts.shards.fileById(index.fileIdOf(handle));
    try {
      if (file === undefined) throw integrityError('the index points into a file that does not exist');
      return file.read(index.positionOf(handle) + RECORD_HEADER_BYTES + this.keySize, index.valueLengthOf(handle), this.cache);
    } catch (error) {
      // An integrity failure on the read path goes on the audit trail (where, never what).
      if (error instanceof ArmdbError && error.code === 'ARMDB_INTEGRITY')
        publishAudit(this.#auditSource, 'integrity-failure', { ...error.details });
      throw error;
    }
  }

  /**
   * The values of `count` index entries, `handles[0..count)`, into `values[0..count)`: what
   * {@link readHandle} gives for each, read in one pass for an ordered scan. Values inside one sealed
   * page are copied into one fresh slab per call (each its own range of it: the caller may keep and
   * mutate them, and the slab is never reused); a page is looked up once for consecutive values in it
   * (in the cache's eyes, one access per run, so a scan does not look hot). Every other value (in the
   * write buffer, across pages, inline) goes through {@link readHandle}.
   */
  readHandles(handles: Int32Array, count: number, values: Uint8Array[]): void {
    const index = this.index;
    if (index.valueSize > 0) {
      for (let position = 0; position < count; position++) values[position] = index.inlineValueOf(handles[position]!);
      return;
    }
    // Three passes over the batch rather than one per value: each pass's loads are independent of
    // one another (the entries' columns, then the pages, then the bytes), so the processor overlaps
    // their cache misses instead of waiting for each in turn.
    const scratch = readScratch(count);
    const { lengths, offsets, pages } = scratch;
    // One location record per handle (src/index/entry-store.ts): file id, position, value length.
    const locations = index.entries.locations;
    const valueOffset = RECORD_HEADER_BYTES + this.keySize;
    let slabBytes = 0;
    for (let position = 0; position < count; position++) {
      const record = handles[position]! * LOCATION_WORDS;
      const length = locations[record + VALUE_LENGTH_WORD]!;
      lengths[position] = length;
      offsets[position] = locations[record + POSITION_WORD]! + valueOffset;
      scratch.fileIds[position] = locations[record + FILE_ID_WORD]!;
      if (length <= MAX_SLAB_VALUE_BYTES) slabBytes += (length + 7) & ~7;
    }
    let file: DataFile | undefined;
    let fileId = -1;
    let page: Uint8Array | undefined;
    let pageIndex = -1;
    let viewed = 0;
    const { viewed: viewedPages } = scratch;
    const cache = this.cache;
    // A cached page is a view of the arena: a miss further on (or a fallback read below) that evicts
    // and reuses its slot would overwrite it before its values are copied. Those values are then read
    // again one by one.
    const reuses = cache?.slotReuses ?? 0;
    for (let position = 0; position < count; position++) {
      const length = lengths[position]!;
      const valuePosition = offsets[position]!;
      const valuePage = Math.floor(valuePosition / PAGE_BYTES);
      const handleFileId = scratch.fileIds[position]!;
      if (handleFileId !== fileId) {
        file = this.#parts.shards.fileById(handleFileId);
        fileId = handleFileId;
        pageIndex = -1;
      }
      if (
        file === undefined ||
        length > MAX_SLAB_VALUE_BYTES ||
        valuePosition - valuePage * PAGE_BYTES + length > PAGE_BYTES ||
        valuePage >= file.pageCount
      ) {
        pages[position] = undefined;
        continue;
      }
      if (valuePage !== pageIndex) {
        const hits = cache?.hits ?? 0;
        page = this.#sealedPage(file, valuePage);
        // A hit is a view of the arena; a page read from disk or the unsynced set is this batch's own.
        viewed = cache !== undefined && cache.hits !== hits ? 1 : 0;
        pageIndex = valuePage;
      }
      pages[position] = page;
      viewedPages[position] = viewed;
    }
    // Touch each value's first and last byte: loads that do not depend on each other, so their misses
    // overlap, and the copies below find the bytes in the processor's cache.
    let touched = 0;
    for (let position = 0; position < count; position++) {
      const valuePage = pages[position];
      const length = lengths[position]!;
      if (valuePage === undefined || length === 0) continue;
      const inPage = offsets[position]! % PAGE_BYTES;
      touched ^= valuePage[inPage]! ^ valuePage[inPage + length - 1]!;
    }
    scratch.touched = touched;
    const slab = new ArrayBuffer(Math.min(slabBytes, MAX_SLAB_BYTES));
    const slabView = new Uint8Array(slab);
    let slabOffset = 0;
    for (let position = 0; position < count; position++) {
      const valuePage = pages[position];
      const length = lengths[position]!;
      if (
        valuePage === undefined ||
        slabOffset + length > slab.byteLength ||
        (viewedPages[position] === 1 && cache!.slotReuses !== reuses)
      ) {
        pages[position] = undefined;
        values[position] = this.readHandle(handles[position]!);
        continue;
      }
      const inPage = offsets[position]! % PAGE_BYTES;
      slabView.set(new Uint8Array(valuePage.buffer, valuePage.byteOffset + inPage, length), slabOffset);
      values[position] = new Uint8Array(slab, slabOffset, length);
      slabOffset += (length + 7) & ~7;
      pages[position] = undefined;
    }
  }

  /** A sealed page of `file`, as {@link readHandle} reads it (integrity failures audited the same way). */
  #sealedPage(file: DataFile, pageIndex: number): Uint8Array {
    try {
      return file.sealedPage(pageIndex, this.cache);
    } catch (error) {
      if (error instanceof ArmdbError && error.code === 'ARMDB_INTEGRITY')
        publishAudit(this.#auditSource, 'integrity-failure', { ...error.details });
      throw error;
    }
  }

  /** Values of many keys, read in file order. */
  getMany(keys: readonly Uint8Array[]): (Uint8Array | undefined)[] {
    this.#guard.assertOpen();
    const index = this.index;
    const handles = keys.map((key) => index.find(key));
    const order = handles.map((_, position) => position).filter((position) => handles[position]! >= 0);
    order.sort((left, right) => index.compareLocations(handles[left]!, handles[right]!));
    const values: (Uint8Array | undefined)[] = new Array(keys.length).fill(undefined);
    for (const position of order) values[position] = this.readHandle(handles[position]!);
    this.#counters.gets += keys.length;
    return values;
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Appends a group of mutations of one shard as one crash-atomic unit and applies it to the index.
   * The only I/O (rotation, writing complete pages) happens before anything changes, so a failure
   * applies nothing and poisons the collection.
   */
  commit(shard: number, operations: readonly WriteOperation[]): void {
    let reserveBytes = 0;
    for (const operation of operations) reserveBytes += DataFile.reserveBytes(this.keySize, operation.value?.length ?? 0);
    const active = this.#prepareWrite(shard, reserveBytes);
    const last = operations.length - 1;
    for (let position = 0; position <= last; position++) {
      const { key, value } = operations[position]!;
      this.#apply(active, key, value, position < last ? RecordFlag.batchContinues : 0);
    }
  }

  /** {@link commit} of a single put or delete, without allocating a group. */
  commitOne(shard: number, key: Uint8Array, value: Uint8Array | undefined): void {
    const active = this.#prepareWrite(shard, DataFile.reserveBytes(this.keySize, value?.length ?? 0));
    this.#apply(active, key, value, 0);
  }

  /** Rotation and room in the write buffer: all I/O of a write happens here, before any state changes. */
  #prepareWrite(shard: number, reserveBytes: number): DataFile {
    this.#guard.assertAcceptsRecords();
    const state = this.#parts.shards.get(shard);
    try {
      if (state.active.writePosition >= this.options.maxFileBytes) this.#parts.shards.rotate(shard);
      state.active.reserve(reserveBytes);
    } catch (error) {
      throw this.#guard.poison(error);
    }
    return state.active;
  }

  #apply(active: DataFile, key: Uint8Array, value: Uint8Array | undefined, batchFlag: number): void {
    const sequence = ++this.#sequence;
    const recordPosition = active.append(sequence, (value === undefined ? RecordFlag.tombstone : 0) | batchFlag, key, value ?? EMPTY);
    const index = this.index;
    if (value === undefined) {
      const handle = index.find(key);
      if (handle >= 0) {
        this.#releaseLive(handle);
        index.remove(key);
      }
      this.#counters.deletes++;
      return;
    }
    const handle = index.findOrInsert(key);
    if (index.isLive(handle)) this.#releaseLive(handle);
    index.setLocation(handle, active.fileId, recordPosition, value.length, sequence);
    if (index.valueSize > 0) index.setInlineValue(handle, value);
    if (index.keepsObjects) index.setObject(handle, undefined);
    active.liveBytes += active.recordBytes(this.keySize, value.length);
    this.#counters.puts++;
  }

  #releaseLive(handle: number): void {
    const index = this.index;
    const file = this.#parts.shards.fileById(index.fileIdOf(handle));
    if (file !== undefined) file.liveBytes -= file.recordBytes(this.keySize, index.valueLengthOf(handle));
  }

  /** Hands complete pages of every write buffer to the OS (no fsync). */
  flush(): void {
    this.#guard.assertWritable();
    try {
      for (const shard of this.#parts.shards.all) shard.active.writeCompletePages();
      this.#parts.shards.drainSealRing();
    } catch (error) {
      throw this.#guard.poison(error);
    }
  }

  /**
   * Durability barrier with group commit: every mutation that returned before the call is durable
   * when the promise resolves. Calls made while a barrier runs share the next one.
   */
  sync(): Promise<void> {
    try {
      this.#guard.assertWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#parts.barrier.schedule();
  }

  // ---- replication (src/replication) ---------------------------------------------------------

  /** Every later write, sync and maintenance operation throws `code` (a replica, a fenced leader); reads go on. */
  refuseWrites(code: 'ARMDB_READ_ONLY' | 'ARMDB_FENCED', message: string): void {
    this.#guard.refuseWrites(code, message);
  }

  /**
   * While `message` is set, every new put or delete throws ARMDB_REPLICATION with it (a leader whose
   * unpublished backlog reached its bound); sync, reads and compaction go on. `undefined` lifts it.
   */
  holdWrites(message: string | undefined): void {
    this.#guard.holdWrites(message);
  }

  /** A key derived from the KEYRING's meta key for `info` (the replication MAC key). The caller wipes it. */
  deriveKey(info: Uint8Array, length: number): Uint8Array {
    return this.#parts.signer.deriveKey(info, length);
  }

  // ---- the parts' operations -----------------------------------------------------------------

  /**
   * Rewrites sealed files with dead bytes (all of them, after rotating the active files) and, with
   * `reencrypt`, every file not under the active data key. One compaction runs at a time.
   */
  compact(options: CompactOptions = {}): Promise<CompactionReport> {
    return this.#parts.compaction.compact(options);
  }

  /** Re-wraps the data keys under a new key or passphrase (docs/security-model.md §Key lifecycle). */
  changeKey(next: Credential): Promise<void> {
    return this.#parts.keys.changeKey(next);
  }

  /** Makes a fresh data key active (docs/security-model.md §Key lifecycle). */
  rotateDataKey(): Promise<void> {
    return this.#parts.keys.rotateDataKey();
  }

  /** Adds a key slot (docs/security-model.md §Key slots). */
  addKeySlot(credential: Credential, label: string): Promise<void> {
    return this.#parts.keys.addKeySlot(credential, label);
  }

  /** Removes a key slot, optionally rotating the KEK (docs/security-model.md §Key slots). */
  removeKeySlot(label: string, options?: RemoveKeySlotOptions): Promise<void> {
    return this.#parts.keys.removeKeySlot(label, options);
  }

  /** The key slots: labels, kinds, creation times. */
  keySlots(): KeySlotInfo[] {
    this.#guard.assertOpen();
    return this.#parts.keys.keySlots();
  }

  /** Loads the pages of live values into the cache, up to `cacheBytes` (see warmup.ts). */
  async warmup(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    this.#guard.assertOpen();
    await warmCache(
      { guard: this.#guard, shards: this.#parts.shards, index: this.index, keySize: this.keySize, cache: this.cache },
      options,
    );
  }

  /** Authenticates every sealed page of every file, reporting each failure with file and page (see verify.ts). */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    this.#guard.assertOpen();
    const parts = {
      guard: this.#guard,
      shards: this.#parts.shards,
      sequenceAtStart: this.#sequence,
      quarantinedFiles: this.#recovered.quarantinedFiles,
    };
    const report = await verifyFiles(parts, options);
    publishAudit(this.#auditSource, 'verify', {
      ok: report.ok,
      files: report.files,
      pages: report.pages,
      failures: report.failures.map(({ shard, fileId, pageIndex }) => ({ shard, fileId, pageIndex })),
    });
    return report;
  }

  // ---- observability -------------------------------------------------------------------------

  stats(): Stats {
    this.#guard.assertOpen();
    let totalBytes = 0;
    let liveBytes = 0;
    const filesPerKeyId: Record<number, number> = {};
    for (const file of this.#parts.shards.files()) {
      totalBytes += file.streamBytes;
      liveBytes += file.liveBytes;
      filesPerKeyId[file.keyId] = (filesPerKeyId[file.keyId] ?? 0) + 1;
    }
    return {
      keys: this.index.size,
      ...this.#counters,
      cacheHits: this.cache?.hits ?? 0,
      cacheMisses: this.cache?.misses ?? 0,
      cacheBytes: this.cache?.bytes ?? 0,
      deadBytes: totalBytes - liveBytes,
      totalBytes,
      files: this.#parts.shards.fileCount,
      epoch: this.#parts.barrier.epoch,
      recoveredTornBytes: this.#recovered.tornBytes,
      filesFromHints: this.#recovered.filesFromHints,
      damagedHints: this.#recovered.damagedHints,
      filesPerKeyId,
      quarantinedFiles: this.#recovered.quarantinedFiles.length,
      indexBytes: this.index.memoryBytes,
      dataKeyAgeMs: this.#parts.keys.dataKeyAgeMs,
    };
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Seals every active file, runs a last barrier, and releases files, keys and the lock. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#guard.beginClose();
      this.#closing = this.#closeOnce();
    }
    return this.#closing;
  }

  async #closeOnce(): Promise<void> {
    this.#parts.barrier.stopTimer();
    this.#closeSignal.abort();
    try {
      // A key operation under way (a KEYRING sealed after the keys were zeroed would lose them) and a
      // compaction (whose crypto-shredding is one) finish first; queued key operations then refuse.
      await this.#parts.keys.settled();
      await this.#parts.compaction.settled();
      await this.#parts.keys.settled();
      await this.#parts.barrier.settled();
      if (!this.#guard.poisoned) await this.#finishWrites();
    } finally {
      this.#releaseResources();
    }
  }

  /** close(): the active files sealed (or dropped, when empty), a last barrier, the last hints. */
  async #finishWrites(): Promise<void> {
    let unused: DataFile[];
    try {
      const sealed = this.#parts.shards.sealForClose();
      unused = sealed.unused;
      if (sealed.listedUnused) this.#parts.barrier.markManifestStale();
    } catch (error) {
      throw this.#guard.poison(error);
    }
    const directory = this.directory;
    crashPoint('close:active-files-sealed', () => ({ directory, fileIds: this.#parts.shards.all.map((shard) => shard.active.fileId) }));
    await this.#parts.barrier.run();
    crashPoint('close:barrier-done', () => ({ directory, epoch: this.#parts.barrier.epoch }));
    for (const file of unused) {
      file.close();
      // Empty and unlisted by the barrier above: one left behind is a leftover for the next open.
      this.#parts.remover.removeUnused(file, syncChannel, { temporary: false });
    }
    for (const shard of this.#parts.shards.all) this.#parts.hints.schedule(shard.active);
    await this.#parts.hints.idle();
    crashPoint('close:hints-written', () => ({ directory }));
    if (this.#parts.barrier.manifestStale) await this.#parts.barrier.run();
  }

  #releaseResources(): void {
    this.#guard.markReleased();
    this.#parts.shards.closeFiles();
    this.cache?.clear();
    this.#parts.keys.destroy();
    this.#lock.release();
  }
}
