/**
 * File ids are never reused (docs/format.md §1.1), not even after a crash during compaction.
 *
 * Security review, issue 13 item 7: compaction writes its outputs as `NNNNNN.data.tmp` /
 * `NNNNNN.tags.tmp`; recovery deleted those before it counted their ids, so the next process handed
 * the same id out again (one id with two salts in a SIGKILL campaign). No key was reused (fresh salt),
 * but the format's promise did not hold. Recovery now counts the id of every temporary file and the
 * engine removes the file only once a MANIFEST whose next file id is past it is durable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaultFileSystem } from '../crash/fault-fs.js';
import { keyOf, openMap, directoriesRemovedAfterEach, valueFor } from '../crash/scenario.js';

const directory = directoriesRemovedAfterEach();

/** The file id of every data file the logged operations created (`open-create` of `NNNNNN.data[.tmp]`). */
function createdDataFileIds(fileSystem: FaultFileSystem): number[] {
  return fileSystem.log
    .filter((entry) => entry.kind === 'open-create' && /\.data(\.tmp)?$/.test(entry.path))
    .map((entry) => Number(/(\d+)\.data/.exec(path.basename(entry.path))![1]));
}

/** Every `NNNNNN.*` name below the store, temporary ones included. */
function storeFileNames(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => /\d{6}\./.test(path.basename(name)));
}

describe('file ids after a crash during compaction', () => {
  it('the ids of compaction outputs left as .tmp by a crash are not handed out again by the next process', async () => {
    const dir = directory('tmp-ids');
    const faults = new FaultFileSystem();
    const map = await openMap(dir, faults, { shards: 1 });
    // Keys 30..59 stay live in the first (sealed) files, which the overwrites of 0..29 make compactable.
    const latestRound = (n: number): number => (n < 30 ? 3 : 0);
    for (let round = 0; round < 4; round++) for (let n = 0; n < (round === 0 ? 60 : 30); n++) map.put(keyOf(n), valueFor(1, n, round, 700));
    await map.sync();
    // The process dies at the rename of the first compaction output: its .data.tmp and .tags.tmp stay.
    faults.crashAt(1, { match: (kind, filePath) => kind === 'rename' && /\.data\.tmp -> /.test(filePath) });
    await expect(map.compact()).rejects.toBeInstanceOf(Error);
    await map.close().catch(() => undefined);
    expect(faults.crashPoint?.kind).toBe('rename');
    const crashedOutputId = Number(/(\d+)\.data\.tmp -> /.exec(faults.crashPoint!.path)![1]);
    expect(storeFileNames(dir).some((name) => name.endsWith(`${String(crashedOutputId).padStart(6, '0')}.data.tmp`))).toBe(true);

    const reopenFaults = new FaultFileSystem();
    const again = await openMap(dir, reopenFaults, { shards: 1 });
    try {
      for (let n = 0; n < 60; n++) expect(again.get(keyOf(n))).toEqual(valueFor(1, n, latestRound(n), 700));
      // Compaction now finishes and makes new files: every id it and the open hand out is new.
      await again.compact();
      const created = createdDataFileIds(reopenFaults);
      expect(created.length).toBeGreaterThan(1);
      for (const fileId of created) expect(fileId, `file id ${fileId} was handed out before the crash`).toBeGreaterThan(crashedOutputId);
      // The temporary files are gone once the open's MANIFEST is durable.
      expect(storeFileNames(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('a planted temporary file with a high id: new files get higher ids, and the MANIFEST counts it before the file goes', async () => {
    const dir = directory('planted-tmp');
    const first = await openMap(dir, undefined, { shards: 1 });
    first.put(keyOf(1), valueFor(1, 1, 0, 100));
    await first.close();
    fs.writeFileSync(path.join(dir, 'shard-000', '000050.data.tmp'), new Uint8Array(4096), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'shard-000', '000051.tags.tmp'), new Uint8Array(128), { mode: 0o600 });

    const faults = new FaultFileSystem();
    const reopened = await openMap(dir, faults, { shards: 1 });
    const created = createdDataFileIds(faults);
    expect(created).toEqual([52]);
    expect(storeFileNames(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(reopened.get(keyOf(1))).toEqual(valueFor(1, 1, 0, 100));
    reopened.put(keyOf(2), valueFor(1, 2, 0, 100));
    await reopened.close();

    const last = await openMap(dir, undefined, { shards: 1 });
    try {
      expect(last.get(keyOf(2))).toEqual(valueFor(1, 2, 0, 100));
      const dataFiles = storeFileNames(dir).filter((name) => name.endsWith('.data'));
      expect(dataFiles.map((name) => path.basename(name)).sort()).toEqual(['000001.data', '000052.data', '000053.data']);
    } finally {
      await last.close();
    }
  });
});
