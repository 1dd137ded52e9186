/**
 * A follower's durable progress (docs/format.md §8A, docs/replication.md §The follower): the `REPLICA`
 * file in the replica's directory names the last batch whose operations the follower applied and
 * fsynced, so that a restarted follower goes on from the stream sequence after it instead of from the
 * last snapshot. It sits beside the store's files, not among them: like the lock it is never recorded,
 * shipped, snapshotted or removed by a reset (src/io/recording-file-system.ts `isPlaintextName`), so
 * the store's files stay the leader's byte for byte. It holds no secret; its HMAC, under the
 * replication key of the KEYRING it was written with, is checked once an open has authenticated the
 * files it describes.
 */
import * as path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { integrityError } from '../errors.js';
import type { FileSystem } from '../io/file-system.js';
import type { TouchedPaths } from './apply.js';
import { DATABASE_ID_BYTES, mac } from './message.js';
import { isDirectory } from './snapshot.js';

/** The file's name in the replica's directory. */
export const PROGRESS_NAME = 'REPLICA';
const PENDING_NAME = `${PROGRESS_NAME}.pending`;
const MAGIC = [0x41, 0x52, 0x4d, 0x50]; // "ARMP"
const VERSION = 1;
const MAC_BYTES = 32;
const BODY_BYTES = 4 + 1 + 1 + DATABASE_ID_BYTES + 8 + 8 + 8 + 8;
/** Every version-1 progress file has exactly this many bytes. */
export const PROGRESS_BYTES = BODY_BYTES + MAC_BYTES;

export interface FollowerProgress {
  readonly databaseId: Uint8Array;
  /** The lease epoch of the batch. */
  readonly epoch: number;
  /** Its number within the epoch. */
  readonly batch: number;
  /** The stream sequence of its last part. */
  readonly sequence: number;
  /** The highest MANIFEST epoch the follower had served (its floor against a rollback). */
  readonly manifestEpochFloor: number;
}

function body(progress: FollowerProgress): Uint8Array {
  const bytes = new Uint8Array(BODY_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = VERSION;
  bytes[5] = 0;
  bytes.set(progress.databaseId, 6);
  let offset = 6 + DATABASE_ID_BYTES;
  for (const value of [progress.epoch, progress.batch, progress.sequence, progress.manifestEpochFloor]) {
    view.setBigUint64(offset, BigInt(value));
    offset += 8;
  }
  return bytes;
}

export function encodeProgress(progress: FollowerProgress, macKey: Uint8Array): Uint8Array {
  const head = body(progress);
  const bytes = new Uint8Array(PROGRESS_BYTES);
  bytes.set(head, 0);
  bytes.set(mac(macKey, head), BODY_BYTES);
  return bytes;
}

/** The progress a file holds, its MAC not yet checked (see {@link verifyProgress}); ARMDB_INTEGRITY if malformed. */
export function decodeProgress(bytes: Uint8Array): FollowerProgress {
  if (bytes.length !== PROGRESS_BYTES || MAGIC.some((byte, index) => bytes[index] !== byte)) {
    throw integrityError(`replication: ${PROGRESS_NAME} is not a follower's progress file`);
  }
  if (bytes[4] !== VERSION || bytes[5] !== 0) throw integrityError(`replication: ${PROGRESS_NAME} version ${bytes[4]} is not supported`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const number = (offset: number): number => {
    const value = view.getBigUint64(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw integrityError(`replication: ${PROGRESS_NAME} holds an out-of-range number`);
    return Number(value);
  };
  const at = 6 + DATABASE_ID_BYTES;
  return {
    databaseId: bytes.slice(6, at),
    epoch: number(at),
    batch: number(at + 8),
    sequence: number(at + 16),
    manifestEpochFloor: number(at + 24),
  };
}

/** Whether `bytes` (a progress file) carries the HMAC of its body under `macKey`. */
export function verifyProgress(bytes: Uint8Array, macKey: Uint8Array): boolean {
  if (bytes.length !== PROGRESS_BYTES) return false;
  return timingSafeEqual(mac(macKey, bytes.subarray(0, BODY_BYTES)), bytes.subarray(BODY_BYTES));
}

/** The progress file of `root`, or undefined if there is none. */
export function readProgress(fileSystem: FileSystem, root: string): Uint8Array | undefined {
  return fileSystem.readFile(path.join(root, PROGRESS_NAME), PROGRESS_BYTES + 1);
}

/**
 * Removes the progress file: from a directory about to be opened writable (a leader's files then move
 * on from what it describes), or one a follower cannot resume from. The caller fsyncs `root` after.
 */
export function removeProgress(fileSystem: FileSystem, root: string): void {
  for (const name of [PROGRESS_NAME, PENDING_NAME]) {
    const absolute = path.join(root, name);
    if (fileSystem.exists(absolute)) fileSystem.unlink(absolute);
  }
}

/**
 * Makes what a follower applied durable, then records it: every file and directory `touched` (all of
 * them after a reset) is fsynced, then the progress is written under a pending name, fsynced, renamed
 * over the last one and the directory fsynced. A crash at any point leaves the previous progress or
 * this one, each naming a state the files reached durably.
 */
export async function recordProgress(
  fileSystem: FileSystem,
  root: string,
  touched: TouchedPaths,
  progress: FollowerProgress,
  macKey: Uint8Array,
): Promise<void> {
  await syncTouched(fileSystem, root, touched);
  touched.clear();
  const pending = path.join(root, PENDING_NAME);
  if (fileSystem.exists(pending)) fileSystem.unlink(pending);
  await fileSystem.writeFile(pending, encodeProgress(progress, macKey));
  fileSystem.rename(pending, path.join(root, PROGRESS_NAME));
  await fileSystem.syncDirectory(root);
}

async function syncTouched(fileSystem: FileSystem, root: string, touched: TouchedPaths): Promise<void> {
  const files = new Set<string>();
  const directories = new Set<string>();
  if (touched.everything) {
    const walk = (relative: string): void => {
      directories.add(relative);
      const absolute = relative === '' ? root : path.join(root, ...relative.split('/'));
      for (const name of fileSystem.list(absolute)) {
        if (relative === '' && (name === 'LOCK' || name.startsWith('LOCK.') || name.startsWith(PROGRESS_NAME))) continue;
        const child = relative === '' ? name : `${relative}/${name}`;
        if (isDirectory(fileSystem, path.join(absolute, name))) walk(child);
        else files.add(child);
      }
    };
    walk('');
  }
  for (const file of touched.files) files.add(file);
  for (const directory of touched.directories) directories.add(directory);
  for (const relative of files) {
    const absolute = path.join(root, ...relative.split('/'));
    // Removed or renamed away since it was written: its directory's fsync covers that.
    if (!fileSystem.exists(absolute)) continue;
    const handle = fileSystem.open(absolute, 'read');
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  }
  for (const relative of directories) {
    const absolute = relative === '' ? root : path.join(root, ...relative.split('/'));
    if (fileSystem.exists(absolute)) await fileSystem.syncDirectory(absolute);
  }
}
