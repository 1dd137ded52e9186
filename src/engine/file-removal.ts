/**
 * Removing a data file from disk: its data file, its tag file and (for files that were sealed) its
 * hint, in that order. Every removal of the engine goes through here. A file that cannot be deleted
 * (EIO from a failing device) is remembered with its data key: crypto-shredding keeps such a key until
 * the file is gone, or the next open would find a file it can no longer authenticate.
 */
import type { Channel } from 'node:diagnostics_channel';
import type { FileSystem } from '../io/file-system.js';
import { type FileExtension, filePath, TEMPORARY_SUFFIX } from './paths.js';

/** Which file to remove: its place and the data key it was written under. */
export interface RemovedFile {
  readonly shard: number;
  readonly fileId: number;
  readonly keyId: number;
}

/** The names of a data file's parts, data first: `withHint` adds the hint. */
export function partNames(directory: string, file: Pick<RemovedFile, 'shard' | 'fileId'>, withHint: boolean): string[] {
  const extensions: FileExtension[] = withHint ? ['data', 'tags', 'hint', 'journal', 'journal2'] : ['data', 'tags'];
  return extensions.map((extension) => filePath(directory, file.shard, file.fileId, extension));
}

export class FileRemover {
  readonly #fileSystem: FileSystem;
  readonly #directory: string;
  /** Names that should be gone but could not be deleted, with their data key. */
  readonly #undeleted = new Map<string, number>();

  constructor(fileSystem: FileSystem, directory: string) {
    this.#fileSystem = fileSystem;
    this.#directory = directory;
  }

  /**
   * Deletes, best effort, the data and tag file of a file nothing refers to (with `temporary`, each
   * under its `.tmp` name as well). A failure is remembered and published on `diagnostics`, not thrown.
   */
  removeUnused(file: RemovedFile, diagnostics: Channel, options: { temporary: boolean }): void {
    for (const name of partNames(this.#directory, file, false)) {
      this.#removeOrRemember(name, file.keyId, diagnostics);
      if (options.temporary) this.#removeOrRemember(name + TEMPORARY_SUFFIX, file.keyId, diagnostics);
    }
  }

  /**
   * Deletes a retired file's data, tag and hint file, off the event loop. The MANIFEST without it is
   * durable: a part that cannot be deleted now is a leftover that the next open deletes.
   */
  async removeRetired(file: RemovedFile, diagnostics: Channel): Promise<void> {
    for (const name of partNames(this.#directory, file, true)) {
      try {
        if (this.#fileSystem.exists(name)) await this.#fileSystem.removeFile(name);
      } catch (error) {
        this.#undeleted.set(name, file.keyId);
        if (diagnostics.hasSubscribers) diagnostics.publish({ directory: this.#directory, error });
      }
    }
  }

  /** Tries every remembered file once more; returns the data keys of those still on disk. */
  retryUndeleted(diagnostics: Channel): Set<number> {
    const stillHeld = new Set<number>();
    for (const [name, keyId] of [...this.#undeleted]) {
      this.#removeOrRemember(name, keyId, diagnostics);
      if (this.#undeleted.has(name)) stillHeld.add(keyId);
    }
    return stillHeld;
  }

  #removeOrRemember(name: string, keyId: number, diagnostics: Channel): void {
    try {
      if (this.#fileSystem.exists(name)) this.#fileSystem.unlink(name);
      this.#undeleted.delete(name);
    } catch (error) {
      this.#undeleted.set(name, keyId);
      if (diagnostics.hasSubscribers) diagnostics.publish({ directory: this.#directory, error });
    }
  }
}

/**
 * Recovery's removal of a file it will not keep: each part that exists is unlinked at once (a failure
 * fails the open) and listed in `removed` with the reason.
 */
export function removeParts(fileSystem: FileSystem, names: readonly string[], reason: string, removed: string[]): void {
  for (const name of names) {
    if (!fileSystem.exists(name)) continue;
    fileSystem.unlink(name);
    removed.push(`${name} (${reason})`);
  }
}
