/**
 * The workloads the power-cut tests run (power-cut.test.ts with few seeds, power-cut.slow.test.ts
 * with many). A scenario runs once over a {@link PowerCutFileSystem} and collects a cut before every
 * file operation of the part under test; a walk checks crash images of every cut
 * (power-cut-scenario.ts), or, for {@link powerCutDuringRecovery}, cuts again inside the recovering
 * open of some of them.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { VarMap } from '../../src/collections/var-map.js';
import { ArmdbError } from '../../src/errors.js';
import type { LoggedOperation } from './fault-fs.js';
import { describeCut, PowerCutFileSystem } from './power-cut-fs.js';
import { type Cut, checkCuts, collectCuts, describeError, type ImageCheck, recordingHook, STORE } from './power-cut-scenario.js';
import {
  applyCommits,
  type Execution,
  execute,
  KEY_SIZE,
  keyOf,
  newExecution,
  openMap,
  shardOf,
  type Step,
  temporaryDirectory,
  valueFor,
  workload,
} from './scenario.js';

export interface WalkResult {
  /** Cuts taken (one before each file operation, one after the run). */
  readonly cuts: number;
  /** Crash images checked. */
  readonly images: number;
  readonly problems: string[];
  /** How often the commit journal started over in the part under test (of the first run, for the recovery walk). */
  readonly journalRestarts: JournalRestarts;
}

export interface WalkOptions {
  /** Crash images per cut (a cut with nothing unsynced gets one). */
  readonly seedsPerCut: number;
  /** First image seed; the others follow from it (see checkCuts). */
  readonly seedBase: number;
  /** Seed of the workload (default: the scenario's own). */
  readonly workloadSeed?: number;
}

/** How often the commit journals started over (docs/format.md §6A.4), counted from the file operations. */
export interface JournalRestarts {
  /** Switches to the second journal file: `.journal2` created, or truncated to start over. */
  readonly toSecond: number;
  /** Switches back to the first: `.journal` truncated to start over. */
  readonly toFirst: number;
  /** Journals begun by a data file created in the same run (after a rotation, or by a recovering open). */
  readonly ofNewFiles: number;
}

const FILE_NAME = /(\d{6,10})\.(data|journal|journal2)$/;

/**
 * Counts journal restarts among `log` (docs/format.md §6A.4): a switch creates the other journal file
 * or truncates it to start over, and nothing else truncates a journal file.
 */
export function countJournalRestarts(log: readonly LoggedOperation[]): JournalRestarts {
  let toSecond = 0;
  let toFirst = 0;
  let ofNewFiles = 0;
  const newDataFiles = new Set<string>();
  for (const operation of log) {
    const name = FILE_NAME.exec(operation.path);
    if (name === null || (operation.kind !== 'truncate' && operation.kind !== 'open-create')) continue;
    const file = operation.path.slice(0, -name[0].length) + name[1];
    if (name[2] === 'data') {
      if (operation.kind === 'open-create') newDataFiles.add(file);
    } else if (name[2] === 'journal2') toSecond++;
    else if (operation.kind === 'truncate') toFirst++;
    else if (newDataFiles.has(file)) ofNewFiles++;
  }
  return { toSecond, toFirst, ofNewFiles };
}

/** What a scenario leaves for the checks: its cuts, and how to check an image of one. */
interface ScenarioRun {
  readonly cuts: readonly Cut[];
  readonly check: ImageCheck & { readonly commits: Execution['commits'] };
  /** The log of the part under test. */
  readonly log: readonly LoggedOperation[];
}

/** A workload run over `fs` with the store at `store`, a cut collected before every file operation of the part under test. */
type Scenario = (fs: PowerCutFileSystem, store: string, workloadSeed: number | undefined) => Promise<ScenarioRun>;

/** Runs `scenario` in a fresh directory and checks `seedsPerCut` crash images of every cut. */
async function walk(prefix: string, options: WalkOptions, scenario: Scenario): Promise<WalkResult> {
  const made = temporaryDirectory(prefix);
  try {
    const fs = new PowerCutFileSystem(made.path);
    const run = await scenario(fs, path.join(made.path, STORE), options.workloadSeed);
    const { problems, images } = await checkCuts(run.cuts, options.seedsPerCut, options.seedBase, run.check);
    return { cuts: run.cuts.length, images, problems, journalRestarts: countJournalRestarts(run.log) };
  } finally {
    made.cleanup();
  }
}

/** Runs `steps` and a sync() before the cuts; returns the model after them. */
async function syncedBase(map: VarMap, steps: readonly Step[]): Promise<Map<string, Uint8Array>> {
  const run = await execute(map, [...steps, { kind: 'sync' }]);
  if (run.error !== undefined) throw run.error;
  return applyCommits(new Map(), run.commits);
}

/**
 * The part under test: `run` with a cut before every file operation of `fs` (and one after). The
 * run must not fail: a power-cut file system that is not cut behaves like the real one.
 */
async function cutEveryOperation(
  fs: PowerCutFileSystem,
  run: (execution: Execution) => Promise<unknown>,
  labels?: () => Iterable<string>,
): Promise<{ cuts: Cut[]; execution: Execution; log: LoggedOperation[] }> {
  const execution = newExecution();
  const logStart = fs.log.length;
  const collector = collectCuts(fs, execution, labels);
  await run(execution);
  const cuts = collector.stop();
  if (execution.error !== undefined) throw execution.error;
  return { cuts, execution, log: fs.log.slice(logStart) };
}

/** The fault-injection walk's base set and window (test/crash/fault-injection.test.ts). */
const CRASH_BASE = { seed: 11, tag: 1, steps: 120, keys: 100 } as const;
const CRASH_WINDOW = { seed: 22, tag: 2, steps: 300, keys: 160 } as const;

/**
 * The fault-injection walk: a synced base set, then 150 steps (rotating both shards), sync(), 150
 * more, close() (which seals, writes hints and a last manifest). Cuts at every file operation of the
 * window.
 */
const faultInjectionWindow: Scenario = async (fs, store, workloadSeed) => {
  const map = await openMap(store, fs);
  const shard = (key: Uint8Array): number => shardOf(map, key);
  const base = await syncedBase(map, workload(CRASH_BASE, shard));
  const steps = workload({ ...CRASH_WINDOW, seed: workloadSeed ?? CRASH_WINDOW.seed }, shard);
  const window: Step[] = [...steps.slice(0, 150), { kind: 'sync' }, ...steps.slice(150), { kind: 'close' }];
  const { cuts, execution, log } = await cutEveryOperation(fs, (execution) => execute(map, window, execution));
  return { cuts, log, check: { base, commits: execution.commits } };
};

export function powerCutWalk(options: WalkOptions): Promise<WalkResult> {
  return walk('power-walk', options, faultInjectionWindow);
}

/**
 * Creating a store: the open of a directory that does not exist (directories, KEYRING, MANIFEST,
 * shard directories, active files), 60 steps, sync(), 60 steps, close(). Cuts at every file
 * operation from the first on; an image from before the first MANIFEST must open as an empty store.
 */
export function powerCutCreation(options: WalkOptions): Promise<WalkResult> {
  return walk('power-create', options, async (fs, store, workloadSeed) => {
    const { cuts, execution, log } = await cutEveryOperation(fs, async (execution) => {
      const map = await openMap(store, fs);
      const shard = (key: Uint8Array): number => shardOf(map, key);
      const steps = workload({ seed: workloadSeed ?? 44, tag: 4, steps: 120, keys: 80 }, shard);
      await execute(map, [...steps.slice(0, 60), { kind: 'sync' }, ...steps.slice(60), { kind: 'close' }], execution);
    });
    return { cuts, log, check: { base: new Map(), commits: execution.commits } };
  });
}

/**
 * Durable commits (docs/format.md §6A): a synced base, then 60 steps with a sync() after every one,
 * so each barrier appends one chunk to a commit journal, then close(), which seals the padded last
 * pages and retires the journals. Cuts at every file operation of the window: journal writes and
 * fsyncs, MANIFEST appends and replacements, the seals and unlinks of close(). (Journals starting
 * over are {@link powerCutJournalRestarts}.)
 */
export function powerCutDurableCommits(options: WalkOptions): Promise<WalkResult> {
  return walk('power-journal', options, async (fs, store, workloadSeed) => {
    const map = await openMap(store, fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const base = await syncedBase(map, workload({ seed: 8, tag: 8, steps: 40, keys: 60 }, shard));
    const steps = workload({ seed: workloadSeed ?? 88, tag: 9, steps: 60, keys: 60, syncEvery: 1 }, shard);
    const { cuts, execution, log } = await cutEveryOperation(fs, (execution) => execute(map, [...steps, { kind: 'close' }], execution));
    return { cuts, log, check: { base, commits: execution.commits } };
  });
}

/** Open options of the journal-restart scenario: one shard, so that every commit goes to the same journal. */
const ONE_SHARD = { shards: 1 } as const;

/**
 * Journals starting over (docs/format.md §6A.4): one shard, `steps` small durable commits (puts,
 * deletes and atomic groups with values up to 700 bytes, a sync() after each), so the partial page
 * stays partial and every barrier appends a chunk. The journal passes 8 KiB again and again and
 * starts over in its other file (created, then truncated), and back; every 24 commits two 9000-byte
 * puts fill pages, so the file rotates (64 KiB) and the next file's journal begins. close() at the
 * end. Cuts at every file operation of the window: truncates, headers and first chunks (the whole
 * prefix again) of restarted journals, their fsyncs, MANIFEST appends, rotations, retired journals.
 */
function journalRestarts(steps: number): Scenario {
  return async (fs, store, workloadSeed) => {
    const map = await openMap(store, fs, ONE_SHARD);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const base = await syncedBase(map, workload({ seed: 3, tag: 13, steps: 12, keys: 40, maxValueBytes: 700 }, shard));
    const small = workload({ seed: workloadSeed ?? 33, tag: 14, steps, keys: 40, maxValueBytes: 700, syncEvery: 1 }, shard);
    const window: Step[] = [];
    let commits = 0;
    for (const step of small) {
      window.push(step);
      if (step.kind === 'sync' || ++commits % 24 !== 0) continue;
      for (const extra of [100, 101]) window.push({ kind: 'put', key: keyOf(extra), value: valueFor(15, extra, commits, 9000) });
    }
    window.push({ kind: 'close' });
    const { cuts, execution, log } = await cutEveryOperation(fs, (execution) => execute(map, window, execution));
    return { cuts, log, check: { base, commits: execution.commits, options: ONE_SHARD } };
  };
}

export function powerCutJournalRestarts(options: WalkOptions & { readonly steps: number }): Promise<WalkResult> {
  return walk('power-restart', options, journalRestarts(options.steps));
}

/**
 * compact() while writes and syncs go on: a synced base with many dead records (320 steps on 100
 * keys, so sealed files are mostly garbage), then compact() started and, while it runs, 120 steps
 * with a sync every 15, then the compaction awaited, 40 more steps and close(). Cuts at every file
 * operation from compact() on: outputs written and renamed, the MANIFEST switched, old files
 * unlinked, hints written for the outputs, barriers of the writes in between.
 */
export function powerCutCompaction(options: WalkOptions): Promise<WalkResult> {
  return walk('power-compact', options, async (fs, store, workloadSeed) => {
    const map = await openMap(store, fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const base = await syncedBase(map, workload({ seed: 5, tag: 5, steps: 320, keys: 100 }, shard));
    const steps = workload({ seed: workloadSeed ?? 55, tag: 6, steps: 160, keys: 120, syncEvery: 15 }, shard);
    const { cuts, execution, log } = await cutEveryOperation(fs, async (execution) => {
      const compaction = map.compact();
      await execute(map, steps.slice(0, 128), execution);
      const report = await compaction;
      await execute(map, [...steps.slice(128), { kind: 'close' }], execution);
      if (report.filesIn === 0 || report.filesOut === 0) throw new Error(`compaction rewrote nothing: ${JSON.stringify(report)}`);
    });
    return { cuts, log, check: { base, commits: execution.commits } };
  });
}

/**
 * Reopen (files indexed from their hints), warmup() while puts go on, migrate() rewriting a third
 * of the values and deleting a sixth of the keys (its mutations recorded through the write hook,
 * in commit order), sync(), 40 more steps and close() (which seals and writes hints again). Cuts at
 * every file operation from the reopen's first on.
 */
export function powerCutMaintenance(options: WalkOptions): Promise<WalkResult> {
  return walk('power-maintain', options, async (fs, store, workloadSeed) => {
    const first = await openMap(store, fs);
    const shard = (key: Uint8Array): number => shardOf(first, key);
    const baseRun = await execute(first, [...workload({ seed: 7, tag: 7, steps: 260, keys: 120 }, shard), { kind: 'close' }]);
    if (baseRun.error !== undefined) throw baseRun.error;
    const base = applyCommits(new Map(), baseRun.commits);
    const { cuts, execution, log } = await cutEveryOperation(fs, async (execution) => {
      let recording = false;
      const map = await openMap(store, fs, { hook: recordingHook(() => (recording ? execution : undefined)) });
      const reshard = (key: Uint8Array): number => shardOf(map, key);
      const warming = map.warmup();
      await execute(map, workload({ seed: workloadSeed ?? 77, tag: 8, steps: 40, keys: 140, mix: 'puts' }, reshard), execution);
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
        [{ kind: 'sync' }, ...workload({ seed: (workloadSeed ?? 77) + 1, tag: 10, steps: 40, keys: 140 }, reshard), { kind: 'close' }],
        execution,
      );
    });
    return { cuts, log, check: { base, commits: execution.commits } };
  });
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
export function powerCutKeyLifecycle(options: WalkOptions): Promise<WalkResult> {
  return walk('power-keys', options, async (fs, store, workloadSeed) => {
    const map = await openMap(store, fs);
    const shard = (key: Uint8Array): number => shardOf(map, key);
    const base = await syncedBase(map, workload({ seed: 9, tag: 11, steps: 160, keys: 100 }, shard));
    const steps = workload({ seed: workloadSeed ?? 99, tag: 12, steps: 150, keys: 120 }, shard);
    const labels = new Set<string>();
    let shreddedKeyIds: readonly number[] = [];
    const { cuts, execution, log } = await cutEveryOperation(
      fs,
      async (execution) => {
        await map.changeKey({ key: NEXT_KEY.slice() });
        labels.add('changeKey resolved');
        await execute(map, [...steps.slice(0, 50), { kind: 'sync' }], execution);
        await map.rotateDataKey();
        await execute(map, [...steps.slice(50, 100), { kind: 'sync' }], execution);
        const report = await map.compact({ reencrypt: true });
        labels.add('shredded');
        shreddedKeyIds = report.shreddedKeyIds;
        await execute(map, [...steps.slice(100), { kind: 'close' }], execution);
        if (report.shreddedKeyIds.length === 0) throw new Error(`nothing was shredded: ${JSON.stringify(report)}`);
      },
      () => labels,
    );
    const isWrongKey = (error: unknown): boolean => error instanceof ArmdbError && error.code === 'ARMDB_WRONG_KEY';
    const check: ScenarioRun['check'] = {
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
        if (keyIds.some((keyId) => shreddedKeyIds.includes(keyId)))
          problems.push(`the KEYRING still holds shredded key ids: ${keyIds.join(', ')}`);
        const used = Object.keys(map.stats().filesPerKeyId).map(Number);
        if (used.some((keyId) => !keyIds.includes(keyId)))
          problems.push(`files use key ids ${used.join(', ')}, the KEYRING holds ${keyIds.join(', ')}`);
        return problems;
      },
    };
    return { cuts, log, check };
  });
}

/** The scenarios {@link powerCutDuringRecovery} can cut inside the recovery of. */
export type RecoveredScenario = 'fault-injection walk' | 'journal restarts';

/**
 * A power cut while recovering from a power cut: a scenario (default the fault-injection walk; the
 * journal restarts with 80 steps leave images whose recovery reads both journal files and writes
 * their records into a new file), then for every `firstCutStride`-th cut one image (seed from
 * `seedBase`), opened over a new power-cut file system whose durable state is that image, with a cut
 * before every file operation of the recovering open (sealing torn files, deleting leftovers, its
 * barrier) and of the close after it. Every image of those second cuts must recover what the first
 * cut allowed.
 */
export async function powerCutDuringRecovery(
  options: WalkOptions & { readonly firstCutStride: number; readonly scenario?: RecoveredScenario },
): Promise<WalkResult> {
  const made = temporaryDirectory('power-recovery');
  try {
    const fs = new PowerCutFileSystem(made.path);
    const scenario = options.scenario === 'journal restarts' ? journalRestarts(80) : faultInjectionWindow;
    const run = await scenario(fs, path.join(made.path, STORE), options.workloadSeed);
    const problems: string[] = [];
    let cuts = 0;
    let images = 0;
    for (let number = 0; number < run.cuts.length; number += options.firstCutStride) {
      const first = run.cuts[number]!;
      const image = temporaryDirectory('power-recovery-image');
      try {
        const seed = options.seedBase + number;
        const report = first.state.materialize(image.path, seed);
        const recoveryFs = new PowerCutFileSystem(image.path);
        // The second run acknowledges nothing new: the first cut's commits and acknowledgements stand.
        const frozen = newExecution();
        frozen.commits.push(...run.check.commits.slice(0, first.commits));
        frozen.durable = first.durable;
        const second = collectCuts(recoveryFs, frozen);
        try {
          await (await openMap(path.join(image.path, STORE), recoveryFs, run.check.options)).close();
        } catch (error) {
          problems.push(
            `first cut before operation ${first.index ?? 'none'} (${first.operation}), ${describeCut(report)}: the recovering open failed: ${describeError(error)}`,
          );
          recoveryFs.observe(undefined);
          continue;
        }
        const secondCuts = second.stop();
        cuts += secondCuts.length;
        const checked = await checkCuts(secondCuts, options.seedsPerCut, seed * 7, run.check);
        images += checked.images;
        for (const problem of checked.problems)
          problems.push(
            `first cut before operation ${first.index ?? 'none'} (${first.operation}), ${describeCut(report)}; second ${problem}`,
          );
      } finally {
        image.cleanup();
      }
    }
    return { cuts, images, problems, journalRestarts: countJournalRestarts(run.log) };
  } finally {
    made.cleanup();
  }
}
