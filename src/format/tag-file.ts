/**
 * The tag file `NNNNNN.tags` (docs/format.md §5): a 128-byte authenticated header, one 16-byte tag per
 * sealed data page, and — once the data file is sealed — an 80-byte authenticated footer.
 *
 * The MAC function is passed in (HMAC-SHA256 under the file's MAC key); this module does no crypto.
 */
import { integrityError } from '../errors.js';
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import {
  DATABASE_ID_BYTES,
  FORMAT_VERSION,
  Magic,
  MAC_BYTES,
  PAGE_BYTES,
  SALT_BYTES,
  TAG_BYTES,
  TAG_FILE_FORMAT_VERSION,
  TagFileVersion,
  type TagFileVersionId,
  isAlgorithmId,
  type AlgorithmId,
  type FileKindId,
  FileKind,
} from './constants.js';

export const TAG_HEADER_BYTES = 128;
export const TAG_FOOTER_BYTES = 80;
const HEADER_BODY_BYTES = TAG_HEADER_BYTES - MAC_BYTES;
/** Bytes of the identity fields at the start of a header body; the rest of the body is reserved (§5.2). */
const IDENTITY_BYTES = 80;
const FOOTER_BODY_BYTES = TAG_FOOTER_BYTES - MAC_BYTES;

/** Computes a MAC over bytes. */
export type MacFunction = (bytes: Uint8Array) => Uint8Array;

/** Identity of one file instance: everything its keys, nonces and AAD are bound to. */
export interface FileIdentity {
  readonly algorithm: AlgorithmId;
  readonly kind: FileKindId;
  readonly databaseId: Uint8Array;
  readonly shard: number;
  readonly fileId: number;
  readonly keyId: number;
  readonly salt: Uint8Array;
}

export interface TagFileHeader extends FileIdentity {
  /** MAC over the header's first 96 bytes; the manifest records it to pin this file instance. */
  readonly mac: Uint8Array;
}

/** A decoded tag-file header: its version is the record version of its data file (§4.6, §5.2). */
export interface VersionedTagFileHeader extends TagFileHeader {
  readonly version: TagFileVersionId;
}

/** The tag-file versions this code reads. */
const TAG_FILE_VERSIONS: readonly number[] = [TagFileVersion.aligned8, TagFileVersion.aligned4];
/** Byte offset of the u16 version in the header (§5.2). */
const VERSION_OFFSET = 8;

/** Byte position of the tag of `pageIndex` in a tag file. */
export function tagOffset(pageIndex: number): number {
  return TAG_HEADER_BYTES + pageIndex * TAG_BYTES;
}

/**
 * Encodes the header body (without MAC); shared by tag and hint files, which differ in magic. Hint
 * files have their own version (§6.2): `version` is the hint's, the tag file's by default.
 */
export function encodeIdentity(writer: ByteWriter, magic: Uint8Array, identity: FileIdentity, version: number = FORMAT_VERSION): void {
  writer
    .raw(magic, 8)
    .u16(version)
    .u8(identity.algorithm)
    .u8(identity.kind)
    .u32(PAGE_BYTES)
    .raw(identity.databaseId, DATABASE_ID_BYTES)
    .u16(identity.shard)
    .zeros(2)
    .u32(identity.fileId)
    .u32(identity.keyId)
    .zeros(4)
    .raw(identity.salt, SALT_BYTES)
    .zeros(HEADER_BODY_BYTES - IDENTITY_BYTES);
}

/** Decodes a header body; `versions` are the format versions the caller reads (the tag file's by default). */
export function decodeIdentity(
  reader: ByteReader,
  magic: Uint8Array,
  what: string,
  expectedKind: FileKindId,
  versions: readonly number[] = [FORMAT_VERSION],
): FileIdentity {
  if (!equalBytes(reader.bytesView(8), magic)) throw integrityError(`${what} has a wrong magic number`);
  const version = reader.u16();
  if (!versions.includes(version)) throw integrityError(`${what} has format version ${version}, expected ${versions.join(' or ')}`);
  const algorithm = reader.u8();
  if (!isAlgorithmId(algorithm)) throw integrityError(`${what} names unknown algorithm ${algorithm}`);
  const kind = reader.u8();
  if (kind !== expectedKind) throw integrityError(`${what} names file kind ${kind}, expected ${expectedKind}`);
  const pageBytes = reader.u32();
  if (pageBytes !== PAGE_BYTES) throw integrityError(`${what} has page size ${pageBytes}, expected ${PAGE_BYTES}`);
  const databaseId = reader.copy(DATABASE_ID_BYTES);
  const shard = reader.u16();
  reader.zeros(2);
  const fileId = reader.u32();
  const keyId = reader.u32();
  reader.zeros(4);
  const salt = reader.copy(SALT_BYTES);
  reader.zeros(HEADER_BODY_BYTES - IDENTITY_BYTES);
  return { algorithm, kind, databaseId, shard, fileId, keyId, salt };
}

/** A tag-file header of `version` (the record version of its data file; new files take the latest). */
export function encodeTagFileHeader(
  identity: FileIdentity,
  mac: MacFunction,
  version: TagFileVersionId = TAG_FILE_FORMAT_VERSION,
): Uint8Array {
  const writer = new ByteWriter(TAG_HEADER_BYTES);
  encodeIdentity(writer, Magic.tagHeader, identity, version);
  const body = writer.bytes.subarray(0, HEADER_BODY_BYTES);
  writer.raw(mac(body), MAC_BYTES);
  return writer.finish();
}

/**
 * Parses a tag-file header without checking its MAC: the MAC key is derived from fields inside it
 * (salt, ids), so the caller derives the key and then calls {@link verifyTagFileHeader}.
 */
export function decodeTagFileHeader(bytes: Uint8Array): VersionedTagFileHeader {
  if (bytes.length < TAG_HEADER_BYTES) throw integrityError(`tag file header is truncated: ${bytes.length} of ${TAG_HEADER_BYTES} bytes`);
  const reader = new ByteReader(bytes.subarray(0, TAG_HEADER_BYTES), 'tag file header');
  const identity = decodeIdentity(reader, Magic.tagHeader, 'tag file header', FileKind.data, TAG_FILE_VERSIONS);
  const version = (bytes[VERSION_OFFSET]! | (bytes[VERSION_OFFSET + 1]! << 8)) as TagFileVersionId;
  return { ...identity, mac: reader.copy(MAC_BYTES), version };
}

export function verifyTagFileHeader(bytes: Uint8Array, header: TagFileHeader, mac: MacFunction): void {
  if (!equalBytes(mac(bytes.subarray(0, HEADER_BODY_BYTES)), header.mac)) throw integrityError('tag file header fails its MAC');
}

export interface TagFileFooter {
  /** Number of sealed data pages (and tags). */
  readonly pageCount: number;
  /** SHA-256 over all tags in page order. */
  readonly tagDigest: Uint8Array;
}

export function encodeTagFileFooter(footer: TagFileFooter, mac: MacFunction): Uint8Array {
  const writer = new ByteWriter(TAG_FOOTER_BYTES);
  writer.raw(Magic.tagFooter, 8).u64(footer.pageCount).raw(footer.tagDigest, MAC_BYTES);
  writer.raw(mac(writer.bytes.subarray(0, FOOTER_BODY_BYTES)), MAC_BYTES);
  return writer.finish();
}

/** Parses and authenticates a footer. */
export function decodeTagFileFooter(bytes: Uint8Array, mac: MacFunction): TagFileFooter {
  if (bytes.length !== TAG_FOOTER_BYTES) throw integrityError(`tag file footer has ${bytes.length} bytes, expected ${TAG_FOOTER_BYTES}`);
  const reader = new ByteReader(bytes, 'tag file footer');
  if (!equalBytes(reader.bytesView(8), Magic.tagFooter)) throw integrityError('tag file footer has a wrong magic number');
  const pageCount = reader.u64();
  const tagDigest = reader.copy(MAC_BYTES);
  const storedMac = reader.bytesView(MAC_BYTES);
  reader.end();
  if (!equalBytes(mac(bytes.subarray(0, FOOTER_BODY_BYTES)), storedMac)) throw integrityError('tag file footer fails its MAC');
  return { pageCount, tagDigest };
}
