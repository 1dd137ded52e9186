/**
 * Replaying a file into the index at open (docs/durability.md §Recovery): from its hint when the
 * manifest vouches for one, else by decrypting its pages in order. Later sequence numbers win,
 * tombstones delete, an `atomic` group applies whole or not at all.
 */
import { PAGE_BYTES } from '../format/constants.js';
import { decodeHintChunk, type HintColumns } from '../format/hint.js';
import { recordBytes } from '../format/record.js';
import { ArmdbError, integrityError } from '../errors.js';
import { TOMBSTONE_LENGTH } from '../index/entry-store.js';
import type { KeyIndex } from '../index/key-index.js';
import type { DataFile } from '../storage/data-file.js';
import { readHint } from '../storage/hint-file.js';
import { RecordStream, type StreamRecord } from '../storage/record-stream.js';
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

/** Applies a file's hint; undefined (and the problem recorded) if the hint cannot be used. */
export function replayHint(
  context: RecoveryContext,
  file: DataFile,
  headerMac: Uint8Array,
  hintPath: string,
  damagedHints: string[],
): ReplayResult | undefined {
  const chunks = readCheckedHint(context, file, headerMac, hintPath, damagedHints);
  if (chunks === undefined) return undefined;
  let highestSequence = 0;
  let lowestSequence = file.lowestSequence;
  const index = context.index;
  const fileId = file.fileId;
  // Every key of the file at once: the index sizes itself once and places the keys in bulk.
  const handles = index.findOrInsertMany(chunks);
  let next = 0;
  for (const { count, sequences, positions, valueLengths, tombstones } of chunks) {
    for (let entry = 0; entry < count; entry++) {
      const sequence = sequences[entry]!;
      const handle = handles[next++]!;
      if (index.sequenceOf(handle) < sequence) {
        index.setLocation(handle, fileId, positions[entry]!, tombstones[entry] === 1 ? TOMBSTONE_LENGTH : valueLengths[entry]!, sequence);
      }
      if (sequence > highestSequence) highestSequence = sequence;
      if (sequence < lowestSequence) lowestSequence = sequence;
    }
  }
  file.lowestSequence = lowestSequence;
  return { validPages: file.pageCount, tailBytes: 0, highestSequence };
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
    for (const plaintext of hint.chunks) {
      const columns = decodeHintChunk(plaintext, keySize, hint.version);
      const { count, positions, valueLengths } = columns;
      for (let entry = 0; entry < count; entry++) {
        if (positions[entry]! + recordBytes(keySize, valueLengths[entry]!) > streamBytes)
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
 * the replay (torn tail).
 */
export function replayFile(context: RecoveryContext, file: DataFile, candidatePages: number, durablePages: number): ReplayResult {
  const stream = new RecordStream(file, candidatePages, durablePages, context.keySize, (record) =>
    applyRecoveredRecord(context.index, file.fileId, record),
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
    file.liveBytes += recordBytes(keySize, valueLength);
  }
  for (const key of tombstoned) index.remove(key);
}
