/**
 * The shards of a store and their files (SPEC §4): per shard an active file that takes appends and
 * the sealed files before it; across shards every live file by id, in the order the files joined.
 *
 * This is the one writer of a data file's bookkeeping (`durable`, `dirty`, `listed`, `hintMac`,
 * `liveBytesWhenCompacted`) once the file exists: the barrier's snapshot and its outcome, compaction's
 * adoption of outputs and hint writing all change it through here.
 */
import { channel } from 'node:diagnostics_channel';
import type { SealRing } from '../crypto/seal-ring.js';
import { FileState, type ManifestFile } from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import type { BlockCache } from '../storage/block-cache.js';
import { DataFile } from '../storage/data-file.js';
import type { DurableState } from '../storage/durable-state.js';
import { assert } from '../assert.js';
import type { FileFactory } from './file-factory.js';
import type { RecoveryResult } from './recovery.js';
import type { EngineGuard } from './guard.js';
import { shardDirectory } from './paths.js';
import type { Counters } from './reports.js';

const rotateChannel = channel('armdb:rotate');

/** One shard: its active file and its files (sealed ones and the active one), in id order. */
export interface Shard {
  readonly shard: number;
  readonly active: DataFile;
  readonly files: readonly DataFile[];
}

interface ShardState {
  readonly shard: number;
  active: DataFile;
  readonly files: DataFile[];
  /** New directory entries (an active file, renamed outputs) since the last barrier's directory fsync. */
  directoryDirty: boolean;
}

/** What a barrier takes in one synchronous step (see DurabilityBarrier). */
export interface DurableSnapshot {
  /** Files written since the last barrier, with the state the fsyncs make durable. */
  readonly written: readonly { readonly file: DataFile; readonly state: DurableState }[];
  /** The MANIFEST's file list, by shard and id. */
  readonly listedFiles: readonly ManifestFile[];
  /** Shards whose directory needs an fsync. */
  readonly directories: readonly number[];
}

export interface ShardsParts {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly guard: EngineGuard;
  readonly factory: FileFactory;
  readonly counters: Counters;
  /** Active files keep their unsynced pages in plaintext (there is a cache to promote them into). */
  readonly keepsUnsyncedPages: boolean;
  /** The sealing worker of active files (`sealThreads: 1`), started on first use. */
  readonly sealRing?: SealRing | undefined;
  /** A file rotation sealed: its hint can be written. */
  readonly onSealed: (file: DataFile) => void;
}

export class Shards {
  readonly #parts: ShardsParts;
  readonly #shards: ShardState[] = [];
  /** Every live file; a Map keeps the order files joined (the order a barrier syncs them in). */
  readonly #filesById = new Map<number, DataFile>();

  constructor(parts: ShardsParts) {
    this.#parts = parts;
  }

  /**
   * After recovery: each shard's recovered (sealed) files, then a new active file per shard. The
   * bookkeeping recovery found goes onto the files: the hints the manifest vouches for, and the
   * durable state of the files recovery sealed (what the manifest recorded while they were active).
   */
  open(recovered: Pick<RecoveryResult, 'files' | 'hintMacs' | 'sealedByRecovery'>): void {
    assert(this.#shards.length === 0, 'shards are opened once');
    for (const [file, hintMac] of recovered.hintMacs) file.recordHint(hintMac);
    for (const [file, entry] of recovered.sealedByRecovery) file.markRecoveredActive(entry);
    recovered.files.forEach((files, shard) => {
      for (const file of files) this.#filesById.set(file.fileId, file);
      const active = this.#createActiveFile(shard);
      this.#shards.push({ shard, active, files: [...files, active], directoryDirty: true });
    });
  }

  /**
   * After open: the records recovery carried out of commit journals (docs/format.md §6A) go into the
   * shard's new active file, sequence numbers and group flags kept; `placed` learns where each went.
   */
  appendRecovered(
    shard: number,
    records: readonly { sequence: number; flags: number; key: Uint8Array; value: Uint8Array }[],
    placed: (fileId: number, position: number, index: number) => void,
  ): void {
    const file = this.#shards[shard]!.active;
    for (const [index, record] of records.entries()) {
      file.reserve(DataFile.reserveBytes(record.key.length, record.value.length));
      placed(file.fileId, file.append(record.sequence, record.flags, record.key, record.value), index);
    }
  }

  get all(): readonly Shard[] {
    return this.#shards;
  }

  get(shard: number): Shard {
    return this.#shards[shard]!;
  }

  /** Every live file of every shard, in the order they joined. */
  files(): IterableIterator<DataFile> {
    return this.#filesById.values();
  }

  get fileCount(): number {
    return this.#filesById.size;
  }

  fileById(fileId: number): DataFile | undefined {
    return this.#filesById.get(fileId);
  }

  /** Whether `file` is still one of the store's (not retired by a compaction, not released). */
  isLive(file: DataFile): boolean {
    return this.#filesById.get(file.fileId) === file;
  }

  /** Seals the active file of `shard` and starts a new one; returns the sealed file. */
  rotate(shard: number): DataFile {
    const state = this.#shards[shard]!;
    const previous = state.active;
    previous.seal();
    state.active = this.#createActiveFile(shard);
    state.files.push(state.active);
    state.directoryDirty = true;
    this.#parts.counters.rotations++;
    this.#parts.onSealed(previous);
    if (rotateChannel.hasSubscribers)
      rotateChannel.publish({
        directory: this.#parts.directory,
        shard,
        sealedFileId: previous.fileId,
        activeFileId: state.active.fileId,
      });
    return previous;
  }

  #createActiveFile(shard: number): DataFile {
    const file = this.#parts.factory.create(shard, false);
    file.keepsUnsyncedPages = this.#parts.keepsUnsyncedPages;
    file.sealRing = this.#parts.sealRing;
    this.#filesById.set(file.fileId, file);
    return file;
  }

  /** Records or pages written that no barrier has made durable yet. */
  hasUnsyncedWrites(): boolean {
    for (const file of this.#filesById.values()) if (file.dirty || file.writePosition > file.journaledTo) return true;
    return false;
  }

  /** Writes every page the sealing worker holds (no fsync). */
  drainSealRing(): void {
    this.#parts.sealRing?.drain();
  }

  /** Sealed files that have no hint yet. */
  *filesWithoutHint(): Generator<DataFile> {
    for (const state of this.#shards) for (const file of state.files) if (file.sealed && file.hintMac === undefined) yield file;
  }

  // ---- the barrier's bookkeeping ---------------------------------------------------------------

  /**
   * Journals every active file's partial page (docs/format.md §6A: only complete pages go into the
   * data file), then takes what the barrier's fsyncs make durable and what its MANIFEST lists, in one
   * synchronous step (docs/durability.md §4). Journals of files sealed and durable go first.
   */
  takeDurableSnapshot(): DurableSnapshot {
    for (const state of this.#shards) if (state.active.journalPartialPage()) state.directoryDirty = true;
    // Every page the sealing worker holds is written before the snapshot: the fsyncs must cover it.
    this.drainSealRing();
    const written: { file: DataFile; state: DurableState }[] = [];
    const listedFiles: ManifestFile[] = [];
    for (const file of this.#filesById.values()) {
      file.retireJournal();
      let durable = file.durable;
      if (file.dirty) {
        durable = file.takeDurableSnapshot();
        written.push({ file, state: durable });
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
        journalChunks: durable.journalChunks,
        journalPage: durable.journalPage,
      });
    }
    listedFiles.sort((left, right) => left.shard - right.shard || left.fileId - right.fileId);
    const directories: number[] = [];
    for (const state of this.#shards) {
      if (!state.directoryDirty) continue;
      state.directoryDirty = false;
      directories.push(state.shard);
    }
    return { written, listedFiles, directories };
  }

  /** The barrier's fsyncs succeeded: the snapshot's states are durable, and its pages may be cached. */
  markDurable(snapshot: DurableSnapshot, cache: BlockCache | undefined): void {
    for (const { file, state } of snapshot.written) {
      file.markDurable(state);
      file.promoteDurablePages(cache);
    }
  }

  /** A hint of `file` is durable: the next MANIFEST vouches for it. */
  recordHint(file: DataFile, hintMac: Uint8Array): void {
    file.recordHint(hintMac);
  }

  /** Swaps compaction's inputs for its outputs (synced and renamed) in the shard's file list. */
  adopt(shard: number, outputs: readonly DataFile[], retired: readonly DataFile[]): void {
    const state = this.#shards[shard]!;
    for (const file of retired) {
      this.#filesById.delete(file.fileId);
      state.files.splice(state.files.indexOf(file), 1);
    }
    for (const file of outputs) {
      file.markAdopted();
      this.#filesById.set(file.fileId, file);
      state.files.push(file);
    }
    state.files.sort((left, right) => left.fileId - right.fileId);
  }

  /**
   * close(): drops every active file that never received a record (opening a store to read it leaves
   * no empty files behind) and seals the others. Returns the dropped files, and whether a MANIFEST
   * listed any of them (it must then be rewritten).
   */
  sealForClose(): { unused: DataFile[]; listedUnused: boolean } {
    const unused: DataFile[] = [];
    let listedUnused = false;
    for (const state of this.#shards) {
      if (state.active.writePosition === 0) {
        unused.push(state.active);
        this.#filesById.delete(state.active.fileId);
        state.files.splice(state.files.indexOf(state.active), 1);
        if (state.active.listed) listedUnused = true;
      } else state.active.seal();
    }
    return { unused, listedUnused };
  }

  // ---- directories -----------------------------------------------------------------------------

  /** fsync of every shard directory. */
  async syncDirectories(shards: readonly number[] = this.#shards.map((state) => state.shard)): Promise<void> {
    await Promise.all(shards.map((shard) => this.#parts.fileSystem.syncDirectory(shardDirectory(this.#parts.directory, shard))));
  }

  /**
   * fsync of a shard directory outside a barrier (compaction, the hint writer). Its failure poisons
   * even there: the directory also holds the entries of active files created since the last barrier,
   * and after a failed directory fsync a later one that succeeds may not have made them durable (the
   * reasoning behind never retrying an fsync, §11).
   */
  async syncDirectoryOrPoison(shard: number): Promise<void> {
    try {
      await this.#parts.fileSystem.syncDirectory(shardDirectory(this.#parts.directory, shard));
    } catch (error) {
      throw this.#parts.guard.poison(error);
    }
  }

  /** close(): every file's handles and cipher go. */
  closeFiles(): void {
    // After close()'s last barrier every sealed file's journal is no longer needed; after a failure
    // nothing is touched any more (docs/durability.md §11): the next open removes them.
    const retire = this.#parts.guard.poisonedError() === undefined;
    for (const file of this.#filesById.values()) {
      if (retire) file.retireJournal();
      file.close();
    }
    this.#filesById.clear();
    this.#parts.sealRing?.close();
  }
}
