/**
 * A crash between the deletions of a compaction's inputs (found by the 1,000-cycle SIGKILL run: a
 * store recovered with a file in quarantine/ and verify() not ok after an ordinary kill). Compaction
 * dropped a tombstone whose only older record, a put, sat in another input of the same run; the
 * input with the tombstone was deleted first, the process died, and the input with the put was left:
 * recovery could not prove that put redundant and quarantined the file. Tombstones with older records
 * in other inputs are now kept in the output, so every leftover stays provably redundant.
 */
import { describe, expect, it } from 'vitest';
import { FaultFileSystem } from './fault-fs.js';
import { directoriesRemovedAfterEach, keyOf, openMap, valueFor } from './scenario.js';

const directory = directoriesRemovedAfterEach();

describe('a crash between the deletions of compaction inputs', () => {
  it('the input holding a put whose tombstone was in an input already deleted is removed, not quarantined; verify() ok', async () => {
    const dir = directory('retire-order');
    const options = { shards: 1, autoCompact: false, hints: false };
    // File 1: key 0 and filler. compact(): file 1 rotates, its live records go to a compaction output
    // (a higher id than the active file 2 created by the rotation).
    let map = await openMap(dir, undefined, options);
    map.put(keyOf(0), valueFor(1, 0, 1, 200));
    for (let key = 1; key < 40; key++) map.put(keyOf(key), valueFor(1, key, 1, 200));
    for (let key = 1; key < 40; key++) map.put(keyOf(key), valueFor(2, key, 2, 200));
    await map.compact();
    // The tombstone of key 0 goes into the active file, whose id is lower than the output's.
    map.delete(keyOf(0));
    for (let key = 1; key < 40; key++) map.put(keyOf(key), valueFor(3, key, 3, 200));
    for (let key = 1; key < 40; key++) map.put(keyOf(key), valueFor(4, key, 4, 200));
    await map.close();
    // Compact both: the output (put of key 0) and the file with its tombstone. The process dies right
    // after the first input is deleted.
    const fs = new FaultFileSystem();
    map = await openMap(dir, fs, options);
    // Inputs are deleted in id order, each as .data then .tags: the third such unlink is the second input's.
    fs.crashAt(3, { match: (kind, filePath) => kind === 'unlink' && /\.(data|tags)$/.test(filePath) });
    await map.compact().catch(() => undefined);
    await map.close().catch(() => undefined);
    expect(fs.crashed).toBe(true);
    const again = await openMap(dir, undefined, options);
    try {
      expect(again.get(keyOf(0))).toBeUndefined();
      for (let key = 1; key < 40; key++) expect(again.get(keyOf(key))).toEqual(valueFor(4, key, 4, 200));
      expect(again.stats().quarantinedFiles).toBe(0);
      expect((await again.verify()).ok).toBe(true);
    } finally {
      await again.close();
    }
  });
});
