/**
 * Recovery at open (docs/durability.md): every file of every shard is checked against the manifest,
 * its pages authenticated and its records replayed into the index. Later sequence numbers win,
 * tombstones delete, an `atomic` group applies whole or not at all.
 *
 * What the manifest says is durable must be there, unaltered: anything missing, truncated, extended or
 * failing authentication at or below it is ARMDB_INTEGRITY. Beyond it (written after the last
 * barrier) pages are kept while they authenticate; from the first that does not, the rest of the
 * shard's log is a torn tail, discarded and counted. Files written before a crash but never recorded
 * are accepted only with ids the manifest had not handed out yet; an unlisted file with an older id
 * is a leftover (of a compaction). A leftover is removed only once it is proven redundant, record by
 * record, against the files kept; otherwise it is moved into `quarantine/` and reported, never deleted
 * on the word of a MANIFEST alone (docs/durability.md §8.1).
 */
import * as path from 'node:path';
import { equalBytes, isAllZero } from '../format/bytes.js';
import { Algorithm, FileKind, PAGE_BYTES, TAG_BYTES } from '../format/constants.js';
import { FileState, type Manifest, type ManifestFile } from '../format/manifest.js';
import { recordBytes } from '../format/record.js';
import {
  decodeTagFileFooter,
  decodeTagFileHeader,
  TAG_FOOTER_BYTES,
  TAG_HEADER_BYTES,
  tagOffset,
  verifyTagFileHeader,
  encodeTagFileFooter,
  type TagFileHeader,
} from '../format/tag-file.js';
import { FileCipher } from '../crypto/file-cipher.js';
import type { KeySet } from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ArmdbError, armdbError, integrityError } from '../errors.js';
import { Limits } from '../format/constants.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { TOMBSTONE_LENGTH } from '../index/entry-store.js';
import { HashIndex } from '../index/hash-index.js';
import type { KeyIndex } from '../index/key-index.js';
import { DataFile, digestOfTags } from '../storage/data-file.js';
import { readHint } from '../storage/hint-file.js';
import { RecordStream, type StreamRecord } from '../storage/record-stream.js';
import { decodeHintEntries } from '../format/hint.js';
import { filePath, parseFileName, shardDirectory, TEMPORARY_SUFFIX } from './paths.js';

export interface RecoveryContext {
  readonly fileSystem: FileSystem;
  readonly directory: string;
  readonly manifest: Manifest;
  readonly keys: KeySet | undefined;
  readonly provider: CryptoProvider;
  readonly keySize: number;
  readonly index: KeyIndex;
  /** Read hint files where the manifest vouches for them. */
  readonly useHints: boolean;
}

export interface RecoveryResult {
  /** Every surviving file, sealed, per shard in id order. */
  readonly files: DataFile[][];
  readonly highestSequence: number;
  readonly tornBytes: number;
  /** Files that were removed: leftovers and torn tails. */
  readonly removedFiles: string[];
  /** Files sealed by recovery (they were active); the manifest must be rewritten. */
  readonly sealedFiles: number;
  /** Highest file id seen on disk or in the manifest: new files must get larger ids. */
  readonly highestFileId: number;
  /** Hints the manifest vouched for that could not be used (the data file was scanned instead). */
  readonly damagedHints: string[];
  /** Data files whose index came from their hint. */
  readonly filesFromHints: number;
  /** Files moved into `quarantine/` at this open, relative to the store directory. */
  readonly quarantinedFiles: string[];
  /**
   * Temporary files found in shard directories (compaction outputs and hints that never got their
   * final names), left in place: their ids are counted in `highestFileId`, and the engine removes them
   * once a MANIFEST whose next file id is past them is durable.
   */
  readonly temporaryFiles: string[];
  /**
   * Truncates the files that were active and cut, and writes their footers. Call it only once the
   * deletions of `removedFiles` are durable (their shard directories fsynced): a cut file sealed on
   * disk looks intact, and a later file of its shard that a power loss brought back would then be
   * replayed, its records without the ones the cut lost.
   */
  readonly sealCutFiles: () => void;
}

function sameIdentity(header: TagFileHeader, context: RecoveryContext, shard: number, fileId: number): boolean {
  return (
    header.kind === FileKind.data &&
    header.algorithm === context.manifest.algorithm &&
    header.shard === shard &&
    header.fileId === fileId &&
    equalBytes(header.databaseId, context.manifest.databaseId)
  );
}

function dataKeyFor(context: RecoveryContext, keyId: number): Uint8Array | undefined {
  if (context.manifest.algorithm === Algorithm.none) return undefined;
  if (context.keys === undefined) throw integrityError('an encrypted file in a store opened without a key');
  return context.keys.dataKey(keyId);
}

/** Reads and authenticates a tag-file header; returns undefined if it does not authenticate. */
function authenticHeader(
  context: RecoveryContext,
  tagBytes: Uint8Array,
  shard: number,
  fileId: number,
): { header: TagFileHeader; cipher: FileCipher } | undefined {
  let header: TagFileHeader;
  try {
    header = decodeTagFileHeader(tagBytes);
  } catch (error) {
    if (error instanceof ArmdbError) return undefined;
    throw error;
  }
  if (!sameIdentity(header, context, shard, fileId)) return undefined;
  let cipher: FileCipher;
  try {
    cipher = new FileCipher(context.provider, header, dataKeyFor(context, header.keyId), 'read');
  } catch (error) {
    if (error instanceof ArmdbError) return undefined;
    throw error;
  }
  try {
    verifyTagFileHeader(tagBytes, header, cipher.mac);
  } catch (error) {
    cipher.destroy();
    if (error instanceof ArmdbError) return undefined;
    throw error;
  }
  return { header, cipher };
}

/**
 * The most pages a data file of this format can hold (docs/format.md §9): rotation happens once a file
 * reaches `maxFileBytes`, so the last record may start just below it and be the largest there is.
 * A tag file is never read past a tag per such page, whatever length the file system reports.
 */
const MAX_DATA_FILE_PAGES = Math.ceil((Limits.maxFileBytes + recordBytes(Limits.maxKeyBytes, Limits.maxValueBytes)) / PAGE_BYTES) + 1;

function readWhole(handle: FileHandle, bytes: number): Uint8Array {
  const buffer = new Uint8Array(bytes);
  const read = handle.read(buffer, 0);
  return buffer.subarray(0, read);
}

export function recover(context: RecoveryContext): RecoveryResult {
  const { fileSystem, directory, manifest } = context;
  const files: DataFile[][] = [];
  const removedFiles: string[] = [];
  let highestSequence = 0;
  let tornBytes = 0;
  let sealedFiles = 0;
  let highestFileId = 0;
  const damagedHints: string[] = [];
  const temporaryFiles: string[] = [];
  const leftovers: Leftover[] = [];
  const quarantinedFiles: string[] = [];
  let filesFromHints = 0;
  const listed = new Map<string, ManifestFile>();
  for (const file of manifest.files) listed.set(`${file.shard}:${file.fileId}`, file);
  const seenListed = new Set<string>();
  const pendingSeals: (() => void)[] = [];

  for (let shard = 0; shard < manifest.shards; shard++) {
    const shardFiles: DataFile[] = [];
    files.push(shardFiles);
    const shardPath = shardDirectory(directory, shard);
    const ids = new Set<number>();
    const hintNames = new Map<number, string>();
    for (const name of fileSystem.list(shardPath)) {
      if (name.endsWith(TEMPORARY_SUFFIX)) {
        // A compaction output (or hint) that never got its final name. Its id was handed out: count
        // it before the file goes, or the next file would get the same id (docs/format.md §1.1, ids
        // are never reused). The engine unlinks it only once a MANIFEST past that id is durable.
        const temporaryId = temporaryFileId(name);
        if (temporaryId !== undefined) highestFileId = Math.max(highestFileId, temporaryId);
        temporaryFiles.push(path.join(shardPath, name));
        continue;
      }
      const parsed = parseFileName(name);
      if (parsed === undefined) throw integrityError(`shard ${shard} holds an unexpected file "${name}"`);
      if (parsed.extension !== 'hint') ids.add(parsed.fileId);
      else hintNames.set(parsed.fileId, name);
    }
    for (const file of manifest.files) if (file.shard === shard) ids.add(file.fileId);
    // A hint whose data file is gone (its file was retired while the hint was being written) is dead weight.
    for (const [fileId, name] of hintNames) {
      if (ids.has(fileId)) continue;
      const hintPath = path.join(shardPath, name);
      fileSystem.unlink(hintPath);
      removedFiles.push(`${hintPath} (a hint without its data file)`);
    }
    for (const fileId of ids) highestFileId = Math.max(highestFileId, fileId);
    for (const fileId of hintNames.keys()) highestFileId = Math.max(highestFileId, fileId);

    let torn = false;
    for (const fileId of [...ids].sort((left, right) => left - right)) {
      const entry = listed.get(`${shard}:${fileId}`);
      if (entry !== undefined) seenListed.add(`${shard}:${fileId}`);
      const dataPath = filePath(directory, shard, fileId, 'data');
      const tagPath = filePath(directory, shard, fileId, 'tags');
      const hintPath = filePath(directory, shard, fileId, 'hint');
      const removeFile = (reason: string): void => {
        for (const target of [dataPath, tagPath, hintPath]) {
          if (fileSystem.exists(target)) {
            fileSystem.unlink(target);
            removedFiles.push(`${target} (${reason})`);
          }
        }
      };

      if (entry === undefined && torn) {
        // A later file of a log whose tail tore: nothing in it can be kept.
        tornBytes += fileBytes(fileSystem, dataPath);
        removeFile('after a torn tail');
        continue;
      }
      // A listed file after a torn one is no contradiction: compaction output gets ids above the active
      // file's while holding older records. Only unlisted files after a tear are discarded (above).
      if (!fileSystem.exists(dataPath) || !fileSystem.exists(tagPath)) {
        if (entry !== undefined) throw integrityError(`shard ${shard}: file ${fileId} listed in the manifest is missing`);
        if (fileId < manifest.nextFileId) {
          // A leftover whose deletion was interrupted (compaction retires data, then tags, then hint):
          // a lone tag file holds no record. A lone data file cannot be authenticated, so nothing
          // proves it redundant: it is set aside, not deleted (a MANIFEST alone never deletes data).
          if (fileSystem.exists(dataPath)) quarantine(context, shard, [dataPath, tagPath, hintPath], quarantinedFiles, removedFiles);
          else removeFile('leftover, partly deleted');
          continue;
        }
        tornBytes += fileBytes(fileSystem, dataPath);
        removeFile('incomplete creation');
        torn = true;
        continue;
      }

      const tagHandle = fileSystem.open(tagPath, entry?.state === FileState.sealed ? 'read' : 'readWrite');
      const dataHandle = fileSystem.open(dataPath, entry?.state === FileState.sealed ? 'read' : 'readWrite');
      let keep = false;
      try {
        const dataBytes = dataHandle.size();
        const tagFileBytes = tagHandle.size();
        // Bound before allocating: a tag file is never larger than its framing plus a tag per data page,
        // and no data file has more pages than the format allows (a sparse file may claim terabytes).
        const maximumTagFileBytes =
          TAG_HEADER_BYTES + (Math.min(Math.floor(dataBytes / PAGE_BYTES), MAX_DATA_FILE_PAGES) + 1) * TAG_BYTES + TAG_FOOTER_BYTES;
        // Only a sealed file's length is fixed. An active file's tags can run ahead of its data after
        // a power loss (the tag file's growth reached the disk, the data file's did not): tags past
        // the data pages are an unsynced tail, left unread and cut off when the file is sealed.
        if (tagFileBytes > maximumTagFileBytes && entry?.state === FileState.sealed) {
          throw integrityError(`shard ${shard}: tag file ${fileId} is longer (${tagFileBytes} bytes) than its data file allows`);
        }
        // The header is authenticated before anything is sized by the file's length (docs/security-model.md §Hostile directory entries).
        const headerBytes = readWhole(tagHandle, TAG_HEADER_BYTES);
        const authentic = authenticHeader(context, headerBytes, shard, fileId);
        if (authentic === undefined) {
          if (entry !== undefined) throw integrityError(`shard ${shard}: the header of file ${fileId} does not authenticate`);
          // A header cut short, or never written back, leaves its last byte and the rest of the tag
          // file's first page zero; a power loss can still keep later pages (tags) of the file. Only
          // that first page is read: nothing is sized by what an unauthenticated file claims.
          const firstPage = readWhole(tagHandle, Math.min(tagFileBytes, PAGE_BYTES));
          const headerUnwritten = firstPage.length < TAG_HEADER_BYTES || isAllZero(firstPage.subarray(TAG_HEADER_BYTES - 1, PAGE_BYTES));
          if (!headerUnwritten) throw integrityError(`shard ${shard}: file ${fileId} was not written by this store`);
          if (fileId < manifest.nextFileId) {
            // Never listed (a barrier fsyncs a file's header before any manifest lists it), so it holds
            // nothing durable: an unused active file that close() dropped, whose directory entry a
            // barrier made durable before its header or its unlink reached the disk. Without its
            // header (the salt) no page of it can ever be authenticated, so nothing is lost.
            removeFile('leftover whose header never reached the disk');
            continue;
          }
          tornBytes += dataBytes;
          removeFile('torn header');
          torn = true;
          continue;
        }
        const { header, cipher } = authentic;
        if (entry === undefined && fileId < manifest.nextFileId) {
          // Decided once every kept file is in the index (settleLeftovers): removed if redundant.
          cipher.destroy();
          leftovers.push({ shard, fileId, tagBytes: readWhole(tagHandle, Math.min(tagFileBytes, maximumTagFileBytes)) });
          continue;
        }
        if (entry !== undefined) {
          if (!equalBytes(header.mac, entry.headerMac)) {
            throw armdbError('ARMDB_ROLLBACK', `shard ${shard}: file ${fileId} is another instance than the manifest records`);
          }
          if (header.keyId !== entry.keyId) throw integrityError(`shard ${shard}: file ${fileId} names another data key than the manifest`);
        }

        const tagBytes = readWhole(tagHandle, Math.min(tagFileBytes, maximumTagFileBytes));
        const footerState = readFooter(tagBytes, cipher);
        const footer = footerState.kind === 'valid' ? footerState : undefined;
        const durablePages = entry?.pageCount ?? 0;
        let candidatePages: number;
        if (entry?.state === FileState.sealed) {
          if (footerState.kind === 'absent') {
            // Header and whole tags, fewer than the sealed count: the file as it was while active.
            const body = tagBytes.length - TAG_HEADER_BYTES;
            if (body % TAG_BYTES === 0 && body / TAG_BYTES <= entry.pageCount) {
              throw armdbError('ARMDB_ROLLBACK', `shard ${shard}: sealed file ${fileId} has no footer (an older generation of the file)`);
            }
            throw integrityError(`shard ${shard}: the tag file of sealed file ${fileId} was truncated or extended`);
          }
          if (footerState.kind !== 'valid')
            throw integrityError(`shard ${shard}: the tags or footer of sealed file ${fileId} were altered`);
          if (footerState.pageCount !== entry.pageCount || !equalBytes(footerState.tagDigest, entry.tagDigest)) {
            throw armdbError('ARMDB_ROLLBACK', `shard ${shard}: sealed file ${fileId} differs from the manifest's record of it`);
          }
          if (dataBytes !== entry.pageCount * PAGE_BYTES)
            throw integrityError(`shard ${shard}: data file ${fileId} is ${dataBytes} bytes, expected ${entry.pageCount * PAGE_BYTES}`);
          candidatePages = entry.pageCount;
        } else {
          const tagCount = footer?.pageCount ?? Math.floor((tagBytes.length - TAG_HEADER_BYTES) / TAG_BYTES);
          const dataPages = Math.floor(dataBytes / PAGE_BYTES);
          if (tagCount < durablePages || dataPages < durablePages) {
            throw integrityError(`shard ${shard}: file ${fileId} is shorter than its ${durablePages} durable pages`);
          }
          if (entry !== undefined && !equalBytes(digestOfTags(tagBytes.subarray(TAG_HEADER_BYTES), durablePages), entry.tagDigest)) {
            throw integrityError(`shard ${shard}: the durable tags of file ${fileId} were altered`);
          }
          candidatePages = Math.min(tagCount, dataPages);
        }

        const tags = tagBytes.slice(TAG_HEADER_BYTES, TAG_HEADER_BYTES + candidatePages * TAG_BYTES);
        const file = DataFile.opened(cipher, header.mac, dataHandle, tagHandle, tags, candidatePages);
        let replay: ReplayResult | undefined;
        if (entry?.state === FileState.sealed && entry.hintMac !== undefined && context.useHints) {
          replay = replayHint(context, file, entry.hintMac, hintPath, damagedHints);
          if (replay !== undefined) {
            file.hintMac = entry.hintMac;
            filesFromHints++;
          }
        }
        // Not read this time, but still the manifest's: keep vouching for it.
        if (entry?.state === FileState.sealed && entry.hintMac !== undefined && !context.useHints) file.hintMac = entry.hintMac;
        replay ??= replayFile(context, file, candidatePages, durablePages);
        highestSequence = Math.max(highestSequence, replay.highestSequence);
        const sealedInManifest = entry?.state === FileState.sealed;
        if (!sealedInManifest) {
          // Active when last seen: keep what authenticated, cut the rest, and seal it.
          const validPages = replay.validPages;
          const fullyIntact =
            footer !== undefined && validPages === footer.pageCount && replay.tailBytes === 0 && dataBytes === validPages * PAGE_BYTES;
          tornBytes += dataBytes - validPages * PAGE_BYTES + replay.tailBytes;
          if (!fullyIntact) {
            // Cut only what is proven ours: a page of it authenticated, or the data file has no name
            // outside this store (a hard link would carry the cut to a file elsewhere).
            if (validPages === 0 && dataBytes > 0 && dataHandle.linkCount() > 1) {
              throw integrityError(
                `shard ${shard}: data file ${fileId} holds no page of this store and has other names (hard links); refusing to cut it`,
              );
            }
            const sealedTags = tags.subarray(0, validPages * TAG_BYTES);
            // Deferred (RecoveryResult.sealCutFiles): the cut must stay visible on disk until the
            // files deleted after it are durably gone.
            pendingSeals.push(() => {
              dataHandle.truncate(validPages * PAGE_BYTES);
              tagHandle.truncate(tagOffset(validPages));
              tagHandle.write(
                encodeTagFileFooter({ pageCount: validPages, tagDigest: digestOfTags(sealedTags, validPages) }, cipher.mac),
                tagOffset(validPages),
              );
            });
            file.dirty = true;
          }
          file.resetAfterRecovery(validPages, entry);
          sealedFiles++;
          // The log continues in later files only if nothing of this one was lost: no page that failed,
          // no cut record, and no data or tag bytes past the valid pages (other than its footer). After
          // a power loss, pages and tags past the durable count can be gone while a later file
          // survives; replaying that file would skip the records in between.
          const tagBytesExpected = tagOffset(validPages) + (fullyIntact ? TAG_FOOTER_BYTES : 0);
          if (
            replay.validPages < candidatePages ||
            replay.tailBytes > 0 ||
            dataBytes > validPages * PAGE_BYTES ||
            tagFileBytes > tagBytesExpected
          )
            torn = true;
        }
        shardFiles.push(file);
        keep = true;
      } finally {
        if (!keep) {
          dataHandle.close();
          tagHandle.close();
        }
      }
    }
  }
  for (const key of listed.keys()) {
    if (!seenListed.has(key)) throw integrityError(`file ${key} listed in the manifest is missing`);
  }
  settleLeftovers(context, leftovers, removedFiles, quarantinedFiles);
  const sealCutFiles = (): void => {
    for (const seal of pendingSeals.splice(0)) seal();
  };
  return {
    files,
    highestSequence,
    tornBytes,
    removedFiles,
    sealedFiles,
    highestFileId,
    damagedHints,
    filesFromHints,
    temporaryFiles,
    quarantinedFiles,
    sealCutFiles,
  };
}

/** Where recovery sets aside files it may not delete (docs/durability.md §8.1). armdb never deletes in it. */
export const QUARANTINE_DIRECTORY = 'quarantine';

/** An authentic file of this store that the manifest does not list, with an id it had handed out. */
interface Leftover {
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
function settleLeftovers(
  context: RecoveryContext,
  leftovers: readonly Leftover[],
  removedFiles: string[],
  quarantinedFiles: string[],
): void {
  if (leftovers.length === 0) return;
  const newest = new HashIndex(context.keySize);
  const needed = new Set<Leftover>();
  for (const leftover of leftovers) {
    const { shard, fileId, tagBytes } = leftover;
    const authentic = authenticHeader(context, tagBytes, shard, fileId);
    if (authentic === undefined) {
      needed.add(leftover);
      continue;
    }
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
      file = DataFile.opened(cipher, header.mac, dataHandle, tagHandle, tags, pageCount);
      // No durable pages: a page that fails ends the stream instead of throwing.
      const stream = new RecordStream(file, pageCount, 0, context.keySize, (record) =>
        applyRecoveredRecord(newest, fileId, record),
      ).drain();
      if (stream.validPages < pageCount || footer.kind === 'altered') needed.add(leftover);
    } finally {
      if (file !== undefined) file.close();
      else {
        cipher.destroy();
        dataHandle?.close();
        tagHandle?.close();
      }
    }
  }
  const byFileId = new Map(leftovers.map((leftover) => [leftover.fileId, leftover]));
  const kept = context.index;
  const keptEntries = kept.entries;
  const entries = newest.entries;
  newest.forEachHandle((handle) => {
    const sequence = entries.sequences[handle]!;
    const tombstone = entries.valueLengths[handle] === TOMBSTONE_LENGTH;
    const keptHandle = kept.find(entries.keyView(handle));
    if (keptHandle >= 0) {
      if (keptEntries.sequences[keptHandle]! >= sequence) return;
      if (tombstone && keptEntries.valueLengths[keptHandle] === TOMBSTONE_LENGTH) return;
    } else if (tombstone) return;
    needed.add(byFileId.get(entries.fileIds[handle]!)!);
  });
  for (const leftover of leftovers) {
    const { shard, fileId } = leftover;
    const targets = [
      filePath(context.directory, shard, fileId, 'data'),
      filePath(context.directory, shard, fileId, 'tags'),
      filePath(context.directory, shard, fileId, 'hint'),
    ];
    if (needed.has(leftover)) {
      quarantine(context, shard, targets, quarantinedFiles, removedFiles);
      continue;
    }
    for (const target of targets) {
      if (!context.fileSystem.exists(target)) continue;
      context.fileSystem.unlink(target);
      removedFiles.push(`${target} (leftover not in the manifest, every record superseded)`);
    }
  }
}

/** Moves a file's data, tag and hint files (those that exist) into `quarantine/`, under names no other file has. */
function quarantine(
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

/** The file id a temporary name starts with (`000007.data.tmp`, or any suffix after the extension), if any. */
function temporaryFileId(name: string): number | undefined {
  const match = /^(\d{6,10})\.(?:data|tags|hint)\./.exec(name);
  if (match === null) return undefined;
  const fileId = Number(match[1]);
  return fileId <= 0xffffffff ? fileId : undefined;
}

function fileBytes(fileSystem: FileSystem, target: string): number {
  if (!fileSystem.exists(target)) return 0;
  const handle = fileSystem.open(target, 'read');
  try {
    return handle.size();
  } finally {
    handle.close();
  }
}

type FooterState =
  | { readonly kind: 'valid'; readonly pageCount: number; readonly tagDigest: Uint8Array }
  /** No footer: the tag file is a header and whole tags (an active file, or an older generation of a sealed one). */
  | { readonly kind: 'absent' }
  /** Something footer-shaped that does not authenticate or does not match the tags: altered. */
  | { readonly kind: 'altered' };

function readFooter(tagBytes: Uint8Array, cipher: FileCipher): FooterState {
  const body = tagBytes.length - TAG_HEADER_BYTES - TAG_FOOTER_BYTES;
  if (body < 0 || body % TAG_BYTES !== 0) return { kind: 'absent' };
  let footer: { pageCount: number; tagDigest: Uint8Array };
  try {
    footer = decodeTagFileFooter(tagBytes.subarray(tagBytes.length - TAG_FOOTER_BYTES), cipher.mac);
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    // 80 bytes are 5 whole tags too: without the footer magic this is an unsealed file.
    const magic = tagBytes.subarray(tagBytes.length - TAG_FOOTER_BYTES, tagBytes.length - TAG_FOOTER_BYTES + 8);
    return Buffer.from(magic).toString('latin1') === 'ARMDBEND' ? { kind: 'altered' } : { kind: 'absent' };
  }
  if (footer.pageCount * TAG_BYTES !== body) return { kind: 'altered' };
  if (!equalBytes(footer.tagDigest, digestOfTags(tagBytes.subarray(TAG_HEADER_BYTES), footer.pageCount))) return { kind: 'altered' };
  return { kind: 'valid', ...footer };
}

interface ReplayResult {
  /** Pages that authenticated, from the start. */
  readonly validPages: number;
  /** Bytes inside valid pages after the last complete group (an incomplete record or group). */
  readonly tailBytes: number;
  readonly highestSequence: number;
}

/** Applies one record to the index during recovery: the higher sequence number wins. */
export function applyRecoveredRecord(index: KeyIndex, fileId: number, record: Omit<StreamRecord, 'recordBytes'>): void {
  const entries = index.entries;
  const handle = index.findOrInsert(record.key);
  if (entries.sequences[handle]! > record.sequence) return;
  entries.setLocation(handle, fileId, record.position, record.tombstone ? TOMBSTONE_LENGTH : record.valueLength, record.sequence);
  if (entries.valueSize > 0 && !record.tombstone) {
    if (record.valueLength !== entries.valueSize)
      throw integrityError(`file ${fileId}: a record holds ${record.valueLength} bytes where every value has ${entries.valueSize}`);
    entries.setValue(handle, record.value);
  }
}

/** Applies a file's hint; undefined (and the problem recorded) if the hint cannot be used. */
function replayHint(
  context: RecoveryContext,
  file: DataFile,
  headerMac: Uint8Array,
  hintPath: string,
  damagedHints: string[],
): ReplayResult | undefined {
  // Bounded before reading: a hint holds at most one entry per record, and a record is bigger than an entry.
  let bytes: Uint8Array | undefined;
  try {
    bytes = context.fileSystem.readFile(hintPath, 2 * file.pageCount * PAGE_BYTES + 2 ** 20);
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    damagedHints.push(`${hintPath}: ${error.message}`);
    return undefined;
  }
  if (bytes === undefined) {
    damagedHints.push(`${hintPath}: missing`);
    return undefined;
  }
  const streamBytes = file.pageCount * PAGE_BYTES;
  let chunks: Uint8Array[];
  try {
    // Every chunk is authenticated, and every entry checked, before the first one is applied:
    // a hint that fails half-way must leave the index untouched.
    chunks = readHint(bytes, { dataFile: file.cipher.identity, headerMac }, context.provider, dataKeyFor(context, file.keyId));
    for (const chunk of chunks) {
      decodeHintEntries(chunk, context.keySize, (entry) => {
        if (entry.position + recordBytes(context.keySize, entry.valueLength) > streamBytes)
          throw integrityError('an entry points beyond the data file');
      });
    }
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    damagedHints.push(`${hintPath}: ${error.message}`);
    return undefined;
  }
  let highestSequence = 0;
  let lowestSequence = file.lowestSequence;
  const entries = context.index.entries;
  for (const chunk of chunks) {
    decodeHintEntries(chunk, context.keySize, (entry) => {
      const handle = context.index.findOrInsert(entry.key);
      if (entries.sequences[handle]! < entry.sequence) {
        entries.setLocation(handle, file.fileId, entry.position, entry.tombstone ? TOMBSTONE_LENGTH : entry.valueLength, entry.sequence);
      }
      if (entry.sequence > highestSequence) highestSequence = entry.sequence;
      if (entry.sequence < lowestSequence) lowestSequence = entry.sequence;
    });
  }
  file.lowestSequence = lowestSequence;
  return { validPages: file.pageCount, tailBytes: 0, highestSequence };
}

/**
 * Decrypts the file's pages in order and applies every complete group of records to the index.
 * A page below `durablePages` that fails is ARMDB_INTEGRITY; the first failing page beyond it ends
 * the replay (torn tail).
 */
function replayFile(context: RecoveryContext, file: DataFile, candidatePages: number, durablePages: number): ReplayResult {
  const stream = new RecordStream(file, candidatePages, durablePages, context.keySize, (record) =>
    applyRecoveredRecord(context.index, file.fileId, record),
  ).drain();
  file.lowestSequence = Math.min(file.lowestSequence, stream.lowestSequence);
  return { validPages: stream.validPages, tailBytes: stream.tailBytes(), highestSequence: stream.highestSequence };
}

/** Live bytes per file and removal of tombstones once the whole log has been replayed. */
export function finishIndex(index: KeyIndex, filesById: ReadonlyMap<number, DataFile>, keySize: number): void {
  const entries = index.entries;
  const tombstoned: Uint8Array[] = [];
  index.forEachHandle((handle) => {
    const valueLength = entries.valueLengths[handle]!;
    if (valueLength === TOMBSTONE_LENGTH) {
      tombstoned.push(entries.keyView(handle).slice());
      return;
    }
    const file = filesById.get(entries.fileIds[handle]!);
    if (file === undefined) throw integrityError('the index points into a file that does not exist');
    file.liveBytes += recordBytes(keySize, valueLength);
  });
  for (const key of tombstoned) index.remove(key);
}
