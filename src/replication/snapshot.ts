/**
 * A snapshot of a store directory as file operations: `reset`, then every directory and every file
 * (but the lock) created and written whole. A leader ships one first whenever it takes the lease, so a
 * replica's state never depends on what it held before (docs/replication.md §Snapshots).
 */
import * as path from 'node:path';
import { ArmdbError } from '../errors.js';
import type { FileSystem } from '../io/file-system.js';
import { type FileOperation, isPlaintextName } from '../io/recording-file-system.js';

/**
 * Whether `absolute` is a directory. The FileSystem answers `modeOf` for regular files only and
 * refuses every other kind with ARMDB_INTEGRITY; a directory is the one kind `list` accepts.
 */
export function isDirectory(fileSystem: FileSystem, absolute: string): boolean {
  try {
    fileSystem.modeOf(absolute);
    return false;
  } catch (error) {
    if (!(error instanceof ArmdbError)) throw error;
    try {
      fileSystem.list(absolute);
      return true;
    } catch {
      throw error;
    }
  }
}

export function snapshotOperations(fileSystem: FileSystem, root: string): FileOperation[] {
  const operations: FileOperation[] = [{ kind: 'reset' }];
  const walk = (directory: string, prefix: string): void => {
    for (const name of fileSystem.list(directory).sort()) {
      const relative = prefix === '' ? name : `${prefix}/${name}`;
      if (isPlaintextName(relative)) continue;
      const absolute = path.join(directory, name);
      if (isDirectory(fileSystem, absolute)) {
        operations.push({ kind: 'makeDirectory', path: relative });
        walk(absolute, relative);
        continue;
      }
      const bytes = fileSystem.readFile(absolute);
      if (bytes === undefined) continue;
      operations.push({ kind: 'create', path: relative });
      if (bytes.length > 0) operations.push({ kind: 'write', path: relative, position: 0, bytes });
    }
  };
  if (fileSystem.exists(root)) walk(root, '');
  return operations;
}
