/**
 * Write-path I/O errors and simulated crashes at every file operation (SPEC §4), in process, through
 * the fault-injecting file system of ./fault-fs.ts.
 *
 * - A failing write, fsync, directory fsync, manifest write or rename poisons the collection: the
 *   failing call reports ARMDB_POISONED with the I/O error as `cause`, later writes are refused, reads
 *   still answer, close() works, fsync is never retried, and a reopen loses nothing that was durable.
 * - A crash (the process dying) between any two file operations of writes that rotate files and of
 *   manifest updates: the reopened store holds, per shard, the model state after a prefix of the
 *   commits at least as long as the last acknowledged barrier (see scenario.ts), and verify() is ok.
 *
 * Two product bugs this suite found were fixed while it was written; the focused cases at the end
 * keep them fixed (see the comments there).
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { VarMap } from '../../src/collections/var-map.js';
import type { OpenOptions } from '../../src/config.js';
import { ArmdbError } from '../../src/errors.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { FaultFileSystem, InjectedFault, SimulatedCrash, type LoggedOperation, type OperationKind } from './fault-fs.js';
import {
  applyCommits,
  checkRecovered,
  execute,
  keyOf,
  newExecution,
  openMap,
  presentState,
  readAll,
  sameBytes,
  shardOf,
  directoriesRemovedAfterEach,
  temporaryDirectory,
  universe,
  valueFor,
  workload,
  type Execution,
  type Step,
} from './scenario.js';

const directory = directoriesRemovedAfterEach();

/** The error is ARMDB_POISONED and its cause carries `causeCode` (an errno, or the simulated crash). */
function expectPoisoned(error: unknown, causeCode: string): void {
  expect(error).toBeInstanceOf(ArmdbError);
  const armdb = error as ArmdbError;
  expect(armdb.code).toBe('ARMDB_POISONED');
  expect((armdb.cause as { code?: unknown } | undefined)?.code).toBe(causeCode);
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** Every write entry point refuses with ARMDB_POISONED, keeping the first failure as cause. */
async function expectWritesRefused(map: VarMap, causeCode: string, present: ReadonlyMap<string, Uint8Array>): Promise<void> {
  expectPoisoned(
    thrown(() => map.put(keyOf(900_001), valueFor(9, 900_001, 0, 100))),
    causeCode,
  );
  const existing = new Uint8Array(Buffer.from([...present.keys()][0]!, 'hex'));
  expectPoisoned(
    thrown(() => map.delete(existing)),
    causeCode,
  );
  expectPoisoned(
    thrown(() => map.atomic(keyOf(900_002), (tx) => tx.put(keyOf(900_002), new Uint8Array(3)))),
    causeCode,
  );
  expectPoisoned(
    thrown(() => map.flush()),
    causeCode,
  );
  expectPoisoned(await rejection(map.sync()), causeCode);
}

/** A store with a synced base set, opened through a fault-injecting file system. */
async function storeWithBase(
  prefix: string,
  overrides: Partial<OpenOptions> = {},
): Promise<{ dir: string; fs: FaultFileSystem; map: VarMap; base: Map<string, Uint8Array>; shard: (key: Uint8Array) => number }> {
  const dir = directory(prefix);
  const fs = new FaultFileSystem();
  const map = await openMap(dir, fs, overrides);
  const shard = (key: Uint8Array): number => shardOf(map, key);
  const run = await execute(map, [...workload({ seed: 101, tag: 1, steps: 120, keys: 100 }, shard), { kind: 'sync' }]);
  expect(run.error).toBeUndefined();
  return { dir, fs, map, base: applyCommits(new Map(), run.commits), shard };
}

/** Reopens with the real file system and checks the store against the model; closes it. */
async function expectRecovered(dir: string, base: Map<string, Uint8Array>, run: Execution): Promise<void> {
  const again = await openMap(dir);
  try {
    const contents = readAll(again, universe(base, run.commits).values());
    expect(checkRecovered(base, run.commits, run.durable, contents, again.size, (key) => shardOf(again, key))).toEqual([]);
    const report = await again.verify();
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  } finally {
    await again.close();
  }
}

function failedEntry(fs: FaultFileSystem): LoggedOperation {
  const entry = fs.log.find((logged) => logged.outcome === 'failed');
  if (entry === undefined) throw new Error('no operation failed');
  return entry;
}

// ---- the harness itself ------------------------------------------------------------------------

describe('FaultFileSystem', () => {
  it('counts every mutating operation by kind and logs it', async () => {
    const dir = directory('faultfs-count');
    const fs = new FaultFileSystem();
    fs.makeDirectory(path.join(dir, 'sub'));
    const handle = fs.open(path.join(dir, 'sub', 'a'), 'create');
    handle.write(new Uint8Array([1, 2, 3]), 0);
    handle.truncate(2);
    await handle.sync();
    handle.close();
    await fs.writeFile(path.join(dir, 'b'), new Uint8Array([4]));
    fs.rename(path.join(dir, 'b'), path.join(dir, 'c'));
    fs.unlink(path.join(dir, 'c'));
    await fs.syncDirectory(dir);
    // Reads are not counted.
    expect(fs.readFile(path.join(dir, 'sub', 'a'))).toEqual(new Uint8Array([1, 2]));
    expect(fs.list(dir).sort()).toEqual(['sub']);
    const reader = fs.open(path.join(dir, 'sub', 'a'), 'read');
    expect(reader.size()).toBe(2);
    reader.close();
    expect(fs.counts).toEqual({
      'open-create': 1,
      write: 1,
      truncate: 1,
      sync: 1,
      writeFile: 1,
      rename: 1,
      unlink: 1,
      makeDirectory: 1,
      syncDirectory: 1,
      lock: 0,
    });
    expect(fs.total).toBe(9);
    expect(fs.log.map((entry) => entry.kind)).toEqual([
      'makeDirectory',
      'open-create',
      'write',
      'truncate',
      'sync',
      'writeFile',
      'rename',
      'unlink',
      'syncDirectory',
    ]);
    expect(fs.log.every((entry, index) => entry.index === index + 1 && entry.outcome === 'ok')).toBe(true);
  });

  it('fails the n-th operation of a kind with an errno, once, leaving the disk untouched', async () => {
    const dir = directory('faultfs-fail');
    const fs = new FaultFileSystem();
    const handle = fs.open(path.join(dir, 'a'), 'create');
    fs.failNth('write', 2, 'ENOSPC');
    fs.failNth('sync', 1, 'EIO');
    handle.write(new Uint8Array([1]), 0);
    const error = thrown(() => handle.write(new Uint8Array([2]), 1));
    expect(error).toBeInstanceOf(InjectedFault);
    expect((error as InjectedFault).code).toBe('ENOSPC');
    handle.write(new Uint8Array([3]), 1);
    const syncError = await rejection(handle.sync());
    expect((syncError as InjectedFault).code).toBe('EIO');
    await handle.sync();
    handle.close();
    expect(nodeFileSystem.readFile(path.join(dir, 'a'))).toEqual(new Uint8Array([1, 3]));
    expect(fs.log.map((entry) => `${entry.kind}:${entry.outcome}`)).toEqual([
      'open-create:ok',
      'write:ok',
      'write:failed',
      'write:ok',
      'sync:failed',
      'sync:ok',
    ]);
  });

  it('filters the counted operations by path, and keeps failing when sticky', () => {
    const dir = directory('faultfs-sticky');
    const fs = new FaultFileSystem();
    const a = fs.open(path.join(dir, 'a.data'), 'create');
    const b = fs.open(path.join(dir, 'b.tags'), 'create');
    fs.failNth('write', 2, 'EIO', { path: (filePath) => filePath.endsWith('.tags'), sticky: true });
    a.write(new Uint8Array([1]), 0);
    b.write(new Uint8Array([1]), 0);
    a.write(new Uint8Array([2]), 1);
    expect((thrown(() => b.write(new Uint8Array([2]), 1)) as InjectedFault).code).toBe('EIO');
    expect((thrown(() => b.write(new Uint8Array([3]), 1)) as InjectedFault).code).toBe('EIO');
    a.write(new Uint8Array([3]), 2);
    a.close();
    b.close();
  });

  it('crashes at the n-th mutating operation: nothing from then on happens, close() still works', async () => {
    const dir = directory('faultfs-crash');
    const fs = new FaultFileSystem();
    const handle = fs.open(path.join(dir, 'a'), 'create');
    fs.crashAt(2);
    handle.write(new Uint8Array([1, 1]), 0);
    expect(thrown(() => handle.write(new Uint8Array([2, 2]), 2))).toBeInstanceOf(SimulatedCrash);
    expect(fs.crashed).toBe(true);
    expect(fs.crashPoint).toMatchObject({ kind: 'write', outcome: 'crashed', index: 3 });
    // Everything fails now, reads included...
    expect(thrown(() => handle.read(new Uint8Array(1), 0))).toBeInstanceOf(SimulatedCrash);
    expect(thrown(() => fs.list(dir))).toBeInstanceOf(SimulatedCrash);
    expect(await rejection(handle.sync())).toBeInstanceOf(SimulatedCrash);
    expect(await rejection(fs.writeFile(path.join(dir, 'b'), new Uint8Array(1)))).toBeInstanceOf(SimulatedCrash);
    // ...except releasing descriptors.
    handle.close();
    expect(nodeFileSystem.readFile(path.join(dir, 'a'))).toEqual(new Uint8Array([1, 1]));
    expect(nodeFileSystem.exists(path.join(dir, 'b'))).toBe(false);
  });

  it('a torn crash leaves a prefix of the interrupted write', async () => {
    const dir = directory('faultfs-torn');
    const fs = new FaultFileSystem();
    const handle = fs.open(path.join(dir, 'a'), 'create');
    fs.crashAt(1, { torn: true });
    expect(thrown(() => handle.write(new Uint8Array(8).fill(7), 0))).toBeInstanceOf(SimulatedCrash);
    handle.close();
    expect(nodeFileSystem.readFile(path.join(dir, 'a'))).toEqual(new Uint8Array(4).fill(7));

    const second = new FaultFileSystem();
    second.crashAt(1, { torn: true, tornFraction: 0.25 });
    expect(await rejection(second.writeFile(path.join(dir, 'm'), new Uint8Array(8).fill(9)))).toBeInstanceOf(SimulatedCrash);
    expect(nodeFileSystem.readFile(path.join(dir, 'm'))).toEqual(new Uint8Array(2).fill(9));
  });
});

// ---- write-path I/O errors ---------------------------------------------------------------------

describe('a write-path I/O error poisons the collection', () => {
  it.each([
    { code: 'EIO', file: '.data' },
    { code: 'EIO', file: '.tags' },
    { code: 'ENOSPC', file: '.data' },
    { code: 'ENOSPC', file: '.tags' },
  ])('$code from the write of a $file file when the write buffer fills', async ({ code, file }) => {
    const { dir, fs, map, base, shard } = await storeWithBase(`write-${code}`);
    fs.failNth('write', 1, code, { path: (filePath) => filePath.endsWith(file) });
    const steps = workload({ seed: 202, tag: 2, steps: 400, keys: 140, mix: 'puts' }, shard);
    const run = await execute(map, steps);

    // The put that needed the write throws, typed, with the errno as cause and in the message chain.
    expectPoisoned(run.error, code);
    expect((run.error as Error).message).toMatch(/ARMDB_POISONED/);
    expect(steps[run.failedStep!]!.kind).toBe('put');
    expect(run.commits.length).toBeGreaterThan(0);
    const failed = failedEntry(fs);
    expect(failed.kind).toBe('write');
    expect(failed.path.endsWith(file)).toBe(true);

    // Later writes are refused the same way.
    const model = applyCommits(base, run.commits);
    await expectWritesRefused(map, code, model);

    // Reads answer for everything written before the failure (synced or still buffered), and the
    // put that failed changed nothing.
    const keys = universe(base, run.commits);
    let wrong = 0;
    for (const [keyHex, key] of keys) if (!sameBytes(map.get(key), model.get(keyHex))) wrong++;
    expect(wrong).toBe(0);
    expect(map.size).toBe(model.size);
    const failedStep = steps[run.failedStep!]!;
    if (failedStep.kind === 'put') expect(map.get(failedStep.key)).toEqual(model.get(Buffer.from(failedStep.key).toString('hex')));

    await expect(map.close()).resolves.toBeUndefined();
    // Nothing durable is lost; what was not synced is either there or not, never torn.
    await expectRecovered(dir, base, run);
  });

  const isManifest = (filePath: string): boolean => /MANIFEST(\.[0-9a-f]{16}\.tmp)?$/.test(filePath);
  const barrierFaults: readonly {
    readonly kind: OperationKind;
    readonly nth: number;
    readonly code: string;
    readonly what: string;
    readonly path?: (filePath: string) => boolean;
  }[] = [
    { kind: 'sync', nth: 1, code: 'EIO', what: 'fsync of the first data file' },
    { kind: 'sync', nth: 2, code: 'EIO', what: 'fsync of the first tag file' },
    { kind: 'sync', nth: 5, code: 'EIO', what: 'fsync of a later file' },
    { kind: 'syncDirectory', nth: 1, code: 'EIO', what: 'fsync of a shard directory', path: (filePath) => /shard-\d+$/.test(filePath) },
    // A steady-state barrier appends one record to the MANIFEST and fsyncs it (docs/format.md §7.7).
    { kind: 'write', nth: 1, code: 'EIO', what: 'append to the MANIFEST', path: isManifest },
    { kind: 'write', nth: 1, code: 'ENOSPC', what: 'append to the MANIFEST', path: isManifest },
    { kind: 'sync', nth: 1, code: 'EIO', what: 'fsync of the MANIFEST after the append', path: isManifest },
  ];

  // hints: false — the background hint writer also writes files, renames them and fsyncs shard
  // directories; without it every such operation during sync() is the barrier's.
  it.each(barrierFaults)(
    '$code from the $what during sync(): rejected, poisoned, never retried',
    async ({ kind, nth, code, path: only }) => {
      const { dir, fs, map, base, shard } = await storeWithBase(`barrier-${kind}-${code}`, { hints: false });
      // Enough writes to rotate both shards once, so the barrier has several files and directories to sync.
      const run = await execute(map, workload({ seed: 303, tag: 3, steps: 260, keys: 140 }, shard));
      expect(run.error).toBeUndefined();
      fs.failNth(kind, nth, code, only === undefined ? {} : { path: only });
      const error = await rejection(map.sync());
      expectPoisoned(error, code);
      const failed = failedEntry(fs);
      expect(failed.kind).toBe(kind);
      const afterRejection = fs.total;

      const model = applyCommits(base, run.commits);
      await expectWritesRefused(map, code, model);
      // Reads still answer.
      let wrong = 0;
      for (const [keyHex, key] of universe(base, run.commits)) if (!sameBytes(map.get(key), model.get(keyHex))) wrong++;
      expect(wrong).toBe(0);
      await expect(map.close()).resolves.toBeUndefined();

      // fsync is never retried: no fsync of the failed file after the failure, and no file operation
      // at all once the failure was reported (not by later writes, sync() or close()).
      expect(fs.log.filter((entry) => entry.index > failed.index && entry.kind === 'sync' && entry.path === failed.path)).toEqual([]);
      expect(fs.since(afterRejection)).toEqual([]);

      await expectRecovered(dir, base, run);
    },
  );

  it('a later sync() after a failed one rejects at once with the first cause', async () => {
    const { fs, map } = await storeWithBase('barrier-twice', { hints: false });
    map.put(keyOf(5), valueFor(4, 5, 0, 3000));
    fs.failNth('sync', 1, 'EIO');
    expectPoisoned(await rejection(map.sync()), 'EIO');
    const before = fs.total;
    expectPoisoned(await rejection(map.sync()), 'EIO');
    expect(fs.total).toBe(before);
    await map.close();
  });

  it.each([
    { nth: 1, what: 'the data file' },
    { nth: 2, what: 'the tag file' },
  ])('ENOSPC creating $what of the next data file at rotation', async ({ nth }) => {
    const { dir, fs, map, base, shard } = await storeWithBase(`rotate-enospc-${nth}`);
    fs.failNth('open-create', nth, 'ENOSPC');
    const steps = workload({ seed: 404, tag: 4, steps: 400, keys: 140, mix: 'puts' }, shard);
    const run = await execute(map, steps);
    expectPoisoned(run.error, 'ENOSPC');
    expect(failedEntry(fs).kind).toBe('open-create');
    await expectWritesRefused(map, 'ENOSPC', applyCommits(base, run.commits));
    await expect(map.close()).resolves.toBeUndefined();
    await expectRecovered(dir, base, run);
  });

  it('a synchronous commit failure applies nothing: the failed put is not visible', async () => {
    const { fs, map } = await storeWithBase('commit-atomic');
    fs.failNth('write', 1, 'EIO');
    const key = keyOf(7);
    const before = map.get(key);
    let error: unknown;
    for (let step = 0; error === undefined; step++) {
      try {
        map.put(key, valueFor(5, 7, step, 2000));
      } catch (caught) {
        error = caught;
        // The value of the failed put must not be visible.
        expect(map.get(key)).toEqual(step === 0 ? before : valueFor(5, 7, step - 1, 2000));
      }
    }
    expectPoisoned(error, 'EIO');
    await map.close();
  });
});

// ---- the directory lock -------------------------------------------------------------------------

/** Opens `dir` with the real file system: it holds exactly `base`, and every page authenticates. */
async function expectHolds(dir: string, base: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const again = await openMap(dir);
  try {
    const contents = readAll(again, universe(base, []).values());
    expect(presentState(contents)).toEqual(base);
    expect(again.size).toBe(base.size);
    expect((await again.verify()).ok).toBe(true);
  } finally {
    await again.close();
  }
}

/** Names in the store's root that belong to the lock: `LOCK` and private `LOCK.<pid>.<random>` files. */
function lockNames(dir: string): string[] {
  return nodeFileSystem.list(dir).filter((name) => name.startsWith('LOCK'));
}

describe('the directory lock, through the file system', () => {
  it.each(['EACCES', 'EIO'])(
    '%s when taking the lock: open rejects with that error before touching the store, and a normal reopen has lost nothing',
    async (code) => {
      const { dir, map, base } = await storeWithBase(`lock-take-${code}`);
      await map.close();
      const fs = new FaultFileSystem();
      fs.failNth('lock', 1, code);
      const error = await rejection(openMap(dir, fs));
      expect(error).toBeInstanceOf(InjectedFault);
      expect((error as InjectedFault).code).toBe(code);
      expect((error as InjectedFault).path).toBe(path.join(dir, 'LOCK'));
      expect(fs.counts.lock).toBe(1);
      // Nothing of the store was written: the open stopped at the lock, right after it made sure
      // the directory exists.
      expect(fs.log.map((entry) => entry.kind)).toEqual(['makeDirectory']);
      expect(lockNames(dir)).toEqual([]);
      await expectHolds(dir, base);
    },
  );

  it('EIO removing a stale lock: open rejects with EIO, the stale LOCK stays as found, and a normal reopen takes it over', async () => {
    const { dir, map, base } = await storeWithBase('lock-stale');
    await map.close();
    // A pid no process has (above any pid_max): the lock of a dead process.
    const stale = new TextEncoder().encode('2147483646\n');
    nodeFileSystem.createLockFile(path.join(dir, 'LOCK'), stale);
    const fs = new FaultFileSystem();
    // Lock operation 1 is the exclusive create, which finds LOCK taken; 2 removes the stale one.
    fs.failNth('lock', 2, 'EIO');
    const error = await rejection(openMap(dir, fs));
    expect((error as InjectedFault).code).toBe('EIO');
    expect(fs.counts.lock).toBe(2);
    expect(lockNames(dir)).toEqual(['LOCK']);
    expect(nodeFileSystem.readLockFile(path.join(dir, 'LOCK'), 32)).toEqual(stale);
    await expectHolds(dir, base);
    expect(lockNames(dir)).toEqual([]);
  });

  it('EIO removing the lock at close: close still resolves, and the LOCK left naming this process is taken over by the next open', async () => {
    const { dir, fs, map, base } = await storeWithBase('lock-release');
    fs.failNth('lock', 1, 'EIO');
    await expect(map.close()).resolves.toBeUndefined();
    expect(fs.counts.lock).toBe(2);
    expect(nodeFileSystem.readLockFile(path.join(dir, 'LOCK'), 32)).toEqual(new TextEncoder().encode(`${process.pid}\n`));
    await expectHolds(dir, base);
    expect(lockNames(dir)).toEqual([]);
  });
});

// ---- crashes at every file operation -------------------------------------------------------------

/**
 * The workload of the crash loop. Base: 120 steps on keys 0..99, synced. Then, counted from the
 * crash point's origin: 150 steps (rotating both shards), sync(), 150 more steps (rotating again),
 * close(). That is ~165 file operations: page writes, file creations, fsyncs, directory fsyncs, the
 * manifest's write, rename and directory fsync, twice.
 */
const CRASH_BASE = { seed: 11, tag: 1, steps: 120, keys: 100 } as const;
const CRASH_WINDOW = { seed: 22, tag: 2, steps: 300, keys: 160 } as const;

function windowSteps(shard: (key: Uint8Array) => number): Step[] {
  const steps = workload(CRASH_WINDOW, shard);
  return [...steps.slice(0, 150), { kind: 'sync' }, ...steps.slice(150), { kind: 'close' }];
}

interface CrashResult {
  readonly n: number;
  /** The operation the crash hit, e.g. "write shard-000/000003.tags". */
  readonly operation: string;
  /** Problems of the first open after the crash (open, model, verify). */
  readonly first: string[];
  /** Problems of recovery of recovery (reopen again: same contents, verify; new writes survive a reopen). */
  readonly second: string[];
}

function describeOperation(entry: LoggedOperation, root: string): string {
  return `${entry.kind} ${entry.path
    .split(' -> ')
    .map((part) => path.relative(root, part) || '.')
    .join(' -> ')}`;
}

/** A store with the crash loop's base set, synced, open through `fs`. */
async function crashBase(
  root: string,
  fs: FaultFileSystem,
): Promise<{ map: VarMap; base: Map<string, Uint8Array>; shard: (key: Uint8Array) => number }> {
  const map = await openMap(root, fs);
  const shard = (key: Uint8Array): number => shardOf(map, key);
  const baseRun = await execute(map, [...workload(CRASH_BASE, shard), { kind: 'sync' }]);
  if (baseRun.error !== undefined) throw baseRun.error;
  return { map, base: applyCommits(new Map(), baseRun.commits), shard };
}

/**
 * One crash scenario: base set synced, then the window's steps with the process dying at the n-th
 * file operation (undefined: no crash). Returns the window's operations and the problems found.
 */
async function crashScenario(
  n: number | undefined,
  torn: boolean,
): Promise<{ first: string[]; second: string[]; operations: string[]; crashedAt: string | undefined }> {
  const made = temporaryDirectory('crash');
  try {
    const root = made.path;
    const fs = new FaultFileSystem();
    const { map, base, shard } = await crashBase(root, fs);
    const origin = fs.total;
    if (n !== undefined) fs.crashAt(n, { torn });
    const run = await execute(map, windowSteps(shard));
    if (!run.closed) await map.close().catch(() => undefined);
    const first: string[] = [];
    const second: string[] = [];
    if (n !== undefined && !fs.crashed) first.push(`the crash at operation ${n} never happened (${fs.total - origin} operations)`);
    if (
      fs.crashed &&
      !(run.error instanceof ArmdbError && run.error.code === 'ARMDB_POISONED' && run.error.cause instanceof SimulatedCrash)
    ) {
      first.push(`the failing call threw ${String(run.error)}, expected ARMDB_POISONED caused by the crash`);
    }
    await checkAfterCrash(root, base, run, first, second);
    const crashPoint = fs.crashPoint;
    return {
      first,
      second,
      operations: fs.since(origin).map((entry) => describeOperation(entry, root)),
      crashedAt: crashPoint === undefined ? undefined : describeOperation(crashPoint, root),
    };
  } finally {
    made.cleanup();
  }
}

/**
 * The checks after a crash. First open (real file system): succeeds, holds a state the model
 * allows, verify() ok. Then recovery of recovery (`second`): close, reopen: same contents, verify()
 * ok; write, close, reopen: the new writes are there.
 */
async function checkAfterCrash(
  root: string,
  base: Map<string, Uint8Array>,
  run: Execution,
  first: string[],
  second: string[],
): Promise<void> {
  const keys = [...universe(base, run.commits).values()];
  let contents: Map<string, Uint8Array | undefined>;
  try {
    const again = await openMap(root);
    try {
      contents = readAll(again, keys);
      first.push(...checkRecovered(base, run.commits, run.durable, contents, again.size, (key) => shardOf(again, key)));
      const report = await again.verify();
      if (!report.ok) first.push(`verify failed: ${JSON.stringify(report.failures.slice(0, 3))}`);
    } finally {
      await again.close();
    }
  } catch (error) {
    first.push(`the open after the crash failed: ${String(error)}`);
    return;
  }
  try {
    const present = presentState(contents);
    const third = await openMap(root);
    const later = newExecution();
    try {
      const reread = readAll(third, keys);
      let differing = 0;
      for (const [keyHex, value] of contents) if (!sameBytes(value, reread.get(keyHex))) differing++;
      if (differing > 0 || third.size !== present.size)
        second.push(`reopening again changed ${differing} keys (size ${present.size} -> ${third.size})`);
      const report = await third.verify();
      if (!report.ok) second.push(`verify after reopening again failed: ${JSON.stringify(report.failures.slice(0, 3))}`);
      await execute(
        third,
        [...workload({ seed: 33, tag: 3, steps: 30, keys: 160 }, (key) => shardOf(third, key)), { kind: 'close' }],
        later,
      );
      if (later.error !== undefined) second.push(`writing to the recovered store failed: ${String(later.error)}`);
    } finally {
      await third.close();
    }
    const fourth = await openMap(root);
    try {
      const expected = applyCommits(present, later.commits);
      let wrong = 0;
      for (const [keyHex, key] of universe(expected, later.commits)) if (!sameBytes(fourth.get(key), expected.get(keyHex))) wrong++;
      if (wrong > 0 || fourth.size !== expected.size)
        second.push(`${wrong} keys wrong after writing to the recovered store, closing and reopening`);
    } finally {
      await fourth.close();
    }
  } catch (error) {
    second.push(`reopening the recovered store failed: ${String(error)}`);
  }
}

const loops = new Map<string, Promise<CrashResult[]>>();

/**
 * The crash scenario at every n = 1..K, K = the window's operation count (from a run without a
 * crash). Torn crashes differ from clean ones only at writes; they run at every other write.
 * Computed once per variant and shared by the tests below.
 *
 * The background hint writer interleaves its operations with the barrier's as fsyncs complete, so
 * the order of operations may differ a little between runs: `operation` is the one each run's crash
 * actually hit.
 */
function crashLoop(torn: boolean): Promise<CrashResult[]> {
  const name = torn ? 'torn' : 'clean';
  let loop = loops.get(name);
  if (loop === undefined) {
    loop = (async () => {
      const reference = await crashScenario(undefined, false);
      const referenceProblems = [...reference.first, ...reference.second];
      if (referenceProblems.length > 0) throw new Error(`the workload fails without a crash: ${referenceProblems.join('; ')}`);
      const results: CrashResult[] = [];
      let writes = 0;
      for (let n = 1; n <= reference.operations.length; n++) {
        if (torn && (!/^(write|writeFile) /.test(reference.operations[n - 1]!) || writes++ % 2 === 1)) continue;
        const { first, second, crashedAt } = await crashScenario(n, torn);
        results.push({ n, operation: crashedAt ?? '(no crash)', first, second });
      }
      return results;
    })();
    loops.set(name, loop);
  }
  return loop;
}

/** The window's operations in a run without a crash. */
let referenceOperations: Promise<string[]> | undefined;

function summary(results: readonly CrashResult[], pick: (result: CrashResult) => string[]): string[] {
  return results
    .filter((result) => pick(result).length > 0)
    .map((result) => `crash at operation ${result.n} (${result.operation}): ${pick(result).join(' | ')}`);
}

describe('a crash between any two file operations of rotations and manifest updates', () => {
  it('the window covers rotations of both shards and two manifest updates (appends to its log)', async () => {
    referenceOperations ??= crashScenario(undefined, false).then((reference) => reference.operations);
    const operations = await referenceOperations;
    expect(operations.filter((operation) => /^open-create shard-000\/\d+\.data$/.test(operation)).length).toBeGreaterThanOrEqual(2);
    expect(operations.filter((operation) => /^open-create shard-001\/\d+\.data$/.test(operation)).length).toBeGreaterThanOrEqual(2);
    // A manifest update is an append to its log (write, then fsync of MANIFEST) or a replacement (rename).
    expect(operations.filter((operation) => /^write MANIFEST$/.test(operation)).length).toBeGreaterThanOrEqual(2);
    for (const kind of ['write', 'sync', 'syncDirectory', 'writeFile'])
      expect(operations.some((operation) => operation.startsWith(`${kind} `))).toBe(true);
  });

  for (const torn of [false, true]) {
    const variant = torn ? 'torn writes' : 'clean cuts';

    it(`${variant}: at every n the first open after the crash succeeds, holds a state the model allows, and verify() is ok`, async () => {
      const results = await crashLoop(torn);
      expect(results.length).toBeGreaterThan(torn ? 50 : 150);
      expect(summary(results, (result) => result.first)).toEqual([]);
    });

    it(`${variant}: at every n the recovered store reopens with the same contents, verifies, and keeps new writes across a reopen`, async () => {
      const results = await crashLoop(torn);
      expect(summary(results, (result) => result.second)).toEqual([]);
    });
  }
});

/**
 * Recovery of recovery: the process dies again while the first open after a crash recovers — at each
 * of that open's file operations, or right after it completed — and the store must still open
 * correctly afterwards.
 */
describe('a crash while recovering from a crash', () => {
  interface RecoveryCrash {
    readonly n: number;
    readonly m: number;
    readonly problems: string[];
    /** The recovering open wrote its manifest before the second crash. */
    readonly manifestWritten: boolean;
  }

  async function recoveryCrash(
    n: number,
    m: number | undefined,
  ): Promise<{ problems: string[]; operations: number; manifestWritten: boolean }> {
    const made = temporaryDirectory('recrash');
    try {
      const root = made.path;
      const fs = new FaultFileSystem();
      const { map, base, shard } = await crashBase(root, fs);
      fs.crashAt(n);
      const run = await execute(map, windowSteps(shard));
      await map.close().catch(() => undefined);
      const problems: string[] = [];
      const recoveryFs = new FaultFileSystem();
      if (m !== undefined) recoveryFs.crashAt(m);
      try {
        const recovering = await openMap(root, recoveryFs);
        // The open completed: the process dies right after it.
        recoveryFs.crashAt(1);
        await recovering.close().catch(() => undefined);
      } catch (error) {
        const crashed = error instanceof SimulatedCrash || (error instanceof ArmdbError && error.cause instanceof SimulatedCrash);
        if (!crashed) problems.push(`the recovering open failed with ${String(error)}`);
      }
      await checkAfterCrash(root, base, run, problems, []);
      return {
        problems,
        operations: recoveryFs.log.filter((entry) => entry.outcome !== 'crashed').length,
        manifestWritten: recoveryFs.log.some(
          (entry) =>
            entry.outcome === 'ok' && (entry.kind === 'rename' || (entry.kind === 'sync' && path.basename(entry.path) === 'MANIFEST')),
        ),
      };
    } finally {
      made.cleanup();
    }
  }

  let memo: Promise<RecoveryCrash[]> | undefined;

  /** First crashes spread over the window; second crashes at every operation of the recovering open. */
  function recoveryLoop(): Promise<RecoveryCrash[]> {
    memo ??= (async () => {
      const results = await crashLoop(false);
      const points = new Set<number>();
      // Cut records (the usual case), the middle of a rotation and of each manifest update.
      const wanted = [/^write shard-000\/\S+\.data$/, /^open-create \S+\.tags$/, /^(rename MANIFEST|write MANIFEST$)/];
      for (const pattern of wanted) {
        const hits = results.filter((result) => pattern.test(result.operation));
        if (hits.length > 0) points.add(hits[Math.floor(hits.length / 2)]!.n);
      }
      points.add(results[results.length - 1]!.n);
      const crashes: RecoveryCrash[] = [];
      for (const n of [...points].sort((a, b) => a - b)) {
        const complete = await recoveryCrash(n, undefined);
        crashes.push({ n, m: complete.operations + 1, problems: complete.problems, manifestWritten: complete.manifestWritten });
        for (let m = 1; m <= complete.operations; m++) {
          const { problems, manifestWritten } = await recoveryCrash(n, m);
          crashes.push({ n, m, problems, manifestWritten });
        }
      }
      return crashes;
    })();
    return memo;
  }

  const describeCrash = (crash: RecoveryCrash): string =>
    `first crash at ${crash.n}, second at recovery operation ${crash.m}: ${crash.problems.join(' | ')}`;

  it('at every file operation of the recovering open, and right after it, the next open recovers correctly', async () => {
    const crashes = await recoveryLoop();
    // Both sides of the recovering open's manifest update are covered.
    expect(crashes.filter((crash) => !crash.manifestWritten).length).toBeGreaterThan(40);
    expect(crashes.filter((crash) => crash.manifestWritten).length).toBeGreaterThan(5);
    expect(crashes.filter((crash) => crash.problems.length > 0).map(describeCrash)).toEqual([]);
  });
});

// ---- crashes while creating a store ------------------------------------------------------------------

/**
 * The first open of a new directory creates the store (directories, KEYRING, active files, the
 * first MANIFEST). The process may die at any of those operations; nothing was acknowledged yet, so
 * the next open must give a working (empty) store.
 */
describe('a crash while creating a store', () => {
  interface CreationCrash {
    readonly n: number;
    readonly operation: string;
    readonly problems: string[];
    /** Data files existed and no MANIFEST had been written yet (the precondition of the bug below). */
    readonly orphanedData: boolean;
  }

  async function creationCrash(
    n: number | undefined,
  ): Promise<{ problems: string[]; operations: number; crashedAt: string | undefined; orphanedData: boolean }> {
    const made = temporaryDirectory('create-crash');
    try {
      const root = path.join(made.path, 'store');
      const fs = new FaultFileSystem();
      if (n !== undefined) fs.crashAt(n);
      let operations = 0;
      try {
        const map = await openMap(root, fs);
        operations = fs.total;
        // The open completed: the process dies right after it.
        fs.crashAt(1);
        await map.close().catch(() => undefined);
      } catch {
        // the crash
      }
      const problems: string[] = [];
      try {
        const again = await openMap(root);
        try {
          if (again.size !== 0) problems.push(`the new store holds ${again.size} keys`);
          again.put(keyOf(1), valueFor(6, 1, 1, 100));
          await again.sync();
        } finally {
          await again.close();
        }
        const third = await openMap(root);
        try {
          if (!sameBytes(third.get(keyOf(1)), valueFor(6, 1, 1, 100)))
            problems.push('a value written after the crash did not survive a reopen');
          if (!(await third.verify()).ok) problems.push('verify failed');
        } finally {
          await third.close();
        }
      } catch (error) {
        problems.push(`opening after the crash failed: ${String(error)}`);
      }
      let dataCreated = false;
      let manifestWritten = false;
      for (const entry of fs.log) {
        if (entry.outcome !== 'ok') continue;
        if (entry.kind === 'open-create' && entry.path.endsWith('.data')) dataCreated = true;
        if (entry.kind === 'rename' && entry.path.endsWith(`${path.sep}MANIFEST`)) manifestWritten = true;
      }
      const crashPoint = fs.crashPoint;
      return {
        problems,
        operations,
        crashedAt: crashPoint === undefined ? undefined : describeOperation(crashPoint, root),
        orphanedData: dataCreated && !manifestWritten,
      };
    } finally {
      made.cleanup();
    }
  }

  let memo: Promise<CreationCrash[]> | undefined;
  function creationLoop(): Promise<CreationCrash[]> {
    memo ??= (async () => {
      const reference = await creationCrash(undefined);
      const crashes: CreationCrash[] = [];
      for (let n = 1; n <= reference.operations + 1; n++) {
        const { problems, crashedAt, orphanedData } = await creationCrash(n);
        crashes.push({ n, operation: crashedAt ?? '(after the open)', problems, orphanedData });
      }
      return crashes;
    })();
    return memo;
  }
  const describeCrash = (crash: CreationCrash): string =>
    `crash at operation ${crash.n} (${crash.operation}): ${crash.problems.join(' | ')}`;

  it('at every file operation of the creating open (where no data file exists without a MANIFEST), the next open gives a working empty store', async () => {
    const crashes = await creationLoop();
    expect(crashes.some((crash) => crash.operation.startsWith('writeFile KEYRING'))).toBe(true);
    const covered = crashes.filter((crash) => !crash.orphanedData);
    expect(covered.length).toBeGreaterThan(5);
    expect(covered.filter((crash) => crash.problems.length > 0).map(describeCrash)).toEqual([]);
  });

  /*
   * Once a bug: a crash after the first data files were created and before the first MANIFEST was
   * written left a directory no open accepted ("the MANIFEST is missing but data files exist"). The
   * first MANIFEST is now written before any data file (Engine.#create), so no crash point of the
   * creating open leaves data files without a MANIFEST.
   */
  it('no crash point of the creating open leaves data files without a MANIFEST', async () => {
    const crashes = await creationLoop();
    expect(crashes.filter((crash) => crash.orphanedData).map(describeCrash)).toEqual([]);
    expect(crashes.filter((crash) => crash.problems.length > 0).map(describeCrash)).toEqual([]);
  });
});

// ---- crashes during compaction -------------------------------------------------------------------

/**
 * compact() with the process dying at each of its file operations (the background hint writer's
 * interleave). Everything was synced before, so the reopened store must hold exactly the model's
 * final state: compaction may neither lose a record nor bring a deleted key back.
 */
describe('a crash at any file operation of compact()', () => {
  const COMPACTION_BASE = { seed: 5, tag: 5, steps: 320, keys: 100 } as const;

  interface CompactionCrash {
    readonly n: number;
    readonly operation: string;
    readonly problems: string[];
    /** An old file was half deleted when the process died (the precondition of the leftover bug below). */
    readonly halfDeleted: boolean;
  }

  /** Whether the log leaves some old file with exactly one of its .data/.tags unlinked. */
  function halfDeleted(log: readonly LoggedOperation[]): boolean {
    const parts = new Map<string, Set<string>>();
    for (const entry of log) {
      const match = /(.*)\.(data|tags)$/.exec(entry.path);
      if (entry.kind !== 'unlink' || entry.outcome !== 'ok' || match === null) continue;
      const removed = parts.get(match[1]!) ?? new Set<string>();
      removed.add(match[2]!);
      parts.set(match[1]!, removed);
    }
    return [...parts.values()].some((removed) => removed.size === 1);
  }

  async function compactionCrash(
    n: number | undefined,
  ): Promise<{ problems: string[]; operations: number; crashedAt: string | undefined; halfDeleted: boolean }> {
    const made = temporaryDirectory('compact-crash');
    try {
      const root = made.path;
      const fs = new FaultFileSystem();
      const map = await openMap(root, fs);
      const shard = (key: Uint8Array): number => shardOf(map, key);
      const run = await execute(map, [...workload(COMPACTION_BASE, shard), { kind: 'sync' }]);
      if (run.error !== undefined) throw run.error;
      const origin = fs.total;
      if (n !== undefined) fs.crashAt(n);
      let report: Awaited<ReturnType<VarMap['compact']>> | undefined;
      try {
        report = await map.compact();
        await map.close();
      } catch {
        await map.close().catch(() => undefined);
      }
      const problems: string[] = [];
      if (n === undefined && (report === undefined || report.filesIn === 0 || report.filesOut === 0))
        problems.push(`compaction did not rewrite files: ${JSON.stringify(report)}`);
      const second: string[] = [];
      await checkAfterCrash(root, new Map(), run, problems, second);
      problems.push(...second);
      const crashPoint = fs.crashPoint;
      return {
        problems,
        operations: fs.total - origin,
        crashedAt: crashPoint === undefined ? undefined : describeOperation(crashPoint, root),
        halfDeleted: halfDeleted(fs.log),
      };
    } finally {
      made.cleanup();
    }
  }

  let memo: Promise<CompactionCrash[]> | undefined;
  function compactionLoop(): Promise<CompactionCrash[]> {
    memo ??= (async () => {
      const reference = await compactionCrash(undefined);
      if (reference.problems.length > 0) throw new Error(`compaction fails without a crash: ${reference.problems.join('; ')}`);
      const crashes: CompactionCrash[] = [];
      for (let n = 1; n <= reference.operations; n++) {
        const { problems, crashedAt, halfDeleted: half } = await compactionCrash(n);
        crashes.push({ n, operation: crashedAt ?? '(no crash)', problems, halfDeleted: half });
      }
      return crashes;
    })();
    return memo;
  }
  const describeCrash = (crash: CompactionCrash): string =>
    `crash at operation ${crash.n} (${crash.operation}): ${crash.problems.join(' | ')}`;

  it('the store recovers exactly the synced state, verifies and reopens (every n that leaves no half-deleted old file)', async () => {
    const crashes = await compactionLoop();
    // The loop reaches every step: new files written, renamed, the manifest switched, old files deleted.
    for (const pattern of [
      /^write \S+\.data\.tmp$/,
      /^rename \S+\.data\.tmp -> /,
      /^(rename MANIFEST|write MANIFEST$)/,
      /^unlink \S+\.data$/,
    ]) {
      expect(crashes.some((crash) => pattern.test(crash.operation))).toBe(true);
    }
    const covered = crashes.filter((crash) => !crash.halfDeleted);
    expect(covered.length).toBeGreaterThan(40);
    expect(covered.filter((crash) => crash.problems.length > 0).map(describeCrash)).toEqual([]);
  });

  // BUG (half-deleted leftover; see the focused case below). Remove `.fails` once it is fixed.
  it('also when the crash cuts the deletion of an old file in half', async () => {
    const crashes = (await compactionLoop()).filter((crash) => crash.halfDeleted);
    expect(crashes.length).toBeGreaterThan(0);
    expect(crashes.filter((crash) => crash.problems.length > 0).map(describeCrash)).toEqual([]);
  });
});

// ---- focused cases ---------------------------------------------------------------------------------

describe('focused crash cases', () => {
  /** The keys 0..99, split by shard (two shards, in the order of their labels). */
  function keysByShard(map: VarMap): [Uint8Array[], Uint8Array[]] {
    const groups = new Map<number, Uint8Array[]>();
    for (let n = 0; n < 100; n++) {
      const label = shardOf(map, keyOf(n));
      groups.set(label, [...(groups.get(label) ?? []), keyOf(n)]);
    }
    const [first, second] = [...groups.keys()].sort((a, b) => a - b).map((label) => groups.get(label)!);
    return [first!, second!];
  }

  /** Puts to `keys` (one shard's) until that shard rotates, then `extra` more puts. */
  function rotateOneShard(map: VarMap, fs: FaultFileSystem, keys: readonly Uint8Array[], extra: number): void {
    const origin = fs.total;
    let step = 0;
    const put = (): void => {
      map.put(keys[step % keys.length]!, valueFor(8, step, step, 700));
      step++;
    };
    while (!fs.since(origin).some((entry) => entry.kind === 'open-create')) put();
    for (let count = 0; count < extra; count++) put();
  }

  /*
   * Regression, file ids (found by this suite, fixed meanwhile in 1ea253b): recovery keeps data files
   * created after the last barrier (ids >= the manifest's nextFileId), and the open used to hand the
   * same ids out again for its new active files: in the same shard the open failed with a raw
   * `Error: EEXIST ... shard-000/000003.data`; across shards two files shared an id in the engine's
   * file map, so a value written to shard 0 read back bytes of shard 1's file, and the shard-0 file
   * was never listed in a manifest (the next open deleted it as a leftover, synced data included).
   * Both shards take each role in turn (the collision needs the rotated shard to be the later one).
   */
  it.each([0, 1])(
    'a crash after a rotation of one shard, before the next barrier: the store opens, and a value written to the other shard reads back and survives a reopen (rotated: shard #%i)',
    async (rotated) => {
      const dir = directory('rotation-crash');
      const fs = new FaultFileSystem();
      const map = await openMap(dir, fs);
      await map.sync();
      rotateOneShard(map, fs, keysByShard(map)[rotated]!, 20);
      fs.crashAt(1);
      await map.close().catch(() => undefined);
      const expected = (index: number): Uint8Array => valueFor(9, index, 1, 300 + index * 50);
      const again = await openMap(dir);
      try {
        const others = keysByShard(again)[1 - rotated]!;
        for (const [index, key] of others.entries()) again.put(key, expected(index));
        for (const [index, key] of others.entries()) expect(again.get(key)).toEqual(expected(index));
        await again.sync();
        for (const [index, key] of others.entries()) expect(again.get(key)).toEqual(expected(index));
        expect((await again.verify()).ok).toBe(true);
      } finally {
        await again.close();
      }
      const third = await openMap(dir);
      try {
        for (const [index, key] of keysByShard(third)[1 - rotated]!.entries()) expect(third.get(key)).toEqual(expected(index));
        expect((await third.verify()).ok).toBe(true);
      } finally {
        await third.close();
      }
    },
  );

  /*
   * Regression, sealed tail (found by this suite, fixed meanwhile in d148e82: RecordStream tolerates
   * a tail in a sealed file): recovery seals a file that was
   * active with its authentic pages as they are, so the last one may end in a record cut by the crash
   * or an atomic group whose later records were never written. The next open used to reject that
   * tail as "cut inside the durable log" (ARMDB_INTEGRITY): nearly every crash during writes left a
   * store that opened once, then never again. Input: sync; 25 puts of 700-byte values
   * (writeBufferBytes 4096: whole pages reach the file while the record crossing into the next page
   * is still buffered); crash; open; close; open again, also without hint files (a hint would spare
   * the second open from scanning the file).
   */
  it.each([{ hints: true }, { hints: false }])(
    'a crash that cuts a record at a page boundary: the store opens a second time (hints: $hints)',
    async ({ hints }) => {
      const dir = directory('sealed-tail');
      const fs = new FaultFileSystem();
      const map = await openMap(dir, fs, { hints });
      await map.sync();
      for (let n = 0; n < 25; n++) map.put(keyOf(n % 30), valueFor(7, n, n, 700));
      fs.crashAt(1);
      await map.close().catch(() => undefined);
      const keys = [...Array(30).keys()].map(keyOf);
      const again = await openMap(dir, undefined, { hints });
      expect(again.stats().recoveredTornBytes).toBeGreaterThan(0);
      const contents = readAll(again, keys);
      await again.close();
      const third = await openMap(dir, undefined, { hints }); // was: ARMDB_INTEGRITY … a record or atomic group is cut inside the durable log
      try {
        expect(readAll(third, keys)).toEqual(contents);
      } finally {
        await third.close();
      }
    },
  );

  /*
   * Once a bug (compaction, 59006bb; fixed in recovery): a crash while compaction deletes the old
   * files left a store that did not open. Input: a synced store with dead records in sealed files;
   * compact(); the process dies after compaction unlinked `NNNNNN.data` of an old file and before it
   * unlinked `NNNNNN.tags` (the manifest without the old file is already durable). Expected: the open
   * removes the rest of the leftover (docs: "the old files are leftovers removed at open") and
   * recovers everything. Actual: ARMDB_INTEGRITY "shard 0: half of unlisted file 1 is missing" —
   * src/engine/recovery.ts, recover(): `if (fileId < manifest.nextFileId) throw integrityError(… half of
   * unlisted file … is missing)` treats a half-deleted leftover like a damaged file.
   */
  it('a crash between the unlinks of an old file after compaction: the store opens', async () => {
    const dir = directory('half-deleted');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1 });
    const run = await execute(map, [...workload({ seed: 5, tag: 5, steps: 320, keys: 100 }, () => 0), { kind: 'sync' }]);
    expect(run.error).toBeUndefined();
    // The second unlink of a data or tag file: one half of the first old file is gone.
    fs.crashAt(2, { match: (kind, filePath) => kind === 'unlink' && /\.(data|tags)$/.test(filePath) });
    // Deleting retired files cannot fail a compaction (the switch is durable by then), so compact()
    // may resolve here; the process is dead either way.
    await map.compact().catch(() => undefined);
    await map.close().catch(() => undefined);
    expect(fs.crashPoint?.kind).toBe('unlink');
    const again = await openMap(dir, undefined, { shards: 1 }); // ARMDB_INTEGRITY: shard 0: half of unlisted file 1 is missing
    try {
      const contents = readAll(again, universe(new Map(), run.commits).values());
      expect(checkRecovered(new Map(), run.commits, run.commits.length, contents, again.size, () => 0)).toEqual([]);
    } finally {
      await again.close();
    }
  });

  /*
   * Once a bug (compaction, 59006bb; fixed in recovery): after a compaction, a crash that left
   * unsynced pages in the active file made the store refuse to open. Compaction's output files get new ids,
   * higher than the id of the shard's active file; recovery walks a shard's files in id order and, once
   * the active file's tail is torn, refuses every later file the manifest lists. Input (1 shard):
   * 60 puts, 4 × 30 overwrites (a file rotates: file 1 sealed, file 3 active), sync(), compact()
   * (output file 4, listed), 20 more puts (whole pages of file 3 written, not synced), the process
   * dies. Expected: the open recovers (at least everything synced). Actual: ARMDB_INTEGRITY "shard 0:
   * file 4 is listed as durable after a torn tail" (src/engine/recovery.ts, recover(): `if (entry !==
   * undefined && torn) throw …`; file ids no longer follow log order once compaction writes files).
   * The SIGKILL tests hit it within a few cycles with autoCompact on (kill.slow.test.ts).
   */
  it('a crash with unsynced writes after a compaction: the store opens', async () => {
    const dir = directory('compact-then-torn');
    const fs = new FaultFileSystem();
    const map = await openMap(dir, fs, { shards: 1 });
    const synced = new Map<string, Uint8Array>();
    for (let round = 0; round < 5; round++) {
      for (let n = 0; n < (round === 0 ? 60 : 30); n++) {
        map.put(keyOf(n), valueFor(1, n, round, 700));
        synced.set(Buffer.from(keyOf(n)).toString('hex'), valueFor(1, n, round, 700));
      }
    }
    await map.sync();
    const report = await map.compact();
    expect(report.filesOut).toBeGreaterThan(0);
    for (let n = 0; n < 20; n++) map.put(keyOf(n), valueFor(2, n, 9, 700));
    fs.crashAt(1);
    await map.close().catch(() => undefined);
    const again = await openMap(dir, undefined, { shards: 1 }); // ARMDB_INTEGRITY: shard 0: file 4 is listed as durable after a torn tail
    try {
      for (let n = 30; n < 60; n++) expect(again.get(keyOf(n))).toEqual(synced.get(Buffer.from(keyOf(n)).toString('hex')));
      expect((await again.verify()).ok).toBe(true);
    } finally {
      await again.close();
    }
  });
});
