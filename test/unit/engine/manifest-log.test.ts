/**
 * The barrier in two rounds (docs/durability.md §4, docs/format.md §7.7): the data and tag fsyncs and
 * the directory fsyncs of new files together, then one record appended to the MANIFEST and its one
 * fsync; no temporary file, no rename, no third round. The MANIFEST is replaced whole when its log
 * is full, when the store's MANIFEST is of an older version, and when the keys that sign change. And
 * what a store makes of a log that was tampered with.
 */
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { VarMap } from '../../../src/collections/var-map.js';
import type { OpenOptions } from '../../../src/config.js';
import { ArmdbError } from '../../../src/errors.js';
import { peekManifestFormatVersion } from '../../../src/format/manifest.js';
import { withEngineHooks } from '../../../src/internal/engine-hooks.js';
import type { FileHandle } from '../../../src/io/file-system.js';
import { ForwardingFileSystem, forwardHandle } from '../../helpers/forwarding-file-system.js';
import { patternBytes, testKey } from '../../helpers/store.js';
import { readManifestUnauthenticated } from '../../helpers/manifest.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function temporary(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'armdb-manifest-log-'));
  made.push(dir);
  return dir;
}

const options = (extra: Partial<OpenOptions> = {}): OpenOptions => ({
  keySize: 16,
  encryption: { key: testKey(5) },
  shards: 2,
  hints: false,
  autoCompact: false,
  syncIntervalMs: 0,
  ...extra,
});

function keyOf(index: number): Uint8Array {
  const key = new Uint8Array(16);
  new DataView(key.buffer).setUint32(12, index);
  key[0] = 0x4b;
  return key;
}
const valueFor = (index: number, round = 0): Uint8Array => patternBytes(100, index * 1000 + round);

type Event =
  | { readonly kind: 'sync-start' | 'sync-end'; readonly path: string; readonly id: number }
  | { readonly kind: 'write' | 'writeFile' | 'rename' | 'unlink'; readonly path: string };

/** The real file system, logging every fsync (file or directory, start and end), write, writeFile and rename. */
class CountingFileSystem extends ForwardingFileSystem {
  readonly events: Event[] = [];
  #syncs = 0;

  #sync(target: string, run: () => Promise<void>): Promise<void> {
    const id = ++this.#syncs;
    this.events.push({ kind: 'sync-start', path: target, id });
    return run().then(() => {
      this.events.push({ kind: 'sync-end', path: target, id });
    });
  }

  protected override wrapHandle(handle: FileHandle, filePath: string): FileHandle {
    return forwardHandle(handle, {
      write: (source, position) => {
        this.events.push({ kind: 'write', path: filePath });
        handle.write(source, position);
      },
      sync: () => this.#sync(filePath, () => handle.sync()),
    });
  }
  override writeFile(filePath: string, bytes: Uint8Array): Promise<void> {
    this.events.push({ kind: 'writeFile', path: filePath });
    // writeFile fsyncs the file it creates: one fsync of its own.
    return this.#sync(filePath, () => super.writeFile(filePath, bytes));
  }
  override rename(from: string, to: string): void {
    this.events.push({ kind: 'rename', path: to });
    super.rename(from, to);
  }
  override unlink(filePath: string): void {
    this.events.push({ kind: 'unlink', path: filePath });
    super.unlink(filePath);
  }
  override removeFile(filePath: string): Promise<void> {
    this.events.push({ kind: 'unlink', path: filePath });
    return super.removeFile(filePath);
  }
  override syncDirectory(directory: string): Promise<void> {
    return this.#sync(directory, () => super.syncDirectory(directory));
  }
}

interface BarrierShape {
  /** fsyncs (files and directories) the barrier ran. */
  readonly fsyncs: number;
  /** Rounds: an fsync that starts after another ended is in a later round than it. */
  readonly rounds: number;
  /** fsyncs of the MANIFEST itself (its temporary file included). */
  readonly manifestFsyncs: number;
  /** fsyncs that started before every data and tag fsync had ended (the first round). */
  readonly firstRound: readonly string[];
  readonly renames: number;
  readonly writeFiles: number;
}

function shapeOf(events: readonly Event[]): BarrierShape {
  const roundOf = new Map<number, number>();
  const ended: number[] = [];
  let rounds = 0;
  for (const event of events) {
    if (event.kind === 'sync-start') {
      const round = 1 + Math.max(0, ...ended.map((id) => roundOf.get(id)!));
      roundOf.set(event.id, round);
      rounds = Math.max(rounds, round);
    } else if (event.kind === 'sync-end') ended.push(event.id);
  }
  const starts = events.filter((event): event is Extract<Event, { id: number }> => event.kind === 'sync-start');
  return {
    fsyncs: starts.length,
    rounds,
    manifestFsyncs: starts.filter((event) => path.basename(event.path).startsWith('MANIFEST')).length,
    firstRound: starts.filter((event) => roundOf.get(event.id) === 1).map((event) => path.basename(event.path)),
    renames: events.filter((event) => event.kind === 'rename').length,
    writeFiles: events.filter((event) => event.kind === 'writeFile').length,
  };
}

async function openCounting(dir: string, extra: Partial<OpenOptions> = {}): Promise<{ db: VarMap; fileSystem: CountingFileSystem }> {
  const fileSystem = new CountingFileSystem();
  const db = await VarMap.open(dir, withEngineHooks({ ...options(extra) }, { fileSystem }));
  return { db, fileSystem };
}

/** The events of one `sync()` after `writes` puts. */
async function barrierEvents(db: VarMap, fileSystem: CountingFileSystem, writes: () => void): Promise<Event[]> {
  writes();
  fileSystem.events.length = 0;
  await db.sync();
  return fileSystem.events.splice(0);
}

function manifestOf(dir: string) {
  return readManifestUnauthenticated(fs.readFileSync(path.join(dir, 'MANIFEST')));
}

describe('the barrier in two rounds', () => {
  it('steady state (100 puts into both shards, then sync): data, tag and journal fsyncs in one round, then one MANIFEST fsync; no rename, no temporary file', async () => {
    const dir = temporary();
    const { db, fileSystem } = await openCounting(dir);
    try {
      // The first barrier creates the active files (their directory entries are fsynced too).
      const first = shapeOf(await barrierEvents(db, fileSystem, () => db.put(keyOf(0), valueFor(0))));
      expect(first.rounds).toBe(2);
      expect(first.manifestFsyncs).toBe(1);
      expect(first.renames).toBe(0);
      for (let round = 1; round <= 3; round++) {
        const events = await barrierEvents(db, fileSystem, () => {
          for (let index = 0; index < 100; index++) db.put(keyOf(index), valueFor(index, round));
        });
        const shape = shapeOf(events);
        // Round 1: data, tags and commit journal of each of the 2 shards' active files, plus the shard
        // directory of a journal that started over in its other file (docs/format.md §6A.4); round 2:
        // the MANIFEST alone.
        expect(shape).toEqual({
          fsyncs: shape.firstRound.length + 1,
          rounds: 2,
          manifestFsyncs: 1,
          firstRound: expect.arrayContaining([
            '000001.data',
            '000001.tags',
            '000001.journal',
            '000002.data',
            '000002.tags',
            '000002.journal',
          ]),
          renames: 0,
          writeFiles: 0,
        });
        expect(shape.firstRound.length).toBeLessThanOrEqual(8);
        for (const name of shape.firstRound) expect(name).toMatch(/^(00000[12]\.(data|tags|journal2?)|shard-00[01])$/);
        // The append: one write to the MANIFEST, before its fsync.
        expect(events.filter((event) => event.kind === 'write' && path.basename(event.path) === 'MANIFEST')).toHaveLength(1);
      }
      expect(manifestOf(dir).log.records).toBeGreaterThanOrEqual(4);
    } finally {
      await db.close();
    }
  });

  it('a barrier that creates files fsyncs their directories in the first round, beside the data', async () => {
    const dir = temporary();
    const { db, fileSystem } = await openCounting(dir, { shards: 1 });
    try {
      const shape = shapeOf(await barrierEvents(db, fileSystem, () => db.put(keyOf(1), valueFor(1))));
      expect(shape.rounds).toBe(2);
      expect(shape.firstRound).toEqual(expect.arrayContaining(['000001.data', '000001.tags', 'shard-000']));
      expect(shape.renames).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('the log is compacted into a new base (temporary file, rename) once it would pass 64 KiB, and the store reopens with everything', async () => {
    const dir = temporary();
    const { db, fileSystem } = await openCounting(dir, { shards: 1 });
    let replacements = 0;
    let appends = 0;
    try {
      // One record of about 220 bytes per barrier: some 300 barriers fill 64 KiB.
      for (let round = 0; round < 400; round++) {
        const shape = shapeOf(await barrierEvents(db, fileSystem, () => db.put(keyOf(round % 50), valueFor(round % 50, round))));
        if (shape.renames > 0) replacements++;
        else appends++;
        expect(shape.manifestFsyncs).toBe(1);
      }
      expect(replacements).toBeGreaterThanOrEqual(1);
      expect(appends).toBeGreaterThan(300);
      const { log } = manifestOf(dir);
      expect(log.validBytes - log.baseBytes).toBeLessThanOrEqual(64 * 1024);
    } finally {
      await db.close();
    }
    const reopened = await VarMap.open(dir, options({ shards: 1 }));
    try {
      for (let index = 0; index < 50; index++) {
        const last = 350 + ((index - (350 % 50) + 50) % 50);
        expect(reopened.get(keyOf(index))).toEqual(valueFor(index, last));
      }
    } finally {
      await reopened.close();
    }
  });

  it('changeKey replaces the MANIFEST whole (signed under the new key); later barriers append again', async () => {
    const dir = temporary();
    const { db, fileSystem } = await openCounting(dir, { shards: 1 });
    try {
      await barrierEvents(db, fileSystem, () => db.put(keyOf(1), valueFor(1)));
      fileSystem.events.length = 0;
      await db.changeKey({ key: testKey(6) });
      expect(fileSystem.events.filter((event) => event.kind === 'rename').map((event) => path.basename(event.path))).toContain('MANIFEST');
      // The first barrier after the rotation completed replaces the MANIFEST (the base drops the old key's MAC) ...
      const after = shapeOf(await barrierEvents(db, fileSystem, () => db.put(keyOf(2), valueFor(2))));
      expect(after.renames).toBe(1);
      // ... and the next one appends.
      const next = shapeOf(await barrierEvents(db, fileSystem, () => db.put(keyOf(3), valueFor(3))));
      expect(next.renames).toBe(0);
      expect(next.manifestFsyncs).toBe(1);
    } finally {
      await db.close();
    }
    const reopened = await VarMap.open(dir, options({ shards: 1, encryption: { key: testKey(6) } }));
    try {
      for (const index of [1, 2, 3]) expect(reopened.get(keyOf(index))).toEqual(valueFor(index));
    } finally {
      await reopened.close();
    }
  });

  it('a version-2 store (the committed fixture) opens, its first barrier replaces its MANIFEST with version 3, the next one appends', async () => {
    const dir = temporary();
    const fixture = fileURLToPath(new URL('../../fixtures/stores/pristine/', import.meta.url));
    fs.cpSync(fixture, dir, { recursive: true });
    fs.chmodSync(path.join(dir, 'KEYRING'), 0o600);
    expect(peekManifestFormatVersion(fs.readFileSync(path.join(dir, 'MANIFEST')))).toBe(2);
    const { KEY_SIZE, SHARDS, TEST_KEY } = await import('../../fixtures/stores/contents.mjs');
    const fixtureOptions = { keySize: KEY_SIZE, shards: SHARDS, encryption: { key: TEST_KEY }, syncIntervalMs: 0, autoCompact: false };
    const fileSystem = new CountingFileSystem();
    const db = await VarMap.open(dir, withEngineHooks({ ...fixtureOptions }, { fileSystem }));
    try {
      const upgrade = shapeOf(await barrierEvents(db, fileSystem, () => db.put(new Uint8Array(KEY_SIZE).fill(1), valueFor(1))));
      expect(upgrade.renames).toBe(1);
      expect(peekManifestFormatVersion(fs.readFileSync(path.join(dir, 'MANIFEST')))).toBe(3);
      const append = shapeOf(await barrierEvents(db, fileSystem, () => db.put(new Uint8Array(KEY_SIZE).fill(2), valueFor(2))));
      expect(append.renames).toBe(0);
      expect(append.manifestFsyncs).toBe(1);
    } finally {
      await db.close();
    }
    const reopened = await VarMap.open(dir, fixtureOptions);
    try {
      expect(reopened.get(new Uint8Array(KEY_SIZE).fill(2))).toEqual(valueFor(2));
    } finally {
      await reopened.close();
    }
  });
});

describe('a torn append', () => {
  it('the last record cut short or zero-filled: the store opens at the state before it, keeps the synced data, and its next barrier replaces the MANIFEST', async () => {
    for (const damage of ['cut', 'zeroed'] as const) {
      const dir = temporary();
      await storeWithLog(dir, 3);
      const { bytes, bounds } = recordBounds(dir);
      const last = bounds.at(-1)!;
      const epochBefore = readManifestUnauthenticated(bytes.subarray(0, last.start)).manifest.epoch;
      const middle = last.start + Math.floor((last.end - last.start) / 2);
      const image =
        damage === 'cut' ? bytes.subarray(0, middle) : Buffer.concat([bytes.subarray(0, middle), Buffer.alloc(bytes.length - middle)]);
      fs.writeFileSync(path.join(dir, 'MANIFEST'), image);
      expect(manifestOf(dir).log.tornBytes).toBeGreaterThan(0);
      const { db, fileSystem } = await openCounting(dir, { shards: 1 });
      try {
        // The records the torn append would have recorded were fsynced before it: recovery replays them.
        for (let round = 0; round < 3; round++) expect(db.get(keyOf(round)), damage).toEqual(valueFor(round));
        expect(db.stats().epoch).toBeGreaterThanOrEqual(epochBefore);
        // The first barrier, the open's own when recovery sealed the active file (the cut record was
        // close()'s), else this sync(): never an append after a torn tail.
        const atOpen = shapeOf(fileSystem.events).renames;
        const shape = shapeOf(await barrierEvents(db, fileSystem, () => db.put(keyOf(9), valueFor(9))));
        expect(atOpen + shape.renames).toBe(1);
        expect(shape.manifestFsyncs).toBe(1);
      } finally {
        await db.close();
      }
      expect(manifestOf(dir).log.tornBytes).toBe(0);
      expect(await openOutcome(dir, { shards: 1 })).toBeUndefined();
    }
  });
});

/** Opens and closes `dir`; the ArmdbError code of a refusal, or undefined. */
async function openOutcome(dir: string, extra: Partial<OpenOptions> = {}): Promise<string | undefined> {
  try {
    const db = await VarMap.open(dir, options(extra));
    await db.close();
  } catch (error) {
    if (error instanceof ArmdbError) return error.code;
    throw error;
  }
  return undefined;
}

/** A store whose MANIFEST holds a base and at least `records` records (one sync each, one shard). */
async function storeWithLog(dir: string, records: number, extra: Partial<OpenOptions> = {}): Promise<void> {
  const db = await VarMap.open(dir, options({ shards: 1, ...extra }));
  try {
    for (let round = 0; round < records; round++) {
      db.put(keyOf(round), valueFor(round));
      await db.sync();
    }
  } finally {
    await db.close();
  }
}

/** Where each record of the MANIFEST in `dir` starts and ends (after any padding before it). */
function recordBounds(dir: string): { bytes: Buffer; bounds: { start: number; end: number }[] } {
  const bytes = fs.readFileSync(path.join(dir, 'MANIFEST'));
  const { log } = readManifestUnauthenticated(bytes);
  const bounds: { start: number; end: number }[] = [];
  let position = log.baseBytes;
  while (position < log.validBytes) {
    const length = bytes.readUInt32LE(position);
    if (length === 0) {
      position = Math.ceil((position + 1) / 4096) * 4096;
      continue;
    }
    bounds.push({ start: position, end: position + length });
    position += length;
  }
  expect(bounds).toHaveLength(log.records);
  return { bytes, bounds };
}

describe('a tampered MANIFEST log is refused at open', () => {
  it('a flipped byte in any appended record (the last one included) → ARMDB_INTEGRITY', async () => {
    const dir = temporary();
    await storeWithLog(dir, 4);
    const { bytes, bounds } = recordBounds(dir);
    expect(bounds.length).toBeGreaterThanOrEqual(4);
    for (const { start, end } of bounds) {
      // The length, the epoch, an entry, the MAC, the end marker.
      for (const offset of [start, start + 16, start + 70, end - 10, end - 1]) {
        const image = Buffer.from(bytes);
        image[offset]! ^= 0x10;
        fs.writeFileSync(path.join(dir, 'MANIFEST'), image);
        expect(await openOutcome(dir, { shards: 1 }), `offset ${offset}`).toBe('ARMDB_INTEGRITY');
      }
    }
    fs.writeFileSync(path.join(dir, 'MANIFEST'), bytes);
    expect(await openOutcome(dir, { shards: 1 })).toBeUndefined();
  });

  it('a record removed from the middle, or two records swapped → ARMDB_INTEGRITY', async () => {
    const dir = temporary();
    await storeWithLog(dir, 4);
    const { bytes, bounds } = recordBounds(dir);
    const [first, second, third] = bounds as [(typeof bounds)[0], (typeof bounds)[0], (typeof bounds)[0]];
    const piece = (bound: { start: number; end: number }): Buffer => bytes.subarray(bound.start, bound.end);
    const head = bytes.subarray(0, first.start);
    const tail = bytes.subarray(third.end);
    // Records of one small store sit in the first 4 KiB of log: no padding between them.
    expect(second.start).toBe(first.end);
    expect(third.start).toBe(second.end);
    for (const spliced of [
      Buffer.concat([head, piece(first), piece(third), tail]),
      Buffer.concat([head, piece(second), piece(first), piece(third), tail]),
    ]) {
      fs.writeFileSync(path.join(dir, 'MANIFEST'), spliced);
      expect(await openOutcome(dir, { shards: 1 })).toBe('ARMDB_INTEGRITY');
    }
  });

  it('a record taken from another store (same key, same history) → ARMDB_INTEGRITY', async () => {
    const dir = temporary();
    const other = temporary();
    await storeWithLog(dir, 3);
    await storeWithLog(other, 4);
    const ours = recordBounds(dir);
    const theirs = recordBounds(other);
    const foreign = theirs.bounds[ours.bounds.length]!;
    const image = Buffer.concat([ours.bytes.subarray(0, ours.bounds.at(-1)!.end), theirs.bytes.subarray(foreign.start, foreign.end)]);
    fs.writeFileSync(path.join(dir, 'MANIFEST'), image);
    expect(await openOutcome(dir, { shards: 1 })).toBe('ARMDB_INTEGRITY');
  });

  it('the log cut back to a state before a compaction retired its inputs (the files prove a newer state) → refused as a replaced older MANIFEST is', async () => {
    const dir = temporary();
    const small = { shards: 1, maxFileBytes: 64 * 1024 };
    const db = await VarMap.open(dir, options(small));
    try {
      for (let round = 0; round < 3; round++) {
        for (let index = 0; index < 600; index++) db.put(keyOf(index), valueFor(index, round));
        await db.sync();
      }
      const before = recordBounds(dir);
      await db.compact();
      await db.sync();
      const after = recordBounds(dir);
      // Still one log: compaction's MANIFEST switch was appended to it.
      expect(after.bytes.subarray(0, before.bounds.at(-1)!.end).equals(before.bytes.subarray(0, before.bounds.at(-1)!.end))).toBe(true);
      expect(after.bounds.length).toBeGreaterThan(before.bounds.length);
    } finally {
      await db.close();
    }
    const { bytes, bounds } = recordBounds(dir);
    const listedNow = new Set(manifestOf(dir).manifest.files.map((file) => file.fileId));
    // Cut the log back to the last record that still listed a file compaction has since deleted.
    let cut: number | undefined;
    for (const bound of bounds) {
      const image = bytes.subarray(0, bound.end);
      const listed = readManifestUnauthenticated(image).manifest.files.map((file) => file.fileId);
      if (listed.some((fileId) => !listedNow.has(fileId))) cut = bound.end;
    }
    expect(cut).toBeDefined();
    fs.writeFileSync(path.join(dir, 'MANIFEST'), bytes.subarray(0, cut));
    expect(await openOutcome(dir, small)).toBe('ARMDB_INTEGRITY');
  });
});
