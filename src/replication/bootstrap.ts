/**
 * Snapshots of a replicated store in a JetStream object store (docs/replication.md §Object-store
 * snapshots): the sealed files as they were right after a batch of the stream, and an HMAC'd snapshot
 * manifest naming each file's SHA-256 and the stream sequence of that batch. A new replica (or a
 * restore) starts from one and reads the stream only from the sequence after it, so the stream can be
 * trimmed behind the oldest snapshot kept.
 *
 * Objects: `file.<sha256 hex>` holds a file's bytes (content addressed: a data file that did not change
 * between two snapshots is stored once), `snapshot.<sequence, 16 digits>` a snapshot manifest:
 *
 * ```
 * offset size  field
 * 0      4     magic "ARMS"
 * 4      1     version (1)
 * 5      1     flags (0)
 * 6      16    database id
 * 22     8     lease epoch of the batch (u64 BE)
 * 30     8     batch number within the epoch (u64 BE)
 * 38     8     stream sequence of the batch's last part (u64 BE)
 * 46     8     MANIFEST epoch of the leader's engine when the batch was cut (u64 BE)
 * 54     8     leader's clock when the batch was cut, ms since 1970 (f64 BE)
 * 62     4     entry count (u32 BE)
 * 66     …     entries: kind u8 (1 directory, 2 file), path length u16, path (UTF-8, relative,
 *              `/`-separated), then for a file: size u64, SHA-256 of its bytes (32)
 * end-32 32    HMAC-SHA256 over every byte before it, under the replication MAC key of the epoch
 * ```
 *
 * Only file bytes as stored (ciphertext) and this framing reach NATS; the lock is never captured.
 * Files are uploaded and downloaded a chunk at a time, never whole in memory, and a reader holds a
 * lease on the snapshot it reads (reader-lease.ts) so that the leader's trimming keeps it.
 */
import { createHash, type Hash, timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import { Objm, StorageType } from '@nats-io/obj';
import { assert } from '../assert.js';
import { type ArmdbError, armdbError, integrityError } from '../errors.js';
import type { FileSystem } from '../io/file-system.js';
import type { FileOperation } from '../io/recording-file-system.js';
import { applyOperations } from './apply.js';
import { FilePin, type PinnedFile, pinningFileSystem } from './capture.js';
import { leasedSequences, ReaderLease } from './reader-lease.js';
import { checkPortablePath, DATABASE_ID_BYTES, decodePart, mac, openFrame } from './message.js';

const MAGIC = [0x41, 0x52, 0x4d, 0x53];
const VERSION = 1;
const HEADER_BYTES = 66;
const MAC_BYTES = 32;
const DIGEST_BYTES = 32;
const ENTRY_DIRECTORY = 1;
const ENTRY_FILE = 2;
/** Bound on a snapshot manifest read back from NATS (a million files with long names). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
const SNAPSHOT_PREFIX = 'snapshot.';
const FILE_PREFIX = 'file.';
/** Room left in a chunk message for the object store's headers. */
const CHUNK_HEADROOM_BYTES = 4096;
/** Objects read at once by a bootstrap or a restore. */
const DOWNLOADS_IN_FLIGHT = 4;

/**
 * One directory or file of a snapshot: its path relative to the store's directory (`/`-separated)
 * and, for a file, its size and the SHA-256 of its bytes (the object `file.<digest hex>` holds them).
 */
export type SnapshotEntry =
  | {
      /** A directory. */
      readonly kind: 'directory';
      /** Relative to the store's directory, `/`-separated. */
      readonly path: string;
    }
  | {
      /** A file. */
      readonly kind: 'file';
      /** Relative to the store's directory, `/`-separated. */
      readonly path: string;
      /** Its length in bytes. */
      readonly size: number;
      /** SHA-256 of its bytes. */
      readonly digest: Uint8Array;
    };

/** Where a snapshot sits in the stream, and what it holds (docs/replication.md §Object-store snapshots). */
export interface SnapshotManifest {
  /** The store's database id (docs/format.md §2.4). */
  readonly databaseId: Uint8Array;
  /** The lease epoch of the batch the snapshot follows. */
  readonly epoch: number;
  /** That batch's number within its epoch. */
  readonly batch: number;
  /** The stream sequence of that batch's last part: a replica reads the stream from the one after. */
  readonly sequence: number;
  /** The leader engine's MANIFEST epoch when the batch was cut. */
  readonly manifestEpoch: number;
  /** The leader's clock when the batch was cut, ms since 1970. */
  readonly leaderTimeMs: number;
  /** Every directory and file of the store at that point (never the lock). */
  readonly entries: readonly SnapshotEntry[];
}

/** A snapshot manifest as read back, with the bytes its HMAC covers and the HMAC. */
export interface DecodedSnapshotManifest extends SnapshotManifest {
  /** Every byte before the HMAC. */
  readonly body: Uint8Array;
  /** HMAC-SHA256 of `body` under the replication MAC key of the epoch. */
  readonly mac: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function snapshotObjectName(sequence: number): string {
  return `${SNAPSHOT_PREFIX}${String(sequence).padStart(16, '0')}`;
}

export function fileObjectName(digest: Uint8Array): string {
  return `${FILE_PREFIX}${hex(digest)}`;
}

/** The manifest's bytes, MAC'd under `macKey`. */
export function encodeSnapshotManifest(manifest: SnapshotManifest, macKey: Uint8Array): Uint8Array {
  assert(manifest.databaseId.length === DATABASE_ID_BYTES, 'a database id has 16 bytes');
  const paths = manifest.entries.map((entry) => {
    assert(checkPortablePath(entry.path), 'a snapshot path is portable and never the lock');
    return encoder.encode(entry.path);
  });
  let size = HEADER_BYTES + MAC_BYTES;
  manifest.entries.forEach((entry, index) => {
    size += 3 + paths[index]!.length + (entry.kind === 'file' ? 8 + DIGEST_BYTES : 0);
  });
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = VERSION;
  bytes.set(manifest.databaseId, 6);
  view.setBigUint64(22, BigInt(manifest.epoch));
  view.setBigUint64(30, BigInt(manifest.batch));
  view.setBigUint64(38, BigInt(manifest.sequence));
  view.setBigUint64(46, BigInt(manifest.manifestEpoch));
  view.setFloat64(54, manifest.leaderTimeMs);
  view.setUint32(62, manifest.entries.length);
  let offset = HEADER_BYTES;
  manifest.entries.forEach((entry, index) => {
    const name = paths[index]!;
    bytes[offset] = entry.kind === 'file' ? ENTRY_FILE : ENTRY_DIRECTORY;
    view.setUint16(offset + 1, name.length);
    bytes.set(name, offset + 3);
    offset += 3 + name.length;
    if (entry.kind === 'file') {
      assert(entry.digest.length === DIGEST_BYTES, 'a SHA-256 has 32 bytes');
      view.setBigUint64(offset, BigInt(entry.size));
      bytes.set(entry.digest, offset + 8);
      offset += 8 + DIGEST_BYTES;
    }
  });
  bytes.set(mac(macKey, bytes.subarray(0, offset)), offset);
  return bytes;
}

function bad(message: string): ArmdbError {
  return integrityError(`snapshot manifest: ${message}`);
}

/** Parses a manifest, every length checked against the bytes there are; ARMDB_INTEGRITY if malformed. The MAC is not checked here. */
export function decodeSnapshotManifest(bytes: Uint8Array): DecodedSnapshotManifest {
  const { view, end, safe } = openFrame(bytes, { magic: MAGIC, version: VERSION, headerBytes: HEADER_BYTES }, bad);
  const count = view.getUint32(62);
  const entries: SnapshotEntry[] = [];
  let offset = HEADER_BYTES;
  const need = (length: number): void => {
    if (offset + length > end) throw bad('an entry runs past the end');
  };
  for (let index = 0; index < count; index++) {
    need(3);
    const kind = bytes[offset];
    const pathLength = view.getUint16(offset + 1);
    offset += 3;
    need(pathLength);
    let relative: string;
    try {
      relative = decoder.decode(bytes.subarray(offset, offset + pathLength));
    } catch (error) {
      throw integrityError('snapshot manifest: a path is not UTF-8', error);
    }
    if (!checkPortablePath(relative)) throw bad('a path outside the store or naming the lock');
    offset += pathLength;
    if (kind === ENTRY_DIRECTORY) entries.push({ kind: 'directory', path: relative });
    else if (kind === ENTRY_FILE) {
      need(8 + DIGEST_BYTES);
      const size = safe(view.getBigUint64(offset), 'size');
      entries.push({ kind: 'file', path: relative, size, digest: bytes.slice(offset + 8, offset + 8 + DIGEST_BYTES) });
      offset += 8 + DIGEST_BYTES;
    } else throw bad(`unknown entry kind ${kind}`);
  }
  if (offset !== end) throw bad('bytes after the last entry');
  return {
    databaseId: bytes.slice(6, 22),
    epoch: safe(view.getBigUint64(22), 'epoch'),
    batch: safe(view.getBigUint64(30), 'batch'),
    sequence: safe(view.getBigUint64(38), 'sequence'),
    manifestEpoch: safe(view.getBigUint64(46), 'manifest epoch'),
    leaderTimeMs: view.getFloat64(54),
    entries,
    body: bytes.subarray(0, end),
    mac: bytes.slice(end),
  };
}

/** Whether the manifest's MAC verifies under `macKey` (constant time). */
export function verifySnapshotManifest(manifest: DecodedSnapshotManifest, macKey: Uint8Array): boolean {
  return timingSafeEqual(mac(macKey, manifest.body), manifest.mac);
}

// ---- the object store --------------------------------------------------------------------------

/** The object store's bucket of a replicated store (stream `OBJ_ARMDB_<name>`). */
export function objectBucketOf(name: string): string {
  return `ARMDB_${name}`;
}

/** The store's object store, or undefined if none was ever created (nothing snapshotted). */
export async function openObjectStore(js: JetStreamClient, name: string): Promise<ObjectStore | undefined> {
  try {
    return await new Objm(js).open(objectBucketOf(name));
  } catch {
    return undefined;
  }
}

async function readObject(store: ObjectStore, objectName: string, maxBytes: number): Promise<Uint8Array> {
  const info = await store.info(objectName).catch((error: unknown) => {
    throw armdbError('ARMDB_REPLICATION', `could not read the object ${objectName}`, error);
  });
  if (info === null || info.deleted) throw integrityError(`snapshot: the object ${objectName} is missing`);
  if (info.size > maxBytes) throw integrityError(`snapshot: the object ${objectName} is larger than its manifest says`);
  let bytes: Uint8Array | null;
  try {
    bytes = await store.getBlob(objectName);
  } catch (error) {
    // The client checks the object store's own digest: a corrupt chunk. Anything else: the servers.
    if (error instanceof Error && /digest/i.test(error.message))
      throw integrityError(`snapshot: the object ${objectName} is corrupt`, error);
    throw armdbError('ARMDB_REPLICATION', `could not read the object ${objectName}`, error);
  }
  if (bytes === null) throw integrityError(`snapshot: the object ${objectName} is missing`);
  return bytes;
}

/** A snapshot manifest as listed: its object name's sequence and its decoded bytes. */
export interface StoredSnapshot {
  readonly manifest: DecodedSnapshotManifest;
}

/**
 * Every snapshot manifest in the store, oldest first. The sequence its object is named for must be
 * the one it holds, and sequences and lease epochs never go back from one to the next: an old
 * manifest put under a newer name is ARMDB_ROLLBACK.
 */
export async function listSnapshots(store: ObjectStore): Promise<StoredSnapshot[]> {
  let infos: Awaited<ReturnType<ObjectStore['list']>>;
  try {
    infos = await store.list();
  } catch (error) {
    throw armdbError('ARMDB_REPLICATION', 'could not list the object store', error);
  }
  const names = infos
    .filter((info) => !info.deleted && info.name.startsWith(SNAPSHOT_PREFIX))
    .map((info) => info.name)
    .sort();
  const snapshots: StoredSnapshot[] = [];
  for (const objectName of names) {
    const named = Number(objectName.slice(SNAPSHOT_PREFIX.length));
    const manifest = decodeSnapshotManifest(await readObject(store, objectName, MAX_MANIFEST_BYTES));
    if (manifest.sequence !== named) {
      throw armdbError(
        manifest.sequence < named ? 'ARMDB_ROLLBACK' : 'ARMDB_INTEGRITY',
        `snapshot: ${objectName} holds the snapshot of stream sequence ${manifest.sequence}`,
      );
    }
    const previous = snapshots.at(-1)?.manifest;
    if (previous !== undefined && manifest.epoch < previous.epoch) {
      throw armdbError(
        'ARMDB_ROLLBACK',
        `snapshot: lease epoch ${manifest.epoch} at sequence ${manifest.sequence} after ${previous.epoch}`,
      );
    }
    snapshots.push({ manifest });
  }
  return snapshots;
}

/**
 * Checks that the stream's message at the snapshot's sequence is the last part of the batch the
 * manifest names (same store, epoch and batch): a snapshot that does not belong to this stream, or
 * whose epoch is older than the stream's at that point, is refused.
 */
export async function checkAgainstStream(jsm: JetStreamManager, stream: string, manifest: SnapshotManifest): Promise<void> {
  const message = await jsm.streams.getMessage(stream, { seq: manifest.sequence }).catch((error: unknown) => {
    throw armdbError('ARMDB_REPLICATION', 'could not read the stream', error);
  });
  if (message === null) {
    throw integrityError(`snapshot: the stream no longer holds sequence ${manifest.sequence}, the batch the snapshot follows`);
  }
  const part = decodePart(message.data);
  if (part.epoch > manifest.epoch)
    throw armdbError('ARMDB_ROLLBACK', `snapshot: lease epoch ${manifest.epoch} behind the stream's ${part.epoch}`);
  if (
    hex(part.databaseId) !== hex(manifest.databaseId) ||
    part.epoch !== manifest.epoch ||
    part.batch !== manifest.batch ||
    part.part !== part.partCount - 1
  ) {
    throw integrityError(`snapshot: sequence ${manifest.sequence} of the stream is not the batch the snapshot names`);
  }
}

/** The suffix of a file being downloaded: renamed to its name only once all of it arrived and checked. */
export const DOWNLOAD_SUFFIX = '.download';

/**
 * Test hooks, not part of the API (the exports map does not reach this module): awaited before each
 * object a download reads and before each file object a leader stores, so a test can act in between.
 * @internal
 */
export const snapshotHooks: {
  beforeDownload?: ((objectName: string) => Promise<void>) | undefined;
  beforeUpload?: ((path: string) => Promise<void>) | undefined;
} = {};

/** A snapshot whose manifest was deleted from the object store while it was read: try the newest one. */
export class SnapshotVanishedError extends Error {
  constructor(readonly sequence: number) {
    super(`snapshot: the snapshot of sequence ${sequence} was deleted while it was read`);
  }
}

/**
 * Streams the object `objectName` into the new file `absolute` a chunk at a time, checking as it
 * goes that it holds no more than `size` bytes, and at the end that it holds `size` bytes with the
 * SHA-256 `digest` (ARMDB_INTEGRITY otherwise). The file is fsynced; it is never read here.
 */
async function downloadObject(
  store: ObjectStore,
  objectName: string,
  entry: { readonly path: string; readonly size: number; readonly digest: Uint8Array },
  fileSystem: FileSystem,
  absolute: string,
): Promise<void> {
  let result: Awaited<ReturnType<ObjectStore['get']>>;
  try {
    result = await store.get(objectName);
  } catch (error) {
    throw armdbError('ARMDB_REPLICATION', `could not read the object ${objectName}`, error);
  }
  if (result === null || result.info.deleted) throw integrityError(`snapshot: the object ${objectName} is missing`);
  const reader = result.data.getReader();
  if (result.info.size !== entry.size) {
    await reader.cancel().catch(() => undefined);
    throw integrityError(`snapshot: the object for ${entry.path} is not the file the snapshot names`);
  }
  const handle = fileSystem.open(absolute, 'create');
  try {
    const hash = createHash('sha256');
    let position = 0;
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        // The client checks the object store's own digest at the end: a corrupt chunk. Else the servers.
        if (error instanceof Error && /digest/i.test(error.message))
          throw integrityError(`snapshot: the object ${objectName} is corrupt`, error);
        throw armdbError('ARMDB_REPLICATION', `could not read the object ${objectName}`, error);
      }
      if (chunk.done) break;
      if (position + chunk.value.length > entry.size) {
        await reader.cancel().catch(() => undefined);
        throw integrityError(`snapshot: the object for ${entry.path} is not the file the snapshot names`);
      }
      handle.write(chunk.value, position);
      hash.update(chunk.value);
      position += chunk.value.length;
    }
    if (position !== entry.size || !timingSafeEqual(new Uint8Array(hash.digest()), entry.digest)) {
      throw integrityError(`snapshot: the object for ${entry.path} is not the file the snapshot names`);
    }
    await handle.sync();
  } finally {
    handle.close();
  }
}

/**
 * Writes the snapshot's files into `root` through `fileSystem` (every store file there goes first, the
 * lock stays). Each object is streamed a chunk at a time into `<name>.download`, checked against the
 * SHA-256 and size its manifest names (ARMDB_INTEGRITY) and fsynced; only once every file arrived are
 * they renamed to their names (the MANIFEST and KEYRING last) and the directories fsynced, so nothing
 * partially downloaded is ever opened. The manifest's own MAC is checked by the caller once the
 * engine opened on the result (its key comes from the KEYRING the snapshot carries). A snapshot
 * whose manifest is deleted meanwhile is {@link SnapshotVanishedError}.
 */
export async function downloadSnapshot(
  store: ObjectStore,
  manifest: SnapshotManifest,
  fileSystem: FileSystem,
  root: string,
): Promise<number> {
  applyOperations(fileSystem, root, [{ kind: 'reset' }]);
  const directories = [root];
  for (const entry of manifest.entries) {
    if (entry.kind !== 'directory') continue;
    applyOperations(fileSystem, root, [{ kind: 'makeDirectory', path: entry.path }]);
    directories.push(path.join(root, ...entry.path.split('/')));
  }
  const files = manifest.entries.filter((entry) => entry.kind === 'file');
  const absoluteOf = (relative: string): string => path.join(root, ...relative.split('/'));
  let bytesWritten = 0;
  let next = 0;
  const stillThere = async (): Promise<void> => {
    const info = await store.info(snapshotObjectName(manifest.sequence)).catch(() => undefined);
    if (info === null || info?.deleted === true) throw new SnapshotVanishedError(manifest.sequence);
  };
  // A few objects in flight at once: each read is a round trip and a consumer of its own.
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const entry = files[next++]!;
      const objectName = fileObjectName(entry.digest);
      await snapshotHooks.beforeDownload?.(objectName);
      try {
        await downloadObject(store, objectName, entry, fileSystem, absoluteOf(entry.path) + DOWNLOAD_SUFFIX);
      } catch (error) {
        // An object gone with its manifest: the leader deleted the snapshot. Gone alone: refused.
        if (error instanceof Error && 'code' in error && error.code === 'ARMDB_INTEGRITY') await stillThere();
        throw error;
      }
      bytesWritten += entry.size;
    }
  };
  const workers = Array.from({ length: Math.min(DOWNLOADS_IN_FLIGHT, files.length) }, worker);
  const results = await Promise.allSettled(workers);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    for (const entry of files) {
      const temporary = absoluteOf(entry.path) + DOWNLOAD_SUFFIX;
      if (fileSystem.exists(temporary)) fileSystem.unlink(temporary);
    }
    throw failed.reason;
  }
  // Root files (the MANIFEST, the KEYRING) last: a directory they are in names every file they do.
  const rootLast = [...files].sort((left, right) => Number(!left.path.includes('/')) - Number(!right.path.includes('/')));
  for (const entry of rootLast) fileSystem.rename(absoluteOf(entry.path) + DOWNLOAD_SUFFIX, absoluteOf(entry.path));
  for (const directory of directories.reverse()) await fileSystem.syncDirectory(directory);
  return bytesWritten;
}

/** Snapshots a reader tries before it gives up: the first, then the newest after each that vanished. */
const SNAPSHOT_ATTEMPTS = 4;

/** What a reader needs of the NATS session to lease a snapshot. */
export interface ReaderSession {
  readonly js: JetStreamClient;
  /** The replicated store's name. */
  readonly name: string;
  /** Replicas of the lease bucket if it has to be created. */
  readonly replicas: number;
}

/**
 * Downloads a snapshot under a reader lease (reader-lease.ts), so that the leader's trimming keeps it,
 * the objects it names and the stream after it. The lease is taken first, then the snapshot checked to
 * be still there (a trim that listed the leases just before); a snapshot deleted anyway (its lease
 * expired, or taken too late) is left for the newest one `newest` picks, up to {@link SNAPSHOT_ATTEMPTS}
 * snapshots in all. Returns the manifest whose files `root` now holds, and its lease, still held: the
 * caller releases it once it read the stream from the batch after it.
 */
export async function downloadLeased(
  session: ReaderSession,
  store: ObjectStore,
  first: DecodedSnapshotManifest,
  newest: () => Promise<DecodedSnapshotManifest | undefined>,
  fileSystem: FileSystem,
  root: string,
): Promise<{ manifest: DecodedSnapshotManifest; lease: ReaderLease }> {
  let manifest: DecodedSnapshotManifest | undefined = first;
  for (let attempt = 1; ; attempt++) {
    if (manifest === undefined) throw armdbError('ARMDB_REPLICATION', 'snapshot: no snapshot left in the object store to start from');
    let lease: ReaderLease;
    try {
      lease = await ReaderLease.take(session.js, session.name, manifest.sequence, session.replicas);
    } catch (error) {
      throw armdbError('ARMDB_REPLICATION', 'could not take a reader lease on the snapshot', error);
    }
    try {
      await throwIfVanished(store, manifest.sequence);
      await downloadSnapshot(store, manifest, fileSystem, root);
      await throwIfVanished(store, manifest.sequence);
      return { manifest, lease };
    } catch (error) {
      await lease.release();
      if (!(error instanceof SnapshotVanishedError)) throw error;
      if (attempt >= SNAPSHOT_ATTEMPTS) throw armdbError('ARMDB_REPLICATION', error.message, error);
    }
    manifest = await newest();
  }
}

async function throwIfVanished(store: ObjectStore, sequence: number): Promise<void> {
  const info = await store.info(snapshotObjectName(sequence)).catch((error: unknown) => {
    throw armdbError('ARMDB_REPLICATION', 'could not read the object store', error);
  });
  if (info === null || info.deleted) throw new SnapshotVanishedError(sequence);
}

/** SHA-256 of a pinned file's bytes, read `chunkBytes` at a time. */
function digestOfPinned(pin: FilePin, file: PinnedFile, chunkBytes: number): Uint8Array {
  const hash = createHash('sha256');
  const chunk = new Uint8Array(Math.min(chunkBytes, Math.max(1, file.size)));
  for (let position = 0; position < file.size; ) {
    const read = pin.read(file, chunk, position);
    if (read === 0) throw integrityError(`snapshot: ${file.path} ended before its pinned length`);
    hash.update(chunk.subarray(0, read));
    position += read;
  }
  return new Uint8Array(hash.digest());
}

/** A pinned file's bytes as a stream for the object store, a chunk per pull (fed to `hash` as well). */
function pinnedStream(pin: FilePin, file: PinnedFile, chunkBytes: number, hash: Hash): ReadableStream<Uint8Array> {
  let position = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (position >= file.size) {
        controller.close();
        return;
      }
      const chunk = new Uint8Array(Math.min(chunkBytes, file.size - position));
      const read = pin.read(file, chunk, position);
      if (read === 0) {
        controller.error(integrityError(`snapshot: ${file.path} ended before its pinned length`));
        return;
      }
      position += read;
      hash.update(chunk.subarray(0, read));
      controller.enqueue(chunk.subarray(0, read));
    },
  });
}

// ---- the leader: taking snapshots ----------------------------------------------------------------

/** When a leader takes snapshots and how many it keeps (docs/replication.md §Object-store snapshots). */
export interface SnapshotPolicy {
  /** A snapshot once this many bytes were written since the last one. */
  readonly everyBytes: number | undefined;
  /** A snapshot once this long passed since the last one (and something was written). */
  readonly everyMs: number | undefined;
  /** Snapshots kept; older ones and the objects only they name are deleted. */
  readonly retain: number;
  /** Whether the stream (and the manifest history) is trimmed up to the oldest snapshot kept. */
  readonly trimStream: boolean;
}

/** The files of the store right after a batch was cut: pinned in the same synchronous step as the cut, read later. */
export interface Capture {
  readonly pin: FilePin;
  readonly leaderTimeMs: number;
}

/** Where the batch of a capture landed. */
export interface CaptureLanding {
  readonly databaseId: Uint8Array;
  readonly epoch: number;
  readonly batch: number;
  readonly sequence: number;
  readonly manifestEpoch: number;
  /** A copy of the epoch's MAC key; wiped once the manifest is sealed. */
  readonly macKey: Uint8Array;
}

/** What the snapshot taker needs of the NATS session. */
export interface SnapshotSession {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly name: string;
  readonly stream: string;
  readonly replicas: number;
  /** The server's max payload: objects are stored in chunks this size (less room for headers), not the client's 128 KiB. */
  readonly maxPayloadBytes: number;
  /** Called with the sequence of the oldest snapshot kept once the stream was trimmed to it. */
  readonly onTrimmed?: (sequence: number) => Promise<void>;
}

/**
 * Takes object-store snapshots for a leader. {@link capture} runs at a batch cut and pins the store's
 * file set (names and lengths, capture.ts) in the same synchronous step, so what is uploaded later, a
 * chunk at a time, is exactly the state after that batch: the FileSystem {@link track} returns tells
 * the pin of every mutation before it lands. An fsync'd whole-file write or an unlink off the event
 * loop runs on the thread pool and is recorded only when it completes: while one is in flight the disk
 * may be ahead of the recorded operations, so no capture is taken then ({@link track} counts them). One
 * snapshot is stored at a time; a capture due meanwhile waits.
 */
export class SnapshotTaker {
  readonly #session: SnapshotSession;
  readonly #fileSystem: FileSystem;
  readonly #root: string;
  readonly #policy: SnapshotPolicy;
  #store: ObjectStore | undefined;
  #asyncMutations = 0;
  #bytesSinceCapture = 0;
  #lastCaptureMs = Date.now();
  #storing: Promise<void> | undefined;
  /** The file set of the capture being stored (or of one whose batch is still being published). */
  #pin: FilePin | undefined;
  #error: Error | undefined;

  constructor(session: SnapshotSession, fileSystem: FileSystem, root: string, policy: SnapshotPolicy) {
    this.#session = session;
    this.#fileSystem = fileSystem;
    this.#root = root;
    this.#policy = policy;
  }

  /** The last snapshot that failed to store, if any (the next one tries again). */
  get error(): Error | undefined {
    return this.#error;
  }

  /**
   * `inner` with its asynchronous mutations counted, to go under the recording FileSystem. The count
   * drops a macrotask after the operation completed, once the recorder has recorded it. Every mutation
   * is told first to the pin of the capture being stored (capture.ts).
   */
  track(inner: FileSystem): FileSystem {
    const counted = async <T>(run: () => Promise<T>): Promise<T> => {
      this.#asyncMutations++;
      try {
        return await run();
      } finally {
        setImmediate(() => this.#asyncMutations--);
      }
    };
    // Below the counter, every mutation tells the pin of the capture being stored first (capture.ts).
    const pinning = pinningFileSystem(inner, () => this.#pin);
    return {
      ...pinning,
      writeFile: (filePath, bytes) => counted(() => pinning.writeFile(filePath, bytes)),
      removeFile: (filePath) => counted(() => pinning.removeFile(filePath)),
    };
  }

  /** At a batch cut: the store's file set pinned, if a snapshot is due and can be taken now, else undefined. */
  capture(operations: readonly FileOperation[]): Capture | undefined {
    for (const operation of operations) if (operation.kind === 'write') this.#bytesSinceCapture += operation.bytes.length;
    if (this.#storing !== undefined || this.#asyncMutations > 0 || this.#bytesSinceCapture === 0) return undefined;
    const now = Date.now();
    const { everyBytes, everyMs } = this.#policy;
    const due =
      (everyBytes !== undefined && this.#bytesSinceCapture >= everyBytes) ||
      (everyMs !== undefined && now - this.#lastCaptureMs >= everyMs);
    if (!due) return undefined;
    // Lengths and names only: the bytes are read in chunks while the snapshot is stored.
    this.#pin?.releaseAll();
    const pin = FilePin.take(this.#fileSystem, this.#root);
    this.#pin = pin;
    this.#bytesSinceCapture = 0;
    this.#lastCaptureMs = now;
    return { pin, leaderTimeMs: now };
  }

  /** After the capture's batch was stored at `landing.sequence`: stores the snapshot in the background. */
  store(capture: Capture, landing: CaptureLanding): void {
    const run = this.#storeSnapshot(capture, landing)
      .then(() => {
        this.#error = undefined;
      })
      .catch((error: unknown) => {
        this.#error = error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        landing.macKey.fill(0);
        capture.pin.releaseAll();
        if (this.#pin === capture.pin) this.#pin = undefined;
        if (this.#storing === run) this.#storing = undefined;
      });
    this.#storing = run;
  }

  /** A capture whose batch never landed (the leader was fenced, the servers did not answer). */
  drop(): void {
    this.#pin?.releaseAll();
    this.#pin = undefined;
    this.#bytesSinceCapture = Math.max(this.#bytesSinceCapture, this.#policy.everyBytes ?? 0);
  }

  /** Resolves once the snapshot being stored (if any) is stored or failed. */
  async settled(): Promise<void> {
    await this.#storing;
  }

  async #objectStore(): Promise<ObjectStore> {
    this.#store ??= await new Objm(this.#session.js).create(objectBucketOf(this.#session.name), {
      storage: StorageType.File,
      replicas: this.#session.replicas,
    });
    return this.#store;
  }

  async #storeSnapshot(capture: Capture, landing: CaptureLanding): Promise<void> {
    const store = await this.#objectStore();
    const present = new Set((await store.list()).filter((info) => !info.deleted).map((info) => info.name));
    const { pin } = capture;
    const entries: SnapshotEntry[] = pin.directories.map((directory) => ({ kind: 'directory', path: directory }));
    const chunkBytes = Math.max(64 * 1024, this.#session.maxPayloadBytes - CHUNK_HEADROOM_BYTES);
    for (const file of pin.files) {
      await snapshotHooks.beforeUpload?.(file.path);
      // Two passes over the pinned bytes, a chunk at a time: the digest names the object (content
      // addressed), then the upload, its digest checked again against the first.
      const digest = digestOfPinned(pin, file, chunkBytes);
      const objectName = fileObjectName(digest);
      if (!present.has(objectName)) {
        const hash = createHash('sha256');
        await store.put({ name: objectName, options: { max_chunk_size: chunkBytes } }, pinnedStream(pin, file, chunkBytes, hash));
        assert(timingSafeEqual(new Uint8Array(hash.digest()), digest), 'a pinned file reads the same bytes twice');
        present.add(objectName);
      }
      pin.release(file);
      entries.push({ kind: 'file', path: file.path, size: file.size, digest });
    }
    const manifest: SnapshotManifest = {
      databaseId: landing.databaseId,
      epoch: landing.epoch,
      batch: landing.batch,
      sequence: landing.sequence,
      manifestEpoch: landing.manifestEpoch,
      leaderTimeMs: capture.leaderTimeMs,
      entries,
    };
    await store.putBlob({ name: snapshotObjectName(landing.sequence) }, encodeSnapshotManifest(manifest, landing.macKey));
    await this.#retain(store);
  }

  /** Keeps the newest `retain` snapshots and the file objects they name; trims the stream to the oldest kept. */
  async #retain(store: ObjectStore): Promise<void> {
    const snapshots = await listSnapshots(store);
    // The newest `retain`, and every older one a reader holds a live lease on (reader-lease.ts): a
    // follower or a restore downloading it, then reading the stream after it.
    const leased = await leasedSequences(this.#session.js, this.#session.name);
    const newest = snapshots.slice(-this.#policy.retain);
    const kept = snapshots.filter((snapshot) => newest.includes(snapshot) || leased.has(snapshot.manifest.sequence));
    for (const { manifest } of snapshots) {
      if (!kept.some((snapshot) => snapshot.manifest === manifest)) await store.delete(snapshotObjectName(manifest.sequence));
    }
    const named = new Set<string>();
    for (const { manifest } of kept)
      for (const entry of manifest.entries) if (entry.kind === 'file') named.add(fileObjectName(entry.digest));
    for (const info of await store.list()) {
      if (!info.deleted && info.name.startsWith(FILE_PREFIX) && !named.has(info.name)) await store.delete(info.name);
    }
    const oldest = kept[0]?.manifest;
    if (!this.#policy.trimStream || oldest === undefined) return;
    // Purge below the oldest snapshot kept; its own last message stays, for checkAgainstStream.
    // (A purge to sequence 1 or 0 is a purge of everything to the server: nothing to do then.)
    if (oldest.sequence <= 1) return;
    await this.#session.jsm.streams.purge(this.#session.stream, { seq: oldest.sequence });
    await this.#session.onTrimmed?.(oldest.sequence);
  }
}

/** The newest snapshot with a sequence at or before `atMost` (default any), or undefined. */
export function newestSnapshot(snapshots: readonly StoredSnapshot[], atMost = Number.MAX_SAFE_INTEGER): StoredSnapshot | undefined {
  for (let index = snapshots.length - 1; index >= 0; index--) {
    if (snapshots[index]!.manifest.sequence <= atMost) return snapshots[index];
  }
  return undefined;
}
