/**
 * One process at a time per directory (SPEC §4). The `LOCK` file holds the owner's pid; it is created
 * exclusively. A lock whose pid no longer runs is stale and taken over. Within one process a registry
 * of locked directories refuses a second open too (the pid check alone cannot see that).
 *
 * A `LOCK` that is not a regular file (a symbolic link, FIFO, directory) is never read through, never
 * taken over and never removed: the open is refused with ARMDB_INTEGRITY (docs/security-model.md
 * §Hostile directory entries).
 *
 * Every file operation goes through the {@link FileSystem} the store was opened with, so tests can fail
 * the lock as they fail any other operation (test/crash/fault-fs.ts).
 */
import * as path from 'node:path';
import { armdbError } from '../errors.js';
import type { FileSystem } from './file-system.js';

/** A pid in decimal and a newline: anything longer is no pid of ours. */
const MAX_LOCK_BYTES = 32;

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

/**
 * The pid in `LOCK`, or undefined if it is missing or holds none (stale). At most
 * {@link MAX_LOCK_BYTES} are read; anything but a regular file is ARMDB_INTEGRITY.
 */
function readOwner(fileSystem: FileSystem, lockPath: string): number | undefined {
  const bytes = fileSystem.readLockFile(lockPath, MAX_LOCK_BYTES);
  if (bytes === undefined) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1').trim();
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const pid = Number(text);
  return pid > 0 ? pid : undefined;
}

/**
 * Takes the lock of `directory` (which must exist) through `fileSystem`, or throws ARMDB_LOCKED. Any
 * other failure of the file system (an `EACCES`, an `EIO`) is thrown as it is, and no lock is held.
 *
 * @example
 * ```ts
 * const lock = lockDirectory(nodeFileSystem, root);
 * try {
 *   // … the store is this process's alone …
 * } finally {
 *   lock.release();
 * }
 * ```
 */
export function lockDirectory(fileSystem: FileSystem, directory: string): DirectoryLock {
  const canonical = fileSystem.realPath(directory);
  if (lockedDirectories.has(canonical)) throw armdbError('ARMDB_LOCKED', 'the directory is already open in this process');
  const lockPath = path.join(canonical, 'LOCK');
  const ownPid = new TextEncoder().encode(`${process.pid}\n`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // Exclusive, and never without the pid in it (FileSystem.createLockFile).
      fileSystem.createLockFile(lockPath, ownPid);
      lockedDirectories.add(canonical);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          lockedDirectories.delete(canonical);
          try {
            if (readOwner(fileSystem, lockPath) === process.pid) fileSystem.removeLockFile(lockPath);
          } catch {
            // Replaced by something that is no lock of ours while we held it, or the removal failed:
            // leave it where it is. A LOCK naming this process is taken over by this process's next
            // open of the directory, and by any process once this one has exited.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException | undefined)?.code !== 'EEXIST') throw error;
    }
    const owner = readOwner(fileSystem, lockPath);
    if (owner !== undefined && owner !== process.pid && processIsAlive(owner)) {
      throw armdbError('ARMDB_LOCKED', `the directory is open in process ${owner}`);
    }
    // Stale: its owner is gone (or it is our own pid, left by an open of this process that never
    // released it). Remove it and retry the exclusive link. Known limit (docs/durability.md): two
    // processes that both find the same stale lock at the same instant can both remove it; the
    // window is a few microseconds and needs a dead owner first.
    fileSystem.removeLockFile(lockPath);
  }
  throw armdbError('ARMDB_LOCKED', 'could not take the directory lock');
}
