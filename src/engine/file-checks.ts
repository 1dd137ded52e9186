/**
 * Checks of one file that recovery finds on disk (docs/durability.md §Recovery): its tag-file header
 * authenticated as this store's, its footer, and the bounds that keep an allocation from being sized by
 * what a file claims (docs/format.md §9).
 */
import { equalBytes } from '../format/bytes.js';
import { Algorithm, FileKind, Limits, Magic, PAGE_BYTES, TAG_BYTES } from '../format/constants.js';
import { recordBytes } from '../format/record.js';
import {
  decodeTagFileFooter,
  decodeTagFileHeader,
  TAG_FOOTER_BYTES,
  TAG_HEADER_BYTES,
  verifyTagFileHeader,
  type TagFileHeader,
  type VersionedTagFileHeader,
} from '../format/tag-file.js';
import { FileCipher } from '../crypto/file-cipher.js';
import { ArmdbError, integrityError } from '../errors.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { digestOfTags } from '../storage/durable-state.js';
import type { RecoveryContext } from './recovery.js';

function sameIdentity(header: TagFileHeader, context: RecoveryContext, shard: number, fileId: number): boolean {
  return (
    header.kind === FileKind.data &&
    header.algorithm === context.manifest.algorithm &&
    header.shard === shard &&
    header.fileId === fileId &&
    equalBytes(header.databaseId, context.manifest.databaseId)
  );
}

export function dataKeyFor(context: RecoveryContext, keyId: number): Uint8Array | undefined {
  if (context.manifest.algorithm === Algorithm.none) return undefined;
  if (context.keys === undefined) throw integrityError('an encrypted file in a store opened without a key');
  return context.keys.dataKey(keyId);
}

/** Reads and authenticates a tag-file header; returns undefined if it does not authenticate. */
export function authenticHeader(
  context: RecoveryContext,
  tagBytes: Uint8Array,
  shard: number,
  fileId: number,
): { header: VersionedTagFileHeader; cipher: FileCipher } | undefined {
  let header: VersionedTagFileHeader;
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
export const MAX_DATA_FILE_PAGES =
  Math.ceil((Limits.maxFileBytes + recordBytes(Limits.maxKeyBytes, Limits.maxValueBytes, 8)) / PAGE_BYTES) + 1;

export function readWhole(handle: FileHandle, bytes: number): Uint8Array {
  const buffer = new Uint8Array(bytes);
  const read = handle.read(buffer, 0);
  return buffer.subarray(0, read);
}

/** The file id a temporary name starts with (`000007.data.tmp`, or any suffix after the extension), if any. */
export function temporaryFileId(name: string): number | undefined {
  const match = /^(\d{6,10})\.(?:data|tags|hint)\./.exec(name);
  if (match === null) return undefined;
  const fileId = Number(match[1]);
  return fileId <= 0xffffffff ? fileId : undefined;
}

export function fileBytes(fileSystem: FileSystem, target: string): number {
  if (!fileSystem.exists(target)) return 0;
  const handle = fileSystem.open(target, 'read');
  try {
    return handle.size();
  } finally {
    handle.close();
  }
}

export type FooterState =
  | { readonly kind: 'valid'; readonly pageCount: number; readonly tagDigest: Uint8Array }
  /** No footer: the tag file is a header and whole tags (an active file, or an older generation of a sealed one). */
  | { readonly kind: 'absent' }
  /** Something footer-shaped that does not authenticate or does not match the tags: altered. */
  | { readonly kind: 'altered' };

export function readFooter(tagBytes: Uint8Array, cipher: FileCipher): FooterState {
  const body = tagBytes.length - TAG_HEADER_BYTES - TAG_FOOTER_BYTES;
  if (body < 0 || body % TAG_BYTES !== 0) return { kind: 'absent' };
  let footer: { pageCount: number; tagDigest: Uint8Array };
  try {
    footer = decodeTagFileFooter(tagBytes.subarray(tagBytes.length - TAG_FOOTER_BYTES), cipher.mac);
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    // 80 bytes are 5 whole tags too: without the footer magic this is an unsealed file.
    const magic = tagBytes.subarray(tagBytes.length - TAG_FOOTER_BYTES, tagBytes.length - TAG_FOOTER_BYTES + 8);
    return equalBytes(magic, Magic.tagFooter) ? { kind: 'altered' } : { kind: 'absent' };
  }
  if (footer.pageCount * TAG_BYTES !== body) return { kind: 'altered' };
  if (!equalBytes(footer.tagDigest, digestOfTags(tagBytes.subarray(TAG_HEADER_BYTES), footer.pageCount))) return { kind: 'altered' };
  return { kind: 'valid', ...footer };
}
