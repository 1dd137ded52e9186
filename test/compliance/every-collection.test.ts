/**
 * The behavioural contract every collection class shares (SPEC §2, §3, §6), run over all six classes:
 * VarMap, VarTree (variable byte values), ConstMap, ConstTree (fixed-size byte values held in
 * memory) and TypedMap, TypedTree (values through `codecs.json`), each over {1, 4 shards} ×
 * {cache 64 MiB, 0} × {fresh, reopened}, encrypted with a raw key.
 *
 * The byte-level details that only variable values have (empty values, values across pages,
 * maxValueBytes) and the cipher/encryption dimensions are the var-map suite's; this suite states
 * what the classes must agree on: point reads, the write operations and their errors, `atomic`,
 * hooks, the ordered reads of the Trees, compaction, `migrate`, `verify`, reopen, close and the
 * class recorded in the directory. In the "reopened" variant every `check()` runs on the live store,
 * then again after close + reopen.
 */
import { describe, expect } from 'vitest';
import {
  ArmdbError,
  codecs,
  ConstMap,
  ConstTree,
  keys,
  TypedMap,
  TypedTree,
  VarMap,
  VarTree,
  type ArmdbErrorCode,
  type Codec,
  type Collection,
  type OpenOptions,
  type OrderedCollection,
  type WriteHook,
} from '../../src/index.js';
import { KEY_SIZE, patternBytes, storeTest as it, testKey, trackStore } from '../helpers/store.js';

interface Record {
  readonly n: number;
  readonly label: string;
  readonly tags: number[];
}

/** One collection class: how to open it, and the value the suite stores for a number. */
interface ClassUnderTest<V> {
  readonly name: string;
  readonly ordered: boolean;
  open(directory: string, options: OpenOptions<V>): Promise<Collection<V>>;
  value(n: number): V;
}

const VALUE_SIZE = 24;
const bytesOfLength = (n: number): Uint8Array => patternBytes(1 + ((n * 37) % 300), n);
const fixedBytes = (n: number): Uint8Array => patternBytes(VALUE_SIZE, n);
const record = (n: number): Record => ({ n, label: `value ${n}`, tags: [n % 3, n % 7] });

const classes: ClassUnderTest<unknown>[] = [
  { name: 'VarMap', ordered: false, open: (dir, options) => VarMap.open(dir, options as OpenOptions), value: bytesOfLength },
  { name: 'VarTree', ordered: true, open: (dir, options) => VarTree.open(dir, options as OpenOptions), value: bytesOfLength },
  {
    name: 'ConstMap',
    ordered: false,
    open: (dir, options) => ConstMap.open(dir, { ...(options as OpenOptions), valueSize: VALUE_SIZE }),
    value: fixedBytes,
  },
  {
    name: 'ConstTree',
    ordered: true,
    open: (dir, options) => ConstTree.open(dir, { ...(options as OpenOptions), valueSize: VALUE_SIZE }),
    value: fixedBytes,
  },
  {
    name: 'TypedMap',
    ordered: false,
    open: (dir, options) => TypedMap.open<Record>(dir, { ...(options as OpenOptions<Record>), codec: codecs.json as Codec<Record> }),
    value: record,
  },
  {
    name: 'TypedTree',
    ordered: true,
    open: (dir, options) => TypedTree.open<Record>(dir, { ...(options as OpenOptions<Record>), codec: codecs.json as Codec<Record> }),
    value: record,
  },
] as ClassUnderTest<unknown>[];

interface Configuration {
  readonly label: string;
  readonly subject: ClassUnderTest<unknown>;
  readonly shards: number;
  readonly cacheBytes: number;
  readonly reopened: boolean;
}

const MIB = 2 ** 20;
const matrix: Configuration[] = [];
for (const subject of classes) {
  for (const shards of [1, 4]) {
    for (const cacheBytes of [64 * MIB, 0]) {
      for (const reopened of [false, true]) {
        matrix.push({
          label: `${subject.name} ${shards}sh cache${cacheBytes === 0 ? '0' : '64M'} ${reopened ? 'reopened' : 'fresh'}`,
          subject,
          shards,
          cacheBytes,
          reopened,
        });
      }
    }
  }
}

/** Key `n`: big-endian in the last bytes, so numeric order is key order. */
function key(n: number): Uint8Array {
  const bytes = new Uint8Array(KEY_SIZE);
  bytes.set(keys.u64(n), KEY_SIZE - 8);
  return bytes;
}

/** The number `n` of {@link key}(n). */
function numberOf(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset + KEY_SIZE - 8, 8).getBigUint64(0));
}

function errorOf(fn: () => unknown): ArmdbError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ArmdbError);
    return error as ArmdbError;
  }
  throw new Error('expected the call to throw');
}

function expectCode(fn: () => unknown, code: ArmdbErrorCode): void {
  expect(errorOf(fn).code).toBe(code);
}

class Harness {
  db!: Collection<unknown>;

  constructor(
    readonly directory: string,
    readonly config: Configuration,
    readonly extra: Partial<OpenOptions<unknown>>,
  ) {}

  get subject(): ClassUnderTest<unknown> {
    return this.config.subject;
  }

  options(): OpenOptions<unknown> {
    return {
      keySize: KEY_SIZE,
      encryption: { key: testKey(3) },
      shards: this.config.shards,
      cacheBytes: this.config.cacheBytes,
      syncIntervalMs: 0,
      writeBufferBytes: 64 * 1024,
      ...this.extra,
    };
  }

  async open(): Promise<Collection<unknown>> {
    this.db = trackStore(this.directory, await this.subject.open(this.directory, this.options()));
    return this.db;
  }

  async reopen(): Promise<Collection<unknown>> {
    await this.db.close();
    return this.open();
  }

  /** Assertions on the live store, and in the "reopened" variant again after close + reopen. */
  async check(assertions: (db: Collection<unknown>) => void): Promise<void> {
    assertions(this.db);
    if (this.config.reopened) assertions(await this.reopen());
  }

  /** Every key of `model` reads back its value, nothing else is there, and size agrees. */
  expectModel(db: Collection<unknown>, model: ReadonlyMap<number, unknown>, probe: readonly number[]): void {
    for (const n of probe) {
      expect(db.get(key(n))).toEqual(model.get(n));
      expect(db.has(key(n))).toBe(model.has(n));
    }
    expect(db.size).toBe(model.size);
    expect(db.isEmpty()).toBe(model.size === 0);
    expect(db.getMany(probe.map(key))).toEqual(probe.map((n) => model.get(n)));
    if (this.subject.ordered) {
      const sorted = [...model.keys()].sort((left, right) => left - right);
      const tree = db as OrderedCollection<unknown>;
      expect([...tree.keys()]).toEqual(sorted.map(key));
      expect([...tree.range({ reverse: true })]).toEqual(sorted.reverse().map((n) => [key(n), model.get(n)]));
    }
  }
}

describe.concurrent.each(matrix)('$label', (config) => {
  const harness = async (tempDir: () => string, extra: Partial<OpenOptions<unknown>> = {}): Promise<Harness> => {
    const h = new Harness(tempDir(), config, extra);
    await h.open();
    return h;
  };
  const value = config.subject.value;

  it('absent keys: get undefined, has false, getMany undefined, empty', async ({ tempDir }) => {
    const h = await harness(tempDir);
    await h.check((db) => {
      expect(db.get(key(1))).toBeUndefined();
      expect(db.has(key(1))).toBe(false);
      expect(db.getMany([key(1), key(2)])).toEqual([undefined, undefined]);
      expect(db.size).toBe(0);
      expect(db.isEmpty()).toBe(true);
    });
  });

  it('puts, overwrites and deletes of a few hundred keys read back like a Map, in order for Trees', async ({ tempDir }) => {
    const h = await harness(tempDir);
    const model = new Map<number, unknown>();
    for (let n = 0; n < 300; n++) {
      h.db.put(key(n), value(n));
      model.set(n, value(n));
    }
    for (let n = 0; n < 300; n += 2) {
      h.db.put(key(n), value(n + 1000));
      model.set(n, value(n + 1000));
    }
    for (let n = 0; n < 300; n += 3) expect(h.db.delete(key(n))).toBe(model.delete(n));
    expect(h.db.delete(key(5000))).toBe(false);
    await h.check((db) => h.expectModel(db, model, [...Array.from({ length: 300 }, (_, n) => n), 5000]));
  });

  it('insert of a present key throws ARMDB_KEY_EXISTS and keeps the old value', async ({ tempDir }) => {
    const h = await harness(tempDir);
    h.db.insert(key(1), value(1));
    expectCode(() => h.db.insert(key(1), value(2)), 'ARMDB_KEY_EXISTS');
    await h.check((db) => expect(db.get(key(1))).toEqual(value(1)));
  });

  it('cas: replaces on a match, ARMDB_CAS_MISMATCH and ARMDB_KEY_NOT_FOUND otherwise', async ({ tempDir }) => {
    const h = await harness(tempDir);
    h.db.put(key(1), value(1));
    h.db.cas(key(1), value(1), value(2));
    expectCode(() => h.db.cas(key(1), value(1), value(3)), 'ARMDB_CAS_MISMATCH');
    expectCode(() => h.db.cas(key(9), value(1), value(3)), 'ARMDB_KEY_NOT_FOUND');
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(value(2));
      expect(db.has(key(9))).toBe(false);
    });
  });

  it('update returns the new value, fetchUpdate the previous; neither calls fn for an absent key', async ({ tempDir }) => {
    const h = await harness(tempDir);
    h.db.put(key(1), value(1));
    expect(h.db.update(key(1), () => value(2))).toEqual(value(2));
    expect(h.db.fetchUpdate(key(1), () => value(3))).toEqual(value(2));
    expect(h.db.update(key(1), () => undefined)).toEqual(value(3));
    let called = false;
    expect(h.db.update(key(9), () => ((called = true), value(4)))).toBeUndefined();
    expect(h.db.fetchUpdate(key(9), () => ((called = true), value(4)))).toBeUndefined();
    expect(called).toBe(false);
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(value(3));
      expect(db.has(key(9))).toBe(false);
    });
  });

  it('atomic applies every mutation with read-your-writes, or nothing when fn throws', async ({ tempDir }) => {
    const h = await harness(tempDir, { shardPrefixBits: 8 }); // keys share their first byte: one shard
    h.db.put(key(1), value(1));
    h.db.put(key(2), value(2));
    const result = h.db.atomic(key(1), (tx) => {
      tx.put(key(3), value(3));
      expect(tx.get(key(3))).toEqual(value(3));
      tx.delete(key(2));
      expect(tx.get(key(2))).toBeUndefined();
      tx.put(key(1), value(11));
      return 'done';
    });
    expect(result).toBe('done');
    const failure = new Error('abandon');
    expect(() =>
      h.db.atomic(key(1), (tx) => {
        tx.put(key(4), value(4));
        tx.delete(key(1));
        throw failure;
      }),
    ).toThrow(failure);
    await h.check((db) =>
      h.expectModel(
        db,
        new Map([
          [1, value(11)],
          [3, value(3)],
        ]),
        [1, 2, 3, 4],
      ),
    );
  });

  it('onWrite sees every committed mutation with old and new values; onInit every live entry at open', async ({ tempDir }) => {
    const writes: [number, unknown, unknown][] = [];
    const hook: WriteHook<unknown> = { onWrite: (k, oldValue, newValue) => writes.push([numberOf(k), oldValue, newValue]) };
    const h = await harness(tempDir, { hook });
    h.db.put(key(1), value(1));
    h.db.put(key(1), value(2));
    h.db.delete(key(1));
    h.db.delete(key(1)); // nothing to delete: no write
    h.db.put(key(2), value(3));
    expect(writes).toEqual([
      [1, undefined, value(1)],
      [1, value(1), value(2)],
      [1, value(2), undefined],
      [2, undefined, value(3)],
    ]);
    const seen = new Map<number, unknown>();
    await h.db.close();
    const reopened = new Harness(h.directory, config, { hook: { onWrite: () => undefined, onInit: (k, v) => seen.set(numberOf(k), v) } });
    await reopened.open();
    expect(seen).toEqual(new Map([[2, value(3)]]));
  });

  it('compact() keeps every live entry and reclaims dead bytes; verify() finds no failure', async ({ tempDir }) => {
    const h = await harness(tempDir);
    const model = new Map<number, unknown>();
    for (let round = 0; round < 3; round++) {
      for (let n = 0; n < 200; n++) {
        h.db.put(key(n), value(n + round));
        model.set(n, value(n + round));
      }
    }
    for (let n = 0; n < 200; n += 4) {
      h.db.delete(key(n));
      model.delete(n);
    }
    const report = await h.db.compact();
    expect(report.filesIn).toBeGreaterThan(0);
    expect(report.bytesReclaimed).toBeGreaterThan(0);
    const verified = await h.db.verify();
    expect(verified.ok).toBe(true);
    await h.check((db) =>
      h.expectModel(
        db,
        model,
        Array.from({ length: 200 }, (_, n) => n),
      ),
    );
  });

  it('migrate keeps, deletes and rewrites each entry once and counts the mutations', async ({ tempDir }) => {
    const h = await harness(tempDir);
    for (let n = 0; n < 120; n++) h.db.put(key(n), value(n));
    const visited = new Set<number>();
    const mutations = await h.db.migrate((k) => {
      const n = numberOf(k);
      expect(visited.has(n)).toBe(false);
      visited.add(n);
      return n % 3 === 0 ? 'delete' : n % 3 === 1 ? value(n + 500) : 'keep';
    });
    expect(visited.size).toBe(120);
    expect(mutations).toBe(80);
    const model = new Map<number, unknown>();
    for (let n = 0; n < 120; n++) if (n % 3 !== 0) model.set(n, n % 3 === 1 ? value(n + 500) : value(n));
    await h.check((db) =>
      h.expectModel(
        db,
        model,
        Array.from({ length: 120 }, (_, n) => n),
      ),
    );
  });

  it('after close every operation throws ARMDB_CLOSED; a second open while open is ARMDB_LOCKED', async ({ tempDir }) => {
    const h = await harness(tempDir);
    h.db.put(key(1), value(1));
    await expect(config.subject.open(h.directory, h.options())).rejects.toMatchObject({ code: 'ARMDB_LOCKED' });
    await h.db.close();
    await h.db.close(); // twice is fine
    expectCode(() => h.db.get(key(1)), 'ARMDB_CLOSED');
    expectCode(() => h.db.put(key(1), value(1)), 'ARMDB_CLOSED');
    expectCode(() => h.db.size, 'ARMDB_CLOSED');
  });

  it('the directory remembers its class: opening it as any other class is ARMDB_FORMAT_MISMATCH', async ({ tempDir }) => {
    const h = await harness(tempDir);
    h.db.put(key(1), value(1));
    await h.db.close();
    for (const other of classes) {
      if (other === config.subject) continue;
      await expect(other.open(h.directory, h.options()), other.name).rejects.toMatchObject({ code: 'ARMDB_FORMAT_MISMATCH' });
    }
    await h.open();
    expect(h.db.get(key(1))).toEqual(value(1));
  });
});

describe.concurrent.each(matrix.filter((config) => config.subject.ordered && !config.reopened))('$label ordered reads', (config) => {
  it('range bounds, reverse, limit, prefix, first and last agree with a sorted model', async ({ tempDir }) => {
    const h = new Harness(tempDir(), config, {});
    await h.open();
    const tree = h.db as OrderedCollection<unknown>;
    const present = Array.from({ length: 90 }, (_, n) => n * 3); // 0, 3, …, 267
    for (const n of present) tree.put(key(n), config.subject.value(n));
    const pairs = (ns: number[]): [Uint8Array, unknown][] => ns.map((n) => [key(n), config.subject.value(n)]);
    expect([...tree.range({ gte: key(30), lt: key(60) })]).toEqual(pairs(present.filter((n) => n >= 30 && n < 60)));
    expect([...tree.range({ gt: key(30), lte: key(60) })]).toEqual(pairs(present.filter((n) => n > 30 && n <= 60)));
    expect([...tree.range({ gt: key(31), reverse: true, limit: 4 })]).toEqual(
      pairs(
        present
          .filter((n) => n > 31)
          .reverse()
          .slice(0, 4),
      ),
    );
    expect([...tree.values({ lt: key(10) })]).toEqual(present.filter((n) => n < 10).map(config.subject.value));
    expect(tree.first()).toEqual([key(0), config.subject.value(0)]);
    expect(tree.last()).toEqual([key(267), config.subject.value(267)]);
    // Keys 256..267 share their first 15 bytes (the last byte is n - 256).
    expect([...tree.prefix(key(256).subarray(0, KEY_SIZE - 1))]).toEqual(pairs(present.filter((n) => n >= 256)));
    expect([...tree.prefix(key(256).subarray(0, KEY_SIZE - 1), { reverse: true, limit: 2 })]).toEqual(pairs([267, 264]));
  });
});
