/**
 * Applies shipped file operations to a replica's directory, through the one FileSystem interface, so
 * the replica's files become byte-identical to the leader's. Nothing is decrypted or sealed here: the
 * engine authenticates the result when it reopens (docs/replication.md §The follower).
 */
import * as path from 'node:path';
import { integrityError } from '../errors.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { type FileOperation, isPlaintextName } from '../io/recording-file-system.js';
import { isDirectory } from './snapshot.js';

/** Every file of the store under `root`, except the lock (directories stay). */
function removeStoreFiles(fileSystem: FileSystem, root: string, directory = root): void {
  for (const name of fileSystem.list(directory)) {
    const absolute = path.join(directory, name);
    if (directory === root && isPlaintextName(name)) continue;
    if (isDirectory(fileSystem, absolute)) {
      removeStoreFiles(fileSystem, root, absolute);
      continue;
    }
    fileSystem.unlink(absolute);
  }
}

/** Applies `operations` in order to the directory `root`. ARMDB_INTEGRITY if they do not fit its files (a gap in the stream). */
export function applyOperations(fileSystem: FileSystem, root: string, operations: readonly FileOperation[]): void {
  const handles = new Map<string, FileHandle>();
  const handleOf = (relative: string): FileHandle => {
    let handle = handles.get(relative);
    if (handle === undefined) {
      handle = fileSystem.open(path.join(root, ...relative.split('/')), 'readWrite');
      handles.set(relative, handle);
    }
    return handle;
  };
  const forget = (relative: string): void => {
    handles.get(relative)?.close();
    handles.delete(relative);
  };
  const absolute = (relative: string): string => path.join(root, ...relative.split('/'));
  try {
    for (const operation of operations) {
      switch (operation.kind) {
        case 'reset':
          for (const relative of [...handles.keys()]) forget(relative);
          removeStoreFiles(fileSystem, root);
          break;
        case 'makeDirectory':
          fileSystem.makeDirectory(absolute(operation.path));
          break;
        case 'create':
          forget(operation.path);
          handles.set(operation.path, fileSystem.open(absolute(operation.path), 'create'));
          break;
        case 'write':
          handleOf(operation.path).write(operation.bytes, operation.position);
          break;
        case 'truncate':
          handleOf(operation.path).truncate(operation.length);
          break;
        case 'rename':
          forget(operation.path);
          forget(operation.to);
          fileSystem.rename(absolute(operation.path), absolute(operation.to));
          break;
        case 'remove':
          forget(operation.path);
          fileSystem.unlink(absolute(operation.path));
          break;
      }
    }
  } catch (error) {
    if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('ARMDB_')) throw error;
    throw integrityError("replication: the stream does not fit the replica's files (a gap or a foreign stream)", error);
  } finally {
    for (const handle of handles.values()) handle.close();
  }
}
