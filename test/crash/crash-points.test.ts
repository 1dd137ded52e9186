/**
 * A crash at every named point of the engine's multi-step operations (src/engine/crash-points.ts):
 * store creation, barriers and MANIFEST replacement, hint writing, compaction (write, sync, rename,
 * directory sync, adopt, persist, delete inputs), rotateDataKey, crypto-shredding, changeKey and
 * close(). In process: at the point the fault-injecting file system "dies" (every later operation
 * fails and touches nothing, as after a kill), then the directory is reopened with the real file
 * system and checked against the model: every acknowledged commit present, nothing torn or foreign,
 * no half atomic group, verify() ok, and a second reopen identical. The same points as a real
 * SIGKILL: crash-points-kill.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { VarMap } from '../../src/collections/var-map.js';
import { CRASH_POINTS, setCrashPointHandler, type CrashPoint } from '../../src/engine/crash-points.js';
import { ArmdbError } from '../../src/errors.js';
import { testKey } from '../helpers/store.js';
import * as path from 'node:path';
import { FaultFileSystem } from './fault-fs.js';
import { PowerCutFileSystem } from './power-cut-fs.js';
import { checkCuts, STORE, type Cut } from './power-cut-scenario.js';
import {
  checkRecovered,
  execute,
  newExecution,
  openMap,
  readAll,
  sameBytes,
  shardOf,
  temporaryDirectory,
  universe,
  workload,
  type Execution,
} from './scenario.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  setCrashPointHandler(undefined);
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const FIRST_KEY = testKey(31);
const SECOND_KEY = testKey(32);
const OPTIONS = { shards: 2, hints: true, encryption: { key: FIRST_KEY } };

interface Outcome {
  readonly dir: string;
  readonly run: Execution;
  /** The point the crash hit (undefined: no crash asked, or the point was not reached). */
  readonly crashedAt: CrashPoint | undefined;
  /** Every point passed, in order, with its detail: the trace printed when a check fails. */
  readonly trace: string[];
  /** changeKey resolved before the crash: only the second key may open the store. */
  readonly keyChanged: boolean;
  /** With `power`: what the disk may hold after the power failed at the point. */
  readonly cut: Cut | undefined;
}

/**
 * The scenario: create, a workload with syncs (rotations, hints), compact(), rotateDataKey(),
 * compact({ reencrypt: true }) (shreds the old key), changeKey(), more writes, close(). With
 * `point`, the simulated process dies at its `occurrence`-th pass, counted from the start or (with
 * `afterAcknowledged`) only once a first sync() has resolved, so that something acknowledged is at
 * stake (the first passes of many points fall in the store's creation).
 */
async function scenario(point: CrashPoint | undefined, occurrence = 1, afterAcknowledged = false, power = false): Promise<Outcome> {
  const made = temporaryDirectory('points');
  cleanups.push(made.cleanup);
  // A killed process (the fault file system dies), or a power cut (the power-cut file system freezes
  // what the disk may hold; the store lives in STORE below its root).
  const fs = power ? new PowerCutFileSystem(made.path) : new FaultFileSystem();
  const storeDirectory = power ? path.join(made.path, STORE) : made.path;
  let cut: Cut | undefined;
  const trace: string[] = [];
  let seen = 0;
  let crashedAt: CrashPoint | undefined;
  const run = newExecution();
  let keyChanged = false;
  setCrashPointHandler((passed, detail) => {
    trace.push(`${passed} ${JSON.stringify({ ...detail, directory: undefined })}${run.durable > 0 ? '' : ' (nothing acknowledged yet)'}`);
    if (afterAcknowledged && run.durable === 0) return;
    if (passed === point && ++seen === occurrence && crashedAt === undefined) {
      crashedAt = passed;
      if (fs instanceof PowerCutFileSystem) {
        cut = {
          state: fs.cutNow(),
          index: fs.total,
          operation: passed,
          commits: run.commits.length,
          durable: run.durable,
          labels: new Set(keyChanged ? ['key changed'] : []),
        };
      } else fs.crashNow();
    }
  });
  let map: VarMap | undefined;
  try {
    map = await openMap(storeDirectory, fs, OPTIONS);
    const shard = (key: Uint8Array): number => shardOf(map!, key);
    const steps = workload({ seed: 77, tag: 7, steps: 260, keys: 120, syncEvery: 50 }, shard);
    await execute(map, [...steps, { kind: 'sync' }], run);
    if (run.error !== undefined) throw run.error;
    await map.compact();
    await map.rotateDataKey();
    await map.compact({ reencrypt: true });
    await map.changeKey({ key: SECOND_KEY });
    keyChanged = true;
    await execute(map, [...workload({ seed: 78, tag: 8, steps: 40, keys: 120 }, shard), { kind: 'close' }], run);
    if (run.error !== undefined) throw run.error;
  } catch (error) {
    // After the simulated death every operation fails: with the crash itself, or ARMDB_POISONED
    // caused by it. Anything else is a real failure.
    const cause = error instanceof ArmdbError && error.code === 'ARMDB_POISONED' ? error.cause : error;
    if (crashedAt === undefined || (cause as { code?: unknown } | undefined)?.code !== 'ESIMULATEDCRASH') {
      if (!(error instanceof ArmdbError && crashedAt !== undefined)) throw error;
    }
  } finally {
    setCrashPointHandler(undefined);
    await map?.close().catch(() => undefined);
  }
  return { dir: storeDirectory, run, crashedAt, trace, keyChanged, cut };
}

/** Opens with whichever key the KEYRING on disk accepts (changeKey replaces it atomically). */
async function reopen(outcome: { dir: string; keyChanged: boolean }): Promise<VarMap> {
  try {
    return await openMap(outcome.dir, undefined, { ...OPTIONS, encryption: { key: SECOND_KEY } });
  } catch (error) {
    if (outcome.keyChanged || !(error instanceof ArmdbError) || error.code !== 'ARMDB_WRONG_KEY') throw error;
    return openMap(outcome.dir, undefined, OPTIONS);
  }
}

/** Problems found in the recovered store (empty: it is right). */
async function check(outcome: Outcome): Promise<string[]> {
  const { run } = outcome;
  const map = await reopen(outcome);
  const keys = [...universe(new Map(), run.commits).values()];
  let contents: Map<string, Uint8Array | undefined>;
  const problems: string[] = [];
  try {
    contents = readAll(map, keys);
    problems.push(...checkRecovered(new Map(), run.commits, run.durable, contents, map.size, (key) => shardOf(map, key)));
    const report = await map.verify();
    if (!report.ok) problems.push(`verify(): ${JSON.stringify(report.failures.slice(0, 3))}`);
  } finally {
    await map.close();
  }
  const again = await reopen(outcome);
  try {
    const reread = readAll(again, keys);
    const differing = [...contents].filter(([keyHex, value]) => !sameBytes(value, reread.get(keyHex))).length;
    if (differing > 0) problems.push(`a second reopen gave other contents: ${differing} keys differ`);
  } finally {
    await again.close();
  }
  return problems;
}

/** Passes of each point in a run without a crash: in all, and after the first acknowledged sync. */
let reference: { all: Map<string, number>; afterAcknowledged: Map<string, number> } | undefined;
async function passesWithoutCrash(): Promise<NonNullable<typeof reference>> {
  if (reference !== undefined) return reference;
  const outcome = await scenario(undefined);
  const all = new Map<string, number>();
  const afterAcknowledged = new Map<string, number>();
  for (const line of outcome.trace) {
    const name = line.split(' ')[0]!;
    all.set(name, (all.get(name) ?? 0) + 1);
    if (!line.endsWith('(nothing acknowledged yet)')) afterAcknowledged.set(name, (afterAcknowledged.get(name) ?? 0) + 1);
  }
  reference = { all, afterAcknowledged };
  return reference;
}

// Store creation happens before anything is acknowledged; every other point also passes after.
const CREATION_ONLY: readonly CrashPoint[] = ['create:keyring-written', 'create:manifest-written'];

describe('crash points', () => {
  it('the scenario passes every named point (all but creation also after the first acknowledged sync), and without a crash the store is right', async () => {
    const outcome = await scenario(undefined);
    const passes = await passesWithoutCrash();
    expect(CRASH_POINTS.filter((point) => !passes.all.has(point))).toEqual([]);
    expect(CRASH_POINTS.filter((point) => !passes.afterAcknowledged.has(point) && !CREATION_ONLY.includes(point))).toEqual([]);
    expect(outcome.run.closed).toBe(true);
    expect(await check(outcome)).toEqual([]);
  });

  // The first pass of each point, and the first and second pass after something was acknowledged
  // (the second pass of a barrier or MANIFEST point falls in another phase than the first).
  const cases = CRASH_POINTS.flatMap((point) => [
    { point, occurrence: 1, afterAcknowledged: false, when: 'from the start' },
    ...(CREATION_ONLY.includes(point)
      ? []
      : [1, 2].map((occurrence) => ({ point, occurrence, afterAcknowledged: true, when: 'after the first acknowledged sync' }))),
  ]);
  it.each(cases)(
    'a crash at $point (pass $occurrence $when): every acknowledged commit survives, nothing torn, verify() ok, reopen identical',
    async ({ point, occurrence, afterAcknowledged }) => {
      const outcome = await scenario(point, occurrence, afterAcknowledged);
      if (outcome.crashedAt === undefined) {
        // Only a point the scenario passes fewer times than that may be missed.
        const passes = await passesWithoutCrash();
        expect((afterAcknowledged ? passes.afterAcknowledged : passes.all).get(point) ?? 0).toBeLessThan(occurrence);
        return;
      }
      if (afterAcknowledged) expect(outcome.run.durable).toBeGreaterThan(0);
      const problems = await check(outcome);
      if (problems.length > 0)
        throw new Error(
          `crash at ${point} (pass ${occurrence}):\n  ${problems.join('\n  ')}\ntrace (last 30 points):\n  ${outcome.trace.slice(-30).join('\n  ')}`,
        );
    },
  );

  // The same points as a power cut: the power-cut file system freezes what the disk may hold at the
  // point (unsynced writes kept or dropped per page, a torn piece, unsynced directory changes undone),
  // and 4 seeded images of it are recovered and checked against the model.
  const powerCases = CRASH_POINTS.flatMap((point) => [
    { point, afterAcknowledged: false, when: 'at its first pass' },
    ...(CREATION_ONLY.includes(point)
      ? []
      : [{ point, afterAcknowledged: true, when: 'at its first pass after the first acknowledged sync' }]),
  ]);
  it.each(powerCases)(
    'a power cut at $point $when: 4 images, each with every acknowledged commit, nothing torn, verify() ok, reopen identical',
    async ({ point, afterAcknowledged }) => {
      const outcome = await scenario(point, 1, afterAcknowledged, true);
      expect(outcome.cut).toBeDefined();
      const { problems, images } = await checkCuts([outcome.cut!], 4, 7_000, {
        base: new Map(),
        commits: outcome.run.commits,
        options: OPTIONS,
        open: (storeDirectory, cut) => reopen({ dir: storeDirectory, keyChanged: cut.labels.has('key changed') }),
      });
      expect(images).toBeGreaterThan(0);
      if (problems.length > 0)
        throw new Error(
          `power cut at ${point}:\n  ${problems.slice(0, 5).join('\n  ')}\ntrace (last 30 points):\n  ${outcome.trace.slice(-30).join('\n  ')}`,
        );
    },
  );
});
