/**
 * A FileSystem that records what the engine does to the files of one store directory, in the order it
 * does it, so that a replication leader can ship exactly what is on disk (docs/replication.md §What
 * crosses the wire). It knows nothing of the store's format: a write is a byte range of a named file,
 * whatever the bytes mean, so a format change (a journal sidecar, an appended MANIFEST) needs no change
 * here. Reads pass straight through.
 *
 * Only sealed or MAC'd files go through it: the directory lock (its four functions below) is not
 * recorded, and a path named `LOCK` is refused by {@link storePath}, so no plaintext byte is shipped.
 */
import * as path from 'node:path';
import { assert } from '../assert.js';
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';

/** One operation on the files of a store, paths relative to its directory with `/` separators. */
export type FileOperation =
  /** Start of a snapshot: every file of the replica's directory goes (the lock stays). */
  | { readonly kind: 'reset' }
  | { readonly kind: 'makeDirectory'; readonly path: string }
  /** A new empty file (`open(…, 'create')`, or the first step of `writeFile`). */
  | { readonly kind: 'create'; readonly path: string }
  | { readonly kind: 'write'; readonly path: string; readonly position: number; readonly bytes: Uint8Array }
  | { readonly kind: 'truncate'; readonly path: string; readonly length: number }
  | { readonly kind: 'rename'; readonly path: string; readonly to: string }
  | { readonly kind: 'remove'; readonly path: string };

/**
 * Names that never leave the machine: the lock and its private temporaries, which hold plaintext
 * (src/io/lock.ts), and a follower's progress file with its pending copy (src/replication/progress.ts),
 * which is the replica's own and not one of the store's files.
 */
export function isPlaintextName(relativePath: string): boolean {
  const base = relativePath.slice(relativePath.lastIndexOf('/') + 1);
  return base === 'LOCK' || base.startsWith('LOCK.') || base === 'REPLICA' || base.startsWith('REPLICA.');
}

/** What a recorder tells its owner. */
export interface RecorderEvents {
  /** After each operation, with it (its bytes are a private copy). */
  onOperation(operation: FileOperation): void;
  /** After an fsync of a file or directory of the store resolved: a durability point. */
  onDurable(): void;
}

/** `absolute` relative to `root`, with `/` separators; asserts it lies inside and is no plaintext name. */
export function storePath(root: string, absolute: string): string {
  const relative = path.relative(root, absolute);
  assert(relative.length > 0 && !relative.startsWith('..') && !path.isAbsolute(relative), 'a recorded path lies inside the store');
  const portable = relative.split(path.sep).join('/');
  assert(!isPlaintextName(portable), 'the lock file is never recorded');
  return portable;
}

class RecordingHandle implements FileHandle {
  readonly #inner: FileHandle;
  readonly #relative: string;
  readonly #events: RecorderEvents;

  constructor(inner: FileHandle, relative: string, events: RecorderEvents) {
    this.#inner = inner;
    this.#relative = relative;
    this.#events = events;
  }

  get path(): string {
    return this.#inner.path;
  }

  read(target: Uint8Array, position: number): number {
    return this.#inner.read(target, position);
  }

  write(source: Uint8Array, position: number): void {
    this.#inner.write(source, position);
    // A copy: the engine reuses its page buffers.
    this.#events.onOperation({ kind: 'write', path: this.#relative, position, bytes: source.slice() });
  }

  size(): number {
    return this.#inner.size();
  }

  linkCount(): number {
    return this.#inner.linkCount();
  }

  truncate(length: number): void {
    this.#inner.truncate(length);
    this.#events.onOperation({ kind: 'truncate', path: this.#relative, length });
  }

  async sync(): Promise<void> {
    await this.#inner.sync();
    this.#events.onDurable();
  }

  close(): void {
    this.#inner.close();
  }
}

/**
 * Wraps `inner` for the store in `root` (an absolute, resolved path). Every mutation is applied to
 * `inner` first and recorded only once it succeeded, so the record never holds what the disk does not.
 */
export function recordingFileSystem(inner: FileSystem, root: string, events: RecorderEvents): FileSystem {
  const relativeOf = (absolute: string): string => storePath(root, absolute);
  return {
    open(filePath: string, mode: OpenMode): FileHandle {
      const handle = inner.open(filePath, mode);
      if (mode === 'read') return handle;
      const relative = relativeOf(filePath);
      if (mode === 'create') events.onOperation({ kind: 'create', path: relative });
      return new RecordingHandle(handle, relative, events);
    },
    readFile: (filePath, maxBytes) => inner.readFile(filePath, maxBytes),
    async writeFile(filePath, bytes) {
      const relative = relativeOf(filePath);
      await inner.writeFile(filePath, bytes);
      events.onOperation({ kind: 'create', path: relative });
      events.onOperation({ kind: 'write', path: relative, position: 0, bytes: bytes.slice() });
      events.onDurable();
    },
    rename(from, to) {
      const relative = relativeOf(from);
      const target = relativeOf(to);
      inner.rename(from, to);
      events.onOperation({ kind: 'rename', path: relative, to: target });
    },
    unlink(filePath) {
      const relative = relativeOf(filePath);
      inner.unlink(filePath);
      events.onOperation({ kind: 'remove', path: relative });
    },
    async removeFile(filePath) {
      const relative = relativeOf(filePath);
      await inner.removeFile(filePath);
      events.onOperation({ kind: 'remove', path: relative });
    },
    list: (directory) => inner.list(directory),
    makeDirectory(directory, options) {
      const existed = inner.exists(directory);
      inner.makeDirectory(directory, options);
      if (!existed && path.resolve(directory) !== root) events.onOperation({ kind: 'makeDirectory', path: relativeOf(directory) });
    },
    exists: (filePath) => inner.exists(filePath),
    modeOf: (filePath) => inner.modeOf(filePath),
    async syncDirectory(directory) {
      await inner.syncDirectory(directory);
      events.onDurable();
    },
    realPath: (directory) => inner.realPath(directory),
    createLockFile: (filePath, bytes) => inner.createLockFile(filePath, bytes),
    readLockFile: (filePath, maxBytes) => inner.readLockFile(filePath, maxBytes),
    removeLockFile: (filePath) => inner.removeLockFile(filePath),
  };
}
