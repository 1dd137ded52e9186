/**
 * ConstMap/ConstTree (fixed-size values held in memory) and TypedMap/TypedTree (JS values through a
 * codec): option and value validation, reads that never touch disk, immutable valueSize and
 * collection kind, codec round trips, and codec failures that leave the store intact.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ArmdbError,
  ConstMap,
  ConstTree,
  TypedMap,
  TypedTree,
  VarMap,
  VarTree,
  codecs,
  type ArmdbErrorCode,
  type Codec,
  type Collection,
  type ConstOpenOptions,
} from '../../../src/index.js';
import { hex } from '../../helpers/bytes.js';
import { expectCode } from '../../helpers/errors.js';
import { storesClosedAfterEach } from '../../helpers/temp-dir.js';

const ENCRYPTION_KEY = new Uint8Array(32).map((_, index) => (index * 29 + 1) & 0xff);
const KEY_SIZE = 8;
const base = { keySize: KEY_SIZE, encryption: { key: ENCRYPTION_KEY }, syncIntervalMs: 0, shards: 2, autoCompact: false } as const;

const keyOf = (n: number): Uint8Array => {
  const key = new Uint8Array(KEY_SIZE);
  new DataView(key.buffer).setUint32(4, n);
  return key;
};
const valueFor = (n: number, size = 4): Uint8Array => {
  const bytes = new Uint8Array(size).fill(n & 0xff);
  if (size >= 4) new DataView(bytes.buffer).setUint32(0, n);
  return bytes;
};

const { tempDir, track } = storesClosedAfterEach('const-typed');

async function expectRejectCode(promise: Promise<unknown>, code: ArmdbErrorCode): Promise<ArmdbError> {
  let caught: unknown;
  try {
    const opened = await promise;
    track(opened as { close(): Promise<void> });
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(ArmdbError);
  expect((caught as ArmdbError).code).toBe(code);
  return caught as ArmdbError;
}

// ---- Const collections -------------------------------------------------------------------------

type ConstOpener = (directory: string, options: ConstOpenOptions) => Promise<Collection<Uint8Array>>;
const constKinds: readonly [string, ConstOpener][] = [
  ['ConstMap', (directory, options) => ConstMap.open(directory, options)],
  ['ConstTree', (directory, options) => ConstTree.open(directory, options)],
];

for (const [name, open] of constKinds) {
  describe(name, () => {
    it('enforces valueSize on every write path; a refused write stores nothing', async () => {
      const db = track(await open(tempDir(), { ...base, valueSize: 4 }));
      const key = keyOf(1);
      for (const size of [0, 3, 5, 64]) {
        expect(() => db.put(key, new Uint8Array(size))).toThrow(RangeError);
        expect(() => db.insert(key, new Uint8Array(size))).toThrow(RangeError);
      }
      for (const wrong of ['abcd', [1, 2, 3, 4], undefined, null, 1234, new ArrayBuffer(4), new Uint16Array(2)]) {
        expect(() => db.put(key, wrong as unknown as Uint8Array)).toThrow(TypeError);
      }
      expect(() => db.atomic(key, (tx) => tx.put(key, new Uint8Array(5)))).toThrow(RangeError);
      expect(db.size).toBe(0);
      expect(db.has(key)).toBe(false);

      db.put(key, valueFor(7));
      expect(() => db.update(key, () => new Uint8Array(2))).toThrow(RangeError);
      expect(() => db.fetchUpdate(key, () => new Uint8Array(8))).toThrow(RangeError);
      expect(() => db.cas(key, valueFor(7), new Uint8Array(3))).toThrow(RangeError);
      expect(() =>
        db.atomic(key, (tx) => {
          tx.put(keyOf(2), valueFor(2));
          tx.put(key, new Uint8Array(6));
        }),
      ).toThrow(RangeError);
      expect(hex(db.get(key)!)).toBe(hex(valueFor(7)));
      expect(db.has(keyOf(2))).toBe(false);
      expect(db.size).toBe(1);
      // Exactly valueSize bytes (any Uint8Array view) is fine.
      const backing = new Uint8Array(10).fill(9);
      db.put(keyOf(3), backing.subarray(3, 7));
      expect(hex(db.get(keyOf(3))!)).toBe('09090909');
    });

    it('valueSize is required, an integer, 1..65536', async () => {
      const directory = tempDir();
      const { valueSize: _omitted, ...withoutValueSize } = { ...base, valueSize: 4 };
      await expect(open(directory, withoutValueSize as ConstOpenOptions)).rejects.toThrow(TypeError);
      await expect(open(directory, { ...base, valueSize: '4' as unknown as number })).rejects.toThrow(TypeError);
      await expect(open(directory, { ...base, valueSize: 2.5 })).rejects.toThrow(TypeError);
      await expect(open(directory, { ...base, valueSize: Number.NaN })).rejects.toThrow(TypeError);
      await expect(open(directory, { ...base, valueSize: 0 })).rejects.toThrow(RangeError);
      await expect(open(directory, { ...base, valueSize: -4 })).rejects.toThrow(RangeError);
      await expect(open(directory, { ...base, valueSize: 65_537 })).rejects.toThrow(RangeError);
      // The refused opens created nothing that gets in the way.
      const small = track(await open(directory, { ...base, valueSize: 1 }));
      small.put(keyOf(1), Uint8Array.of(0xab));
      expect(hex(small.get(keyOf(1))!)).toBe('ab');
      const largest = track(await open(tempDir(), { ...base, valueSize: 65_536 }));
      largest.put(keyOf(1), valueFor(5, 65_536));
      expect(largest.get(keyOf(1))!.length).toBe(65_536);
    });

    it('get returns what was put, before and after sync and reopen; copies the caller may mutate', async () => {
      const directory = tempDir();
      const db = await open(directory, { ...base, valueSize: 4 });
      for (let n = 0; n < 300; n++) db.put(keyOf(n), valueFor(n * 3));
      db.delete(keyOf(5));
      await db.sync();
      for (let n = 0; n < 300; n++) expect(hex(db.get(keyOf(n)) ?? new Uint8Array(0))).toBe(n === 5 ? '' : hex(valueFor(n * 3)));
      const copy = db.get(keyOf(1))!;
      copy.fill(0);
      expect(hex(db.get(keyOf(1))!)).toBe(hex(valueFor(3)));
      await db.close();
      const reopened = track(await open(directory, { ...base, valueSize: 4 }));
      expect(reopened.size).toBe(299);
      for (let n = 0; n < 300; n++) expect(hex(reopened.get(keyOf(n)) ?? new Uint8Array(0))).toBe(n === 5 ? '' : hex(valueFor(n * 3)));
    });

    it('reads never go to the block cache or disk: cache counters stay unchanged after reopen', async () => {
      const directory = tempDir();
      const options = { ...base, valueSize: 16, cacheBytes: 1 << 20 };
      const writer = await open(directory, options);
      for (let n = 0; n < 2000; n++) writer.put(keyOf(n), valueFor(n, 16));
      await writer.sync();
      await writer.close();
      const db = track(await open(directory, options));
      const before = db.stats();
      for (let round = 0; round < 3; round++) for (let n = 0; n < 2000; n++) expect(db.get(keyOf(n))![15]).toBe(n & 0xff);
      expect(db.getMany([keyOf(1), keyOf(99_999), keyOf(1999)]).map((value) => (value === undefined ? undefined : value.length))).toEqual([
        16,
        undefined,
        16,
      ]);
      if (db instanceof ConstTree) {
        expect([...db.range()].length).toBe(2000);
        expect([...db.values({ reverse: true })].length).toBe(2000);
      }
      const after = db.stats();
      expect(after.gets).toBeGreaterThan(before.gets);
      expect(after.cacheMisses).toBe(before.cacheMisses);
      expect(after.cacheHits).toBe(before.cacheHits);
      expect(after.cacheMisses).toBe(0);
    });

    it('reopening with another valueSize or as another collection kind is ARMDB_FORMAT_MISMATCH, and harmless', async () => {
      const directory = tempDir();
      const db = await open(directory, { ...base, valueSize: 4 });
      db.put(keyOf(1), valueFor(1));
      await db.close();
      await expectRejectCode(open(directory, { ...base, valueSize: 8 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(open(directory, { ...base, valueSize: 3 }), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(VarMap.open(directory, base), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(VarTree.open(directory, base), 'ARMDB_FORMAT_MISMATCH');
      await expectRejectCode(TypedMap.open(directory, { ...base, codec: codecs.json }), 'ARMDB_FORMAT_MISMATCH');
      const other = name === 'ConstMap' ? ConstTree : ConstMap;
      await expectRejectCode(other.open(directory, { ...base, valueSize: 4 }), 'ARMDB_FORMAT_MISMATCH');
      // None of the refusals kept the lock or damaged the store.
      const again = track(await open(directory, { ...base, valueSize: 4 }));
      expect(hex(again.get(keyOf(1))!)).toBe(hex(valueFor(1)));
      expect(again.size).toBe(1);
    });
  });
}

it('a VarMap directory opened as a ConstMap is ARMDB_FORMAT_MISMATCH', async () => {
  const directory = tempDir();
  const db = await VarMap.open(directory, base);
  db.put(keyOf(1), valueFor(1));
  await db.close();
  await expectRejectCode(ConstMap.open(directory, { ...base, valueSize: 4 }), 'ARMDB_FORMAT_MISMATCH');
  const again = track(await VarMap.open(directory, base));
  expect(hex(again.get(keyOf(1))!)).toBe(hex(valueFor(1)));
});

it('cache counters do move for VarMap reads (the measurement above is meaningful)', async () => {
  const directory = tempDir();
  const options = { ...base, cacheBytes: 1 << 20 };
  const writer = await VarMap.open(directory, options);
  for (let n = 0; n < 2000; n++) writer.put(keyOf(n), valueFor(n, 16));
  await writer.close();
  const db = track(await VarMap.open(directory, options));
  const before = db.stats();
  for (let n = 0; n < 2000; n++) db.get(keyOf(n));
  expect(db.stats().cacheMisses).toBeGreaterThan(before.cacheMisses);
});

// ---- Typed collections -------------------------------------------------------------------------

type TypedOpener = <T>(directory: string, codec: Codec<T>) => Promise<Collection<T>>;
const typedKinds: readonly [string, TypedOpener][] = [
  ['TypedMap', (directory, codec) => TypedMap.open(directory, { ...base, codec })],
  ['TypedTree', (directory, codec) => TypedTree.open(directory, { ...base, codec })],
];

const JSON_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  42,
  Math.PI,
  -1e-300,
  Number.MAX_SAFE_INTEGER,
  '',
  'plain',
  'üñíçødé ✓ 𝄞 and "quotes" \\ and \n newlines',
  [],
  [1, 'two', null, [3, [4]], { five: 5 }],
  {},
  { name: 'Ada', admin: true, tags: ['a', 'b'], nested: { deep: { deeper: [1, 2, 3] } }, empty: null },
  { 'key with spaces': 1, '': 'empty key', ünï: 'x' },
  'x'.repeat(10_000),
  Array.from({ length: 500 }, (_, index) => ({ index, even: index % 2 === 0 })),
];

interface Point {
  readonly x: number;
  readonly y: number;
}

/** A custom binary codec: two float64s, little-endian. */
const pointCodec: Codec<Point> = {
  encode: ({ x, y }) => {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setFloat64(0, x, true);
    view.setFloat64(8, y, true);
    return bytes;
  },
  decode: (bytes) => {
    if (bytes.length !== 16) throw new RangeError('a point is 16 bytes');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    return { x: view.getFloat64(0, true), y: view.getFloat64(8, true) };
  },
};

for (const [name, open] of typedKinds) {
  describe(name, () => {
    it('round-trips JSON values through codecs.json, across reopen', async () => {
      const directory = tempDir();
      const db = await open<unknown>(directory, codecs.json);
      for (const [index, value] of JSON_VALUES.entries()) db.put(keyOf(index), value);
      for (const [index, value] of JSON_VALUES.entries()) expect(db.get(keyOf(index))).toEqual(value);
      db.put(keyOf(3), { replaced: true });
      db.delete(keyOf(4));
      await db.close();
      const reopened = track(await open<unknown>(directory, codecs.json));
      expect(reopened.size).toBe(JSON_VALUES.length - 1);
      JSON_VALUES.forEach((value, index) => {
        if (index === 3) expect(reopened.get(keyOf(index))).toEqual({ replaced: true });
        else if (index === 4) expect(reopened.get(keyOf(index))).toBeUndefined();
        else expect(reopened.get(keyOf(index)), `value ${index}`).toEqual(value);
      });
      if (reopened instanceof TypedTree) {
        expect([...reopened.keys()].length).toBe(JSON_VALUES.length - 1);
        expect(reopened.first()![1]).toEqual(null);
      }
    });

    it('round-trips through a custom codec, across reopen', async () => {
      const directory = tempDir();
      const db = await open(directory, pointCodec);
      const points: Point[] = [
        { x: 0, y: 0 },
        { x: -1.5, y: 2.25 },
        { x: Number.MAX_VALUE, y: Number.MIN_VALUE },
        { x: Infinity, y: -Infinity },
      ];
      for (const [index, point] of points.entries()) db.put(keyOf(index), point);
      db.update(keyOf(1), (point) => ({ x: point.x * 2, y: point.y * 2 }));
      expect(db.get(keyOf(1))).toEqual({ x: -3, y: 4.5 });
      expectCode(() => db.cas(keyOf(0), { x: 1, y: 1 }, { x: 2, y: 2 }), 'ARMDB_CAS_MISMATCH');
      expectCode(() => db.cas(keyOf(9), { x: 0, y: 0 }, { x: 2, y: 2 }), 'ARMDB_KEY_NOT_FOUND');
      db.cas(keyOf(0), { x: 0, y: 0 }, { x: 7, y: 8 });
      await db.close();
      const reopened = track(await open(directory, pointCodec));
      expect(reopened.get(keyOf(0))).toEqual({ x: 7, y: 8 });
      expect(reopened.get(keyOf(1))).toEqual({ x: -3, y: 4.5 });
      expect(reopened.get(keyOf(2))).toEqual(points[2]);
      expect(reopened.get(keyOf(3))).toEqual(points[3]);
      const nan = reopened.fetchUpdate(keyOf(3), () => ({ x: Number.NaN, y: 0 }));
      expect(nan).toEqual(points[3]);
      expect(Number.isNaN(reopened.get(keyOf(3))!.x)).toBe(true);
    });

    it('decode receives bytes whose buffer is their own (a codec may view bytes.buffer), for values of every size', async () => {
      const directory = tempDir();
      // Float64 arrays of 1..600 numbers (8..4800 bytes): the range where returned bytes share slabs.
      const floats: Codec<number[]> = {
        encode: (numbers) => new Uint8Array(Float64Array.from(numbers).buffer),
        decode: (bytes) => {
          expect(bytes.byteOffset).toBe(0);
          expect(bytes.buffer.byteLength).toBe(bytes.length);
          return [...new Float64Array(bytes.buffer)];
        },
      };
      const arrays = Array.from({ length: 60 }, (_, index) => Array.from({ length: 1 + index * 10 }, (_, at) => at * 1.5 + index));
      const db = await open(directory, floats);
      for (const [index, numbers] of arrays.entries()) db.put(keyOf(index), numbers);
      await db.close();
      const reopened = track(await open(directory, floats));
      for (const [index, numbers] of arrays.entries()) expect(reopened.get(keyOf(index))).toEqual(numbers);
    });

    it('get returns the stored object itself on repeated gets, a new one after an overwrite', async () => {
      const directory = tempDir();
      const db = await open<{ n: number }>(directory, codecs.json);
      db.put(keyOf(1), { n: 1 });
      const first = db.get(keyOf(1));
      expect(first).toEqual({ n: 1 });
      expect(db.get(keyOf(1))).toBe(first);
      db.put(keyOf(1), { n: 2 });
      const second = db.get(keyOf(1));
      expect(second).toEqual({ n: 2 });
      expect(db.get(keyOf(1))).toBe(second);
      await db.close();
      const reopened = track(await open<{ n: number }>(directory, codecs.json));
      const afterOpen = reopened.get(keyOf(1));
      expect(afterOpen).toEqual({ n: 2 });
      expect(reopened.get(keyOf(1))).toBe(afterOpen);
      if (reopened instanceof TypedTree) expect([...reopened.values()][0]).toBe(afterOpen);
    });

    it('a codec whose decode throws at open: ARMDB_FORMAT_MISMATCH naming the class and directory; store intact, lock released', async () => {
      const directory = tempDir();
      const db = await open<unknown>(directory, codecs.json);
      for (let n = 0; n < 20; n++) db.put(keyOf(n), { n });
      await db.close();
      const failure = new Error('not my format');
      const broken: Codec<unknown> = {
        encode: (value) => codecs.json.encode(value),
        decode: () => {
          throw failure;
        },
      };
      const error = await expectRejectCode(open(directory, broken), 'ARMDB_FORMAT_MISMATCH');
      expect(error.message).toContain(name);
      expect(error.message).toContain(path.resolve(directory));
      // The codec's own error is not passed on: it may quote the stored value (docs/security-model.md).
      expect(error.cause).toBeUndefined();
      expect(error.message).toContain(failure.name);
      // Again: still not ARMDB_LOCKED (the failed open released the lock).
      await expectRejectCode(open(directory, broken), 'ARMDB_FORMAT_MISMATCH');
      const reopened = track(await open<unknown>(directory, codecs.json));
      expect(reopened.size).toBe(20);
      for (let n = 0; n < 20; n++) expect(reopened.get(keyOf(n))).toEqual({ n });
    });

    it('a codec whose encode throws or returns a non-Uint8Array: TypeError, nothing stored', async () => {
      const directory = tempDir();
      const failure = new Error('cannot encode');
      let mode: 'ok' | 'throw' | 'string' | 'array' | 'buffer' = 'ok';
      const flaky: Codec<{ n: number }> = {
        encode: (value) => {
          if (mode === 'throw') throw failure;
          if (mode === 'string') return 'bytes' as unknown as Uint8Array;
          if (mode === 'array') return [1, 2, 3] as unknown as Uint8Array;
          if (mode === 'buffer') return new ArrayBuffer(3) as unknown as Uint8Array;
          return codecs.json.encode(value);
        },
        decode: (bytes) => codecs.json.decode(bytes) as { n: number },
      };
      const db = await open(directory, flaky);
      db.put(keyOf(1), { n: 1 });
      for (const bad of ['throw', 'string', 'array', 'buffer'] as const) {
        mode = bad;
        const attempts: (() => unknown)[] = [
          () => db.put(keyOf(2), { n: 2 }),
          () => db.insert(keyOf(3), { n: 3 }),
          () => db.put(keyOf(1), { n: 100 }),
          () => db.update(keyOf(1), () => ({ n: 101 })),
          () => db.fetchUpdate(keyOf(1), () => ({ n: 102 })),
          () => db.atomic(keyOf(4), (tx) => tx.put(keyOf(4), { n: 4 })),
        ];
        for (const attempt of attempts) {
          let caught: unknown;
          try {
            attempt();
          } catch (error) {
            caught = error;
          }
          expect(caught, `${bad}`).toBeInstanceOf(TypeError);
          if (bad === 'throw') {
            expect((caught as TypeError).cause).toBe(failure);
            expect((caught as TypeError).message).toContain(failure.name);
          }
        }
      }
      mode = 'ok';
      expect(db.size).toBe(1);
      expect(db.get(keyOf(1))).toEqual({ n: 1 });
      for (const n of [2, 3, 4]) expect(db.has(keyOf(n))).toBe(false);
      await db.close();
      const reopened = track(await open(directory, flaky));
      expect(reopened.size).toBe(1);
      expect(reopened.get(keyOf(1))).toEqual({ n: 1 });
    });

    it('refuses a missing or malformed codec with TypeError', async () => {
      const directory = tempDir();
      await expect(open(directory, undefined as unknown as Codec<unknown>)).rejects.toThrow(TypeError);
      await expect(open(directory, { encode: codecs.json.encode } as unknown as Codec<unknown>)).rejects.toThrow(TypeError);
      await expect(open(directory, 'json' as unknown as Codec<unknown>)).rejects.toThrow(TypeError);
    });
  });
}

describe('codecs.json', () => {
  it('encodes to UTF-8 JSON and decodes it back', () => {
    for (const value of JSON_VALUES) expect(codecs.json.decode(codecs.json.encode(value))).toEqual(value);
    expect(new TextDecoder().decode(codecs.json.encode({ a: [1, 'é'] }))).toBe('{"a":[1,"é"]}');
  });

  it('cannot encode undefined (or a bare function); TypedMap.put of undefined is a TypeError', async () => {
    expect(() => codecs.json.encode(undefined)).toThrow(TypeError);
    expect(() => codecs.json.encode(() => 1)).toThrow(TypeError);
    const db = track(await TypedMap.open<unknown>(tempDir(), { ...base, codec: codecs.json }));
    expect(() => db.put(keyOf(1), undefined)).toThrow(TypeError);
    expect(db.has(keyOf(1))).toBe(false);
  });

  it('refuses bytes that are not UTF-8 JSON', () => {
    expect(() => codecs.json.decode(Uint8Array.of(0xff, 0xfe))).toThrow();
    expect(() => codecs.json.decode(new TextEncoder().encode('{"a":'))).toThrow();
  });
});
