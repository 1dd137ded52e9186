/**
 * The test seam stays out of the public API (issue 14, item 4): the engine's FileSystem can be
 * swapped only through src/internal/engine-hooks.ts, which package.json's exports map does not name.
 * An option object carrying the old symbol, or any other extra key, gives no way in.
 */
import * as fs from 'node:fs';
import { describe, expect } from 'vitest';
import { VarMap, keys, type OpenOptions } from '../../src/index.js';
import type { FileSystem } from '../../src/io/file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { storeTest as it, testKey } from '../helpers/store.js';

const KEY = testKey(14);
const base = (): OpenOptions => ({ keySize: 16, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0 }) as OpenOptions;

/** A FileSystem that counts the directories it is asked to create and otherwise is the real one. */
function counting(): { fileSystem: FileSystem; calls: () => number } {
  let calls = 0;
  const fileSystem: FileSystem = new Proxy(nodeFileSystem, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { fileSystem, calls: () => calls };
}

describe('the engine test seam', () => {
  it('a public open ignores a file system handed in under the old symbol', async ({ tempDir }) => {
    const spy = counting();
    const options = { ...base(), [Symbol.for('armdb.engineHooks')]: { fileSystem: spy.fileSystem } } as OpenOptions;
    const db = await VarMap.open(tempDir(), options);
    db.put(keys.fromString('a', 16), new Uint8Array([1]));
    await db.close();
    expect(spy.calls()).toBe(0);
  });

  it('withEngineHooks reaches the engine, for this options object only', async ({ tempDir }) => {
    const spy = counting();
    const dir = tempDir();
    const db = await VarMap.open(dir, withEngineHooks(base(), { fileSystem: spy.fileSystem }));
    await db.close();
    const used = spy.calls();
    expect(used).toBeGreaterThan(0);
    const again = await VarMap.open(dir, base());
    await again.close();
    expect(spy.calls()).toBe(used);
  });

  it('the package exports map names no internal module', () => {
    const manifest = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    // The public entry points: the library, its package.json, and the subpaths of the Level adapter,
    // the PKCS#11 key provider and replication.
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './level', './package.json', './pkcs11', './replication']);
    expect(JSON.stringify(manifest.exports)).not.toContain('internal');
  });
});
