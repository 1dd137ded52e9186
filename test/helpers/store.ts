/**
 * Shared helpers for store-level tests:
 * - `storeTest`: vitest's `test` with a `tempDir()` fixture that makes a fresh directory under
 *   os.tmpdir(); after the test every store opened in it through `openVarMap` is closed and the
 *   directory is removed. Per test, so it is safe with `describe.concurrent`.
 * - `testKey(seed)`: a deterministic 32-byte key.
 * - `openVarMap(dir, config, extra?)`: opens a VarMap with a configuration object
 *   (`syncIntervalMs: 0` unless `extra` says otherwise, fast scrypt for passphrases).
 * - byte arrays compare by content in `toEqual`, whatever their class (Buffer or Uint8Array).
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { VarMap, VarTree, type CipherName, type EncryptionOption, type OpenOptions } from '../../src/index.js';

export type EncryptionKind = 'none' | 'key' | 'passphrase';

/** The dimensions of the configuration matrix a behavioural suite runs over. */
export interface StoreConfig {
  /** The class under test: the byte-valued collections share the behavioural suite. Default VarMap. */
  readonly collection?: 'VarMap' | 'VarTree';
  readonly shards: number;
  readonly cacheBytes: number;
  readonly cipher: CipherName;
  readonly encryption: EncryptionKind;
}

export const PASSPHRASE = 'correct horse';
/** Key bytes of every store opened through {@link openVarMap} unless `extra` says otherwise. */
export const KEY_SIZE = 16;

/** A deterministic 32-byte key; different seeds give different keys. */
export function testKey(seed = 1): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`armdb test key ${seed}`).digest());
}

/** The `encryption` option of a configuration (scryptLogN 10: fast, for tests only). */
export function encryptionOption(kind: EncryptionKind): EncryptionOption {
  switch (kind) {
    case 'none':
      return 'none';
    case 'key':
      return { key: testKey(1) };
    case 'passphrase':
      return { passphrase: PASSPHRASE, scryptLogN: 10 };
  }
}

/**
 * Open options of a configuration; `extra` overrides anything. syncIntervalMs is 0 (no background
 * timer) and write buffers are 64 KiB instead of 1 MiB: thousands of opens then do not allocate
 * gigabytes, and complete pages reach the OS before any sync, so live reads cover sealed pages too.
 */
export function optionsFor(config: StoreConfig, extra: Partial<OpenOptions> = {}): OpenOptions {
  return {
    keySize: KEY_SIZE,
    encryption: encryptionOption(config.encryption),
    shards: config.shards,
    cacheBytes: config.cacheBytes,
    cipher: config.cipher,
    syncIntervalMs: 0,
    writeBufferBytes: 64 * 1024,
    ...extra,
  };
}

/** Stores opened through openVarMap or trackStore, by directory, so that a directory's cleanup closes them first. */
const storesByDirectory = new Map<string, Set<{ close(): Promise<void> }>>();

/** Registers a store opened in `dir` (any collection class) to be closed by the `tempDir` cleanup. */
export function trackStore<T extends { close(): Promise<void> }>(dir: string, db: T): T {
  const root = path.resolve(dir);
  let stores = storesByDirectory.get(root);
  if (stores === undefined) storesByDirectory.set(root, (stores = new Set()));
  stores.add(db);
  return db;
}

/** Opens a VarMap in `dir` with `config`; `tempDir` cleanup closes it if the test did not. */
export async function openVarMap(dir: string, config: StoreConfig, extra: Partial<OpenOptions> = {}): Promise<VarMap> {
  // VarTree has every member of VarMap (same base class), so the suite drives it through the same type.
  const db: VarMap =
    config.collection === 'VarTree'
      ? await VarTree.open(dir, optionsFor(config, extra))
      : await VarMap.open(dir, optionsFor(config, extra));
  return trackStore(dir, db);
}

/** Closes every store opened in (or below) `dir` through openVarMap, then removes `dir`. */
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
  tempDir: async ({}, use) => {
    const made: string[] = [];
    let finished = false;
    await use(() => {
      // Work left running after its test (an interrupted fast-check run) must not leave directories behind.
      if (finished) throw new Error('tempDir() called after its test finished');
      const dir = mkdtempSync(path.join(tmpdir(), 'armdb-test-'));
      made.push(dir);
      return dir;
    });
    finished = true;
    for (const dir of made) await removeTempDir(dir);
  },
});

/** Deterministic pseudo-random bytes (not secret; recognisable, non-repeating content). */
export function patternBytes(length: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = (Math.imul(seed, 2654435761) + 1) >>> 0;
  for (let index = 0; index < length; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

/** Byte arrays compare by content whatever their class: a Buffer equals a Uint8Array of the same bytes. */
expect.addEqualityTesters([
  function bytesEqual(left: unknown, right: unknown): boolean | undefined {
    if (!(left instanceof Uint8Array) || !(right instanceof Uint8Array)) return undefined;
    return left.length === right.length && Buffer.compare(left, right) === 0;
  },
]);
