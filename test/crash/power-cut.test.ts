/**
 * Power loss, not only a killed process (docs/durability.md §13): the store runs over the power-cut
 * file system of ./power-cut-fs.ts, a cut is taken before every one of its file operations, and each
 * cut is materialized into crash images (seeded: which unsynced writes and directory changes
 * survive, one write maybe torn). Every image is opened with the real file system and must hold every
 * acknowledged commit, per shard a prefix of the commits (nothing torn or foreign, no half atomic
 * group), verify, and reopen to the same contents. Any error from the open is a failure.
 *
 * A failure names the cut (operation), the image's seed and what the image dropped or tore.
 * The 10,000-cut run is in power-cut.slow.test.ts (`npm run slow`).
 */
import { closeSync, existsSync, openSync, readFileSync, statSync, truncateSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_BYTES, TAG_BYTES } from '../../src/format/constants.js';
import { TAG_FOOTER_BYTES, TAG_HEADER_BYTES } from '../../src/format/tag-file.js';
import { FaultFileSystem, SimulatedCrash } from './fault-fs.js';
import { PIECE_BYTES, PowerCutFileSystem } from './power-cut-fs.js';
import {
  powerCutCompaction,
  powerCutCreation,
  powerCutDuringRecovery,
  powerCutDurableCommits,
  powerCutJournalRestarts,
  powerCutKeyLifecycle,
  powerCutMaintenance,
  powerCutWalk,
} from './power-cut-walks.js';
import { checkCuts, collectCuts, STORE } from './power-cut-scenario.js';
import {
  applyCommits,
  checkRecovered,
  type Commit,
  execute,
  keyOf,
  newExecution,
  openMap,
  readAll,
  temporaryDirectory,
  universe,
  valueFor,
  workload,
} from './scenario.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function directory(prefix: string): string {
  const made = temporaryDirectory(prefix);
  cleanups.push(made.cleanup);
  return made.path;
}

const filled = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte);

/** Materializes `seeds` images of the file system's current state; calls `check` with each image root and report. */
function eachImage(
  fs: PowerCutFileSystem,
  seeds: number,
  check: (image: string, keepProbability: number, torn: string | undefined) => void,
): Set<number> {
  const state = fs.snapshot();
  const probabilities = new Set<number>();
  for (let seed = 1; seed <= seeds; seed++) {
    const image = path.join(directory('power-fs-image'), 'image');
    const report = state.materialize(image, seed);
    probabilities.add(report.keepProbability);
    check(image, report.keepProbability, report.torn);
  }
  return probabilities;
}

// ---- the harness itself ------------------------------------------------------------------------

describe('PowerCutFileSystem', () => {
  it('a file fsynced but whose directory was not fsynced may vanish; after the directory fsync its synced data survives', async () => {
    const root = directory('power-fs-name');
    const fs = new PowerCutFileSystem(root);
    const handle = fs.open(path.join(root, 'a'), 'create');
    handle.write(filled(8192, 1), 0);
    await handle.sync();
    const seen = eachImage(fs, 24, (image, keep) => {
      // The data is durable, the name is not: with nothing unsynced kept, the file is gone.
      if (keep === 0) expect(existsSync(path.join(image, 'a'))).toBe(false);
      if (keep === 1) expect(readFileSync(path.join(image, 'a'))).toEqual(Buffer.from(filled(8192, 1)));
    });
    expect(seen).toEqual(new Set([0, 0.5, 0.9, 1]));
    await fs.syncDirectory(root);
    handle.write(filled(4096, 2), 8192);
    eachImage(fs, 24, (image, keep, torn) => {
      const bytes = readFileSync(path.join(image, 'a'));
      expect(bytes.subarray(0, 8192)).toEqual(Buffer.from(filled(8192, 1)));
      if (keep === 0 && torn === undefined) expect(bytes.length).toBe(8192);
      // The unsynced page: absent, whole, or a torn prefix of it.
      expect(bytes.length).toBeLessThanOrEqual(12288);
      expect(bytes.subarray(8192).every((byte) => byte === 2)).toBe(true);
    });
    handle.close();
  });

  it('unsynced writes survive in 4 KiB pieces, in any combination, at most one torn; holes read as zeros', async () => {
    const root = directory('power-fs-pieces');
    const fs = new PowerCutFileSystem(root);
    const handle = fs.open(path.join(root, 'a'), 'create');
    await fs.syncDirectory(root);
    const pages = 4;
    const source = new Uint8Array(pages * PIECE_BYTES);
    for (let page = 0; page < pages; page++) source.fill(page + 1, page * PIECE_BYTES, (page + 1) * PIECE_BYTES);
    handle.write(source, 0);
    const patterns = new Set<string>();
    let tornImages = 0;
    eachImage(fs, 80, (image, _keep, torn) => {
      const bytes = new Uint8Array(readFileSync(path.join(image, 'a')));
      expect(bytes.length % PIECE_BYTES === 0 || torn !== undefined).toBe(true);
      let pattern = '';
      let partial = 0;
      for (let page = 0; page * PIECE_BYTES < bytes.length; page++) {
        const slice = bytes.subarray(page * PIECE_BYTES, (page + 1) * PIECE_BYTES);
        if (slice.length === PIECE_BYTES && slice.every((byte) => byte === page + 1)) pattern += 'W';
        else if (slice.every((byte) => byte === 0)) pattern += '0';
        else {
          // A torn piece: a prefix of the page's bytes, then zeros.
          const kept = slice.findIndex((byte) => byte !== page + 1);
          if (kept >= 0) expect(slice.subarray(kept).every((byte) => byte === 0)).toBe(true);
          partial++;
          pattern += 'T';
        }
      }
      expect(partial).toBeLessThanOrEqual(1);
      if (torn !== undefined) tornImages++;
      patterns.add(pattern);
    });
    // Some images keep a later page without an earlier one (a hole), some keep all, some none.
    expect(patterns.has('')).toBe(true);
    expect(patterns.has('WWWW')).toBe(true);
    expect([...patterns].some((pattern) => /0W/.test(pattern))).toBe(true);
    expect(tornImages).toBeGreaterThan(0);
    handle.close();
  });

  it('a replaced file comes back as the old one until the directory is fsynced; never torn, since both were synced', async () => {
    const root = directory('power-fs-rename');
    const fs = new PowerCutFileSystem(root);
    const target = path.join(root, 'MANIFEST');
    await fs.writeFile(target, filled(100, 1));
    await fs.syncDirectory(root);
    await fs.writeFile(`${target}.tmp`, filled(120, 2));
    fs.rename(`${target}.tmp`, target);
    const versions = new Set<number>();
    eachImage(fs, 40, (image) => {
      const bytes = readFileSync(path.join(image, 'MANIFEST'));
      expect([Buffer.from(filled(100, 1)), Buffer.from(filled(120, 2))]).toContainEqual(bytes);
      versions.add(bytes.length);
      // The rename happened whole or not at all: the new bytes are never under both names.
      if (bytes.length === 120) expect(existsSync(path.join(image, 'MANIFEST.tmp'))).toBe(false);
    });
    expect(versions).toEqual(new Set([100, 120]));
    await fs.syncDirectory(root);
    eachImage(fs, 10, (image) => expect(readFileSync(path.join(image, 'MANIFEST'))).toEqual(Buffer.from(filled(120, 2))));
  });

  it('an unlinked file may reappear with its synced data; a new directory vanishes with everything in it until its parent is fsynced', async () => {
    const root = directory('power-fs-unlink');
    const fs = new PowerCutFileSystem(root);
    await fs.writeFile(path.join(root, 'old'), filled(10, 7));
    await fs.syncDirectory(root);
    fs.unlink(path.join(root, 'old'));
    fs.makeDirectory(path.join(root, 'sub'));
    await fs.writeFile(path.join(root, 'sub', 'f'), filled(5, 9));
    await fs.syncDirectory(path.join(root, 'sub'));
    const outcomes = new Set<string>();
    eachImage(fs, 40, (image) => {
      const old = existsSync(path.join(image, 'old'));
      if (old) expect(readFileSync(path.join(image, 'old'))).toEqual(Buffer.from(filled(10, 7)));
      const sub = existsSync(path.join(image, 'sub'));
      // Directory changes persist in order: the mkdir after the unlink never survives without it.
      if (sub) expect(old).toBe(false);
      if (sub) expect(readFileSync(path.join(image, 'sub', 'f'))).toEqual(Buffer.from(filled(5, 9)));
      outcomes.add(`${old}/${sub}`);
    });
    expect(outcomes).toEqual(new Set(['true/false', 'false/false', 'false/true']));
  });

  it('at a cut the operation does not happen, every later one throws, and an fsync in flight rejects', async () => {
    const root = directory('power-fs-cut');
    const fs = new PowerCutFileSystem(root);
    const handle = fs.open(path.join(root, 'a'), 'create');
    handle.write(filled(10, 1), 0);
    const inFlight = handle.sync();
    fs.cutAt(1);
    expect(() => handle.write(filled(10, 2), 10)).toThrow(SimulatedCrash);
    await expect(inFlight).rejects.toBeInstanceOf(SimulatedCrash);
    expect(() => fs.list(root)).toThrow(SimulatedCrash);
    await expect(fs.syncDirectory(root)).rejects.toBeInstanceOf(SimulatedCrash);
    handle.close();
    expect(fs.crashed).toBe(true);
    expect(fs.log.at(-1)).toMatchObject({ kind: 'write', outcome: 'crashed' });
    // The state at the cut: the fsync did not complete, so neither name nor data need survive.
    const image = path.join(directory('power-fs-cut-image'), 'image');
    const report = fs.crashState!.materialize(image, 3);
    if (report.keepProbability === 0) expect(existsSync(path.join(image, 'a'))).toBe(false);
  });

  it('the same seed gives the same image', async () => {
    const root = directory('power-fs-seed');
    const fs = new PowerCutFileSystem(root);
    const handle = fs.open(path.join(root, 'a'), 'create');
    handle.write(
      new Uint8Array(5 * PIECE_BYTES).map((_, index) => index & 0xff),
      100,
    );
    const state = fs.snapshot();
    for (const seed of [1, 2, 3, 4, 5]) {
      const first = path.join(directory('power-fs-seed-a'), 'image');
      const second = path.join(directory('power-fs-seed-b'), 'image');
      expect(state.materialize(first, seed)).toEqual(state.materialize(second, seed));
      expect(existsSync(path.join(first, 'a'))).toBe(existsSync(path.join(second, 'a')));
      if (existsSync(path.join(first, 'a'))) expect(readFileSync(path.join(first, 'a'))).toEqual(readFileSync(path.join(second, 'a')));
    }
    handle.close();
  });
});

// ---- the engine under power cuts -------------------------------------------------------------------

describe('a power cut before any file operation of a workload', () => {
  it('the fault-injection walk (rotations of both shards, two manifest updates, close with hints): every image recovers', async () => {
    const { cuts, images, problems } = await powerCutWalk({ seedsPerCut: 2, seedBase: 0x5eed0000 });
    expect(cuts).toBeGreaterThan(150);
    expect(images).toBeGreaterThan(300);
    expect(problems).toEqual([]);
  });

  it('creating a store, writing, syncing and closing it: every image recovers (before the first MANIFEST, as an empty store)', async () => {
    const { cuts, images, problems } = await powerCutCreation({ seedsPerCut: 1, seedBase: 0x5eed1000 });
    expect(cuts).toBeGreaterThan(80);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });

  it('durable commits, a sync() after every step (journal chunks and their fsyncs, MANIFEST replacements, close retiring the journals): every image recovers', async () => {
    const { cuts, images, problems } = await powerCutDurableCommits({ seedsPerCut: 1, seedBase: 0x5eed5000 });
    expect(cuts).toBeGreaterThan(200);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });

  it('journals starting over: 60 durable commits on one shard, the journal passing 8 KiB into its other file and back, a rotation and the journal of the next file: every image recovers', async () => {
    const { cuts, images, problems, journalRestarts } = await powerCutJournalRestarts({ steps: 60, seedsPerCut: 1, seedBase: 0x5eed7000 });
    // The walk covers what it is for: both switches (docs/format.md §6A.4) and a journal begun after a rotation.
    expect(journalRestarts.toSecond).toBeGreaterThan(1);
    expect(journalRestarts.toFirst).toBeGreaterThan(0);
    expect(journalRestarts.ofNewFiles).toBeGreaterThan(0);
    expect(cuts).toBeGreaterThan(250);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });

  it('compact() while writes and syncs go on (outputs, MANIFEST switch, unlinks, hints): every image recovers', async () => {
    const { cuts, images, problems } = await powerCutCompaction({ seedsPerCut: 1, seedBase: 0x5eed2000 });
    expect(cuts).toBeGreaterThan(200);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });

  it('a reopen from hints, warmup() beside puts, migrate(), close(): every image recovers', async () => {
    const { cuts, images, problems } = await powerCutMaintenance({ seedsPerCut: 1, seedBase: 0x5eed3000 });
    expect(cuts).toBeGreaterThan(60);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });

  it('changeKey, rotateDataKey, compact({ reencrypt: true }) shredding the old key: every image opens with exactly one key and recovers', async () => {
    const { cuts, images, problems } = await powerCutKeyLifecycle({ seedsPerCut: 1, seedBase: 0x5eed4000 });
    expect(cuts).toBeGreaterThan(200);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });

  it('a power cut while recovering from a power cut (every 48th cut of the walk, a cut at every file operation of the recovering open and close): every image recovers', async () => {
    const { cuts, images, problems } = await powerCutDuringRecovery({ seedsPerCut: 1, seedBase: 0x5eed5000, firstCutStride: 48 });
    expect(cuts).toBeGreaterThan(100);
    expect(images).toBe(cuts);
    expect(problems).toEqual([]);
  });
});

// ---- focused cases: engine defects the power cuts found ---------------------------------------------

describe('focused power-cut cases', () => {
  /*
   * Found by the walk above: recovery refused an active file whose tag file was longer than its data
   * file allows (ARMDB_INTEGRITY "tag file 1 is longer (480 bytes) than its data file allows").
   * After a power loss the tag file's growth can reach the disk while the data file's does not: the
   * tags of unsynced pages are there, their pages are not. That is an unsynced tail, not damage.
   * Input: 1 shard, 10 puts, sync(); 60 more puts (whole pages written, not synced); the process
   * dies; the data file loses everything past its durable size, the tag file keeps its tags.
   */
  it('tags of unsynced pages whose data never reached the disk: the store opens with everything synced', async () => {
    const root = directory('tags-ahead');
    const fs = new FaultFileSystem();
    const options = { shards: 1, hints: false };
    const map = await openMap(root, fs, options);
    for (let n = 0; n < 10; n++) map.put(keyOf(n), valueFor(1, n, 0, 300));
    await map.sync();
    const dataPath = path.join(root, 'shard-000', '000001.data');
    const tagPath = path.join(root, 'shard-000', '000001.tags');
    const durableBytes = statSync(dataPath).size;
    for (let n = 0; n < 60; n++) map.put(keyOf(100 + n), valueFor(2, n, 1, 700));
    fs.crashAt(1);
    await map.close().catch(() => undefined);
    truncateSync(dataPath, durableBytes);
    expect(statSync(tagPath).size).toBeGreaterThan(TAG_HEADER_BYTES + (durableBytes / PAGE_BYTES + 1) * TAG_BYTES + TAG_FOOTER_BYTES);
    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await openMap(root, undefined, options); // was: ARMDB_INTEGRITY … tag file 1 is longer … than its data file allows
      try {
        for (let n = 0; n < 10; n++) expect(again.get(keyOf(n))).toEqual(valueFor(1, n, 0, 300));
        expect(again.size).toBe(10);
        expect((await again.verify()).ok).toBe(true);
      } finally {
        await again.close();
      }
    }
  });
});

describe('focused power-cut cases: the log of a shard stays a prefix', () => {
  const options = { shards: 1, hints: false } as const;

  /**
   * The store these cases start from, in `store`: 1 shard, puts, sync(); puts until the file
   * rotates, more puts, flush(); the process dies at its next file operation. Returns the model and
   * the durable sizes of the first file (the sync's), which the cases cut it back to.
   */
  async function rotatedThenKilled(store: string) {
    const fs = new FaultFileSystem();
    const map = await openMap(store, fs, options);
    const baseRun = await execute(map, [...workload({ seed: 5, tag: 1, steps: 30, keys: 40, mix: 'puts' }, () => 0), { kind: 'sync' }]);
    expect(baseRun.error).toBeUndefined();
    const dataPath = path.join(store, 'shard-000', '000001.data');
    const tagPath = path.join(store, 'shard-000', '000001.tags');
    const durableDataBytes = statSync(dataPath).size;
    const durableTagBytes = statSync(tagPath).size;
    const run = await execute(
      map,
      workload({ seed: 6, tag: 2, steps: 160, keys: 40, mix: 'puts' }, () => 0),
    );
    expect(run.error).toBeUndefined();
    map.flush();
    expect(existsSync(path.join(store, 'shard-000', '000002.data'))).toBe(true);
    fs.crashAt(1);
    await map.close().catch(() => undefined);
    return { base: applyCommits(new Map(), baseRun.commits), commits: run.commits, dataPath, tagPath, durableDataBytes, durableTagBytes };
  }

  /** Opens `store` twice: each time a prefix of the commits, and verify() ok. */
  async function expectPrefixRecovered(store: string, base: Map<string, Uint8Array>, commits: Commit[]): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await openMap(store, undefined, options);
      try {
        const contents = readAll(again, universe(base, commits).values());
        // Was: "no prefix of its 160 commits matches": later writes from file 2 without the ones lost from file 1.
        expect(checkRecovered(base, commits, 0, contents, again.size, () => 0)).toEqual([]);
        expect((await again.verify()).ok).toBe(true);
      } finally {
        await again.close();
      }
    }
  }

  /*
   * Found by the walk: after a power loss, the tags of the active file's pages past its durable
   * count (and its footer, written at rotation) were gone, its data pages were there, and the next
   * file, created by the rotation, had reached the disk. Recovery kept the file's valid pages, which
   * ended cleanly at the barrier's padding, did not count that as a cut, and replayed the next file:
   * records written after the lost ones came back without them, which no prefix of the log allows
   * (an overwrite survived while the write before it, to another key, was lost).
   * Input: 1 shard, puts, sync(); puts until the file rotates, more puts, flush(); the process dies;
   * the first file's tag file loses everything past its durable tags.
   */
  it('tags of the unsynced end of a file lost, the next file kept: recovery discards the next file', async () => {
    const root = directory('lost-end');
    const { base, commits, tagPath, durableTagBytes } = await rotatedThenKilled(root);
    truncateSync(tagPath, durableTagBytes);
    await expectPrefixRecovered(root, base, commits);
  });

  /*
   * Found by the slow compaction walk (workload seed 56, cut before operation 378); older than the
   * commit journal (the padding barrier loses the same way). A barrier leaves the active file's
   * valid pages ending cleanly (at its last complete page, the partial page in the journal). The
   * rotation then wrote the rest (pages with later records, their tags, the footer) and created the
   * next file, none of it fsynced. A power loss dropped all of the old file's writes and kept the
   * next file: the old file's pages ended cleanly, its tag file held nothing past them, its journal
   * ended on a whole group, so recovery saw no cut and replayed the next file. Records written
   * after the lost ones came back without them. Only the missing footer shows the lost end.
   * Input: 1 shard, puts, sync(); puts until the file rotates, more puts, flush(); the process dies;
   * the first file's data and tag files both lose everything past their durable size.
   */
  it('the last page, tags and footer of a rotated file all lost, the next file kept: recovery discards the next file', async () => {
    const root = directory('lost-seal');
    const { base, commits, dataPath, tagPath, durableDataBytes, durableTagBytes } = await rotatedThenKilled(root);
    // The sync left whole pages and their tags only (the partial page went to the journal).
    expect(durableTagBytes).toBe(TAG_HEADER_BYTES + (durableDataBytes / PAGE_BYTES) * TAG_BYTES);
    truncateSync(dataPath, durableDataBytes);
    truncateSync(tagPath, durableTagBytes);
    await expectPrefixRecovered(root, base, commits);
  });

  /*
   * Found while fixing the case above: the open that recovers such a store sealed the cut file (its
   * truncation and footer) before it deleted the later file, and a barrier fsynced the file before
   * the directory. A power loss could keep the seal and lose the deletion: the next open found the
   * cut file intact, replayed the later file, and the records lost in between stayed lost while
   * later ones came back. Now the deletions are durable before the seal is written.
   * Input: the store of the case above; its recovering open runs over the power-cut file system,
   * with a cut before every file operation of the open and the close after it, 4 images each.
   */
  it('a power cut during the open that recovers a cut file and deletes the next one: every image keeps a prefix', async () => {
    const root = directory('lost-end-twice');
    const store = path.join(root, STORE);
    const { base, commits, tagPath, durableTagBytes } = await rotatedThenKilled(store);
    truncateSync(tagPath, durableTagBytes);
    const recoveryFs = new PowerCutFileSystem(root);
    const collector = collectCuts(recoveryFs, { ...newExecution(), commits });
    await (await openMap(store, recoveryFs, options)).close();
    const cuts = collector.stop();
    expect(cuts.some((cut) => cut.operation.startsWith('unlink store/shard-000/000002'))).toBe(true);
    const { images, problems } = await checkCuts(cuts, 4, 0x5eed6000, { base, commits, options });
    expect(images).toBeGreaterThan(30);
    expect(problems).toEqual([]);
  });
});

describe('focused power-cut cases: torn headers', () => {
  /*
   * A file created after the last barrier holds nothing acknowledged; recovery deletes it when its
   * header never reached the disk (a torn header). It recognised that only when the whole tag file
   * was zero or shorter than a header. With more than 248 pages written, the tag file has a second
   * page, and a power loss can keep that page while the first (with the header) is lost: recovery
   * refused the store with ARMDB_INTEGRITY "file 2 was not written by this store".
   * Input: 1 shard, puts, sync(), close(); reopen (a new active file, not yet in the MANIFEST);
   * 300 pages of puts without sync; the process dies; the tag file's first page is zeros.
   */
  it("the first page of a new file's tag file lost, a later one kept: the store opens with everything synced", async () => {
    const root = directory('header-page-lost');
    const options = { shards: 1, hints: false, maxFileBytes: 2 ** 24 };
    const first = await openMap(root, undefined, options);
    for (let n = 0; n < 20; n++) first.put(keyOf(n), valueFor(1, n, 0, 500));
    await first.close();
    const fs = new FaultFileSystem();
    const map = await openMap(root, fs, options);
    for (let n = 0; n < 400; n++) map.put(keyOf(1000 + n), valueFor(2, n, 1, 3000));
    fs.crashAt(1);
    await map.close().catch(() => undefined);
    const tagPath = path.join(root, 'shard-000', '000002.tags');
    expect(statSync(tagPath).size).toBeGreaterThan(PAGE_BYTES);
    const descriptor = openSync(tagPath, 'r+');
    writeSync(descriptor, new Uint8Array(PAGE_BYTES), 0, PAGE_BYTES, 0);
    closeSync(descriptor);
    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await openMap(root, undefined, options); // was: ARMDB_INTEGRITY … file 2 was not written by this store
      try {
        for (let n = 0; n < 20; n++) expect(again.get(keyOf(n))).toEqual(valueFor(1, n, 0, 500));
        expect(again.size).toBe(20);
        expect((await again.verify()).ok).toBe(true);
      } finally {
        await again.close();
      }
    }
  });

  /*
   * Found by the cuts during recovery: close() drops an active file that never received a record.
   * Its final barrier fsyncs the shard directory (so the dropped file's entry is durable), writes a
   * MANIFEST whose next file id is past it, and only then unlinks it. The file's header was never
   * fsynced. A power loss before the unlink reached the disk left the file with a missing or torn
   * header and an id the manifest had handed out, which recovery refused ("file 2 was not written
   * by this store"): a store opened only to be read (armdb info, verify, export) no longer opened.
   * Input: a store written and closed; opened and closed again without writes, the process dying at
   * the unlink of the dropped file; its header never reached the disk (tag file empty).
   */
  it('an unused active file dropped by close() whose header never reached the disk: the store opens', async () => {
    const root = directory('dropped-unwritten');
    const options = { shards: 1, hints: false };
    const first = await openMap(root, undefined, options);
    for (let n = 0; n < 20; n++) first.put(keyOf(n), valueFor(1, n, 0, 500));
    await first.close();
    const fs = new FaultFileSystem();
    const reader = await openMap(root, fs, options);
    fs.crashAt(1, { match: (kind) => kind === 'unlink' });
    await reader.close().catch(() => undefined);
    const dropped = fs.crashPoint!.path;
    expect(dropped).toMatch(/000002\.data$/);
    truncateSync(dropped.replace(/\.data$/, '.tags'), 0);
    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await openMap(root, undefined, options); // was: ARMDB_INTEGRITY … file 2 was not written by this store
      try {
        for (let n = 0; n < 20; n++) expect(again.get(keyOf(n))).toEqual(valueFor(1, n, 0, 500));
        expect((await again.verify()).ok).toBe(true);
      } finally {
        await again.close();
      }
    }
  });
});
