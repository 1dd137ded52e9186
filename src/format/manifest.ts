/**
 * The `MANIFEST` (docs/format.md §7): the authenticated list of live files and the immutable options.
 * Its epoch grows by one with every barrier that records a new state.
 *
 * Version 2 ends in one or two MACs over the same body: two while the meta key rotates, one under the
 * current manifest MAC key and one under the next, so that the MANIFEST verifies under whichever
 * KEYRING a crash leaves (§7.4). Version 3 is a version-2 MANIFEST (the base, replaced atomically)
 * followed by a log of appended delta records, each MACed like the base and chained to the unit
 * before it (§7.7): a barrier appends one record and fsyncs it instead of replacing the file.
 */
import { armdbError, integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes, isAllZero } from './bytes.js';
import {
  DATABASE_ID_BYTES,
  Limits,
  MANIFEST_FORMAT_VERSION,
  ManifestVersion,
  Magic,
  MAC_BYTES,
  isAlgorithmId,
  type AlgorithmId,
  type ManifestFormatVersion,
} from './constants.js';
import type { MacFunction } from './tag-file.js';

export const MANIFEST_HEADER_BYTES = 64;
export const MANIFEST_FILE_ENTRY_BYTES = 120;
/** Offset of the version-2 MAC count in the header (§7.2). */
const MAC_COUNT_OFFSET = 60;

/** Which collection class created the directory. */
export const CollectionKind = {
  varMap: 1,
  varTree: 2,
  constMap: 3,
  constTree: 4,
  typedMap: 5,
  typedTree: 6,
} as const;
export type CollectionKindId = (typeof CollectionKind)[keyof typeof CollectionKind];

export const FileState = { active: 1, sealed: 2 } as const;
export type FileStateId = (typeof FileState)[keyof typeof FileState];

export interface ManifestFile {
  readonly shard: number;
  readonly state: FileStateId;
  readonly fileId: number;
  readonly keyId: number;
  /** Sealed: the page count in its footer. Active: pages known durable. */
  readonly pageCount: number;
  /** MAC of the tag-file header: pins the file instance (its salt). */
  readonly headerMac: Uint8Array;
  /** SHA-256 over the first `pageCount` tags. */
  readonly tagDigest: Uint8Array;
  /** MAC of the hint-file header, or undefined when the file has no hint. */
  readonly hintMac: Uint8Array | undefined;
  /**
   * Active files (version 3): chunks of the file's commit journal known durable, counted from the
   * file's first chunk (0: none); sealed files and versions 1 and 2 record 0 (§7.3, §6A).
   */
  readonly journalChunks?: number;
  /** The page the last durable journal chunk belongs to (0 when `journalChunks` is 0). */
  readonly journalPage?: number;
}

export interface Manifest {
  readonly epoch: number;
  readonly algorithm: AlgorithmId;
  readonly collectionKind: CollectionKindId;
  readonly databaseId: Uint8Array;
  readonly keySize: number;
  readonly valueSize: number;
  readonly shards: number;
  readonly shardPrefixBits: number;
  /** Data key that new files are written under (0 without encryption). */
  readonly activeKeyId: number;
  /** File ids are unique across the database and never reused. */
  readonly nextFileId: number;
  readonly files: readonly ManifestFile[];
}

/** How a MANIFEST is written beyond its contents. */
export interface ManifestEncoding {
  /** Default {@link MANIFEST_FORMAT_VERSION}; 1 keeps a version-1 store readable by older armdb. */
  readonly formatVersion?: ManifestFormatVersion;
  /** A second MAC, under the next manifest MAC key while the meta key rotates (version 2 only). */
  readonly nextMac?: MacFunction | undefined;
}

/** Most MACs a MANIFEST carries: the current and the next manifest MAC key (§7.4). */
export const MAX_MANIFEST_MACS = 2;

export function encodeManifest(manifest: Manifest, mac: MacFunction, encoding: ManifestEncoding = {}): Uint8Array {
  // A MANIFEST that records a journal is version 3: older armdb must refuse it, not drop the journal.
  const requested = encoding.formatVersion ?? MANIFEST_FORMAT_VERSION;
  const formatVersion =
    requested < ManifestVersion.log && manifest.files.some((file) => (file.journalChunks ?? 0) > 0) ? ManifestVersion.log : requested;
  const macs = encoding.nextMac === undefined ? [mac] : [mac, encoding.nextMac];
  if (formatVersion === ManifestVersion.singleMac && macs.length !== 1)
    throw new RangeError('a version-1 MANIFEST carries exactly one MAC');
  const bodyBytes = MANIFEST_HEADER_BYTES + manifest.files.length * MANIFEST_FILE_ENTRY_BYTES;
  const length = bodyBytes + macs.length * MAC_BYTES;
  const writer = new ByteWriter(length);
  writer
    .raw(Magic.manifest, 8)
    .u16(formatVersion)
    .u8(manifest.algorithm)
    .u8(manifest.collectionKind)
    .u64(manifest.epoch)
    .raw(manifest.databaseId, DATABASE_ID_BYTES)
    .u16(manifest.keySize)
    .u16(manifest.shards)
    .u16(manifest.shardPrefixBits)
    .zeros(2)
    .u32(manifest.valueSize)
    .u32(manifest.activeKeyId)
    .u32(manifest.nextFileId)
    .u32(manifest.files.length);
  // Version 1: 4 reserved bytes. Version 2: the MAC count, then 3 reserved bytes (§7.2).
  if (formatVersion === ManifestVersion.singleMac) writer.zeros(4);
  else writer.u8(macs.length).zeros(3);
  for (const file of manifest.files) writeFileEntry(writer, file, formatVersion);
  const body = writer.bytes.subarray(0, bodyBytes);
  const tags = macs.map((each) => each(body));
  for (const tag of tags) writer.raw(tag, MAC_BYTES);
  return writer.finish();
}

/** The encoding of one file entry alone: two entries are the same record of a file exactly when these bytes are equal. */
export function encodeFileEntry(file: ManifestFile): Uint8Array {
  const writer = new ByteWriter(MANIFEST_FILE_ENTRY_BYTES);
  writeFileEntry(writer, file, MANIFEST_FORMAT_VERSION);
  return writer.finish();
}

/**
 * Reads the fields the MAC key does not depend on, without authenticating: used only to choose
 * which key to verify with and to report a clear mismatch. Nothing from it is trusted further.
 */
export function peekManifestAlgorithm(bytes: Uint8Array): AlgorithmId {
  const reader = new ByteReader(bytes, 'manifest');
  if (!equalBytes(reader.bytesView(8), Magic.manifest)) throw integrityError('manifest has a wrong magic number');
  readVersion(reader);
  const algorithm = reader.u8();
  if (!isAlgorithmId(algorithm)) throw integrityError(`manifest names unknown algorithm ${algorithm}`);
  return algorithm;
}

/** The format version of a manifest (1, 2 or 3), unauthenticated, like {@link peekManifestAlgorithm}. */
export function peekManifestFormatVersion(bytes: Uint8Array): ManifestFormatVersion {
  const reader = new ByteReader(bytes, 'manifest');
  if (!equalBytes(reader.bytesView(8), Magic.manifest)) throw integrityError('manifest has a wrong magic number');
  return readVersion(reader);
}

function readVersion(reader: ByteReader): ManifestFormatVersion {
  const version = reader.u16();
  if (version !== ManifestVersion.singleMac && version !== ManifestVersion.macCount && version !== ManifestVersion.log) {
    throw armdbError(
      'ARMDB_FORMAT_MISMATCH',
      `the store has format version ${version}; this armdb reads versions ${ManifestVersion.singleMac} to ${ManifestVersion.log}`,
    );
  }
  return version;
}

/**
 * Parses and authenticates a manifest, its log included (version 3, §7.7): the state it records, as
 * of its last complete record. See {@link decodeManifestLog}.
 */
export function decodeManifest(bytes: Uint8Array, mac: MacFunction): Manifest {
  return decodeManifestLog(bytes, mac).manifest;
}

/** Where a MANIFEST's log stands: what the next append must chain to and where it goes (§7.7). */
export interface ManifestLogState {
  readonly formatVersion: ManifestFormatVersion;
  /** Length of the base (header, entries, MACs). */
  readonly baseBytes: number;
  /** End of the last complete record (the base's end without one): where the next append goes. */
  readonly validBytes: number;
  /** Bytes after {@link validBytes}: an append whose fsync never completed (a torn tail), or zero. */
  readonly tornBytes: number;
  /** The first MAC of the last complete unit (base or record): the next record's previous-MAC field. */
  readonly chainMac: Uint8Array;
  /** Complete records in the log. */
  readonly records: number;
}

export interface DecodedManifest {
  readonly manifest: Manifest;
  readonly log: ManifestLogState;
}

/**
 * Parses and authenticates a manifest: the base must carry a MAC under `mac`'s key (any of its MACs,
 * §7.4), and in version 3 so must every record of the log after it, each naming the first MAC of the
 * unit before it and the next epoch (§7.7). A tail that is an append cut short by a crash (the file
 * ends inside it, or it ends in zeros instead of its end marker, with only zeros after it) is left
 * out and reported in `log.tornBytes`; any other damage is ARMDB_INTEGRITY. Lengths are checked
 * against the file size before use. This is the one reader of MANIFEST bytes.
 */
export function decodeManifestLog(bytes: Uint8Array, mac: MacFunction): DecodedManifest {
  const formatVersion = peekManifestFormatVersion(requireLength(bytes, MANIFEST_HEADER_BYTES + MAC_BYTES));
  // Versions 1 and 2 are the base alone; version 3's base length follows from its header (read
  // before it is authenticated only to find where the base ends, like the MAC count).
  const baseBytes = formatVersion === ManifestVersion.log ? baseLengthOf(bytes) : bytes.length;
  const base = bytes.subarray(0, baseBytes);
  const { body, chainMac } = authenticatedBody(base, formatVersion, mac);
  const algorithm = peekManifestAlgorithm(body);
  const reader = new ByteReader(body, 'manifest', 11);
  const header = readHeader(reader, formatVersion);
  const files: ManifestFile[] = [];
  for (let index = 0; index < header.fileCount; index++) files.push(readFileEntry(reader, header.shards, header.nextFileId, formatVersion));
  reader.end();
  const { fileCount: _fileCount, ...fields } = header;
  const baseManifest: Manifest = { ...fields, algorithm, files };
  if (formatVersion !== ManifestVersion.log) {
    return { manifest: baseManifest, log: { formatVersion, baseBytes, validBytes: baseBytes, tornBytes: 0, chainMac, records: 0 } };
  }
  return replayLog(bytes, baseManifest, baseBytes, chainMac, mac);
}

/** The log state right after `bytes`, a base just encoded (no records yet), was written in place of the MANIFEST. */
export function freshLogState(bytes: Uint8Array): ManifestLogState {
  const formatVersion = peekManifestFormatVersion(bytes);
  const macCount = formatVersion === ManifestVersion.singleMac ? 1 : bytes[MAC_COUNT_OFFSET]!;
  const at = bytes.length - macCount * MAC_BYTES;
  return {
    formatVersion,
    baseBytes: bytes.length,
    validBytes: bytes.length,
    tornBytes: 0,
    chainMac: bytes.slice(at, at + MAC_BYTES),
    records: 0,
  };
}

/** Version 3: the length of the base, from its header's file count and MAC count (§7.7). */
function baseLengthOf(bytes: Uint8Array): number {
  const reader = new ByteReader(bytes, 'manifest', 56);
  const fileCount = reader.u32();
  const macCount = reader.u8();
  if (macCount < 1 || macCount > MAX_MANIFEST_MACS) throw integrityError(`manifest claims ${macCount} MACs`);
  if (fileCount > Limits.maxManifestFiles) throw integrityError(`manifest claims ${fileCount} files`);
  const baseBytes = MANIFEST_HEADER_BYTES + fileCount * MANIFEST_FILE_ENTRY_BYTES + macCount * MAC_BYTES;
  requireLength(bytes, baseBytes);
  return baseBytes;
}

function requireLength(bytes: Uint8Array, minimum: number): Uint8Array {
  if (bytes.length < minimum) throw integrityError(`manifest of ${bytes.length} bytes is truncated`);
  return bytes;
}

/**
 * The body the MACs cover, once one of them verifies (§7.4); every stored MAC is compared. Also the
 * first MAC, which the next record of a log names (§7.7).
 */
function authenticatedBody(
  bytes: Uint8Array,
  formatVersion: ManifestFormatVersion,
  mac: MacFunction,
): { body: Uint8Array; chainMac: Uint8Array } {
  // The MAC count sits in the body it authenticates: read here only to find where the body ends.
  const macCount = formatVersion === ManifestVersion.singleMac ? 1 : bytes[MAC_COUNT_OFFSET]!;
  if (macCount < 1 || macCount > MAX_MANIFEST_MACS) throw integrityError(`manifest claims ${macCount} MACs`);
  requireLength(bytes, MANIFEST_HEADER_BYTES + macCount * MAC_BYTES);
  const body = bytes.subarray(0, bytes.length - macCount * MAC_BYTES);
  if (!anyMacMatches(mac(body), bytes.subarray(body.length), macCount)) throw integrityError('manifest fails its MAC');
  return { body, chainMac: bytes.slice(body.length, body.length + MAC_BYTES) };
}

/** Whether `expected` equals one of the `macCount` MACs at the start of `macs`; no early exit, so timing does not reveal which. */
function anyMacMatches(expected: Uint8Array, macs: Uint8Array, macCount: number): boolean {
  let authentic = false;
  for (let index = 0; index < macCount; index++) {
    if (equalBytes(expected, macs.subarray(index * MAC_BYTES, (index + 1) * MAC_BYTES))) authentic = true;
  }
  return authentic;
}

// ---------------------------------------------------------------------------------------------
// Version 3: the log of delta records after the base (docs/format.md §7.7).

/** A record never crosses a multiple of this many bytes of the file: a crash tears at most a prefix of it (§7.7). */
export const MANIFEST_LOG_PAGE_BYTES = 4096;
/**
 * Most bytes of log after the base: a barrier whose append would go past it replaces the MANIFEST
 * instead (compacting the log into a new base), so an open reads and MACs at most this much log.
 */
export const MAX_MANIFEST_LOG_BYTES = 64 * 1024;
/** The fixed part of a record before its file entries. */
export const MANIFEST_RECORD_HEADER_BYTES = 64;
/** The last byte of every complete record: a record cut short ends in zeros instead. */
export const MANIFEST_RECORD_END = 0xa5;
const SMALLEST_RECORD_BYTES = MANIFEST_RECORD_HEADER_BYTES + MAC_BYTES + 1;

/** What a record changes: the state after it is the state before with `changed` put (by file id) and `removed` dropped. */
export interface ManifestDelta {
  readonly epoch: number;
  readonly activeKeyId: number;
  readonly nextFileId: number;
  /** New files and files whose entry changed, whole (§7.3). */
  readonly changed: readonly ManifestFile[];
  /** Ids of files no longer listed. */
  readonly removed: readonly number[];
}

/** Bytes of the record of `delta` signed with `macCount` MACs. */
export function manifestRecordBytes(delta: Pick<ManifestDelta, 'changed' | 'removed'>, macCount: number): number {
  return (
    MANIFEST_RECORD_HEADER_BYTES + delta.changed.length * MANIFEST_FILE_ENTRY_BYTES + delta.removed.length * 4 + macCount * MAC_BYTES + 1
  );
}

/**
 * One record (§7.7): `previousMac` is the first MAC of the unit before it. Returns the record and its
 * own first MAC, which the next record names. A record must fit in {@link MANIFEST_LOG_PAGE_BYTES}.
 */
export function encodeManifestRecord(
  delta: ManifestDelta,
  previousMac: Uint8Array,
  mac: MacFunction,
  nextMac?: MacFunction | undefined,
): { bytes: Uint8Array; chainMac: Uint8Array } {
  const macs = nextMac === undefined ? [mac] : [mac, nextMac];
  const length = manifestRecordBytes(delta, macs.length);
  if (length > MANIFEST_LOG_PAGE_BYTES) throw new RangeError(`a manifest record of ${length} bytes does not fit in a log page`);
  const writer = new ByteWriter(length);
  writer
    .u32(length)
    .u32(~length >>> 0)
    .u8(macs.length)
    .zeros(3)
    .u32(delta.activeKeyId)
    .u64(delta.epoch)
    .u32(delta.nextFileId)
    .u16(delta.changed.length)
    .u16(delta.removed.length)
    .raw(previousMac, MAC_BYTES);
  for (const file of delta.changed) writeFileEntry(writer, file, ManifestVersion.log);
  for (const fileId of delta.removed) writer.u32(fileId);
  const body = writer.bytes.subarray(0, writer.offset);
  const tags = macs.map((each) => each(body));
  for (const tag of tags) writer.raw(tag, MAC_BYTES);
  writer.u8(MANIFEST_RECORD_END);
  return { bytes: writer.finish(), chainMac: tags[0]! };
}

/**
 * What to write at `fileBytes` (the end of the last complete unit) to append `record`: zeros up to the
 * next log page first when the record would cross one, so that no record ever spans two (§7.7).
 */
export function frameManifestAppend(fileBytes: number, record: Uint8Array): Uint8Array {
  const used = fileBytes % MANIFEST_LOG_PAGE_BYTES;
  const padding = used + record.length > MANIFEST_LOG_PAGE_BYTES ? MANIFEST_LOG_PAGE_BYTES - used : 0;
  if (padding === 0) return record;
  const framed = new Uint8Array(padding + record.length);
  framed.set(record, padding);
  return framed;
}

/** Applies the records after the base, checking each (§7.7). */
function replayLog(bytes: Uint8Array, base: Manifest, baseBytes: number, baseMac: Uint8Array, mac: MacFunction): DecodedManifest {
  const files = new Map<number, ManifestFile>();
  for (const file of base.files) files.set(file.fileId, file);
  // A record names files by id: a log can follow only a base that lists each id once (a writer never lists one twice).
  const uniqueIds = files.size === base.files.length;
  let state = { epoch: base.epoch, activeKeyId: base.activeKeyId, nextFileId: base.nextFileId };
  let chainMac = baseMac;
  let position = baseBytes;
  let validBytes = baseBytes;
  let records = 0;
  const torn = (): boolean => {
    position = bytes.length;
    return true;
  };
  while (position < bytes.length) {
    const remaining = bytes.length - position;
    const pageEnd = (Math.floor(position / MANIFEST_LOG_PAGE_BYTES) + 1) * MANIFEST_LOG_PAGE_BYTES;
    if (pageEnd - position < SMALLEST_RECORD_BYTES) {
      // No record fits before the page's end, so the writer padded it: zeros to the page's end.
      if (!isAllZero(bytes.subarray(position, Math.min(pageEnd, bytes.length)))) throw integrityError('manifest log padding is not zero');
      position = pageEnd;
      continue;
    }
    // Less than the length and its complement: the start of an append, cut short.
    if (remaining < 8 && torn()) break;
    const view = new DataView(bytes.buffer, bytes.byteOffset + position, 8);
    const length = view.getUint32(0, true);
    const lengthCheck = view.getUint32(4, true);
    if (length === 0 && lengthCheck === 0) {
      // Padding before a record that would have crossed the page: zeros to the page's end.
      if (!isAllZero(bytes.subarray(position, Math.min(pageEnd, bytes.length)))) throw integrityError('manifest log padding is not zero');
      position = pageEnd;
      continue;
    }
    if (lengthCheck !== ~length >>> 0) {
      // The two agree in every record written whole: only the two cut short, with nothing after them, are a torn append.
      if (isAllZero(bytes.subarray(position + 8)) && torn()) break;
      throw integrityError(`manifest log record at ${position} has a damaged length`);
    }
    if (length < SMALLEST_RECORD_BYTES || position + length > pageEnd) {
      throw integrityError(`manifest log record at ${position} claims ${length} bytes`);
    }
    if (position + length > bytes.length && torn()) break;
    const record = bytes.subarray(position, position + length);
    const verified = verifyRecord(record, mac);
    if (verified === undefined) {
      // An append whose fsync never completed: a prefix reached the disk, the rest reads as zeros.
      if (record[length - 1] === 0 && isAllZero(bytes.subarray(position + length)) && torn()) break;
      throw integrityError(`manifest log record at ${position} fails its MAC`);
    }
    if (!uniqueIds) throw integrityError('manifest base lists a file twice');
    const delta = readRecord(record, verified.bodyBytes, base.shards, state, chainMac, files);
    for (const fileId of delta.removed) files.delete(fileId);
    for (const file of delta.changed) files.set(file.fileId, file);
    if (files.size > Limits.maxManifestFiles) throw integrityError(`manifest log lists more than ${Limits.maxManifestFiles} files`);
    state = { epoch: delta.epoch, activeKeyId: delta.activeKeyId, nextFileId: delta.nextFileId };
    chainMac = verified.chainMac;
    position += length;
    validBytes = position;
    records++;
  }
  // Without records the base is the state, its entries as listed.
  const manifest: Manifest = records === 0 ? base : { ...base, ...state, files: [...files.values()] };
  return {
    manifest,
    log: { formatVersion: ManifestVersion.log, baseBytes, validBytes, tornBytes: bytes.length - validBytes, chainMac, records },
  };
}

/** The record's body length and first MAC when its end marker is there and one of its MACs verifies; undefined otherwise. */
function verifyRecord(record: Uint8Array, mac: MacFunction): { bodyBytes: number; chainMac: Uint8Array } | undefined {
  const macCount = record[8]!;
  if (macCount < 1 || macCount > MAX_MANIFEST_MACS) return undefined;
  if (record[record.length - 1] !== MANIFEST_RECORD_END) return undefined;
  const bodyBytes = record.length - 1 - macCount * MAC_BYTES;
  if (bodyBytes < MANIFEST_RECORD_HEADER_BYTES) return undefined;
  if (!anyMacMatches(mac(record.subarray(0, bodyBytes)), record.subarray(bodyBytes), macCount)) return undefined;
  return { bodyBytes, chainMac: record.slice(bodyBytes, bodyBytes + MAC_BYTES) };
}

/** The authenticated body of one record, checked against the state before it (§7.7). */
function readRecord(
  record: Uint8Array,
  bodyBytes: number,
  shards: number,
  before: { readonly epoch: number; readonly nextFileId: number },
  chainMac: Uint8Array,
  files: ReadonlyMap<number, ManifestFile>,
): ManifestDelta {
  const reader = new ByteReader(record.subarray(0, bodyBytes), 'manifest record', 9);
  reader.zeros(3);
  const activeKeyId = reader.u32();
  const epoch = reader.u64();
  const nextFileId = reader.u32();
  const changedCount = reader.u16();
  const removedCount = reader.u16();
  // The chain: a record removed, reordered, repeated or taken from another MANIFEST names another MAC.
  if (!equalBytes(reader.bytesView(MAC_BYTES), chainMac)) throw integrityError('manifest log record does not follow the one before it');
  if (epoch !== before.epoch + 1) throw integrityError(`manifest log record has epoch ${epoch} after ${before.epoch}`);
  if (nextFileId < before.nextFileId) throw integrityError('manifest log record lowers the next file id');
  if (changedCount * MANIFEST_FILE_ENTRY_BYTES + removedCount * 4 !== reader.remaining) {
    throw integrityError(`manifest log record claims ${changedCount} entries and ${removedCount} removals in ${reader.remaining} bytes`);
  }
  const changed: ManifestFile[] = [];
  const seen = new Set<number>();
  for (let index = 0; index < changedCount; index++) {
    const file = readFileEntry(reader, shards, nextFileId, ManifestVersion.log);
    const previous = files.get(file.fileId);
    if (seen.has(file.fileId) || (previous !== undefined && previous.shard !== file.shard)) {
      throw integrityError(`manifest log record lists file ${file.fileId} inconsistently`);
    }
    seen.add(file.fileId);
    changed.push(file);
  }
  const removed: number[] = [];
  for (let index = 0; index < removedCount; index++) {
    const fileId = reader.u32();
    if (!files.has(fileId) || seen.has(fileId)) throw integrityError(`manifest log record removes file ${fileId}, which is not listed`);
    seen.add(fileId);
    removed.push(fileId);
  }
  reader.end();
  return { epoch, activeKeyId, nextFileId, changed, removed };
}

/** The fixed header after the magic, version and algorithm (§7.2), with its bounds checked. */
function readHeader(reader: ByteReader, formatVersion: ManifestFormatVersion) {
  const collectionKind = reader.u8();
  if (collectionKind < CollectionKind.varMap || collectionKind > CollectionKind.typedTree) {
    throw integrityError(`manifest names unknown collection kind ${collectionKind}`);
  }
  const epoch = reader.u64();
  const databaseId = reader.copy(DATABASE_ID_BYTES);
  const keySize = reader.u16();
  const shards = reader.u16();
  const shardPrefixBits = reader.u16();
  reader.zeros(2);
  const valueSize = reader.u32();
  const activeKeyId = reader.u32();
  const nextFileId = reader.u32();
  const fileCount = reader.u32();
  if (formatVersion === ManifestVersion.singleMac) reader.zeros(4);
  else {
    reader.u8(); // the MAC count, read before to find the body's end
    reader.zeros(3);
  }
  if (keySize < 1 || keySize > Limits.maxKeyBytes) throw integrityError(`manifest key size ${keySize} is out of range`);
  if (shards < 1 || shards > Limits.maxShards) throw integrityError(`manifest shard count ${shards} is out of range`);
  if (shardPrefixBits > keySize * 8) throw integrityError('manifest shard prefix is longer than the key');
  if (fileCount > Limits.maxManifestFiles || fileCount * MANIFEST_FILE_ENTRY_BYTES !== reader.remaining) {
    throw integrityError(`manifest claims ${fileCount} files but holds ${reader.remaining} bytes of entries`);
  }
  return {
    epoch,
    collectionKind: collectionKind as CollectionKindId,
    databaseId,
    keySize,
    valueSize,
    shards,
    shardPrefixBits,
    activeKeyId,
    nextFileId,
    fileCount,
  };
}

/**
 * One file entry (§7.3): {@link MANIFEST_FILE_ENTRY_BYTES} bytes, the same in the base and in a log
 * record. Version 3 keeps version 2's 120 bytes: the journal chunk count takes the 4 reserved bytes,
 * and the u64 page count becomes a u32 page count and the u32 journal page (a data file never has
 * 2^32 pages, §9). Versions 1 and 2 keep their layout (and never record a journal).
 */
export function writeFileEntry(writer: ByteWriter, file: ManifestFile, formatVersion: ManifestFormatVersion): void {
  const journalChunks = file.journalChunks ?? 0;
  const journalPage = file.journalPage ?? 0;
  writer
    .u16(file.shard)
    .u8(file.state)
    .u8(file.hintMac === undefined ? 0 : 1)
    .u32(file.fileId)
    .u32(file.keyId);
  if (formatVersion < ManifestVersion.log) writer.zeros(4).u64(file.pageCount);
  else {
    if (file.pageCount > 0xffffffff || journalChunks > 0xffffffff || journalPage > 0xffffffff)
      throw new RangeError('manifest entry field out of range');
    writer.u32(journalChunks).u32(file.pageCount).u32(journalPage);
  }
  writer
    .raw(file.headerMac, MAC_BYTES)
    .raw(file.tagDigest, MAC_BYTES)
    .raw(file.hintMac ?? new Uint8Array(MAC_BYTES), MAC_BYTES);
}

/** One file entry (§7.3), checked against the header's shard count and next file id. */
export function readFileEntry(reader: ByteReader, shards: number, nextFileId: number, formatVersion: ManifestFormatVersion): ManifestFile {
  const shard = reader.u16();
  const state = reader.u8();
  const hasHint = reader.u8();
  if (shard >= shards) throw integrityError(`manifest lists a file of shard ${shard} of ${shards}`);
  if (state !== FileState.active && state !== FileState.sealed) throw integrityError(`manifest file state ${state} is unknown`);
  if (hasHint > 1) throw integrityError('manifest hint flag is out of range');
  const fileId = reader.u32();
  const keyId = reader.u32();
  let journalChunks = 0;
  let pageCount: number;
  let journalPage = 0;
  if (formatVersion < ManifestVersion.log) {
    reader.zeros(4);
    pageCount = reader.u64();
  } else {
    journalChunks = reader.u32();
    pageCount = reader.u32();
    journalPage = reader.u32();
  }
  const headerMac = reader.copy(MAC_BYTES);
  const tagDigest = reader.copy(MAC_BYTES);
  const hintMacBytes = reader.copy(MAC_BYTES);
  if (fileId >= nextFileId) throw integrityError(`manifest lists file ${fileId} at or beyond its next file id ${nextFileId}`);
  if (journalPage !== 0 && (journalChunks === 0 || state !== FileState.active))
    throw integrityError(`manifest file ${fileId}: a journal page without durable journal chunks`);
  if (state === FileState.sealed && journalChunks !== 0)
    throw integrityError(`manifest file ${fileId}: a sealed file records journal chunks`);
  return {
    shard,
    state,
    fileId,
    keyId,
    pageCount,
    headerMac,
    tagDigest,
    hintMac: hasHint === 1 ? hintMacBytes : undefined,
    ...(journalChunks === 0 ? {} : { journalChunks, journalPage }),
  };
}
