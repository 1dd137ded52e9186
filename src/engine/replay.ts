/**
 * Replaying a file into the index at open (docs/durability.md §Recovery): from its hint when the
 * manifest vouches for one, else by decrypting its pages in order. Later sequence numbers win,
 * tombstones delete, an `atomic` group applies whole or not at all.
 */
import { JournalCipher } from '../crypto/journal-cipher.js';
import { PAGE_BYTES } from '../format/constants.js';
import { decodeHintChunk, recordVersionOfHint, type HintColumns } from '../format/hint.js';
import { decodeJournalFrames, decodeJournalHeader, JOURNAL_HEADER_BYTES, type JournalChunkPlace } from '../format/journal.js';
import { RecordFlag } from '../format/record.js';
import { ArmdbError, integrityError } from '../errors.js';
import { TOMBSTONE_LENGTH } from '../index/entry-store.js';
import type { KeyIndex } from '../index/key-index.js';
import type { DataFile } from '../storage/data-file.js';
import { readHint } from '../storage/hint-file.js';
import { type JournalTail, RecordStream, type StreamRecord } from '../storage/record-stream.js';
import { dataKeyFor } from './file-checks.js';
import type { RecoveryContext } from './recovery.js';

export interface ReplayResult {
  /** Pages that authenticated, from the start. */
  readonly validPages: number;
  /** Bytes inside valid pages after the last complete group (an incomplete record or group). */
  readonly tailBytes: number;
  readonly highestSequence: number;
}

/** Applies one record to the index during recovery: the higher sequence number wins. */
export function applyRecoveredRecord(index: KeyIndex, fileId: number, record: Omit<StreamRecord, 'recordBytes'>): void {
  const handle = index.findOrInsert(record.key);
  if (index.sequenceOf(handle) > record.sequence) return;
  index.setLocation(handle, fileId, record.position, record.tombstone ? TOMBSTONE_LENGTH : record.valueLength, record.sequence);
  const valueSize = index.valueSize;
  if (valueSize > 0 && !record.tombstone) {
    if (record.valueLength !== valueSize)
      throw integrityError(`file ${fileId}: a record holds ${record.valueLength} bytes where every value has ${valueSize}`, undefined, {
        fileId,
      });
    index.setInlineValue(handle, record.value);
  }
}

/** A file's hint, read, authenticated and checked: what {@link applyHints} places in the index. */
export interface CheckedHint {
  readonly file: DataFile;
  readonly chunks: readonly HintColumns[];
  /** Entries in all chunks (keys of the file's records, overwritten ones and tombstones included). */
  readonly entryCount: number;
  /** What replaying the file from this hint gives: the whole file, no tail. */
  readonly replay: ReplayResult;
}

/**
 * Reads a file's hint for {@link applyHints}: every chunk authenticated and decoded, every entry
 * checked; undefined (and the problem recorded) if the hint cannot be used. Nothing reaches the
 * index here, so recovery can read every hint first and size the index once for all of them.
 */
export function readHintForReplay(
  context: RecoveryContext,
  file: DataFile,
  headerMac: Uint8Array,
  hintPath: string,
  damagedHints: string[],
): CheckedHint | undefined {
  const chunks = readCheckedHint(context, file, headerMac, hintPath, damagedHints);
  if (chunks === undefined) return undefined;
  let highestSequence = 0;
  let lowestSequence = file.lowestSequence;
  let entryCount = 0;
  for (const { count, sequences } of chunks) {
    for (let entry = 0; entry < count; entry++) {
      const sequence = sequences[entry]!;
      if (sequence > highestSequence) highestSequence = sequence;
      if (sequence < lowestSequence) lowestSequence = sequence;
    }
    entryCount += count;
  }
  file.lowestSequence = lowestSequence;
  return { file, chunks, entryCount, replay: { validPages: file.pageCount, tailBytes: 0, highestSequence } };
}

/**
 * Applies checked hints of several files at once: every key of every hint goes into the index in one
 * bulk insert, which sizes the index once (one hash table, one entry store, one sorted tail for a
 * Tree) instead of growing it hint by hint. Later sequence numbers win whatever the order of the
 * hints, so a key in several files, or replayed from a data file before, ends at its newest record.
 */
export function applyHints(index: KeyIndex, hints: readonly CheckedHint[]): void {
  if (hints.length === 0) return;
  const handles = index.findOrInsertMany(hints.flatMap((hint) => hint.chunks));
  let next = 0;
  for (const { file, chunks } of hints) {
    const fileId = file.fileId;
    for (const { count, sequences, positions, valueLengths, tombstones } of chunks) {
      for (let entry = 0; entry < count; entry++) {
        const sequence = sequences[entry]!;
        const handle = handles[next++]!;
        if (index.sequenceOf(handle) < sequence) {
          index.setLocation(handle, fileId, positions[entry]!, tombstones[entry] === 1 ? TOMBSTONE_LENGTH : valueLengths[entry]!, sequence);
        }
      }
    }
  }
}

/**
 * The entries of a file's hint, every chunk authenticated and every entry checked before any is
 * applied (a hint that fails half-way must leave the index untouched); undefined, and the problem
 * recorded, when the hint cannot be used.
 */
function readCheckedHint(
  context: RecoveryContext,
  file: DataFile,
  headerMac: Uint8Array,
  hintPath: string,
  damagedHints: string[],
): HintColumns[] | undefined {
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
  const keySize = context.keySize;
  const chunks: HintColumns[] = [];
  try {
    const hint = readHint(bytes, { dataFile: file.cipher.identity, headerMac }, context.provider, dataKeyFor(context, file.keyId));
    // A hint describes records of one record version: that of its data file (docs/format.md §6.6).
    if (recordVersionOfHint(hint.version) !== file.recordVersion)
      throw integrityError(`a version-${hint.version} hint does not describe records of version ${file.recordVersion}`);
    for (const plaintext of hint.chunks) {
      const columns = decodeHintChunk(plaintext, keySize, hint.version);
      const { count, positions, valueLengths } = columns;
      for (let entry = 0; entry < count; entry++) {
        if (positions[entry]! + file.recordBytes(keySize, valueLengths[entry]!) > streamBytes)
          throw integrityError('an entry points beyond the data file');
      }
      chunks.push(columns);
    }
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    damagedHints.push(`${hintPath}: ${error.message}`);
    return undefined;
  }
  return chunks;
}

/**
 * Decrypts the file's pages in order and applies every complete group of records to the index.
 * A page below `durablePages` that fails is ARMDB_INTEGRITY; the first failing page beyond it ends
 * the replay (torn tail). With `journal`, the stream goes on into the journaled prefix of the page
 * after the valid ones, and the groups that reach into it are carried instead of applied.
 */
export function replayFile(
  context: RecoveryContext,
  file: DataFile,
  candidatePages: number,
  durablePages: number,
  journal?: JournalTail,
): ReplayResult {
  const stream = new RecordStream(
    file,
    candidatePages,
    durablePages,
    context.keySize,
    (record) => applyRecoveredRecord(context.index, file.fileId, record),
    journal,
  ).drain();
  file.lowestSequence = Math.min(file.lowestSequence, stream.lowestSequence);
  return { validPages: stream.validPages, tailBytes: stream.tailBytes(), highestSequence: stream.highestSequence };
}

/**
 * Live bytes per file and removal of tombstones once the whole log has been replayed. One pass in
 * handle order, which is the order the entries were inserted: sequential over the entry store, and
 * a run of handles from the same file looks its file up once.
 */
export function finishIndex(index: KeyIndex, fileById: (fileId: number) => DataFile | undefined, keySize: number): void {
  const tombstoned: Uint8Array[] = [];
  const handleLimit = index.handleLimit;
  let fileId = -1;
  let file: DataFile | undefined;
  for (let handle = 0; handle < handleLimit; handle++) {
    if (!index.isLive(handle)) continue;
    const valueLength = index.valueLengthOf(handle);
    if (valueLength === TOMBSTONE_LENGTH) {
      tombstoned.push(index.keyOf(handle));
      continue;
    }
    if (index.fileIdOf(handle) !== fileId) {
      fileId = index.fileIdOf(handle);
      file = fileById(fileId);
    }
    if (file === undefined) throw integrityError('the index points into a file that does not exist');
    file.liveBytes += file.recordBytes(keySize, valueLength);
  }
  for (const key of tombstoned) index.remove(key);
}

/** A record recovered from a commit journal, to be written again into its shard's new active file. */
export interface CarriedRecord {
  readonly sequence: number;
  readonly flags: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** The record as it goes into the new active file: its sequence number and group flags kept. */
export function carriedRecord(record: StreamRecord, batchContinues: boolean): CarriedRecord {
  const flags = (record.tombstone ? RecordFlag.tombstone : 0) | (batchContinues ? RecordFlag.batchContinues : 0);
  return { sequence: record.sequence, flags: flags >>> 0, key: record.key.slice(), value: record.value.slice() };
}

/** An authenticated journal chunk. */
export interface JournalChunk {
  readonly index: number;
  readonly place: JournalChunkPlace;
  readonly plaintext: Uint8Array;
}

/** The chunks of a journal that authenticate, in order, and why the rest (if any) could not be read. */
export interface JournalRead {
  readonly chunks: readonly JournalChunk[];
  readonly problem: string | undefined;
}

/**
 * Reads a data file's journal (docs/format.md §6A): its chunks in order while they authenticate.
 * Whether what is missing matters is for the caller to decide against the MANIFEST (§6A.5).
 * Bounded before reading: the chunks of a page hold at most its 4096 bytes in frames of at least one
 * record each, so 3 pages of journal per page of the file (and 16 more) is more than any journal holds
 * (a journal file starts over past 8 KiB, §6A.4).
 */
export function readJournal(context: RecoveryContext, file: DataFile, journalPath: string, pages: number): JournalRead {
  let bytes: Uint8Array | undefined;
  try {
    bytes = context.fileSystem.readFile(journalPath, JOURNAL_HEADER_BYTES + (pages + 16) * 3 * PAGE_BYTES);
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    return { chunks: [], problem: error.message };
  }
  if (bytes === undefined) return { chunks: [], problem: 'the journal is missing' };
  const header = decodeJournalHeader(bytes);
  const identity = file.cipher.identity;
  if (
    header === undefined ||
    header.shard !== identity.shard ||
    header.fileId !== identity.fileId ||
    header.keyId !== identity.keyId ||
    header.algorithm !== identity.algorithm
  )
    return { chunks: [], problem: "the journal header is not this file's" };
  const cipher = new JournalCipher(context.provider, identity, dataKeyFor(context, identity.keyId), undefined);
  const { frames, endsCleanly } = decodeJournalFrames(bytes);
  const chunks: JournalChunk[] = [];
  for (const [ordinal, frame] of frames.entries()) {
    const index = header.firstChunk + ordinal;
    try {
      chunks.push({ index, place: frame, plaintext: cipher.open(index, frame, frame.ciphertext, frame.tag) });
    } catch (error) {
      if (!(error instanceof ArmdbError)) throw error;
      return { chunks, problem: `chunk ${index} fails authentication` };
    }
  }
  return {
    chunks,
    problem: endsCleanly ? undefined : `the journal ends in a cut chunk after chunk ${header.firstChunk + frames.length - 1}`,
  };
}

/**
 * The journaled prefix of page `pageIndex`: the bytes its chunks cover from the page's first byte
 * on, up to the first gap (chunks may overlap: a journal started over repeats the prefix, §6A.4;
 * every chunk of a page holds the same bytes where they overlap, a page's bytes never change).
 * `covers(index)` says whether chunk `index` is one of the page's and lies inside the prefix.
 */
export function journalPrefixOf(
  chunks: readonly JournalChunk[],
  pageIndex: number,
): { readonly bytes: Uint8Array; readonly covers: (chunkIndex: number) => boolean } {
  const ofPage = chunks.filter((chunk) => chunk.place.pageIndex === pageIndex).sort((a, b) => a.place.offset - b.place.offset);
  const page = new Uint8Array(PAGE_BYTES);
  let end = 0;
  for (const chunk of ofPage) {
    if (chunk.place.offset > end) break;
    const chunkEnd = chunk.place.offset + chunk.place.length;
    if (chunkEnd <= end) continue;
    page.set(chunk.plaintext.subarray(end - chunk.place.offset), end);
    end = chunkEnd;
  }
  return {
    bytes: page.subarray(0, end),
    covers: (chunkIndex) => ofPage.some((chunk) => chunk.index === chunkIndex && chunk.place.offset + chunk.place.length <= end),
  };
}

/** The chunks of several journal files of one data file, by index (each index was sealed once). */
export function mergeJournals(reads: readonly JournalRead[]): JournalRead {
  const byIndex = new Map<number, JournalChunk>();
  for (const read of reads) for (const chunk of read.chunks) byIndex.set(chunk.index, chunk);
  const problems = reads.map((read) => read.problem).filter((problem) => problem !== undefined);
  return {
    chunks: [...byIndex.values()].sort((a, b) => a.index - b.index),
    problem: problems.length === 0 ? undefined : problems.join('; '),
  };
}
