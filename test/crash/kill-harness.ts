/**
 * SIGKILL crash cycles (used by kill.test.ts and kill.slow.test.ts). Each cycle:
 *
 * 1. starts writer-child.mjs on the store's directory (it opens the store through dist/, which
 *    recovers from the previous kill) with a fresh run number and seed;
 * 2. reads its stdout and kills it with SIGKILL at a random point measured in received lines: after
 *    the k-th acknowledged sync (k = 0..4; 0 = counting from "ready") plus 0..24 further lines, or
 *    (one cycle in eight) as soon as it announces it is opening the store, so that the kill lands in
 *    its recovery — no wall-clock sleeps;
 * 3. opens the directory in process (src/) and checks against the model of the run (kill-model.mjs
 *    replayed from the run's seed, on top of the contents the previous cycle verified):
 *    - every value present is exactly one the workload wrote (never garbage, never torn);
 *    - per shard, the contents equal the model after some prefix of the run's ops that includes
 *      every op acknowledged as synced (scenario.ts checkRecovered) — so every acknowledged op is
 *      there and every other key holds its old value or a value written since;
 *    - no atomic group is half applied (its 3 keys are all absent or share a generation);
 *    - verify() is ok; closing and reopening gives the same contents;
 *    every 10th cycle the check also compacts the store (compact(), then the same contents);
 * 4. the verified contents become the base of the next cycle, whose child recovers the same
 *    directory again (recovery of recovery).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VarMap } from '../../src/collections/var-map.js';
import {
  BATCH,
  GROUPS,
  STORE_OPTIONS,
  Random,
  allKeyIds,
  decodeValue,
  groupKeyIds,
  keyOf,
  operations,
  type Operation,
} from './kill-model.mjs';
import { checkRecovered, hex, presentState, readAll, sameBytes, shardOf, temporaryDirectory, type Commit } from './scenario.js';

export const CHILD_PATH = fileURLToPath(new URL('./writer-child.mjs', import.meta.url));
export const DIST_ENTRY = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
export const distBuilt = (): boolean => existsSync(DIST_ENTRY);

export interface KillCyclesOptions {
  readonly cycles: number;
  /**
   * true (default): every cycle continues on the same directory, and each recovered store is also
   * closed and reopened (recovery of recovery). false: every cycle starts a fresh store and only the
   * first open after the kill is checked.
   */
  readonly chained?: boolean;
  /** Background compaction in the child and in the checks (default false). */
  readonly autoCompact?: boolean;
  /**
   * Chained runs: every this many cycles the check also compacts the recovered store (and checks
   * that nothing changed), which keeps the store, and the time a cycle takes, from growing with the
   * number of cycles — and lets the next child recover a compacted store. Default 10; 0 = never.
   */
  readonly compactEvery?: number;
  /**
   * The child starts an explicit compact() every this many batches of ops without waiting for it, so
   * that compactions overlap writes and barriers (0, the default: none).
   */
  readonly childCompactEveryBatches?: number;
  /** The child starts a rotateDataKey() every this many batches (0, the default: never). */
  readonly childRotateEveryBatches?: number;
  /**
   * Log every seal of every child (file-key fingerprint and nonce) and check at the end that no
   * (key, nonce) pair was used twice across all cycles (SPEC §5.1). Default false.
   */
  readonly logSeals?: boolean;
  /** The child syncs after every op (a durable commit each: the commit journal's case). Default false. */
  readonly syncEveryOp?: boolean;
  /** Processes that spin on the CPUs while the cycles run (a busy machine). Default 0. */
  readonly busyLoops?: number;
  /** Seeds the run seeds and the kill points. */
  readonly seed: number;
  /** Progress lines (cycle summaries). */
  readonly log?: (line: string) => void;
}

export interface KillCyclesReport {
  readonly cycles: number;
  /** Ops the children acknowledged as synced, over all cycles. */
  readonly acknowledgedOps: number;
  /** Ops the children reported done, over all cycles. */
  readonly reportedOps: number;
  /** Keys in the store at the end. */
  readonly keys: number;
  /** Cycles whose recovery found a torn tail (bytes written after the last barrier). */
  readonly tornRecoveries: number;
  /** Seals logged over all cycles, and distinct file keys among them (0 without `logSeals`). */
  readonly seals: number;
  readonly fileKeys: number;
  /** Compaction outputs adopted in the children (the `compaction:adopted` crash point), over all cycles. */
  readonly adopts: number;
  /** Of those, adopts while a barrier was between its snapshot and its MANIFEST replacement. */
  readonly adoptsDuringBarrier: number;
  /** Milliseconds spent running children (spawn to exit) and checking in process (for reports only). */
  readonly childMs: number;
  readonly checkMs: number;
}

interface ChildOutcome {
  readonly lines: ChildLine[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly killed: boolean;
}

type ChildLine =
  | { readonly type: 'opening' }
  | { readonly type: 'ready'; readonly run: number; readonly keys: number; readonly tornBytes: number }
  | { readonly type: 'ack'; readonly ops: number }
  | { readonly type: 'progress'; readonly ops: number }
  | { readonly type: 'fatal'; readonly message: string }
  | {
      readonly type: 'point';
      readonly name: string;
      readonly shard?: number;
      readonly fileIds?: readonly number[];
      readonly epoch?: number;
    };

/** When to kill the child: as it starts opening the store, or after `acks` acks and `extraLines` more lines. */
type KillPlan = { readonly atOpening: true } | { readonly atOpening: false; readonly acks: number; readonly extraLines: number };

/** Runs the child until the kill plan says so (or until it exits by itself). */
function runChild(environment: Record<string, string>, plan: KillPlan): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD_PATH], { env: { ...process.env, ...environment }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: ChildLine[] = [];
    let buffered = '';
    let stderr = '';
    let ready = false;
    let acks = 0;
    let counting = false;
    let extra = 0;
    let killed = false;
    const kill = (): void => {
      if (killed) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const onLine = (text: string): void => {
      let line: ChildLine;
      try {
        line = JSON.parse(text) as ChildLine;
      } catch {
        lines.push({ type: 'fatal', message: `unparsable line from the child: ${text}` });
        kill();
        return;
      }
      lines.push(line);
      if (killed) return;
      if (plan.atOpening) {
        if (line.type === 'opening') kill();
        return;
      }
      // Only ack and progress lines count: the kill lands 0..24 of them after the acks, as many ops as
      // before the child also reported its crash points.
      if (line.type === 'point') return;
      if (counting) {
        if (++extra >= plan.extraLines) kill();
        return;
      }
      if (line.type === 'ready') ready = true;
      if (line.type === 'ack') acks++;
      if (ready && acks >= plan.acks) {
        counting = true;
        if (plan.extraLines === 0) kill();
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        onLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    // 'close': the process exited and its stdout/stderr are drained (lines written before the kill included).
    child.on('close', (code, signal) => resolve({ lines, code, signal, stderr, killed }));
  });
}

/** The interleaving a child reported: the last `count` crash points it passed, one per line. */
function traceOf(lines: readonly ChildLine[], count: number): string {
  const points = lines.filter((line) => line.type === 'point').slice(-count);
  return points
    .map((line) => {
      const { type: _type, name, ...detail } = line as Extract<ChildLine, { type: 'point' }>;
      return `${name} ${JSON.stringify(detail)}`;
    })
    .join('\n    ');
}

/**
 * Adopts of compaction outputs, and those that fell inside a barrier: after its snapshot and before
 * its fsyncs were done, the window in which the MANIFEST used to be built from the live file list.
 */
function countAdopts(lines: readonly ChildLine[]): { adopts: number; duringBarrier: number } {
  let adopts = 0;
  let duringBarrier = 0;
  let barrierOpen = false;
  for (const line of lines) {
    if (line.type !== 'point') continue;
    if (line.name === 'barrier:snapshot-taken') barrierOpen = true;
    else if (line.name === 'barrier:directories-synced') barrierOpen = false;
    else if (line.name === 'compaction:adopted') {
      adopts++;
      if (barrierOpen) duringBarrier++;
    }
  }
  return { adopts, duringBarrier };
}

function commitOf(op: Operation): Commit {
  switch (op.kind) {
    case 'put':
      return { writes: [{ key: keyOf(op.id), value: op.value }], step: op.index };
    case 'delete':
      return { writes: [{ key: keyOf(op.id), value: undefined }], step: op.index };
    case 'group-put':
      return { writes: op.writes.map((write) => ({ key: keyOf(write.id), value: write.value })), step: op.index };
    case 'group-delete':
      return { writes: op.ids.map((id) => ({ key: keyOf(id), value: undefined })), step: op.index };
  }
}

/** Problems with the atomic groups of `contents`: each group whole (all absent, or one generation). */
function groupProblems(contents: ReadonlyMap<string, Uint8Array | undefined>): string[] {
  const problems: string[] = [];
  for (let group = 0; group < GROUPS; group++) {
    const members = groupKeyIds(group).map((id) => contents.get(hex(keyOf(id))));
    const present = members.filter((value): value is Uint8Array => value !== undefined);
    if (present.length === 0) continue;
    const generations = new Set(present.map((value) => decodeValue(value)?.generation));
    if (present.length !== members.length || generations.size !== 1) {
      problems.push(
        `atomic group ${group} is half applied: ${present.length} of ${members.length} members present, generations ${[...generations].join(', ')}`,
      );
    }
  }
  return problems;
}

/** Runs `cycles` kill-and-recover cycles on one directory; throws with the details at the first problem. */
export async function runKillCycles(options: KillCyclesOptions): Promise<KillCyclesReport> {
  if (!distBuilt()) throw new Error(`${DIST_ENTRY} is missing: run \`npm run build\` first`);
  const random = new Random(options.seed);
  const key = new Uint8Array(randomBytes(32));
  const autoCompact = options.autoCompact ?? false;
  const storeOptions = { ...STORE_OPTIONS, autoCompact, encryption: { key } };
  const chained = options.chained ?? true;
  let directory = temporaryDirectory('kill', false);
  const keys = allKeyIds().map(keyOf);
  let base = new Map<string, Uint8Array>();
  let acknowledgedOps = 0;
  let reportedOps = 0;
  let tornRecoveries = 0;
  let childMs = 0;
  let checkMs = 0;
  let adopts = 0;
  let adoptsDuringBarrier = 0;
  const sealLogDirectory = temporaryDirectory('seals', false);
  const sealLogPath = path.join(sealLogDirectory.path, 'seals.log');
  // Spinning processes that also end by themselves once this process is gone (a test runner that tears
  // down its worker skips the finally below): every 2^24 turns they check their parent.
  const spin = `const parent = ${process.pid}; for (let turn = 1; ; turn++) if ((turn & 0xffffff) === 0 && process.ppid !== parent) process.exit(0);`;
  const busy = Array.from({ length: options.busyLoops ?? 0 }, () => spawn(process.execPath, ['-e', spin], { stdio: 'ignore' }));
  const stopBusy = (): void => {
    for (const loop of busy) loop.kill('SIGKILL');
  };
  process.once('exit', stopBusy);
  try {
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      if (!chained && cycle > 1) {
        directory.cleanup();
        directory = temporaryDirectory('kill', false);
        base = new Map();
      }
      if (cycle === 1 || !chained) {
        // The store is created here, so that the first acknowledged state is the empty store.
        // (Crashes during creation are covered by "creating a store" in fault-injection.test.ts.)
        const created = await VarMap.open(directory.path, storeOptions);
        await created.close();
      }
      const run = cycle;
      const runSeed = random.int(1, 0x7fff_ffff);
      const plan: KillPlan =
        random.next() < 0.125 ? { atOpening: true } : { atOpening: false, acks: random.int(0, 4), extraLines: random.int(0, 24) };
      const where = `cycle ${cycle} (seed ${options.seed}, run seed ${runSeed}, kill ${plan.atOpening ? 'while opening' : `after ${plan.acks} acks + ${plan.extraLines} lines`})`;
      const childStarted = performance.now();
      const outcome = await runChild(
        {
          ARMDB_KILL_DIR: directory.path,
          ARMDB_KILL_KEY: Buffer.from(key).toString('hex'),
          ARMDB_KILL_RUN: String(run),
          ARMDB_KILL_SEED: String(runSeed),
          ARMDB_KILL_AUTOCOMPACT: autoCompact ? '1' : '0',
          ARMDB_KILL_COMPACT_EVERY: String(options.childCompactEveryBatches ?? 0),
          ARMDB_KILL_ROTATE_EVERY: String(options.childRotateEveryBatches ?? 0),
          ARMDB_KILL_SYNC_EVERY_OP: options.syncEveryOp === true ? '1' : '0',
          ...(options.logSeals === true ? { ARMDB_KILL_SEAL_LOG: sealLogPath } : {}),
        },
        plan,
      );
      const checkStarted = performance.now();
      childMs += checkStarted - childStarted;
      const counted = countAdopts(outcome.lines);
      adopts += counted.adopts;
      adoptsDuringBarrier += counted.duringBarrier;
      const fatal = outcome.lines.find((line) => line.type === 'fatal');
      if (fatal !== undefined || !outcome.killed || outcome.signal !== 'SIGKILL') {
        throw new Error(
          `${where}: the child ${fatal !== undefined ? `failed: ${fatal.message}` : `exited by itself (code ${outcome.code}, signal ${outcome.signal})`}${outcome.stderr === '' ? '' : `\nstderr: ${outcome.stderr}`}`,
        );
      }
      const ready = outcome.lines.find((line) => line.type === 'ready');
      if (ready !== undefined && ready.type === 'ready' && ready.tornBytes > 0) tornRecoveries++;
      let acknowledged = 0;
      let reported = 0;
      for (const line of outcome.lines) {
        if (line.type === 'ack') acknowledged = Math.max(acknowledged, line.ops);
        if (line.type === 'ack' || line.type === 'progress') reported = Math.max(reported, line.ops);
      }
      // The child writes a line after every BATCH ops: it cannot have done more than this.
      const bound = ready === undefined ? 0 : reported + BATCH;
      acknowledgedOps += acknowledged;
      reportedOps += reported;

      const problems: string[] = [];
      const open = async (what: string): Promise<VarMap> => {
        try {
          return await VarMap.open(directory.path, storeOptions);
        } catch (error) {
          throw new Error(`${where}: ${what} failed: ${String(error)}`, { cause: error });
        }
      };
      const map = await open('the open after the kill');
      let contents: Map<string, Uint8Array | undefined>;
      let size: number;
      try {
        const shard = (candidate: Uint8Array): number => shardOf(map, candidate);
        const commits: Commit[] = [];
        const stream = operations(run, runSeed, options.syncEveryOp === true);
        for (let index = 0; index < bound; index++) commits.push(commitOf(stream.next().value));
        contents = readAll(map, keys);
        size = map.size;
        for (const [keyHex, value] of contents) {
          if (value !== undefined && decodeValue(value) === undefined)
            problems.push(`key ${keyHex} holds ${value.length} bytes the workload never wrote (garbage or torn)`);
        }
        problems.push(...groupProblems(contents));
        problems.push(...checkRecovered(base, commits, acknowledged, contents, map.size, shard));
        const report = await map.verify();
        if (!report.ok) problems.push(`verify() failed: ${JSON.stringify(report.failures.slice(0, 3))}`);
        const compactEvery = options.compactEvery ?? 10;
        if (chained && compactEvery > 0 && cycle % compactEvery === 0 && problems.length === 0) {
          await map.compact();
          const compacted = readAll(map, keys);
          let differing = 0;
          for (const [keyHex, value] of contents) if (!sameBytes(value, compacted.get(keyHex))) differing++;
          if (differing > 0 || map.size !== size) problems.push(`compact() changed the contents: ${differing} keys differ`);
        }
      } finally {
        await map.close();
      }
      if (problems.length === 0 && chained) {
        const again = await open('reopening the recovered store');
        try {
          const reread = readAll(again, keys);
          let differing = 0;
          for (const [keyHex, value] of contents) if (!sameBytes(value, reread.get(keyHex))) differing++;
          if (differing > 0 || again.size !== size) problems.push(`reopening gave other contents: ${differing} keys differ`);
        } finally {
          await again.close();
        }
      }
      if (problems.length > 0) {
        throw new Error(
          `${where}: ${acknowledged} ops acknowledged, at most ${bound} done:\n  ${problems.join('\n  ')}\n  the child's last crash points before the kill:\n    ${traceOf(outcome.lines, 40)}`,
        );
      }
      base = presentState(contents);
      checkMs += performance.now() - checkStarted;
      options.log?.(
        `${where}: ${acknowledged} acknowledged / ${reported} reported ops, ${base.size} keys (child ${Math.round(checkStarted - childStarted)} ms, check ${Math.round(performance.now() - checkStarted)} ms)`,
      );
    }
    let seals = 0;
    const fileKeys = new Set<string>();
    if (options.logSeals === true) {
      const seen = new Set<string>();
      for (const line of readFileSync(sealLogPath, 'utf8').split('\n')) {
        if (line.length === 0) continue;
        seals++;
        if (seen.has(line)) throw new Error(`a (file key, nonce) pair was sealed twice across the kill cycles: ${line}`);
        seen.add(line);
        fileKeys.add(line.split(' ')[0]!);
      }
    }
    return {
      cycles: options.cycles,
      acknowledgedOps,
      reportedOps,
      keys: base.size,
      tornRecoveries,
      seals,
      fileKeys: fileKeys.size,
      adopts,
      adoptsDuringBarrier,
      childMs,
      checkMs,
    };
  } finally {
    sealLogDirectory.cleanup();
    stopBusy();
    process.removeListener('exit', stopBusy);
    directory.cleanup();
  }
}
