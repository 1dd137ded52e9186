/**
 * When and what to compact (docs/durability.md §Compaction): the candidates of a shard, explicit runs
 * and background runs after barriers, one run at a time; and the engine's side of a run
 * ({@link EngineCompactionHost}). How one shard is compacted is `compactShard` in compaction.ts.
 */
import { channel } from 'node:diagnostics_channel';
import { ArmdbError, armdbError } from '../errors.js';
import { PAGE_BYTES } from '../format/constants.js';
import type { FileSystem } from '../io/file-system.js';
import type { KeyIndex } from '../index/key-index.js';
import type { OrderedIndex } from '../index/ordered-index.js';
import type { BlockCache } from '../storage/block-cache.js';
import type { DataFile } from '../storage/data-file.js';
import { Backoff } from './backoff.js';
import type { DurabilityBarrier } from './barrier.js';
import { compactShard, deadRatio, emptyCompactionResult, type CompactionHost, type ShardCompactionResult } from './compaction.js';
import { crashPoint } from './crash-points.js';
import type { FileFactory } from './file-factory.js';
import type { FileRemover } from './file-removal.js';
import type { EngineGuard } from './guard.js';
import type { HintWriter } from './hints.js';
import type { KeyLifecycle } from './key-lifecycle.js';
import { filePath, TEMPORARY_SUFFIX } from './paths.js';
import type { CompactionReport, CompactOptions, Counters } from './reports.js';
import type { Shard, Shards } from './shard.js';
import { yieldToEventLoop } from './yield.js';

const compactChannel = channel('armdb:compact');

export interface CompactionParts {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly keySize: number;
  readonly maxFileBytes: number;
  readonly autoCompact: boolean;
  readonly compactionThreshold: number;
  readonly index: KeyIndex;
  /** The same index when it is ordered (Tree collections). */
  readonly ordered: OrderedIndex | undefined;
  readonly cache: BlockCache | undefined;
  readonly guard: EngineGuard;
  readonly shards: Shards;
  readonly factory: FileFactory;
  readonly barrier: DurabilityBarrier;
  readonly hints: HintWriter;
  readonly keys: KeyLifecycle;
  readonly remover: FileRemover;
  readonly counters: Counters;
  /** Aborted by close(): a running compaction stops at its next slice. */
  readonly closeSignal: AbortSignal;
}

/** The engine's side of a compaction run: file creation, the renames and syncs, adoption and retirement. */
export class EngineCompactionHost implements CompactionHost {
  readonly #parts: CompactionParts;
  readonly keySize: number;
  readonly maxFileBytes: number;
  readonly index: KeyIndex;
  readonly ordered: OrderedIndex | undefined;

  constructor(parts: CompactionParts) {
    this.#parts = parts;
    this.keySize = parts.keySize;
    this.maxFileBytes = parts.maxFileBytes;
    this.index = parts.index;
    this.ordered = parts.ordered;
  }

  readRecord(file: DataFile, position: number, bytes: number): Uint8Array {
    // A record over more than two pages is read past the cache: the cache keeps such a value whole
    // under an id made from its first page, which the value (not its record) owns.
    const pages = Math.floor((position + bytes - 1) / PAGE_BYTES) - Math.floor(position / PAGE_BYTES) + 1;
    return file.read(position, bytes, pages > 2 ? undefined : this.#parts.cache);
  }

  createOutput(shard: number): DataFile {
    return this.#parts.factory.create(shard, true);
  }

  async finalizeOutputs(shard: number, outputs: readonly DataFile[]): Promise<void> {
    const { directory, fileSystem, shards } = this.#parts;
    const detail = { directory, shard, fileIds: outputs.map((file) => file.fileId) };
    crashPoint('compaction:outputs-written', () => detail);
    await Promise.all(outputs.flatMap((file) => [file.dataHandle.sync(), file.tagHandle.sync()]));
    crashPoint('compaction:outputs-synced', () => detail);
    for (const file of outputs) {
      // Tags first: a kill between the two renames leaves a lone tag file (it holds no record and is
      // deleted at open) rather than a lone data file, which cannot be authenticated and would be
      // quarantined (verify() not ok after an ordinary crash; found by the overlapping-compaction
      // kill cycles).
      for (const extension of ['tags', 'data'] as const) {
        const final = filePath(directory, shard, file.fileId, extension);
        fileSystem.rename(final + TEMPORARY_SUFFIX, final);
      }
    }
    crashPoint('compaction:outputs-renamed', () => detail);
    await shards.syncDirectoryOrPoison(shard);
    crashPoint('compaction:directory-synced', () => detail);
  }

  discardOutputs(outputs: readonly DataFile[]): void {
    for (const file of outputs) {
      file.close();
      // Best effort: an output left behind (the disk that failed may fail this too) holds only
      // copies, and recovery removes or keeps it as such (docs/durability.md §Recovery).
      this.#parts.remover.removeUnused(file, compactChannel, { temporary: true });
    }
  }

  filesOf(shard: number): readonly DataFile[] {
    return this.#parts.shards.get(shard).files;
  }

  adopt(shard: number, outputs: readonly DataFile[], retired: readonly DataFile[]): void {
    this.#parts.shards.adopt(shard, outputs, retired);
    this.#parts.barrier.markManifestStale();
    crashPoint('compaction:adopted', () => ({
      directory: this.#parts.directory,
      shard,
      fileIds: [...outputs, ...retired].map((file) => file.fileId),
    }));
  }

  async persist(): Promise<void> {
    await this.#parts.barrier.schedule();
    crashPoint('compaction:persisted', () => ({ directory: this.#parts.directory }));
  }

  async retire(files: readonly DataFile[]): Promise<void> {
    const { directory, cache, hints, remover } = this.#parts;
    for (const file of files) {
      file.close();
      cache?.dropFile(file.fileId);
    }
    hints.scheduleMissing();
    for (const file of files) {
      await remover.removeRetired(file, compactChannel);
      crashPoint('compaction:input-deleted', () => ({ directory, shard: file.shard, fileIds: [file.fileId] }));
    }
    crashPoint('compaction:inputs-deleted', () => ({ directory, fileIds: files.map((file) => file.fileId) }));
  }

  yieldToEventLoop(): Promise<void> {
    return yieldToEventLoop();
  }
}

/** Handles looked at per slice of {@link filesOutOfKeyOrder}. */
const ORDER_CHECK_SLICE = 4096;

/**
 * Ids of the files whose live records do not lie in key order (a key's record before the record of a
 * smaller key): one walk of the ordered index, a slice at a time, reading no file.
 */
async function filesOutOfKeyOrder(index: KeyIndex, ordered: OrderedIndex, signal: AbortSignal): Promise<Set<number>> {
  const lastPosition = new Map<number, number>();
  const unordered = new Set<number>();
  const handles = new Int32Array(ORDER_CHECK_SLICE);
  const keys = new Uint8Array(ORDER_CHECK_SLICE * index.keySize);
  const cursor = ordered.cursor({});
  try {
    for (;;) {
      if (signal.aborted) throw armdbError('ARMDB_ABORTED', 'compaction was aborted', signal.reason);
      const count = ordered.nextHandles(cursor, handles, keys, ORDER_CHECK_SLICE);
      for (let slot = 0; slot < count; slot++) {
        const handle = handles[slot]!;
        const fileId = index.fileIdOf(handle);
        const position = index.positionOf(handle);
        const last = lastPosition.get(fileId);
        if (last !== undefined && position < last) unordered.add(fileId);
        lastPosition.set(fileId, position);
      }
      if (count < ORDER_CHECK_SLICE) return unordered;
      await yieldToEventLoop();
    }
  } finally {
    ordered.closeCursor(cursor);
  }
}

export class CompactionPolicy {
  readonly #parts: CompactionParts;
  readonly #host: EngineCompactionHost;
  /** The running compaction (one at a time). */
  #running: Promise<CompactionReport> | undefined;
  /** Background compaction that failed (ENOSPC, EIO) waits a few barriers before trying again. */
  readonly #backoff = new Backoff();

  constructor(parts: CompactionParts) {
    this.#parts = parts;
    this.#host = new EngineCompactionHost(parts);
  }

  /** Resolves once the running compaction, if any, has settled (close). */
  async settled(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  /**
   * Rewrites sealed files with dead bytes (all of them, after rotating the active files) and, with
   * `reencrypt`, every file not under the active data key. One compaction runs at a time.
   */
  compact(options: CompactOptions): Promise<CompactionReport> {
    try {
      this.#parts.guard.assertWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    const previous = this.#running?.catch(() => undefined) ?? Promise.resolve(undefined);
    const run = previous.then(() => this.#compactNow(options, true));
    this.#track(run);
    // An explicit run that succeeds shows the disk has room again: background runs need not wait.
    run.then(
      () => this.#backoff.succeeded(),
      () => undefined,
    );
    return run;
  }

  /** After a barrier: a background run when a shard has candidates, unless one runs or the backoff says wait. */
  maybeCompactInBackground(): void {
    const { guard } = this.#parts;
    if (!this.#parts.autoCompact || this.#running !== undefined || guard.closing || guard.poisoned) return;
    if (!this.#parts.shards.all.some((shard) => this.#candidates(shard, false, false).length > 0)) return;
    if (!this.#backoff.allow()) return;
    const run = this.#compactNow({}, false);
    this.#track(run);
    run.then(
      () => this.#backoff.succeeded(),
      (error: unknown) => {
        // Stopped by close(), or the store is poisoned: nothing to try again.
        const stopped =
          error instanceof ArmdbError &&
          (error.code === 'ARMDB_ABORTED' || error.code === 'ARMDB_POISONED' || error.code === 'ARMDB_CLOSED');
        if (!stopped) this.#backoff.failed();
        if (compactChannel.hasSubscribers) compactChannel.publish({ directory: this.#parts.directory, error });
      },
    );
  }

  #track(run: Promise<CompactionReport>): void {
    this.#running = run;
    run
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (this.#running === run) this.#running = undefined;
      });
  }

  #candidates(shard: Shard, forced: boolean, reencrypt: boolean, unordered?: ReadonlySet<number>): DataFile[] {
    const activeKeyId = this.#parts.keys.activeKeyId;
    return shard.files.filter((file) => {
      if (file === shard.active || !file.sealed || !file.durable.sealed) return false;
      if (reencrypt && file.keyId !== activeKeyId) return true;
      if (unordered?.has(file.fileId) === true) return true;
      const deadBytes = file.streamBytes - file.liveBytes;
      if (file.liveBytes >= file.liveBytesWhenCompacted) return false;
      if (forced) return deadBytes >= PAGE_BYTES;
      return deadBytes >= 2 * PAGE_BYTES && deadRatio(file) >= this.#parts.compactionThreshold;
    });
  }

  async #compactNow(options: CompactOptions, forced: boolean): Promise<CompactionReport> {
    const started = performance.now();
    const { guard, shards, barrier } = this.#parts;
    guard.assertWritable();
    if (forced) {
      // Make everything written so far compactable: seal the active files that hold data.
      try {
        for (const shard of shards.all) if (shard.active.writePosition > 0) shards.rotate(shard.shard);
      } catch (error) {
        throw guard.poison(error);
      }
    }
    await barrier.schedule();
    const closeSignal = this.#parts.closeSignal;
    const signal = options.signal === undefined ? closeSignal : AbortSignal.any([options.signal, closeSignal]);
    const totals = emptyCompactionResult();
    // An explicit run on a Tree also rewrites the files whose live records are out of key order.
    const ordered = this.#parts.ordered;
    const unordered = forced && ordered !== undefined ? await filesOutOfKeyOrder(this.#parts.index, ordered, signal) : undefined;
    for (const shard of shards.all) {
      const candidates = this.#candidates(shard, forced, options.reencrypt === true, unordered);
      if (candidates.length === 0) continue;
      // Neither a page that fails authentication nor an I/O error of compaction's own files (ENOSPC,
      // EIO while writing, syncing or renaming its outputs) is a write-path failure: the outputs are
      // discarded, the inputs stay listed, nothing acknowledged depends on them, and the store stays
      // writable. The barrier that makes the switch durable poisons on failure as every barrier does.
      const result = await compactShard(this.#host, shard.shard, candidates, signal, forced);
      for (const name of Object.keys(totals) as (keyof ShardCompactionResult)[]) totals[name] += result[name];
    }
    this.#parts.counters.compactions++;
    const shreddedKeyIds = await this.#parts.keys.shredUnusedKeys();
    const report: CompactionReport = {
      ...totals,
      shreddedKeyIds,
      bytesReclaimed: Math.max(0, totals.bytesIn - totals.bytesOut),
      durationMs: performance.now() - started,
    };
    if (compactChannel.hasSubscribers) compactChannel.publish({ directory: this.#parts.directory, ...report });
    return report;
  }
}
