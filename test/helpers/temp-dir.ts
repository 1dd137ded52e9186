/**
 * Temporary directories of the test suites, and the stores opened in them, removed after the test
 * that made them:
 * - `storeTest`: vitest's `test` with a `tempDir()` fixture; every store registered with
 *   `trackStore` in such a directory is closed before the directory is removed. Per test, so it is
 *   safe with `describe.concurrent`.
 * - `directoriesRemovedAfterEach()` / `storesClosedAfterEach(prefix)`: the same for files whose
 *   tests take no fixture (registers an `afterEach`; call once at the top level of the file).
 * - `temporaryDirectory(prefix, memory)`: one directory and its `cleanup()`, for harnesses.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, test } from 'vitest';

/** Anything with an async close: every collection class. */
interface Closable {
  close(): Promise<void>;
}

/**
 * Where in-process crash tests put their stores: tmpfs (/dev/shm) when there is one — these tests
 * simulate crashes at the FileSystem interface, so the medium does not matter, and tmpfs makes the
 * hundreds of scenarios ~2.5x faster — else the OS temp directory. ARMDB_TEST_TMPDIR overrides.
 */
function scratchRoot(): string {
  const override = process.env['ARMDB_TEST_TMPDIR'];
  if (override !== undefined && override !== '') return override;
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** A fresh directory `armdb-<prefix>-XXXXXX` under the OS temp directory (or tmpfs when `memory`). */
export function makeTempDir(prefix: string, memory = false): string {
  return mkdtempSync(path.join(memory ? scratchRoot() : tmpdir(), `armdb-${prefix}-`));
}

/** A temporary directory (on tmpfs when `memory`, see scratchRoot); `cleanup()` removes it. */
export function temporaryDirectory(prefix: string, memory = true): { readonly path: string; cleanup(): void } {
  const directory = makeTempDir(prefix, memory);
  return { path: directory, cleanup: () => rmSync(directory, { recursive: true, force: true }) };
}

/**
 * For a test file: `directory(prefix)` makes a temporary directory (on tmpfs unless `memory` is
 * false) that is removed after the test that made it. Call once at the top level of the file.
 */
export function directoriesRemovedAfterEach(memory = true): (prefix: string) => string {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  return (prefix) => {
    const made = temporaryDirectory(prefix, memory);
    cleanups.push(made.cleanup);
    return made.path;
  };
}

/**
 * For a test file: `tempDir()` makes a directory `armdb-<prefix>-…`, `track(store)` registers a store;
 * after each test every tracked store is closed, then every directory removed. Call once at the top level.
 */
export function storesClosedAfterEach(prefix: string): { tempDir(): string; track<C extends Closable>(store: C): C } {
  const directories: string[] = [];
  const opened: Closable[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close().catch(() => undefined);
    for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
  });
  return {
    tempDir() {
      const directory = makeTempDir(prefix);
      directories.push(directory);
      return directory;
    },
    track(store) {
      opened.push(store);
      return store;
    },
  };
}

/** Stores registered with trackStore, by directory, so that a directory's cleanup closes them first. */
const storesByDirectory = new Map<string, Set<Closable>>();

/** Registers a store opened in `dir` (any collection class) to be closed by the `tempDir` cleanup. */
export function trackStore<T extends Closable>(dir: string, db: T): T {
  const root = path.resolve(dir);
  let stores = storesByDirectory.get(root);
  if (stores === undefined) {
    stores = new Set();
    storesByDirectory.set(root, stores);
  }
  stores.add(db);
  return db;
}

/** Closes every store registered in (or below) `dir`, then removes `dir`. */
export async function removeTempDir(dir: string): Promise<void> {
  const root = path.resolve(dir);
  for (const [directory, stores] of storesByDirectory) {
    if (directory !== root && !directory.startsWith(root + path.sep)) continue;
    storesByDirectory.delete(directory);
    for (const db of stores) await db.close().catch(() => undefined);
  }
  await rm(root, { recursive: true, force: true });
}

/** `test` with a `tempDir()` fixture: fresh directories under os.tmpdir(), removed after the test. */
export const storeTest = test.extend<{ tempDir: () => string }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from this destructuring, and there are none
  tempDir: async ({}, use) => {
    const made: string[] = [];
    let finished = false;
    await use(() => {
      // Work left running after its test (an interrupted fast-check run) must not leave directories behind.
      if (finished) throw new Error('tempDir() called after its test finished');
      const dir = makeTempDir('test');
      made.push(dir);
      return dir;
    });
    finished = true;
    for (const dir of made) await removeTempDir(dir);
  },
});
