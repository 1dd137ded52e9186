/**
 * The workloads the power-cut tests run (power-cut.test.ts with few seeds, power-cut.slow.test.ts
 * with many): each runs once over a {@link PowerCutFileSystem}, collects a cut before every file
 * operation of the part under test, and checks crash images of every cut (power-cut-scenario.ts).
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ArmdbError } from '../../src/errors.js';
import { describeCut, PowerCutFileSystem } from './power-cut-fs.js';
import { checkCuts, collectCuts, describeError, recordingHook, STORE } from './power-cut-scenario.js';
import {
  applyCommits,
  execute,
  KEY_SIZE,
  newExecution,
  openMap,
  shardOf,
  temporaryDirectory,
  valueFor,
  workload,
  type Step,
} from './scenario.js';

export interface WalkResult {
  /** Cuts taken (one before each file operation, one after the run). */
  readonly cuts: number;
  /** Crash images checked. */
  readonly images: number;
  readonly problems: string[];
}

export interface WalkOptions {
  /** Crash images per cut (a cut with nothing unsynced gets one). */
  readonly seedsPerCut: number;
  /** First image seed; the others follow from it (see checkCuts). */
  readonly seedBase: number;
  /** Seed of the workload (default: the fault-injection walk's). */
  readonly workloadSeed?: number;
}

/** The fault-injection walk's base set and window (test/crash/fault-injection.test.ts). */
const CRASH_BASE = { seed: 11, tag: 1, steps: 120, keys: 100 } as const;
const CRASH_WINDOW = { seed: 22, tag: 2, steps: 300, keys: 160 } as const;

/**
 * The fault-injection walk: a synced base set, then 150 steps (rotating both shards), sync(), 150
 * more, close() (which seals, writes hints and a last manifest). Cuts at every file operation of the
 * window.
 */
export async function powerCutWalk(options: WalkOptions): Promise<WalkResult> {
  const made = temporaryDirectory('power-walk');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const map = await openMap(path.join(made.path, STORE), fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const baseRun = await execute(map, [...workload(CRASH_BASE, shard), { kind: 'sync' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const steps = workload({ ...CRASH_WINDOW, seed: options.workloadSeed ?? CRASH_WINDOW.seed }, shard);
    const window: Step[] = [...steps.slice(0, 150), { kind: 'sync' }, ...steps.slice(150), { kind: 'close' }];
    const execution = newExecution();
    const collector = collectCuts(fs, execution);
    await execute(map, window, execution);
    const cuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    const { problems, images } = await checkCuts(cuts, options.seedsPerCut, options.seedBase, { base, commits: execution.commits });
    return { cuts: cuts.length, images, problems };
  } finally {
    made.cleanup();
  }
}

/**
 * Creating a store: the open of a directory that does not exist (directories, KEYRING, MANIFEST,
 * shard directories, active files), 60 steps, sync(), 60 steps, close(). Cuts at every file
 * operation from the first on; an image from before the first MANIFEST must open as an empty store.
 */
export async function powerCutCreation(options: WalkOptions): Promise<WalkResult> {
  const made = temporaryDirectory('power-create');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const execution = newExecution();
    const collector = collectCuts(fs, execution);
    const map = await openMap(path.join(made.path, STORE), fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const steps = workload({ seed: options.workloadSeed ?? 44, tag: 4, steps: 120, keys: 80 }, shard);
    await execute(map, [...steps.slice(0, 60), { kind: 'sync' }, ...steps.slice(60), { kind: 'close' }], execution);
    const cuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    const { problems, images } = await checkCuts(cuts, options.seedsPerCut, options.seedBase, {
      base: new Map(),
      commits: execution.commits,
    });
    return { cuts: cuts.length, images, problems };
  } finally {
    made.cleanup();
  }
}

/**
 * Durable commits (docs/format.md §6A): a synced base, then 60 steps with a sync() after every one,
 * so each barrier appends one chunk to a commit journal, then close(), which seals the padded last
 * pages and retires the journals. Cuts at every file operation of the window: journal writes and
 * fsyncs, MANIFEST replacements, the seals and unlinks of close(). (Journal restarts, which need 8 KiB
 * of chunks in one file, are covered by test/unit/storage/commit-journal.test.ts and the kill tests.)
 */
export async function powerCutDurableCommits(options: WalkOptions): Promise<WalkResult> {
  const made = temporaryDirectory('power-journal');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const map = await openMap(path.join(made.path, STORE), fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const baseRun = await execute(map, [...workload({ seed: 8, tag: 8, steps: 40, keys: 60 }, shard), { kind: 'sync' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const steps = workload({ seed: options.workloadSeed ?? 88, tag: 9, steps: 60, keys: 60, syncEvery: 1 }, shard);
    const execution = newExecution();
    const collector = collectCuts(fs, execution);
    await execute(map, [...steps, { kind: 'close' }], execution);
    const cuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    const { problems, images } = await checkCuts(cuts, options.seedsPerCut, options.seedBase, { base, commits: execution.commits });
    return { cuts: cuts.length, images, problems };
  } finally {
    made.cleanup();
  }
}

/**
 * compact() while writes and syncs go on: a synced base with many dead records (320 steps on 100
 * keys, so sealed files are mostly garbage), then compact() started and, while it runs, 120 steps
 * with a sync every 15, then the compaction awaited, 40 more steps and close(). Cuts at every file
 * operation from compact() on: outputs written and renamed, the MANIFEST switched, old files
 * unlinked, hints written for the outputs, barriers of the writes in between.
 */
export async function powerCutCompaction(options: WalkOptions): Promise<WalkResult> {
  const made = temporaryDirectory('power-compact');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const map = await openMap(path.join(made.path, STORE), fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const baseRun = await execute(map, [...workload({ seed: 5, tag: 5, steps: 320, keys: 100 }, shard), { kind: 'sync' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const steps = workload({ seed: options.workloadSeed ?? 55, tag: 6, steps: 160, keys: 120, syncEvery: 15 }, shard);
    const execution = newExecution();
    const collector = collectCuts(fs, execution);
    const compaction = map.compact();
    await execute(map, steps.slice(0, 128), execution);
    const report = await compaction;
    await execute(map, [...steps.slice(128), { kind: 'close' }], execution);
    const cuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    if (report.filesIn === 0 || report.filesOut === 0) throw new Error(`compaction rewrote nothing: ${JSON.stringify(report)}`);
    const { problems, images } = await checkCuts(cuts, options.seedsPerCut, options.seedBase, { base, commits: execution.commits });
    return { cuts: cuts.length, images, problems };
  } finally {
    made.cleanup();
  }
}

/**
 * Reopen (files indexed from their hints), warmup() while puts go on, migrate() rewriting a third
 * of the values and deleting a sixth of the keys (its mutations recorded through the write hook,
 * in commit order), sync(), 40 more steps and close() (which seals and writes hints again). Cuts at
 * every file operation from the reopen's first on.
 */
export async function powerCutMaintenance(options: WalkOptions): Promise<WalkResult> {
  const made = temporaryDirectory('power-maintain');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const store = path.join(made.path, STORE);
    const first = await openMap(store, fs);
    const shard = (key: Uint8Array): number => shardOf(first, key);
    const baseRun = await execute(first, [...workload({ seed: 7, tag: 7, steps: 260, keys: 120 }, shard), { kind: 'close' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const execution = newExecution();
    let recording = false;
    const collector = collectCuts(fs, execution);
    const map = await openMap(store, fs, { hook: recordingHook(() => (recording ? execution : undefined)) });
    const reshard = (key: Uint8Array): number => shardOf(map, key);
    const warming = map.warmup();
    await execute(map, workload({ seed: options.workloadSeed ?? 77, tag: 8, steps: 40, keys: 140, mix: 'puts' }, reshard), execution);
    await warming;
    recording = true;
    let visited = 0;
    await map.migrate((key, value) => {
      visited++;
      if (visited % 6 === 0) return 'delete';
      if (visited % 3 === 0) return valueFor(9, key[KEY_SIZE - 1]!, visited, value.length + 17);
      return 'keep';
    });
    recording = false;
    await execute(
      map,
      [
        { kind: 'sync' },
        ...workload({ seed: (options.workloadSeed ?? 77) + 1, tag: 10, steps: 40, keys: 140 }, reshard),
        { kind: 'close' },
      ],
      execution,
    );
    const cuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    const { problems, images } = await checkCuts(cuts, options.seedsPerCut, options.seedBase, { base, commits: execution.commits });
    return { cuts: cuts.length, images, problems };
  } finally {
    made.cleanup();
  }
}

/** Key ids of the data-key entries of a KEYRING (version 2: docs/format.md §8.1, §8.3; version 1: §8.7). */
function keyringKeyIds(bytes: Uint8Array): number[] {
  const keyring = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (keyring.readUInt16LE(8) === 1) {
    const count = keyring.readUInt32LE(76);
    return Array.from({ length: count }, (_, index) => keyring.readUInt32LE(140 + 64 * index));
  }
  const count = keyring.readUInt32LE(12);
  return Array.from({ length: count }, (_, index) => keyring.readUInt32LE(100 + 72 * index));
}

/** The credential changeKey moves the store to in the key walk. */
const NEXT_KEY = Uint8Array.from({ length: 32 }, (_, index) => (index * 53 + 7) & 0xff);

/**
 * The key lifecycle: changeKey to a new key, writes, rotateDataKey, writes, then
 * compact({ reencrypt: true }) (every file rewritten under the new data key, the old key shredded
 * from the KEYRING), writes and close(); syncs in between. Cuts at every file operation from
 * changeKey on. An image opens with exactly one of the two keys, with the new one once changeKey
 * had resolved; once the compaction had resolved, its KEYRING holds only the new data key and every
 * file uses it.
 */
export async function powerCutKeyLifecycle(options: WalkOptions): Promise<WalkResult> {
  const made = temporaryDirectory('power-keys');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const store = path.join(made.path, STORE);
    const map = await openMap(store, fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const baseRun = await execute(map, [...workload({ seed: 9, tag: 11, steps: 160, keys: 100 }, shard), { kind: 'sync' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const steps = workload({ seed: options.workloadSeed ?? 99, tag: 12, steps: 150, keys: 120 }, shard);
    const execution = newExecution();
    const labels = new Set<string>();
    const collector = collectCuts(fs, execution, () => labels);
    await map.changeKey({ key: NEXT_KEY.slice() });
    labels.add('changeKey resolved');
    await execute(map, [...steps.slice(0, 50), { kind: 'sync' }], execution);
    await map.rotateDataKey();
    await execute(map, [...steps.slice(50, 100), { kind: 'sync' }], execution);
    const report = await map.compact({ reencrypt: true });
    labels.add('shredded');
    await execute(map, [...steps.slice(100), { kind: 'close' }], execution);
    const cuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    if (report.shreddedKeyIds.length === 0) throw new Error(`nothing was shredded: ${JSON.stringify(report)}`);
    const isWrongKey = (error: unknown): boolean => error instanceof ArmdbError && error.code === 'ARMDB_WRONG_KEY';
    const { problems, images } = await checkCuts(cuts, options.seedsPerCut, options.seedBase, {
      base,
      commits: execution.commits,
      open: async (directory, cut) => {
        // Exactly one credential opens the store (each tried alone: a second open would be ARMDB_LOCKED).
        const opensWith = async (key: Uint8Array | undefined): Promise<boolean> => {
          try {
            await (await openMap(directory, undefined, key === undefined ? {} : { encryption: { key } })).close();
            return true;
          } catch (error) {
            if (isWrongKey(error)) return false;
            throw error;
          }
        };
        const withNew = await opensWith(NEXT_KEY.slice());
        const withOld = await opensWith(undefined);
        if (withNew === withOld)
          throw new Error(withNew ? 'both the old and the new key open the store' : 'neither the old nor the new key opens the store');
        if (cut.labels.has('changeKey resolved') && !withNew)
          throw new Error('changeKey had resolved, but only the old key opens the store');
        return openMap(directory, undefined, withNew ? { encryption: { key: NEXT_KEY.slice() } } : {});
      },
      inspect: (map, cut, directory) => {
        if (!cut.labels.has('shredded')) return [];
        const problems: string[] = [];
        const keyIds = keyringKeyIds(readFileSync(path.join(directory, 'KEYRING')));
        if (keyIds.some((keyId) => report.shreddedKeyIds.includes(keyId)))
          problems.push(`the KEYRING still holds shredded key ids: ${keyIds.join(', ')}`);
        const used = Object.keys(map.stats().filesPerKeyId).map(Number);
        if (used.some((keyId) => !keyIds.includes(keyId)))
          problems.push(`files use key ids ${used.join(', ')}, the KEYRING holds ${keyIds.join(', ')}`);
        return problems;
      },
    });
    return { cuts: cuts.length, images, problems };
  } finally {
    made.cleanup();
  }
}

/**
 * A power cut while recovering from a power cut: the fault-injection walk, then for every
 * `firstCutStride`-th cut one image (seed from `seedBase`), opened over a new power-cut file system
 * whose durable state is that image, with a cut before every file operation of the recovering open
 * (sealing torn files, deleting leftovers, its barrier) and of the close after it. Every image of
 * those second cuts must recover what the first cut allowed.
 */
export async function powerCutDuringRecovery(options: WalkOptions & { readonly firstCutStride: number }): Promise<WalkResult> {
  const made = temporaryDirectory('power-recovery');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const map = await openMap(path.join(made.path, STORE), fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const baseRun = await execute(map, [...workload(CRASH_BASE, shard), { kind: 'sync' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const steps = workload({ ...CRASH_WINDOW, seed: options.workloadSeed ?? CRASH_WINDOW.seed }, shard);
    const execution = newExecution();
    const collector = collectCuts(fs, execution);
    await execute(map, [...steps.slice(0, 150), { kind: 'sync' }, ...steps.slice(150), { kind: 'close' }], execution);
    const firstCuts = collector.stop();
    if (execution.error !== undefined) throw execution.error;
    const problems: string[] = [];
    let cuts = 0;
    let images = 0;
    for (let number = 0; number < firstCuts.length; number += options.firstCutStride) {
      const first = firstCuts[number]!;
      const image = temporaryDirectory('power-recovery-image');
      try {
        const seed = options.seedBase + number;
        const report = first.state.materialize(image.path, seed);
        const recoveryFs = new PowerCutFileSystem(image.path);
        // The second run acknowledges nothing new: the first cut's commits and acknowledgements stand.
        const frozen = newExecution();
        frozen.commits.push(...execution.commits.slice(0, first.commits));
        frozen.durable = first.durable;
        const second = collectCuts(recoveryFs, frozen);
        try {
          await (await openMap(path.join(image.path, STORE), recoveryFs)).close();
        } catch (error) {
          problems.push(
            `first cut before operation ${first.index ?? 'none'} (${first.operation}), ${describeCut(report)}: the recovering open failed: ${describeError(error)}`,
          );
          recoveryFs.observe(undefined);
          continue;
        }
        const secondCuts = second.stop();
        cuts += secondCuts.length;
        const checked = await checkCuts(secondCuts, options.seedsPerCut, seed * 7, { base, commits: execution.commits });
        images += checked.images;
        for (const problem of checked.problems)
          problems.push(
            `first cut before operation ${first.index ?? 'none'} (${first.operation}), ${describeCut(report)}; second ${problem}`,
          );
      } finally {
        image.cleanup();
      }
    }
    return { cuts, images, problems };
  } finally {
    made.cleanup();
  }
}
