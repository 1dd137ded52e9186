/**
 * Shared by the power-cut tests (power-cut.test.ts, power-cut.slow.test.ts): cuts collected before
 * every file operation of a run, and the check of one crash image against the model of scenario.ts.
 *
 * A cut records what the test knew at that moment: the commits that had returned (later ones cannot
 * be on disk: a mutation's I/O happens before its record exists) and how many of them a resolved
 * `sync()`/`close()` had acknowledged. The image must then hold, per shard, the model after a prefix
 * of those commits at least as long as the acknowledged ones (checkRecovered), verify, and reopen to
 * the same contents.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import * as path from 'node:path';
import type { VarMap } from '../../src/collections/var-map.js';
import type { OpenOptions } from '../../src/config.js';
import { ArmdbError } from '../../src/errors.js';
import type { WriteHook } from '../../src/index.js';
import { type CrashState, describeCut, type PowerCutFileSystem, type CutReport } from './power-cut-fs.js';
import {
  checkRecovered,
  hex,
  openMap,
  readAll,
  sameBytes,
  shardOf,
  temporaryDirectory,
  universe,
  type Commit,
  type Execution,
  type Write,
} from './scenario.js';

/** One cut: the state a power failure before operation `index` would leave, and what was acknowledged then. */
export interface Cut {
  readonly state: CrashState;
  /** 1-based index of the operation the cut precedes, or undefined for a cut after the run. */
  readonly index: number | undefined;
  /** The operation, relative to the file system's root ("write store/shard-000/000003.data"). */
  readonly operation: string;
  /** Commits that had returned. */
  readonly commits: number;
  /** Commits acknowledged by a resolved sync()/close(). */
  readonly durable: number;
  /** Free-form labels a test sets (e.g. "changeKey resolved"). */
  readonly labels: ReadonlySet<string>;
}

/**
 * Records a cut before every counted operation of `fs` until the returned function is called (which
 * adds a last cut "after the run"). `execution` is read at each cut; `labels()` adds what the test
 * knows at that moment.
 */
export function collectCuts(
  fs: PowerCutFileSystem,
  execution: Execution,
  labels: () => Iterable<string> = () => [],
): { cuts: Cut[]; stop: () => Cut[] } {
  const cuts: Cut[] = [];
  const relative = (filePath: string): string =>
    filePath
      .split(' -> ')
      .map((part) => path.relative(fs.root, part) || '.')
      .join(' -> ');
  fs.observe((operation) => {
    cuts.push({
      state: fs.snapshot(),
      index: operation.index,
      operation: `${operation.kind} ${relative(operation.path)}`,
      commits: execution.commits.length,
      durable: execution.durable,
      labels: new Set(labels()),
    });
  });
  return {
    cuts,
    stop: () => {
      fs.observe(undefined);
      cuts.push({
        state: fs.snapshot(),
        index: undefined,
        operation: '(after the run)',
        commits: execution.commits.length,
        durable: execution.durable,
        labels: new Set(labels()),
      });
      return cuts;
    },
  };
}

/**
 * A hook that records every committed mutation (in commit order, as `onWrite` runs) into the
 * execution while `recording()` says so: for mutations that scenario.ts's `execute` does not make
 * itself (migrate). An atomic group would appear as separate commits; the recorded runs have none.
 */
export function recordingHook(target: () => Execution | undefined): WriteHook<Uint8Array> {
  return {
    onWrite(key, _old, value) {
      const execution = target();
      if (execution === undefined) return;
      const write: Write = { key: key.slice(), value: value?.slice() };
      execution.commits.push({ writes: [write], step: -1 });
    },
  };
}

export interface ImageCheck {
  /** The model's starting state (synced before the cuts). */
  readonly base: ReadonlyMap<string, Uint8Array>;
  /** Every commit of the run (the cut's `commits` says how many count). */
  readonly commits: readonly Commit[];
  /** Open options of the image (the real file system is used). */
  readonly options?: Partial<OpenOptions>;
  /**
   * Opens the image's store when the default (openMap with `options`) does not fit, e.g. to try
   * both credentials after changeKey. Returns the map and notes for the report.
   */
  readonly open?: (storeDirectory: string, cut: Cut) => Promise<VarMap>;
  /** Extra checks on the recovered store, before it is closed. */
  readonly inspect?: (map: VarMap, cut: Cut, storeDirectory: string) => Promise<string[]> | string[];
}

/** Relative path of the store below the power-cut file system's root in these tests. */
export const STORE = 'store';

/**
 * Materializes `cut` with `seed` into a fresh directory and checks it; returns the problems (empty:
 * fine), each prefixed with the cut and the image's choices so that a failure can be replayed.
 */
export async function checkCut(cut: Cut, seed: number, check: ImageCheck): Promise<{ problems: string[]; report: CutReport }> {
  const made = temporaryDirectory('power-image');
  try {
    const report = cut.state.materialize(made.path, seed);
    const problems = await checkImage(path.join(made.path, STORE), cut, check);
    const where = `cut before operation ${cut.index ?? 'none'} (${cut.operation}; ${cut.commits} commits, ${cut.durable} acknowledged), ${describeCut(report)}`;
    return { problems: problems.map((problem) => `${where}: ${problem}`), report };
  } finally {
    made.cleanup();
  }
}

async function checkImage(storeDirectory: string, cut: Cut, check: ImageCheck): Promise<string[]> {
  const problems: string[] = [];
  const commits = check.commits.slice(0, cut.commits);
  // Keys of later commits too: one of them in the image would be a key never written before the cut.
  const keys = [...universe(check.base, check.commits).values()];
  const open = check.open ?? ((directory: string) => openMap(directory, undefined, check.options ?? {}));
  let contents: Map<string, Uint8Array | undefined>;
  let size: number;
  try {
    const map = await open(storeDirectory, cut);
    try {
      contents = readAll(map, keys);
      size = map.size;
      problems.push(...checkRecovered(check.base, commits, cut.durable, contents, size, (key) => shardOf(map, key)));
      const report = await map.verify();
      if (!report.ok) problems.push(`verify failed: ${JSON.stringify(report.failures.slice(0, 3))}`);
      if (check.inspect !== undefined) problems.push(...(await check.inspect(map, cut, storeDirectory)));
    } finally {
      await map.close();
    }
  } catch (error) {
    problems.push(`the open after the cut failed: ${describeError(error)}`);
    return problems;
  }
  try {
    const again = await open(storeDirectory, cut);
    try {
      const reread = readAll(again, keys);
      let differing = 0;
      for (const [keyHex, value] of contents) if (!sameBytes(value, reread.get(keyHex))) differing++;
      if (differing > 0 || again.size !== size)
        problems.push(`the second reopen differs: ${differing} keys changed (size ${size} -> ${again.size})`);
      const report = await again.verify();
      if (!report.ok) problems.push(`verify after the second reopen failed: ${JSON.stringify(report.failures.slice(0, 3))}`);
    } finally {
      await again.close();
    }
  } catch (error) {
    problems.push(`the second reopen failed: ${describeError(error)}`);
  }
  return problems;
}

export function describeError(error: unknown): string {
  if (error instanceof ArmdbError)
    return `${error.code}: ${error.message}${error.cause === undefined ? '' : ` (cause: ${String(error.cause)})`}`;
  return String(error);
}

/** The model after `commits`, as key hex → value. */
export function stateAfter(base: ReadonlyMap<string, Uint8Array>, commits: readonly Commit[]): Map<string, Uint8Array> {
  const state = new Map(base);
  for (const commit of commits)
    for (const write of commit.writes) write.value === undefined ? state.delete(hex(write.key)) : state.set(hex(write.key), write.value);
  return state;
}

/**
 * Checks every cut with `seedsPerCut` seeds (seed = `seedBase` + cut number × 1000 + i), one image
 * after the other. Returns the problems and the number of images checked.
 */
export async function checkCuts(
  cuts: readonly Cut[],
  seedsPerCut: number,
  seedBase: number,
  check: ImageCheck,
): Promise<{ problems: string[]; images: number }> {
  const problems: string[] = [];
  let images = 0;
  for (const [number, cut] of cuts.entries()) {
    // With nothing unsynced, every seed gives the same image.
    const seeds = cut.state.pendingChanges === 0 ? 1 : seedsPerCut;
    for (let attempt = 0; attempt < seeds; attempt++) {
      const result = await checkCut(cut, seedBase + number * 1000 + attempt, check);
      images++;
      problems.push(...result.problems);
    }
  }
  return { problems, images };
}
