/** The real {@link FileSystem} over node:fs. Files are created 0600 and directories 0700 whatever the umask. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { integrityError } from '../errors.js';
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';

export const FILE_MODE = 0o600;
export const DIRECTORY_MODE = 0o700;

// Windows has neither flag: there, links and FIFOs are not files a store directory can hold by accident.
const NO_FOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const NON_BLOCKING = fs.constants.O_NONBLOCK ?? 0;

/**
 * Open flags (docs/security-model.md §Hostile directory entries). O_NOFOLLOW: a symbolic link planted
 * under a store name fails instead of leading out of the store. O_NONBLOCK: opening a FIFO returns at
 * once (and is then refused as not a regular file) instead of waiting for a writer forever; on a
 * regular file it changes nothing. O_EXCL: a new file is new, never something already there.
 */
const OPEN_FLAGS: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY | NO_FOLLOW | NON_BLOCKING,
  readWrite: fs.constants.O_RDWR | NO_FOLLOW | NON_BLOCKING,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | NO_FOLLOW,
};
const CREATE_WRITE_ONLY = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NO_FOLLOW;

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function kindOf(stats: fs.Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notARegularFile(filePath: string, kind: string, cause?: unknown): Error {
  return integrityError(`${path.basename(filePath)} is ${kind}, not a regular file; armdb neither follows nor opens it`, cause, {
    path: filePath,
  });
}

/** Opens `filePath` with `flags`; the kind errors of a hostile entry become ARMDB_INTEGRITY, others stay as they are. */
function openDescriptor(filePath: string, flags: number): number {
  let descriptor: number;
  try {
    descriptor = fs.openSync(filePath, flags, FILE_MODE);
  } catch (error) {
    // ELOOP (Linux, macOS) or EMLINK (FreeBSD): O_NOFOLLOW met a symbolic link. EISDIR: a directory opened for writing.
    const code = errorCode(error);
    if (code === 'ELOOP' || code === 'EMLINK') throw notARegularFile(filePath, 'a symbolic link', error);
    if (code === 'EISDIR') throw notARegularFile(filePath, 'a directory', error);
    if (code === 'ENOTDIR')
      throw integrityError(`the directory of ${path.basename(filePath)} is not a directory`, error, { path: filePath });
    throw error;
  }
  let stats: fs.Stats;
  try {
    stats = fs.fstatSync(descriptor);
  } catch (error) {
    fs.closeSync(descriptor);
    throw error;
  }
  if (!stats.isFile()) {
    fs.closeSync(descriptor);
    throw notARegularFile(filePath, kindOf(stats));
  }
  return descriptor;
}

/** lstat, or undefined if nothing has that name. */
function entryOf(filePath: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(filePath);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function fsyncAsync(descriptor: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(descriptor, (error) => (error ? reject(error) : resolve())));
}

/** Reads into `target` from `position` until it is full or the file ends; the bytes actually read. */
function readFully(descriptor: number, target: Uint8Array, position: number): number {
  let total = 0;
  while (total < target.length) {
    const count = fs.readSync(descriptor, target, total, target.length - total, position + total);
    if (count === 0) break;
    total += count;
  }
  return total;
}

class NodeFileHandle implements FileHandle {
  readonly path: string;
  #descriptor: number;

  constructor(filePath: string, descriptor: number) {
    this.path = filePath;
    this.#descriptor = descriptor;
  }

  read(target: Uint8Array, position: number): number {
    return readFully(this.#descriptor, target, position);
  }

  write(source: Uint8Array, position: number): void {
    let total = 0;
    while (total < source.length) {
      total += fs.writeSync(this.#descriptor, source, total, source.length - total, position + total);
    }
  }

  size(): number {
    return fs.fstatSync(this.#descriptor).size;
  }

  linkCount(): number {
    return fs.fstatSync(this.#descriptor).nlink;
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.#descriptor, length);
  }

  sync(): Promise<void> {
    return fsyncAsync(this.#descriptor);
  }

  close(): void {
    if (this.#descriptor < 0) return;
    const descriptor = this.#descriptor;
    this.#descriptor = -1;
    fs.closeSync(descriptor);
  }
}

export const nodeFileSystem: FileSystem = {
  open(filePath, mode) {
    const descriptor = openDescriptor(filePath, OPEN_FLAGS[mode]);
    // The umask may have narrowed or (umask 000) not narrowed the mode: set it explicitly.
    if (mode === 'create') fs.fchmodSync(descriptor, FILE_MODE);
    return new NodeFileHandle(filePath, descriptor);
  },

  readFile(filePath, maxBytes) {
    let descriptor: number;
    try {
      descriptor = openDescriptor(filePath, OPEN_FLAGS.read);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const size = fs.fstatSync(descriptor).size;
      if (maxBytes !== undefined && size > maxBytes) {
        throw integrityError(`${path.basename(filePath)} is larger than any valid one (${maxBytes} bytes)`, undefined, { path: filePath });
      }
      // One byte more than expected tells a file that grew since fstat: the bound is on what was read.
      const buffer = new Uint8Array(size + 1);
      const read = readFully(descriptor, buffer, 0);
      if (maxBytes !== undefined && read > maxBytes) {
        throw integrityError(`${path.basename(filePath)} is larger than any valid one (${maxBytes} bytes)`, undefined, { path: filePath });
      }
      return buffer.subarray(0, read);
    } finally {
      fs.closeSync(descriptor);
    }
  },

  async writeFile(filePath, bytes) {
    const descriptor = openDescriptor(filePath, CREATE_WRITE_ONLY);
    try {
      fs.fchmodSync(descriptor, FILE_MODE);
      let total = 0;
      while (total < bytes.length) total += fs.writeSync(descriptor, bytes, total, bytes.length - total, total);
      await fsyncAsync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
  },

  rename(from, to) {
    fs.renameSync(from, to);
  },

  unlink(filePath) {
    try {
      fs.unlinkSync(filePath);
    } catch (error) {
      // EISDIR (Linux) or EPERM (macOS): a directory where a file of the store should be.
      if (entryOf(filePath)?.isDirectory() === true) throw notARegularFile(filePath, 'a directory', error);
      throw error;
    }
  },

  async removeFile(filePath) {
    try {
      await fs.promises.unlink(filePath);
    } catch (error) {
      if (entryOf(filePath)?.isDirectory() === true) throw notARegularFile(filePath, 'a directory', error);
      throw error;
    }
  },

  list(directory) {
    try {
      return fs.readdirSync(directory);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT') return [];
      if (code === 'ENOTDIR') throw integrityError(`${path.basename(directory)} is not a directory`, error, { path: directory });
      throw error;
    }
  },

  makeDirectory(directory, options) {
    const resolved = path.resolve(directory);
    const existing = entryOf(resolved);
    if (existing !== undefined) {
      let target = existing;
      if (existing.isSymbolicLink()) {
        if (options?.followLink !== true)
          throw integrityError(
            `${path.basename(resolved)} is a symbolic link, not a directory; armdb does not follow links inside a store`,
            undefined,
            { path: resolved },
          );
        const followed = statOrUndefined(resolved);
        if (followed === undefined)
          throw integrityError(`${path.basename(resolved)} is a symbolic link to nothing`, undefined, { path: resolved });
        target = followed;
      }
      if (!target.isDirectory())
        throw integrityError(`${path.basename(resolved)} is ${kindOf(target)}, not a directory`, undefined, { path: resolved });
      return;
    }
    const missing: string[] = [];
    for (let current = resolved; !fs.existsSync(current); current = path.dirname(current)) missing.unshift(current);
    for (const created of missing) {
      fs.mkdirSync(created, { mode: DIRECTORY_MODE });
      fs.chmodSync(created, DIRECTORY_MODE);
    }
  },

  exists(filePath) {
    return entryOf(filePath) !== undefined;
  },

  modeOf(filePath) {
    const entry = entryOf(filePath);
    if (entry === undefined) return undefined;
    if (!entry.isFile()) throw notARegularFile(filePath, kindOf(entry));
    return entry.mode & 0o777;
  },

  async syncDirectory(directory) {
    const descriptor = fs.openSync(directory, 'r');
    try {
      await fsyncAsync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
  },

  realPath(directory) {
    return fs.realpathSync(directory);
  },

  createLockFile(filePath, bytes) {
    // link() is atomic and fails with EEXIST if the name is taken: another process never sees the
    // lock file half written, and so never takes a lock in the making for a stale one.
    const pending = `${filePath}.${process.pid}.${randomBytes(6).toString('hex')}`;
    fs.writeFileSync(pending, bytes, { mode: FILE_MODE, flag: 'wx' });
    try {
      fs.linkSync(pending, filePath);
    } finally {
      fs.rmSync(pending, { force: true });
    }
  },

  readLockFile(filePath, maxBytes) {
    let descriptor: number;
    try {
      descriptor = fs.openSync(filePath, OPEN_FLAGS.read);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ELOOP' || code === 'EMLINK') throw notALockFile(filePath, 'a symbolic link', error);
      return undefined;
    }
    try {
      const stats = fs.fstatSync(descriptor);
      if (!stats.isFile()) throw notALockFile(filePath, stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : 'a special file');
      const buffer = new Uint8Array(maxBytes);
      return buffer.subarray(0, readFully(descriptor, buffer, 0));
    } finally {
      fs.closeSync(descriptor);
    }
  },

  removeLockFile(filePath) {
    fs.rmSync(filePath, { force: true });
  },
};

function notALockFile(filePath: string, kind: string, cause?: unknown): Error {
  return integrityError(`${path.basename(filePath)} is ${kind}, not a regular file; remove it once no process uses the directory`, cause, {
    path: filePath,
  });
}

/** stat (following links), or undefined if the name or its target is missing. */
function statOrUndefined(filePath: string): fs.Stats | undefined {
  try {
    return fs.statSync(filePath);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}
