/**
 * The one interface through which the engine touches files. Reads and writes are synchronous
 * (`get` is synchronous by contract, and a put that fills the write buffer writes complete pages in
 * place); fsyncs are asynchronous so a durability barrier never blocks the event loop.
 *
 * Nothing inside a store directory is followed or trusted for its kind (docs/security-model.md
 * §Hostile directory entries): opens never follow a symbolic link and accept only regular files, new
 * files are created exclusively, and anything else is ARMDB_INTEGRITY, never a hang or a raw errno.
 *
 * Tests swap in a fault-injecting implementation (test/crash/fault-fs.ts).
 */

/** An open file. Positions are absolute byte offsets. */
export interface FileHandle {
  readonly path: string;
  /** Reads up to `target.length` bytes at `position`; returns how many were read (short at end of file). */
  read(target: Uint8Array, position: number): number;
  /** Writes all of `source` at `position`. */
  write(source: Uint8Array, position: number): void;
  /** Current length in bytes. */
  size(): number;
  /**
   * How many names (hard links) the file has. 1 means the file exists only under this store's name
   * for it, so cutting it cannot change anything outside the store.
   */
  linkCount(): number;
  truncate(length: number): void;
  /** fsync: data and metadata durable. Never retried by the engine after a failure. */
  sync(): Promise<void>;
  close(): void;
}

export type OpenMode =
  /** Existing regular file, read only. */
  | 'read'
  /** Existing regular file, read and write. */
  | 'readWrite'
  /** New file (must not exist, not even as a symbolic link), read and write, mode 0600. */
  | 'create';

export interface FileSystem {
  /**
   * Opens `path`. A symbolic link, directory, FIFO, device or socket at `path` is ARMDB_INTEGRITY:
   * it is never followed, and opening it never blocks.
   */
  open(path: string, mode: OpenMode): FileHandle;
  /**
   * Whole file, or undefined if nothing has that name. A file larger than `maxBytes` is
   * ARMDB_INTEGRITY, unread; so is anything but a regular file (see {@link open}). What is returned
   * is what was read, never more than `maxBytes`, whatever the file's reported size.
   */
  readFile(path: string, maxBytes?: number): Uint8Array | undefined;
  /**
   * Creates `path`, which must not exist (O_CREAT|O_EXCL, never through a symbolic link), writes
   * `bytes` (mode 0600) and fsyncs it. Callers write under a fresh temporary name and rename it
   * into place (docs/format.md §7.6).
   */
  writeFile(path: string, bytes: Uint8Array): Promise<void>;
  rename(from: string, to: string): void;
  /** Removes the name `path` (a link is removed, not what it points to). A directory is ARMDB_INTEGRITY. */
  unlink(path: string): void;
  /**
   * Unlinks `path` off the event loop. Freeing the blocks of a large file can hold the calling thread
   * for a hundred milliseconds and more: compaction retires whole data files with this.
   */
  removeFile(path: string): Promise<void>;
  /** Names in a directory; empty if it does not exist. A file where a directory should be is ARMDB_INTEGRITY. */
  list(directory: string): string[];
  /**
   * Creates a directory (and parents) with mode 0700 if missing. An existing entry that is not a
   * directory is ARMDB_INTEGRITY, and so is a symbolic link unless `followLink` (only the store's own
   * directory, which the caller named, may be one).
   */
  makeDirectory(directory: string, options?: { readonly followLink?: boolean }): void;
  /** Whether anything has the name `path`; a symbolic link counts, whether or not its target exists. */
  exists(path: string): boolean;
  /** Mode bits (permissions) of the regular file `path`, or undefined if missing; any other kind of entry is ARMDB_INTEGRITY. */
  modeOf(path: string): number | undefined;
  /** fsync of a directory, so that created, renamed and removed entries are durable. */
  syncDirectory(directory: string): Promise<void>;

  // The directory lock (src/io/lock.ts, docs/format.md §1.2) and nothing else uses the four below. Its
  // file holds no data: it is never fsynced, and a crash that loses it loses no lock a live process holds.

  /** The canonical absolute path of the existing directory `directory`, symbolic links resolved. */
  realPath(directory: string): string;
  /**
   * Creates the lock file `path` holding `bytes` (mode 0600) in one atomic step: written under a
   * private name `<path>.<pid>.<random>`, hard-linked to `path`, and the private name removed, so
   * `path` never exists without its contents. If anything already has the name, throws an error
   * with `code` `'EEXIST'` and leaves the name as it was.
   */
  createLockFile(path: string, bytes: Uint8Array): void;
  /**
   * Up to `maxBytes` from the start of the lock file `path`; undefined if it cannot be opened (it is
   * missing, or unreadable). A symbolic link, FIFO, directory or device at `path` is ARMDB_INTEGRITY:
   * never followed, read, waited on or removed.
   */
  readLockFile(path: string, maxBytes: number): Uint8Array | undefined;
  /** Removes the lock file `path`; nothing if it is already gone. */
  removeLockFile(path: string): void;
}
