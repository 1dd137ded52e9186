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

/**
 * What applied operations changed since the last durable point of a follower: the files written and
 * the directories whose entries changed, relative to the root (`''` is the root itself); `everything`
 * after a reset. The follower fsyncs them before it records its progress (src/replication/progress.ts).
 */
export class TouchedPaths {
  readonly files = new Set<string>();
  readonly directories = new Set<string>();
  everything = false;

  file(relative: string): void {
    this.files.add(relative);
  }

  entryOf(relative: string): void {
    const slash = relative.lastIndexOf('/');
    this.directories.add(slash < 0 ? '' : relative.slice(0, slash));
  }

  clear(): void {
    this.files.clear();
    this.directories.clear();
    this.everything = false;
  }
}

export interface ApplyOptions {
  /**
   * The directory may already hold a prefix of these operations (a follower killed while applying
   * them resumes from its last durable point, docs/replication.md §The follower): a write, truncate,
   * rename or remove of a file that is not there is skipped (a later operation of the same prefix
   * removed or renamed it, and applying that again leaves what it left), and a create replaces the
   * file. The reopen that follows authenticates the result as recovery does.
   */
  readonly replayingPrefix?: boolean;
  /** Collects what changed, for the follower's fsync at its next durable point. */
  readonly touched?: TouchedPaths;
}

/** Applies `operations` in order to the directory `root`. ARMDB_INTEGRITY if they do not fit its files (a gap in the stream). */
export function applyOperations(
  fileSystem: FileSystem,
  root: string,
  operations: readonly FileOperation[],
  options: ApplyOptions = {},
): void {
  const { replayingPrefix = false, touched } = options;
  const absolute = (relative: string): string => path.join(root, ...relative.split('/'));
  const handles = new Map<string, FileHandle>();
  const handleOf = (relative: string): FileHandle | undefined => {
    let handle = handles.get(relative);
    if (handle === undefined) {
      if (replayingPrefix && !fileSystem.exists(absolute(relative))) return undefined;
      handle = fileSystem.open(absolute(relative), 'readWrite');
      handles.set(relative, handle);
    }
    return handle;
  };
  const forget = (relative: string): void => {
    handles.get(relative)?.close();
    handles.delete(relative);
  };
  try {
    for (const operation of operations) {
      switch (operation.kind) {
        case 'reset':
          for (const relative of [...handles.keys()]) forget(relative);
          removeStoreFiles(fileSystem, root);
          if (touched !== undefined) touched.everything = true;
          break;
        case 'makeDirectory':
          fileSystem.makeDirectory(absolute(operation.path));
          touched?.entryOf(operation.path);
          break;
        case 'create':
          forget(operation.path);
          if (replayingPrefix && fileSystem.exists(absolute(operation.path))) fileSystem.unlink(absolute(operation.path));
          handles.set(operation.path, fileSystem.open(absolute(operation.path), 'create'));
          touched?.file(operation.path);
          touched?.entryOf(operation.path);
          break;
        case 'write':
          handleOf(operation.path)?.write(operation.bytes, operation.position);
          touched?.file(operation.path);
          break;
        case 'truncate':
          handleOf(operation.path)?.truncate(operation.length);
          touched?.file(operation.path);
          break;
        case 'rename':
          forget(operation.path);
          forget(operation.to);
          if (replayingPrefix && !fileSystem.exists(absolute(operation.path))) break;
          fileSystem.rename(absolute(operation.path), absolute(operation.to));
          touched?.file(operation.to);
          touched?.entryOf(operation.path);
          touched?.entryOf(operation.to);
          break;
        case 'remove':
          forget(operation.path);
          if (replayingPrefix && !fileSystem.exists(absolute(operation.path))) break;
          fileSystem.unlink(absolute(operation.path));
          touched?.entryOf(operation.path);
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
