/**
 * Making new data files (docs/format.md §3, §5): the next file id, a fresh salt, the active data key.
 * Active files and compaction outputs both come from here, so every new file gets an id no file of
 * the store ever had (docs/format.md §1.1) and a cipher in 'write' mode bound to that id.
 */
import { randomBytes } from 'node:crypto';
import { FileCipher } from '../crypto/file-cipher.js';
import { JournalCipher } from '../crypto/journal-cipher.js';
import type { KeySet } from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { type AlgorithmId, FileKind, SALT_BYTES } from '../format/constants.js';
import type { FileHandle, FileSystem } from '../io/file-system.js';
import { DataFile, type JournalParts, type WriteCounters } from '../storage/data-file.js';
import { filePath, TEMPORARY_SUFFIX } from './paths.js';

export interface FileFactoryParts {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly provider: CryptoProvider;
  /** The store's key set (its active key changes with rotateDataKey); undefined without encryption. */
  readonly keys: KeySet | undefined;
  readonly algorithm: AlgorithmId;
  readonly databaseId: Uint8Array;
  readonly writeBufferBytes: number;
  readonly counters: WriteCounters;
  /** The MANIFEST's next file id. */
  readonly nextFileId: number;
}

export class FileFactory {
  readonly #parts: FileFactoryParts;
  #nextFileId: number;

  constructor(parts: FileFactoryParts) {
    this.#parts = parts;
    this.#nextFileId = parts.nextFileId;
  }

  /** The id the next new file gets: every id below it has been handed out. */
  get nextFileId(): number {
    return this.#nextFileId;
  }

  /** Files created after the last barrier are on disk but not in the manifest: never reuse their ids. */
  skipPast(highestFileId: number): void {
    this.#nextFileId = Math.max(this.#nextFileId, highestFileId + 1);
  }

  /** A new, empty file under the active data key; `temporary` names it `.tmp` until it is renamed. */
  create(shard: number, temporary: boolean): DataFile {
    const { directory, fileSystem, provider, keys } = this.#parts;
    const fileId = this.#nextFileId++;
    const keyId = keys?.activeKeyId ?? 0;
    const identity = {
      algorithm: this.#parts.algorithm,
      kind: FileKind.data,
      databaseId: this.#parts.databaseId,
      shard,
      fileId,
      keyId,
      salt: new Uint8Array(randomBytes(SALT_BYTES)),
    };
    const cipher = new FileCipher(provider, identity, keys?.dataKey(keyId), 'write');
    const suffix = temporary ? TEMPORARY_SUFFIX : '';
    const names = [filePath(directory, shard, fileId, 'data') + suffix, filePath(directory, shard, fileId, 'tags') + suffix];
    // An active file gets a commit journal (docs/format.md §6A); a compaction output is written whole.
    let journal: JournalParts | undefined;
    if (!temporary) {
      const journalPaths = [filePath(directory, shard, fileId, 'journal'), filePath(directory, shard, fileId, 'journal2')];
      journal = {
        cipher: new JournalCipher(provider, identity, keys?.dataKey(keyId), 0),
        create: (slot) => fileSystem.open(journalPaths[slot]!, 'create'),
        remove: (slot) => {
          try {
            fileSystem.unlink(journalPaths[slot]!);
          } catch {
            // A journal left beside a sealed file is removed by the next open (docs/durability.md §8.1).
          }
        },
      };
    }
    const handles: FileHandle[] = [];
    try {
      for (const name of names) handles.push(fileSystem.open(name, 'create'));
      return DataFile.create(cipher, handles[0]!, handles[1]!, this.#parts.writeBufferBytes, this.#parts.counters, journal);
    } catch (error) {
      // ENOSPC creating the pair or writing its header: nothing refers to these files yet, so they
      // go now (best effort; recovery removes an unlisted half pair too) and no descriptor leaks.
      for (const handle of handles) handle.close();
      cipher.destroy();
      for (const name of names.slice(0, handles.length)) {
        try {
          fileSystem.unlink(name);
        } catch {
          // Left to recovery (docs/durability.md §Recovery).
        }
      }
      throw error;
    }
  }
}
