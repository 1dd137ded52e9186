/**
 * Background work on a failing disk (docs/durability.md §Background work and I/O errors): ENOSPC or
 * EIO while compaction writes, syncs or renames its own files, or while the hint writer writes a hint,
 * must not poison the store. Nothing acknowledged depends on those files: the step stops, removes its
 * partial files, publishes the error on its diagnostics channel, and is tried again after later
 * barriers. On the write path the same errors poison (fault-injection.test.ts).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { VarMap } from '../../src/collections/var-map.js';
import { Backoff, MAX_SKIPPED_CHANCES } from '../../src/engine/backoff.js';
import { fileName } from '../../src/engine/paths.js';
import { FaultFileSystem } from './fault-fs.js';
import { keyOf, openMap, directoriesRemovedAfterEach, valueFor } from './scenario.js';

const directory = directoriesRemovedAfterEach();

/** Messages published on `name` while `action` runs. */
async function published<T>(name: string, action: () => Promise<T>): Promise<{ result: T; messages: Record<string, unknown>[] }> {
  const messages: Record<string, unknown>[] = [];
  const listener = (message: unknown): void => {
    messages.push(message as Record<string, unknown>);
  };
  subscribe(name, listener);
  try {
    return { result: await action(), messages };
  } finally {
    unsubscribe(name, listener);
  }
}

/** The next message on `name` (resolves when it is published). */
function nextMessage(name: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (message: unknown): void => {
      unsubscribe(name, listener);
      resolve(message as Record<string, unknown>);
    };
    subscribe(name, listener);
  });
}

const KEYS = 400;

/** Files with mostly dead bytes: every key written three times, synced after each round. */
async function garbage(map: VarMap): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (let key = 0; key < KEYS; key++) map.put(keyOf(key), valueFor(round, key, round, 120));
    await map.sync();
  }
}

function expectLatest(map: VarMap, round: number): void {
  for (let key = 0; key < KEYS; key++) expect(map.get(keyOf(key))).toEqual(valueFor(round, key, round, 120));
}

function temporaryFiles(dir: string): string[] {
  return readdirSync(path.join(dir, 'shard-000')).filter((name) => name.endsWith('.tmp'));
}

const isOutput = (filePath: string): boolean => filePath.endsWith('.data.tmp') || filePath.endsWith('.tags.tmp');

describe('compaction on a failing disk', () => {
  it.each([
    { kind: 'write' as const, code: 'ENOSPC', what: 'writing an output page' },
    { kind: 'sync' as const, code: 'EIO', what: 'fsyncing an output' },
    { kind: 'open-create' as const, code: 'ENOSPC', what: 'creating an output' },
  ])('explicit compact(): $code $what rejects, leaves no partial file and does not poison', async ({ kind, code }) => {
    const dir = directory(`compact-${kind}`);
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: false, maxFileBytes: 64 * 1024 });
    await garbage(map);
    const deadBefore = map.stats().deadBytes;
    fs.failNth(kind, 1, code, { path: isOutput });
    await expect(map.compact()).rejects.toMatchObject({ code });
    expect(temporaryFiles(dir)).toEqual([]);
    // Reads and writes go on; nothing was lost; a later compaction succeeds.
    expectLatest(map, 2);
    map.put(keyOf(KEYS), valueFor(9, KEYS, 9, 50));
    await map.sync();
    const report = await map.compact();
    expect(report.filesIn).toBeGreaterThan(0);
    expect(report.bytesReclaimed).toBeGreaterThan(0);
    expect(map.stats().deadBytes).toBeLessThan(deadBefore);
    expectLatest(map, 2);
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    expectLatest(again, 2);
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });

  it('background compaction: ENOSPC publishes the error on armdb:compact, keeps the store writable, and is tried again after later barriers', async () => {
    const dir = directory('background-enospc');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: false, maxFileBytes: 64 * 1024 });
    await garbage(map);
    await map.close();
    // Reopened with background compaction: the first barrier that writes a MANIFEST starts it.
    const faulty = new FaultFileSystem();
    faulty.failNth('write', 1, 'ENOSPC', { path: isOutput, sticky: true });
    const background = await openMap(dir, faulty, { shards: 1, autoCompact: true, hints: false, maxFileBytes: 64 * 1024 });
    const failure = nextMessage('armdb:compact');
    background.put(keyOf(0), valueFor(3, 0, 3, 120));
    await background.sync();
    const message = await failure;
    expect((message['error'] as { code?: string } | undefined)?.code).toBe('ENOSPC');
    expect(temporaryFiles(dir)).toEqual([]);
    expect(background.stats().compactions).toBe(0);
    // Not poisoned: writes and barriers go on (the failed attempt is not retried at once).
    background.put(keyOf(1), valueFor(3, 1, 3, 120));
    await background.sync();
    expect(background.stats().compactions).toBe(0);
    // The disk has room again: after the backoff (one skipped chance after one failure) it runs.
    faulty.disarm();
    const success = nextMessage('armdb:compact');
    for (let attempt = 0; attempt < 3 && background.stats().compactions === 0; attempt++) {
      background.put(keyOf(2), valueFor(3, 2, 3 + attempt, 120));
      await background.sync();
    }
    const report = await success;
    expect(report['error']).toBeUndefined();
    expect(report['filesIn']).toBeGreaterThan(0);
    await background.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    expect(again.get(keyOf(0))).toEqual(valueFor(3, 0, 3, 120));
    expect(again.get(keyOf(1))).toEqual(valueFor(3, 1, 3, 120));
    for (let key = 3; key < KEYS; key++) expect(again.get(keyOf(key))).toEqual(valueFor(2, key, 2, 120));
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });

  it('EIO deleting the old files after the switch: compaction completes, the error is published, the next open removes the leftovers', async () => {
    const dir = directory('retire-eio');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: false, maxFileBytes: 64 * 1024 });
    await garbage(map);
    fs.failNth('unlink', 1, 'EIO', { path: (filePath) => filePath.endsWith('.data') });
    const { result: report, messages } = await published('armdb:compact', () => map.compact());
    expect(report.filesIn).toBeGreaterThan(0);
    expect(messages.some((message) => (message['error'] as { code?: string } | undefined)?.code === 'EIO')).toBe(true);
    map.put(keyOf(0), valueFor(7, 0, 7, 120));
    await map.sync();
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    expect(again.get(keyOf(0))).toEqual(valueFor(7, 0, 7, 120));
    for (let key = 1; key < KEYS; key++) expect(again.get(keyOf(key))).toEqual(valueFor(2, key, 2, 120));
    expect((await again.verify()).ok).toBe(true);
    const files = again.stats().files;
    await again.close();
    // Only the files the MANIFEST lists remain: data files on disk = files of the store (+ none left over).
    const dataFiles = readdirSync(path.join(dir, 'shard-000')).filter((name) => name.endsWith('.data'));
    expect(dataFiles.length).toBeLessThanOrEqual(files);
  });
});

describe('compaction renames and directory fsyncs', () => {
  it('EIO renaming an output: compact() rejects, nothing left behind, not poisoned', async () => {
    const dir = directory('compact-rename');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: false, maxFileBytes: 64 * 1024 });
    await garbage(map);
    fs.failNth('rename', 2, 'EIO', { path: (operation) => operation.includes('.tmp ->') });
    await expect(map.compact()).rejects.toMatchObject({ code: 'EIO' });
    expect(temporaryFiles(dir)).toEqual([]);
    map.put(keyOf(0), valueFor(5, 0, 5, 120));
    await map.sync();
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    expect(again.get(keyOf(0))).toEqual(valueFor(5, 0, 5, 120));
    for (let key = 1; key < KEYS; key++) expect(again.get(keyOf(key))).toEqual(valueFor(2, key, 2, 120));
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });

  // The shard directory also holds the entries of active files created since the last barrier; after
  // a failed directory fsync a later successful one need not have made them durable: poison.
  it.each([
    // compact() first rotates and runs a barrier (the first directory fsync); then its own.
    { what: 'compaction', hints: false, nth: 2, trigger: (map: VarMap) => map.compact() },
    {
      what: 'the hint writer',
      hints: true,
      nth: 1,
      trigger: async (map: VarMap) => {
        for (let key = 0; key < KEYS; key++) map.put(keyOf(key), valueFor(4, key, 4, 300));
        await new Promise<void>((resolve) => {
          const listener = (): void => {
            unsubscribe('armdb:hint', listener);
            resolve();
          };
          subscribe('armdb:hint', listener);
        });
      },
    },
  ])('EIO fsyncing the shard directory in $what poisons the store', async ({ hints, nth, trigger }) => {
    const dir = directory('directory-fsync');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints, maxFileBytes: 64 * 1024 });
    await garbage(map);
    // The next fsync of the shard directory outside a barrier: compaction's, or the hint writer's.
    const before = fs.total;
    fs.failNth('syncDirectory', nth, 'EIO', { path: (directoryPath) => directoryPath.endsWith('shard-000') });
    await trigger(map).catch(() => undefined);
    // The failure hit the step under test, not a barrier: nothing renamed after it, no MANIFEST written.
    const after = fs.since(before);
    const failed = after.findIndex((entry) => entry.outcome === 'failed');
    expect(failed).toBeGreaterThan(0);
    expect(after[failed - 1]!.kind).toBe('rename');
    expect(() => map.put(keyOf(0), valueFor(6, 0, 6, 120))).toThrow(expect.objectContaining({ code: 'ARMDB_POISONED' }));
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    // The last synced round, or (the hint case) the unsynced round 4 where its pages reached the disk.
    const allowed = (key: number): Uint8Array[] => [valueFor(2, key, 2, 120), valueFor(4, key, 4, 300)];
    for (let key = 1; key < KEYS; key++) expect(allowed(key)).toContainEqual(again.get(keyOf(key)));
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });
});

describe('crypto-shredding after a failed delete', () => {
  it('a retired file that could not be deleted keeps its data key, so the next open still authenticates and removes it', async () => {
    const dir = directory('shred-leftover');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: false, maxFileBytes: 64 * 1024 });
    await garbage(map);
    await map.rotateDataKey();
    fs.failNth('unlink', 1, 'EIO', { sticky: true, path: (filePath) => filePath.endsWith('.data') || filePath.endsWith('.tags') });
    const report = await map.compact({ reencrypt: true });
    expect(report.shreddedKeyIds).toEqual([]);
    fs.disarm();
    // The device works again: the next shredding deletes the leftovers first, then drops the key.
    map.put(keyOf(0), valueFor(8, 0, 8, 120));
    await map.sync();
    const later = await map.compact({ reencrypt: true });
    expect(later.shreddedKeyIds.length).toBe(1);
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    expect(again.get(keyOf(0))).toEqual(valueFor(8, 0, 8, 120));
    for (let key = 1; key < KEYS; key++) expect(again.get(keyOf(key))).toEqual(valueFor(2, key, 2, 120));
    expect(Object.keys(again.stats().filesPerKeyId)).toEqual(['2']);
    await again.close();
  });

  it('still undeletable at the next open: the key was kept, so recovery authenticates the leftover and removes it', async () => {
    const dir = directory('shred-leftover-open');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: false, maxFileBytes: 64 * 1024 });
    await garbage(map);
    await map.rotateDataKey();
    fs.failNth('unlink', 1, 'EIO', { sticky: true, path: (filePath) => filePath.endsWith('.data') || filePath.endsWith('.tags') });
    await map.compact({ reencrypt: true });
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1 });
    for (let key = 0; key < KEYS; key++) expect(again.get(keyOf(key))).toEqual(valueFor(2, key, 2, 120));
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });
});

describe('hint writing on a failing disk', () => {
  it('ENOSPC writing a hint: published on armdb:hint, no partial file left, the store stays writable, and the hint is written after a later barrier', async () => {
    const dir = directory('hint-enospc');
    const fs = new FaultFileSystem();
    fs.failNth('writeFile', 1, 'ENOSPC', { path: (filePath) => filePath.includes('.hint'), partial: true });
    const map = await openMap(dir, fs, { shards: 1, autoCompact: false, hints: true, maxFileBytes: 64 * 1024 });
    const failure = nextMessage('armdb:hint');
    // Enough to rotate: the sealed file is queued for its hint.
    for (let key = 0; key < KEYS; key++) map.put(keyOf(key), valueFor(1, key, 1, 200));
    const message = await failure;
    expect((message['error'] as { code?: string } | undefined)?.code).toBe('ENOSPC');
    expect(temporaryFiles(dir)).toEqual([]);
    await map.sync();
    // Backoff after one failure: one barrier skipped, the next one queues the hint again.
    for (let round = 0; round < 3; round++) {
      map.put(keyOf(0), valueFor(2, 0, round, 200));
      await map.sync();
    }
    // The hint of the very file whose hint failed, written before close() (which writes hints of its own).
    expect(existsSync(path.join(dir, 'shard-000', fileName(message['fileId'] as number, 'hint')))).toBe(true);
    await map.close();
    const again = await openMap(dir, undefined, { shards: 1, hints: true });
    expect(again.stats().filesFromHints).toBeGreaterThan(0);
    expect(again.stats().damagedHints).toBe(0);
    for (let key = 1; key < KEYS; key++) expect(again.get(keyOf(key))).toEqual(valueFor(1, key, 1, 200));
    await again.close();
  });
});

describe('Backoff', () => {
  it('skips 2^(n-1) chances after the n-th failure in a row, at most the cap, and starts over after a success', () => {
    const backoff = new Backoff();
    expect(backoff.allow()).toBe(true);
    const skippedAfter = (failures: number): number => {
      const fresh = new Backoff();
      for (let count = 0; count < failures; count++) fresh.failed();
      let skipped = 0;
      while (!fresh.allow()) skipped++;
      return skipped;
    };
    expect([1, 2, 3, 4].map(skippedAfter)).toEqual([1, 2, 4, 8]);
    expect(skippedAfter(20)).toBe(MAX_SKIPPED_CHANCES);
    backoff.failed();
    backoff.failed();
    backoff.succeeded();
    expect(backoff.failures).toBe(0);
    expect(backoff.allow()).toBe(true);
  });
});
