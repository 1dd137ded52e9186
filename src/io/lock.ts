/**
 * One process at a time per directory (SPEC §4). The `LOCK` file holds the owner's pid; it is created
 * exclusively. A lock whose pid no longer runs is stale and taken over. Within one process a registry
 * of locked directories refuses a second open too (the pid check alone cannot see that).
 *
 * A `LOCK` that is not a regular file (a symbolic link, FIFO, directory) is never read through, never
 * taken over and never removed: the open is refused with ARMDB_INTEGRITY (docs/security-model.md
 * §Hostile directory entries).
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { armdbError, integrityError } from '../errors.js';
import { FILE_MODE } from './node-file-system.js';

/** A pid in decimal and a newline: anything longer is no pid of ours. */
const MAX_LOCK_BYTES = 32;
// O_NOFOLLOW: a link is refused, not read. O_NONBLOCK: a FIFO is refused, not waited on (Windows has neither).
const READ_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);

const lockedDirectories = new Set<string>();

export interface DirectoryLock {
  release(): void;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function notALock(kind: string, cause?: unknown): Error {
  return integrityError(`LOCK is ${kind}, not a regular file; remove it once no process uses the directory`, cause);
}

/**
 * The pid in `LOCK`, or undefined if it is missing or holds none (stale). Read through the opened
 * descriptor only, at most {@link MAX_LOCK_BYTES}; anything but a regular file is ARMDB_INTEGRITY.
 */
function readOwner(lockPath: string): number | undefined {
  let descriptor: number;
  try {
    descriptor = fs.openSync(lockPath, READ_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') throw notALock('a symbolic link', error);
    return undefined;
  }
  try {
    const stats = fs.fstatSync(descriptor);
    if (!stats.isFile()) throw notALock(stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : 'a special file');
    const buffer = Buffer.alloc(MAX_LOCK_BYTES);
    const read = fs.readSync(descriptor, buffer, 0, MAX_LOCK_BYTES, 0);
    const text = buffer.toString('latin1', 0, read).trim();
    if (!/^\d{1,10}$/.test(text)) return undefined;
    const pid = Number(text);
    return pid > 0 ? pid : undefined;
  } finally {
    fs.closeSync(descriptor);
  }
}

/** Takes the lock of `directory` (which must exist) or throws ARMDB_LOCKED. */
export function lockDirectory(directory: string): DirectoryLock {
  const canonical = fs.realpathSync(directory);
  if (lockedDirectories.has(canonical)) throw armdbError('ARMDB_LOCKED', 'the directory is already open in this process');
  const lockPath = path.join(canonical, 'LOCK');
  for (let attempt = 0; attempt < 3; attempt++) {
    // The pid is written to a private file first and then linked in place, so a LOCK never exists
    // without its owner in it (another process could otherwise take a lock in the making for stale).
    const pending = `${lockPath}.${process.pid}.${randomBytes(6).toString('hex')}`;
    fs.writeFileSync(pending, `${process.pid}\n`, { mode: FILE_MODE, flag: 'wx' });
    try {
      fs.linkSync(pending, lockPath);
      lockedDirectories.add(canonical);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          lockedDirectories.delete(canonical);
          try {
            if (readOwner(lockPath) === process.pid) fs.rmSync(lockPath, { force: true });
          } catch {
            // Replaced by something that is no lock of ours while we held it: leave it where it is.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      fs.rmSync(pending, { force: true });
    }
    const owner = readOwner(lockPath);
    if (owner !== undefined && owner !== process.pid && processIsAlive(owner)) {
      throw armdbError('ARMDB_LOCKED', `the directory is open in process ${owner}`);
    }
    // Stale: its owner is gone (or it is our own pid, left by an open of this process that never
    // released it). Remove it and retry the exclusive link. Known limit (docs/durability.md): two
    // processes that both find the same stale lock at the same instant can both remove it; the
    // window is a few microseconds and needs a dead owner first.
    fs.rmSync(lockPath, { force: true });
  }
  throw armdbError('ARMDB_LOCKED', 'could not take the directory lock');
}
