/**
 * A streamed capture of a store's files (docs/replication.md §Object-store snapshots): the file set
 * pinned at a batch cut (every directory, every file and its length then), read back later in chunks
 * while the engine goes on writing. The store's sealed files are append-only but for a few operations,
 * and the FileSystem wrapper the leader's engine stands on ({@link pinningFileSystem}) tells the pin of
 * each one before it lands, so what is read is exactly the bytes at the cut:
 *
 * - a write inside a pinned length (the partial last page of an active data file, rewritten in place)
 *   or a truncate below it (recovery cutting a torn tail): the bytes it overwrites are copied first
 *   (copy on write; in memory, a page or so per active file);
 * - an unlink, or a rename onto or away from a pinned name (compaction retiring a file, a MANIFEST or
 *   KEYRING replaced): the pinned file is opened first, and the open handle keeps its bytes readable
 *   after its name is gone (POSIX keeps an unlinked file until its last handle closes). Nothing is
 *   copied, no name is added to the store's directory, and a crash leaves nothing behind.
 *
 * Bytes appended past a pinned length are not the capture's and are never read. The pin holds one
 * handle per file being read or destroyed meanwhile, and releases each once its file is read.
 */
import * as path from 'node:path';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { isPlaintextName } from '../io/recording-file-system.js';
import { isDirectory } from './snapshot.js';

/** Bytes a pinned file held at the cut, in a range later overwritten. */
interface SavedRange {
  readonly position: number;
  readonly bytes: Uint8Array;
}

/** One file of a pin: its name at the cut, its length then, and what keeps its bytes. */
export interface PinnedFile {
  /** Relative to the store's directory, `/`-separated. */
  readonly path: string;
  /** Its length at the cut: the capture reads this many bytes. */
  readonly size: number;
  readonly absolute: string;
  /** The pinned file, open from the first time it had to be kept or was read; undefined before and once released. */
  handle: FileHandle | undefined;
  /** Bytes of the cut that were overwritten since, oldest first. */
  readonly saved: SavedRange[];
  released: boolean;
}

/**
 * The file set of a store at one point. Built synchronously ({@link FilePin.take}), in the same step as
 * the batch cut it follows, so nothing runs between the cut and the lengths read.
 */
export class FilePin {
  readonly #fileSystem: FileSystem;
  readonly directories: readonly string[];
  readonly files: readonly PinnedFile[];
  /** By absolute name, as the engine names them: a renamed pinned file is under both names. */
  readonly #byName = new Map<string, PinnedFile>();

  private constructor(fileSystem: FileSystem, directories: string[], files: PinnedFile[]) {
    this.#fileSystem = fileSystem;
    this.directories = directories;
    this.files = files;
    for (const file of files) this.#byName.set(file.absolute, file);
  }

  /** Pins every directory and file under `root` (never the lock), each file's length read now. */
  static take(fileSystem: FileSystem, root: string): FilePin {
    const directories: string[] = [];
    const files: PinnedFile[] = [];
    const walk = (directory: string, prefix: string): void => {
      for (const name of fileSystem.list(directory).sort()) {
        const relative = prefix === '' ? name : `${prefix}/${name}`;
        if (isPlaintextName(relative)) continue;
        const absolute = path.join(directory, name);
        if (isDirectory(fileSystem, absolute)) {
          directories.push(relative);
          walk(absolute, relative);
          continue;
        }
        const handle = fileSystem.open(absolute, 'read');
        try {
          files.push({ path: relative, size: handle.size(), absolute, handle: undefined, saved: [], released: false });
        } finally {
          handle.close();
        }
      }
    };
    if (fileSystem.exists(root)) walk(root, '');
    return new FilePin(fileSystem, directories, files);
  }

  #pinned(name: string): PinnedFile | undefined {
    const file = this.#byName.get(path.resolve(name));
    return file === undefined || file.released ? undefined : file;
  }

  #open(file: PinnedFile): FileHandle {
    file.handle ??= this.#fileSystem.open(file.absolute, 'read');
    return file.handle;
  }

  /** Before `length` bytes are written at `position` of `name`: copies what they overwrite of the pinned length. */
  beforeWrite(name: string, position: number, length: number): void {
    const file = this.#pinned(name);
    if (file === undefined || position >= file.size || length === 0) return;
    this.#save(file, position, Math.min(position + length, file.size));
  }

  /** Before `name` is cut to `length` bytes. */
  beforeTruncate(name: string, length: number): void {
    const file = this.#pinned(name);
    if (file === undefined || length >= file.size) return;
    this.#save(file, length, file.size);
  }

  /** Before `name` is unlinked or replaced by a rename: its bytes stay readable through a handle. */
  beforeRemove(name: string): void {
    const file = this.#pinned(name);
    if (file !== undefined) this.#open(file);
  }

  /** Before `from` is renamed to `to`: both names may carry writes to the pinned file from now on. */
  beforeRename(from: string, to: string): void {
    this.beforeRemove(to);
    const file = this.#pinned(from);
    if (file === undefined) return;
    this.#open(file);
    this.#byName.set(path.resolve(to), file);
  }

  #save(file: PinnedFile, start: number, end: number): void {
    // A range already saved holds the cut's bytes: saving it again would keep nothing new.
    if (file.saved.some((range) => range.position <= start && range.position + range.bytes.length >= end)) return;
    const bytes = new Uint8Array(end - start);
    const read = this.#open(file).read(bytes, start);
    file.saved.push({ position: start, bytes: bytes.subarray(0, read) });
  }

  /**
   * Reads the pinned bytes of `file` at `position` into `target` (never past its pinned length);
   * returns how many. Ranges saved before an overwrite are laid over what the file holds now, the
   * oldest last, so each byte is the one it held at the cut.
   */
  read(file: PinnedFile, target: Uint8Array, position: number): number {
    if (file.released) throw new Error('a released pinned file is not read');
    const wanted = Math.max(0, Math.min(target.length, file.size - position));
    const read = this.#open(file).read(target.subarray(0, wanted), position);
    for (let index = file.saved.length - 1; index >= 0; index--) {
      const range = file.saved[index]!;
      const start = Math.max(position, range.position);
      const end = Math.min(position + wanted, range.position + range.bytes.length);
      if (start < end) target.set(range.bytes.subarray(start - range.position, end - range.position), start - position);
    }
    return Math.max(read, this.#savedEnd(file, position, wanted));
  }

  /** How far saved ranges reach into [position, position + wanted), relative to position: bytes a truncate took. */
  #savedEnd(file: PinnedFile, position: number, wanted: number): number {
    let end = 0;
    for (const range of file.saved) {
      const reach = Math.min(position + wanted, range.position + range.bytes.length) - position;
      if (range.position < position + wanted && reach > end) end = reach;
    }
    return end;
  }

  /** Done with `file`: its handle closes and its saved bytes go. */
  release(file: PinnedFile): void {
    if (file.released) return;
    file.released = true;
    file.handle?.close();
    file.handle = undefined;
    file.saved.length = 0;
  }

  /** Done with every file. */
  releaseAll(): void {
    for (const file of this.files) this.release(file);
  }
}

/**
 * `inner` with every mutation told first to the pin `current()` returns (if any), so that a pin's
 * bytes survive what the engine does meanwhile. It goes under the recording FileSystem of a leader.
 */
export function pinningFileSystem(inner: FileSystem, current: () => FilePin | undefined): FileSystem {
  const pinned = (handle: FileHandle): FileHandle => ({
    get path() {
      return handle.path;
    },
    read: (target, position) => handle.read(target, position),
    write: (source, position) => {
      current()?.beforeWrite(handle.path, position, source.length);
      handle.write(source, position);
    },
    size: () => handle.size(),
    linkCount: () => handle.linkCount(),
    truncate: (length) => {
      current()?.beforeTruncate(handle.path, length);
      handle.truncate(length);
    },
    sync: () => handle.sync(),
    close: () => handle.close(),
  });
  // Every function delegated by name: `inner` may be a class instance, whose methods a spread drops.
  return {
    // A handle opened to read never mutates: it goes unwrapped, reads pay nothing.
    open: (filePath, mode) => (mode === 'read' ? inner.open(filePath, mode) : pinned(inner.open(filePath, mode))),
    readFile: (filePath, maxBytes) => inner.readFile(filePath, maxBytes),
    // Exclusive creation: never a pinned name.
    writeFile: (filePath, bytes) => inner.writeFile(filePath, bytes),
    rename: (from, to) => {
      current()?.beforeRename(from, to);
      inner.rename(from, to);
    },
    unlink: (filePath) => {
      current()?.beforeRemove(filePath);
      inner.unlink(filePath);
    },
    removeFile: (filePath) => {
      current()?.beforeRemove(filePath);
      return inner.removeFile(filePath);
    },
    list: (directory) => inner.list(directory),
    makeDirectory: (directory, options) => inner.makeDirectory(directory, options),
    exists: (filePath) => inner.exists(filePath),
    modeOf: (filePath) => inner.modeOf(filePath),
    syncDirectory: (directory) => inner.syncDirectory(directory),
    realPath: (directory) => inner.realPath(directory),
    createLockFile: (filePath, bytes) => inner.createLockFile(filePath, bytes),
    readLockFile: (filePath, maxBytes) => inner.readLockFile(filePath, maxBytes),
    removeLockFile: (filePath) => inner.removeLockFile(filePath),
  };
}
