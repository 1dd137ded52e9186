/**
 * Compaction (docs/durability.md §Compaction): live records of sealed files are rewritten into new
 * files — new salt, new file ids, the current data key — and the old files deleted once a manifest
 * without them is durable.
 *
 * Order, so that a crash at any point loses nothing and resurrects nothing:
 *   1. write the new files under temporary names (`.tmp`, swept at open), a slice at a time;
 *   2. fsync them, rename them to their final names, fsync the shard directory;
 *   3. re-point each index entry that still points where compaction read it (writes made meanwhile win);
 *   4. make a manifest that lists the new files and not the old ones durable (a barrier);
 *   5. delete the old files.
 * Until 4, the old files are the manifest's; the renamed new files only hold copies with their original
 * sequence numbers, so recovery may read both. After 4, the old files are leftovers removed at open.
 *
 * A tombstone is kept while any other file of the shard holds a record older than it, so no deleted key
 * comes back.
 *
 * Key order (Tree collections, docs/durability.md §Compaction): when the inputs hold a good share of
 * the shard's live data ({@link inKeyOrder}), step 1 first copies the inputs' live
 * records in key order, walking the ordered index (so that a range reads consecutive records of few
 * pages afterwards), then streams the inputs as before for what that walk did not copy (tombstones,
 * and any live record the walk missed). Which records are copied, and the steps after 1, are the same
 * either way: only the order of the copies in the outputs differs.
 */
import { armdbError, integrityError } from '../errors.js';
import { PAGE_BYTES } from '../format/constants.js';
import { decodeRecordHeader, RECORD_HEADER_BYTES, RecordFlag, recordBytes, verifyRecordChecksum } from '../format/record.js';
import type { KeyIndex } from '../index/key-index.js';
import { TOMBSTONE_LENGTH } from '../index/entry-store.js';
import type { OrderedIndex } from '../index/ordered-index.js';
import { DataFile } from '../storage/data-file.js';
import { RecordStream, type StreamRecord } from '../storage/record-stream.js';

export type { CompactionReport, CompactOptions } from './reports.js';

/** The engine's side of compaction. */
export interface CompactionHost {
  readonly keySize: number;
  readonly maxFileBytes: number;
  readonly index: KeyIndex;
  /** The same index when it is ordered (Tree collections): outputs are then written in key order. */
  readonly ordered: OrderedIndex | undefined;
  /** `bytes` bytes at `position` of sealed `file` (through the block cache), a copy. */
  readRecord(file: DataFile, position: number, bytes: number): Uint8Array;
  /** A new file of `shard` under a temporary name, under the active data key. */
  createOutput(shard: number): DataFile;
  /** fsync, rename to the final names, fsync the directory. */
  finalizeOutputs(shard: number, outputs: readonly DataFile[]): Promise<void>;
  /** Deletes outputs that will not be used (abort, failure). */
  discardOutputs(outputs: readonly DataFile[]): void;
  /** Every file of the shard, active included. */
  filesOf(shard: number): readonly DataFile[];
  /** Swaps the retired files for the outputs in the engine's file lists (synchronously). */
  adopt(shard: number, outputs: readonly DataFile[], retired: readonly DataFile[]): void;
  /** A barrier that makes a manifest without the retired files durable. */
  persist(): Promise<void>;
  /** Deletes retired files from disk (off the event loop) and cache. */
  retire(files: readonly DataFile[]): Promise<void>;
  yieldToEventLoop(): Promise<void>;
}

/** Is `file` worth compacting under `threshold` (dead / total bytes)? */
export function deadRatio(file: DataFile): number {
  return file.streamBytes === 0 ? 0 : (file.streamBytes - file.liveBytes) / file.streamBytes;
}

export interface ShardCompactionResult {
  filesIn: number;
  filesOut: number;
  bytesIn: number;
  bytesOut: number;
  recordsMoved: number;
  tombstonesKept: number;
  tombstonesDropped: number;
}

/** A result with every count at zero: one shard's before its run, or the totals before any shard. */
export function emptyCompactionResult(filesIn = 0): ShardCompactionResult {
  return { filesIn, filesOut: 0, bytesIn: 0, bytesOut: 0, recordsMoved: 0, tombstonesKept: 0, tombstonesDropped: 0 };
}

/** Compacts `candidates` (sealed, durable files of one shard). */
export async function compactShard(
  host: CompactionHost,
  shard: number,
  candidates: readonly DataFile[],
  signal: AbortSignal | undefined,
  explicit = true,
): Promise<ShardCompactionResult> {
  const result = emptyCompactionResult(candidates.length);
  const { outputs, moves } = await writeOutputs(host, shard, candidates, signal, result, explicit);
  // From here on nothing awaits until the swap is done: reads and writes see either the old or the new state.
  repointIndex(host, candidates, outputs, moves);
  for (const file of outputs) result.bytesOut += file.streamBytes;
  result.filesOut = outputs.length;
  host.adopt(shard, outputs, candidates);
  await host.persist();
  await host.retire(candidates);
  return result;
}

/**
 * Per input, the oldest record any file outside it may hold: a tombstone newer than that must stay.
 * That is the oldest record of the shard's files outside this compaction, and of the other inputs of
 * this run: the inputs are deleted one by one after the switch, and a crash between two deletions
 * must not leave an older put whose tombstone is gone, which recovery could not prove redundant (it
 * would quarantine the file; docs/durability.md §8.1).
 */
function oldestElsewhere(host: CompactionHost, shard: number, candidates: readonly DataFile[]): Map<number, number> {
  const candidateIds = new Set(candidates.map((file) => file.fileId));
  let oldestOutside = Number.MAX_SAFE_INTEGER;
  for (const file of host.filesOf(shard)) if (!candidateIds.has(file.fileId)) oldestOutside = Math.min(oldestOutside, file.lowestSequence);
  const oldestByInput = new Map<number, number>();
  for (const file of candidates) {
    let oldest = Number.MAX_SAFE_INTEGER;
    for (const other of candidates) if (other !== file) oldest = Math.min(oldest, other.lowestSequence);
    oldestByInput.set(file.fileId, Math.min(oldestOutside, oldest));
  }
  return oldestByInput;
}

/**
 * Steps 1 and 2: the live records and needed tombstones of every input, copied into new files under
 * temporary names a slice at a time, then synced and renamed. Returns the outputs and the moves as
 * flat numbers: handle, from file, from position, to file, to position, value length.
 */
async function writeOutputs(
  host: CompactionHost,
  shard: number,
  candidates: readonly DataFile[],
  signal: AbortSignal | undefined,
  result: ShardCompactionResult,
  explicit: boolean,
): Promise<{ outputs: DataFile[]; moves: number[] }> {
  const oldestByInput = oldestElsewhere(host, shard, candidates);
  const outputs: DataFile[] = [];
  const moves: number[] = [];
  let output: DataFile | undefined;
  const target = (): DataFile => {
    if (output === undefined || output.writePosition >= host.maxFileBytes) {
      if (output !== undefined) output.seal();
      output = host.createOutput(shard);
      outputs.push(output);
    }
    return output;
  };
  try {
    const copied = inKeyOrder(host, shard, candidates, explicit)
      ? await copyInKeyOrder(host, host.ordered!, candidates, signal, target, moves, result)
      : undefined;
    for (const file of candidates) {
      result.bytesIn += file.streamBytes;
      const copy = recordCopier(host, file, oldestByInput.get(file.fileId)!, target, moves, result, copied?.get(file.fileId));
      const stream = new RecordStream(file, file.pageCount, file.pageCount, host.keySize, copy);
      for (;;) {
        if (signal?.aborted) throw armdbError('ARMDB_ABORTED', 'compaction was aborted', signal.reason);
        const more = stream.step();
        await host.yieldToEventLoop();
        if (!more) break;
      }
    }
    if (output !== undefined) output.seal();
    await host.finalizeOutputs(shard, outputs);
  } catch (error) {
    host.discardOutputs(outputs);
    throw error;
  }
  return { outputs, moves };
}

/**
 * Whether a run writes in key order: on a Tree, an explicit run always; a background run when its
 * inputs hold at least {@link KEY_ORDER_MIN_SHARE} of the shard's live bytes. The key-order pass walks
 * the whole ordered index (every shard's keys), which a background run over a small part of a large
 * shard should not pay for; such a run copies in file order, and the next explicit compact() puts its
 * output in key order.
 */
function inKeyOrder(host: CompactionHost, shard: number, candidates: readonly DataFile[], explicit: boolean): boolean {
  if (host.ordered === undefined) return false;
  if (explicit) return true;
  let inputs = 0;
  for (const file of candidates) inputs += file.liveBytes;
  let all = 0;
  for (const file of host.filesOf(shard)) all += file.liveBytes;
  return inputs > 0 && inputs >= all * KEY_ORDER_MIN_SHARE;
}

/** Share of a shard's live bytes a run's inputs must hold to be written in key order. */
const KEY_ORDER_MIN_SHARE = 0.25;

/** Handles taken from the ordered index per slice of the key-order pass, at most. */
const KEY_ORDER_SLICE = 1024;
/** Handles of the first slice: doubled per slice while slices copy less than {@link KEY_ORDER_SLICE_BYTES}. */
const KEY_ORDER_FIRST_SLICE = 64;
/** Record bytes a slice of the key-order pass copies at most (about), as RecordStream reads 64 pages a step. */
const KEY_ORDER_SLICE_BYTES = 64 * PAGE_BYTES;

/**
 * Bit `position / 8` of a file's map: the record at `position` was copied. Records start 4- or 8-byte
 * aligned and are at least 20 bytes long (a 16-byte header and a key), so no two start in one 8-byte slot.
 */
function markCopied(map: Uint8Array, position: number): void {
  const slot = position >>> 3;
  map[slot >>> 3]! |= 1 << (slot & 7);
}

function wasCopied(map: Uint8Array | undefined, position: number): boolean {
  if (map === undefined) return false;
  const slot = position >>> 3;
  return (map[slot >>> 3]! & (1 << (slot & 7))) !== 0;
}

/**
 * The key-order part of step 1: the live records of `candidates`, in key order, a slice of the
 * ordered index at a time (the cursor stays valid while the tree is written between slices). Each
 * record is read back whole and checked (CRC, key) before it is copied. Returns, per input file id, a
 * map of the record positions copied, so that the streaming pass after it copies each record once.
 */
async function copyInKeyOrder(
  host: CompactionHost,
  ordered: OrderedIndex,
  candidates: readonly DataFile[],
  signal: AbortSignal | undefined,
  target: () => DataFile,
  moves: number[],
  result: ShardCompactionResult,
): Promise<Map<number, Uint8Array>> {
  const { index, keySize } = host;
  const inputs = new Map(candidates.map((file) => [file.fileId, file]));
  const copied = new Map(candidates.map((file) => [file.fileId, new Uint8Array((file.streamBytes >>> 6) + 1)]));
  const handles = new Int32Array(KEY_ORDER_SLICE);
  const keys = new Uint8Array(KEY_ORDER_SLICE * keySize);
  const cursor = ordered.cursor({});
  // Handles are only used within the synchronous turn that took them (a key removed while the event
  // loop runs frees its handle for another key), so a slice is bounded by its number of keys.
  let sliceKeys = KEY_ORDER_FIRST_SLICE;
  try {
    for (;;) {
      if (signal?.aborted) throw armdbError('ARMDB_ABORTED', 'compaction was aborted', signal.reason);
      const count = ordered.nextHandles(cursor, handles, keys, sliceKeys);
      let sliceBytes = 0;
      for (let slot = 0; slot < count; slot++) {
        const handle = handles[slot]!;
        const file = inputs.get(index.fileIdOf(handle));
        if (file === undefined) continue;
        const position = index.positionOf(handle);
        const valueLength = index.valueLengthOf(handle);
        // Tombstones (only while recovery runs) are the streaming pass's.
        if (valueLength === TOMBSTONE_LENGTH) continue;
        const bytes = host.readRecord(file, position, recordBytes(keySize, valueLength, file.recordAlignment));
        sliceBytes += bytes.length;
        const header = decodeRecordHeader(bytes, 0, valueLength);
        if (header === undefined || header.tombstone || header.valueLength !== valueLength)
          throw integrityError(`record at ${position} of file ${file.fileId} is not the value the index points at`);
        verifyRecordChecksum(bytes, 0, keySize, valueLength);
        const key = bytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + keySize);
        for (let at = 0; at < keySize; at++)
          if (key[at] !== keys[slot * keySize + at]) throw integrityError(`record at ${position} of file ${file.fileId} holds another key`);
        const value = bytes.subarray(RECORD_HEADER_BYTES + keySize, RECORD_HEADER_BYTES + keySize + valueLength);
        const writer = target();
        writer.reserve(DataFile.reserveBytes(keySize, valueLength));
        const to = writer.append(header.sequence, 0, key, value);
        moves.push(handle, file.fileId, position, writer.fileId, to, valueLength);
        markCopied(copied.get(file.fileId)!, position);
        result.recordsMoved++;
      }
      await host.yieldToEventLoop();
      if (count < sliceKeys) return copied;
      // Large values: fewer keys per slice, so that a slice copies about KEY_ORDER_SLICE_BYTES.
      sliceKeys =
        sliceBytes > KEY_ORDER_SLICE_BYTES
          ? Math.max(1, Math.floor((sliceKeys * KEY_ORDER_SLICE_BYTES) / sliceBytes))
          : Math.min(KEY_ORDER_SLICE, sliceKeys * 2);
    }
  } finally {
    ordered.closeCursor(cursor);
  }
}

/**
 * What happens to each record of input `file`: a live record (the index still points at it) is copied
 * and its move noted, unless the key-order pass copied it already (`copied`); a tombstone is kept
 * while a file elsewhere may hold an older record of its key.
 */
function recordCopier(
  host: CompactionHost,
  file: DataFile,
  oldestElsewhere: number,
  target: () => DataFile,
  moves: number[],
  result: ShardCompactionResult,
  copied: Uint8Array | undefined,
): (record: StreamRecord) => void {
  const { index, keySize } = host;
  return (record) => {
    if (record.tombstone) {
      if (oldestElsewhere >= record.sequence) {
        result.tombstonesDropped++;
        return;
      }
      const writer = target();
      writer.reserve(DataFile.reserveBytes(keySize, 0));
      writer.append(record.sequence, RecordFlag.tombstone, record.key, record.value);
      result.tombstonesKept++;
      return;
    }
    const handle = index.find(record.key);
    if (handle < 0 || index.fileIdOf(handle) !== file.fileId || index.positionOf(handle) !== record.position) return;
    if (wasCopied(copied, record.position)) return;
    const writer = target();
    writer.reserve(DataFile.reserveBytes(keySize, record.valueLength));
    const position = writer.append(record.sequence, 0, record.key, record.value);
    moves.push(handle, file.fileId, record.position, writer.fileId, position, record.valueLength);
    result.recordsMoved++;
  };
}

/** Step 3: re-points each index entry that still points where compaction read it (writes made meanwhile win). */
function repointIndex(host: CompactionHost, candidates: readonly DataFile[], outputs: readonly DataFile[], moves: readonly number[]): void {
  const index = host.index;
  const filesById = new Map(outputs.map((file) => [file.fileId, file]));
  const candidateById = new Map(candidates.map((file) => [file.fileId, file]));
  for (let offset = 0; offset < moves.length; offset += 6) {
    const handle = moves[offset]!;
    const fromFileId = moves[offset + 1]!;
    const fromPosition = moves[offset + 2]!;
    if (index.fileIdOf(handle) !== fromFileId || index.positionOf(handle) !== fromPosition) continue;
    const toFile = filesById.get(moves[offset + 3]!)!;
    const valueLength = moves[offset + 5]!;
    index.relocate(handle, toFile.fileId, moves[offset + 4]!);
    // Each file counts the record at its own record version's size (docs/format.md §4.6).
    const fromFile = candidateById.get(fromFileId)!;
    fromFile.liveBytes -= fromFile.recordBytes(host.keySize, valueLength);
    toFile.liveBytes += toFile.recordBytes(host.keySize, valueLength);
  }
}
