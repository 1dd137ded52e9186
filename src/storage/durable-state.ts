/**
 * What the MANIFEST records of a data file (docs/format.md §7.3): its durable page count and the
 * digest of those pages' tags, and for an active file how far its commit journal is durable (§6A),
 * as of the last barrier that covered it.
 */
import { createHash } from 'node:crypto';
import { TAG_BYTES } from '../format/constants.js';

/** What the manifest records of a file, as of the last barrier that covered it. */
export interface DurableState {
  readonly pageCount: number;
  readonly tagDigest: Uint8Array;
  readonly sealed: boolean;
  /** Journal chunks durable, counted from the file's first (0: none; always 0 once sealed). */
  readonly journalChunks: number;
  /** The page of the last durable journal chunk (0 without one). */
  readonly journalPage: number;
}

/** SHA-256 of nothing: the tag digest of a file with no durable page. */
export const EMPTY_DIGEST = createHash('sha256').digest();

/** SHA-256 over the first `pageCount` tags (docs/format.md §5.5). */
export function digestOfTags(tags: Uint8Array, pageCount: number): Uint8Array {
  return createHash('sha256')
    .update(tags.subarray(0, pageCount * TAG_BYTES))
    .digest();
}
