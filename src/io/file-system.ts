/**
 * The one interface through which the engine touches files. Reads and writes are synchronous
 * (`get` is synchronous by contract, and a put that fills the write buffer writes complete pages in
 * place); fsyncs are asynchronous so a durability barrier never blocks the event loop.
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
  truncate(length: number): void;
  /** fsync: data and metadata durable. Never retried by the engine after a failure. */
  sync(): Promise<void>;
  close(): void;
}

export type OpenMode =
  /** Existing file, read only. */
  | 'read'
  /** Existing file, read and write. */
  | 'readWrite'
  /** New file (must not exist), read and write, mode 0600. */
  | 'create';

export interface FileSystem {
  open(path: string, mode: OpenMode): FileHandle;
  /** Whole file, or undefined if it does not exist. A file larger than `maxBytes` is ARMDB_INTEGRITY, unread. */
  readFile(path: string, maxBytes?: number): Uint8Array | undefined;
  /** Creates or replaces `path` with `bytes` (mode 0600) and fsyncs it; not atomic by itself. */
  writeFile(path: string, bytes: Uint8Array): Promise<void>;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /**
   * Unlinks `path` off the event loop. Freeing the blocks of a large file can hold the calling thread
   * for a hundred milliseconds and more: compaction retires whole data files with this.
   */
  removeFile(path: string): Promise<void>;
  /** Names in a directory; empty if it does not exist. */
  list(directory: string): string[];
  /** Creates a directory (and parents) with mode 0700 if missing. */
  makeDirectory(directory: string): void;
  exists(path: string): boolean;
  /** Mode bits of a file (permissions), or undefined if missing. */
  modeOf(path: string): number | undefined;
  /** fsync of a directory, so that created, renamed and removed entries are durable. */
  syncDirectory(directory: string): Promise<void>;
}
