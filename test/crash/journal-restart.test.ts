/**
 * A commit journal that starts over while its page is still partial (docs/format.md §6A.4): the
 * first chunk of the new journal file holds the whole journaled prefix of the page again, so that
 * when the file after it is truncated to start over in its turn, nothing the MANIFEST vouches for
 * was only in the truncated file.
 *
 * The power-cut walks cannot reach this: with one chunk per barrier (24 bytes of frame and tag) and
 * records of at least 32 bytes (16-byte keys), a page completes long before a journal file passes
 * 8 KiB. With 8-byte keys and empty values (24-byte records) it can, by a few bytes: the test steers
 * the writes there, reading where the writer is from the chunk frames (page index, offset and length
 * are in the clear, §6A.3).
 */
import { readFileSync, statSync, truncateSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { VarMap } from '../../src/collections/var-map.js';
import { PAGE_BYTES } from '../../src/format/constants.js';
import { decodeJournalFrames, decodeJournalHeader } from '../../src/format/journal.js';
import { nextRecordPosition } from '../../src/format/page.js';
import { JOURNAL_SWITCH_BYTES } from '../../src/storage/data-file.js';
import { FaultFileSystem } from './fault-fs.js';
import { directoriesRemovedAfterEach, openMap } from './scenario.js';

const directory = directoriesRemovedAfterEach();

const KEY_BYTES = 8;
/** A record of an 8-byte key and an empty value: header 16 + key 8 (docs/format.md §3.1). */
const TINY_RECORD_BYTES = 24;

function keyOf(n: number): Uint8Array {
  const key = new Uint8Array(KEY_BYTES);
  new DataView(key.buffer).setUint32(4, n);
  return key;
}

/** A journal file as the test sees it: its size, and where its last chunk ends in the data file. */
function journalState(journalPath: string): { bytes: number; firstChunk: number; end: number } | undefined {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(journalPath));
  } catch {
    return undefined;
  }
  const header = decodeJournalHeader(bytes);
  const { frames } = decodeJournalFrames(bytes);
  const last = frames.at(-1);
  expect(header).toBeDefined();
  return {
    bytes: bytes.length,
    firstChunk: header!.firstChunk,
    end: last === undefined ? 0 : last.pageIndex * PAGE_BYTES + last.offset + last.length,
  };
}

describe('a journal starting over while its page is partial', () => {
  it('the other journal file cut to nothing at the next restart, the page never written: every acknowledged commit recovers', async () => {
    const root = directory('journal-restart');
    const options = { shards: 1, hints: false, keySize: KEY_BYTES };
    const fs = new FaultFileSystem();
    const map = await openMap(root, fs, options);
    const shardDirectory = path.join(root, 'shard-000');
    const first = path.join(shardDirectory, '000001.journal');
    const second = path.join(shardDirectory, '000001.journal2');
    const written = new Map<number, Uint8Array>();
    let next = 0;
    const commit = async (target: VarMap, valueBytes: number): Promise<void> => {
      const value = new Uint8Array(valueBytes).fill(next & 0xff);
      target.put(keyOf(next), value);
      await target.sync();
      written.set(next++, value);
    };

    // 1. The first journal file to 8160 bytes (the next 32-byte chunk takes it to 8 KiB exactly).
    const target = JOURNAL_SWITCH_BYTES - 32;
    for (let state = journalState(first); state === undefined || state.bytes < target; state = journalState(first)) {
      const gap = state === undefined ? Number.POSITIVE_INFINITY : target - state.bytes;
      // A chunk is 24 bytes of frame and tag plus the record: an empty value, or one that lands on the target.
      await commit(map, gap >= 2 * 48 ? 0 : Math.max(0, gap - 48));
    }
    expect(journalState(first)!.bytes).toBe(target);
    expect(journalState(second)).toBeUndefined();

    // 2. A record that ends 8 bytes into the next page: its chunk is that page's [0, 8), 32 bytes.
    const start = nextRecordPosition(journalState(first)!.end);
    const pageIndex = Math.floor(start / PAGE_BYTES) + 1;
    await commit(map, pageIndex * PAGE_BYTES + 8 - start - TINY_RECORD_BYTES);
    expect(journalState(first)).toMatchObject({ bytes: JOURNAL_SWITCH_BYTES, end: pageIndex * PAGE_BYTES + 8 });

    // 3. The next barrier starts the second file, on the same page (its first chunk: the page's [0, 32)).
    await commit(map, 0);
    expect(journalState(second)?.end).toBe(pageIndex * PAGE_BYTES + 32);

    // 4. Tiny commits until the second file holds 8 KiB; the page is still partial (8 bytes short).
    for (let state = journalState(second)!; state.bytes < JOURNAL_SWITCH_BYTES; state = journalState(second)!) await commit(map, 0);
    expect(journalState(second)!.end).toBe((pageIndex + 1) * PAGE_BYTES - 8);
    const acknowledged = new Map(written);
    const dataPath = path.join(shardDirectory, '000001.data');
    const tagPath = path.join(shardDirectory, '000001.tags');
    const durableDataBytes = statSync(dataPath).size;
    const durableTagBytes = statSync(tagPath).size;

    // 5. One more commit completes the page; its barrier writes the page, truncates the first file to
    // start it over, and the process dies before the new header is written.
    fs.crashAt(1, { match: (kind, filePath) => kind === 'write' && filePath === first });
    await expect(commit(map, 0)).rejects.toThrow();
    await map.close().catch(() => undefined);
    expect(statSync(first).size).toBe(0);
    // The power fails too: the page and its tag were never fsynced.
    expect(statSync(dataPath).size).toBeGreaterThan(durableDataBytes);
    truncateSync(dataPath, durableDataBytes);
    truncateSync(tagPath, durableTagBytes);

    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await openMap(root, undefined, options); // without the whole prefix in the second file: ARMDB_INTEGRITY … chunks are missing
      try {
        for (const [n, value] of acknowledged) expect(again.get(keyOf(n))).toEqual(value);
        expect(again.size).toBeGreaterThanOrEqual(acknowledged.size);
        expect(again.size).toBeLessThanOrEqual(acknowledged.size + 1);
        expect((await again.verify()).ok).toBe(true);
      } finally {
        await again.close();
      }
    }
  });
});
