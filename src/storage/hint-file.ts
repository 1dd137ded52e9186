/**
 * Hint files (docs/format.md §6): for each record of a sealed data file its key, sequence number,
 * position and value length, so that open can rebuild the index without decrypting the data file.
 * Hints hold record keys, so they are sealed like pages: their own file key (kind = hint), bound to the
 * data file's id, shard, database and key id.
 *
 * A hint is trusted only if the manifest records the MAC of its header; a missing, stale or damaged
 * hint makes recovery scan that one data file instead.
 */
import { randomBytes } from 'node:crypto';
import { FileCipher } from '../crypto/file-cipher.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ArmdbError, integrityError } from '../errors.js';
import { equalBytes } from '../format/bytes.js';
import { FileKind, Limits, MAC_BYTES, SALT_BYTES, TAG_BYTES } from '../format/constants.js';
import {
  compactHintEntryMaxBytes,
  decodeHintChunkFrame,
  decodeHintHeader,
  encodeCompactHintChunk,
  encodeHintChunkFrame,
  encodeHintHeader,
  HINT_CHUNK_FRAME_BYTES,
  HINT_HEADER_BYTES,
  HintChunkFlag,
  hintVersionFor,
  verifyHintHeader,
  type HintEntry,
  type HintVersionId,
} from '../format/hint.js';
import type { FileIdentity } from '../format/tag-file.js';
import type { DataFile } from './data-file.js';
import { RecordStream } from './record-stream.js';

/** Plaintext bytes a written hint chunk aims at, well below the format's chunk limit. */
const HINT_CHUNK_TARGET_BYTES = 256 * 2 ** 10;

/** Entries per chunk: bounded so a chunk stays below the format's chunk limit even if no entry compresses. */
function entriesPerChunk(keySize: number): number {
  return Math.max(1, Math.floor(Math.min(Limits.maxHintChunkBytes, HINT_CHUNK_TARGET_BYTES) / compactHintEntryMaxBytes(keySize)));
}

/**
 * Builds the sealed bytes of a data file's hint, reading the file through a {@link RecordStream}.
 * `pause` runs between chunks of pages: it gives the event loop a turn and says whether to go on.
 * Returns undefined if it said no (compaction retired the file meanwhile and closed its handle).
 */
export async function buildHint(
  file: DataFile,
  keySize: number,
  provider: CryptoProvider,
  dataKey: Uint8Array | undefined,
  pause: () => Promise<boolean>,
): Promise<{ bytes: Uint8Array; headerMac: Uint8Array } | undefined> {
  const identity: FileIdentity = { ...file.cipher.identity, kind: FileKind.hint, salt: new Uint8Array(randomBytes(SALT_BYTES)) };
  const cipher = new FileCipher(provider, identity, dataKey, 'write');
  try {
    // The compact version of the file's record version: positions in units of its alignment (§6.5).
    const header = encodeHintHeader(identity, cipher.mac, hintVersionFor(file.recordVersion));
    const parts: Uint8Array[] = [header];
    const perChunk = entriesPerChunk(keySize);
    let entries: HintEntry[] = [];
    let chunkIndex = 0;
    const sealChunk = (last: boolean): void => {
      const plaintext = encodeCompactHintChunk(entries, keySize, file.recordAlignment);
      const sealed = cipher.seal(chunkIndex++, plaintext, last ? HintChunkFlag.last : 0);
      parts.push(encodeHintChunkFrame({ plaintextBytes: plaintext.length, last }), sealed.ciphertext, sealed.tag);
      entries = [];
    };
    const stream = new RecordStream(file, file.pageCount, file.pageCount, keySize, (record) => {
      entries.push({
        key: record.key.slice(),
        sequence: record.sequence,
        tombstone: record.tombstone,
        position: record.position,
        valueLength: record.valueLength,
      });
      if (entries.length === perChunk) sealChunk(false);
    });
    while (stream.step()) if (!(await pause())) return undefined;
    sealChunk(true);
    const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return { bytes, headerMac: header.slice(HINT_HEADER_BYTES - MAC_BYTES) };
  } finally {
    cipher.destroy();
  }
}

/** A hint's format version and its chunks' plaintexts, authenticated. */
export interface OpenedHint {
  readonly version: HintVersionId;
  readonly chunks: Uint8Array[];
}

/**
 * Authenticates a whole hint and returns its chunks' plaintexts (entries are decoded from them with
 * `decodeHintChunk` and the hint's version). Throws ARMDB_INTEGRITY for anything wrong — another instance than the manifest
 * records, another file, a damaged or truncated chunk — before the caller has applied any entry.
 */
export function readHint(
  bytes: Uint8Array,
  expected: { readonly dataFile: FileIdentity; readonly headerMac: Uint8Array },
  provider: CryptoProvider,
  dataKey: Uint8Array | undefined,
): OpenedHint {
  const dataFile = expected.dataFile;
  const location = { shard: dataFile.shard, fileId: dataFile.fileId };
  const header = decodeHintHeader(bytes);
  if (
    header.algorithm !== dataFile.algorithm ||
    header.shard !== dataFile.shard ||
    header.fileId !== dataFile.fileId ||
    header.keyId !== dataFile.keyId ||
    !equalBytes(header.databaseId, dataFile.databaseId)
  ) {
    throw integrityError(`hint of file ${dataFile.fileId} describes another file`, undefined, location);
  }
  if (!equalBytes(header.mac, expected.headerMac))
    throw integrityError(`hint of file ${dataFile.fileId} is not the one the manifest records (stale)`, undefined, location);
  const cipher = new FileCipher(provider, header, dataKey, 'read');
  const chunks: Uint8Array[] = [];
  try {
    verifyHintHeader(bytes, header, cipher.mac);
    let offset = HINT_HEADER_BYTES;
    for (let chunkIndex = 0; ; chunkIndex++) {
      if (bytes.length - offset < HINT_CHUNK_FRAME_BYTES)
        throw integrityError(`hint of file ${dataFile.fileId} is truncated`, undefined, location);
      const frame = decodeHintChunkFrame(
        bytes.subarray(offset, offset + HINT_CHUNK_FRAME_BYTES),
        bytes.length - offset - HINT_CHUNK_FRAME_BYTES,
      );
      offset += HINT_CHUNK_FRAME_BYTES;
      const ciphertext = bytes.subarray(offset, offset + frame.plaintextBytes);
      const tag = bytes.subarray(offset + frame.plaintextBytes, offset + frame.plaintextBytes + TAG_BYTES);
      offset += frame.plaintextBytes + TAG_BYTES;
      chunks.push(cipher.open(chunkIndex, ciphertext, tag, frame.last ? HintChunkFlag.last : 0));
      if (frame.last) break;
    }
    if (offset !== bytes.length)
      throw integrityError(`hint of file ${dataFile.fileId} has bytes after its last chunk`, undefined, location);
    return { version: header.version, chunks };
  } catch (error) {
    if (error instanceof ArmdbError) throw error;
    throw integrityError(`hint of file ${dataFile.fileId} could not be read`, error, location);
  } finally {
    cipher.destroy();
  }
}
