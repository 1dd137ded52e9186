/**
 * The behavioural contract of every collection class, written once (SPEC §2–§8) and run over each
 * class × configuration (matrix.ts says which run, and from which test file), in the manner of
 * abstract-level's shared test suite: `suite(factory, supports, configurations)` takes a factory that
 * opens the class for a configuration, and a `supports` object that gates the behaviours a class lacks.
 *
 * - Every class: point reads, the write operations and their errors, `atomic`, hooks, compaction,
 *   `migrate`, `verify`, close and lock, the class recorded in the directory, and (fresh variants)
 *   reopen with other immutable options, a wrong key or passphrase, the other encryption mode, and
 *   the other cipher provider.
 * - `supports.ordered` (the Trees): range, keys, values, prefix, first and last against a sorted model.
 * - `supports.variableBytes` (VarMap, VarTree): byte values of any length: fresh copies, empty values,
 *   values across pages, maxValueBytes, key and value validation, rotation, stats, the lifecycle and
 *   observability tests.
 *
 * In the "reopened" variant every assertion made through `check()` runs on the live store, then again
 * after close + reopen with the same options. Tests that reopen explicitly run in "fresh" variants only.
 * Each test has its own directory and stores; configurations run concurrently (the suite waits on
 * fsync much more than it computes). Not a test file itself (no `.test.ts` suffix).
 */
import { cpSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, vi } from 'vitest';
import {
  ArmdbError,
  type Collection,
  keys,
  type OpenOptions,
  type OrderedCollection,
  type Transaction,
  type WriteHook,
} from '../../src/index.js';
import { patternBytes } from '../helpers/bytes.js';
import { caught, expectCode, expectRejectCode } from '../helpers/errors.js';
import { KEY_SIZE, key, text, optionsFor, type StoreConfig, storeTest as it, testKey } from '../helpers/store.js';
import { trackStore } from '../helpers/temp-dir.js';
import { FACTORIES, type Factory, type Supports } from './factories.js';

/** One configuration of the matrix: a store configuration, and whether every check runs again after a reopen. */
export interface Configuration extends StoreConfig {
  /** Short (at most 40 characters) so that vitest does not truncate it in test names. */
  readonly name: string;
  readonly reopened: boolean;
}

/** The number `n` of {@link key}(n). */
function numberOf(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset + KEY_SIZE - 8, 8).getBigUint64(0));
}

/** One store of one test: `db` is replaced by `reopen()`. */
class Harness<V> {
  db!: Collection<V>;

  constructor(
    readonly factory: Factory<V>,
    readonly dir: string,
    readonly config: Configuration,
    readonly extra: Partial<OpenOptions<V>>,
  ) {}

  static async create<V>(
    factory: Factory<V>,
    dir: string,
    config: Configuration,
    extra: Partial<OpenOptions<V>> = {},
  ): Promise<Harness<V>> {
    const harness = new Harness(factory, dir, config, extra);
    await harness.open();
    return harness;
  }

  options(extra: Partial<OpenOptions<V>> = {}): OpenOptions<V> {
    return optionsFor(this.config, { ...this.extra, ...extra } as Partial<OpenOptions>) as OpenOptions<V>;
  }

  async open(): Promise<Collection<V>> {
    this.db = trackStore(this.dir, await this.factory.open(this.dir, this.options()));
    return this.db;
  }

  async reopen(): Promise<Collection<V>> {
    await this.db.close();
    return this.open();
  }

  /** Runs assertions on the live store, and for the "reopened" variant again after a reopen. */
  async check(assertions: (db: Collection<V>) => void | Promise<void>): Promise<void> {
    await assertions(this.db);
    if (this.config.reopened) await assertions(await this.reopen());
  }

  /** Every key of `model` reads back its value, nothing else is there, and size agrees; Trees also in order. */
  expectModel(db: Collection<V>, model: ReadonlyMap<number, V>, probe: readonly number[]): void {
    for (const n of probe) {
      expect(db.get(key(n))).toEqual(model.get(n));
      expect(db.has(key(n))).toBe(model.has(n));
    }
    expect(db.size).toBe(model.size);
    expect(db.isEmpty()).toBe(model.size === 0);
    expect(db.getMany(probe.map((n) => key(n)))).toEqual(probe.map((n) => model.get(n)));
    if (this.factory.supports.ordered) {
      const sorted = [...model.keys()].sort((left, right) => left - right);
      const tree = db as OrderedCollection<V>;
      expect([...tree.keys()]).toEqual(sorted.map((n) => key(n)));
      expect([...tree.range({ reverse: true })]).toEqual(sorted.reverse().map((n) => [key(n), model.get(n)]));
    }
  }
}

/**
 * Registers the behavioural suite of one class over `configurations`: tests a class does not
 * support (see {@link Supports}) are not registered for it.
 */
export function suite(factory: Factory, supports: Supports, configurations: readonly Configuration[]): void {
  // From here on `subject.supports` is the one answer to "does this class support …".
  const subject: Factory = { ...factory, supports };
  for (const config of configurations) {
    describe.concurrent(`${subject.name} [${config.name}]`, () => {
      everyCollection(subject, config);
      if (supports.ordered && !config.reopened) orderedReads(subject, config);
      if (supports.variableBytes) variableBytes(subject as Factory<Uint8Array>, config);
    });
  }
}

/** What every class must agree on. */
function everyCollection(factory: Factory, config: Configuration): void {
  const harness = (tempDir: () => string, extra: Partial<OpenOptions<unknown>> = {}): Promise<Harness<unknown>> =>
    Harness.create(factory, tempDir(), config, extra);
  const value = factory.value;
  /** Values several pages long where the class allows it. */
  const largeValue = factory.supports.variableBytes ? (n: number): unknown => patternBytes(500 + n * 300, n) : value;
  const openIn = async (dir: string, extra: Partial<OpenOptions<unknown>> = {}): Promise<Collection<unknown>> =>
    trackStore(dir, await factory.open(dir, optionsFor(config, extra as Partial<OpenOptions>) as OpenOptions<unknown>));

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
    let calls = 0;
    const counted = (): unknown => {
      calls++;
      return value(4);
    };
    expect(h.db.update(key(9), counted)).toBeUndefined();
    expect(h.db.fetchUpdate(key(9), counted)).toBeUndefined();
    expect(calls).toBe(0);
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
    const reopened = new Harness(factory, h.dir, config, {
      hook: { onWrite: () => undefined, onInit: (k, v) => seen.set(numberOf(k), v) },
    });
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
    await expect(factory.open(h.dir, h.options())).rejects.toMatchObject({ code: 'ARMDB_LOCKED' });
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
    for (const other of FACTORIES) {
      if (other.name === factory.name) continue;
      await expect(other.open(h.dir, h.options()), other.name).rejects.toMatchObject({ code: 'ARMDB_FORMAT_MISMATCH' });
    }
    await h.open();
    expect(h.db.get(key(1))).toEqual(value(1));
  });

  if (!config.reopened) {
    it('reopen with a different keySize, shards or shardPrefixBits throws ARMDB_FORMAT_MISMATCH', async ({ tempDir }) => {
      const h = await harness(tempDir);
      h.db.put(key(1), value(1));
      await h.db.close();
      await expectRejectCode(openIn(h.dir, { keySize: 8 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(openIn(h.dir, { shards: config.shards === 1 ? 4 : 1 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(openIn(h.dir, { shards: 2 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(openIn(h.dir, { shardPrefixBits: 8 }), 'ARMDB_FORMAT_MISMATCH');
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(value(1));
    });

    it.runIf(config.encryption !== 'none')('a wrong key or passphrase throws ARMDB_WRONG_KEY and changes nothing', async ({ tempDir }) => {
      const h = await harness(tempDir);
      h.db.put(key(1), value(1));
      await h.db.close();
      const wrong: OpenOptions['encryption'] =
        config.encryption === 'key' ? { key: testKey(2) } : { passphrase: 'incorrect horse', scryptLogN: 10 };
      await expectRejectCode(openIn(h.dir, { encryption: wrong }), 'ARMDB_WRONG_KEY');
      await expectRejectCode(openIn(h.dir, { encryption: wrong }), 'ARMDB_WRONG_KEY');
      // The other kind of secret does not open it either.
      const otherKind: OpenOptions['encryption'] =
        config.encryption === 'key' ? { passphrase: 'correct horse', scryptLogN: 10 } : { key: testKey(1) };
      const error = await openIn(h.dir, { encryption: otherKind }).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(ArmdbError);
      expect(['ARMDB_WRONG_KEY', 'ARMDB_FORMAT_MISMATCH']).toContain((error as ArmdbError).code);
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(value(1));
    });

    it('opening an encrypted store with none, or a none store with a key, throws ARMDB_FORMAT_MISMATCH', async ({ tempDir }) => {
      const h = await harness(tempDir);
      h.db.put(key(1), value(1));
      await h.db.close();
      if (config.encryption === 'none') {
        await expectRejectCode(openIn(h.dir, { encryption: { key: testKey(1) } }), 'ARMDB_FORMAT_MISMATCH');
        await expectRejectCode(openIn(h.dir, { encryption: { passphrase: 'correct horse', scryptLogN: 10 } }), 'ARMDB_FORMAT_MISMATCH');
      } else {
        await expectRejectCode(openIn(h.dir, { encryption: 'none' }), 'ARMDB_FORMAT_MISMATCH');
      }
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(value(1));
    });

    it('a store written with one cipher provider reads back with the other', async ({ tempDir }) => {
      const h = await harness(tempDir);
      for (let n = 0; n < 20; n++) h.db.put(key(n), largeValue(n));
      await h.db.close();
      const other = await openIn(h.dir, { cipher: config.cipher === 'node' ? 'noble' : 'node' });
      for (let n = 0; n < 20; n++) expect(other.get(key(n))).toEqual(largeValue(n));
      expect((await other.verify()).ok).toBe(true);
    });
  }
}

/** Range reads of the ordered classes against a sorted model. */
function orderedReads(factory: Factory, config: Configuration): void {
  const value = factory.value;
  it('range bounds, reverse, limit, prefix, first and last agree with a sorted model', async ({ tempDir }) => {
    const h = new Harness(factory, tempDir(), config, {});
    await h.open();
    const tree = h.db as OrderedCollection<unknown>;
    const present = Array.from({ length: 90 }, (_, n) => n * 3); // 0, 3, …, 267
    for (const n of present) tree.put(key(n), value(n));
    const pairs = (ns: number[]): [Uint8Array, unknown][] => ns.map((n) => [key(n), value(n)]);
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
    expect([...tree.values({ lt: key(10) })]).toEqual(present.filter((n) => n < 10).map(value));
    expect(tree.first()).toEqual([key(0), value(0)]);
    expect(tree.last()).toEqual([key(267), value(267)]);
    // Keys 256..267 share their first 15 bytes (the last byte is n - 256).
    expect([...tree.prefix(key(256).subarray(0, KEY_SIZE - 1))]).toEqual(pairs(present.filter((n) => n >= 256)));
    expect([...tree.prefix(key(256).subarray(0, KEY_SIZE - 1), { reverse: true, limit: 2 })]).toEqual(pairs([267, 264]));
  });
}

/** Byte values of any length (VarMap, VarTree). */
function variableBytes(factory: Factory<Uint8Array>, config: Configuration): void {
  const open = (tempDir: () => string, extra: Partial<OpenOptions> = {}): Promise<Harness<Uint8Array>> =>
    Harness.create(factory, tempDir(), config, extra);
  const openIn = async (dir: string, extra: Partial<OpenOptions> = {}): Promise<Collection<Uint8Array>> =>
    trackStore(dir, await factory.open(dir, optionsFor(config, extra)));

  it('get/has/getMany of absent keys', async ({ tempDir }) => {
    const h = await open(tempDir);
    h.db.put(key(1), text('one'));
    await h.check((db) => {
      expect(db.get(key(2))).toBeUndefined();
      expect(db.has(key(2))).toBe(false);
      expect(db.getMany([key(2), key(3)])).toEqual([undefined, undefined]);
      expect(db.has(key(1))).toBe(true);
    });
  });

  it('put then get returns an equal fresh copy the caller may mutate', async ({ tempDir }) => {
    const h = await open(tempDir);
    const value = text('hello, world');
    h.db.put(key(1), value);
    value.fill(0x21); // the caller reuses its buffer: the store must have copied it
    // A view into a larger buffer stores exactly the viewed bytes.
    const backing = patternBytes(64, 7);
    h.db.put(key(2), backing.subarray(10, 30));
    // Buffer is a Uint8Array too.
    h.db.put(Buffer.from(key(3)), Buffer.from('buffer value'));
    await h.check((db) => {
      const first = db.get(key(1))!;
      expect(first).toBeInstanceOf(Uint8Array);
      expect(first).toEqual(text('hello, world'));
      first.fill(0);
      const second = db.get(key(1))!;
      expect(second).toEqual(text('hello, world'));
      expect(second).not.toBe(first);
      expect(db.get(key(2))).toEqual(backing.slice(10, 30));
      expect(Buffer.from(db.get(key(3))!).toString()).toBe('buffer value');
      const [many] = db.getMany([key(1)]);
      many!.fill(1);
      expect(db.get(key(1))).toEqual(text('hello, world'));
      // update() hands fn a copy too: mutating it and leaving the value changes nothing.
      db.update(key(1), (current) => {
        current.fill(2);
        return undefined;
      });
      expect(db.get(key(1))).toEqual(text('hello, world'));
    });
  });

  it('overwrite replaces the value (shorter and longer)', async ({ tempDir }) => {
    const h = await open(tempDir);
    h.db.put(key(1), text('first value'));
    h.db.put(key(1), text('2nd'));
    h.db.put(key(2), text('short'));
    h.db.put(key(2), patternBytes(3000, 2));
    h.db.put(key(2), patternBytes(3001, 3));
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(text('2nd'));
      expect(db.get(key(2))).toEqual(patternBytes(3001, 3));
      expect(db.size).toBe(2);
    });
  });

  it('delete returns whether the key existed', async ({ tempDir }) => {
    const h = await open(tempDir);
    expect(h.db.delete(key(1))).toBe(false);
    h.db.put(key(1), text('one'));
    h.db.put(key(2), text('two'));
    h.db.put(key(3), text('three'));
    expect(h.db.delete(key(1))).toBe(true);
    expect(h.db.delete(key(1))).toBe(false);
    expect(h.db.delete(key(3))).toBe(true);
    h.db.put(key(3), text('three again'));
    await h.check((db) => {
      expect(db.get(key(1))).toBeUndefined();
      expect(db.has(key(1))).toBe(false);
      expect(db.get(key(2))).toEqual(text('two'));
      expect(db.get(key(3))).toEqual(text('three again'));
      expect(db.size).toBe(2);
    });
    expect(h.db.delete(key(1))).toBe(false);
    expect(h.db.delete(key(2))).toBe(true);
    await h.check((db) => {
      expect(db.has(key(2))).toBe(false);
      expect(db.size).toBe(1);
    });
  });

  it('insert of a present key throws ARMDB_KEY_EXISTS and the old value stays', async ({ tempDir }) => {
    const h = await open(tempDir);
    h.db.insert(key(1), text('original'));
    expectCode(() => h.db.insert(key(1), text('replacement')), 'ARMDB_KEY_EXISTS');
    expect(h.db.get(key(1))).toEqual(text('original'));
    h.db.put(key(2), text('x'));
    h.db.delete(key(2));
    h.db.insert(key(2), text('after delete'));
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(text('original'));
      expect(db.get(key(2))).toEqual(text('after delete'));
      expect(db.size).toBe(2);
      expectCode(() => db.insert(key(1), text('again')), 'ARMDB_KEY_EXISTS');
      expect(db.get(key(1))).toEqual(text('original'));
    });
  });

  it('cas: success, ARMDB_CAS_MISMATCH, ARMDB_KEY_NOT_FOUND', async ({ tempDir }) => {
    const h = await open(tempDir);
    h.db.put(key(1), text('v1'));
    h.db.cas(key(1), text('v1'), text('v2'));
    expect(h.db.get(key(1))).toEqual(text('v2'));
    expectCode(() => h.db.cas(key(1), text('v1'), text('v3')), 'ARMDB_CAS_MISMATCH');
    expectCode(() => h.db.cas(key(1), text('v2 but longer'), text('v3')), 'ARMDB_CAS_MISMATCH');
    expectCode(() => h.db.cas(key(1), new Uint8Array(0), text('v3')), 'ARMDB_CAS_MISMATCH');
    expectCode(() => h.db.cas(key(9), text('v1'), text('v3')), 'ARMDB_KEY_NOT_FOUND');
    h.db.put(key(2), new Uint8Array(0));
    h.db.cas(key(2), new Uint8Array(0), text('from empty'));
    h.db.put(key(3), text('to empty'));
    h.db.cas(key(3), text('to empty'), new Uint8Array(0));
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(text('v2'));
      expect(db.has(key(9))).toBe(false);
      expect(db.get(key(2))).toEqual(text('from empty'));
      expect(db.get(key(3))).toEqual(new Uint8Array(0));
      expect(db.size).toBe(3);
    });
  });

  it('update: fn not called for an absent key; undefined leaves the value; returns the new value', async ({ tempDir }) => {
    const h = await open(tempDir);
    const fn = vi.fn((current: Uint8Array): Uint8Array | undefined => current);
    expect(h.db.update(key(1), fn)).toBeUndefined();
    expect(fn).not.toHaveBeenCalled();
    expect(h.db.has(key(1))).toBe(false);

    h.db.put(key(1), text('one'));
    const seen: Uint8Array[] = [];
    const kept = h.db.update(key(1), (current) => {
      seen.push(current.slice());
      current.fill(0); // mutating the argument must not change the store
      return undefined;
    });
    expect(seen).toEqual([text('one')]);
    expect(kept).toEqual(text('one'));
    expect(h.db.get(key(1))).toEqual(text('one'));

    const updated = h.db.update(key(1), (current) => new Uint8Array([...current, ...text('+1')]));
    expect(updated).toEqual(text('one+1'));
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(text('one+1'));
      expect(db.size).toBe(1);
    });
  });

  it('fetchUpdate: returns the previous value; fn not called for an absent key', async ({ tempDir }) => {
    const h = await open(tempDir);
    const fn = vi.fn((current: Uint8Array): Uint8Array | undefined => current);
    expect(h.db.fetchUpdate(key(1), fn)).toBeUndefined();
    expect(fn).not.toHaveBeenCalled();
    expect(h.db.has(key(1))).toBe(false);

    h.db.put(key(1), text('old'));
    expect(h.db.fetchUpdate(key(1), () => text('new'))).toEqual(text('old'));
    expect(h.db.fetchUpdate(key(1), () => undefined)).toEqual(text('new'));
    expect(h.db.fetchUpdate(key(1), (current) => new Uint8Array([...current, 0x21]))).toEqual(text('new'));
    await h.check((db) => {
      expect(db.get(key(1))).toEqual(text('new!'));
    });
  });

  it('getMany: order preserved, undefined for absent, duplicates allowed', async ({ tempDir }) => {
    const h = await open(tempDir);
    for (let n = 0; n < 20; n++) h.db.put(key(n), text(`value ${n}`));
    h.db.put(key(5), patternBytes(9000, 5)); // a later, multi-page location
    h.db.delete(key(7));
    await h.check((db) => {
      expect(db.getMany([])).toEqual([]);
      const wanted = [key(19), key(3), key(100), key(5), key(3), key(7), key(0)];
      const values = db.getMany(wanted);
      expect(values).toEqual([
        text('value 19'),
        text('value 3'),
        undefined,
        patternBytes(9000, 5),
        text('value 3'),
        undefined,
        text('value 0'),
      ]);
      // Duplicates are independent copies.
      values[1]!.fill(0);
      expect(values[4]).toEqual(text('value 3'));
    });
  });

  describe('atomic', () => {
    // With shardPrefixBits 8 every key of one group (first byte) routes to one shard.
    const atomicOptions = { shardPrefixBits: 8 };

    it('applies every mutation, with read-your-writes inside the transaction', async ({ tempDir }) => {
      const h = await open(tempDir, atomicOptions);
      h.db.put(key(1), text('one'));
      h.db.put(key(3), text('three'));
      const result = h.db.atomic(key(1), (tx) => {
        expect(tx.get(key(1))).toEqual(text('one'));
        tx.put(key(1), text('one*'));
        expect(tx.get(key(1))).toEqual(text('one*'));
        tx.put(key(2), text('two'));
        expect(tx.has(key(2))).toBe(true);
        expect(tx.delete(key(3))).toBe(true);
        expect(tx.has(key(3))).toBe(false);
        expect(tx.delete(key(3))).toBe(false);
        expect(tx.delete(key(4))).toBe(false);
        tx.insert(key(4), text('four'));
        tx.put(key(5), text('five'));
        tx.delete(key(5));
        return 'done';
      });
      expect(result).toBe('done');
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('one*'));
        expect(db.get(key(2))).toEqual(text('two'));
        expect(db.has(key(3))).toBe(false);
        expect(db.get(key(4))).toEqual(text('four'));
        expect(db.has(key(5))).toBe(false);
        expect(db.size).toBe(3);
      });
    });

    it('applies nothing when fn throws (and rethrows its error)', async ({ tempDir }) => {
      const h = await open(tempDir, atomicOptions);
      h.db.put(key(1), text('one'));
      h.db.put(key(3), text('three'));
      const boom = new Error('boom');
      const error = caught(() =>
        h.db.atomic(key(1), (tx) => {
          tx.put(key(1), text('changed'));
          tx.put(key(2), text('new'));
          tx.delete(key(3));
          throw boom;
        }),
      );
      expect(error).toBe(boom);
      // An async callback is refused and applies nothing either.
      expect(() =>
        h.db.atomic(key(1), async (tx) => {
          tx.put(key(1), text('async'));
        }),
      ).toThrow(TypeError);
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('one'));
        expect(db.has(key(2))).toBe(false);
        expect(db.get(key(3))).toEqual(text('three'));
        expect(db.size).toBe(2);
      });
    });

    it('insert of a present key inside atomic throws ARMDB_KEY_EXISTS and applies nothing', async ({ tempDir }) => {
      const h = await open(tempDir, atomicOptions);
      h.db.put(key(1), text('one'));
      expectCode(
        () =>
          h.db.atomic(key(1), (tx) => {
            tx.put(key(2), text('two'));
            tx.insert(key(1), text('conflict'));
          }),
        'ARMDB_KEY_EXISTS',
      );
      // A key staged earlier in the same transaction counts as present too.
      expectCode(
        () =>
          h.db.atomic(key(1), (tx) => {
            tx.put(key(5), text('five'));
            tx.insert(key(5), text('again'));
          }),
        'ARMDB_KEY_EXISTS',
      );
      // A key deleted earlier in the transaction may be inserted.
      h.db.atomic(key(1), (tx) => {
        tx.delete(key(1));
        tx.insert(key(1), text('re-inserted'));
      });
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('re-inserted'));
        expect(db.has(key(2))).toBe(false);
        expect(db.has(key(5))).toBe(false);
        expect(db.size).toBe(1);
      });
    });

    it.runIf(config.shards > 1)('a key of another shard throws ARMDB_SHARD_MISMATCH and applies nothing', async ({ tempDir }) => {
      const h = await open(tempDir, atomicOptions);
      const home = key(1, 0);
      let other: Uint8Array | undefined;
      for (let group = 1; group < 256 && other === undefined; group++) {
        const candidate = key(1, group);
        try {
          h.db.atomic(home, (tx) => tx.get(candidate));
        } catch (error) {
          expect(error).toBeInstanceOf(ArmdbError);
          expect((error as ArmdbError).code).toBe('ARMDB_SHARD_MISMATCH');
          other = candidate;
        }
      }
      expect(other).toBeDefined();
      const foreign = other!;
      h.db.put(home, text('home'));
      expectCode(
        () =>
          h.db.atomic(home, (tx) => {
            tx.put(home, text('changed'));
            tx.put(key(2, 0), text('same shard'));
            tx.put(foreign, text('other shard'));
          }),
        'ARMDB_SHARD_MISMATCH',
      );
      for (const method of ['get', 'has', 'delete'] as const) {
        expectCode(() => h.db.atomic(home, (tx) => tx[method](foreign)), 'ARMDB_SHARD_MISMATCH');
      }
      expectCode(() => h.db.atomic(home, (tx) => tx.insert(foreign, text('x'))), 'ARMDB_SHARD_MISMATCH');
      // Keys sharing the first byte share the shard (shardPrefixBits 8), whatever the rest is.
      h.db.atomic(home, (tx) => {
        tx.put(key(1000, 0), text('a'));
        tx.put(key(2000, 0), text('b'));
      });
      await h.check((db) => {
        expect(db.get(home)).toEqual(text('home'));
        expect(db.has(key(2, 0))).toBe(false);
        expect(db.has(foreign)).toBe(false);
        expect(db.get(key(1000, 0))).toEqual(text('a'));
        expect(db.get(key(2000, 0))).toEqual(text('b'));
        expect(db.size).toBe(3);
      });
    });

    it('a transaction used after atomic returned (or threw) throws and changes nothing', async ({ tempDir }) => {
      const h = await open(tempDir, atomicOptions);
      let leaked: Transaction<Uint8Array> | undefined;
      h.db.atomic(key(1), (tx) => {
        leaked = tx;
        tx.put(key(1), text('inside'));
      });
      const tx = leaked!;
      expect(() => tx.get(key(1))).toThrow();
      expect(() => tx.has(key(1))).toThrow();
      expect(() => tx.put(key(2), text('late'))).toThrow();
      expect(() => tx.insert(key(3), text('late'))).toThrow();
      expect(() => tx.delete(key(1))).toThrow();
      let leakedFromThrow: Transaction<Uint8Array> | undefined;
      expect(() =>
        h.db.atomic(key(1), (inner) => {
          leakedFromThrow = inner;
          throw new Error('stop');
        }),
      ).toThrow('stop');
      expect(() => leakedFromThrow!.put(key(4), text('late'))).toThrow();
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('inside'));
        expect(db.has(key(2))).toBe(false);
        expect(db.has(key(3))).toBe(false);
        expect(db.has(key(4))).toBe(false);
        expect(db.size).toBe(1);
      });
    });
  });

  it('size and isEmpty count live keys', async ({ tempDir }) => {
    const h = await open(tempDir);
    expect(h.db.size).toBe(0);
    expect(h.db.isEmpty()).toBe(true);
    for (let n = 0; n < 10; n++) h.db.put(key(n), text(`v${n}`));
    h.db.put(key(3), text('overwrite'));
    h.db.delete(key(4));
    h.db.delete(key(4));
    h.db.delete(key(99));
    await h.check((db) => {
      expect(db.size).toBe(9);
      expect(db.isEmpty()).toBe(false);
      expect(db.stats().keys).toBe(9);
    });
    for (let n = 0; n < 10; n++) h.db.delete(key(n));
    await h.check((db) => {
      expect(db.size).toBe(0);
      expect(db.isEmpty()).toBe(true);
    });
  });

  it('an empty value (0 bytes) round-trips and is distinct from absent', async ({ tempDir }) => {
    const h = await open(tempDir);
    h.db.put(key(1), new Uint8Array(0));
    h.db.insert(key(2), new Uint8Array(0));
    h.db.put(key(3), text('x'));
    h.db.put(key(3), new Uint8Array(0));
    await h.check((db) => {
      for (const n of [1, 2, 3]) {
        expect(db.has(key(n))).toBe(true);
        const value = db.get(key(n));
        expect(value).toBeInstanceOf(Uint8Array);
        expect(value!.length).toBe(0);
      }
      expect(db.getMany([key(1), key(4)])).toEqual([new Uint8Array(0), undefined]);
      expect(db.size).toBe(3);
    });
  });

  it('values spanning several pages and values of exactly one page', async ({ tempDir }) => {
    const h = await open(tempDir);
    const lengths = [4095, 4096, 4097, 8192, 10 * 1024, 100 * 1024];
    for (const [index, length] of lengths.entries()) h.db.put(key(index), patternBytes(length, index));
    h.db.put(key(100), text('small neighbour'));
    await h.check((db) => {
      lengths.forEach((length, index) => {
        const value = db.get(key(index))!;
        expect(value.length).toBe(length);
        expect(Buffer.compare(value, patternBytes(length, index))).toBe(0);
      });
      expect(db.get(key(100))).toEqual(text('small neighbour'));
      const many = db.getMany([key(3), key(100), key(0), key(1)]);
      expect(many).toEqual([patternBytes(8192, 3), text('small neighbour'), patternBytes(4095, 0), patternBytes(4096, 1)]);
    });
    if (!config.reopened) {
      // After a sync the same values are read from sealed pages (and the cache, when enabled).
      await h.db.sync();
      for (const [index, length] of lengths.entries()) expect(Buffer.compare(h.db.get(key(index))!, patternBytes(length, index))).toBe(0);
    }
  });

  it('a value larger than maxValueBytes throws ARMDB_VALUE_TOO_LARGE and nothing is stored', async ({ tempDir }) => {
    const h = await open(tempDir, { maxValueBytes: 1024, shardPrefixBits: 8 });
    const tooLarge = patternBytes(1025, 1);
    expectCode(() => h.db.put(key(1), tooLarge), 'ARMDB_VALUE_TOO_LARGE');
    expectCode(() => h.db.insert(key(1), tooLarge), 'ARMDB_VALUE_TOO_LARGE');
    h.db.put(key(2), text('two'));
    expectCode(() => h.db.put(key(2), tooLarge), 'ARMDB_VALUE_TOO_LARGE');
    expectCode(() => h.db.cas(key(2), text('two'), tooLarge), 'ARMDB_VALUE_TOO_LARGE');
    expectCode(() => h.db.update(key(2), () => tooLarge), 'ARMDB_VALUE_TOO_LARGE');
    expectCode(() => h.db.fetchUpdate(key(2), () => tooLarge), 'ARMDB_VALUE_TOO_LARGE');
    expectCode(
      () =>
        h.db.atomic(key(2), (tx) => {
          tx.put(key(3), text('three'));
          tx.put(key(2), tooLarge);
        }),
      'ARMDB_VALUE_TOO_LARGE',
    );
    h.db.put(key(4), patternBytes(1024, 4)); // exactly the limit is fine
    await h.check((db) => {
      expect(db.has(key(1))).toBe(false);
      expect(db.get(key(2))).toEqual(text('two'));
      expect(db.has(key(3))).toBe(false);
      expect(db.get(key(4))).toEqual(patternBytes(1024, 4));
      expect(db.size).toBe(2);
    });
  });

  it('keys of the wrong size throw RangeError; non-Uint8Array keys and values throw TypeError', async ({ tempDir }) => {
    const h = await open(tempDir);
    h.db.put(key(1), text('one'));
    const db = h.db;
    for (const bad of [new Uint8Array(KEY_SIZE - 1), new Uint8Array(KEY_SIZE + 1), new Uint8Array(0)]) {
      expect(() => db.get(bad)).toThrow(RangeError);
      expect(() => db.has(bad)).toThrow(RangeError);
      expect(() => db.getMany([key(1), bad])).toThrow(RangeError);
      expect(() => db.put(bad, text('x'))).toThrow(RangeError);
      expect(() => db.insert(bad, text('x'))).toThrow(RangeError);
      expect(() => db.delete(bad)).toThrow(RangeError);
      expect(() => db.cas(bad, text('x'), text('y'))).toThrow(RangeError);
      expect(() => db.update(bad, (v) => v)).toThrow(RangeError);
      expect(() => db.fetchUpdate(bad, (v) => v)).toThrow(RangeError);
      expect(() => db.atomic(bad, () => 1)).toThrow(RangeError);
      expect(() => db.atomic(key(1), (tx) => tx.put(bad, text('x')))).toThrow(RangeError);
    }
    const notBytes: unknown[] = [
      '0123456789abcdef',
      Array.from(key(1)),
      key(1).buffer,
      new DataView(new ArrayBuffer(KEY_SIZE)),
      null,
      undefined,
      42,
    ];
    for (const bad of notBytes) {
      const badKey = bad as Uint8Array;
      expect(() => db.get(badKey)).toThrow(TypeError);
      expect(() => db.has(badKey)).toThrow(TypeError);
      expect(() => db.put(badKey, text('x'))).toThrow(TypeError);
      expect(() => db.delete(badKey)).toThrow(TypeError);
      expect(() => db.getMany([badKey])).toThrow(TypeError);
      expect(() => db.put(key(2), badKey)).toThrow(TypeError);
      expect(() => db.insert(key(2), badKey)).toThrow(TypeError);
      expect(() => db.cas(key(1), text('one'), badKey)).toThrow(TypeError);
      if (bad !== undefined) expect(() => db.update(key(1), () => badKey)).toThrow(TypeError);
    }
    expect(() => db.getMany('nope' as unknown as Uint8Array[])).toThrow(TypeError);
    await h.check((reopened) => {
      expect(reopened.get(key(1))).toEqual(text('one'));
      expect(reopened.has(key(2))).toBe(false);
      expect(reopened.size).toBe(1);
    });
  });

  it('a few hundred keys: puts, overwrites and deletes all read back', async ({ tempDir }) => {
    const h = await open(tempDir);
    const expected = new Map<number, Uint8Array>();
    for (let n = 0; n < 200; n++) {
      const value = patternBytes((n * 37) % 700, n);
      h.db.put(key(n), value);
      expected.set(n, value);
    }
    for (let n = 0; n < 200; n += 3) {
      expect(h.db.delete(key(n))).toBe(true);
      expected.delete(n);
    }
    for (let n = 1; n < 200; n += 5) {
      const value = patternBytes(n % 50, n + 1000);
      h.db.put(key(n), value);
      expected.set(n, value);
    }
    await h.check((db) => {
      expect(db.size).toBe(expected.size);
      for (let n = 0; n < 200; n++) {
        const want = expected.get(n);
        expect(db.has(key(n))).toBe(want !== undefined);
        expect(db.get(key(n))).toEqual(want);
      }
    });
  });

  it('rotation at the minimum maxFileBytes: everything reads back and rotations are counted', async ({ tempDir }) => {
    const h = await open(tempDir, { maxFileBytes: 65536 });
    // About two files' worth per shard, in values of 2–3 pages.
    const count = 21 * config.shards;
    const pageSpanningValue = (n: number): Uint8Array => patternBytes(6000 + (n % 7) * 300, n);
    for (let n = 0; n < count; n++) h.db.put(key(n), pageSpanningValue(n));
    for (let n = 0; n < count; n += 7) h.db.delete(key(n));
    const stats = h.db.stats();
    expect(stats.rotations).toBeGreaterThanOrEqual(Math.max(2, config.shards));
    expect(stats.files).toBeGreaterThan(config.shards * 2);
    await h.check((db) => {
      expect(db.size).toBe(count - count / 7);
      for (let n = 0; n < count; n++) {
        if (n % 7 === 0) expect(db.has(key(n))).toBe(false);
        else expect(db.get(key(n))).toEqual(pageSpanningValue(n));
      }
    });
    // After the reopen (or not) every file still authenticates.
    expect((await h.db.verify()).ok).toBe(true);
  });

  it('stats() has every field and the counters move', async ({ tempDir }) => {
    const h = await open(tempDir);
    const fields = [
      'keys',
      'gets',
      'puts',
      'deletes',
      'cacheHits',
      'cacheMisses',
      'cacheBytes',
      'pagesSealed',
      'bytesWritten',
      'syncs',
      'rotations',
      'compactions',
      'deadBytes',
      'totalBytes',
      'files',
      'epoch',
      'recoveredTornBytes',
    ] as const;
    const before = h.db.stats();
    for (const field of fields) expect(typeof before[field], field).toBe('number');
    expect(before.keys).toBe(0);
    expect(before.files).toBeGreaterThanOrEqual(config.shards);

    for (let n = 0; n < 5; n++) h.db.put(key(n), patternBytes(100, n));
    h.db.put(key(0), patternBytes(200, 0));
    h.db.get(key(1));
    h.db.get(key(42));
    h.db.delete(key(2));
    const during = h.db.stats();
    expect(during.puts - before.puts).toBe(6);
    expect(during.gets - before.gets).toBe(2);
    expect(during.deletes - before.deletes).toBe(1);
    expect(during.keys).toBe(4);

    await h.db.sync();
    const after = h.db.stats();
    expect(after.syncs).toBeGreaterThan(before.syncs);
    expect(after.epoch).toBeGreaterThan(before.epoch);
    // sync() seals no page: the partial pages go into the commit journals (docs/format.md §3.2, §6A).
    expect(after.pagesSealed).toBe(before.pagesSealed);
    expect(after.bytesWritten).toBeGreaterThan(before.bytesWritten);
    expect(after.totalBytes).toBeGreaterThan(0);
    expect(after.deadBytes).toBeGreaterThan(0); // an overwrite and a delete
    expect(after.deadBytes).toBeLessThanOrEqual(after.totalBytes);

    const epochBeforeClose = after.epoch;
    await h.check((db) => {
      expect(db.stats().keys).toBe(4);
    });
    if (config.reopened) {
      const reopened = h.db.stats();
      expect(reopened.epoch).toBeGreaterThan(epochBeforeClose);
      expect(reopened.recoveredTornBytes).toBe(0);
    }
    // The cache counters move only when there is a cache. The cache holds sealed pages; the partial
    // page of an active file is read from its write buffer (a sync() journals it, docs/format.md §6A),
    // so fill every shard's first page past its end before reading from it.
    for (let n = 100; n < 180; n++) h.db.put(key(n), patternBytes(700, n));
    await h.db.sync();
    h.db.get(key(100));
    h.db.get(key(100));
    const cached = h.db.stats();
    if (config.cacheBytes === 0) {
      expect(cached.cacheHits).toBe(0);
      expect(cached.cacheBytes).toBe(0);
    } else {
      expect(cached.cacheHits).toBeGreaterThan(0);
      expect(cached.cacheBytes).toBeGreaterThan(0);
      expect(cached.cacheBytes).toBeLessThanOrEqual(config.cacheBytes);
    }
  });

  it('verify() on a healthy store reports ok with pages > 0 and calls onProgress', async ({ tempDir }) => {
    const h = await open(tempDir);
    for (let n = 0; n < 40; n++) h.db.put(key(n), patternBytes(700, n));
    await h.db.sync();
    await h.check(async (db) => {
      const progress: { pagesDone: number; pagesTotal: number }[] = [];
      const report = await db.verify({ onProgress: (step) => progress.push(step) });
      expect(report.ok).toBe(true);
      expect(report.failures).toEqual([]);
      expect(report.pages).toBeGreaterThan(0);
      expect(report.files).toBeGreaterThanOrEqual(1);
      expect(progress.length).toBeGreaterThan(0);
      const last = progress.at(-1)!;
      expect(last.pagesDone).toBe(last.pagesTotal);
      expect(last.pagesDone).toBe(report.pages);
      for (let index = 1; index < progress.length; index++)
        expect(progress[index]!.pagesDone).toBeGreaterThanOrEqual(progress[index - 1]!.pagesDone);
    });
  });

  // Lifecycle, validation and observability tests reopen explicitly (or read nothing back), so they
  // behave the same in both variants: they are registered in the "fresh" variant only.
  if (!config.reopened) {
    it('bad options throw RangeError/TypeError naming the option, and touch nothing', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('kept'));
      await h.db.close();
      const base = optionsFor(config);
      const cases: { options: unknown; error: typeof RangeError | typeof TypeError; name: string }[] = [
        { options: { ...base, keySize: 0 }, error: RangeError, name: 'keySize' },
        { options: { ...base, keySize: 1025 }, error: RangeError, name: 'keySize' },
        { options: { ...base, keySize: 1.5 }, error: TypeError, name: 'keySize' },
        { options: { ...base, shards: 300 }, error: RangeError, name: 'shards' },
        { options: { ...base, shards: 0 }, error: RangeError, name: 'shards' },
        { options: { ...base, cipher: 'x' }, error: TypeError, name: 'cipher' },
        { options: { ...base, maxFileBytes: 1000 }, error: RangeError, name: 'maxFileBytes' },
        { options: { ...base, cacheBytes: -1 }, error: RangeError, name: 'cacheBytes' },
        { options: { ...base, syncIntervalMs: 'often' }, error: TypeError, name: 'syncIntervalMs' },
        { options: { keySize: KEY_SIZE, shards: config.shards }, error: TypeError, name: 'encryption' },
        { options: { ...base, encryption: 'plain' }, error: TypeError, name: 'encryption' },
        { options: { ...base, encryption: { key: new Uint8Array(16) } }, error: RangeError, name: 'encryption.key' },
      ];
      for (const { options, error, name } of cases) {
        const rejection: unknown = await factory.open(h.dir, options as OpenOptions<Uint8Array>).then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(rejection, name).toBeInstanceOf(error);
        expect((rejection as Error).message).toContain(`"${name}"`);
      }
      // A bad open of a fresh directory creates nothing.
      const fresh = path.join(tempDir(), 'never-created');
      await expect(factory.open(fresh, { ...base, shards: 300 })).rejects.toThrow(RangeError);
      expect(existsSync(fresh)).toBe(false);
      // The store is untouched.
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(text('kept'));
    });

    it('use after close throws ARMDB_CLOSED; close twice is fine', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('one'));
      const db = h.db;
      await db.close();
      await db.close();
      await Promise.all([db.close(), db.close()]);
      expectCode(() => db.get(key(1)), 'ARMDB_CLOSED');
      expectCode(() => db.has(key(1)), 'ARMDB_CLOSED');
      expectCode(() => db.getMany([key(1)]), 'ARMDB_CLOSED');
      expectCode(() => db.put(key(2), text('x')), 'ARMDB_CLOSED');
      expectCode(() => db.insert(key(2), text('x')), 'ARMDB_CLOSED');
      expectCode(() => db.delete(key(1)), 'ARMDB_CLOSED');
      expectCode(() => db.cas(key(1), text('one'), text('x')), 'ARMDB_CLOSED');
      expectCode(() => db.update(key(1), () => text('x')), 'ARMDB_CLOSED');
      expectCode(() => db.fetchUpdate(key(1), () => text('x')), 'ARMDB_CLOSED');
      expectCode(() => db.atomic(key(1), (tx) => tx.put(key(1), text('x'))), 'ARMDB_CLOSED');
      expectCode(() => db.flush(), 'ARMDB_CLOSED');
      expectCode(() => db.stats(), 'ARMDB_CLOSED');
      await expectRejectCode(db.sync(), 'ARMDB_CLOSED');
      await expectRejectCode(db.verify(), 'ARMDB_CLOSED');
      const reopened = await h.reopen();
      expect(reopened.get(key(1))).toEqual(text('one'));
      expect(reopened.size).toBe(1);
    });

    it('await using closes the store at the end of the scope', async ({ tempDir }) => {
      const dir = tempDir();
      let escaped: Collection<Uint8Array> | undefined;
      {
        await using db = await openIn(dir);
        escaped = db;
        db.put(key(1), text('scoped'));
        expect(typeof db[Symbol.asyncDispose]).toBe('function');
      }
      expectCode(() => escaped.get(key(1)), 'ARMDB_CLOSED');
      // The lock was released and the write is durable.
      const db = await openIn(dir);
      expect(db.get(key(1))).toEqual(text('scoped'));
    });

    it('a second open of the same directory while open throws ARMDB_LOCKED', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('one'));
      await expectRejectCode(openIn(h.dir), 'ARMDB_LOCKED');
      await expectRejectCode(openIn(h.dir), 'ARMDB_LOCKED'); // the failed open released nothing
      // The same directory under another spelling is the same directory.
      await expectRejectCode(openIn(path.join(h.dir, '.', 'x', '..')), 'ARMDB_LOCKED');
      h.db.put(key(2), text('two'));
      await h.db.sync();
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('one'));
        expect(db.get(key(2))).toEqual(text('two'));
      });
      await h.reopen(); // close releases the lock
      expect(h.db.size).toBe(2);
    });

    it('concurrent sync() calls all resolve and share barriers', async ({ tempDir }) => {
      const h = await open(tempDir);
      for (let n = 0; n < 50; n++) h.db.put(key(n), patternBytes(200, n));
      const before = h.db.stats().syncs;
      await Promise.all(Array.from({ length: 10 }, () => h.db.sync()));
      const used = h.db.stats().syncs - before;
      expect(used).toBeGreaterThanOrEqual(1);
      expect(used).toBeLessThan(10);
      // A sync with nothing new to write resolves too.
      await h.db.sync();
      await h.check((db) => {
        expect(db.size).toBe(50);
        expect(db.get(key(49))).toEqual(patternBytes(200, 49));
      });
    });

    it('the background timer (syncIntervalMs: 20) runs a durability barrier', async ({ tempDir }) => {
      const h = await open(tempDir, { syncIntervalMs: 20 });
      const before = h.db.stats().syncs;
      h.db.put(key(1), text('made durable by the timer'));
      await vi.waitFor(
        () => {
          expect(h.db.stats().syncs).toBeGreaterThan(before);
        },
        { timeout: 10_000, interval: 5 },
      );
      // The barrier really happened: a crash image taken now holds the write.
      const image = path.join(tempDir(), 'image');
      cpSync(h.dir, image, { recursive: true });
      const copy = await openIn(image, { syncIntervalMs: 0 });
      expect(copy.get(key(1))).toEqual(text('made durable by the timer'));
      await copy.close();
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('made durable by the timer'));
      });
    });

    it('verify() with an already-aborted signal rejects with ARMDB_ABORTED', async ({ tempDir }) => {
      const h = await open(tempDir);
      for (let n = 0; n < 10; n++) h.db.put(key(n), patternBytes(700, n));
      await h.db.sync();
      await h.check(async (db) => {
        await expectRejectCode(db.verify({ signal: AbortSignal.abort() }), 'ARMDB_ABORTED');
        expect(db.get(key(3))).toEqual(patternBytes(700, 3)); // still usable
      });
    });

    it('util.inspect, JSON.stringify and String of the store show no key or value bytes', async ({ tempDir }) => {
      const h = await open(tempDir);
      const keyCanary = keys.fromString('KEYCANARY-q7Zx', KEY_SIZE);
      const valueCanary = 'VALUECANARY-3f9Kq-sensitive';
      h.db.put(keyCanary, text(valueCanary));
      h.db.get(keyCanary);
      const insertError = caught(() => h.db.insert(keyCanary, text(valueCanary)));
      await h.check((db) => {
        const renderings = [
          inspect(db),
          inspect(db, { depth: Infinity, showHidden: true, getters: true }),
          JSON.stringify(db),
          String(db),
          `${db}`,
          inspect(db.stats(), { depth: Infinity }),
          JSON.stringify(db.stats()),
          inspect(insertError, { depth: Infinity, showHidden: true }),
        ];
        for (const rendering of renderings) {
          expect(rendering).not.toContain('KEYCANARY');
          expect(rendering).not.toContain('VALUECANARY');
          expect(rendering).not.toContain(Buffer.from(keyCanary).toString('hex'));
          expect(rendering).not.toContain(Buffer.from(valueCanary).toString('hex'));
          expect(rendering).not.toContain(Buffer.from(valueCanary).toString('base64').slice(0, 16));
        }
      });
    });
  }
}
