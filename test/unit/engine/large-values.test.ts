/**
 * Values spanning more than two pages are read in one pread and cached whole in the value cache.
 * Their cache ids must never collide: an early id scheme mapped the record at 16 MiB of one file
 * and the record at 0 of the next file to the same id, so get() returned another key's value.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VarMap, keys } from '../../../src/index.js';

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) fs.rmSync(directory, { recursive: true, force: true });
});

describe('large values', () => {
  it('values at the same offset of different files never share a cache entry', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-large-'));
    directories.push(directory);
    // 16-byte header + 16-byte key + 16352-byte value = 16384 bytes: record n sits at n * 16 KiB.
    const options = { keySize: 16, encryption: { key: new Uint8Array(32).fill(9) }, shards: 1, syncIntervalMs: 0, maxFileBytes: 17 * 2 ** 20, autoCompact: false } as const;
    const valueOf = (index: number) => new Uint8Array(16352).fill(index % 251);
    let db = await VarMap.open(directory, options);
    const count = 1100 + 50; // file 1 holds ~1088 records (rotation past 17 MiB), file 2 the rest
    for (let index = 0; index < count; index++) db.put(keys.fromString(`k${index}`, 16), valueOf(index));
    await db.close();
    db = await VarMap.open(directory, options);
    expect(db.stats().files).toBeGreaterThanOrEqual(2);
    // Read everything twice: the second pass is served from the value cache.
    const wrong: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      for (let index = 0; index < count; index++) {
        const value = db.get(keys.fromString(`k${index}`, 16));
        if (value === undefined || !Buffer.from(value).equals(valueOf(index))) wrong.push(index);
      }
    }
    expect(wrong).toEqual([]);
    expect(db.stats().cacheHits).toBeGreaterThan(0);
    await db.close();
  });
});
