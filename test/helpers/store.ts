/**
 * Shared helpers for store-level tests:
 * - `storeTest`, `trackStore`, `removeTempDir` (defined in temp-dir.ts): vitest's `test` with a
 *   `tempDir()` fixture; after the test every store opened in it through `openVarMap` is closed and
 *   the directory is removed. Per test, so it is safe with `describe.concurrent`.
 * - `testKey(seed)`: a deterministic 32-byte key.
 * - `openVarMap(dir, config, extra?)`: opens a VarMap with a configuration object
 *   (`syncIntervalMs: 0` unless `extra` says otherwise, fast scrypt for passphrases).
 * - byte arrays compare by content in `toEqual`, whatever their class (Buffer or Uint8Array).
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { expect } from 'vitest';
import { keys, VarMap, VarTree, type CipherName, type EncryptionOption, type OpenOptions } from '../../src/index.js';
import { testKey } from './bytes.js';
import { trackStore } from './temp-dir.js';

// The helpers every store test needs, from the module that defines each.
export { patternBytes, testKey } from './bytes.js';
export { removeTempDir, storeTest, trackStore } from './temp-dir.js';

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

/** `value` as UTF-8 bytes. */
export const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/**
 * Key `n` of group `group` (KEY_SIZE bytes): big-endian `n` in the last bytes, so numeric order is key
 * order; the first byte is the group, so with shardPrefixBits 8 a group shares a shard.
 */
export function key(n: number, group = 0): Uint8Array {
  const bytes = new Uint8Array(KEY_SIZE);
  bytes[0] = group;
  bytes.set(keys.u64(n), KEY_SIZE - 8);
  return bytes;
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

/** Opens a VarMap in `dir` with `config`; `tempDir` cleanup closes it if the test did not. */
export async function openVarMap(dir: string, config: StoreConfig, extra: Partial<OpenOptions> = {}): Promise<VarMap> {
  // VarTree has every member of VarMap (same base class), so the suite drives it through the same type.
  const db: VarMap =
    config.collection === 'VarTree'
      ? await VarTree.open(dir, optionsFor(config, extra))
      : await VarMap.open(dir, optionsFor(config, extra));
  return trackStore(dir, db);
}

/** Byte arrays compare by content whatever their class: a Buffer equals a Uint8Array of the same bytes. */
expect.addEqualityTesters([
  function bytesEqual(left: unknown, right: unknown): boolean | undefined {
    if (!(left instanceof Uint8Array) || !(right instanceof Uint8Array)) return undefined;
    return left.length === right.length && Buffer.compare(left, right) === 0;
  },
]);
