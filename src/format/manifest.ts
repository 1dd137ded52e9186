/**
 * The `MANIFEST` (docs/format.md §7): the authenticated list of live files and the immutable options.
 * Replaced atomically on every change (write temp, fsync, rename, fsync directory); its epoch grows by
 * one with every replacement.
 *
 * Version 2 ends in one or two MACs over the same body: two while the meta key rotates, one under the
 * current manifest MAC key and one under the next, so that the MANIFEST verifies under whichever
 * KEYRING a crash leaves (§7.4).
 */
import { armdbError, integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
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
    requested < ManifestVersion.journal && manifest.files.some((file) => (file.journalChunks ?? 0) > 0)
      ? ManifestVersion.journal
      : requested;
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
  for (const file of manifest.files) encodeFileEntry(writer, file, formatVersion);
  const body = writer.bytes.subarray(0, bodyBytes);
  const tags = macs.map((each) => each(body));
  for (const tag of tags) writer.raw(tag, MAC_BYTES);
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

/** The format version of a manifest (1 or 2), unauthenticated, like {@link peekManifestAlgorithm}. */
export function peekManifestFormatVersion(bytes: Uint8Array): ManifestFormatVersion {
  const reader = new ByteReader(bytes, 'manifest');
  if (!equalBytes(reader.bytesView(8), Magic.manifest)) throw integrityError('manifest has a wrong magic number');
  return readVersion(reader);
}

function readVersion(reader: ByteReader): ManifestFormatVersion {
  const version = reader.u16();
  if (version !== ManifestVersion.singleMac && version !== ManifestVersion.macCount && version !== ManifestVersion.journal) {
    throw armdbError(
      'ARMDB_FORMAT_MISMATCH',
      `the store has format version ${version}; this armdb reads versions ${ManifestVersion.singleMac} to ${ManifestVersion.journal}`,
    );
  }
  return version;
}

/**
 * Parses and authenticates a manifest: it must carry a MAC under `mac`'s key (any of its MACs, §7.4).
 * Lengths are checked against the file size before use.
 */
export function decodeManifest(bytes: Uint8Array, mac: MacFunction): Manifest {
  const formatVersion = peekManifestFormatVersion(requireLength(bytes, MANIFEST_HEADER_BYTES + MAC_BYTES));
  const body = authenticatedBody(bytes, formatVersion, mac);
  const algorithm = peekManifestAlgorithm(body);
  const reader = new ByteReader(body, 'manifest', 11);
  const header = readHeader(reader, formatVersion);
  const files: ManifestFile[] = [];
  for (let index = 0; index < header.fileCount; index++) files.push(readFileEntry(reader, header.shards, header.nextFileId, formatVersion));
  reader.end();
  const { fileCount: _fileCount, ...fields } = header;
  return { ...fields, algorithm, files };
}

function requireLength(bytes: Uint8Array, minimum: number): Uint8Array {
  if (bytes.length < minimum) throw integrityError(`manifest of ${bytes.length} bytes is truncated`);
  return bytes;
}

/** The body the MACs cover, once one of them verifies (§7.4); every stored MAC is compared. */
function authenticatedBody(bytes: Uint8Array, formatVersion: ManifestFormatVersion, mac: MacFunction): Uint8Array {
  // The MAC count sits in the body it authenticates: read here only to find where the body ends.
  const macCount = formatVersion === ManifestVersion.singleMac ? 1 : bytes[MAC_COUNT_OFFSET]!;
  if (macCount < 1 || macCount > MAX_MANIFEST_MACS) throw integrityError(`manifest claims ${macCount} MACs`);
  requireLength(bytes, MANIFEST_HEADER_BYTES + macCount * MAC_BYTES);
  const body = bytes.subarray(0, bytes.length - macCount * MAC_BYTES);
  const expected = mac(body);
  let authentic = false;
  for (let index = 0; index < macCount; index++) {
    const at = body.length + index * MAC_BYTES;
    // No early exit: which MAC matched is not revealed by timing.
    if (equalBytes(expected, bytes.subarray(at, at + MAC_BYTES))) authentic = true;
  }
  if (!authentic) throw integrityError('manifest fails its MAC');
  return body;
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
 * One file entry (§7.3). Version 3 keeps version 2's 120 bytes: the journal chunk count takes the 4
 * reserved bytes, and the u64 page count becomes a u32 page count and the u32 journal page (a data
 * file never has 2^32 pages, §9). Versions 1 and 2 keep their layout (and never record a journal).
 */
function encodeFileEntry(writer: ByteWriter, file: ManifestFile, formatVersion: ManifestFormatVersion): void {
  const journalChunks = file.journalChunks ?? 0;
  const journalPage = file.journalPage ?? 0;
  writer
    .u16(file.shard)
    .u8(file.state)
    .u8(file.hintMac === undefined ? 0 : 1)
    .u32(file.fileId)
    .u32(file.keyId);
  if (formatVersion < ManifestVersion.journal) writer.zeros(4).u64(file.pageCount);
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
function readFileEntry(reader: ByteReader, shards: number, nextFileId: number, formatVersion: ManifestFormatVersion): ManifestFile {
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
  if (formatVersion < ManifestVersion.journal) {
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
