/**
 * A copy-on-write FileSystem for a read-only replica (docs/replication.md §The follower): reads come
 * from the replica's directory, which holds exactly the leader's bytes, and whatever the engine writes
 * while it opens and closes (the new active files every open creates, a torn tail cut by recovery, a
 * MANIFEST) goes to memory and is dropped with the overlay. So the directory stays byte-identical to
 * the leader's, and the replica never seals a page of its own: no (key, nonce) pair is used twice.
 *
 * A file the engine changes is copied into memory whole on its first change: only the active files of
 * the leader's last state are, once per reopen. The directory lock is the real one.
 */
import * as path from 'node:path';
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';

class MemoryFile {
  bytes: Uint8Array;
  length: number;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.length = bytes.length;
  }

  write(source: Uint8Array, position: number): void {
    const end = position + source.length;
    if (end > this.bytes.length) {
      const grown = new Uint8Array(Math.max(end, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    if (position > this.length) this.bytes.fill(0, this.length, position);
    this.bytes.set(source, position);
    this.length = Math.max(this.length, end);
  }

  truncate(length: number): void {
    if (length > this.length) this.write(new Uint8Array(length - this.length), this.length);
    this.length = length;
  }
}

let overlayCount = 0;

export function overlayFileSystem(inner: FileSystem): FileSystem {
  // The engine's lock is the overlay's own, in memory, under a name no real directory has: the replica
  // holds the real lock of the directory for as long as it runs (src/replication).
  const lockName = `\u0000armdb-overlay-${++overlayCount}`;
  const lockFiles = new Map<string, Uint8Array>();
  const files = new Map<string, MemoryFile>();
  /** Names removed or renamed away in the overlay, while the real file stays. */
  const hidden = new Set<string>();
  const directories = new Set<string>();

  const key = (filePath: string): string => path.resolve(filePath);
  const inMemory = (filePath: string): MemoryFile | undefined => files.get(key(filePath));
  const visibleOnDisk = (filePath: string): boolean => !hidden.has(key(filePath)) && inner.exists(filePath);
  const copyUp = (filePath: string): MemoryFile => {
    const existing = inMemory(filePath);
    if (existing !== undefined) return existing;
    const bytes = inner.readFile(filePath) ?? new Uint8Array(0);
    const file = new MemoryFile(new Uint8Array(bytes));
    files.set(key(filePath), file);
    return file;
  };
  const missing = (filePath: string): Error => Object.assign(new Error(`ENOENT: ${filePath}`), { code: 'ENOENT' });

  const memoryHandle = (filePath: string, resolveFile: () => MemoryFile): FileHandle => ({
    path: filePath,
    read(target, position) {
      const file = resolveFile();
      const count = Math.max(0, Math.min(target.length, file.length - position));
      target.set(file.bytes.subarray(position, position + count));
      return count;
    },
    write: (source, position) => resolveFile().write(source, position),
    size: () => resolveFile().length,
    linkCount: () => 1,
    truncate: (length) => resolveFile().truncate(length),
    sync: () => Promise.resolve(),
    close: () => undefined,
  });

  /** A real file read until its first change, then its copy in memory. */
  const copyOnWriteHandle = (filePath: string, real: FileHandle): FileHandle => {
    let copy: MemoryFile | undefined;
    const own = (): MemoryFile => {
      if (copy === undefined) {
        copy = copyUp(filePath);
        real.close();
      }
      return copy;
    };
    const memory = memoryHandle(filePath, own);
    return {
      path: filePath,
      read: (target, position) => (copy === undefined ? real.read(target, position) : memory.read(target, position)),
      write: (source, position) => memory.write(source, position),
      size: () => (copy === undefined ? real.size() : copy.length),
      linkCount: () => (copy === undefined ? real.linkCount() : 1),
      truncate: (length) => memory.truncate(length),
      sync: () => Promise.resolve(),
      close: () => {
        if (copy === undefined) real.close();
      },
    };
  };

  return {
    open(filePath: string, mode: OpenMode): FileHandle {
      const memory = inMemory(filePath);
      if (mode === 'create') {
        if (memory !== undefined || visibleOnDisk(filePath)) throw Object.assign(new Error(`EEXIST: ${filePath}`), { code: 'EEXIST' });
        const file = new MemoryFile(new Uint8Array(0));
        files.set(key(filePath), file);
        hidden.delete(key(filePath));
        return memoryHandle(filePath, () => file);
      }
      if (memory !== undefined) return memoryHandle(filePath, () => memory);
      if (!visibleOnDisk(filePath)) throw missing(filePath);
      const real = inner.open(filePath, 'read');
      return mode === 'read' ? real : copyOnWriteHandle(filePath, real);
    },
    readFile(filePath, maxBytes) {
      const memory = inMemory(filePath);
      if (memory !== undefined) return memory.bytes.slice(0, Math.min(memory.length, maxBytes ?? memory.length));
      return visibleOnDisk(filePath) ? inner.readFile(filePath, maxBytes) : undefined;
    },
    async writeFile(filePath, bytes) {
      if (inMemory(filePath) !== undefined || visibleOnDisk(filePath))
        throw Object.assign(new Error(`EEXIST: ${filePath}`), { code: 'EEXIST' });
      files.set(key(filePath), new MemoryFile(bytes.slice()));
      hidden.delete(key(filePath));
    },
    rename(from, to) {
      const file = inMemory(from) ?? (visibleOnDisk(from) ? copyUp(from) : undefined);
      if (file === undefined) throw missing(from);
      files.delete(key(from));
      hidden.add(key(from));
      files.set(key(to), file);
      hidden.delete(key(to));
    },
    unlink(filePath) {
      if (inMemory(filePath) === undefined && !visibleOnDisk(filePath)) throw missing(filePath);
      files.delete(key(filePath));
      hidden.add(key(filePath));
    },
    async removeFile(filePath) {
      this.unlink(filePath);
    },
    list(directory) {
      const names = new Set(inner.list(directory).filter((name) => !hidden.has(key(path.join(directory, name)))));
      const root = key(directory);
      for (const name of files.keys()) if (path.dirname(name) === root) names.add(path.basename(name));
      for (const name of directories) if (path.dirname(name) === root) names.add(path.basename(name));
      return [...names];
    },
    makeDirectory(directory, options) {
      if (inner.exists(directory)) inner.makeDirectory(directory, options);
      else directories.add(key(directory));
    },
    exists: (filePath) => inMemory(filePath) !== undefined || directories.has(key(filePath)) || visibleOnDisk(filePath),
    modeOf(filePath) {
      if (inMemory(filePath) !== undefined) return 0o600;
      return visibleOnDisk(filePath) ? inner.modeOf(filePath) : undefined;
    },
    syncDirectory: () => Promise.resolve(),
    realPath: (directory) => `${inner.realPath(directory)}${lockName}`,
    createLockFile(filePath, bytes) {
      if (lockFiles.has(filePath)) throw Object.assign(new Error(`EEXIST: ${filePath}`), { code: 'EEXIST' });
      lockFiles.set(filePath, bytes.slice());
    },
    readLockFile: (filePath, maxBytes) => lockFiles.get(filePath)?.slice(0, maxBytes),
    removeLockFile: (filePath) => void lockFiles.delete(filePath),
  };
}
