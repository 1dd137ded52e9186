/**
 * The durability barrier (SPEC §4, docs/durability.md §4): group commit of every shard's writes, then
 * a MANIFEST that records the new durable state. Two rounds of fsyncs: the data and tag files and the
 * directories of new files together, then one record appended to the MANIFEST and its fsync
 * (docs/format.md §7.7). The MANIFEST is replaced whole instead when its log is full, torn, of an
 * older version, or the signing keys changed. Calls made while a barrier runs share the next one;
 * `syncIntervalMs` runs one in the background.
 */
import { channel } from 'node:diagnostics_channel';
import { assert } from '../assert.js';
import { armdbError } from '../errors.js';
import { equalBytes } from '../format/bytes.js';
import { ManifestVersion } from '../format/constants.js';
import {
  encodeFileEntry,
  frameManifestAppend,
  freshLogState,
  MANIFEST_LOG_PAGE_BYTES,
  manifestRecordBytes,
  MAX_MANIFEST_LOG_BYTES,
  type Manifest,
  type ManifestDelta,
  type ManifestFile,
  type ManifestLogState,
} from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import type { BlockCache } from '../storage/block-cache.js';
import { crashPoint } from './crash-points.js';
import type { FileFactory } from './file-factory.js';
import type { EngineGuard } from './guard.js';
import type { ManifestSigner } from './key-lifecycle.js';
import type { Counters } from './reports.js';
import { appendManifestRecord, writeManifestFile } from './root-files.js';
import type { Shards } from './shard.js';

const syncChannel = channel('armdb:sync');

/** The MANIFEST fields fixed for the store's lifetime. */
export type ManifestTemplate = Omit<Manifest, 'epoch' | 'activeKeyId' | 'nextFileId' | 'files'>;

export interface BarrierParts {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly guard: EngineGuard;
  readonly shards: Shards;
  readonly factory: FileFactory;
  readonly signer: ManifestSigner;
  readonly cache: BlockCache | undefined;
  readonly counters: Counters;
  readonly template: ManifestTemplate;
  /** The epoch of the MANIFEST on disk. */
  readonly epoch: number;
  /** Where the log of the MANIFEST on disk stands. */
  readonly manifestLog: ManifestLogState;
  /** The files the MANIFEST on disk lists: the next record says what changed since. */
  readonly listedFiles: readonly ManifestFile[];
  /** Runs after every barrier that wrote a MANIFEST (background compaction, hint retries). */
  readonly afterBarrier: () => void;
}

export class DurabilityBarrier {
  readonly #parts: BarrierParts;
  #epoch: number;
  #log: ManifestLogState;
  /** The entries the MANIFEST on disk lists, encoded (docs/format.md §7.3), by file id. */
  #listed: Map<number, Uint8Array>;
  /** The signer's generation when the base on disk was written; undefined: not written by this engine. */
  #baseGeneration: number | undefined;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The manifest must be rewritten even without new data (a hint was written, files were adopted, keys changed). */
  #manifestStale = false;

  constructor(parts: BarrierParts) {
    this.#parts = parts;
    this.#epoch = parts.epoch;
    this.#log = parts.manifestLog;
    this.#listed = encodeEntries(parts.listedFiles);
    // The open authenticated the MANIFEST under the key signing now: its records may follow.
    this.#baseGeneration = parts.signer.generation;
  }

  /** The epoch of the last MANIFEST written. */
  get epoch(): number {
    return this.#epoch;
  }

  get manifestStale(): boolean {
    return this.#manifestStale;
  }

  markManifestStale(): void {
    this.#manifestStale = true;
  }

  /** Runs `sync` every `intervalMs` while there are unsynced writes; the timer does not keep the process alive. */
  startTimer(intervalMs: number, sync: () => Promise<void>): void {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      if (this.#parts.shards.hasUnsyncedWrites()) sync().catch(() => undefined);
    }, intervalMs);
    this.#timer.unref();
  }

  stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** A barrier, shared with every caller until it starts running (group commit). */
  schedule(): Promise<void> {
    if (this.#running === undefined) {
      this.#running = this.run().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.schedule();
      });
    return this.#queued;
  }

  /**
   * Resolves once neither a running nor a queued barrier is left. A queued barrier becomes the running
   * one when the running one settles: close() waits for both, or its own barrier would run beside one
   * (both writing MANIFEST.tmp; and the late one writing its MANIFEST after the keys were zeroed).
   */
  async settled(): Promise<void> {
    while (this.#running !== undefined || this.#queued !== undefined) {
      await this.#queued?.catch(() => undefined);
      await this.#running?.catch(() => undefined);
    }
  }

  /** One barrier, now (recovery and close; everyone else schedules). A failure poisons the engine. */
  async run(): Promise<void> {
    const { guard, shards } = this.#parts;
    if (guard.released) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    const poisoned = guard.poisonedError();
    if (poisoned !== undefined) throw poisoned;
    const started = performance.now();
    try {
      // Everything the MANIFEST will say is taken here, in the same synchronous step as the snapshot
      // of what the fsyncs below make durable. State read after an await may describe a newer store:
      // a compaction that adopts its output while the fsyncs run drops its input files from the live
      // file list, and a MANIFEST built from that list would claim the new file set while the active
      // files' durable counts still exclude the writes that superseded the records compaction skipped
      // (an acknowledged write lost at the next crash). The adoption is recorded by the next barrier.
      const snapshot = shards.takeDurableSnapshot();
      const nextFileId = this.#parts.factory.nextFileId;
      const activeKeyId = this.#parts.signer.activeKeyId;
      const manifestStale = this.#manifestStale;
      this.#manifestStale = false;
      if (snapshot.written.length === 0 && snapshot.directories.length === 0 && !manifestStale) return;
      const { directory } = this.#parts;
      crashPoint('barrier:snapshot-taken', () => ({
        directory,
        fileIds: snapshot.listedFiles.map((file) => file.fileId),
        epoch: this.#epoch,
      }));
      // Round 1: file contents (data, tags, commit journals) and the directory entries of new files, all at once. Nothing lists the
      // new state before round 2, so their order among themselves does not matter.
      const fileSyncs = Promise.all(snapshot.written.flatMap(({ file }) => file.syncHandles())).then(() =>
        crashPoint('barrier:files-synced', () => ({ directory, fileIds: snapshot.written.map(({ file }) => file.fileId) })),
      );
      const directorySyncs = shards.syncDirectories(snapshot.directories);
      // Both settle before anything goes on: a failure is reported once every fsync has ended.
      const [files, directories] = await Promise.allSettled([fileSyncs, directorySyncs]);
      if (files.status === 'rejected') throw files.reason;
      if (directories.status === 'rejected') throw directories.reason;
      crashPoint('barrier:directories-synced', () => ({ directory }));
      shards.markDurable(snapshot, this.#parts.cache);
      await this.#writeManifest(snapshot.listedFiles, nextFileId, activeKeyId);
      this.#parts.counters.syncs++;
      this.#parts.afterBarrier();
      if (syncChannel.hasSubscribers) {
        syncChannel.publish({ directory, epoch: this.#epoch, files: snapshot.written.length, durationMs: performance.now() - started });
      }
    } catch (error) {
      throw guard.poison(error);
    }
  }

  /**
   * Round 2, the next MANIFEST: `files` and the rest exactly as a barrier's snapshot took them. One
   * record appended to the log when it can be (docs/format.md §7.7), else a whole new MANIFEST.
   */
  async #writeManifest(files: readonly ManifestFile[], nextFileId: number, activeKeyId: number): Promise<void> {
    // Every listed file existed when the snapshot was taken, so its id is below the id counter then.
    for (const file of files) assert(file.fileId < nextFileId, 'the manifest lists only file ids below its next file id');
    const epoch = this.#epoch + 1;
    const listed = encodeEntries(files);
    const { fileSystem, directory, signer } = this.#parts;
    const delta = this.#appendable() ? deltaOf(this.#listed, listed, files, { epoch, activeKeyId, nextFileId }) : undefined;
    if (delta !== undefined && manifestRecordBytes(delta, signer.macCount) <= MANIFEST_LOG_PAGE_BYTES) {
      const record = signer.signRecord(delta, this.#log.chainMac);
      const framed = frameManifestAppend(this.#log.validBytes, record.bytes);
      if (this.#log.validBytes - this.#log.baseBytes + framed.length <= MAX_MANIFEST_LOG_BYTES) {
        if (await appendManifestRecord(fileSystem, directory, framed, this.#log.validBytes)) {
          const validBytes = this.#log.validBytes + framed.length;
          this.#log = { ...this.#log, validBytes, chainMac: record.chainMac, records: this.#log.records + 1 };
          this.#listed = listed;
          this.#epoch = epoch;
          return;
        }
      }
    }
    const manifest: Manifest = { ...this.#parts.template, epoch, activeKeyId, nextFileId, files };
    const bytes = signer.sign(manifest);
    await writeManifestFile(fileSystem, directory, bytes);
    this.#log = freshLogState(bytes);
    this.#baseGeneration = signer.generation;
    this.#listed = listed;
    this.#epoch = epoch;
  }

  /**
   * Whether the next MANIFEST may be a record appended to the one on disk: it must be a version-3
   * MANIFEST without a torn tail (a new record must follow a complete one), and the keys signing must
   * be those of its base (a rotation begun, abandoned or completed replaces the MANIFEST, so that the
   * base and its records are signed under the same keys, docs/format.md §7.4).
   */
  #appendable(): boolean {
    const log = this.#log;
    return log.formatVersion === ManifestVersion.log && log.tornBytes === 0 && this.#baseGeneration === this.#parts.signer.generation;
  }
}

function encodeEntries(files: readonly ManifestFile[]): Map<number, Uint8Array> {
  return new Map(files.map((file) => [file.fileId, encodeFileEntry(file)]));
}

/** The record that turns the state listing `before` into the one listing `after` (`files`, encoded). */
function deltaOf(
  before: ReadonlyMap<number, Uint8Array>,
  after: ReadonlyMap<number, Uint8Array>,
  files: readonly ManifestFile[],
  fields: Pick<ManifestDelta, 'epoch' | 'activeKeyId' | 'nextFileId'>,
): ManifestDelta {
  const changed = files.filter((file) => {
    const previous = before.get(file.fileId);
    return previous === undefined || !equalBytes(previous, after.get(file.fileId)!);
  });
  const removed = [...before.keys()].filter((fileId) => !after.has(fileId));
  return { ...fields, changed, removed };
}
