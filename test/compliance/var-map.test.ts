/**
 * The behavioural contract of the byte-valued collections (SPEC §3, §4, §7, §8): VarMap over the whole
 * configuration matrix and VarTree over a subset, written once and run over the configuration
 * matrix {1, 4 shards} × {cache 64 MiB, 0} × {cipher node, noble} × {encryption none, key, passphrase}
 * × {fresh, reopened}: 48 combinations. In the "reopened" variant every read assertion made through
 * `check()` runs on the live store, then again after `close()` + reopen with the same options.
 * Lifecycle and validation tests reopen explicitly, so they run in the "fresh" variants only.
 *
 * Each test has its own directory and stores; the combinations run concurrently (the suite waits
 * on fsync much more than it computes). After the matrix: regression tests of bugs the suites
 * found, each in one configuration.
 */
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { cpSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, vi } from 'vitest';
import { ArmdbError, VarMap, keys, type ArmdbErrorCode, type OpenOptions, type Transaction } from '../../src/index.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import type { FileSystem } from '../../src/io/file-system.js';
import { KEY_SIZE, openVarMap, optionsFor, patternBytes, storeTest as it, testKey, type StoreConfig } from '../helpers/store.js';

interface MatrixEntry extends StoreConfig {
  readonly name: string;
  readonly reopened: boolean;
}

const MIB = 2 ** 20;
const matrix: MatrixEntry[] = [];
for (const shards of [1, 4]) {
  for (const cacheBytes of [64 * MIB, 0]) {
    for (const cipher of ['node', 'noble'] as const) {
      for (const encryption of ['none', 'key', 'passphrase'] as const) {
        for (const reopened of [false, true]) {
          // Short enough (≤ 40 characters) that vitest does not truncate it in test names.
          const name = `${shards}sh cache${cacheBytes === 0 ? '0' : '64M'} ${cipher} ${encryption} ${reopened ? 'reopened' : 'fresh'}`;
          matrix.push({ name, collection: 'VarMap', shards, cacheBytes, cipher, encryption, reopened });
          // VarTree (same contract, ordered index) over the configurations where the index differs in
          // effect: both shard counts, cache on and off, fresh and reopened; one cipher, two modes.
          if (cipher === 'node' && encryption !== 'passphrase') {
            matrix.push({ name: `tree ${name}`, collection: 'VarTree', shards, cacheBytes, cipher, encryption, reopened });
          }
        }
      }
    }
  }
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
/** Key `n` of group `group`: the first byte is the group, so with shardPrefixBits 8 a group shares a shard. */
function key(n: number, group = 0): Uint8Array {
  const bytes = new Uint8Array(KEY_SIZE);
  bytes[0] = group;
  bytes.set(keys.u64(n), KEY_SIZE - 8);
  return bytes;
}

function withLastByte(fill: number, last: number): Uint8Array {
  const bytes = new Uint8Array(KEY_SIZE).fill(fill);
  bytes[KEY_SIZE - 1] = last;
  return bytes;
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

function expectCode(fn: () => unknown, code: ArmdbErrorCode): ArmdbError {
  const error = caught(fn);
  expect(error).toBeInstanceOf(ArmdbError);
  expect((error as ArmdbError).code).toBe(code);
  return error as ArmdbError;
}

async function expectRejectCode(promise: Promise<unknown>, code: ArmdbErrorCode): Promise<ArmdbError> {
  const error = await promise.then(
    () => new Error('expected the promise to reject'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ArmdbError);
  expect((error as ArmdbError).code).toBe(code);
  return error as ArmdbError;
}

/** One store of one test: `db` is replaced by `reopen()`. */
class Harness {
  readonly dir: string;
  readonly config: MatrixEntry;
  readonly extra: Partial<OpenOptions>;
  db: VarMap;

  private constructor(dir: string, config: MatrixEntry, extra: Partial<OpenOptions>, db: VarMap) {
    this.dir = dir;
    this.config = config;
    this.extra = extra;
    this.db = db;
  }

  static async create(dir: string, config: MatrixEntry, extra: Partial<OpenOptions> = {}): Promise<Harness> {
    return new Harness(dir, config, extra, await openVarMap(dir, config, extra));
  }

  async reopen(): Promise<VarMap> {
    await this.db.close();
    this.db = await openVarMap(this.dir, this.config, this.extra);
    return this.db;
  }

  /** Runs read assertions on the live store, and for the "reopened" variant again after a reopen. */
  async check(assertions: (db: VarMap) => void | Promise<void>): Promise<void> {
    await assertions(this.db);
    if (this.config.reopened) {
      await this.reopen();
      await assertions(this.db);
    }
  }
}

describe.concurrent.each(matrix)('$collection [$name]', (config) => {
  const open = (tempDir: () => string, extra: Partial<OpenOptions> = {}): Promise<Harness> => Harness.create(tempDir(), config, extra);

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
    lengths.forEach((length, index) => h.db.put(key(index), patternBytes(length, index)));
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
      lengths.forEach((length, index) => expect(Buffer.compare(h.db.get(key(index))!, patternBytes(length, index))).toBe(0));
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
    const valueOf = (n: number): Uint8Array => patternBytes(6000 + (n % 7) * 300, n);
    for (let n = 0; n < count; n++) h.db.put(key(n), valueOf(n));
    for (let n = 0; n < count; n += 7) h.db.delete(key(n));
    const stats = h.db.stats();
    expect(stats.rotations).toBeGreaterThanOrEqual(Math.max(2, config.shards));
    expect(stats.files).toBeGreaterThan(config.shards * 2);
    await h.check((db) => {
      expect(db.size).toBe(count - count / 7);
      for (let n = 0; n < count; n++) {
        if (n % 7 === 0) expect(db.has(key(n))).toBe(false);
        else expect(db.get(key(n))).toEqual(valueOf(n));
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
    expect(after.pagesSealed).toBeGreaterThan(before.pagesSealed);
    expect(after.bytesWritten).toBeGreaterThan(before.bytesWritten);
    expect(after.totalBytes).toBeGreaterThan(0);
    expect(after.deadBytes).toBeGreaterThan(0); // an overwrite, a delete and page padding
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
    // The cache counters move only when there is a cache.
    await h.db.sync();
    h.db.get(key(1));
    h.db.get(key(1));
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
        const rejection: unknown = await VarMap.open(h.dir, options as OpenOptions).then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(rejection, name).toBeInstanceOf(error);
        expect((rejection as Error).message).toContain(`"${name}"`);
      }
      // A bad open of a fresh directory creates nothing.
      const fresh = path.join(tempDir(), 'never-created');
      await expect(VarMap.open(fresh, { ...base, shards: 300 })).rejects.toThrow(RangeError);
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
      await expectRejectCode(db.sync(), 'ARMDB_CLOSED');
      await expectRejectCode(db.verify(), 'ARMDB_CLOSED');
      const reopened = await h.reopen();
      expect(reopened.get(key(1))).toEqual(text('one'));
      expect(reopened.size).toBe(1);
    });

    it('await using closes the store at the end of the scope', async ({ tempDir }) => {
      const dir = tempDir();
      let escaped: VarMap | undefined;
      {
        await using db = await openVarMap(dir, config);
        escaped = db;
        db.put(key(1), text('scoped'));
        expect(typeof db[Symbol.asyncDispose]).toBe('function');
      }
      expectCode(() => escaped.get(key(1)), 'ARMDB_CLOSED');
      // The lock was released and the write is durable.
      const db = await openVarMap(dir, config);
      expect(db.get(key(1))).toEqual(text('scoped'));
    });

    it('a second open of the same directory while open throws ARMDB_LOCKED', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('one'));
      await expectRejectCode(openVarMap(h.dir, config), 'ARMDB_LOCKED');
      await expectRejectCode(openVarMap(h.dir, config), 'ARMDB_LOCKED'); // the failed open released nothing
      // The same directory under another spelling is the same directory.
      await expectRejectCode(openVarMap(path.join(h.dir, '.', 'x', '..'), config), 'ARMDB_LOCKED');
      h.db.put(key(2), text('two'));
      await h.db.sync();
      await h.check((db) => {
        expect(db.get(key(1))).toEqual(text('one'));
        expect(db.get(key(2))).toEqual(text('two'));
      });
      await h.reopen(); // close releases the lock
      expect(h.db.size).toBe(2);
    });

    it('reopen with a different keySize, shards or shardPrefixBits throws ARMDB_FORMAT_MISMATCH', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('one'));
      await h.db.close();
      await expectRejectCode(openVarMap(h.dir, config, { keySize: 8 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(openVarMap(h.dir, config, { shards: config.shards === 1 ? 4 : 1 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(openVarMap(h.dir, config, { shards: 2 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(openVarMap(h.dir, config, { shardPrefixBits: 8 }), 'ARMDB_FORMAT_MISMATCH');
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(text('one'));
    });

    it.runIf(config.encryption !== 'none')('a wrong key or passphrase throws ARMDB_WRONG_KEY and changes nothing', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('secret'));
      await h.db.close();
      const wrong: OpenOptions['encryption'] =
        config.encryption === 'key' ? { key: testKey(2) } : { passphrase: 'incorrect horse', scryptLogN: 10 };
      await expectRejectCode(openVarMap(h.dir, config, { encryption: wrong }), 'ARMDB_WRONG_KEY');
      await expectRejectCode(openVarMap(h.dir, config, { encryption: wrong }), 'ARMDB_WRONG_KEY');
      // The other kind of secret does not open it either.
      const otherKind: OpenOptions['encryption'] =
        config.encryption === 'key' ? { passphrase: 'correct horse', scryptLogN: 10 } : { key: testKey(1) };
      const error = await openVarMap(h.dir, config, { encryption: otherKind }).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(ArmdbError);
      expect(['ARMDB_WRONG_KEY', 'ARMDB_FORMAT_MISMATCH']).toContain((error as ArmdbError).code);
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(text('secret'));
    });

    it('opening an encrypted store with none, or a none store with a key, throws ARMDB_FORMAT_MISMATCH', async ({ tempDir }) => {
      const h = await open(tempDir);
      h.db.put(key(1), text('one'));
      await h.db.close();
      if (config.encryption === 'none') {
        await expectRejectCode(openVarMap(h.dir, config, { encryption: { key: testKey(1) } }), 'ARMDB_FORMAT_MISMATCH');
        await expectRejectCode(
          openVarMap(h.dir, config, { encryption: { passphrase: 'correct horse', scryptLogN: 10 } }),
          'ARMDB_FORMAT_MISMATCH',
        );
      } else {
        await expectRejectCode(openVarMap(h.dir, config, { encryption: 'none' }), 'ARMDB_FORMAT_MISMATCH');
      }
      const db = await h.reopen();
      expect(db.get(key(1))).toEqual(text('one'));
    });

    it('a store written with one cipher provider reads back with the other', async ({ tempDir }) => {
      const h = await open(tempDir);
      for (let n = 0; n < 20; n++) h.db.put(key(n), patternBytes(500 + n * 300, n));
      await h.db.close();
      const other = await openVarMap(h.dir, config, { cipher: config.cipher === 'node' ? 'noble' : 'node' });
      for (let n = 0; n < 20; n++) expect(Buffer.compare(other.get(key(n))!, patternBytes(500 + n * 300, n))).toBe(0);
      expect((await other.verify()).ok).toBe(true);
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
      const copy = await openVarMap(image, config, { syncIntervalMs: 0 });
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
});

/** Regression tests of bugs these suites found (each reproduced in one configuration). */
describe('VarMap (one configuration)', () => {
  const config: MatrixEntry = { name: 'single', shards: 4, cacheBytes: 64 * MIB, cipher: 'node', encryption: 'key', reopened: false };

  it('Buffer keys are not modified by routing with a shardPrefixBits that is not a multiple of 8', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config, { shardPrefixBits: 4 });
    const original = Buffer.alloc(KEY_SIZE, 0xab);
    const routed = Buffer.from(original);
    db.put(routed, Buffer.from('routed'));
    expect(routed).toEqual(original);
    expect(db.get(original)).toEqual(text('routed'));
  });

  it('put copies a reused Buffer key and value', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config);
    const reusedKey = Buffer.alloc(KEY_SIZE, 0x01);
    const reusedValue = Buffer.alloc(4);
    for (let n = 1; n <= 3; n++) {
      reusedKey[KEY_SIZE - 1] = n;
      reusedValue.fill(0x60 + n);
      db.put(reusedKey, reusedValue);
    }
    for (let n = 1; n <= 3; n++) expect(db.get(withLastByte(0x01, n)), `put #${n}`).toEqual(new Uint8Array(4).fill(0x60 + n));
    expect(db.size).toBe(3);
  });

  it('tx.put inside atomic copies a reused Buffer key and value', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config, { shardPrefixBits: 8 });
    const reusedKey = Buffer.alloc(KEY_SIZE, 0x02);
    const reusedValue = Buffer.alloc(4);
    db.atomic(reusedKey, (tx) => {
      for (let n = 1; n <= 3; n++) {
        reusedKey[KEY_SIZE - 1] = n;
        reusedValue.fill(0x40 + n);
        tx.put(reusedKey, reusedValue);
      }
    });
    for (let n = 1; n <= 3; n++) expect(db.get(withLastByte(0x02, n)), `tx.put #${n}`).toEqual(new Uint8Array(4).fill(0x40 + n));
    expect(db.size).toBe(3);
  });

  it('a crash image with a torn unsynced write after a compaction still opens', async ({ tempDir }) => {
    // Found by test/property/var-map.model.test.ts (crash variant). One shard, pages written early.
    const single: StoreConfig = { shards: 1, cacheBytes: 0, cipher: 'node', encryption: 'key' };
    const extra = { writeBufferBytes: 4096, autoCompact: false };
    const dir = tempDir();
    let db = await openVarMap(dir, single, extra);
    db.put(key(0), patternBytes(9000, 1));
    db.put(key(0), text('small')); // file 1 is now mostly dead
    await db.close();
    db = await openVarMap(dir, single, extra);
    await db.compact(); // rewrites file 1 as a file with a higher id than the active file
    db.put(key(1), patternBytes(6000, 2));
    db.flush(); // the first page of that record reaches the OS, the rest does not
    const image = path.join(tempDir(), 'image');
    cpSync(dir, image, { recursive: true });
    const copy = await openVarMap(image, single, extra);
    expect(copy.get(key(0))).toEqual(text('small'));
    expect(copy.has(key(1))).toBe(false); // never synced, torn: discarded
    expect(copy.stats().recoveredTornBytes).toBeGreaterThan(0);
  });

  it('verify() with an already-aborted signal rejects even when there is nothing to verify', async ({ tempDir }) => {
    const db = await openVarMap(tempDir(), config);
    await expectRejectCode(db.verify({ signal: AbortSignal.abort() }), 'ARMDB_ABORTED');
  });
});

/** A FileSystem that counts bytes read from `.data` files (through the engine's test hook). */
function countingFileSystem(): { fileSystem: FileSystem; dataBytesRead: () => number } {
  let bytesRead = 0;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    open(filePath, mode) {
      const handle = nodeFileSystem.open(filePath, mode);
      if (!filePath.endsWith('.data')) return handle;
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'read') {
            return (buffer: Uint8Array, position: number): number => {
              const count = target.read(buffer, position);
              bytesRead += count;
              return count;
            };
          }
          const member: unknown = Reflect.get(target, property);
          return typeof member === 'function' ? (member as (...args: unknown[]) => unknown).bind(target) : member;
        },
      });
    },
  };
  return { fileSystem, dataBytesRead: () => bytesRead };
}

describe('VarMap read amplification', () => {
  // Each page of a multi-page value should be read (and authenticated) about once per get, with or
  // without a cache; reading it again for every later page would make a get quadratic in the value size.
  it.for([0, 64 * MIB])('reading a 512 KiB value with cacheBytes %i reads each page about once', async (cacheBytes, { tempDir }) => {
    const config: StoreConfig = { shards: 1, cacheBytes, cipher: 'node', encryption: 'key' };
    const counting = countingFileSystem();
    const options = withEngineHooks({ ...optionsFor(config) }, { fileSystem: counting.fileSystem });
    const dir = tempDir();
    const value = patternBytes(512 * 1024, 9);
    const writer = await VarMap.open(dir, options);
    writer.put(key(1), value);
    await writer.close();
    const db = await VarMap.open(dir, options);
    try {
      const before = counting.dataBytesRead();
      expect(db.get(key(1))).toEqual(value);
      const read = counting.dataBytesRead() - before;
      expect(read).toBeGreaterThanOrEqual(value.length);
      expect(read).toBeLessThanOrEqual(2 * value.length);
    } finally {
      await db.close();
    }
  });
});
