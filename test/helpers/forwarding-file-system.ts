/**
 * The base of the test file systems that watch or steer a few operations of the real one: every
 * method forwards to `inner` (the node file system unless told), so a test overrides only what it
 * is about. `wrapHandle` sees every handle `open` returns; a test that changes what a handle does
 * overrides it and returns a {@link ForwardingFileHandle} subclass or {@link forwardHandle} result.
 *
 * ```ts
 * class CountingFileSystem extends ForwardingFileSystem {
 *   renames = 0;
 *   override rename(from: string, to: string): void {
 *     this.renames++;
 *     super.rename(from, to);
 *   }
 * }
 * ```
 *
 * The crash tests' fault-injecting and power-cut file systems (test/crash/fault-fs.ts,
 * test/crash/power-cut-fs.ts) are not built on it: they gate and count every operation.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import type { FileHandle, FileSystem, OpenMode } from '../../src/io/file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';

/** A handle that forwards every method to `inner`; subclasses override what they watch. */
export class ForwardingFileHandle implements FileHandle {
  readonly inner: FileHandle;

  constructor(inner: FileHandle) {
    this.inner = inner;
  }

  get path(): string {
    return this.inner.path;
  }
  read(target: Uint8Array, position: number): number {
    return this.inner.read(target, position);
  }
  write(source: Uint8Array, position: number): void {
    this.inner.write(source, position);
  }
  size(): number {
    return this.inner.size();
  }
  linkCount(): number {
    return this.inner.linkCount();
  }
  truncate(length: number): void {
    this.inner.truncate(length);
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  close(): void {
    this.inner.close();
  }
}

/** `inner` with the methods in `overrides` replaced (each may call `inner` itself). */
export function forwardHandle(inner: FileHandle, overrides: Partial<Omit<FileHandle, 'path'>>): FileHandle {
  const handle = new ForwardingFileHandle(inner);
  return Object.assign(handle, overrides);
}

/** A file system that forwards every method to `inner`; subclasses override what they watch. */
export class ForwardingFileSystem implements FileSystem {
  readonly inner: FileSystem;

  constructor(inner: FileSystem = nodeFileSystem) {
    this.inner = inner;
  }

  /** Every handle `open` returns passes through here (unchanged by default). */
  protected wrapHandle(handle: FileHandle, _filePath: string, _mode: OpenMode): FileHandle {
    return handle;
  }

  open(filePath: string, mode: OpenMode): FileHandle {
    return this.wrapHandle(this.inner.open(filePath, mode), filePath, mode);
  }
  readFile(filePath: string, maxBytes?: number): Uint8Array | undefined {
    return this.inner.readFile(filePath, maxBytes);
  }
  writeFile(filePath: string, bytes: Uint8Array): Promise<void> {
    return this.inner.writeFile(filePath, bytes);
  }
  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }
  unlink(filePath: string): void {
    this.inner.unlink(filePath);
  }
  removeFile(filePath: string): Promise<void> {
    return this.inner.removeFile(filePath);
  }
  list(directory: string): string[] {
    return this.inner.list(directory);
  }
  makeDirectory(directory: string, options?: { readonly followLink?: boolean }): void {
    this.inner.makeDirectory(directory, options);
  }
  exists(filePath: string): boolean {
    return this.inner.exists(filePath);
  }
  modeOf(filePath: string): number | undefined {
    return this.inner.modeOf(filePath);
  }
  syncDirectory(directory: string): Promise<void> {
    return this.inner.syncDirectory(directory);
  }
  realPath(directory: string): string {
    return this.inner.realPath(directory);
  }
  createLockFile(filePath: string, bytes: Uint8Array): void {
    this.inner.createLockFile(filePath, bytes);
  }
  readLockFile(filePath: string, maxBytes: number): Uint8Array | undefined {
    return this.inner.readLockFile(filePath, maxBytes);
  }
  removeLockFile(filePath: string): void {
    this.inner.removeLockFile(filePath);
  }
}
