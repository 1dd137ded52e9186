/**
 * A durability barrier and a compaction that overlap (issue: acknowledged writes lost under
 * compaction). The interleaving is forced through the file system, not by timing:
 *
 * 1. compaction creates its first output file: the test then writes one record and calls `sync()`
 *    (barrier B1), whose data and tag fsyncs the file system holds back;
 * 2. while B1 waits, the keys of the second compaction input are overwritten (the new records sit in
 *    the write buffer, after B1's snapshot), so compaction skips their old records;
 * 3. compaction writes, syncs and renames its output and fsyncs the shard directory; one turn of the
 *    event loop later (compaction has adopted its output by then) B1's fsyncs are released;
 * 4. right after B1 writes its MANIFEST (appends its record, or renames a new one into place) the
 *    directory is copied: what a kill at that instant leaves on disk.
 *
 * Opening the copy must give every overwritten key its old value or its new one. A MANIFEST that
 * listed the compaction output and dropped its inputs while the new records were not durable yet
 * made recovery delete the inputs as leftovers: the keys were gone.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VarMap } from '../../src/collections/var-map.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import type { OpenOptions } from '../../src/config.js';
import { setCrashPointHandler } from '../../src/engine/crash-points.js';
import type { EngineHooks } from '../../src/internal/engine-hooks.js';
import type { FileHandle, OpenMode } from '../../src/io/file-system.js';
import { ForwardingFileSystem, forwardHandle } from '../helpers/forwarding-file-system.js';
import { patternBytes, testKey } from '../helpers/store.js';

const made: string[] = [];
afterEach(() => {
  setCrashPointHandler(undefined);
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function temporary(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

const options: OpenOptions = {
  keySize: 16,
  encryption: { key: testKey(7) },
  shards: 1,
  hints: false,
  autoCompact: false,
  syncIntervalMs: 0,
  writeBufferBytes: 64 * 1024,
};

function keyOf(index: number): Uint8Array {
  const key = new Uint8Array(16);
  new DataView(key.buffer).setUint32(12, index);
  key[0] = 0x4b;
  return key;
}

const oldValue = (index: number): Uint8Array => patternBytes(100, index);
const newValue = (index: number): Uint8Array => patternBytes(100, 100_000 + index);

/** Keys 0..99 live in file 1, keys 100..199 in file 2; each file also holds 60 overwritten values (dead bytes). */
async function twoCompactableFiles(dir: string): Promise<void> {
  for (const first of [0, 100]) {
    const db = await VarMap.open(dir, options);
    for (let index = first; index < first + 100; index++) db.put(keyOf(index), patternBytes(100, 50_000 + index));
    for (let index = first; index < first + 100; index++) db.put(keyOf(index), oldValue(index));
    await db.close();
  }
}

/** The real file system, with the hold, release and copy of the scenario above. */
class InterleavingFileSystem extends ForwardingFileSystem {
  onFirstOutput: (() => void) | undefined;
  #holding = false;
  #held: (() => void)[] = [];
  #released = false;
  #outputRenamed = false;
  imageOfFirstManifest: string | undefined;
  readonly #imageDirectory: string;
  readonly #storeDirectory: string;

  constructor(storeDirectory: string, imageDirectory: string) {
    super();
    this.#storeDirectory = storeDirectory;
    this.#imageDirectory = imageDirectory;
  }

  hold(): void {
    this.#holding = true;
  }

  protected override wrapHandle(handle: FileHandle, filePath: string, mode: OpenMode): FileHandle {
    if (mode === 'create' && filePath.endsWith('.data.tmp') && this.onFirstOutput !== undefined) {
      const callback = this.onFirstOutput;
      this.onFirstOutput = undefined;
      // After the synchronous compaction step that created the output, before its next slice.
      queueMicrotask(callback);
    }
    if (filePath.endsWith('.tmp')) return handle;
    return forwardHandle(handle, {
      write: (source, position) => {
        handle.write(source, position);
        // A barrier's append to the MANIFEST's log (docs/format.md §7.7): what a kill right after it leaves.
        if (path.basename(filePath) === 'MANIFEST') this.#captureFirstManifest();
      },
      sync: () => {
        if (!this.#holding) return handle.sync();
        return new Promise<void>((resolve, reject) => this.#held.push(() => handle.sync().then(resolve, reject)));
      },
    });
  }

  override rename(from: string, to: string): void {
    super.rename(from, to);
    if (this.#holding && from.endsWith('.data.tmp')) this.#outputRenamed = true;
    if (path.basename(to) === 'MANIFEST') this.#captureFirstManifest();
  }
  /** The first MANIFEST B1 writes (appended or renamed into place): what a kill right after it leaves behind (the process's own lock aside). */
  #captureFirstManifest(): void {
    if (!this.#released || this.imageOfFirstManifest !== undefined) return;
    cpSync(this.#storeDirectory, this.#imageDirectory, { recursive: true, filter: (source) => path.basename(source) !== 'LOCK' });
    this.imageOfFirstManifest = this.#imageDirectory;
  }
  override async syncDirectory(directory: string): Promise<void> {
    await super.syncDirectory(directory);
    // B1's own first round may fsync a shard directory too (its commit journal is a new file there):
    // only the fsync after compaction renamed its output is compaction's.
    if (this.#holding && this.#outputRenamed && path.basename(directory).startsWith('shard-')) {
      // Compaction's directory fsync is done: it adopts its output in the microtasks that follow,
      // so B1 resumes only after that.
      this.#holding = false;
      setImmediate(() => {
        this.#released = true;
        for (const release of this.#held.splice(0)) release();
      });
    }
  }
}

describe('a barrier overlapping a compaction', () => {
  it('never writes a MANIFEST that lists a file set newer than the data it made durable (kill image after the MANIFEST write)', async () => {
    const dir = temporary('armdb-barrier-');
    const image = path.join(temporary('armdb-barrier-image-'), 'store');
    await twoCompactableFiles(dir);
    const fileSystem = new InterleavingFileSystem(dir, image);
    const hooks: EngineHooks = { fileSystem };
    const db = await VarMap.open(dir, withEngineHooks({ ...options }, hooks));
    let firstBarrier: Promise<void> | undefined;
    const points: string[] = [];
    setCrashPointHandler((point) => points.push(point));
    let heldFrom = -1;
    fileSystem.onFirstOutput = () => {
      db.put(keyOf(1000), patternBytes(10, 1000));
      fileSystem.hold();
      heldFrom = points.length;
      firstBarrier = db.sync();
      for (let index = 100; index < 200; index++) db.put(keyOf(index), newValue(index));
    };
    const report = await db.compact();
    await firstBarrier;
    expect(report.filesIn).toBe(2);
    expect(fileSystem.imageOfFirstManifest).toBeDefined();
    // The interleaving the test is about happened: compaction adopted its output after B1 took its
    // snapshot and before B1's fsyncs were done.
    const afterHold = points.slice(heldFrom);
    const snapshot = afterHold.indexOf('barrier:snapshot-taken');
    const adopted = afterHold.indexOf('compaction:adopted');
    const synced = afterHold.indexOf('barrier:files-synced');
    expect(snapshot).toBe(0);
    expect(adopted).toBeGreaterThan(snapshot);
    expect(synced).toBeGreaterThan(adopted);
    await db.close();

    const recovered = await VarMap.open(image, options);
    try {
      const lost: number[] = [];
      for (let index = 0; index < 200; index++) {
        const value = recovered.get(keyOf(index));
        const expected = index < 100 ? [oldValue(index)] : [oldValue(index), newValue(index)];
        if (value === undefined || !expected.some((candidate) => Buffer.compare(candidate, value) === 0)) lost.push(index);
      }
      expect(lost).toEqual([]);
      expect((await recovered.verify()).ok).toBe(true);
    } finally {
      await recovered.close();
    }
    // The store itself, after everything settled, holds the new values.
    const reopened = await VarMap.open(dir, options);
    try {
      for (let index = 100; index < 200; index++) expect(reopened.get(keyOf(index))).toEqual(newValue(index));
    } finally {
      await reopened.close();
    }
  });
});
