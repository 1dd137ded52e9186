/** File and directory names (docs/format.md §1). */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Limits, MAC_BYTES } from '../format/constants.js';
import { KEYRING_ENTRY_BYTES, KEYRING_HEADER_BYTES, MAX_KEYRING_V2_BYTES } from '../format/keyring.js';
import { MANIFEST_FILE_ENTRY_BYTES, MANIFEST_HEADER_BYTES, MAX_MANIFEST_LOG_BYTES, MAX_MANIFEST_MACS } from '../format/manifest.js';

export const MANIFEST_NAME = 'MANIFEST';
export const KEYRING_NAME = 'KEYRING';
export const TEMPORARY_SUFFIX = '.tmp';
/** Random bytes in a temporary name: a name nobody can plant a link or file under in advance. */
const TEMPORARY_RANDOM_BYTES = 8;

/** Bounds checked before reading the root files (docs/format.md §9): a larger file is refused unread. */
export const MAX_MANIFEST_BYTES =
  MANIFEST_HEADER_BYTES + Limits.maxManifestFiles * MANIFEST_FILE_ENTRY_BYTES + MAX_MANIFEST_MACS * MAC_BYTES + MAX_MANIFEST_LOG_BYTES;
export const MAX_KEYRING_BYTES = Math.max(
  MAX_KEYRING_V2_BYTES,
  KEYRING_HEADER_BYTES + (Limits.maxKeyringKeys + 1) * KEYRING_ENTRY_BYTES + MAC_BYTES + 4,
);

export type FileExtension = 'data' | 'tags' | 'hint' | 'journal' | 'journal2';

const FILE_NAME = /^(\d{6,10})\.(data|tags|hint|journal|journal2)$/;

export function shardDirectory(directory: string, shard: number): string {
  return path.join(directory, `shard-${String(shard).padStart(3, '0')}`);
}

export function fileName(fileId: number, extension: FileExtension): string {
  return `${String(fileId).padStart(6, '0')}.${extension}`;
}

export function filePath(directory: string, shard: number, fileId: number, extension: FileExtension): string {
  return path.join(shardDirectory(directory, shard), fileName(fileId, extension));
}

/**
 * Parses `NNNNNN.ext`; undefined for any other name. Only the canonical name of an id is accepted
 * (`fileName` of what is parsed gives `name` back): `0000001.data` is no alias of `000001.data`
 * (docs/format.md §1.1).
 */
export function parseFileName(name: string): { fileId: number; extension: FileExtension } | undefined {
  const match = FILE_NAME.exec(name);
  if (match === null) return undefined;
  const fileId = Number(match[1]);
  if (fileId > 0xffffffff) return undefined;
  const extension = match[2] as FileExtension;
  if (fileName(fileId, extension) !== name) return undefined;
  return { fileId, extension };
}

/**
 * A fresh temporary name beside `target`: `target.<16 hex digits>.tmp` (docs/format.md §1.1). It is
 * created with O_EXCL, so a file or link planted under a name guessed in advance is never written
 * through; the `.tmp` ending lets `open` sweep what a crash left.
 */
export function temporaryPath(target: string): string {
  return `${target}.${randomBytes(TEMPORARY_RANDOM_BYTES).toString('hex')}${TEMPORARY_SUFFIX}`;
}
