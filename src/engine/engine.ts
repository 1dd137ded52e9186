/**
 * The engine shared by every collection: routing, lifecycle, the write path, reads, durability
 * barriers and poisoning (SPEC §4). Collections add value handling and the public API on top.
 */
import { randomBytes } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import * as path from 'node:path';
import type { EngineHooks } from '../internal/engine-hooks.js';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import xxhash from 'xxhash-wasm';
import type { ResolvedOptions } from '../config.js';
import { FileCipher } from '../crypto/file-cipher.js';
import {
  createMetaKey,
  DEFAULT_SCRYPT,
  deriveManifestMacKey,
  sealKeyring,
  wipeCredential,
  type Credential,
  type KeySet,
} from '../crypto/keys.js';
import { nobleProvider } from '../crypto/noble-provider.js';
import { nodeProvider } from '../crypto/node-provider.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ArmdbError, armdbError, integrityError } from '../errors.js';
import {
  FileKind,
  MANIFEST_FORMAT_VERSION,
  PAGE_BYTES,
  SALT_BYTES,
  type AlgorithmId,
  type ManifestFormatVersion,
} from '../format/constants.js';
import type { ScryptParameters } from '../format/keyring.js';
import { CollectionKind, encodeManifest, FileState, type CollectionKindId, type Manifest, type ManifestFile } from '../format/manifest.js';
import { RecordFlag, recordBytes, RECORD_HEADER_BYTES } from '../format/record.js';
import { copyBytes } from '../format/bytes.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { lockDirectory, type DirectoryLock } from '../io/lock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { HashIndex } from '../index/hash-index.js';
import { OrderedIndex } from '../index/ordered-index.js';
import type { KeyIndex } from '../index/key-index.js';
import { BlockCache } from '../storage/block-cache.js';
import { DataFile, type DurableState } from '../storage/data-file.js';
import {
  checkManifestMatches,
  createRootFiles,
  destroyRootKeys,
  holdsDataFiles,
  openRootFiles,
  readManifestBytes,
  writeKeyringFile,
  writeManifestFile,
  type RootFiles,
} from './root-files.js';
import { filePath, shardDirectory, temporaryPath, TEMPORARY_SUFFIX } from './paths.js';
import { finishIndex, QUARANTINE_DIRECTORY, recover } from './recovery.js';
import { compactShard, deadRatio, type CompactionHost, type CompactionReport, type CompactOptions } from './compaction.js';
import { buildHint } from '../storage/hint-file.js';
import { Backoff } from './backoff.js';
import { crashPoint } from './crash-points.js';

const syncChannel = channel('armdb:sync');
const rotateChannel = channel('armdb:rotate');
const recoverChannel = channel('armdb:recover');
const hintChannel = channel('armdb:hint');
const compactChannel = channel('armdb:compact');
const keyChannel = channel('armdb:key');
const EMPTY = new Uint8Array(0);

/** One mutation of a write group: a put, or a delete when `value` is undefined. */
export interface WriteOperation {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

import type { Stats, VerifyOptions, VerifyReport } from './reports.js';
export type { Stats, VerifyOptions, VerifyReport } from './reports.js';

interface ShardState {
  readonly shard: number;
  active: DataFile;
  readonly files: DataFile[];
  directoryDirty: boolean;
}

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasherPromise: Promise<Hasher> | undefined;

/** @internal Engine options beyond the public ones (tests inject a file system). */
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
  #fileSystem: FileSystem;
  #provider: CryptoProvider;
  #keys: KeySet | undefined;
  /** The caller's credential (copied, wiped at close): re-deriving the KEK is needed to rewrite the KEYRING. */
  #credential: Credential | undefined;
  /**
   * scrypt cost of the durable KEYRING (undefined for a raw key): every rewrite keeps it unless
   * changeKey is asked for another, so reopening with a lower `scryptLogN` never lowers it.
   */
  #keyringScrypt: ScryptParameters | undefined;
  /** KEYRING rewrites (changeKey, rotateDataKey, shredding) one at a time. */
  #keyringChain: Promise<unknown> = Promise.resolve();
  /** Key operations (changeKey, rotateDataKey, crypto-shredding) run one at a time: see #exclusively. */
  #keyOperations: Promise<unknown> = Promise.resolve();
  #algorithm: AlgorithmId;
  #databaseId: Uint8Array;
  #manifestMacKey: Uint8Array;
  /**
   * The manifest MAC key of the next meta key while a key operation rotates it: every MANIFEST is then
   * signed under both, so that it verifies under whichever KEYRING a crash leaves (docs/format.md §7.4).
   */
  #nextManifestMacKey: Uint8Array | undefined;
  /** MANIFEST version written: the store's, until a key operation needs two MACs (version 2). */
  #manifestFormatVersion: ManifestFormatVersion;
  #lock: DirectoryLock;
  #hasher: Hasher;
  #shards: ShardState[] = [];
  readonly #shardCount: bigint;
  readonly #filesById = new Map<number, DataFile>();
  #sequence = 0;
  #epoch: number;
  #nextFileId: number;
  #poisonCause: unknown = undefined;
  #closing: Promise<void> | undefined;
  /** Files, keys and the lock are released: no barrier may run any more. */
  #released = false;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #tornBytes = 0;
  /** Sealed files waiting for their hint, and the worker writing them. */
  readonly #hintQueue: DataFile[] = [];
  #hintWorker: Promise<void> | undefined;
  /** The manifest must be rewritten even without new data (a hint was written). */
  #manifestStale = false;
  #damagedHints: string[] = [];
  /** The running compaction (one at a time), and the switch close() uses to stop it. */
  #compaction: Promise<CompactionReport> | undefined;
  /** Background compaction and hint writing that failed (ENOSPC, EIO) wait a few barriers before trying again. */
  readonly #compactionBackoff = new Backoff();
  readonly #hintBackoff = new Backoff();
  /**
   * Files that should be gone but could not be deleted (EIO from a failing device), with their data
   * key: crypto-shredding keeps such a key until the file is gone, or the next open would find a file
   * it can no longer authenticate.
   */
  readonly #undeletedFiles = new Map<string, number>();
  readonly #closeSignal = new AbortController();
  #filesFromHints = 0;
  /** Data files in `quarantine/` as of open (relative paths). */
  #quarantinedFiles: string[] = [];
  readonly #counters = { gets: 0, puts: 0, deletes: 0, pagesSealed: 0, bytesWritten: 0, syncs: 0, rotations: 0, compactions: 0 };

  private constructor(init: {
    directory: string;
    options: ResolvedOptions;
    collectionKind: CollectionKindId;
    fileSystem: FileSystem;
    provider: CryptoProvider;
    keys: KeySet | undefined;
    keyringScrypt: ScryptParameters | undefined;
    algorithm: AlgorithmId;
    databaseId: Uint8Array;
    manifestMacKey: Uint8Array;
    manifestFormatVersion: ManifestFormatVersion;
    lock: DirectoryLock;
    hasher: Hasher;
    epoch: number;
    nextFileId: number;
  }) {
    this.directory = init.directory;
    this.options = init.options;
    this.keySize = init.options.keySize;
    this.collectionKind = init.collectionKind;
    this.#fileSystem = init.fileSystem;
    this.#provider = init.provider;
    this.#keys = init.keys;
    this.#credential = init.options.credential;
    this.#keyringScrypt = init.keyringScrypt;
    this.#algorithm = init.algorithm;
    this.#databaseId = init.databaseId;
    this.#manifestMacKey = init.manifestMacKey;
    this.#manifestFormatVersion = init.manifestFormatVersion;
    this.#lock = init.lock;
    this.#hasher = init.hasher;
    this.#epoch = init.epoch;
    this.#nextFileId = init.nextFileId;
    const kind = init.collectionKind;
    const indexOptions = {
      valueSize: init.options.valueSize,
      keepsObjects: kind === CollectionKind.typedMap || kind === CollectionKind.typedTree,
    };
    this.ordered =
      kind === CollectionKind.varTree || kind === CollectionKind.constTree || kind === CollectionKind.typedTree
        ? new OrderedIndex(this.keySize, indexOptions)
        : undefined;
    this.index = this.ordered ?? new HashIndex(this.keySize, indexOptions);
    this.#compactionHost = this.#makeCompactionHost();
    this.#shardCount = BigInt(init.options.shards);
    // One budget for pages and for whole large values (more than two pages): whichever is read again stays.
    this.cache = init.options.cacheBytes > 0 ? new BlockCache(init.options.cacheBytes) : undefined;
  }

  /** Opens or creates the store in `directory`. */
  static async open(
    directory: string,
    options: ResolvedOptions,
    collectionKind: CollectionKindId,
    hooks: EngineHooks = {},
  ): Promise<Engine> {
    const fileSystem = hooks.fileSystem ?? nodeFileSystem;
    // xxhash-wasm is initialised here, never at module load (no top-level await: require() must work).
    const hasher = await (hasherPromise ??= xxhash());
    const root = path.resolve(directory);
    let lock: ReturnType<typeof lockDirectory>;
    try {
      const existed = fileSystem.exists(root);
      // The caller named this directory: it may be a symbolic link. Nothing inside it is followed.
      fileSystem.makeDirectory(root, { followLink: true });
      // A new store's directory entry must survive power loss too.
      if (!existed) await fileSystem.syncDirectory(path.dirname(root));
      lock = lockDirectory(root);
    } catch (error) {
      // ARMDB_LOCKED, or the directory could not be made: the engine's copy of the secret goes too.
      if (options.credential !== undefined) wipeCredential(options.credential);
      throw error;
    }
    let keys: KeySet | undefined;
    let manifestMacKey: Uint8Array | undefined;
    try {
      for (const name of fileSystem.list(root)) if (name.endsWith(TEMPORARY_SUFFIX)) fileSystem.unlink(path.join(root, name));
      const provider = options.cipher === 'noble' ? nobleProvider : nodeProvider;
      const rootFiles = await Engine.#openOrCreateRoot(fileSystem, root, options, collectionKind, provider);
      const { manifest, manifestFormatVersion, keyringScrypt } = rootFiles;
      keys = rootFiles.keys;
      manifestMacKey = rootFiles.manifestMacKey;
      const engine = new Engine({
        directory: root,
        options,
        collectionKind,
        fileSystem,
        provider,
        keys,
        keyringScrypt,
        algorithm: manifest.algorithm,
        databaseId: manifest.databaseId,
        manifestMacKey,
        manifestFormatVersion,
        lock,
        hasher,
        epoch: manifest.epoch,
        nextFileId: manifest.nextFileId,
      });
      try {
        await engine.#recover(manifest);
      } catch (error) {
        engine.#releaseResources();
        keys = undefined;
        throw error;
      }
      return engine;
    } catch (error) {
      destroyRootKeys(keys, manifestMacKey);
      if (options.credential !== undefined) wipeCredential(options.credential);
      lock.release();
      throw error;
    }
  }

  /** The root files of the store in `root`, created when there is no MANIFEST (and no data). */
  static async #openOrCreateRoot(
    fileSystem: FileSystem,
    root: string,
    options: ResolvedOptions,
    collectionKind: CollectionKindId,
    provider: CryptoProvider,
  ): Promise<RootFiles> {
    const manifestBytes = readManifestBytes(fileSystem, root);
    if (manifestBytes !== undefined) {
      const rootFiles = await openRootFiles(fileSystem, root, manifestBytes, options.credential, provider);
      try {
        checkManifestMatches(rootFiles.manifest, options, collectionKind);
      } catch (error) {
        destroyRootKeys(rootFiles.keys, rootFiles.manifestMacKey);
        throw error;
      }
      return rootFiles;
    }
    if (holdsDataFiles(fileSystem, root))
      throw integrityError('the MANIFEST is missing but data files exist; refusing to start over on top of them');
    if (options.expectedMinEpoch !== undefined && options.expectedMinEpoch > 0) {
      throw armdbError('ARMDB_ROLLBACK', `expected a store at epoch ${options.expectedMinEpoch} or later, but the directory holds none`);
    }
    return createRootFiles(fileSystem, root, options, collectionKind, provider);
  }

  async #recover(manifest: Manifest): Promise<void> {
    for (let shard = 0; shard < this.options.shards; shard++) this.#fileSystem.makeDirectory(shardDirectory(this.directory, shard));
    const result = recover({
      fileSystem: this.#fileSystem,
      directory: this.directory,
      manifest,
      keys: this.#keys,
      provider: this.#provider,
      keySize: this.keySize,
      index: this.index,
      // Const collections need their values in memory: hints do not carry them.
      useHints: this.options.hints && this.options.valueSize === 0,
    });
    this.#sequence = result.highestSequence;
    this.#damagedHints = result.damagedHints;
    this.#filesFromHints = result.filesFromHints;
    // Files created after the last barrier are on disk but not in the manifest: never reuse their ids.
    this.#nextFileId = Math.max(this.#nextFileId, result.highestFileId + 1);
    this.#tornBytes = result.tornBytes;
    for (let shard = 0; shard < this.options.shards; shard++) {
      const files = result.files[shard]!;
      for (const file of files) this.#filesById.set(file.fileId, file);
      const active = this.#createActiveFile(shard);
      files.push(active);
      this.#shards.push({ shard, active, files, directoryDirty: true });
    }
    finishIndex(this.index, this.#filesById, this.keySize);
    if (recoverChannel.hasSubscribers) {
      recoverChannel.publish({
        directory: this.directory,
        keys: this.index.size,
        tornBytes: result.tornBytes,
        removedFiles: [...result.removedFiles, ...result.temporaryFiles.map((name) => `${name} (temporary)`)],
        sealedFiles: result.sealedFiles,
        filesFromHints: result.filesFromHints,
        damagedHints: result.damagedHints,
      });
    }
    const quarantinePath = path.join(this.directory, QUARANTINE_DIRECTORY);
    // A file moved into quarantine/ must never be durably gone from its shard directory without being
    // durably in quarantine/: the new entries (and quarantine/ itself, in the root) first.
    if (result.quarantinedFiles.length > 0) {
      await this.#fileSystem.syncDirectory(quarantinePath);
      await this.#fileSystem.syncDirectory(this.directory);
    }
    // Deletions first, durably, then the seals of cut files (RecoveryResult.sealCutFiles): a power
    // loss must not keep a cut file sealed (looking intact) and bring back a file deleted after it.
    // Every recovered file is in #filesById by now, so a failure here releases them with the rest.
    if (result.removedFiles.length > 0) {
      await Promise.all(this.#shards.map((state) => this.#fileSystem.syncDirectory(shardDirectory(this.directory, state.shard))));
    }
    result.sealCutFiles();
    // A barrier is needed only when recovery changed what the manifest must say (a new store, files it
    // sealed or removed). New active files need no fsync until they hold data: recovery accepts
    // unlisted files with ids the manifest has not handed out yet. A clean open writes nothing.
    this.#quarantinedFiles = this.#fileSystem
      .list(quarantinePath)
      .filter((name) => /\.data(\.\d+)?$/.test(name))
      .sort()
      .map((name) => path.join(QUARANTINE_DIRECTORY, name));
    if (result.sealedFiles > 0 || result.removedFiles.length > 0 || result.damagedHints.length > 0 || result.temporaryFiles.length > 0)
      await this.#barrier();
    // Only now that a MANIFEST whose next file id is past them is durable: their ids stay used.
    for (const temporary of result.temporaryFiles) this.#fileSystem.unlink(temporary);
    for (const state of this.#shards) for (const file of state.files) if (file.sealed) this.#scheduleHint(file);
    if (this.options.syncIntervalMs > 0) {
      this.#timer = setInterval(() => {
        if (this.#hasUnsyncedWrites()) this.sync().catch(() => undefined);
      }, this.options.syncIntervalMs);
      this.#timer.unref();
    }
  }

  #createActiveFile(shard: number): DataFile {
    const file = this.#createFile(shard, false);
    file.keepsUnsyncedPages = this.cache !== undefined;
    this.#filesById.set(file.fileId, file);
    return file;
  }

  /** A new, empty file under the active data key; `temporary` names it `.tmp` until it is renamed. */
  #createFile(shard: number, temporary: boolean): DataFile {
    const fileId = this.#nextFileId++;
    const keyId = this.#keys?.activeKeyId ?? 0;
    const identity = {
      algorithm: this.#algorithm,
      kind: FileKind.data,
      databaseId: this.#databaseId,
      shard,
      fileId,
      keyId,
      salt: new Uint8Array(randomBytes(SALT_BYTES)),
    };
    const cipher = new FileCipher(this.#provider, identity, this.#keys?.dataKey(keyId), 'write');
    const suffix = temporary ? TEMPORARY_SUFFIX : '';
    const names = [filePath(this.directory, shard, fileId, 'data') + suffix, filePath(this.directory, shard, fileId, 'tags') + suffix];
    const handles: FileHandle[] = [];
    try {
      for (const name of names) handles.push(this.#fileSystem.open(name, 'create'));
      return DataFile.create(cipher, handles[0]!, handles[1]!, this.options.writeBufferBytes, this.#counters);
    } catch (error) {
      // ENOSPC creating the pair or writing its header: nothing refers to these files yet, so they
      // go now (best effort; recovery removes an unlisted half pair too) and no descriptor leaks.
      for (const handle of handles) handle.close();
      cipher.destroy();
      for (const name of names.slice(0, handles.length)) {
        try {
          this.#fileSystem.unlink(name);
        } catch {
          // Left to recovery (docs/durability.md §Recovery).
        }
      }
      throw error;
    }
  }

  // ---- routing -------------------------------------------------------------------------------

  /** The shard `key` belongs to: xxh64 of the key (or its first `shardPrefixBits` bits) mod shards. */
  shardOf(key: Uint8Array): number {
    this.#assertOpen();
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
    return Number(this.#hasher.h64Raw(routed, 0n) % this.#shardCount);
  }

  // ---- state checks --------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closing !== undefined) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (this.#poisonCause !== undefined) {
      throw armdbError('ARMDB_POISONED', 'an earlier write or fsync failed; close and reopen the collection', this.#poisonCause);
    }
  }

  /** Records a write-path failure: from now on every write is refused (fsync is never retried). */
  #poison(error: unknown): ArmdbError {
    if (this.#poisonCause === undefined) this.#poisonCause = error;
    if (error instanceof ArmdbError && error.code === 'ARMDB_POISONED') return error;
    return armdbError('ARMDB_POISONED', 'a write-path I/O operation failed; close and reopen the collection', error);
  }

  get isClosed(): boolean {
    return this.#closing !== undefined;
  }

  // ---- reads ---------------------------------------------------------------------------------

  get size(): number {
    this.#assertOpen();
    return this.index.size;
  }

  has(key: Uint8Array): boolean {
    this.#assertOpen();
    return this.index.find(key) >= 0;
  }

  /** The index handle of `key`, or -1 (counts a get). */
  find(key: Uint8Array): number {
    this.#assertOpen();
    this.#counters.gets++;
    return this.index.find(key);
  }

  /** The stored value of `key` (a fresh copy), or undefined. */
  get(key: Uint8Array): Uint8Array | undefined {
    this.#assertOpen();
    this.#counters.gets++;
    const handle = this.index.find(key);
    return handle < 0 ? undefined : this.readHandle(handle);
  }

  /** Reads the value an index entry points at. */
  readHandle(handle: number): Uint8Array {
    const entries = this.index.entries;
    if (entries.valueSize > 0) return entries.valueCopy(handle);
    const file = this.#filesById.get(entries.fileIds[handle]!);
    if (file === undefined) throw integrityError('the index points into a file that does not exist');
    return file.read(entries.positions[handle]! + RECORD_HEADER_BYTES + this.keySize, entries.valueLengths[handle]!, this.cache);
  }

  /** Values of many keys, read in file order. */
  getMany(keys: readonly Uint8Array[]): (Uint8Array | undefined)[] {
    this.#assertOpen();
    const entries = this.index.entries;
    const handles = keys.map((key) => this.index.find(key));
    const order = handles.map((_, position) => position).filter((position) => handles[position]! >= 0);
    order.sort((left, right) => {
      const a = handles[left]!;
      const b = handles[right]!;
      return entries.fileIds[a]! - entries.fileIds[b]! || entries.positions[a]! - entries.positions[b]!;
    });
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
    this.#assertWritable();
    const state = this.#shards[shard]!;
    try {
      if (state.active.writePosition >= this.options.maxFileBytes) this.#rotate(state);
      state.active.reserve(reserveBytes);
    } catch (error) {
      throw this.#poison(error);
    }
    return state.active;
  }

  #apply(active: DataFile, key: Uint8Array, value: Uint8Array | undefined, batchFlag: number): void {
    const sequence = ++this.#sequence;
    const recordPosition = active.append(sequence, (value === undefined ? RecordFlag.tombstone : 0) | batchFlag, key, value ?? EMPTY);
    if (value === undefined) {
      const handle = this.index.find(key);
      if (handle >= 0) {
        this.#releaseLive(handle);
        this.index.remove(key);
      }
      this.#counters.deletes++;
      return;
    }
    const entries = this.index.entries;
    const handle = this.index.findOrInsert(key);
    if (entries.sequences[handle] !== 0) this.#releaseLive(handle);
    entries.setLocation(handle, active.fileId, recordPosition, value.length, sequence);
    if (entries.valueSize > 0) entries.setValue(handle, value);
    if (entries.objects !== undefined) entries.objects[handle] = undefined;
    active.liveBytes += recordBytes(this.keySize, value.length);
    this.#counters.puts++;
  }

  #releaseLive(handle: number): void {
    const entries = this.index.entries;
    const file = this.#filesById.get(entries.fileIds[handle]!);
    if (file !== undefined) file.liveBytes -= recordBytes(this.keySize, entries.valueLengths[handle]!);
  }

  #rotate(state: ShardState): void {
    const previous = state.active;
    previous.seal();
    state.active = this.#createActiveFile(state.shard);
    state.files.push(state.active);
    state.directoryDirty = true;
    this.#counters.rotations++;
    this.#scheduleHint(previous);
    if (rotateChannel.hasSubscribers)
      rotateChannel.publish({
        directory: this.directory,
        shard: state.shard,
        sealedFileId: previous.fileId,
        activeFileId: state.active.fileId,
      });
  }

  /** Hands complete pages of every write buffer to the OS (no fsync). */
  flush(): void {
    this.#assertWritable();
    try {
      for (const state of this.#shards) state.active.writeCompletePages();
    } catch (error) {
      throw this.#poison(error);
    }
  }

  // ---- durability ----------------------------------------------------------------------------

  #hasUnsyncedWrites(): boolean {
    for (const file of this.#filesById.values()) if (file.dirty || file.writePosition > file.pageCount * PAGE_BYTES) return true;
    return false;
  }

  /**
   * Durability barrier with group commit: every mutation that returned before the call is durable
   * when the promise resolves. Calls made while a barrier runs share the next one.
   */
  sync(): Promise<void> {
    try {
      this.#assertWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#scheduleBarrier();
  }

  #scheduleBarrier(): Promise<void> {
    if (this.#running === undefined) {
      this.#running = this.#barrier().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#scheduleBarrier();
      });
    return this.#queued;
  }

  async #barrier(): Promise<void> {
    if (this.#released) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    if (this.#poisonCause !== undefined) throw this.#poison(this.#poisonCause);
    const started = performance.now();
    try {
      for (const state of this.#shards) state.active.sealPartialPage();
      // Everything the MANIFEST will say is taken here, in the same synchronous step as the snapshot
      // of what the fsyncs below make durable. State read after an await may describe a newer store:
      // a compaction that adopts its output while the fsyncs run drops its input files from the live
      // file list, and a MANIFEST built from that list would claim the new file set while the active
      // files' durable counts still exclude the writes that superseded the records compaction skipped
      // (an acknowledged write lost at the next crash). The adoption is recorded by the next barrier.
      const snapshots: { file: DataFile; state: DurableState }[] = [];
      const listedFiles: ManifestFile[] = [];
      for (const file of this.#filesById.values()) {
        let durable = file.durable;
        if (file.dirty) {
          file.dirty = false;
          durable = { pageCount: file.pageCount, tagDigest: file.currentDigest(), sealed: file.sealed };
          snapshots.push({ file, state: durable });
        } else if (!file.listed) continue;
        listedFiles.push({
          shard: file.shard,
          state: durable.sealed ? FileState.sealed : FileState.active,
          fileId: file.fileId,
          keyId: file.keyId,
          pageCount: durable.pageCount,
          headerMac: file.headerMac,
          tagDigest: durable.tagDigest,
          hintMac: file.hintMac,
        });
      }
      listedFiles.sort((left, right) => left.shard - right.shard || left.fileId - right.fileId);
      const nextFileId = this.#nextFileId;
      const activeKeyId = this.#keys?.activeKeyId ?? 0;
      const directories = this.#shards.filter((state) => state.directoryDirty);
      for (const state of directories) state.directoryDirty = false;
      const manifestStale = this.#manifestStale;
      this.#manifestStale = false;
      if (snapshots.length === 0 && directories.length === 0 && !manifestStale) return;
      crashPoint('barrier:snapshot-taken', () => ({
        directory: this.directory,
        fileIds: listedFiles.map((file) => file.fileId),
        epoch: this.#epoch,
      }));
      await Promise.all(snapshots.flatMap(({ file }) => [file.dataHandle.sync(), file.tagHandle.sync()]));
      crashPoint('barrier:files-synced', () => ({ directory: this.directory, fileIds: snapshots.map(({ file }) => file.fileId) }));
      await Promise.all(directories.map((state) => this.#fileSystem.syncDirectory(shardDirectory(this.directory, state.shard))));
      crashPoint('barrier:directories-synced', () => ({ directory: this.directory }));
      for (const { file, state } of snapshots) {
        file.durable = state;
        file.listed = true;
        file.promoteDurablePages(this.cache);
      }
      await this.#writeManifest(listedFiles, nextFileId, activeKeyId);
      this.#counters.syncs++;
      this.#maybeCompactInBackground();
      this.#retryHints();
      if (syncChannel.hasSubscribers) {
        syncChannel.publish({
          directory: this.directory,
          epoch: this.#epoch,
          files: snapshots.length,
          durationMs: performance.now() - started,
        });
      }
    } catch (error) {
      throw this.#poison(error);
    }
  }

  /** Writes the next MANIFEST: `files` and the rest exactly as a barrier's snapshot took them. */
  async #writeManifest(files: readonly ManifestFile[], nextFileId: number, activeKeyId: number): Promise<void> {
    // Every listed file existed when the snapshot was taken, so its id is below the id counter then.
    for (const file of files)
      if (file.fileId >= nextFileId) throw new Error(`the manifest would list file ${file.fileId} at or past its next id ${nextFileId}`);
    const manifest: Manifest = {
      epoch: this.#epoch + 1,
      algorithm: this.#algorithm,
      collectionKind: this.collectionKind,
      databaseId: this.#databaseId,
      keySize: this.keySize,
      valueSize: this.options.valueSize,
      shards: this.options.shards,
      shardPrefixBits: this.options.shardPrefixBits,
      activeKeyId,
      nextFileId,
      files,
    };
    const bytes = this.#signManifest(manifest);
    await writeManifestFile(this.#fileSystem, this.directory, bytes);
    this.#epoch = manifest.epoch;
  }

  // ---- hints -------------------------------------------------------------------------------

  #hintsWanted(): boolean {
    return this.options.hints && this.options.valueSize === 0;
  }

  /** Queues a sealed file for its hint; the worker runs off the write path, a chunk at a time. */
  #scheduleHint(file: DataFile): void {
    if (!this.#hintsWanted() || file.hintMac !== undefined || this.#hintQueue.includes(file)) return;
    this.#hintQueue.push(file);
    this.#hintWorker ??= this.#writeQueuedHints().finally(() => {
      this.#hintWorker = undefined;
    });
  }

  async #writeQueuedHints(): Promise<void> {
    for (let file = this.#hintQueue.shift(); file !== undefined; file = this.#hintQueue.shift()) {
      if (this.#poisonCause !== undefined || !this.#filesById.has(file.fileId)) continue;
      try {
        if (await this.#writeHint(file)) this.#hintBackoff.succeeded();
      } catch (error) {
        // A hint is an optimisation: failing to write one costs a scan at the next open, nothing more.
        // The round stops here (the next hint would meet the same full disk after a whole decrypting
        // read); the queued files are tried again after later barriers (#retryHints), less often
        // while failures go on: one failure per round.
        this.#hintBackoff.failed();
        this.#hintQueue.length = 0;
        if (hintChannel.hasSubscribers) hintChannel.publish({ directory: this.directory, fileId: file.fileId, error });
      }
    }
  }

  /**
   * fsync of a shard directory outside a barrier (compaction, the hint writer). Its failure poisons
   * even there: the directory also holds the entries of active files created since the last barrier,
   * and after a failed directory fsync a later one that succeeds may not have made them durable (the
   * reasoning behind never retrying an fsync, §11).
   */
  async #syncShardDirectory(shard: number): Promise<void> {
    try {
      await this.#fileSystem.syncDirectory(shardDirectory(this.directory, shard));
    } catch (error) {
      throw this.#poison(error);
    }
  }

  /** After a barrier: hints that failed are queued again once the backoff allows. */
  #retryHints(): void {
    if (!this.#hintsWanted() || this.#hintBackoff.failures === 0 || this.#hintWorker !== undefined || this.#closing !== undefined) return;
    if (!this.#hintBackoff.allow()) return;
    for (const state of this.#shards)
      for (const file of state.files) if (file.sealed && file.hintMac === undefined) this.#scheduleHint(file);
  }

  /** Builds and writes the hint of `file`; false if the file was retired meanwhile (nothing written). */
  async #writeHint(file: DataFile): Promise<boolean> {
    const dataKey = this.#keys?.dataKey(file.keyId);
    const stillLive = (): boolean => this.#filesById.get(file.fileId) === file;
    const built = await buildHint(file, this.keySize, this.#provider, dataKey, async () => {
      await yieldToEventLoop();
      return stillLive();
    });
    if (built === undefined || !stillLive()) return false;
    const { bytes, headerMac } = built;
    const target = filePath(this.directory, file.shard, file.fileId, 'hint');
    // A fresh name, created exclusively: nothing planted in the shard directory is written through.
    const temporary = temporaryPath(target);
    try {
      await this.#fileSystem.writeFile(temporary, bytes);
    } catch (error) {
      // A partial hint (ENOSPC half-way) goes at once rather than at the next open; best effort.
      try {
        if (this.#fileSystem.exists(temporary)) this.#fileSystem.unlink(temporary);
      } catch {
        // The open-time sweep of temporary files removes it.
      }
      throw error;
    }
    if (!this.#filesById.has(file.fileId)) {
      // Compaction retired the file while its hint was being written.
      this.#fileSystem.unlink(temporary);
      return false;
    }
    crashPoint('hint:temporary-written', () => ({ directory: this.directory, shard: file.shard, fileIds: [file.fileId] }));
    try {
      this.#fileSystem.rename(temporary, target);
    } catch (error) {
      // Something that is no file holds the hint's name (a directory): the hint is only an optimisation.
      this.#fileSystem.unlink(temporary);
      throw error;
    }
    crashPoint('hint:renamed', () => ({ directory: this.directory, shard: file.shard, fileIds: [file.fileId] }));
    await this.#syncShardDirectory(file.shard);
    crashPoint('hint:directory-synced', () => ({ directory: this.directory, shard: file.shard, fileIds: [file.fileId] }));
    file.hintMac = headerMac;
    this.#manifestStale = true;
    return true;
  }

  // ---- key lifecycle (docs/security-model.md §Key lifecycle) ---------------------------------

  #requireKeys(operation: string): KeySet {
    this.#assertWritable();
    if (this.#keys === undefined || this.#credential === undefined) {
      throw armdbError('ARMDB_FORMAT_MISMATCH', `${operation} needs an encrypted store; this one was created with encryption: 'none'`);
    }
    return this.#keys;
  }

  /**
   * A MANIFEST signed under the manifest MAC key, and under the next one as well while the meta key
   * rotates (docs/format.md §7.4).
   */
  #signManifest(manifest: Manifest): Uint8Array {
    const macKey = this.#manifestMacKey;
    const nextMacKey = this.#nextManifestMacKey;
    return encodeManifest(manifest, (body) => this.#provider.hmac(macKey, body), {
      formatVersion: this.#manifestFormatVersion,
      nextMac: nextMacKey === undefined ? undefined : (body) => this.#provider.hmac(nextMacKey, body),
    });
  }

  /**
   * Seals and atomically replaces the KEYRING with the current keys under `credential`, at scrypt
   * cost `scrypt` (the stored cost unless changeKey was asked for another), with a **new meta key**
   * (docs/security-model.md §Key lifecycle): a copy of an older KEYRING, opened with the credential it
   * was sealed under, then yields a manifest MAC key that no longer signs this store's MANIFEST.
   *
   * Order, so that the store opens after a crash at any point (docs/format.md §7.4):
   *   1. seal the new KEYRING (the KDF runs; barriers go on meanwhile, signed under the current key);
   *   2. from now on sign every MANIFEST under the current and the next key, and make one such
   *      MANIFEST durable (a barrier): it verifies under the old and under the new KEYRING;
   *   3. replace the KEYRING (the commit point);
   *   4. sign under the next key alone.
   */
  #writeKeyring(credential: Credential, scrypt: ScryptParameters | undefined, activeKeyId?: number): Promise<void> {
    const keys = this.#keys!;
    const write = this.#keyringChain.then(async () => {
      const nextMetaKey = createMetaKey();
      const nextMacKey = deriveManifestMacKey(this.#provider, nextMetaKey, keys.databaseId);
      const forget = (): void => {
        if (this.#nextManifestMacKey === nextMacKey) this.#nextManifestMacKey = undefined;
        nextMetaKey.fill(0);
        nextMacKey.fill(0);
      };
      let bytes: Uint8Array;
      try {
        bytes = await sealKeyring(keys, credential, this.#provider, {
          activeKeyId: activeKeyId ?? keys.activeKeyId,
          scrypt,
          metaKey: nextMetaKey,
        });
        // Two MACs need MANIFEST version 2: a version-1 store is upgraded here, at its first key operation.
        this.#manifestFormatVersion = MANIFEST_FORMAT_VERSION;
        this.#nextManifestMacKey = nextMacKey;
        this.#manifestStale = true;
        await this.#scheduleBarrier();
      } catch (error) {
        // The KEYRING is unchanged: the current meta key stays (the MANIFEST on disk verifies under it).
        forget();
        throw error;
      }
      try {
        await writeKeyringFile(this.#fileSystem, this.directory, bytes);
      } catch (error) {
        // Either KEYRING may be on disk now; the MANIFEST on disk verifies under both, and the poisoned
        // collection writes no other.
        forget();
        throw this.#poison(error);
      }
      keys.replaceMetaKey(nextMetaKey);
      this.#manifestMacKey.fill(0);
      this.#manifestMacKey = nextMacKey;
      this.#nextManifestMacKey = undefined;
    });
    this.#keyringChain = write.catch(() => undefined);
    return write;
  }

  /**
   * Runs a key operation after every key operation called before it has settled. Each one reads the
   * key set and the credential, rewrites the KEYRING and then changes them in memory; interleaved, a
   * rotation's KEYRING could be sealed with a credential that changeKey has already wiped, or shredding
   * could drop a key that a rotation had added but not yet made active.
   */
  #exclusively<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#keyOperations.then(operation);
    this.#keyOperations = run.catch(() => undefined);
    return run;
  }

  /**
   * Re-wraps the data keys under a new key or passphrase, with a new meta key (see #writeKeyring).
   * The KEYRING is replaced in one atomic step, after a MANIFEST signed under both meta keys is
   * durable: a crash leaves exactly one of the old and the new credential working.
   */
  async changeKey(next: Credential): Promise<void> {
    this.#requireKeys('changeKey');
    return this.#exclusively(async () => {
      this.#requireKeys('changeKey');
      // The stored cost stays unless the caller chose one (`scryptLogN`); a raw key store turning into
      // a passphrase store gets the default.
      const scrypt = next.kind === 'passphrase' ? (next.scrypt ?? this.#keyringScrypt ?? DEFAULT_SCRYPT) : undefined;
      await this.#writeKeyring(next, scrypt);
      this.#keyringScrypt = scrypt;
      crashPoint('change-key:keyring-written', () => ({ directory: this.directory }));
      const previous = this.#credential!;
      this.#credential = next;
      wipeCredential(previous);
      if (keyChannel.hasSubscribers) keyChannel.publish({ directory: this.directory, event: 'changeKey' });
    });
  }

  /**
   * Makes a fresh data key active: the KEYRING gains it first (atomically), then every shard moves to
   * a new active file under it. Older files keep their key until compaction rewrites them
   * (`compact({ reencrypt: true })`), after which the old key is removed from the KEYRING.
   */
  async rotateDataKey(): Promise<void> {
    this.#requireKeys('rotateDataKey');
    return this.#exclusively(() => this.#rotateDataKeyNow());
  }

  async #rotateDataKeyNow(): Promise<void> {
    const keys = this.#requireKeys('rotateDataKey');
    // The new key is always the highest id and active; only non-active keys are ever removed, so an
    // id is never handed out twice.
    const keyId = keys.addDataKey();
    // Active in memory (new files, the manifest) only once the KEYRING that holds it is durable.
    try {
      await this.#writeKeyring(this.#credential!, this.#keyringScrypt, keyId);
    } catch (error) {
      keys.removeDataKey(keyId);
      throw error;
    }
    crashPoint('rotate-key:keyring-written', () => ({ directory: this.directory }));
    keys.activeKeyId = keyId;
    try {
      for (const state of this.#shards) this.#rotate(state);
    } catch (error) {
      throw this.#poison(error);
    }
    crashPoint('rotate-key:rotated', () => ({ directory: this.directory, fileIds: this.#shards.map((state) => state.active.fileId) }));
    this.#manifestStale = true;
    await this.#scheduleBarrier();
    if (keyChannel.hasSubscribers) keyChannel.publish({ directory: this.directory, event: 'rotateDataKey', activeKeyId: keyId });
  }

  /** Crypto-shredding: data keys no file (data or hint) uses any more leave the KEYRING. */
  #shredUnusedKeys(): Promise<number[]> {
    return this.#exclusively(() => this.#shredUnusedKeysNow());
  }

  async #shredUnusedKeysNow(): Promise<number[]> {
    const keys = this.#keys;
    if (keys === undefined || this.#credential === undefined) return [];
    const inUse = new Set<number>([keys.activeKeyId]);
    for (const file of this.#filesById.values()) inUse.add(file.keyId);
    // A file that should be gone but is still on disk keeps its key: try to delete it once more.
    for (const [name, keyId] of [...this.#undeletedFiles]) {
      this.#deleteOrRemember(name, keyId, keyChannel);
      if (this.#undeletedFiles.has(name)) inUse.add(keyId);
    }
    const unused = keys.keyIds.filter((keyId) => !inUse.has(keyId));
    if (unused.length === 0) return [];
    // The unlinks of the files under these keys must be durable before the keys go: otherwise a
    // power loss could bring back a file whose key no longer exists.
    await Promise.all(this.#shards.map((state) => this.#fileSystem.syncDirectory(shardDirectory(this.directory, state.shard))));
    crashPoint('shred:directories-synced', () => ({ directory: this.directory }));
    for (const keyId of unused) keys.removeDataKey(keyId);
    await this.#writeKeyring(this.#credential, this.#keyringScrypt);
    crashPoint('shred:keyring-written', () => ({ directory: this.directory }));
    if (keyChannel.hasSubscribers) keyChannel.publish({ directory: this.directory, event: 'shred', keyIds: unused });
    return unused;
  }

  // ---- warmup --------------------------------------------------------------------------------

  /**
   * Loads every page that holds a live value into the cache, file by file in page order (one pread
   * per run of pages), then every value that spans more than two pages as a whole value (the form in
   * which `get` caches it), in file and position order, all up to `cacheBytes`. Const and Typed
   * collections hold their values in memory already; there is nothing to load for them.
   */
  async warmup(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    this.#assertOpen();
    const cache = this.cache;
    const entries = this.index.entries;
    if (cache === undefined || entries.valueSize > 0 || entries.objects !== undefined) return;
    const pagesByFile = new Map<number, Set<number>>();
    // Large values as flat triples: file id, value position, length.
    const largeValues: number[] = [];
    this.index.forEachHandle((handle) => {
      const start = entries.positions[handle]! + RECORD_HEADER_BYTES + this.keySize;
      const length = entries.valueLengths[handle]!;
      const fileId = entries.fileIds[handle]!;
      const firstPage = Math.floor(start / PAGE_BYTES);
      const lastPage = Math.floor((start + Math.max(length, 1) - 1) / PAGE_BYTES);
      if (lastPage - firstPage + 1 > 2) {
        largeValues.push(fileId, start, length);
        return;
      }
      let pages = pagesByFile.get(fileId);
      if (pages === undefined) pagesByFile.set(fileId, (pages = new Set()));
      for (let page = firstPage; page <= lastPage; page++) pages.add(page);
    });
    let budgetPages = Math.floor(cache.capacityBytes / PAGE_BYTES);
    for (const [fileId, pageSet] of [...pagesByFile].sort(([left], [right]) => left - right)) {
      const pages = [...pageSet].sort((left, right) => left - right);
      for (let index = 0; index < pages.length && budgetPages > 0; ) {
        if (options.signal?.aborted) throw armdbError('ARMDB_ABORTED', 'warmup was aborted', options.signal.reason);
        this.#assertOpen();
        const file = this.#filesById.get(fileId);
        if (file === undefined) break;
        let runEnd = index + 1;
        while (runEnd < pages.length && pages[runEnd] === pages[runEnd - 1]! + 1 && runEnd - index < 64 && runEnd - index < budgetPages)
          runEnd++;
        budgetPages -= file.warmPages(pages[index]!, runEnd - index, cache);
        index = runEnd;
        await yieldToEventLoop();
      }
    }
    const order = Array.from({ length: largeValues.length / 3 }, (_, index) => index * 3);
    order.sort((left, right) => largeValues[left]! - largeValues[right]! || largeValues[left + 1]! - largeValues[right + 1]!);
    let budgetBytes = budgetPages * PAGE_BYTES;
    let sinceYield = 0;
    for (const at of order) {
      const length = largeValues[at + 2]!;
      if (length > budgetBytes) continue;
      if (options.signal?.aborted) throw armdbError('ARMDB_ABORTED', 'warmup was aborted', options.signal.reason);
      this.#assertOpen();
      const file = this.#filesById.get(largeValues[at]!);
      if (file === undefined) continue;
      const cached = file.warmLargeValue(largeValues[at + 1]!, length, cache);
      budgetBytes -= cached;
      sinceYield += cached;
      if (sinceYield >= 64 * PAGE_BYTES) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
    }
  }

  // ---- compaction --------------------------------------------------------------------------

  /**
   * Rewrites sealed files with dead bytes (all of them, after rotating the active files) and, with
   * `reencrypt`, every file not under the active data key. One compaction runs at a time.
   */
  compact(options: CompactOptions = {}): Promise<CompactionReport> {
    try {
      this.#assertWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    const previous = this.#compaction?.catch(() => undefined) ?? Promise.resolve(undefined);
    const run = previous.then(() => this.#compactNow(options, true));
    this.#trackCompaction(run);
    // An explicit run that succeeds shows the disk has room again: background runs need not wait.
    run.then(
      () => this.#compactionBackoff.succeeded(),
      () => undefined,
    );
    return run;
  }

  #trackCompaction(run: Promise<CompactionReport>): void {
    this.#compaction = run;
    run
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (this.#compaction === run) this.#compaction = undefined;
      });
  }

  #maybeCompactInBackground(): void {
    if (!this.options.autoCompact || this.#compaction !== undefined || this.#closing !== undefined || this.#poisonCause !== undefined)
      return;
    if (!this.#shards.some((state) => this.#candidates(state, false, false).length > 0)) return;
    if (!this.#compactionBackoff.allow()) return;
    const run = this.#compactNow({}, false);
    this.#trackCompaction(run);
    run.then(
      () => this.#compactionBackoff.succeeded(),
      (error: unknown) => {
        // Stopped by close(), or the store is poisoned: nothing to try again.
        const stopped =
          error instanceof ArmdbError &&
          (error.code === 'ARMDB_ABORTED' || error.code === 'ARMDB_POISONED' || error.code === 'ARMDB_CLOSED');
        if (!stopped) this.#compactionBackoff.failed();
        if (compactChannel.hasSubscribers) compactChannel.publish({ directory: this.directory, error });
      },
    );
  }

  #candidates(state: ShardState, forced: boolean, reencrypt: boolean): DataFile[] {
    const activeKeyId = this.#keys?.activeKeyId ?? 0;
    return state.files.filter((file) => {
      if (file === state.active || !file.sealed || !file.durable.sealed) return false;
      if (reencrypt && file.keyId !== activeKeyId) return true;
      const deadBytes = file.streamBytes - file.liveBytes;
      if (file.liveBytes >= file.liveBytesWhenCompacted) return false;
      if (forced) return deadBytes >= PAGE_BYTES;
      return deadBytes >= 2 * PAGE_BYTES && deadRatio(file) >= this.options.compactionThreshold;
    });
  }

  async #compactNow(options: CompactOptions, forced: boolean): Promise<CompactionReport> {
    const started = performance.now();
    this.#assertWritable();
    if (forced) {
      // Make everything written so far compactable: seal the active files that hold data.
      try {
        for (const state of this.#shards) if (state.active.writePosition > 0) this.#rotate(state);
      } catch (error) {
        throw this.#poison(error);
      }
    }
    await this.#scheduleBarrier();
    const signal = options.signal === undefined ? this.#closeSignal.signal : AbortSignal.any([options.signal, this.#closeSignal.signal]);
    const totals = { filesIn: 0, filesOut: 0, bytesIn: 0, bytesOut: 0, recordsMoved: 0, tombstonesKept: 0, tombstonesDropped: 0 };
    for (const state of this.#shards) {
      const candidates = this.#candidates(state, forced, options.reencrypt === true);
      if (candidates.length === 0) continue;
      let result;
      // Neither a page that fails authentication nor an I/O error of compaction's own files (ENOSPC,
      // EIO while writing, syncing or renaming its outputs) is a write-path failure: the outputs are
      // discarded, the inputs stay listed, nothing acknowledged depends on them, and the store stays
      // writable. The barrier that makes the switch durable poisons on failure as every barrier does.
      result = await compactShard(this.#compactionHost, state.shard, candidates, signal);
      for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += result[name];
    }
    this.#counters.compactions++;
    const shreddedKeyIds = await this.#shredUnusedKeys();
    const report: CompactionReport = {
      ...totals,
      shreddedKeyIds,
      bytesReclaimed: Math.max(0, totals.bytesIn - totals.bytesOut),
      durationMs: performance.now() - started,
    };
    if (compactChannel.hasSubscribers) compactChannel.publish({ directory: this.directory, ...report });
    return report;
  }

  readonly #compactionHost: CompactionHost;

  #makeCompactionHost(): CompactionHost {
    return {
      keySize: this.keySize,
      maxFileBytes: this.options.maxFileBytes,
      index: this.index,
      createOutput: (shard) => this.#createFile(shard, true),
      finalizeOutputs: async (shard, outputs) => {
        const detail = { directory: this.directory, shard, fileIds: outputs.map((file) => file.fileId) };
        crashPoint('compaction:outputs-written', () => detail);
        await Promise.all(outputs.flatMap((file) => [file.dataHandle.sync(), file.tagHandle.sync()]));
        crashPoint('compaction:outputs-synced', () => detail);
        for (const file of outputs) {
          // Tags first: a kill between the two renames leaves a lone tag file (it holds no record and is
          // deleted at open) rather than a lone data file, which cannot be authenticated and would be
          // quarantined (verify() not ok after an ordinary crash; found by the overlapping-compaction
          // kill cycles).
          for (const extension of ['tags', 'data'] as const) {
            const final = filePath(this.directory, shard, file.fileId, extension);
            this.#fileSystem.rename(final + TEMPORARY_SUFFIX, final);
          }
        }
        crashPoint('compaction:outputs-renamed', () => detail);
        await this.#syncShardDirectory(shard);
        crashPoint('compaction:directory-synced', () => detail);
      },
      discardOutputs: (outputs) => {
        for (const file of outputs) {
          file.close();
          for (const extension of ['data', 'tags'] as const) {
            for (const name of [
              filePath(this.directory, file.shard, file.fileId, extension),
              filePath(this.directory, file.shard, file.fileId, extension) + TEMPORARY_SUFFIX,
            ]) {
              // Best effort: an output left behind (the disk that failed may fail this too) holds only
              // copies, and recovery removes or keeps it as such (docs/durability.md §Recovery).
              this.#deleteOrRemember(name, file.keyId, compactChannel);
            }
          }
        }
      },
      filesOf: (shard) => this.#shards[shard]!.files,
      adopt: (shard, outputs, retired) => {
        const state = this.#shards[shard]!;
        for (const file of retired) {
          this.#filesById.delete(file.fileId);
          state.files.splice(state.files.indexOf(file), 1);
        }
        for (const file of outputs) {
          file.durable = { pageCount: file.pageCount, tagDigest: file.currentDigest(), sealed: true };
          file.dirty = false;
          file.listed = true;
          file.liveBytesWhenCompacted = file.liveBytes;
          this.#filesById.set(file.fileId, file);
          state.files.push(file);
        }
        state.files.sort((left, right) => left.fileId - right.fileId);
        this.#manifestStale = true;
        crashPoint('compaction:adopted', () => ({
          directory: this.directory,
          shard,
          fileIds: [...outputs, ...retired].map((file) => file.fileId),
        }));
      },
      persist: async () => {
        await this.#scheduleBarrier();
        crashPoint('compaction:persisted', () => ({ directory: this.directory }));
      },
      retire: async (files) => {
        for (const file of files) {
          file.close();
          this.cache?.dropFile(file.fileId);
        }
        for (const state of this.#shards)
          for (const file of state.files) if (file.sealed && file.hintMac === undefined) this.#scheduleHint(file);
        for (const file of files) {
          for (const extension of ['data', 'tags', 'hint'] as const) {
            const name = filePath(this.directory, file.shard, file.fileId, extension);
            // The MANIFEST without these files is durable: a file that cannot be deleted now is a
            // leftover that the next open deletes. Nothing to poison, nothing lost.
            try {
              if (this.#fileSystem.exists(name)) await this.#fileSystem.removeFile(name);
            } catch (error) {
              this.#undeletedFiles.set(name, file.keyId);
              if (compactChannel.hasSubscribers) compactChannel.publish({ directory: this.directory, error });
            }
          }
          crashPoint('compaction:input-deleted', () => ({ directory: this.directory, shard: file.shard, fileIds: [file.fileId] }));
        }
        crashPoint('compaction:inputs-deleted', () => ({ directory: this.directory, fileIds: files.map((file) => file.fileId) }));
      },
      yieldToEventLoop: () => yieldToEventLoop(),
    };
  }

  /** Deletes a file nothing refers to any more; on failure remembers it (for shredding) and publishes the error. */
  #deleteOrRemember(name: string, keyId: number, diagnostics: ReturnType<typeof channel>): void {
    try {
      if (this.#fileSystem.exists(name)) this.#fileSystem.unlink(name);
      this.#undeletedFiles.delete(name);
    } catch (error) {
      this.#undeletedFiles.set(name, keyId);
      if (diagnostics.hasSubscribers) diagnostics.publish({ directory: this.directory, error });
    }
  }

  // ---- verification --------------------------------------------------------------------------

  /**
   * Authenticates every sealed page of every file, reporting each failure with file and page.
   *
   * Runs in slices between which compaction may retire files and create new ones: a file retired
   * part-way is left (its handle is closed; its live records are in the new files), and a file that
   * appears meanwhile is verified in its turn if it holds records written before verify began (a
   * compaction output). Files holding only later writes are left to the next verify, so a store that
   * keeps writing cannot keep verify running.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    this.#assertOpen();
    if (options.signal?.aborted) throw armdbError('ARMDB_ABORTED', 'verify was aborted', options.signal.reason);
    const failures: { shard: number; fileId: number; pageIndex: number; message: string }[] = [];
    const present = new Set(this.#filesById.values());
    const sequenceAtStart = this.#sequence;
    const inScope = (file: DataFile): boolean => present.has(file) || file.lowestSequence <= sequenceAtStart;
    /** Pages of the live in-scope files not verified yet, `file` from page `from` on. */
    const pagesLeft = (file: DataFile, from: number): number => {
      let left = file.pageCount - from;
      let after = false;
      for (const other of this.#filesById.values()) {
        if (after && inScope(other)) left += other.pageCount;
        if (other === file) after = true;
      }
      return left;
    };
    let files = 0;
    let pagesDone = 0;
    const chunkPages = 64;
    // A Map's iterator visits entries added during the iteration and skips deleted ones.
    for (const file of this.#filesById.values()) {
      if (!inScope(file)) continue;
      files++;
      for (let first = 0; first < file.pageCount; first += chunkPages) {
        if (options.signal?.aborted) throw armdbError('ARMDB_ABORTED', 'verify was aborted', options.signal.reason);
        this.#assertOpen();
        // Retired by a compaction during the last yield.
        if (this.#filesById.get(file.fileId) !== file) break;
        const count = Math.min(chunkPages, file.pageCount - first);
        for (let pageIndex = first; pageIndex < first + count; pageIndex++) {
          try {
            file.readVerifiedPages(pageIndex, 1);
          } catch (error) {
            if (!(error instanceof ArmdbError)) throw error;
            failures.push({ shard: file.shard, fileId: file.fileId, pageIndex, message: error.message });
          }
        }
        pagesDone += count;
        options.onProgress?.({ pagesDone, pagesTotal: pagesDone + pagesLeft(file, first + count) });
        await yieldToEventLoop();
      }
    }
    const quarantinedFiles = [...this.#quarantinedFiles];
    return {
      files,
      pages: pagesDone,
      bytes: pagesDone * PAGE_BYTES,
      failures,
      quarantinedFiles,
      ok: failures.length === 0 && quarantinedFiles.length === 0,
    };
  }

  // ---- observability -------------------------------------------------------------------------

  stats(): Stats {
    let totalBytes = 0;
    let liveBytes = 0;
    const filesPerKeyId: Record<number, number> = {};
    for (const file of this.#filesById.values()) {
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
      files: this.#filesById.size,
      epoch: this.#epoch,
      recoveredTornBytes: this.#tornBytes,
      filesFromHints: this.#filesFromHints,
      damagedHints: this.#damagedHints.length,
      filesPerKeyId,
      quarantinedFiles: this.#quarantinedFiles.length,
      indexBytes: this.index.memoryBytes,
    };
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Seals every active file, runs a last barrier, and releases files, keys and the lock. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#closeOnce();
    return this.#closing;
  }

  async #closeOnce(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#closeSignal.abort();
    try {
      // A key operation under way (a KEYRING sealed after the keys were zeroed would lose them) and a
      // compaction (whose crypto-shredding is one) finish first; queued key operations then refuse.
      await this.#keyOperations;
      await this.#compaction?.catch(() => undefined);
      await this.#keyOperations;
      // A queued barrier becomes the running one when the running one settles: wait until neither is
      // left, or close()'s own barrier would run beside it (both writing MANIFEST.tmp; and the late
      // one writing its MANIFEST after the keys were zeroed).
      while (this.#running !== undefined || this.#queued !== undefined) {
        await this.#queued?.catch(() => undefined);
        await this.#running?.catch(() => undefined);
      }
      if (this.#poisonCause === undefined) {
        // An active file that never received a record is dropped rather than sealed: opening a store
        // to read it (info, verify, export) leaves no empty files behind.
        const unused: DataFile[] = [];
        try {
          for (const state of this.#shards) {
            if (state.active.writePosition === 0) {
              unused.push(state.active);
              this.#filesById.delete(state.active.fileId);
              state.files.splice(state.files.indexOf(state.active), 1);
              if (state.active.listed) this.#manifestStale = true;
            } else state.active.seal();
          }
        } catch (error) {
          throw this.#poison(error);
        }
        crashPoint('close:active-files-sealed', () => ({
          directory: this.directory,
          fileIds: this.#shards.map((state) => state.active.fileId),
        }));
        await this.#barrier();
        crashPoint('close:barrier-done', () => ({ directory: this.directory, epoch: this.#epoch }));
        for (const file of unused) {
          file.close();
          // Empty and unlisted by the barrier above: one left behind is a leftover for the next open.
          for (const extension of ['data', 'tags'] as const)
            this.#deleteOrRemember(filePath(this.directory, file.shard, file.fileId, extension), file.keyId, syncChannel);
        }
        for (const state of this.#shards) this.#scheduleHint(state.active);
        await this.#hintWorker;
        crashPoint('close:hints-written', () => ({ directory: this.directory }));
        if (this.#manifestStale) await this.#barrier();
      }
    } finally {
      this.#releaseResources();
    }
  }

  #releaseResources(): void {
    this.#released = true;
    for (const file of this.#filesById.values()) file.close();
    this.#filesById.clear();
    this.cache?.clear();
    this.#keys?.destroy();
    this.#manifestMacKey.fill(0);
    this.#nextManifestMacKey?.fill(0);
    if (this.#credential !== undefined) wipeCredential(this.#credential);
    this.#lock.release();
  }
}
