/**
 * Shared by the in-process crash and fault tests: deterministic workloads (puts, deletes, atomic
 * groups, syncs, close), a model of what each step did, and the check that a recovered store is a
 * state the model allows.
 *
 * The check is per shard: each shard is an append-only log, so after a crash its contents must equal
 * the model after some prefix of the commits (an atomic group counts as one commit) that is at least
 * as long as the last prefix a `sync()`/`close()` acknowledged. That implies:
 * synced data is there, every other key holds its old value or a value that was written, nothing is
 * torn, no atomic group is half applied, no key appears that was never written.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { VarMap } from '../../src/collections/var-map.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import type { OpenOptions } from '../../src/config.js';
import { ArmdbError } from '../../src/errors.js';
import type { EngineHooks } from '../../src/internal/engine-hooks.js';
import type { FileSystem } from '../../src/io/file-system.js';
import { hex, sameBytes } from '../helpers/bytes.js';
import { Random } from '../helpers/random.js';
import { directoriesRemovedAfterEach, temporaryDirectory } from '../helpers/temp-dir.js';

export const KEY_SIZE = 16;
/** A fixed raw key: tests only. */
export const TEST_KEY = Uint8Array.from({ length: 32 }, (_, index) => (index * 37 + 11) & 0xff);

export function baseOptions(overrides: Partial<OpenOptions> = {}): OpenOptions {
  return {
    keySize: KEY_SIZE,
    encryption: { key: TEST_KEY },
    shards: 2,
    maxFileBytes: 65536,
    writeBufferBytes: 4096,
    // No background barrier and no background compaction: every run of a workload does the same
    // file operations (the background hint writer still interleaves with barriers).
    syncIntervalMs: 0,
    autoCompact: false,
    ...overrides,
  };
}

/** Opens a VarMap, through `fileSystem` when given (engine hook), else through the real file system. */
export function openMap(directory: string, fileSystem?: FileSystem, overrides: Partial<OpenOptions> = {}): Promise<VarMap> {
  const options = baseOptions(overrides);
  if (fileSystem === undefined) return VarMap.open(directory, options);
  const hooks: EngineHooks = { fileSystem };
  return VarMap.open(directory, withEngineHooks({ ...options }, hooks));
}

/** Keys whose shards name the shards: a key's shard label is the index of the first of these it shares a shard with. */
const REFERENCE_KEYS = Array.from({ length: 64 }, (_, index) => {
  const key = new Uint8Array(KEY_SIZE).fill(0xa5);
  new DataView(key.buffer).setUint32(0, 0x9e3779b9 * (index + 1));
  return key;
});
const SAME_SHARD = Symbol('same shard');
const shardCache = new WeakMap<VarMap, Map<string, number>>();

/**
 * A label of the shard `key` routes to, found through the public API only: `atomic(a, …)` refuses a
 * key of another shard with ARMDB_SHARD_MISMATCH, and applies nothing when its callback throws. The
 * label is the index of the first of a fixed list of reference keys in the same shard, so it is the
 * same in every open of a store with the same routing options. No I/O.
 */
export function shardOf(map: VarMap, key: Uint8Array): number {
  let cache = shardCache.get(map);
  if (cache === undefined) {
    cache = new Map();
    shardCache.set(map, cache);
  }
  const keyHex = hex(key);
  const cached = cache.get(keyHex);
  if (cached !== undefined) return cached;
  for (let index = 0; index < REFERENCE_KEYS.length; index++) {
    try {
      map.atomic(REFERENCE_KEYS[index]!, (tx) => {
        tx.put(key, new Uint8Array(0));
        throw SAME_SHARD;
      });
    } catch (error) {
      if (error === SAME_SHARD) {
        cache.set(keyHex, index);
        return index;
      }
      if (error instanceof ArmdbError && error.code === 'ARMDB_SHARD_MISMATCH') continue;
      throw error;
    }
  }
  throw new Error('no reference key shares a shard with the key');
}

// Shared helpers, defined once in test/helpers and re-exported for the crash harnesses that import them from here.
export { hex, sameBytes, Random, directoriesRemovedAfterEach, temporaryDirectory };

// ---- deterministic inputs ----------------------------------------------------------------------

/** Key number `n`: recognisable, `KEY_SIZE` bytes. */
export function keyOf(n: number): Uint8Array {
  const key = new Uint8Array(KEY_SIZE);
  key.set(new TextEncoder().encode('key:'), 0);
  new DataView(key.buffer).setUint32(KEY_SIZE - 4, n);
  return key;
}

/**
 * A value that says who wrote it (tag, key, step) and is otherwise filled with bytes derived from
 * those, so a torn or misplaced value can never pass for a valid one.
 */
export function valueFor(tag: number, key: number, step: number, length: number): Uint8Array {
  const value = new Uint8Array(Math.max(length, 12));
  const view = new DataView(value.buffer);
  view.setUint32(0, tag);
  view.setUint32(4, key);
  view.setUint32(8, step);
  let x = (tag * 0x9e3779b1 + key * 0x85ebca6b + step * 0xc2b2ae35) >>> 0 || 1;
  for (let index = 12; index < value.length; index++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    value[index] = x & 0xff;
  }
  return value;
}

// ---- workloads -------------------------------------------------------------------------------

export interface Write {
  readonly key: Uint8Array;
  /** undefined: delete. */
  readonly value: Uint8Array | undefined;
}

export type Step =
  | { readonly kind: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly kind: 'delete'; readonly key: Uint8Array }
  | { readonly kind: 'atomic'; readonly writes: readonly Write[] }
  | { readonly kind: 'sync' }
  | { readonly kind: 'close' };

export interface WorkloadSpec {
  readonly seed: number;
  /** Distinguishes values of different workloads. */
  readonly tag: number;
  readonly steps: number;
  /** Keys are drawn from 0..keys-1. */
  readonly keys: number;
  /** Every `syncEvery` steps a sync step (0: none). */
  readonly syncEvery?: number;
  readonly maxValueBytes?: number;
  /** 'mixed' (default): puts, deletes and atomic groups; 'puts': puts only. */
  readonly mix?: 'mixed' | 'puts';
}

/**
 * A deterministic list of steps: ~60 % puts (some values span pages), ~20 % deletes, ~20 % atomic
 * groups of 3 keys of one shard (`shard` gives the routing).
 */
export function workload(spec: WorkloadSpec, shard: (key: Uint8Array) => number): Step[] {
  const random = new Random(spec.seed);
  const steps: Step[] = [];
  const maxValueBytes = spec.maxValueBytes ?? 1500;
  const sizeFor = (): number => (random.next() < 0.05 ? random.int(4096, 9000) : random.int(1, maxValueBytes));
  for (let step = 0; step < spec.steps; step++) {
    if (spec.syncEvery !== undefined && spec.syncEvery > 0 && step > 0 && step % spec.syncEvery === 0) steps.push({ kind: 'sync' });
    const roll = spec.mix === 'puts' ? 0 : random.next();
    const keyNumber = random.int(0, spec.keys - 1);
    if (roll < 0.6) {
      steps.push({ kind: 'put', key: keyOf(keyNumber), value: valueFor(spec.tag, keyNumber, step, sizeFor()) });
    } else if (roll < 0.8) {
      steps.push({ kind: 'delete', key: keyOf(keyNumber) });
    } else {
      // Three keys of the first key's shard.
      const first = keyOf(keyNumber);
      const members = [keyNumber];
      for (
        let candidate = (keyNumber + 1) % spec.keys;
        members.length < 3 && candidate !== keyNumber;
        candidate = (candidate + 1) % spec.keys
      ) {
        if (shard(keyOf(candidate)) === shard(first)) members.push(candidate);
      }
      const deleting = random.next() < 0.2;
      steps.push({
        kind: 'atomic',
        writes: members.map((member) => ({
          key: keyOf(member),
          value: deleting && member !== keyNumber ? undefined : valueFor(spec.tag, member, step, sizeFor()),
        })),
      });
    }
  }
  return steps;
}

// ---- running a workload against a store and remembering what it did ----------------------------

export interface Commit {
  /** One write, or the writes of one atomic group (all keys of one shard). */
  readonly writes: readonly Write[];
  /** Index of the step that made it. */
  readonly step: number;
}

export interface Execution {
  /** Mutations that returned, in order. */
  readonly commits: Commit[];
  /** Commits a resolved sync()/close() made durable: commits[0..durable) must survive anything. */
  durable: number;
  /** The first error (the run stops there), if any. */
  error: unknown;
  /** Index of the step that threw. */
  failedStep: number | undefined;
  /** Whether close() resolved. */
  closed: boolean;
}

/**
 * Runs `steps` in order, stopping at the first error. Puts and deletes go through the public API;
 * a delete of an absent key writes nothing and is not a commit.
 */
export async function execute(map: VarMap, steps: readonly Step[], execution: Execution = newExecution()): Promise<Execution> {
  for (let index = 0; index < steps.length; index++) {
    const step = steps[index]!;
    try {
      switch (step.kind) {
        case 'put':
          map.put(step.key, step.value);
          execution.commits.push({ writes: [{ key: step.key, value: step.value }], step: index });
          break;
        case 'delete':
          if (map.delete(step.key)) execution.commits.push({ writes: [{ key: step.key, value: undefined }], step: index });
          break;
        case 'atomic': {
          const first = step.writes[0]!.key;
          const applied: Write[] = [];
          map.atomic(first, (tx) => {
            for (const write of step.writes) {
              if (write.value !== undefined) {
                tx.put(write.key, write.value);
                applied.push(write);
              } else if (tx.delete(write.key)) {
                applied.push(write);
              }
            }
          });
          if (applied.length > 0) execution.commits.push({ writes: applied, step: index });
          break;
        }
        case 'sync': {
          const before = execution.commits.length;
          await map.sync();
          execution.durable = before;
          break;
        }
        case 'close': {
          const before = execution.commits.length;
          await map.close();
          execution.durable = before;
          execution.closed = true;
          break;
        }
      }
    } catch (error) {
      execution.error = error;
      execution.failedStep = index;
      return execution;
    }
  }
  return execution;
}

export function newExecution(): Execution {
  return { commits: [], durable: 0, error: undefined, failedStep: undefined, closed: false };
}

/** The model state after `commits` applied to `base` (key hex → value). */
export function applyCommits(base: ReadonlyMap<string, Uint8Array>, commits: readonly Commit[]): Map<string, Uint8Array> {
  const state = new Map(base);
  for (const commit of commits) {
    for (const write of commit.writes) {
      if (write.value === undefined) state.delete(hex(write.key));
      else state.set(hex(write.key), write.value);
    }
  }
  return state;
}

/** Every key a workload may touch plus the keys of `base`. */
export function universe(base: ReadonlyMap<string, Uint8Array>, commits: readonly Commit[]): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  for (const keyHex of base.keys()) keys.set(keyHex, new Uint8Array(Buffer.from(keyHex, 'hex')));
  for (const commit of commits) for (const write of commit.writes) keys.set(hex(write.key), write.key);
  return keys;
}

/** Reads every key of `keys` from the store. */
export function readAll(map: VarMap, keys: Iterable<Uint8Array>): Map<string, Uint8Array | undefined> {
  const contents = new Map<string, Uint8Array | undefined>();
  for (const key of keys) contents.set(hex(key), map.get(key));
  return contents;
}

/**
 * Checks that `recovered` (a read of every key of the universe, and the store's size) is a state the
 * model allows: per shard, the model after some prefix of the commits that includes the first
 * `durable` ones. Returns the problems found (empty: fine).
 */
export function checkRecovered(
  base: ReadonlyMap<string, Uint8Array>,
  commits: readonly Commit[],
  durable: number,
  recovered: ReadonlyMap<string, Uint8Array | undefined>,
  recoveredSize: number,
  shard: (key: Uint8Array) => number,
): string[] {
  const problems: string[] = [];
  const keys = universe(base, commits);
  // Who wrote each value, to explain mismatches.
  const writers = new Map<string, string>();
  for (const [keyHex, value] of base) writers.set(`${keyHex}:${hex(value)}`, 'the base set');
  commits.forEach((commit, index) => {
    for (const write of commit.writes)
      if (write.value !== undefined) writers.set(`${hex(write.key)}:${hex(write.value)}`, `commit ${index} (step ${commit.step})`);
  });
  const describe = (keyHex: string, value: Uint8Array | undefined): string =>
    value === undefined
      ? 'absent'
      : (writers.get(`${keyHex}:${hex(value)}`) ?? `GARBAGE (${value.length} bytes, never written to this key)`);

  let present = 0;
  for (const value of recovered.values()) if (value !== undefined) present++;
  if (recoveredSize !== present)
    problems.push(`the store holds ${recoveredSize} keys; ${present} of the keys ever written are present (keys that were never written?)`);

  const shards = new Set<number>();
  const shardOfKey = new Map<string, number>();
  for (const [keyHex, key] of keys) {
    const s = shard(key);
    shardOfKey.set(keyHex, s);
    shards.add(s);
  }
  for (const s of [...shards].sort((a, b) => a - b)) {
    const model = new Map<string, Uint8Array | undefined>();
    for (const [keyHex] of keys) if (shardOfKey.get(keyHex) === s) model.set(keyHex, base.get(keyHex));
    const mismatched = new Set<string>();
    for (const [keyHex, value] of model) if (!sameBytes(value, recovered.get(keyHex))) mismatched.add(keyHex);
    const ownCommits = commits
      .map((commit, index) => ({ commit, index }))
      .filter(({ commit }) => shardOfKey.get(hex(commit.writes[0]!.key)) === s);
    // State after the first g commits, for g in [reach, nextIndex]: valid when nothing mismatches and nextIndex >= durable.
    let best = { mismatches: mismatched.size, afterCommits: 0, sample: [...mismatched].slice(0, 5) };
    let ok = false;
    for (let position = -1; position < ownCommits.length; position++) {
      if (position >= 0) {
        for (const write of ownCommits[position]!.commit.writes) {
          const keyHex = hex(write.key);
          model.set(keyHex, write.value);
          if (sameBytes(write.value, recovered.get(keyHex))) mismatched.delete(keyHex);
          else mismatched.add(keyHex);
        }
      }
      const upTo = position + 1 < ownCommits.length ? ownCommits[position + 1]!.index : commits.length;
      if (upTo < durable) continue;
      if (mismatched.size === 0) {
        ok = true;
        break;
      }
      if (mismatched.size < best.mismatches)
        best = { mismatches: mismatched.size, afterCommits: position + 1, sample: [...mismatched].slice(0, 5) };
    }
    if (!ok) {
      const replay = new Map<string, Uint8Array | undefined>();
      for (const [keyHex] of keys) if (shardOfKey.get(keyHex) === s) replay.set(keyHex, base.get(keyHex));
      for (const { commit } of ownCommits.slice(0, best.afterCommits))
        for (const write of commit.writes) replay.set(hex(write.key), write.value);
      const details = best.sample.map(
        (keyHex) =>
          `key ${keyHex}: store has ${describe(keyHex, recovered.get(keyHex))}, model has ${describe(keyHex, replay.get(keyHex))}`,
      );
      problems.push(
        `shard ${s}: no prefix of its ${ownCommits.length} commits (at least the durable ${durable} of all ${commits.length}) matches; ` +
          `closest: after ${best.afterCommits} of its commits, ${best.mismatches} keys differ: ${details.join('; ')}`,
      );
    }
  }
  return problems;
}

/** The recovered contents as plain state (key hex → value), present keys only. */
export function presentState(contents: ReadonlyMap<string, Uint8Array | undefined>): Map<string, Uint8Array> {
  const state = new Map<string, Uint8Array>();
  for (const [keyHex, value] of contents) if (value !== undefined) state.set(keyHex, value);
  return state;
}
