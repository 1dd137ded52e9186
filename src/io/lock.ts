/**
 * One process at a time per directory (SPEC §4). The `LOCK` file holds the owner's pid; it is created
 * exclusively. A lock whose pid no longer runs is stale and taken over. Within one process a registry
 * of locked directories refuses a second open too (the pid check alone cannot see that).
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { armdbError } from '../errors.js';
import { FILE_MODE } from './node-file-system.js';

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

function readOwner(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
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
    fs.writeFileSync(pending, `${process.pid}\n`, { mode: FILE_MODE });
    try {
      fs.linkSync(pending, lockPath);
      lockedDirectories.add(canonical);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          lockedDirectories.delete(canonical);
          if (readOwner(lockPath) === process.pid) fs.rmSync(lockPath, { force: true });
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
