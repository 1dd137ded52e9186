/**
 * Files recovery finds that the manifest does not list, with ids it had handed out: removed when
 * proven redundant record by record against the files kept, otherwise moved into `quarantine/` and
 * reported, never deleted on the word of a MANIFEST alone (docs/durability.md §8.1).
 */
import * as path from 'node:path';
import { PAGE_BYTES, TAG_BYTES } from '../format/constants.js';
import { TAG_HEADER_BYTES } from '../format/tag-file.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { TOMBSTONE_LENGTH } from '../index/entry-store.js';
import { HashIndex } from '../index/hash-index.js';
import { DataFile } from '../storage/data-file.js';
import { RecordStream } from '../storage/record-stream.js';
import { authenticHeader, readFooter } from './file-checks.js';
import { partNames, removeParts } from './file-removal.js';
import { filePath } from './paths.js';
import type { RecoveryContext } from './recovery.js';
import { applyRecoveredRecord, type CarriedRecord } from './replay.js';
import { RecordFlag } from '../format/record.js';

/** Where recovery sets aside files it may not delete (docs/durability.md §8.1). armdb never deletes in it. */
export const QUARANTINE_DIRECTORY = 'quarantine';

/** An authentic file of this store that the manifest does not list, with an id it had handed out. */
export interface Leftover {
  readonly shard: number;
  readonly fileId: number;
  /** Its tag file as read (header authenticated once already). */
  readonly tagBytes: Uint8Array;
}

/**
 * Removes the leftovers that are redundant and quarantines the others. Legitimate leftovers are the
 * old files of a compaction whose MANIFEST switch was durable, outputs renamed after a barrier counted
 * their ids, and unused active files `close()` dropped: what they hold is superseded by the files kept.
 * A MANIFEST that drops a file holding anything else (a forged one, or a bug) must not make recovery
 * delete it. Leftovers are judged together, because a compaction retires several files at once (a
 * put in one may be deleted by a tombstone in another): for each key, the newest record over all
 * leftovers is redundant when
 *   - the kept files hold a record of that key at least as new (a copy keeps its sequence number), or
 *   - it is a tombstone and the kept files hold no live value of the key (deleting it resurrects nothing).
 * A leftover holding the newest record of a key that is not redundant, or a page that does not
 * authenticate (nothing about the rest can be proven), is moved to `quarantine/`.
 */
export function settleLeftovers(
  context: RecoveryContext,
  leftovers: readonly Leftover[],
  removedFiles: string[],
  quarantinedFiles: string[],
  carried: Iterable<CarriedRecord> = [],
): void {
  if (leftovers.length === 0) return;
  // Records recovered from commit journals are the kept files' too (they go into the new active files).
  const carriedNewest = new Map<string, { sequence: number; tombstone: boolean }>();
  for (const record of carried) {
    const keyHex = Buffer.from(record.key).toString('hex');
    const known = carriedNewest.get(keyHex);
    if (known === undefined || known.sequence < record.sequence)
      carriedNewest.set(keyHex, { sequence: record.sequence, tombstone: (record.flags & RecordFlag.tombstone) !== 0 });
  }
  const newest = new HashIndex(context.keySize);
  const needed = new Set<Leftover>();
  for (const leftover of leftovers) if (!replayLeftover(context, leftover, newest)) needed.add(leftover);
  const byFileId = new Map(leftovers.map((leftover) => [leftover.fileId, leftover]));
  const kept = context.index;
  newest.forEachHandle((handle) => {
    const sequence = newest.sequenceOf(handle);
    const tombstone = newest.valueLengthOf(handle) === TOMBSTONE_LENGTH;
    const keptHandle = kept.find(newest.keyView(handle));
    const journaled = carriedNewest.size === 0 ? undefined : carriedNewest.get(Buffer.from(newest.keyView(handle)).toString('hex'));
    if (journaled !== undefined && journaled.sequence >= sequence) return;
    if (keptHandle >= 0) {
      if (kept.sequenceOf(keptHandle) >= sequence) return;
      if (tombstone && kept.valueLengthOf(keptHandle) === TOMBSTONE_LENGTH) return;
    } else if (tombstone && (journaled === undefined || journaled.tombstone)) return;
    needed.add(byFileId.get(newest.fileIdOf(handle))!);
  });
  for (const leftover of leftovers) {
    const { shard } = leftover;
    const targets = partNames(context.directory, leftover, true);
    if (needed.has(leftover)) {
      quarantine(context, shard, targets, quarantinedFiles, removedFiles);
      continue;
    }
    removeParts(context.fileSystem, targets, 'leftover not in the manifest, every record superseded', removedFiles);
  }
}

/**
 * Replays a leftover's records into `newest` (the newest record per key over all leftovers). False when
 * nothing about it can be proven: its header or a page does not authenticate, or its footer was altered.
 */
function replayLeftover(context: RecoveryContext, leftover: Leftover, newest: HashIndex): boolean {
  const { shard, fileId, tagBytes } = leftover;
  const authentic = authenticHeader(context, tagBytes, shard, fileId);
  if (authentic === undefined) return false;
  const { header, cipher } = authentic;
  let dataHandle: FileHandle | undefined;
  let tagHandle: FileHandle | undefined;
  let file: DataFile | undefined;
  try {
    dataHandle = context.fileSystem.open(filePath(context.directory, shard, fileId, 'data'), 'read');
    tagHandle = context.fileSystem.open(filePath(context.directory, shard, fileId, 'tags'), 'read');
    const footer = readFooter(tagBytes, cipher);
    const tagCount = footer.kind === 'valid' ? footer.pageCount : Math.floor((tagBytes.length - TAG_HEADER_BYTES) / TAG_BYTES);
    const pageCount = Math.max(0, Math.min(tagCount, Math.floor(dataHandle.size() / PAGE_BYTES)));
    const tags = tagBytes.slice(TAG_HEADER_BYTES, TAG_HEADER_BYTES + pageCount * TAG_BYTES);
    file = DataFile.opened(cipher, header.mac, dataHandle, tagHandle, tags, pageCount, header.version);
    // No durable pages: a page that fails ends the stream instead of throwing.
    const stream = new RecordStream(file, pageCount, 0, context.keySize, (record) => applyRecoveredRecord(newest, fileId, record)).drain();
    return stream.validPages >= pageCount && footer.kind !== 'altered';
  } finally {
    if (file !== undefined) file.close();
    else {
      cipher.destroy();
      dataHandle?.close();
      tagHandle?.close();
    }
  }
}

/** Moves a file's data, tag and hint files (those that exist) into `quarantine/`, under names no other file has. */
export function quarantine(
  context: RecoveryContext,
  shard: number,
  targets: readonly string[],
  quarantinedFiles: string[],
  removedFiles: string[],
): void {
  const { fileSystem, directory } = context;
  const quarantineDirectory = path.join(directory, QUARANTINE_DIRECTORY);
  fileSystem.makeDirectory(quarantineDirectory);
  for (const target of targets) {
    if (!fileSystem.exists(target)) continue;
    const name = `shard-${String(shard).padStart(3, '0')}-${path.basename(target)}`;
    let destination = path.join(quarantineDirectory, name);
    for (let copy = 1; fileSystem.exists(destination); copy++) destination = path.join(quarantineDirectory, `${name}.${copy}`);
    fileSystem.rename(target, destination);
    const relative = path.relative(directory, destination);
    quarantinedFiles.push(relative);
    removedFiles.push(`${target} (moved to ${relative}: not listed in the manifest, and not proven redundant)`);
  }
}

/** The data files in `quarantine/` (paths relative to the store), sorted. */
export function listQuarantinedFiles(fileSystem: FileSystem, directory: string): string[] {
  return fileSystem
    .list(path.join(directory, QUARANTINE_DIRECTORY))
    .filter((name) => /\.data(\.\d+)?$/.test(name))
    .sort()
    .map((name) => path.join(QUARANTINE_DIRECTORY, name));
}
