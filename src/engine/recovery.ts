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
import type { KeySet } from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { armdbError, integrityError } from '../errors.js';
import { equalBytes, isAllZero } from '../format/bytes.js';
import { PAGE_BYTES, TAG_BYTES } from '../format/constants.js';
import { FileState, type Manifest, type ManifestFile } from '../format/manifest.js';
import { encodeTagFileFooter, TAG_FOOTER_BYTES, TAG_HEADER_BYTES, tagOffset } from '../format/tag-file.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import type { KeyIndex } from '../index/key-index.js';
import { DataFile } from '../storage/data-file.js';
import { digestOfTags } from '../storage/durable-state.js';
import {
  authenticHeader,
  fileBytes,
  type FooterState,
  MAX_DATA_FILE_PAGES,
  readFooter,
  readWhole,
  temporaryFileId,
} from './file-checks.js';
import { partNames, removeParts } from './file-removal.js';
import { type Leftover, listQuarantinedFiles, QUARANTINE_DIRECTORY, quarantine, settleLeftovers } from './leftovers.js';
import { parseFileName, shardDirectory, TEMPORARY_SUFFIX } from './paths.js';
import {
  applyHints,
  type CarriedRecord,
  type CheckedHint,
  carriedRecord,
  journalPrefixOf,
  type JournalRead,
  mergeJournals,
  readJournal,
  readHintForReplay,
  type ReplayResult,
  replayFile,
} from './replay.js';

/**
 * Hint entries read ahead of the index before they are applied together (about 40 bytes each while
 * they wait: the decrypted chunk and its columns). A million-key store's hints go in at once; a store
 * whose hints hold many times more entries (records overwritten in many files) is applied in groups
 * of this size, so the memory held for them stays bounded.
 */
const PENDING_HINT_ENTRIES_MAX = 2 ** 22;
let pendingHintEntriesMax = PENDING_HINT_ENTRIES_MAX;

/**
 * Test hook: hint entries held before they are applied (undefined restores the default), so that a
 * test with a few thousand keys applies its hints in several groups, as a store with many times a
 * million hint entries would.
 */
export function setPendingHintEntriesForTesting(entries: number | undefined): void {
  pendingHintEntriesMax = entries ?? PENDING_HINT_ENTRIES_MAX;
}

export { applyRecoveredRecord, type CarriedRecord, finishIndex } from './replay.js';
export { listQuarantinedFiles, QUARANTINE_DIRECTORY };
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
  /** Hints the manifest vouches for (read at this open, or kept unread), by file: the next MANIFEST lists them again. */
  readonly hintMacs: ReadonlyMap<DataFile, Uint8Array>;
  /** Files that were active when last seen and that recovery sealed, with the manifest's record of each (if it listed it). */
  readonly sealedByRecovery: ReadonlyMap<DataFile, ManifestFile | undefined>;
  readonly highestSequence: number;
  readonly tornBytes: number;
  /** Files that were removed: leftovers and torn tails. */
  readonly removedFiles: string[];
  /** Files sealed by recovery (they were active); the manifest must be rewritten. */
  readonly sealedFiles: number;
  /**
   * Records recovered from the commit journals of files that were active (docs/format.md §6A), per
   * shard in log order: they go into the shard's new active file, whose first barrier makes them
   * durable there; only then may the journals in `retiredJournals` go.
   */
  readonly carried: ReadonlyMap<number, readonly CarriedRecord[]>;
  /** Journals of the files recovery sealed: removed once the first barrier after open is durable. */
  readonly retiredJournals: readonly string[];
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
   * Makes what recovery changed on disk durable, in the order a power loss requires: the files moved
   * into `quarantine/` (their new entries, and quarantine/ itself in the root) before their removal from
   * the shard directories; the deletions before the seals of cut files, because a cut file sealed on
   * disk looks intact, and a later file of its shard that a power loss brought back would then be
   * replayed without the records the cut lost. Then truncates the files that were active and cut, and
   * writes their footers.
   */
  readonly settleOnDisk: () => Promise<void>;
}

export function recover(context: RecoveryContext): RecoveryResult {
  return new Recovery(context).run();
}

/** What recovery knows of a file found in a shard: where it is and what the manifest says of it. */
interface FoundFile {
  readonly shard: number;
  readonly fileId: number;
  /** The manifest's record; undefined for a file it does not list. */
  readonly entry: ManifestFile | undefined;
  /** Data, tag and hint file. */
  readonly names: readonly string[];
}

/** A found file with both parts open. */
interface OpenedFile extends FoundFile {
  readonly dataHandle: FileHandle;
  readonly tagHandle: FileHandle;
  readonly dataBytes: number;
  readonly tagFileBytes: number;
  /** Bound before allocating: a tag file is never larger than its framing plus a tag per data page. */
  readonly maximumTagFileBytes: number;
}

/** What became of one file: kept (`file`), or not; and whether the shard's log tore at it. */
interface FileOutcome {
  readonly file?: DataFile;
  readonly torn: boolean;
}

/** One recovery: the shards in order, each shard's files in id order. */
class Recovery {
  readonly #context: RecoveryContext;
  readonly #files: DataFile[][] = [];
  readonly #hintMacs = new Map<DataFile, Uint8Array>();
  readonly #sealedByRecovery = new Map<DataFile, ManifestFile | undefined>();
  readonly #removedFiles: string[] = [];
  readonly #damagedHints: string[] = [];
  readonly #temporaryFiles: string[] = [];
  readonly #leftovers: Leftover[] = [];
  readonly #quarantinedFiles: string[] = [];
  readonly #listed = new Map<string, ManifestFile>();
  readonly #seenListed = new Set<string>();
  /** Seals of cut files, deferred until the deletions are durable (RecoveryResult.settleOnDisk). */
  readonly #pendingSeals: (() => void)[] = [];
  readonly #carried = new Map<number, CarriedRecord[]>();
  readonly #retiredJournals: string[] = [];
  /** Hints read and checked, not yet in the index: applied together (#applyPendingHints). */
  #pendingHints: CheckedHint[] = [];
  #pendingHintEntries = 0;
  #highestSequence = 0;
  #tornBytes = 0;
  #sealedFiles = 0;
  #highestFileId = 0;
  #filesFromHints = 0;

  constructor(context: RecoveryContext) {
    this.#context = context;
    for (const file of context.manifest.files) this.#listed.set(`${file.shard}:${file.fileId}`, file);
  }

  run(): RecoveryResult {
    const context = this.#context;
    for (let shard = 0; shard < context.manifest.shards; shard++) this.#recoverShard(shard);
    // Before the leftovers are judged against the index: it must hold every kept file.
    this.#applyPendingHints();
    for (const [key, listed] of this.#listed) {
      if (!this.#seenListed.has(key)) {
        throw integrityError(`file ${key} listed in the manifest is missing`, undefined, { shard: listed.shard, fileId: listed.fileId });
      }
    }
    settleLeftovers(context, this.#leftovers, this.#removedFiles, this.#quarantinedFiles, [...this.#carried.values()].flat());
    return {
      files: this.#files,
      hintMacs: this.#hintMacs,
      sealedByRecovery: this.#sealedByRecovery,
      highestSequence: this.#highestSequence,
      tornBytes: this.#tornBytes,
      removedFiles: this.#removedFiles,
      sealedFiles: this.#sealedFiles,
      carried: this.#carried,
      retiredJournals: this.#retiredJournals,
      highestFileId: this.#highestFileId,
      damagedHints: this.#damagedHints,
      filesFromHints: this.#filesFromHints,
      temporaryFiles: this.#temporaryFiles,
      quarantinedFiles: this.#quarantinedFiles,
      settleOnDisk: () => this.#settleOnDisk(),
    };
  }

  async #settleOnDisk(): Promise<void> {
    const { fileSystem, directory, manifest } = this.#context;
    if (this.#quarantinedFiles.length > 0) {
      await fileSystem.syncDirectory(path.join(directory, QUARANTINE_DIRECTORY));
      await fileSystem.syncDirectory(directory);
    }
    if (this.#removedFiles.length > 0) {
      const shards = Array.from({ length: manifest.shards }, (_, shard) => shard);
      await Promise.all(shards.map((shard) => fileSystem.syncDirectory(shardDirectory(directory, shard))));
    }
    for (const seal of this.#pendingSeals.splice(0)) seal();
  }

  #recoverShard(shard: number): void {
    const shardFiles: DataFile[] = [];
    this.#files.push(shardFiles);
    let torn = false;
    for (const fileId of this.#listShard(shard)) {
      const key = `${shard}:${fileId}`;
      const entry = this.#listed.get(key);
      if (entry !== undefined) this.#seenListed.add(key);
      const found = { shard, fileId, entry, names: partNames(this.#context.directory, { shard, fileId }, true) };
      const outcome = this.#recoverFile(found, torn);
      if (outcome.file !== undefined) shardFiles.push(outcome.file);
      if (outcome.torn) torn = true;
    }
  }

  /** The ids of the shard's files (on disk or listed), in order; temporary files and orphaned hints counted and set aside. */
  #listShard(shard: number): number[] {
    const { fileSystem, directory, manifest } = this.#context;
    const shardPath = shardDirectory(directory, shard);
    const ids = new Set<number>();
    const hintNames = new Map<number, string>();
    const journalNames: [number, string][] = [];
    for (const name of fileSystem.list(shardPath)) {
      if (name.endsWith(TEMPORARY_SUFFIX)) {
        // A compaction output (or hint) that never got its final name. Its id was handed out: count
        // it before the file goes, or the next file would get the same id (docs/format.md §1.1, ids
        // are never reused). The engine unlinks it only once a MANIFEST past that id is durable.
        const temporaryId = temporaryFileId(name);
        if (temporaryId !== undefined) this.#highestFileId = Math.max(this.#highestFileId, temporaryId);
        this.#temporaryFiles.push(path.join(shardPath, name));
        continue;
      }
      const parsed = parseFileName(name);
      if (parsed === undefined) {
        throw integrityError(`shard ${shard} holds an unexpected file "${name}"`, undefined, { shard, path: path.join(shardPath, name) });
      }
      if (parsed.extension === 'hint') hintNames.set(parsed.fileId, name);
      else if (parsed.extension === 'journal' || parsed.extension === 'journal2') journalNames.push([parsed.fileId, name]);
      else ids.add(parsed.fileId);
    }
    for (const file of manifest.files) if (file.shard === shard) ids.add(file.fileId);
    // A hint whose data file is gone (its file was retired while the hint was being written) is dead weight.
    for (const [fileId, name] of hintNames) {
      if (ids.has(fileId)) continue;
      const hintPath = path.join(shardPath, name);
      fileSystem.unlink(hintPath);
      this.#removedFiles.push(`${hintPath} (a hint without its data file)`);
    }
    // So is a journal without its data file (never listed: a listed file without data is an error below).
    for (const [fileId, name] of journalNames) {
      if (ids.has(fileId)) continue;
      const journalPath = path.join(shardPath, name);
      fileSystem.unlink(journalPath);
      this.#removedFiles.push(`${journalPath} (a journal without its data file)`);
    }
    for (const [fileId] of journalNames) this.#highestFileId = Math.max(this.#highestFileId, fileId);
    for (const fileId of ids) this.#highestFileId = Math.max(this.#highestFileId, fileId);
    for (const fileId of hintNames.keys()) this.#highestFileId = Math.max(this.#highestFileId, fileId);
    return [...ids].sort((left, right) => left - right);
  }

  #remove(found: FoundFile, reason: string): void {
    removeParts(this.#context.fileSystem, found.names, reason, this.#removedFiles);
  }

  /** A file of the shard whose log tore at an earlier file (`torn`), or not. */
  #recoverFile(found: FoundFile, torn: boolean): FileOutcome {
    const { fileSystem } = this.#context;
    const [dataPath, tagPath] = found.names as [string, string];
    if (found.entry === undefined && torn) {
      // A later file of a log whose tail tore: nothing in it can be kept.
      this.#tornBytes += fileBytes(fileSystem, dataPath);
      this.#remove(found, 'after a torn tail');
      return { torn: false };
    }
    // A listed file after a torn one is no contradiction: compaction output gets ids above the active
    // file's while holding older records. Only unlisted files after a tear are discarded (above).
    if (!fileSystem.exists(dataPath) || !fileSystem.exists(tagPath)) return this.#recoverIncompleteFile(found);
    const sealedInManifest = found.entry?.state === FileState.sealed;
    const tagHandle = fileSystem.open(tagPath, sealedInManifest ? 'read' : 'readWrite');
    const dataHandle = fileSystem.open(dataPath, sealedInManifest ? 'read' : 'readWrite');
    let outcome: FileOutcome | undefined;
    try {
      const dataBytes = dataHandle.size();
      const tagFileBytes = tagHandle.size();
      // Bound before allocating: a tag file is never larger than its framing plus a tag per data page,
      // and no data file has more pages than the format allows (a sparse file may claim terabytes).
      const maximumTagFileBytes =
        TAG_HEADER_BYTES + (Math.min(Math.floor(dataBytes / PAGE_BYTES), MAX_DATA_FILE_PAGES) + 1) * TAG_BYTES + TAG_FOOTER_BYTES;
      outcome = this.#recoverOpenedFile({ ...found, dataHandle, tagHandle, dataBytes, tagFileBytes, maximumTagFileBytes });
    } finally {
      if (outcome?.file === undefined) {
        dataHandle.close();
        tagHandle.close();
      }
    }
    return outcome;
  }

  /** The data or the tag file is missing. */
  #recoverIncompleteFile(found: FoundFile): FileOutcome {
    const { fileSystem, manifest } = this.#context;
    const { shard, fileId, entry, names } = found;
    if (entry !== undefined)
      throw integrityError(`shard ${shard}: file ${fileId} listed in the manifest is missing`, undefined, { shard, fileId });
    if (fileId < manifest.nextFileId) {
      // A leftover whose deletion was interrupted (compaction retires data, then tags, then hint):
      // a lone tag file holds no record. A lone data file cannot be authenticated, so nothing
      // proves it redundant: it is set aside, not deleted (a MANIFEST alone never deletes data).
      if (fileSystem.exists(names[0]!)) quarantine(this.#context, shard, names, this.#quarantinedFiles, this.#removedFiles);
      else this.#remove(found, 'leftover, partly deleted');
      return { torn: false };
    }
    this.#tornBytes += fileBytes(fileSystem, names[0]!);
    this.#remove(found, 'incomplete creation');
    return { torn: true };
  }

  #recoverOpenedFile(opened: OpenedFile): FileOutcome {
    const { shard, fileId, entry, tagHandle, tagFileBytes, maximumTagFileBytes } = opened;
    const inTagFile = { shard, fileId, path: opened.names[1]! };
    // Only a sealed file's length is fixed. An active file's tags can run ahead of its data after
    // a power loss (the tag file's growth reached the disk, the data file's did not): tags past
    // the data pages are an unsynced tail, left unread and cut off when the file is sealed.
    if (tagFileBytes > maximumTagFileBytes && entry?.state === FileState.sealed) {
      throw integrityError(
        `shard ${shard}: tag file ${fileId} is longer (${tagFileBytes} bytes) than its data file allows`,
        undefined,
        inTagFile,
      );
    }
    // The header is authenticated before anything is sized by the file's length (docs/security-model.md §Hostile directory entries).
    const headerBytes = readWhole(tagHandle, TAG_HEADER_BYTES);
    const authentic = authenticHeader(this.#context, headerBytes, shard, fileId);
    if (authentic === undefined) return this.#recoverUnauthenticFile(opened);
    const { header, cipher } = authentic;
    if (entry === undefined && fileId < this.#context.manifest.nextFileId) {
      // Decided once every kept file is in the index (settleLeftovers): removed if redundant.
      cipher.destroy();
      this.#leftovers.push({ shard, fileId, tagBytes: readWhole(tagHandle, Math.min(tagFileBytes, maximumTagFileBytes)) });
      return { torn: false };
    }
    if (entry !== undefined) {
      if (!equalBytes(header.mac, entry.headerMac)) {
        throw armdbError(
          'ARMDB_ROLLBACK',
          `shard ${shard}: file ${fileId} is another instance than the manifest records`,
          undefined,
          inTagFile,
        );
      }
      if (header.keyId !== entry.keyId) {
        throw integrityError(`shard ${shard}: file ${fileId} names another data key than the manifest`, undefined, inTagFile);
      }
    }
    const tagBytes = readWhole(tagHandle, Math.min(tagFileBytes, maximumTagFileBytes));
    const footerState = readFooter(tagBytes, cipher);
    const candidatePages = candidatePagesOf(opened, footerState, tagBytes);
    const tags = tagBytes.slice(TAG_HEADER_BYTES, TAG_HEADER_BYTES + candidatePages * TAG_BYTES);
    const file = DataFile.opened(cipher, header.mac, opened.dataHandle, tagHandle, tags, candidatePages, header.version);
    const { fileSystem } = this.#context;
    const journalPaths = opened.names.slice(3).filter((name) => fileSystem.exists(name));
    if (entry?.state === FileState.sealed) {
      const replay = this.#replay(opened, file, candidatePages);
      this.#highestSequence = Math.max(this.#highestSequence, replay.highestSequence);
      // Its sealed pages hold everything its journal did (§6A.4): a journal left beside it goes.
      removeParts(fileSystem, journalPaths, 'journal of a sealed file', this.#removedFiles);
      return { file, torn: false };
    }
    const journal =
      journalPaths.length === 0
        ? undefined
        : mergeJournals(journalPaths.map((name) => readJournal(this.#context, file, name, candidatePages)));
    const carried: CarriedRecord[] = [];
    const replay = replayFile(this.#context, file, candidatePages, entry?.pageCount ?? 0, {
      tailOf: (pageIndex) => {
        const prefix = journal === undefined ? undefined : journalPrefixOf(journal.chunks, pageIndex).bytes;
        return prefix === undefined || prefix.length === 0 ? undefined : prefix;
      },
      carry: (record, batchContinues) => carried.push(carriedRecord(record, batchContinues)),
    });
    this.#highestSequence = Math.max(this.#highestSequence, replay.highestSequence);
    checkDurableJournal(opened, journal, replay.validPages);
    if (carried.length > 0) {
      const shardCarried = this.#carried.get(opened.shard) ?? [];
      shardCarried.push(...carried);
      this.#carried.set(opened.shard, shardCarried);
    }
    this.#retiredJournals.push(...journalPaths);
    const footer = footerState.kind === 'valid' ? footerState : undefined;
    return { file, torn: this.#sealActiveFile(opened, file, replay, footer, tags, candidatePages) };
  }

  /** The tag-file header does not authenticate. */
  #recoverUnauthenticFile(opened: OpenedFile): FileOutcome {
    const { shard, fileId, entry, tagHandle, tagFileBytes } = opened;
    const inTagFile = { shard, fileId, path: opened.names[1]! };
    if (entry !== undefined)
      throw integrityError(`shard ${shard}: the header of file ${fileId} does not authenticate`, undefined, inTagFile);
    // A header cut short, or never written back, leaves its last byte and the rest of the tag
    // file's first page zero; a power loss can still keep later pages (tags) of the file. Only
    // that first page is read: nothing is sized by what an unauthenticated file claims.
    const firstPage = readWhole(tagHandle, Math.min(tagFileBytes, PAGE_BYTES));
    const headerUnwritten = firstPage.length < TAG_HEADER_BYTES || isAllZero(firstPage.subarray(TAG_HEADER_BYTES - 1, PAGE_BYTES));
    if (!headerUnwritten) throw integrityError(`shard ${shard}: file ${fileId} was not written by this store`, undefined, inTagFile);
    if (fileId < this.#context.manifest.nextFileId) {
      // Never listed (a barrier fsyncs a file's header before any manifest lists it), so it holds
      // nothing durable: an unused active file that close() dropped, whose directory entry a
      // barrier made durable before its header or its unlink reached the disk. Without its
      // header (the salt) no page of it can ever be authenticated, so nothing is lost.
      this.#remove(opened, 'leftover whose header never reached the disk');
      return { torn: false };
    }
    this.#tornBytes += opened.dataBytes;
    this.#remove(opened, 'torn header');
    return { torn: true };
  }

  /** The file's records into the index: from its hint when the manifest vouches for one and hints are read, else from its pages. */
  #replay(opened: OpenedFile, file: DataFile, candidatePages: number): ReplayResult {
    const { entry, names } = opened;
    const vouchedHint = entry?.state === FileState.sealed ? entry.hintMac : undefined;
    let replay: ReplayResult | undefined;
    if (vouchedHint !== undefined && this.#context.useHints) {
      const hint = readHintForReplay(this.#context, file, vouchedHint, names[2]!, this.#damagedHints);
      if (hint !== undefined) {
        replay = hint.replay;
        this.#hintMacs.set(file, vouchedHint);
        this.#filesFromHints++;
        // Applied later, with the other files' hints: order does not matter (the newest sequence
        // wins), and one bulk insert sizes the index once for all of them.
        this.#pendingHints.push(hint);
        this.#pendingHintEntries += hint.entryCount;
        if (this.#pendingHintEntries >= pendingHintEntriesMax) this.#applyPendingHints();
      }
    }
    // Not read this time, but still the manifest's: keep vouching for it.
    if (vouchedHint !== undefined && !this.#context.useHints) this.#hintMacs.set(file, vouchedHint);
    return replay ?? replayFile(this.#context, file, candidatePages, entry?.pageCount ?? 0);
  }

  #applyPendingHints(): void {
    applyHints(this.#context.index, this.#pendingHints);
    this.#pendingHints = [];
    this.#pendingHintEntries = 0;
  }

  /**
   * A file that was active when last seen: keep what authenticated, cut the rest, and seal it. Returns
   * whether the shard's log tore here.
   */
  #sealActiveFile(
    opened: OpenedFile,
    file: DataFile,
    replay: ReplayResult,
    footer: { pageCount: number } | undefined,
    tags: Uint8Array,
    candidatePages: number,
  ): boolean {
    const { shard, fileId, entry, dataHandle, tagHandle, dataBytes, tagFileBytes } = opened;
    const validPages = replay.validPages;
    const fullyIntact =
      footer !== undefined && validPages === footer.pageCount && replay.tailBytes === 0 && dataBytes === validPages * PAGE_BYTES;
    this.#tornBytes += dataBytes - validPages * PAGE_BYTES + replay.tailBytes;
    if (!fullyIntact) {
      // Cut only what is proven ours: a page of it authenticated, or the data file has no name
      // outside this store (a hard link would carry the cut to a file elsewhere).
      if (validPages === 0 && dataBytes > 0 && dataHandle.linkCount() > 1) {
        throw integrityError(
          `shard ${shard}: data file ${fileId} holds no page of this store and has other names (hard links); refusing to cut it`,
          undefined,
          { shard, fileId, path: opened.names[0]! },
        );
      }
      const sealedTags = tags.subarray(0, validPages * TAG_BYTES);
      // Deferred (RecoveryResult.settleOnDisk): the cut must stay visible on disk until the
      // files deleted after it are durably gone.
      this.#pendingSeals.push(() => {
        dataHandle.truncate(validPages * PAGE_BYTES);
        tagHandle.truncate(tagOffset(validPages));
        tagHandle.write(
          encodeTagFileFooter({ pageCount: validPages, tagDigest: digestOfTags(sealedTags, validPages) }, file.cipher.mac),
          tagOffset(validPages),
        );
      });
    }
    file.keepPages(validPages);
    this.#sealedByRecovery.set(file, entry);
    this.#sealedFiles++;
    // The log continues in later files only if nothing of this one was lost: no page that failed,
    // no cut record, no data or tag bytes past the valid pages (other than its footer), and a valid
    // footer. After a power loss, pages and tags past the durable count can be gone while a later
    // file survives; replaying that file would skip the records in between. A later file exists
    // only once this one was rotated, and rotation writes its last page, its tags and its footer
    // before the next file is created, none of it fsynced: when all three are gone, the valid
    // pages end cleanly where the last barrier left them (a padded page before format version 3,
    // the last complete page with the partial one journaled since, docs/format.md §6A), and only
    // the missing footer tells. So a file without its footer is the end of the shard's
    // log: later unlisted files (post-barrier files, compaction outputs no durable MANIFEST lists)
    // hold no acknowledged write and go.
    const tagBytesExpected = tagOffset(validPages) + (fullyIntact ? TAG_FOOTER_BYTES : 0);
    return (
      !fullyIntact ||
      replay.validPages < candidatePages ||
      replay.tailBytes > 0 ||
      dataBytes > validPages * PAGE_BYTES ||
      tagFileBytes > tagBytesExpected
    );
  }
}

/**
 * The pages recovery may read: a sealed file's count as the manifest records it (after checking its
 * footer, digest and length against that record); an active file's pages that have both a tag and
 * data, at least the durable ones.
 */
function candidatePagesOf(opened: OpenedFile, footerState: FooterState, tagBytes: Uint8Array): number {
  const { shard, fileId, entry, dataBytes, names } = opened;
  const inTagFile = { shard, fileId, path: names[1]! };
  const inDataFile = { shard, fileId, path: names[0]! };
  const durablePages = entry?.pageCount ?? 0;
  if (entry?.state === FileState.sealed) {
    if (footerState.kind === 'absent') {
      // Header and whole tags, fewer than the sealed count: the file as it was while active.
      const body = tagBytes.length - TAG_HEADER_BYTES;
      if (body % TAG_BYTES === 0 && body / TAG_BYTES <= entry.pageCount) {
        throw armdbError(
          'ARMDB_ROLLBACK',
          `shard ${shard}: sealed file ${fileId} has no footer (an older generation of the file)`,
          undefined,
          inTagFile,
        );
      }
      throw integrityError(`shard ${shard}: the tag file of sealed file ${fileId} was truncated or extended`, undefined, inTagFile);
    }
    if (footerState.kind !== 'valid') {
      throw integrityError(`shard ${shard}: the tags or footer of sealed file ${fileId} were altered`, undefined, inTagFile);
    }
    if (footerState.pageCount !== entry.pageCount || !equalBytes(footerState.tagDigest, entry.tagDigest)) {
      throw armdbError(
        'ARMDB_ROLLBACK',
        `shard ${shard}: sealed file ${fileId} differs from the manifest's record of it`,
        undefined,
        inTagFile,
      );
    }
    if (dataBytes !== entry.pageCount * PAGE_BYTES) {
      throw integrityError(
        `shard ${shard}: data file ${fileId} is ${dataBytes} bytes, expected ${entry.pageCount * PAGE_BYTES}`,
        undefined,
        inDataFile,
      );
    }
    return entry.pageCount;
  }
  const tagCount = footerState.kind === 'valid' ? footerState.pageCount : Math.floor((tagBytes.length - TAG_HEADER_BYTES) / TAG_BYTES);
  const dataPages = Math.floor(dataBytes / PAGE_BYTES);
  if (tagCount < durablePages || dataPages < durablePages) {
    const shorter = tagCount < durablePages ? inTagFile : inDataFile;
    throw integrityError(`shard ${shard}: file ${fileId} is shorter than its ${durablePages} durable pages`, undefined, shorter);
  }
  if (entry !== undefined && !equalBytes(digestOfTags(tagBytes.subarray(TAG_HEADER_BYTES), durablePages), entry.tagDigest)) {
    throw integrityError(`shard ${shard}: the durable tags of file ${fileId} were altered`, undefined, inTagFile);
  }
  return Math.min(tagCount, dataPages);
}

/**
 * The MANIFEST says the journal of `opened` holds acknowledged writes (docs/format.md §6A.5) when it
 * records journal chunks for the page right after the valid ones: then those chunks, up to the last
 * one it counts, must all be there and authentic. Otherwise (no durable chunk, or complete pages
 * cover them) the journal holds nothing the MANIFEST vouches for, and what it holds is used as far
 * as it authenticates, like pages written after the last barrier.
 */
function checkDurableJournal(opened: OpenedFile, journal: JournalRead | undefined, validPages: number): void {
  const durableChunks = opened.entry?.journalChunks ?? 0;
  const journalPage = opened.entry?.journalPage ?? 0;
  if (durableChunks === 0 || journalPage !== validPages) return;
  if (journal !== undefined && journalPrefixOf(journal.chunks, journalPage).covers(durableChunks - 1)) return;
  const { shard, fileId } = opened;
  const why = journal === undefined ? 'the journal is missing' : (journal.problem ?? 'chunks are missing');
  throw integrityError(
    `shard ${shard}: file ${fileId}: the journal does not hold the ${durableChunks} chunks the manifest records as durable (${why})`,
    undefined,
    { shard, fileId, pageIndex: journalPage, path: opened.names[3]! },
  );
}
