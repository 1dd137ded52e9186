/**
 * Regression tests of bugs the behavioural suite found, each reproduced in one configuration of
 * VarMap, and the read amplification of a large value. The suite itself runs from
 * var-map.node.test.ts, var-map.noble.test.ts and every-collection.test.ts (configurations: matrix.ts).
 */
import { cpSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import type { FileSystem } from '../../src/io/file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { VarMap } from '../../src/index.js';
import { patternBytes } from '../helpers/bytes.js';
import { expectRejectCode } from '../helpers/errors.js';
import { KEY_SIZE, key, text, openVarMap, optionsFor, type StoreConfig, storeTest as it } from '../helpers/store.js';

const MIB = 2 ** 20;

function withLastByte(fill: number, last: number): Uint8Array {
  const bytes = new Uint8Array(KEY_SIZE).fill(fill);
  bytes[KEY_SIZE - 1] = last;
  return bytes;
}

/** Regression tests of bugs these suites found (each reproduced in one configuration). */
describe('VarMap (one configuration)', () => {
  const config: StoreConfig = { shards: 4, cacheBytes: 64 * MIB, cipher: 'node', encryption: 'key' };

  it('Buffer keys are not modified by routing with a shardPrefixBits that is not a multiple of 8', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config, { shardPrefixBits: 4 });
    const original = Buffer.alloc(KEY_SIZE, 0xab);
    const routed = Buffer.from(original);
    db.put(routed, Buffer.from('routed'));
    expect(routed).toEqual(original);
    expect(db.get(original)).toEqual(text('routed'));
  });

  it('put copies a reused Buffer key and value', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config);
    const reusedKey = Buffer.alloc(KEY_SIZE, 0x01);
    const reusedValue = Buffer.alloc(4);
    for (let n = 1; n <= 3; n++) {
      reusedKey[KEY_SIZE - 1] = n;
      reusedValue.fill(0x60 + n);
      db.put(reusedKey, reusedValue);
    }
    for (let n = 1; n <= 3; n++) expect(db.get(withLastByte(0x01, n)), `put #${n}`).toEqual(new Uint8Array(4).fill(0x60 + n));
    expect(db.size).toBe(3);
  });

  it('tx.put inside atomic copies a reused Buffer key and value', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config, { shardPrefixBits: 8 });
    const reusedKey = Buffer.alloc(KEY_SIZE, 0x02);
    const reusedValue = Buffer.alloc(4);
    db.atomic(reusedKey, (tx) => {
      for (let n = 1; n <= 3; n++) {
        reusedKey[KEY_SIZE - 1] = n;
        reusedValue.fill(0x40 + n);
        tx.put(reusedKey, reusedValue);
      }
    });
    for (let n = 1; n <= 3; n++) expect(db.get(withLastByte(0x02, n)), `tx.put #${n}`).toEqual(new Uint8Array(4).fill(0x40 + n));
    expect(db.size).toBe(3);
  });

  it('a crash image with a torn unsynced write after a compaction still opens', async ({ tempDir }) => {
    // Found by test/property/var-map.model.test.ts (crash variant). One shard, pages written early.
    const single: StoreConfig = { shards: 1, cacheBytes: 0, cipher: 'node', encryption: 'key' };
    const extra = { writeBufferBytes: 4096, autoCompact: false };
    const dir = tempDir();
    let db = await openVarMap(dir, single, extra);
    db.put(key(0), patternBytes(9000, 1));
    db.put(key(0), text('small')); // file 1 is now mostly dead
    await db.close();
    db = await openVarMap(dir, single, extra);
    await db.compact(); // rewrites file 1 as a file with a higher id than the active file
    db.put(key(1), patternBytes(6000, 2));
    db.flush(); // the first page of that record reaches the OS, the rest does not
    const image = path.join(tempDir(), 'image');
    cpSync(dir, image, { recursive: true });
    const copy = await openVarMap(image, single, extra);
    expect(copy.get(key(0))).toEqual(text('small'));
    expect(copy.has(key(1))).toBe(false); // never synced, torn: discarded
    expect(copy.stats().recoveredTornBytes).toBeGreaterThan(0);
  });

  it('verify() with an already-aborted signal rejects even when there is nothing to verify', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config);
    await expectRejectCode(db.verify({ signal: AbortSignal.abort() }), 'ARMDB_ABORTED');
  });
});

/** A FileSystem that counts bytes read from `.data` files (through the engine's test hook). */
function countingFileSystem(): { fileSystem: FileSystem; dataBytesRead: () => number } {
  let bytesRead = 0;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    open(filePath, mode) {
      const handle = nodeFileSystem.open(filePath, mode);
      if (!filePath.endsWith('.data')) return handle;
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'read') {
            return (buffer: Uint8Array, position: number): number => {
              const count = target.read(buffer, position);
              bytesRead += count;
              return count;
            };
          }
          const member: unknown = Reflect.get(target, property);
          return typeof member === 'function' ? (member as (...args: unknown[]) => unknown).bind(target) : member;
        },
      });
    },
  };
  return { fileSystem, dataBytesRead: () => bytesRead };
}

describe('VarMap read amplification', () => {
  // Each page of a multi-page value should be read (and authenticated) about once per get, with or
  // without a cache; reading it again for every later page would make a get quadratic in the value size.
  it.for([0, 64 * MIB])('reading a 512 KiB value with cacheBytes %i reads each page about once', async (cacheBytes, { tempDir }) => {
    const config: StoreConfig = { shards: 1, cacheBytes, cipher: 'node', encryption: 'key' };
    const counting = countingFileSystem();
    const options = withEngineHooks({ ...optionsFor(config) }, { fileSystem: counting.fileSystem });
    const dir = tempDir();
    const value = patternBytes(512 * 1024, 9);
    const writer = await VarMap.open(dir, options);
    writer.put(key(1), value);
    await writer.close();
    const db = await VarMap.open(dir, options);
    try {
      const before = counting.dataBytesRead();
      expect(db.get(key(1))).toEqual(value);
      const read = counting.dataBytesRead() - before;
      expect(read).toBeGreaterThanOrEqual(value.length);
      expect(read).toBeLessThanOrEqual(2 * value.length);
    } finally {
      await db.close();
    }
  });
});
