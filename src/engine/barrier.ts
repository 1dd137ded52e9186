/**
 * The durability barrier (SPEC §4, docs/durability.md §4): group commit of every shard's writes, then
 * a MANIFEST that records the new durable state. Calls made while a barrier runs share the next one;
 * `syncIntervalMs` runs one in the background.
 */
import { channel } from 'node:diagnostics_channel';
import { assert } from '../assert.js';
import { armdbError } from '../errors.js';
import type { Manifest, ManifestFile } from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import type { BlockCache } from '../storage/block-cache.js';
import { crashPoint } from './crash-points.js';
import type { FileFactory } from './file-factory.js';
import type { EngineGuard } from './guard.js';
import type { ManifestSigner } from './key-lifecycle.js';
import type { Counters } from './reports.js';
import { writeManifestFile } from './root-files.js';
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
  /** Runs after every barrier that wrote a MANIFEST (background compaction, hint retries). */
  readonly afterBarrier: () => void;
}

export class DurabilityBarrier {
  readonly #parts: BarrierParts;
  #epoch: number;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The manifest must be rewritten even without new data (a hint was written, files were adopted, keys changed). */
  #manifestStale = false;

  constructor(parts: BarrierParts) {
    this.#parts = parts;
    this.#epoch = parts.epoch;
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
      await Promise.all(snapshot.written.flatMap(({ file }) => file.syncHandles()));
      crashPoint('barrier:files-synced', () => ({ directory, fileIds: snapshot.written.map(({ file }) => file.fileId) }));
      await shards.syncDirectories(snapshot.directories);
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

  /** Writes the next MANIFEST: `files` and the rest exactly as a barrier's snapshot took them. */
  async #writeManifest(files: readonly ManifestFile[], nextFileId: number, activeKeyId: number): Promise<void> {
    // Every listed file existed when the snapshot was taken, so its id is below the id counter then.
    for (const file of files) assert(file.fileId < nextFileId, 'the manifest lists only file ids below its next file id');
    const manifest: Manifest = { ...this.#parts.template, epoch: this.#epoch + 1, activeKeyId, nextFileId, files };
    await writeManifestFile(this.#parts.fileSystem, this.#parts.directory, this.#parts.signer.sign(manifest));
    this.#epoch = manifest.epoch;
  }
}
