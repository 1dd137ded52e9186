/**
 * The replication message (docs/replication.md §Message format): a batch of file operations, split into
 * parts that each fit the server's max payload, each part authenticated with HMAC-SHA256 under a key
 * derived from the store's KEYRING. Pure bytes, no I/O.
 *
 * ```
 * offset size  field
 * 0      4     magic "ARMR"
 * 4      1     version (1)
 * 5      1     flags (0)
 * 6      16    database id
 * 22     8     lease epoch (u64 BE)
 * 30     8     batch number within the epoch, from 1 (u64 BE)
 * 38     4     part index, from 0 (u32 BE)
 * 42     4     part count (u32 BE)
 * 46     8     leader's clock when the batch was cut, ms since 1970 (f64 BE; for lag only)
 * 54     4     operation count (u32 BE)
 * 58     …     operations: kind u8, path length u16, path (UTF-8), then by kind:
 *                write: position u64, length u32, bytes · truncate: length u64 · rename: to length u16, to
 * end-32 32    HMAC-SHA256 of every byte before it
 * ```
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { assert } from '../assert.js';
import { integrityError } from '../errors.js';
import { type FileOperation, isPlaintextName } from '../io/recording-file-system.js';

const MAGIC = [0x41, 0x52, 0x4d, 0x52];
const VERSION = 1;
export const DATABASE_ID_BYTES = 16;
const HEADER_BYTES = 58;
const MAC_BYTES = 32;
/** Bytes of an operation besides its path and data: kind, path length, the widest fields (write). */
const OPERATION_OVERHEAD_BYTES = 1 + 2 + 8 + 4;
const MAX_PATH_BYTES = 255;
/** What a part carries besides operations. */
export const PART_OVERHEAD_BYTES = HEADER_BYTES + MAC_BYTES;

const OperationKind = { reset: 0, makeDirectory: 1, create: 2, write: 3, truncate: 4, rename: 5, remove: 6 } as const;
const KIND_NAMES = Object.keys(OperationKind) as FileOperation['kind'][];

/** Paths a replica writes: up to four segments of `[A-Za-z0-9][A-Za-z0-9._-]*`, never `..`, never the lock. */
const PORTABLE_PATH = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*){0,3}$/;

export function checkPortablePath(relative: string): boolean {
  return relative.length <= MAX_PATH_BYTES && PORTABLE_PATH.test(relative) && !isPlaintextName(relative);
}

/** Where a part sits in the stream of one leader. */
export interface PartHeader {
  readonly databaseId: Uint8Array;
  readonly epoch: number;
  readonly batch: number;
  readonly part: number;
  readonly partCount: number;
  readonly leaderTimeMs: number;
}

export interface DecodedPart extends PartHeader {
  readonly operations: readonly FileOperation[];
  /** The part without its MAC, and the MAC, for {@link verifyPart}. */
  readonly body: Uint8Array;
  readonly mac: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function pathBytes(relative: string): Uint8Array {
  assert(checkPortablePath(relative), 'a shipped path is portable and never the lock');
  return encoder.encode(relative);
}

function encodedBytes(operation: FileOperation): number {
  if (operation.kind === 'reset') return 1 + 2;
  const base = OPERATION_OVERHEAD_BYTES + encoder.encode(operation.path).length;
  if (operation.kind === 'write') return base + operation.bytes.length;
  if (operation.kind === 'rename') return base + encoder.encode(operation.to).length;
  return base;
}

/**
 * Splits `operations` into parts of at most `maxPayloadBytes` each (a write too large for the room
 * left is cut by position). Every part holds at least one operation.
 */
export function splitIntoParts(operations: readonly FileOperation[], maxPayloadBytes: number): FileOperation[][] {
  const room = maxPayloadBytes - PART_OVERHEAD_BYTES;
  assert(room > OPERATION_OVERHEAD_BYTES + 2 * MAX_PATH_BYTES + 1, 'the max payload leaves room for an operation');
  const parts: FileOperation[][] = [];
  let current: FileOperation[] = [];
  let used = 0;
  const close = (): void => {
    if (current.length > 0) parts.push(current);
    current = [];
    used = 0;
  };
  for (const operation of operations) {
    let pending: FileOperation | undefined = operation;
    while (pending !== undefined) {
      const size = encodedBytes(pending);
      if (used + size <= room) {
        current.push(pending);
        used += size;
        pending = undefined;
      } else if (pending.kind === 'write' && room - used > encodedBytes({ ...pending, bytes: new Uint8Array(0) }) + 512) {
        const fits: number = room - used - encodedBytes({ ...pending, bytes: new Uint8Array(0) });
        current.push({ ...pending, bytes: pending.bytes.subarray(0, fits) });
        pending = { ...pending, position: pending.position + fits, bytes: pending.bytes.subarray(fits) };
        close();
      } else {
        assert(current.length > 0, 'an operation fits an empty part');
        close();
      }
    }
  }
  close();
  return parts;
}

/** One part, MAC'd under `macKey`. */
export function encodePart(header: PartHeader, operations: readonly FileOperation[], macKey: Uint8Array): Uint8Array {
  assert(header.databaseId.length === DATABASE_ID_BYTES, 'a database id has 16 bytes');
  let size = HEADER_BYTES + MAC_BYTES;
  for (const operation of operations) size += encodedBytes(operation);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = VERSION;
  bytes.set(header.databaseId, 6);
  view.setBigUint64(22, BigInt(header.epoch));
  view.setBigUint64(30, BigInt(header.batch));
  view.setUint32(38, header.part);
  view.setUint32(42, header.partCount);
  view.setFloat64(46, header.leaderTimeMs);
  view.setUint32(54, operations.length);
  let offset = HEADER_BYTES;
  for (const operation of operations) {
    bytes[offset] = OperationKind[operation.kind];
    if (operation.kind === 'reset') {
      view.setUint16(offset + 1, 0);
      offset += 3;
      continue;
    }
    const name = pathBytes(operation.path);
    view.setUint16(offset + 1, name.length);
    bytes.set(name, offset + 3);
    offset += 3 + name.length;
    if (operation.kind === 'write') {
      view.setBigUint64(offset, BigInt(operation.position));
      view.setUint32(offset + 8, operation.bytes.length);
      bytes.set(operation.bytes, offset + 12);
      offset += 12 + operation.bytes.length;
    } else if (operation.kind === 'truncate') {
      view.setBigUint64(offset, BigInt(operation.length));
      offset += 8;
    } else if (operation.kind === 'rename') {
      const to = pathBytes(operation.to);
      view.setUint16(offset, to.length);
      bytes.set(to, offset + 2);
      offset += 2 + to.length;
    }
  }
  bytes.set(mac(macKey, bytes.subarray(0, offset)), offset);
  return bytes.subarray(0, offset + MAC_BYTES);
}

/** HMAC-SHA256 of `body` under `key`: the MAC of message parts and of snapshot manifests. */
export function mac(key: Uint8Array, body: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(body).digest());
}

/** What a frame's first checks leave a parser: its view, where its MAC starts, and a u64 reader. */
export interface FrameReader {
  readonly view: DataView;
  /** Where the MAC starts: nothing of the body may run past it. */
  readonly end: number;
  /** A u64 as a number; `bad` when above 2^53 − 1. */
  safe(value: bigint, what: string): number;
}

/**
 * The checks every MAC'd replication frame (message part, snapshot manifest) starts with: room for
 * its header and MAC, its magic and version; anything else is `bad(…)` (ARMDB_INTEGRITY).
 */
export function openFrame(
  bytes: Uint8Array,
  layout: { readonly magic: readonly number[]; readonly version: number; readonly headerBytes: number },
  bad: (message: string) => Error,
): FrameReader {
  if (bytes.length < layout.headerBytes + MAC_BYTES) throw bad('shorter than a header');
  if (layout.magic.some((byte, index) => bytes[index] !== byte)) throw bad('bad magic');
  if (bytes[4] !== layout.version) throw bad(`unknown version ${bytes[4]}`);
  return {
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    end: bytes.length - MAC_BYTES,
    safe(value, what) {
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} out of range`);
      return Number(value);
    },
  };
}

/** Whether the part's MAC verifies under `macKey` (constant time). */
export function verifyPart(part: DecodedPart, macKey: Uint8Array): boolean {
  return timingSafeEqual(mac(macKey, part.body), part.mac);
}

function bad(message: string): Error {
  return integrityError(`replication message: ${message}`);
}

/** Parses a part, checking every length against the bytes there are; ARMDB_INTEGRITY on anything malformed. The MAC is not checked here. */
export function decodePart(bytes: Uint8Array): DecodedPart {
  const { view, end, safe } = openFrame(bytes, { magic: MAGIC, version: VERSION, headerBytes: HEADER_BYTES }, bad);
  const header = {
    databaseId: bytes.slice(6, 22),
    epoch: safe(view.getBigUint64(22), 'epoch'),
    batch: safe(view.getBigUint64(30), 'batch'),
    part: view.getUint32(38),
    partCount: view.getUint32(42),
    leaderTimeMs: view.getFloat64(46),
  };
  if (header.partCount === 0 || header.part >= header.partCount) throw bad('part index outside its count');
  const count = view.getUint32(54);
  const operations: FileOperation[] = [];
  let offset = HEADER_BYTES;
  const need = (length: number): void => {
    if (offset + length > end) throw bad('an operation runs past the end');
  };
  const readPath = (length: number): string => {
    need(length);
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(offset, offset + length));
    } catch (error) {
      throw integrityError('replication message: a path is not UTF-8', error);
    }
    offset += length;
    if (!checkPortablePath(text)) throw bad('a path outside the store or naming the lock');
    return text;
  };
  for (let index = 0; index < count; index++) {
    need(3);
    const kind = KIND_NAMES[bytes[offset]!];
    if (kind === undefined) throw bad(`unknown operation ${bytes[offset]}`);
    const pathLength = view.getUint16(offset + 1);
    offset += 3;
    if (kind === 'reset') {
      if (pathLength !== 0) throw bad('a reset names a path');
      operations.push({ kind });
      continue;
    }
    const relative = readPath(pathLength);
    if (kind === 'write') {
      need(12);
      const position = safe(view.getBigUint64(offset), 'position');
      const length = view.getUint32(offset + 8);
      offset += 12;
      need(length);
      operations.push({ kind, path: relative, position, bytes: bytes.slice(offset, offset + length) });
      offset += length;
    } else if (kind === 'truncate') {
      need(8);
      operations.push({ kind, path: relative, length: safe(view.getBigUint64(offset), 'length') });
      offset += 8;
    } else if (kind === 'rename') {
      need(2);
      const toLength = view.getUint16(offset);
      offset += 2;
      operations.push({ kind, path: relative, to: readPath(toLength) });
    } else operations.push({ kind, path: relative });
  }
  if (offset !== end) throw bad('bytes after the last operation');
  return { ...header, operations, body: bytes.subarray(0, end), mac: bytes.slice(end) };
}
