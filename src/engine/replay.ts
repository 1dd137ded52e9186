/**
 * Replaying a file into the index at open (docs/durability.md §Recovery): from its hint when the
 * manifest vouches for one, else by decrypting its pages in order. Later sequence numbers win,
 * tombstones delete, an `atomic` group applies whole or not at all.
 */
import { PAGE_BYTES } from '../format/constants.js';
import { decodeHintEntries } from '../format/hint.js';
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
  for (const chunk of chunks) {
    decodeHintEntries(chunk, context.keySize, (entry) => {
      const handle = index.findOrInsert(entry.key);
      if (index.sequenceOf(handle) < entry.sequence) {
        index.setLocation(handle, file.fileId, entry.position, entry.tombstone ? TOMBSTONE_LENGTH : entry.valueLength, entry.sequence);
      }
      if (entry.sequence > highestSequence) highestSequence = entry.sequence;
      if (entry.sequence < lowestSequence) lowestSequence = entry.sequence;
    });
  }
  file.lowestSequence = lowestSequence;
  return { validPages: file.pageCount, tailBytes: 0, highestSequence };
}

/**
 * The chunks of a file's hint, every chunk authenticated and every entry checked before any is
 * applied (a hint that fails half-way must leave the index untouched); undefined, and the problem
 * recorded, when the hint cannot be used.
 */
function readCheckedHint(
  context: RecoveryContext,
  file: DataFile,
  headerMac: Uint8Array,
  hintPath: string,
  damagedHints: string[],
): Uint8Array[] | undefined {
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

/** Live bytes per file and removal of tombstones once the whole log has been replayed. */
export function finishIndex(index: KeyIndex, fileById: (fileId: number) => DataFile | undefined, keySize: number): void {
  const tombstoned: Uint8Array[] = [];
  index.forEachHandle((handle) => {
    const valueLength = index.valueLengthOf(handle);
    if (valueLength === TOMBSTONE_LENGTH) {
      tombstoned.push(index.keyOf(handle));
      return;
    }
    const file = fileById(index.fileIdOf(handle));
    if (file === undefined) throw integrityError('the index points into a file that does not exist');
    file.liveBytes += recordBytes(keySize, valueLength);
  });
  for (const key of tombstoned) index.remove(key);
}
