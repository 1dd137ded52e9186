/**
 * What an open does once the root files are read (docs/durability.md §Recovery): recovery of every
 * shard's files, then the parts take over: each shard gets a new active file, recovery's changes are
 * made durable (a barrier when the MANIFEST must change), and sealed files without a hint are queued.
 */
import { channel } from 'node:diagnostics_channel';
import type { KeySet } from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { Manifest } from '../format/manifest.js';
import { RecordFlag } from '../format/record.js';
import type { KeyIndex } from '../index/key-index.js';
import type { FileSystem } from '../io/file-system.js';
import type { EngineParts } from './parts.js';
import { shardDirectory } from './paths.js';
import { applyRecoveredRecord, finishIndex, listQuarantinedFiles, recover, type RecoveryResult } from './recovery.js';

const recoverChannel = channel('armdb:recover');

export interface StartupInit {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly manifest: Manifest;
  readonly keys: KeySet | undefined;
  readonly provider: CryptoProvider;
  readonly keySize: number;
  readonly index: KeyIndex;
  /** Read hint files where the manifest vouches for them. */
  readonly useHints: boolean;
}

/** What the last open's recovery found (stats()). */
export interface RecoveryFigures {
  /** The highest sequence number on disk: the next write gets a higher one. */
  readonly highestSequence: number;
  readonly tornBytes: number;
  readonly filesFromHints: number;
  readonly damagedHints: number;
  /** Data files in `quarantine/` as of open (relative paths). */
  readonly quarantinedFiles: readonly string[];
}

/** Recovers the store into `parts` and the index; on failure the recovered files are in the shards, to be released with them. */
export async function startUp(init: StartupInit, parts: EngineParts): Promise<RecoveryFigures> {
  const { fileSystem, directory, manifest } = init;
  let madeDirectories = false;
  for (let shard = 0; shard < manifest.shards; shard++) {
    const shardPath = shardDirectory(directory, shard);
    if (!fileSystem.exists(shardPath)) madeDirectories = true;
    fileSystem.makeDirectory(shardPath);
  }
  // A new directory's entry is in the store's directory, which a barrier no longer fsyncs (it appends
  // to the MANIFEST, docs/durability.md §4): made durable here, before any MANIFEST lists a file in it.
  if (madeDirectories) await fileSystem.syncDirectory(directory);
  const result = recover(init);
  // Files created after the last barrier are on disk but not in the manifest: never reuse their ids.
  parts.factory.skipPast(result.highestFileId);
  parts.shards.open(result);
  // Records recovered from commit journals are written again into the new active files (their old
  // file is sealed without them: its partial page is never sealed a second time, docs/format.md §6A.5).
  for (const [shard, records] of result.carried) {
    parts.shards.appendRecovered(shard, records, (fileId, position, index) => {
      const record = records[index]!;
      const tombstone = (record.flags & RecordFlag.tombstone) !== 0;
      applyRecoveredRecord(init.index, fileId, {
        key: record.key,
        value: record.value,
        sequence: record.sequence,
        tombstone,
        position,
        valueLength: record.value.length,
      });
    });
  }
  finishIndex(init.index, (fileId) => parts.shards.fileById(fileId), init.keySize);
  publish(init, result);
  // Every recovered file is in the shards by now, so a failure here releases them with the rest.
  await result.settleOnDisk();
  const quarantinedFiles = listQuarantinedFiles(fileSystem, directory);
  // A barrier is needed only when recovery changed what the manifest must say (a new store, files it
  // sealed or removed). New active files need no fsync until they hold data: recovery accepts
  // unlisted files with ids the manifest has not handed out yet. A clean open writes nothing.
  if (result.sealedFiles > 0 || result.removedFiles.length > 0 || result.damagedHints.length > 0 || result.temporaryFiles.length > 0)
    await parts.barrier.run();
  // Only now that a MANIFEST whose next file id is past them is durable: their ids stay used.
  for (const temporary of result.temporaryFiles) fileSystem.unlink(temporary);
  // And the journals of the files recovery sealed: their records are durable in the new active files.
  for (const journal of result.retiredJournals) if (fileSystem.exists(journal)) fileSystem.unlink(journal);
  parts.hints.scheduleMissing();
  return {
    highestSequence: result.highestSequence,
    tornBytes: result.tornBytes,
    filesFromHints: result.filesFromHints,
    damagedHints: result.damagedHints.length,
    quarantinedFiles,
  };
}

function publish(init: StartupInit, result: RecoveryResult): void {
  if (!recoverChannel.hasSubscribers) return;
  recoverChannel.publish({
    directory: init.directory,
    keys: init.index.size,
    tornBytes: result.tornBytes,
    removedFiles: [...result.removedFiles, ...result.temporaryFiles.map((name) => `${name} (temporary)`)],
    sealedFiles: result.sealedFiles,
    filesFromHints: result.filesFromHints,
    damagedHints: result.damagedHints,
  });
}
