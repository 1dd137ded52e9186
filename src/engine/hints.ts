/**
 * Hint files (docs/format.md §6): an encrypted index snapshot per sealed data file, written off the
 * write path, a chunk at a time, one file after another. A hint is an optimisation: failing to write
 * one costs a scan at the next open, nothing more, and is tried again after later barriers.
 */
import { channel } from 'node:diagnostics_channel';
import type { KeySet } from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { FileSystem } from '../io/file-system.js';
import type { DataFile } from '../storage/data-file.js';
import { buildHint } from '../storage/hint-file.js';
import { Backoff } from './backoff.js';
import type { DurabilityBarrier } from './barrier.js';
import { crashPoint } from './crash-points.js';
import type { EngineGuard } from './guard.js';
import { filePath, temporaryPath } from './paths.js';
import type { Shards } from './shard.js';
import { yieldToEventLoop } from './yield.js';

const hintChannel = channel('armdb:hint');

export interface HintWriterParts {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly provider: CryptoProvider;
  readonly keys: KeySet | undefined;
  readonly keySize: number;
  /** Hints are wanted: the `hints` option, and values not held in memory (Const collections need their values). */
  readonly enabled: boolean;
  readonly guard: EngineGuard;
  readonly shards: Shards;
  readonly barrier: DurabilityBarrier;
}

export class HintWriter {
  readonly #parts: HintWriterParts;
  /** Sealed files waiting for their hint, and the worker writing them. */
  readonly #queue: DataFile[] = [];
  #worker: Promise<void> | undefined;
  readonly #backoff = new Backoff();

  constructor(parts: HintWriterParts) {
    this.#parts = parts;
  }

  /** Resolves when the queue is empty (close). */
  async idle(): Promise<void> {
    await this.#worker;
  }

  /** Queues a sealed file for its hint; the worker runs off the write path, a chunk at a time. */
  schedule(file: DataFile): void {
    if (!this.#parts.enabled || file.hintMac !== undefined || this.#queue.includes(file)) return;
    this.#queue.push(file);
    this.#worker ??= this.#writeQueued().finally(() => {
      this.#worker = undefined;
    });
  }

  /** Queues every sealed file without a hint. */
  scheduleMissing(): void {
    for (const file of this.#parts.shards.filesWithoutHint()) this.schedule(file);
  }

  /** After a barrier: hints that failed are queued again once the backoff allows. */
  retry(): void {
    if (!this.#parts.enabled || this.#backoff.failures === 0 || this.#worker !== undefined || this.#parts.guard.closing) return;
    if (!this.#backoff.allow()) return;
    this.scheduleMissing();
  }

  async #writeQueued(): Promise<void> {
    for (let file = this.#queue.shift(); file !== undefined; file = this.#queue.shift()) {
      if (this.#parts.guard.poisoned || this.#parts.shards.fileById(file.fileId) === undefined) continue;
      try {
        if (await this.#write(file)) this.#backoff.succeeded();
      } catch (error) {
        // The round stops here (the next hint would meet the same full disk after a whole decrypting
        // read); the queued files are tried again after later barriers (retry), less often while
        // failures go on: one failure per round.
        this.#backoff.failed();
        this.#queue.length = 0;
        if (hintChannel.hasSubscribers) hintChannel.publish({ directory: this.#parts.directory, fileId: file.fileId, error });
      }
    }
  }

  /** Builds and writes the hint of `file`; false if the file was retired meanwhile (nothing written). */
  async #write(file: DataFile): Promise<boolean> {
    const { directory, fileSystem, shards } = this.#parts;
    const dataKey = this.#parts.keys?.dataKey(file.keyId);
    const built = await buildHint(file, this.#parts.keySize, this.#parts.provider, dataKey, async () => {
      await yieldToEventLoop();
      return shards.isLive(file);
    });
    if (built === undefined || !shards.isLive(file)) return false;
    const { bytes, headerMac } = built;
    const target = filePath(directory, file.shard, file.fileId, 'hint');
    // A fresh name, created exclusively: nothing planted in the shard directory is written through.
    const temporary = temporaryPath(target);
    await this.#writeTemporary(temporary, bytes);
    if (shards.fileById(file.fileId) === undefined) {
      // Compaction retired the file while its hint was being written.
      fileSystem.unlink(temporary);
      return false;
    }
    const detail = () => ({ directory, shard: file.shard, fileIds: [file.fileId] });
    crashPoint('hint:temporary-written', detail);
    try {
      fileSystem.rename(temporary, target);
    } catch (error) {
      // Something that is no file holds the hint's name (a directory): the hint is only an optimisation.
      fileSystem.unlink(temporary);
      throw error;
    }
    crashPoint('hint:renamed', detail);
    await shards.syncDirectoryOrPoison(file.shard);
    crashPoint('hint:directory-synced', detail);
    shards.recordHint(file, headerMac);
    this.#parts.barrier.markManifestStale();
    return true;
  }

  async #writeTemporary(temporary: string, bytes: Uint8Array): Promise<void> {
    const { fileSystem } = this.#parts;
    try {
      await fileSystem.writeFile(temporary, bytes);
    } catch (error) {
      // A partial hint (ENOSPC half-way) goes at once rather than at the next open; best effort.
      try {
        if (fileSystem.exists(temporary)) fileSystem.unlink(temporary);
      } catch {
        // The open-time sweep of temporary files removes it.
      }
      throw error;
    }
  }
}
