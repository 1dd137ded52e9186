/**
 * Hint files and compaction: open with hints reads no data page; a missing, stale or damaged hint makes
 * that one file be scanned, with the same result; compaction keeps exactly the live state, reclaims
 * space, never brings a deleted key back, and a store compacted and reopened equals a plain model.
 */
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { withEngineHooks } from '../../../src/internal/engine-hooks.js';
import type { FileSystem } from '../../../src/io/file-system.js';
import { nodeFileSystem } from '../../../src/io/node-file-system.js';
import { VarMap, keys, type OpenOptions } from '../../../src/index.js';
import { forwardHandle } from '../../helpers/forwarding-file-system.js';
import { directoriesRemovedAfterEach } from '../../helpers/temp-dir.js';

const KEY = new Uint8Array(32).fill(0x42);
const makeDirectory = directoriesRemovedAfterEach(false);
const temporaryDirectory = (): string => makeDirectory('hints');

const base: OpenOptions = { keySize: 16, encryption: { key: KEY }, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false };
const keyOf = (index: number) => keys.fromString(`key-${index}`, 16);
const valueFor = (index: number, round: number) => new TextEncoder().encode(`value ${index} round ${round} `.repeat(3));

/** A FileSystem that counts bytes read from `.data` files. */
function countingFileSystem(): { fileSystem: FileSystem; dataBytesRead: () => number } {
  let dataBytesRead = 0;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    open(filePath, mode) {
      const handle = nodeFileSystem.open(filePath, mode);
      if (!filePath.endsWith('.data')) return handle;
      return forwardHandle(handle, {
        read(target, position) {
          const read = handle.read(target, position);
          dataBytesRead += read;
          return read;
        },
      });
    },
  };
  return { fileSystem, dataBytesRead: () => dataBytesRead };
}

async function writeStore(directory: string, count = 3000): Promise<Map<string, string>> {
  const model = new Map<string, string>();
  const db = await VarMap.open(directory, base);
  for (let round = 0; round < 3; round++) {
    for (let index = 0; index < count; index++) {
      if (round > 0 && index % 3 === 0) continue;
      db.put(keyOf(index), valueFor(index, round));
      model.set(String(index), Buffer.from(valueFor(index, round)).toString());
    }
  }
  for (let index = 0; index < count; index += 5) {
    db.delete(keyOf(index));
    model.delete(String(index));
  }
  await db.close();
  return model;
}

function contentsOf(db: VarMap, count = 3000): Map<string, string> {
  const found = new Map<string, string>();
  for (let index = 0; index < count; index++) {
    const value = db.get(keyOf(index));
    if (value !== undefined) found.set(String(index), Buffer.from(value).toString());
  }
  return found;
}

describe('hint files', () => {
  it('open with hints reads no data page; without them it reads every page', async () => {
    const directory = temporaryDirectory();
    const model = await writeStore(directory);
    const withHints = countingFileSystem();
    let db = await VarMap.open(directory, withEngineHooks({ ...base }, { fileSystem: withHints.fileSystem }));
    expect(withHints.dataBytesRead()).toBe(0);
    expect(db.stats().filesFromHints).toBeGreaterThan(0);
    expect(db.size).toBe(model.size);
    expect(contentsOf(db)).toEqual(model);
    await db.close();

    const withoutHints = countingFileSystem();
    db = await VarMap.open(directory, withEngineHooks({ ...base, hints: false }, { fileSystem: withoutHints.fileSystem }));
    expect(withoutHints.dataBytesRead()).toBeGreaterThan(0);
    expect(db.stats().filesFromHints).toBe(0);
    expect(contentsOf(db)).toEqual(model);
    await db.close();
  });

  it('hints of files with thousands of records (the bulk path): version 3 (the hint of record version 2), and the same index as a scan', async () => {
    const directory = temporaryDirectory();
    const options: OpenOptions = { ...base, shards: 1, maxFileBytes: 2 ** 20 };
    const count = 12_000;
    const model = new Map<string, string>();
    let db = await VarMap.open(directory, options);
    // Overwrites within a file and across files, deletions, keys deleted then written again.
    for (let round = 0; round < 3; round++) {
      for (let index = round * 2000; index < count; index += round + 1) {
        db.put(keyOf(index), valueFor(index, round));
        model.set(String(index), Buffer.from(valueFor(index, round)).toString());
      }
      for (let index = round; index < count; index += 7) {
        db.delete(keyOf(index));
        model.delete(String(index));
      }
    }
    await db.close();
    const shard = path.join(directory, 'shard-000');
    const hints = fs.readdirSync(shard).filter((name) => name.endsWith('.hint'));
    expect(hints.length).toBeGreaterThanOrEqual(2);
    for (const hint of hints) expect(fs.readFileSync(path.join(shard, hint)).readUInt16LE(8)).toBe(3);

    const withHints = countingFileSystem();
    db = await VarMap.open(directory, withEngineHooks({ ...options }, { fileSystem: withHints.fileSystem }));
    expect(withHints.dataBytesRead()).toBe(0);
    expect(db.stats().filesFromHints).toBe(hints.length);
    expect(contentsOf(db, count)).toEqual(model);
    expect(db.size).toBe(model.size);
    const liveWithHints = db.stats().deadBytes;
    await db.close();

    db = await VarMap.open(directory, { ...options, hints: false });
    expect(contentsOf(db, count)).toEqual(model);
    expect(db.stats().deadBytes).toBe(liveWithHints);
    await db.close();
  });

  it.each([
    [
      'a flipped bit in a chunk',
      (bytes: Buffer) => {
        bytes[bytes.length - 40]! ^= 1;
      },
    ],
    [
      'a flipped bit in the header',
      (bytes: Buffer) => {
        bytes[40]! ^= 1;
      },
    ],
    ['truncation by one byte', (bytes: Buffer) => bytes.subarray(0, bytes.length - 1)],
    ['truncation to zero', () => Buffer.alloc(0)],
    ['an extra byte', (bytes: Buffer) => Buffer.concat([bytes, Buffer.from([0])])],
  ] as const)('a damaged hint (%s) is reported and its data file scanned: the contents are identical', async (_name, damage) => {
    const directory = temporaryDirectory();
    const model = await writeStore(directory);
    const hint = fs.readdirSync(path.join(directory, 'shard-000')).find((name) => name.endsWith('.hint'))!;
    const hintPath = path.join(directory, 'shard-000', hint);
    const bytes = fs.readFileSync(hintPath);
    const damaged = damage(bytes) ?? bytes;
    fs.writeFileSync(hintPath, damaged);
    const db = await VarMap.open(directory, base);
    expect(db.stats().damagedHints).toBe(1);
    expect(contentsOf(db)).toEqual(model);
    expect((await db.verify()).ok).toBe(true);
    await db.close();
  });

  it('a missing hint, or a stale one from another instance, is not trusted', async () => {
    const directory = temporaryDirectory();
    const model = await writeStore(directory);
    const shard = path.join(directory, 'shard-001');
    const hints = fs.readdirSync(shard).filter((name) => name.endsWith('.hint'));
    expect(hints.length).toBeGreaterThanOrEqual(2);
    // Stale: another file's (authentic) hint under this file's name. Missing: the other one deleted.
    fs.copyFileSync(path.join(shard, hints[1]!), path.join(shard, hints[0]!));
    fs.rmSync(path.join(shard, hints[1]!));
    const db = await VarMap.open(directory, base);
    expect(db.stats().damagedHints).toBe(2);
    expect(contentsOf(db)).toEqual(model);
    await db.close();
  });

  it('a hint left without its data file (the file was retired while its hint was written) is deleted at open', async () => {
    const directory = temporaryDirectory();
    const model = await writeStore(directory);
    const shard = path.join(directory, 'shard-001');
    const hint = fs.readdirSync(shard).find((name) => name.endsWith('.hint'))!;
    // An id no data file has (the store's ids are small).
    const orphan = path.join(shard, '999999.hint');
    fs.copyFileSync(path.join(shard, hint), orphan);
    const db = await VarMap.open(directory, base);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(db.stats().damagedHints).toBe(0);
    expect(contentsOf(db)).toEqual(model);
    await db.close();
    expect(
      fs
        .readdirSync(shard)
        .filter((name) => name.endsWith('.hint'))
        .every((name) => fs.existsSync(path.join(shard, name.replace('.hint', '.data')))),
    ).toBe(true);
  });

  it('hints are written again for files whose hint was damaged', async () => {
    const directory = temporaryDirectory();
    await writeStore(directory);
    const shard = path.join(directory, 'shard-000');
    for (const name of fs.readdirSync(shard).filter((file) => file.endsWith('.hint'))) fs.rmSync(path.join(shard, name));
    let db = await VarMap.open(directory, base);
    expect(db.stats().damagedHints).toBeGreaterThan(0);
    await db.close();
    db = await VarMap.open(directory, base);
    expect(db.stats().damagedHints).toBe(0);
    await db.close();
  });
});

describe('compaction', () => {
  it('a store with 90 % of its data overwritten compacts to within 1.3x of its live data', async () => {
    const directory = temporaryDirectory();
    const db = await VarMap.open(directory, { ...base, maxFileBytes: 1 << 20 });
    const value = (round: number) => new Uint8Array(100).fill(round);
    for (let round = 0; round < 10; round++) for (let index = 0; index < 5000; index++) db.put(keyOf(index), value(round));
    await db.sync();
    const report = await db.compact();
    expect(report.bytesReclaimed).toBeGreaterThan(0);
    const liveBytes = 5000 * (16 + 16 + 100); // header + key + value
    let dataBytes = 0;
    for (const name of fs.readdirSync(directory, { recursive: true }) as string[]) {
      if (name.endsWith('.data')) dataBytes += fs.statSync(path.join(directory, name)).size;
    }
    expect(dataBytes / liveBytes).toBeLessThanOrEqual(1.3);
    for (let index = 0; index < 5000; index++) expect(db.get(keyOf(index))).toEqual(value(9));
    await db.close();
  });

  it('writes and deletes made while compaction runs win over what it copies', async () => {
    const directory = temporaryDirectory();
    const db = await VarMap.open(directory, base);
    for (let round = 0; round < 4; round++) for (let index = 0; index < 3000; index++) db.put(keyOf(index), valueFor(index, round));
    const running = db.compact();
    // Compaction yields between slices; mutate meanwhile.
    for (let index = 0; index < 3000; index += 2) db.put(keyOf(index), valueFor(index, 99));
    for (let index = 1; index < 3000; index += 4) db.delete(keyOf(index));
    await running;
    const check = (store: VarMap) => {
      for (let index = 0; index < 3000; index++) {
        const expected = index % 2 === 0 ? valueFor(index, 99) : index % 4 === 1 ? undefined : valueFor(index, 3);
        expect(store.get(keyOf(index))).toEqual(expected);
      }
    };
    check(db);
    await db.close();
    const reopened = await VarMap.open(directory, base);
    check(reopened);
    await reopened.close();
  });

  it('no deleted key comes back when only the files holding its tombstones are compacted', async () => {
    const directory = temporaryDirectory();
    let db = await VarMap.open(directory, base);
    for (let index = 0; index < 2000; index++) db.put(keyOf(index), valueFor(index, 0));
    await db.close();
    const oldFiles = new Set((fs.readdirSync(directory, { recursive: true }) as string[]).filter((name) => name.endsWith('.data')));
    // Session 2: delete every even key (tombstones) and overwrite other, new keys many times, so the new
    // files are ~90 % dead while the old ones are 50 % dead: with a threshold of 0.6 only the new ones
    // are compacted, and their tombstones must survive because the old files still hold the keys.
    db = await VarMap.open(directory, { ...base, autoCompact: true, compactionThreshold: 0.6 });
    for (let index = 0; index < 2000; index += 2) db.delete(keyOf(index));
    for (let round = 1; round <= 8; round++) for (let index = 2000; index < 2500; index++) db.put(keyOf(index), valueFor(index, round));
    await db.sync();
    await vi.waitFor(() => expect(db.stats().compactions).toBeGreaterThan(0), { timeout: 30_000, interval: 20 });
    const remaining = (fs.readdirSync(directory, { recursive: true }) as string[]).filter((name) => name.endsWith('.data'));
    for (const name of oldFiles) expect(remaining).toContain(name);
    await db.close();
    db = await VarMap.open(directory, base);
    for (let index = 0; index < 2000; index++) {
      if (index % 2 === 0) expect(db.get(keyOf(index))).toBeUndefined();
      else expect(db.get(keyOf(index))).toEqual(valueFor(index, 0));
    }
    for (let index = 2000; index < 2500; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index, 8));
    await db.close();
  });

  it('property: random puts, deletes, compactions and reopens equal a plain Map', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('put' as const), key: fc.nat(40), size: fc.nat(300) }),
            fc.record({ kind: fc.constant('delete' as const), key: fc.nat(40) }),
            fc.constant({ kind: 'compact' as const }),
            fc.constant({ kind: 'reopen' as const }),
          ),
          { maxLength: 120 },
        ),
        async (operations) => {
          const directory = temporaryDirectory();
          const options = { ...base, maxFileBytes: 65536, writeBufferBytes: 4096 };
          const model = new Map<number, Uint8Array>();
          let db = await VarMap.open(directory, options);
          try {
            for (const operation of operations) {
              if (operation.kind === 'put') {
                const value = new Uint8Array(randomBytes(operation.size));
                db.put(keyOf(operation.key), value);
                model.set(operation.key, value);
              } else if (operation.kind === 'delete') {
                expect(db.delete(keyOf(operation.key))).toBe(model.delete(operation.key));
              } else if (operation.kind === 'compact') {
                await db.compact();
              } else {
                await db.close();
                db = await VarMap.open(directory, options);
              }
            }
            await db.close();
            db = await VarMap.open(directory, options);
            expect(db.size).toBe(model.size);
            for (let key = 0; key <= 40; key++) expect(db.get(keyOf(key))).toEqual(model.get(key));
          } finally {
            await db.close();
          }
        },
      ),
      { numRuns: 25, seed: 0xc0c0 },
    );
  });
});

/**
 * The real file system with every fsync, directory sync and removal done at once: compaction then
 * needs only a few turns of the event loop, so its order against verify's slices is fixed by the
 * amount of work, not by the disk. (No crash in these tests, so skipping fsync loses nothing.)
 */
function instantFileSystem(): FileSystem {
  return {
    ...nodeFileSystem,
    open(filePath, mode) {
      return forwardHandle(nodeFileSystem.open(filePath, mode), { sync: () => Promise.resolve() });
    },
    writeFile(filePath, bytes) {
      fs.writeFileSync(filePath, bytes, { mode: 0o600 });
      return Promise.resolve();
    },
    removeFile(filePath) {
      fs.unlinkSync(filePath);
      return Promise.resolve();
    },
    syncDirectory: () => Promise.resolve(),
  };
}

describe('verify while compaction runs', () => {
  it('skips a file compaction retired between two slices and verifies the files it wrote', async () => {
    const directory = temporaryDirectory();
    // 512-byte records tile the pages exactly, so the first file has no dead bytes and stays; the second
    // holds every key twice, so compaction retires it while verify is still on the first.
    const hooks = { fileSystem: instantFileSystem() };
    const options = withEngineHooks(
      { keySize: 16, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0, autoCompact: false } as OpenOptions,
      hooks,
    );
    const value = new Uint8Array(512 - 16 - 16).fill(7);
    let db = await VarMap.open(directory, options);
    for (let index = 0; index < 8 * 64 * 12; index++) db.put(keyOf(index), value);
    await db.close();
    db = await VarMap.open(directory, options);
    for (let round = 0; round < 2; round++) for (let index = 0; index < 40; index++) db.put(keys.fromString(`dead-${index}`, 16), value);
    await db.close();
    db = await VarMap.open(directory, withEngineHooks({ ...options, hints: false }, hooks));
    try {
      const firstFilePages = 12 * 64;
      let compacted = false;
      const pagesDoneWhenCompacted: number[] = [];
      let last = { pagesDone: 0, pagesTotal: 0 };
      const verifying = db.verify({
        onProgress: (progress) => {
          if (compacted) pagesDoneWhenCompacted.push(progress.pagesDone);
          expect(progress.pagesDone).toBeLessThanOrEqual(progress.pagesTotal);
          last = progress;
        },
      });
      const compaction = await db.compact().finally(() => {
        compacted = true;
      });
      const report = await verifying;
      expect(compaction.filesIn).toBe(1);
      // The race happened: compaction was over while verify was still on the first file.
      expect(pagesDoneWhenCompacted[0]).toBeLessThan(firstFilePages);
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      // Every live page was checked: the first file whole, and the file compaction wrote.
      expect(report.pages).toBeGreaterThan(firstFilePages);
      // Progress ends at its total, the retired file's pages no longer counted in it.
      expect(last).toEqual({ pagesDone: report.pages, pagesTotal: report.pages });
      expect(db.get(keys.fromString('dead-3', 16))).toEqual(value);
      expect(db.get(keyOf(5000))).toEqual(value);
    } finally {
      await db.close();
    }
  });

  it('files written while verify runs are left to the next verify: a writing application cannot keep it running', async () => {
    const directory = temporaryDirectory();
    const options = {
      keySize: 16,
      encryption: { key: KEY },
      shards: 1,
      syncIntervalMs: 0,
      autoCompact: false,
      maxFileBytes: 65536,
      hints: false,
    } as OpenOptions;
    const value = new Uint8Array(1000).fill(3);
    const db = await VarMap.open(directory, options);
    try {
      for (let index = 0; index < 300; index++) db.put(keyOf(index), value);
      await db.sync();
      const filesAtStart = db.stats().files;
      let written = 0;
      const report = await db.verify({
        onProgress: () => {
          // Every slice, more than a whole file of new records: each rotation adds a file.
          for (let index = 0; index < 400; index++) db.put(keyOf(100_000 + written++), value);
        },
      });
      expect(report.ok).toBe(true);
      expect(report.files).toBeLessThanOrEqual(filesAtStart);
      expect(db.stats().files).toBeGreaterThan(filesAtStart);
      expect(written).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });
});

describe('hint writing while compaction runs', () => {
  it('a hint being built for a file that compaction retires is dropped quietly, the store stays whole', async () => {
    const directory = temporaryDirectory();
    const options = withEngineHooks(
      { keySize: 16, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0, autoCompact: false } as OpenOptions,
      { fileSystem: instantFileSystem() },
    );
    const value = new Uint8Array(512 - 16 - 16).fill(9);
    const failures: unknown[] = [];
    const onHint = (message: unknown): void => {
      failures.push(message);
    };
    subscribe('armdb:hint', onHint);
    const db = await VarMap.open(directory, options);
    try {
      // X: 12 chunks of live records; compact() seals it (nothing to compact) and queues its hint.
      for (let index = 0; index < 8 * 64 * 12; index++) db.put(keyOf(index), value);
      await db.compact();
      // Y: 24 chunks of mostly overwritten records, sealed by the next compact(): its hint waits behind
      // X's, so compaction has read Y and retired it while the hint of Y is half built.
      for (let index = 0; index < 8 * 64 * 24; index++) db.put(keys.fromString(`y-${index % 50}`, 16), value);
      const report = await db.compact();
      expect(report.filesIn).toBe(1);
      expect(db.get(keys.fromString('y-7', 16))).toEqual(value);
      expect(db.get(keyOf(77))).toEqual(value);
    } finally {
      await db.close(); // waits for the hint writer
      unsubscribe('armdb:hint', onHint);
    }
    expect(failures).toEqual([]);
    const reopened = await VarMap.open(directory, options);
    expect(reopened.size).toBe(8 * 64 * 12 + 50);
    await reopened.close();
  });
});
