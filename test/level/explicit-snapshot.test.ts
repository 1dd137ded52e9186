/**
 * Explicit snapshots of ArmdbLevel (`db.snapshot()`) beyond abstract-level's suite: reads through
 * several open snapshots checked against a model of versioned maps while random writes, batches and
 * clears go on; compaction under a snapshot; values handed out are copies; and clear(), which deletes
 * a range as one atomic group (or groups of a bounded size), with and without a snapshot.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArmdbLevel, type ArmdbLevelOptions } from '../../src/level/index.js';
import { testKey } from '../helpers/bytes.js';
import { storesClosedAfterEach } from '../helpers/temp-dir.js';

const { tempDir, track } = storesClosedAfterEach('level-snapshot');
const KEY = testKey(19);

function openLevel(directory: string, options: Partial<ArmdbLevelOptions> = {}): ArmdbLevel {
  return track(new ArmdbLevel(directory, { encryption: { key: KEY }, syncIntervalMs: 0, ...options }));
}

/** Keys from a small alphabet with shared prefixes and a zero byte, so order and padding matter. */
const KEYS = ['a', 'a\u0000', 'aa', 'ab', 'b', 'ba', 'c', 'c\u0000', 'd'] as const;
const byteOrder = (left: string, right: string): number => Buffer.compare(Buffer.from(left), Buffer.from(right));
const sorted = (entries: Iterable<[string, string]>): [string, string][] => [...entries].sort(([left], [right]) => byteOrder(left, right));

type Range = { gte?: string; lt?: string; reverse: boolean; limit?: number };
type Operation =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'del'; key: string }
  | { kind: 'batch'; operations: { key: string; value: string | undefined }[] }
  | { kind: 'clear'; range: Range; through: number | undefined }
  | { kind: 'snapshot' }
  | { kind: 'close'; which: number }
  | { kind: 'read'; which: number; range: Range; mode: 'entries' | 'keys' | 'values' }
  | { kind: 'get'; which: number; keys: string[] }
  | { kind: 'open'; which: number; range: Range }
  | { kind: 'next'; which: number };

const keyArbitrary = fc.constantFrom<string>(...KEYS);
const valueArbitrary = fc.string({ minLength: 0, maxLength: 5 }).map((text) => `v${text}`);
/** Bounds absent half the time and limits mostly absent, so that ranges are seldom empty. */
const rangeArbitrary: fc.Arbitrary<Range> = fc
  .record({
    gte: fc.option(keyArbitrary, { nil: undefined, freq: 2 }),
    lt: fc.option(keyArbitrary, { nil: undefined, freq: 2 }),
    reverse: fc.boolean(),
    limit: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }) }),
  })
  .map(({ gte, lt, reverse, limit }) => ({
    ...(gte === undefined ? {} : { gte }),
    ...(lt === undefined ? {} : { lt }),
    reverse,
    ...(limit === undefined ? {} : { limit }),
  }));
const which = fc.nat({ max: 7 });
const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArbitrary, value: valueArbitrary }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), key: keyArbitrary }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      operations: fc.array(fc.record({ key: keyArbitrary, value: fc.option(valueArbitrary, { nil: undefined }) }), {
        minLength: 1,
        maxLength: 4,
      }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('clear' as const), range: rangeArbitrary, through: fc.option(which, { nil: undefined }) }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), which }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      which,
      range: rangeArbitrary,
      mode: fc.constantFrom('entries' as const, 'keys' as const, 'values' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('get' as const), which, keys: fc.array(keyArbitrary, { minLength: 1, maxLength: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('open' as const), which, range: rangeArbitrary }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('next' as const), which }) },
);

/** The entries of `state` in `range`, in its order, up to its limit: what an iterator yields. */
function modelRange(state: ReadonlyMap<string, string>, range: Range): [string, string][] {
  const inRange = (key: string): boolean =>
    (range.gte === undefined || byteOrder(key, range.gte) >= 0) && (range.lt === undefined || byteOrder(key, range.lt) < 0);
  const entries = sorted([...state].filter(([key]) => inRange(key)));
  if (range.reverse) entries.reverse();
  return range.limit === undefined ? entries : entries.slice(0, range.limit);
}

function levelRange(range: Range): Range {
  return {
    ...(range.gte === undefined ? {} : { gte: range.gte }),
    ...(range.lt === undefined ? {} : { lt: range.lt }),
    reverse: range.reverse,
    ...(range.limit === undefined ? {} : { limit: range.limit }),
  };
}

type Snapshot = ReturnType<ArmdbLevel['snapshot']>;
/** An open snapshot and the model of the database at its moment; open iterators over it. */
type OpenIterator = { next(): Promise<[string, string] | undefined>; close(): Promise<void> };
type Version = { snapshot: Snapshot; state: Map<string, string>; iterators: { iterator: OpenIterator; expected: [string, string][] }[] };

describe('explicit snapshots against a model of versioned maps', () => {
  it('every read through an open snapshot sees the database of its moment, whatever was written, cleared or closed since', async () => {
    const db = openLevel(tempDir());
    await db.open();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(keyArbitrary, valueArbitrary), { maxLength: 6 }),
        fc.array(operationArbitrary, { maxLength: 40 }),
        async (initial, operations) => {
          // A sublevel per run: the snapshots are the root's, read through the sublevel as Level code does.
          const sublevel = db.sublevel(`run${run++}`);
          const live = new Map<string, string>(initial);
          await sublevel.batch([...live].map(([key, value]) => ({ type: 'put' as const, key, value })));
          const versions: Version[] = [];
          const pick = (index: number): Version | undefined => versions[index % Math.max(1, versions.length)];
          try {
            for (const operation of operations) {
              switch (operation.kind) {
                case 'put':
                  await sublevel.put(operation.key, operation.value);
                  live.set(operation.key, operation.value);
                  break;
                case 'del':
                  await sublevel.del(operation.key);
                  live.delete(operation.key);
                  break;
                case 'batch':
                  await sublevel.batch(
                    operation.operations.map(({ key, value }) =>
                      value === undefined ? { type: 'del' as const, key } : { type: 'put' as const, key, value },
                    ),
                  );
                  for (const { key, value } of operation.operations) value === undefined ? live.delete(key) : live.set(key, value);
                  break;
                case 'clear': {
                  // Through a snapshot: deletes the keys the snapshot has in the range, whatever they hold now.
                  const version = operation.through === undefined ? undefined : pick(operation.through);
                  await sublevel.clear({
                    ...levelRange(operation.range),
                    ...(version === undefined ? {} : { snapshot: version.snapshot }),
                  });
                  for (const [key] of modelRange(version?.state ?? live, operation.range)) live.delete(key);
                  break;
                }
                case 'snapshot':
                  versions.push({ snapshot: sublevel.snapshot(), state: new Map(live), iterators: [] });
                  break;
                case 'close': {
                  const version = pick(operation.which);
                  if (version === undefined) break;
                  for (const { iterator } of version.iterators) await iterator.close();
                  await version.snapshot.close();
                  versions.splice(versions.indexOf(version), 1);
                  break;
                }
                case 'read': {
                  const version = pick(operation.which);
                  if (version === undefined) break;
                  const options = { ...levelRange(operation.range), snapshot: version.snapshot };
                  const expected = modelRange(version.state, operation.range);
                  if (operation.mode === 'entries') expect(await sublevel.iterator(options).all()).toEqual(expected);
                  else if (operation.mode === 'keys') expect(await sublevel.keys(options).all()).toEqual(expected.map(([key]) => key));
                  else expect(await sublevel.values(options).all()).toEqual(expected.map(([, value]) => value));
                  break;
                }
                case 'get': {
                  const version = pick(operation.which);
                  if (version === undefined) break;
                  const { snapshot, state } = version;
                  expect(await sublevel.get(operation.keys[0]!, { snapshot })).toBe(state.get(operation.keys[0]!));
                  expect(sublevel.getSync(operation.keys[0]!, { snapshot })).toBe(state.get(operation.keys[0]!));
                  expect(await sublevel.has(operation.keys[0]!, { snapshot })).toBe(state.has(operation.keys[0]!));
                  expect(await sublevel.getMany(operation.keys, { snapshot })).toEqual(operation.keys.map((key) => state.get(key)));
                  expect(await sublevel.hasMany(operation.keys, { snapshot })).toEqual(operation.keys.map((key) => state.has(key)));
                  break;
                }
                case 'open': {
                  // An iterator read step by step while the other operations go on.
                  const version = pick(operation.which);
                  if (version === undefined) break;
                  const iterator = sublevel.iterator({ ...levelRange(operation.range), snapshot: version.snapshot });
                  version.iterators.push({ iterator, expected: modelRange(version.state, operation.range) });
                  break;
                }
                case 'next': {
                  const open = versions.flatMap((version) => version.iterators);
                  const entry = open[operation.which % Math.max(1, open.length)];
                  if (entry === undefined) break;
                  expect(await entry.iterator.next()).toEqual(entry.expected.shift());
                  break;
                }
              }
            }
            // Whatever the snapshots did, the database itself holds the live model.
            expect(await sublevel.iterator().all()).toEqual(sorted(live));
            for (const version of versions)
              expect(await sublevel.iterator({ snapshot: version.snapshot }).all()).toEqual(sorted(version.state));
          } finally {
            for (const version of versions) {
              for (const { iterator } of version.iterators) await iterator.close();
              await version.snapshot.close();
            }
          }
        },
      ),
      { seed: 0x5a18, numRuns: 200 },
    );
  });
});

/** The next report `armdb:compact` publishes for `directory` that reclaimed something. */
function nextCompaction(directory: string): Promise<{ bytesReclaimed: number }> {
  return new Promise((resolve) => {
    const listener = (message: unknown): void => {
      const report = message as { directory?: string; bytesReclaimed?: number };
      if (report.directory !== directory || !(report.bytesReclaimed! > 0)) return;
      unsubscribe('armdb:compact', listener);
      resolve(report as { bytesReclaimed: number });
    };
    subscribe('armdb:compact', listener);
  });
}

describe('explicit snapshots and the store underneath', () => {
  it('compaction cannot take data out from under a snapshot: overwrite and delete everything, compact, read through it', async () => {
    const directory = tempDir();
    // Small files and a low threshold: the overwritten files become background compaction candidates.
    const db = openLevel(directory, { maxFileBytes: 64 * 1024, compactionThreshold: 0.1 });
    await db.open();
    const keys = Array.from({ length: 300 }, (_, index) => `k${String(index).padStart(3, '0')}`);
    const before = keys.map((key): [string, string] => [key, `old:${key}:`.padEnd(200, 'o')]);
    await db.batch(before.map(([key, value]) => ({ type: 'put' as const, key, value })));
    const snapshot = db.snapshot();
    const early = db.iterator({ snapshot }); // opened before compaction, read after it
    expect(await early.next()).toEqual(before[0]);
    // Overwrite the first 250 keys twice, delete the next 30, leave the last 20 alone (their records move).
    for (const round of [1, 2]) for (const key of keys.slice(0, 250)) await db.put(key, `new${round}:${key}`.padEnd(200, 'n'));
    await db.batch(keys.slice(250, 280).map((key) => ({ type: 'del' as const, key })));
    const compacted = nextCompaction(directory);
    await db.put('sync', 'now', { sync: true } as Record<string, unknown>); // a barrier, after which background compaction runs
    expect((await compacted).bytesReclaimed).toBeGreaterThan(0);
    expect(await db.iterator({ snapshot }).all()).toEqual(before);
    expect(await db.iterator({ snapshot, reverse: true }).all()).toEqual([...before].reverse());
    expect(await early.all()).toEqual(before.slice(1));
    expect(await db.getMany(keys, { snapshot })).toEqual(before.map(([, value]) => value));
    expect(await db.get('k260', { snapshot })).toBe(before[260]![1]);
    // The database itself moved on.
    expect(await db.get('k000')).toBe('new2:k000'.padEnd(200, 'n'));
    expect(await db.get('k260')).toBeUndefined();
    await snapshot.close();
    expect(await db.keys().all()).toEqual([...keys.slice(0, 250), ...keys.slice(280), 'sync']);
  });

  it('hands out copies: changing a value read through a snapshot does not change the snapshot', async () => {
    const db = openLevel(tempDir(), { valueEncoding: 'view' } as Partial<ArmdbLevelOptions>);
    await db.open();
    const view = db as unknown as ArmdbLevel<string, Uint8Array>;
    await view.put('a', Uint8Array.of(1, 2, 3));
    const snapshot = view.snapshot();
    const iterator = view.iterator(); // an implicit snapshot sharing the recorded value
    await view.put('a', Uint8Array.of(9));
    (await view.get('a', { snapshot }))!.fill(0);
    (await view.getMany(['a'], { snapshot }))[0]!.fill(0);
    (await view.iterator({ snapshot }).all())[0]![1].fill(0);
    (await iterator.next())![1].fill(0);
    await iterator.close();
    expect(await view.get('a', { snapshot })).toEqual(Uint8Array.of(1, 2, 3));
    expect(await view.values({ snapshot }).all()).toEqual([Uint8Array.of(1, 2, 3)]);
    await snapshot.close();
  });

  it('refuses a snapshot of another database with a TypeError', async () => {
    const db = openLevel(tempDir());
    const other = openLevel(tempDir());
    await db.open();
    await other.open();
    const foreign = other.snapshot();
    await expect(db.get('a', { snapshot: foreign })).rejects.toThrow(/snapshot of this database/);
    await foreign.close();
  });
});

describe('clear()', () => {
  it('through a snapshot deletes the keys the snapshot holds in the range, even if rewritten since, and no others', async () => {
    const db = openLevel(tempDir());
    await db.open();
    await db.batch(['a', 'b', 'c', 'd'].map((key) => ({ type: 'put' as const, key, value: `old-${key}` })));
    const snapshot = db.snapshot();
    await db.put('b', 'new-b');
    await db.put('bb', 'created');
    await db.del('c');
    await db.clear({ gte: 'b', snapshot });
    expect(await db.iterator().all()).toEqual([
      ['a', 'old-a'],
      ['bb', 'created'],
    ]);
    expect(await db.iterator({ snapshot }).all()).toEqual(['a', 'b', 'c', 'd'].map((key) => [key, `old-${key}`]));
    await snapshot.close();
  });

  it('a range larger than one group (small maxFileBytes) is cleared whole, limit and reverse respected, snapshots kept', async () => {
    // 64 KiB files: a group holds 64 KiB of tombstones, 744 keys at keySize 64 (88 bytes each).
    const db = openLevel(tempDir(), { maxFileBytes: 64 * 1024 });
    await db.open();
    const keys = Array.from({ length: 3000 }, (_, index) => `k${String(index).padStart(4, '0')}`);
    await db.batch(keys.map((key) => ({ type: 'put' as const, key, value: key })));
    const snapshot = db.snapshot();
    const iterator = db.keys({ gte: 'k1000' });
    await db.clear({ gte: 'k0100', lt: 'k2900', reverse: true, limit: 2500 });
    expect(await db.keys().all()).toEqual([...keys.slice(0, 400), ...keys.slice(2900)]);
    expect(await iterator.all()).toEqual(keys.slice(1000));
    expect(await db.keys({ snapshot }).all()).toEqual(keys);
    await db.clear();
    expect(await db.keys().all()).toEqual([]);
    expect((await db.values({ snapshot }).all()).length).toBe(3000);
    await snapshot.close();
  });
});
