/** The real {@link FileSystem} over node:fs. Files are created 0600 and directories 0700 whatever the umask. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { integrityError } from '../errors.js';
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';

export const FILE_MODE = 0o600;
export const DIRECTORY_MODE = 0o700;

function fsyncAsync(descriptor: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(descriptor, (error) => (error ? reject(error) : resolve())));
}

class NodeFileHandle implements FileHandle {
  readonly path: string;
  #descriptor: number;

  constructor(filePath: string, descriptor: number) {
    this.path = filePath;
    this.#descriptor = descriptor;
  }

  read(target: Uint8Array, position: number): number {
    let total = 0;
    while (total < target.length) {
      const count = fs.readSync(this.#descriptor, target, total, target.length - total, position + total);
      if (count === 0) break;
      total += count;
    }
    return total;
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

const OPEN_FLAGS: Record<OpenMode, string> = { read: 'r', readWrite: 'r+', create: 'wx+' };

export const nodeFileSystem: FileSystem = {
  open(filePath, mode) {
    const descriptor = fs.openSync(filePath, OPEN_FLAGS[mode], FILE_MODE);
    // The umask may have narrowed or (umask 000) not narrowed the mode: set it explicitly.
    if (mode === 'create') fs.fchmodSync(descriptor, FILE_MODE);
    return new NodeFileHandle(filePath, descriptor);
  },

  readFile(filePath, maxBytes) {
    try {
      if (maxBytes !== undefined && fs.statSync(filePath).size > maxBytes) {
        throw integrityError(`${path.basename(filePath)} is larger than any valid one (${maxBytes} bytes)`);
      }
      return new Uint8Array(fs.readFileSync(filePath));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  },

  async writeFile(filePath, bytes) {
    const descriptor = fs.openSync(filePath, 'w', FILE_MODE);
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
    fs.unlinkSync(filePath);
  },

  async removeFile(filePath) {
    await fs.promises.unlink(filePath);
  },

  list(directory) {
    try {
      return fs.readdirSync(directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  },

  makeDirectory(directory) {
    const missing: string[] = [];
    for (let current = path.resolve(directory); !fs.existsSync(current); current = path.dirname(current)) missing.unshift(current);
    for (const created of missing) {
      fs.mkdirSync(created, { mode: DIRECTORY_MODE });
      fs.chmodSync(created, DIRECTORY_MODE);
    }
  },

  exists(filePath) {
    return fs.existsSync(filePath);
  },

  modeOf(filePath) {
    try {
      return fs.statSync(filePath).mode & 0o777;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  },

  async syncDirectory(directory) {
    const descriptor = fs.openSync(directory, 'r');
    try {
      await fsyncAsync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
  },
};
