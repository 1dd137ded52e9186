/**
 * The sealing worker under the engine (`sealThreads: 1`, src/crypto/seal-ring.ts): a worker that fails
 * makes the collection refuse writes with ARMDB_POISONED and nothing it held reaches the disk; a
 * fault-injecting file system under the ring (failed writes, a crash at any file operation) loses
 * nothing a sync acknowledged; and what goes through the ring reads back exactly as the synchronous
 * path writes it.
 *
 * Every ring here hands runs of one page and more to the worker (the test hook below), so that the
 * small stores of these tests go through it at every page.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sealRingPagesSubmittedForTest, setSealRingFailureForTest, setSealRingMinimumPagesForTest } from '../../src/crypto/seal-ring.js';
import { ArmdbError, type VarMap } from '../../src/index.js';
import { PAGE_BYTES } from '../../src/format/constants.js';
import { FaultFileSystem, SimulatedCrash } from './fault-fs.js';
import {
  applyCommits,
  checkRecovered,
  directoriesRemovedAfterEach,
  execute,
  keyOf,
  openMap,
  readAll,
  sameBytes,
  shardOf,
  temporaryDirectory,
  universe,
  valueFor,
  workload,
  type Execution,
} from './scenario.js';

const RING = { sealThreads: 1, writeBufferBytes: 4 * PAGE_BYTES } as const;
const directory = directoriesRemovedAfterEach();

beforeEach(() => setSealRingMinimumPagesForTest(1));
afterEach(() => {
  setSealRingFailureForTest(false);
  setSealRingMinimumPagesForTest(undefined);
});

/** Every data file's length is whole pages: no partial page was written. */
function dataFileLengths(dir: string): number[] {
  const lengths: number[] = [];
  for (const shard of fs.readdirSync(dir).filter((name) => name.startsWith('shard-'))) {
    for (const name of fs.readdirSync(path.join(dir, shard)).filter((file) => file.endsWith('.data'))) {
      lengths.push(fs.statSync(path.join(dir, shard, name)).size);
    }
  }
  return lengths;
}

async function expectRecovered(dir: string, base: Map<string, Uint8Array>, run: Execution): Promise<void> {
  const again = await openMap(dir);
  try {
    const contents = readAll(again, universe(base, run.commits).values());
    expect(checkRecovered(base, run.commits, run.durable, contents, again.size, (key) => shardOf(again, key))).toEqual([]);
    const report = await again.verify();
    expect(report.failures).toEqual([]);
  } finally {
    await again.close();
  }
}

describe('sealing worker failures', () => {
  it('a worker that fails: typed ARMDB_POISONED, writes refused, no partial page on disk, reopen loses nothing acknowledged', async () => {
    const dir = directory('worker-fails');
    const map = await openMap(dir, undefined, RING);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const base = await execute(map, [
      ...workload({ seed: 31, tag: 1, steps: 150, keys: 80, maxValueBytes: 3000 }, shard),
      { kind: 'sync' },
    ]);
    expect(base.error).toBeUndefined();
    const acknowledged = applyCommits(new Map(), base.commits);
    expect(map.stats().pagesSealed).toBeGreaterThan(4);

    setSealRingFailureForTest(true);
    const run = await execute(map, [...workload({ seed: 32, tag: 2, steps: 200, keys: 80, maxValueBytes: 3000 }, shard), { kind: 'sync' }]);
    expect(run.error).toBeInstanceOf(ArmdbError);
    expect((run.error as ArmdbError).code).toBe('ARMDB_POISONED');
    expect(String(run.error)).toMatch(/sealing worker failed/);
    expect(() => map.put(keyOf(1), valueFor(3, 1, 0, 10))).toThrow(expect.objectContaining({ code: 'ARMDB_POISONED' }));
    await expect(map.sync()).rejects.toMatchObject({ code: 'ARMDB_POISONED' });
    await map.close().catch(() => undefined);
    setSealRingFailureForTest(false);

    for (const length of dataFileLengths(dir)) expect(length % PAGE_BYTES).toBe(0);
    const again = await openMap(dir);
    try {
      for (const [keyHex, value] of acknowledged) expect(sameBytes(again.get(Buffer.from(keyHex, 'hex')), value)).toBe(true);
      expect((await again.verify()).failures).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it.each(['.data', '.tags'])(
    'EIO from a write of sealed pages (%s) the ring hands back: poisoned with the errno as cause, recovered',
    async (suffix) => {
      const dir = directory('write-eio');
      const faults = new FaultFileSystem();
      const map = await openMap(dir, faults, RING);
      const shard = (key: Uint8Array): number => shardOf(map, key);
      const baseRun = await execute(map, [...workload({ seed: 41, tag: 1, steps: 120, keys: 60 }, shard), { kind: 'sync' }]);
      expect(baseRun.error).toBeUndefined();
      const base = applyCommits(new Map(), baseRun.commits);
      faults.failNth('write', 2, 'EIO', { path: (filePath) => filePath.endsWith(suffix) });
      const run = await execute(map, workload({ seed: 42, tag: 2, steps: 400, keys: 60, mix: 'puts', syncEvery: 50 }, shard));
      expect(run.error).toBeInstanceOf(ArmdbError);
      expect((run.error as ArmdbError).code).toBe('ARMDB_POISONED');
      expect(((run.error as ArmdbError).cause as { code?: string }).code).toBe('EIO');
      // Every data page goes through the ring here; a tag-file write may also be a header or a footer.
      if (suffix === '.data') expect(String(run.error)).toMatch(/pages sealed by the sealing worker/);
      expect(() => map.put(keyOf(2), valueFor(3, 2, 0, 10))).toThrow(expect.objectContaining({ code: 'ARMDB_POISONED' }));
      await map.close().catch(() => undefined);
      await expectRecovered(dir, base, run);
    },
  );

  it('a crash at any file operation while pages go through the ring: the store recovers to a state the syncs allow', async () => {
    // The reference run: how many file operations the window takes.
    const reference = temporaryDirectory('seal-ring-crash');
    let window = 0;
    try {
      const faults = new FaultFileSystem();
      const map = await openMap(reference.path, faults, RING);
      const shard = (key: Uint8Array): number => shardOf(map, key);
      await execute(map, [...workload({ seed: 51, tag: 1, steps: 60, keys: 40 }, shard), { kind: 'sync' }]);
      const origin = faults.total;
      const run = await execute(map, workload({ seed: 52, tag: 2, steps: 160, keys: 40, syncEvery: 40 }, shard));
      expect(run.error).toBeUndefined();
      window = faults.total - origin;
      await map.close();
    } finally {
      reference.cleanup();
    }
    expect(window).toBeGreaterThan(20);
    const submittedBefore = sealRingPagesSubmittedForTest();
    const step = Math.max(1, Math.floor(window / 24));
    let crashes = 0;
    for (let n = 1; n <= window; n += step) {
      const made = temporaryDirectory('seal-ring-crash');
      try {
        const faults = new FaultFileSystem();
        const map = await openMap(made.path, faults, RING);
        const shard = (key: Uint8Array): number => shardOf(map, key);
        const baseRun = await execute(map, [...workload({ seed: 51, tag: 1, steps: 60, keys: 40 }, shard), { kind: 'sync' }]);
        const base = applyCommits(new Map(), baseRun.commits);
        faults.crashAt(n, { torn: n % 2 === 0 });
        const run = await execute(map, workload({ seed: 52, tag: 2, steps: 160, keys: 40, syncEvery: 40 }, shard));
        await map.close().catch(() => undefined);
        if (faults.crashed) crashes++;
        // A crash in the background hint writer after the window's last step reaches no step.
        if (run.error !== undefined) {
          expect(run.error).toBeInstanceOf(ArmdbError);
          expect((run.error as ArmdbError).code).toBe('ARMDB_POISONED');
          expect(run.error instanceof ArmdbError && run.error.cause instanceof SimulatedCrash).toBe(true);
        }
        await expectRecovered(made.path, base, run);
      } finally {
        made.cleanup();
      }
    }
    expect(crashes).toBeGreaterThan(10);
    expect(sealRingPagesSubmittedForTest() - submittedBefore, 'pages went through the ring').toBeGreaterThan(100);
  });
});

describe('the ring writes what the synchronous path writes', () => {
  const operation = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('put' as const),
        key: fc.integer({ min: 0, max: 40 }),
        length: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 3000, max: 40_000 })),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 40 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'sync' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  );

  it('same contents as sealThreads: 0 and a plain Map, before and after reopening, with the same data file lengths', async () => {
    let runs = 0;
    const submittedBefore = sealRingPagesSubmittedForTest();
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 60 }), async (operations) => {
        runs++;
        const made = temporaryDirectory('seal-ring-model');
        const paths = [path.join(made.path, 'inline'), path.join(made.path, 'ring')];
        const options = [{ sealThreads: 0, writeBufferBytes: RING.writeBufferBytes }, RING];
        const open = (index: number): Promise<VarMap> =>
          openMap(paths[index]!, undefined, { ...options[index]!, maxFileBytes: 256 * 1024 });
        const stores = [await open(0), await open(1)];
        const model = new Map<number, Uint8Array>();
        try {
          for (const [step, op] of operations.entries()) {
            if (op.kind === 'put') {
              const value = valueFor(5, op.key, step, op.length);
              model.set(op.key, value);
              for (const store of stores) store.put(keyOf(op.key), value);
            } else if (op.kind === 'delete') {
              model.delete(op.key);
              for (const store of stores) store.delete(keyOf(op.key));
            } else if (op.kind === 'sync') await Promise.all(stores.map((store) => store.sync()));
            else if (op.kind === 'flush') for (const store of stores) store.flush();
            else {
              for (const store of stores) await store.close();
              stores[0] = await open(0);
              stores[1] = await open(1);
            }
            // Reads right after writes: pages in flight are served from memory or once written.
            if (op.kind === 'put') for (const store of stores) expect(sameBytes(store.get(keyOf(op.key)), model.get(op.key))).toBe(true);
          }
          for (const store of stores) await store.close();
          expect(dataFileLengths(paths[1]!).sort()).toEqual(dataFileLengths(paths[0]!).sort());
          for (const index of [0, 1]) {
            const store = await open(index);
            try {
              expect(store.size).toBe(model.size);
              for (let key = 0; key <= 40; key++) expect(sameBytes(store.get(keyOf(key)), model.get(key)), `key ${key}`).toBe(true);
              expect((await store.verify()).failures).toEqual([]);
            } finally {
              await store.close();
            }
          }
        } finally {
          for (const store of stores) await store.close().catch(() => undefined);
          made.cleanup();
        }
      }),
      { seed: 0x5ea12, numRuns: 15 },
    );
    expect(runs).toBeGreaterThanOrEqual(15);
    expect(sealRingPagesSubmittedForTest() - submittedBefore, 'pages went through the ring').toBeGreaterThan(100);
  });
});
