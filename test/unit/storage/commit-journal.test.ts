/**
 * Durable commits without page padding (docs/format.md §6A): a barrier journals the partial page of
 * each dirty shard as one sealed chunk instead of sealing the page zero-padded, so a `put` + `sync()`
 * loop writes a few hundred bytes per commit and the store stays close to its live size.
 * Sizes are measured through the store directory (file sizes), never time.
 */
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { key, openVarMap, patternBytes, storeTest } from '../../helpers/store.js';

const CONFIG = { shards: 4, cacheBytes: 1 << 20, cipher: 'node', encryption: 'key' } as const;

/** Bytes of every file under `dir`. */
function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? directoryBytes(full) : statSync(full).size;
  }
  return total;
}

describe('commit journal', () => {
  storeTest('one 100-byte put then sync() writes at most 512 bytes per commit (VarMap)', async ({ tempDir }) => {
    const dir = tempDir();
    const db = await openVarMap(dir, CONFIG);
    // Warm up: every shard has its active file and journal, the MANIFEST its entries.
    for (let n = 0; n < 40; n++) {
      db.put(key(n), patternBytes(100, n));
      await db.sync();
    }
    const before = directoryBytes(dir);
    const writtenBefore = db.stats().bytesWritten;
    const commits = 1000;
    for (let n = 40; n < 40 + commits; n++) {
      db.put(key(n), patternBytes(100, n));
      await db.sync();
    }
    const perCommit = (directoryBytes(dir) - before) / commits;
    const writtenPerCommit = (db.stats().bytesWritten - writtenBefore) / commits;
    console.log(
      `commit journal: ${perCommit.toFixed(1)} bytes of store growth and ${writtenPerCommit.toFixed(1)} bytes written to data, tag and journal files per commit`,
    );
    expect(perCommit).toBeLessThanOrEqual(512);
    expect(writtenPerCommit).toBeLessThanOrEqual(512);
    // The journal files take turns: none grows with the data (docs/format.md §6A.4).
    const journals = readdirSync(path.join(dir, 'shard-000')).filter((name) => name.includes('.journal'));
    expect(journals.length).toBe(2);
    for (const name of journals) expect(statSync(path.join(dir, 'shard-000', name)).size).toBeLessThanOrEqual(3 * 4096);
    await db.close();
  });

  storeTest(
    'after 3,000 durable commits the store is at most twice its live data, and every write reads back after reopen',
    async ({ tempDir }) => {
      const dir = tempDir();
      let db = await openVarMap(dir, CONFIG);
      const commits = 3000;
      for (let n = 0; n < commits; n++) {
        db.put(key(n), patternBytes(100, n));
        await db.sync();
      }
      const live = commits * (16 + 100);
      const total = directoryBytes(dir);
      console.log(`commit journal: store ${total} bytes for ${live} bytes of keys and values (${(total / live).toFixed(2)}x)`);
      expect(total).toBeLessThanOrEqual(2 * live);
      await db.close();
      db = await openVarMap(dir, CONFIG);
      for (let n = 0; n < commits; n += 97) expect(db.get(key(n))).toEqual(patternBytes(100, n));
      expect(db.size).toBe(commits);
    },
  );
});
