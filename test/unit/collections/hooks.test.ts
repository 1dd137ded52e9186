/**
 * Write hooks (SPEC §6): onWrite after every committed mutation with (key, oldValue, newValue),
 * needsOldValue: false, onInit at open; and indexHook keeping a secondary index in step under a
 * random workload and across reopen.
 */
import { describe, expect, it } from 'vitest';
import {
  ConstMap,
  ConstTree,
  TypedMap,
  VarMap,
  VarTree,
  codecs,
  indexHook,
  keys,
  type Codec,
  type Collection,
  type WriteHook,
} from '../../../src/index.js';
import { hex } from '../../helpers/bytes.js';
import { expectCode } from '../../helpers/errors.js';
import { Random } from '../../helpers/random.js';
import { storesClosedAfterEach } from '../../helpers/temp-dir.js';

const ENCRYPTION_KEY = new Uint8Array(32).map((_, index) => (index * 31 + 17) & 0xff);
const KEY_SIZE = 4;
const base = { keySize: KEY_SIZE, encryption: { key: ENCRYPTION_KEY }, syncIntervalMs: 0, shards: 1, autoCompact: false } as const;

const keyOf = (n: number): Uint8Array => Uint8Array.of(0, 0, n >>> 8, n & 0xff);

const { tempDir, track } = storesClosedAfterEach('hooks');

// ---- kinds under test: each turns a small number into a value and a value into a comparable string

interface Kind<V> {
  readonly name: string;
  open(directory: string, hook: WriteHook<V> | undefined): Promise<Collection<V>>;
  value(n: number): V;
  show(value: V | undefined): string | undefined;
}

const bytesOf = (n: number): Uint8Array => Uint8Array.of(n & 0xff, (n * 7) & 0xff, 0xaa, n >>> 8);
const showBytes = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : hex(value));
const withHook = <V>(hook: WriteHook<V> | undefined): { hook?: WriteHook<V> } => (hook === undefined ? {} : { hook });

const varMapKind: Kind<Uint8Array> = {
  name: 'VarMap',
  open: (directory, hook) => VarMap.open(directory, { ...base, ...withHook(hook) }),
  value: bytesOf,
  show: showBytes,
};
const varTreeKind: Kind<Uint8Array> = {
  name: 'VarTree',
  open: (directory, hook) => VarTree.open(directory, { ...base, ...withHook(hook) }),
  value: bytesOf,
  show: showBytes,
};
const constMapKind: Kind<Uint8Array> = {
  name: 'ConstMap',
  open: (directory, hook) => ConstMap.open(directory, { ...base, valueSize: 4, ...withHook(hook) }),
  value: bytesOf,
  show: showBytes,
};
const constTreeKind: Kind<Uint8Array> = {
  name: 'ConstTree',
  open: (directory, hook) => ConstTree.open(directory, { ...base, valueSize: 4, ...withHook(hook) }),
  value: bytesOf,
  show: showBytes,
};
const typedMapKind: Kind<{ n: number }> = {
  name: 'TypedMap',
  open: (directory, hook) =>
    TypedMap.open<{ n: number }>(directory, { ...base, codec: codecs.json as Codec<{ n: number }>, ...withHook(hook) }),
  value: (n) => ({ n }),
  show: (value) => (value === undefined ? undefined : JSON.stringify(value)),
};

type Call = [key: string, oldValue: string | undefined, newValue: string | undefined];

/** A hook that records calls as comparable strings. */
function recorder<V>(kind: Kind<V>, needsOldValue: boolean | undefined): { hook: WriteHook<V>; calls: Call[]; inits: [string, string][] } {
  const calls: Call[] = [];
  const inits: [string, string][] = [];
  const hook: WriteHook<V> = {
    onWrite: (key, oldValue, newValue) => {
      calls.push([hex(key), kind.show(oldValue), kind.show(newValue)]);
    },
    onInit: (key, value) => {
      inits.push([hex(key), kind.show(value)!]);
    },
    ...(needsOldValue === undefined ? {} : { needsOldValue }),
  };
  return { hook, calls, inits };
}

/**
 * Every kind of mutation, successful and failing, and the calls it must produce (with old values,
 * or with undefined old values when `withOld` is false).
 */
function runEveryMutation<V>(kind: Kind<V>, db: Collection<V>, calls: Call[], withOld: boolean, skipUpdates = false): void {
  const v = (n: number): V => kind.value(n);
  const s = (n: number): string => kind.show(kind.value(n))!;
  const k = (n: number): string => hex(keyOf(n));
  const old = (n: number): string | undefined => (withOld ? s(n) : undefined);
  const expectCalls = (run: () => void, expected: Call[]): void => {
    const before = calls.length;
    run();
    expect(calls.slice(before)).toEqual(expected);
  };

  expectCalls(() => db.put(keyOf(1), v(10)), [[k(1), undefined, s(10)]]);
  expectCalls(() => db.put(keyOf(1), v(11)), [[k(1), old(10), s(11)]]);
  expectCalls(() => db.insert(keyOf(2), v(20)), [[k(2), undefined, s(20)]]);
  expectCalls(() => expectCode(() => db.insert(keyOf(2), v(21)), 'ARMDB_KEY_EXISTS'), []);
  expectCalls(() => db.cas(keyOf(1), v(11), v(12)), [[k(1), old(11), s(12)]]);
  expectCalls(() => expectCode(() => db.cas(keyOf(1), v(99), v(13)), 'ARMDB_CAS_MISMATCH'), []);
  expectCalls(() => expectCode(() => db.cas(keyOf(77), v(99), v(13)), 'ARMDB_KEY_NOT_FOUND'), []);
  if (!skipUpdates) {
    expectCalls(() => expect(kind.show(db.update(keyOf(1), () => v(14)))).toBe(s(14)), [[k(1), old(12), s(14)]]);
    expectCalls(() => expect(kind.show(db.update(keyOf(1), () => undefined))).toBe(s(14)), []);
    expectCalls(() => expect(db.update(keyOf(77), () => v(1))).toBeUndefined(), []);
    expectCalls(() => expect(kind.show(db.fetchUpdate(keyOf(2), () => v(22)))).toBe(s(20)), [[k(2), old(20), s(22)]]);
    expectCalls(() => expect(db.fetchUpdate(keyOf(78), () => v(1))).toBeUndefined(), []);
  } else {
    db.put(keyOf(1), v(14));
    db.put(keyOf(2), v(22));
    calls.length = 0;
  }
  expectCalls(() => expect(db.delete(keyOf(1))).toBe(true), [[k(1), old(14), undefined]]);
  expectCalls(() => expect(db.delete(keyOf(1))).toBe(false), []);
  expectCalls(
    () =>
      expect(
        db.atomic(keyOf(2), (tx) => {
          tx.put(keyOf(3), v(30));
          tx.put(keyOf(3), v(31));
          expect(tx.delete(keyOf(2))).toBe(true);
          tx.insert(keyOf(4), v(40));
          expect(tx.delete(keyOf(79))).toBe(false);
          expectCode(() => tx.insert(keyOf(4), v(41)), 'ARMDB_KEY_EXISTS');
          return 'result';
        }),
      ).toBe('result'),
    [
      [k(3), undefined, s(30)],
      [k(3), old(30), s(31)],
      [k(2), old(22), undefined],
      [k(4), undefined, s(40)],
    ],
  );
  // A throwing transaction applies nothing and calls nothing.
  expectCalls(
    () =>
      expect(() =>
        db.atomic(keyOf(3), (tx) => {
          tx.put(keyOf(5), v(50));
          tx.delete(keyOf(3));
          throw new Error('changed my mind');
        }),
      ).toThrow('changed my mind'),
    [],
  );
  expectCalls(() => expectCode(() => db.atomic(keyOf(3), (tx) => tx.insert(keyOf(4), v(42))), 'ARMDB_KEY_EXISTS'), []);
  expectCalls(() => db.atomic(keyOf(3), () => 'nothing'), []);
  // An async callback is refused after it ran up to its first await: nothing applied, no call.
  expectCalls(
    () =>
      expect(() =>
        db.atomic(keyOf(3), async (tx) => {
          tx.put(keyOf(6), v(60));
        }),
      ).toThrow(TypeError),
    [],
  );
  // A transaction object used after atomic() returned is refused.
  let escaped: Parameters<Parameters<typeof db.atomic>[1]>[0] | undefined;
  db.atomic(keyOf(3), (tx) => {
    escaped = tx;
  });
  expectCalls(() => expectCode(() => escaped!.put(keyOf(7), v(70)), 'ARMDB_CLOSED'), []);
  expect(db.has(keyOf(6))).toBe(false);
  expect(db.has(keyOf(7))).toBe(false);
  expect(db.has(keyOf(5))).toBe(false);
  expect(kind.show(db.get(keyOf(3)))).toBe(s(31));
  expect(kind.show(db.get(keyOf(4)))).toBe(s(40));
  expect(db.size).toBe(2);
}

const allKinds = [varMapKind, varTreeKind, constMapKind, constTreeKind, typedMapKind] as const;

function defineHookSuite<V>(kind: Kind<V>): void {
  describe(`${kind.name}: onWrite`, () => {
    it('is called after every committed mutation with (key, oldValue, newValue), and not for refused ones', async () => {
      const { hook, calls } = recorder(kind, undefined);
      const db = track(await kind.open(tempDir(), hook));
      runEveryMutation(kind, db, calls, true);
    });

    it('runs after the mutation is applied, with a key the hook may keep or mutate', async () => {
      const seen: [string | undefined, boolean][] = [];
      let db: Collection<V> | undefined;
      const hook: WriteHook<V> = {
        onWrite: (key, _oldValue, newValue) => {
          const stored = db!.get(key);
          seen.push([kind.show(stored), kind.show(stored) === kind.show(newValue)]);
          key.fill(0xff); // the hook's own copy
        },
      };
      db = track(await kind.open(tempDir(), hook));
      db.put(keyOf(1), kind.value(1));
      db.put(keyOf(1), kind.value(2));
      db.delete(keyOf(1));
      db.insert(keyOf(2), kind.value(3));
      expect(seen).toEqual([
        [kind.show(kind.value(1)), true],
        [kind.show(kind.value(2)), true],
        [undefined, true],
        [kind.show(kind.value(3)), true],
      ]);
      expect(db.has(keyOf(2))).toBe(true);
      expect(db.has(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toBe(false);
    });

    it('with needsOldValue: false, oldValue is undefined for put/insert/cas/delete/atomic', async () => {
      const { hook, calls } = recorder(kind, false);
      const db = track(await kind.open(tempDir(), hook));
      runEveryMutation(kind, db, calls, false, true);
    });

    // SPEC §6 (WriteHook): with needsOldValue: false the hook's oldValue is undefined for every write.
    // update() and fetchUpdate() read the current value for their own fn, and must not hand it on.
    it('with needsOldValue: false, oldValue is undefined for update/fetchUpdate too', async () => {
      const { hook, calls } = recorder(kind, false);
      const db = track(await kind.open(tempDir(), hook));
      db.put(keyOf(1), kind.value(1));
      db.update(keyOf(1), () => kind.value(2));
      db.fetchUpdate(keyOf(1), () => kind.value(3));
      expect(calls.slice(1)).toEqual([
        [hex(keyOf(1)), undefined, kind.show(kind.value(2))],
        [hex(keyOf(1)), undefined, kind.show(kind.value(3))],
      ]);
    });

    it('onInit runs once per live entry at open, with its current value; never for deleted keys', async () => {
      const directory = tempDir();
      const first = recorder(kind, undefined);
      const db = await kind.open(directory, first.hook);
      expect(first.inits).toEqual([]);
      for (let n = 0; n < 30; n++) db.put(keyOf(n), kind.value(n));
      for (let n = 0; n < 30; n += 3) db.delete(keyOf(n));
      for (let n = 1; n < 30; n += 3) db.put(keyOf(n), kind.value(n + 100));
      db.put(keyOf(0), kind.value(500)); // deleted, then put again: live
      await db.close();
      const second = recorder(kind, undefined);
      const reopened = track(await kind.open(directory, second.hook));
      const expected = new Map<string, string>();
      for (let n = 0; n < 30; n++) {
        if (n === 0) expected.set(hex(keyOf(n)), kind.show(kind.value(500))!);
        else if (n % 3 === 0) continue;
        else expected.set(hex(keyOf(n)), kind.show(kind.value(n % 3 === 1 ? n + 100 : n))!);
      }
      expect(second.inits.length).toBe(expected.size);
      expect(new Map(second.inits)).toEqual(expected);
      expect(second.calls).toEqual([]); // open does not call onWrite
      expect(reopened.size).toBe(expected.size);
    });
  });
}

for (const kind of allKinds) defineHookSuite(kind as Kind<unknown>);

describe('needsOldValue: false skips reading the old value (VarMap)', () => {
  it('stats().gets does not grow because of the hook; with needsOldValue it does', async () => {
    const workload = (db: Collection<Uint8Array>): void => {
      for (let n = 0; n < 50; n++) db.put(keyOf(n), bytesOf(n));
      for (let n = 0; n < 50; n++) db.put(keyOf(n), bytesOf(n + 1)); // overwrites
      for (let n = 0; n < 50; n += 2) db.delete(keyOf(n));
      db.atomic(keyOf(1), (tx) => {
        tx.put(keyOf(1), bytesOf(7));
        tx.delete(keyOf(3));
      });
      db.insert(keyOf(1000), bytesOf(1));
    };
    const counts: Record<string, number> = {};
    let hookCalls = 0;
    const hooks: Record<string, WriteHook<Uint8Array> | undefined> = {
      none: undefined,
      skip: { needsOldValue: false, onWrite: () => void hookCalls++ },
      read: { needsOldValue: true, onWrite: () => void hookCalls++ },
      default: { onWrite: () => void hookCalls++ },
    };
    for (const [name, hook] of Object.entries(hooks)) {
      const db = track(await VarMap.open(tempDir(), { ...base, ...withHook(hook) }));
      const before = db.stats().gets;
      workload(db);
      counts[name] = db.stats().gets - before;
    }
    expect(hookCalls).toBe(3 * (50 + 50 + 25 + 2 + 1));
    expect(counts['skip']).toBe(counts['none']);
    expect(counts['read']).toBeGreaterThan(counts['none']!);
    expect(counts['default']).toBe(counts['read']); // needsOldValue defaults to true
  });
});

// ---- indexHook -----------------------------------------------------------------------------------

interface Row {
  readonly group: number | null;
  readonly id: number;
  readonly note: string;
}

const SOURCE_KEY_SIZE = 8;
const sourceKey = (id: number): Uint8Array => keys.u64(id);
/** Index key: 8-byte big-endian group * 1000 + id; rows without a group are not indexed. */
const project = (_key: Uint8Array, row: Row): Uint8Array | undefined =>
  row.group === null ? undefined : keys.u64(row.group * 1000 + row.id);

async function openTarget(directory: string): Promise<VarTree> {
  return track(await VarTree.open(directory, { ...base, keySize: 8, shards: 2 }));
}

async function openSource(directory: string, target: VarTree): Promise<TypedMap<Row>> {
  return track(
    await TypedMap.open<Row>(directory, {
      ...base,
      keySize: SOURCE_KEY_SIZE,
      shards: 2,
      shardPrefixBits: 32, // ids < 2^32 share the first 4 bytes: one shard, so atomic can span ids
      codec: codecs.json as Codec<Row>,
      hook: indexHook<Row>(target, project),
    }),
  );
}

/** The index keys the source's current contents project to, as sorted hex. */
function expectedIndex(source: TypedMap<Row>, ids: Iterable<number>): string[] {
  const result: string[] = [];
  for (const id of ids) {
    const row = source.get(sourceKey(id));
    if (row === undefined) continue;
    const indexKey = project(sourceKey(id), row);
    if (indexKey !== undefined) result.push(hex(indexKey));
  }
  return result.sort();
}

const indexOf = (target: VarTree): string[] => [...target.keys()].map(hex);

describe('indexHook', () => {
  it('insert puts, a changed index key moves the entry, undefined means none, delete deletes', async () => {
    const target = await openTarget(tempDir());
    const source = await openSource(tempDir(), target);
    const entry = (group: number, id: number): string => hex(keys.u64(group * 1000 + id));

    source.put(sourceKey(1), { group: 2, id: 1, note: 'a' });
    expect(indexOf(target)).toEqual([entry(2, 1)]);
    source.put(sourceKey(1), { group: 2, id: 1, note: 'b' }); // same index key: unchanged
    expect(indexOf(target)).toEqual([entry(2, 1)]);
    source.put(sourceKey(1), { group: 3, id: 1, note: 'b' }); // moved
    expect(indexOf(target)).toEqual([entry(3, 1)]);
    source.put(sourceKey(1), { group: null, id: 1, note: 'c' }); // no index entry any more
    expect(indexOf(target)).toEqual([]);
    source.put(sourceKey(1), { group: 4, id: 1, note: 'd' });
    source.insert(sourceKey(2), { group: null, id: 2, note: 'unindexed' });
    expect(indexOf(target)).toEqual([entry(4, 1)]);
    source.update(sourceKey(2), (row) => ({ ...row, group: 1 }));
    expect(indexOf(target)).toEqual([entry(1, 2), entry(4, 1)]);
    source.fetchUpdate(sourceKey(1), (row) => ({ ...row, group: 0 }));
    expect(indexOf(target)).toEqual([entry(0, 1), entry(1, 2)]);
    source.cas(sourceKey(2), { group: 1, id: 2, note: 'unindexed' }, { group: 5, id: 2, note: 'cas' });
    expect(indexOf(target)).toEqual([entry(0, 1), entry(5, 2)]);
    source.delete(sourceKey(1));
    expect(indexOf(target)).toEqual([entry(5, 2)]);
    source.atomic(sourceKey(2), (tx) => {
      tx.put(sourceKey(3), { group: 7, id: 3, note: 'x' });
      tx.put(sourceKey(3), { group: 8, id: 3, note: 'y' });
      tx.delete(sourceKey(2));
    });
    expect(indexOf(target)).toEqual([entry(8, 3)]);
    expect(() =>
      source.atomic(sourceKey(3), (tx) => {
        tx.put(sourceKey(4), { group: 9, id: 4, note: 'never' });
        throw new Error('abort');
      }),
    ).toThrow('abort');
    expect(indexOf(target)).toEqual([entry(8, 3)]);
    for (const value of target.values()) expect(value.length).toBe(0); // index entries have empty values
  });

  it('stays equal to the projection of the source under a random workload and across reopen (target reopened first)', async () => {
    const sourceDirectory = tempDir();
    const targetDirectory = tempDir();
    let target = await openTarget(targetDirectory);
    let source = await openSource(sourceDirectory, target);
    const ids = Array.from({ length: 50 }, (_, id) => id);
    const random = new Random(2024);
    const next = (): number => random.next();
    const pick = (): number => Math.floor(next() * ids.length);
    const randomGroup = (): number | null => (next() < 0.2 ? null : Math.floor(next() * 6));
    const workload = (count: number): void => {
      for (let step = 0; step < count; step++) {
        const id = pick();
        const choice = next();
        const note = `step ${step}`;
        if (choice < 0.35) source.put(sourceKey(id), { group: randomGroup(), id, note });
        else if (choice < 0.5) {
          if (source.has(sourceKey(id)))
            expectCode(() => source.insert(sourceKey(id), { group: randomGroup(), id, note }), 'ARMDB_KEY_EXISTS');
          else source.insert(sourceKey(id), { group: randomGroup(), id, note });
        } else if (choice < 0.7) source.delete(sourceKey(id));
        else if (choice < 0.85) {
          const group = randomGroup();
          const keep = next() < 0.2;
          source.update(sourceKey(id), (row) => (keep ? undefined : { ...row, group, note }));
        } else if (choice < 0.93) {
          source.fetchUpdate(sourceKey(id), (row) => ({ ...row, group: row.group === null ? 1 : null }));
        } else {
          const other = pick();
          const abort = next() < 0.3;
          try {
            source.atomic(sourceKey(id), (tx) => {
              tx.put(sourceKey(id), { group: randomGroup(), id, note });
              tx.delete(sourceKey(other));
              tx.put(sourceKey(other), { group: randomGroup(), id: other, note });
              if (abort) throw new Error('abort');
            });
          } catch (error) {
            expect((error as Error).message).toBe('abort');
          }
        }
      }
    };

    workload(400);
    expect(indexOf(target)).toEqual(expectedIndex(source, ids));
    expect(target.size).toBeGreaterThan(5);

    await source.close();
    await target.close();
    target = await openTarget(targetDirectory);
    source = await openSource(sourceDirectory, target);
    expect(indexOf(target)).toEqual(expectedIndex(source, ids));

    workload(300);
    expect(indexOf(target)).toEqual(expectedIndex(source, ids));

    // An index entry lost outside the hook is re-added at the next open (onInit).
    const expected = expectedIndex(source, ids);
    const lost = Uint8Array.from(Buffer.from(expected[0]!, 'hex'));
    await source.close();
    target.delete(lost);
    await target.close();
    target = await openTarget(targetDirectory);
    expect(target.has(lost)).toBe(false);
    source = await openSource(sourceDirectory, target);
    expect(indexOf(target)).toEqual(expected);
  });
});
