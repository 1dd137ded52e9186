/**
 * What ArmdbLevel adds beyond abstract-level's suite (test/level/suite.test.ts): the key length
 * limit, batches that apply all or nothing, the implicit snapshot of an iterator checked against a
 * model while random writes go on, armdb errors under Level codes with the armdb error as cause,
 * encryption options passed through, and no plaintext on disk.
 */
import fc from 'fast-check';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ArmdbError } from '../../src/index.js';
import { ArmdbLevel, type ArmdbLevelOptions } from '../../src/level/index.js';
import { testKey } from '../helpers/bytes.js';
import { storesClosedAfterEach } from '../helpers/temp-dir.js';

const { tempDir, track } = storesClosedAfterEach('level');
const KEY = testKey(18);

function openLevel(directory: string, options: Partial<ArmdbLevelOptions> = {}): ArmdbLevel {
  return track(new ArmdbLevel(directory, { encryption: { key: KEY }, syncIntervalMs: 0, ...options }));
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  const outcome = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(outcome, 'expected a rejection').toBeInstanceOf(Error);
  return outcome as Error & { code?: string; cause?: unknown };
}

describe('key length limit', () => {
  it('stores keys of up to keySize − 1 bytes and refuses longer ones with LEVEL_INVALID_KEY naming the limit', async () => {
    const db = openLevel(tempDir());
    await db.open();
    expect(db.keySize).toBe(64);
    expect(db.maxKeyBytes).toBe(63);
    await db.put('k'.repeat(63), 'fits');
    expect(await db.get('k'.repeat(63))).toBe('fits');
    const error = await rejection(db.put('k'.repeat(64), 'too long'));
    expect(error.code).toBe('LEVEL_INVALID_KEY');
    expect(error.message).toContain('longer than 63 bytes');
    expect(error.message).toContain('keySize 64');
    // A key that cannot be stored is simply absent for reads and deletes.
    expect(await db.get('k'.repeat(64))).toBeUndefined();
    expect(await db.has('k'.repeat(64))).toBe(false);
    expect(await db.getMany(['k'.repeat(64), 'k'.repeat(63)])).toEqual([undefined, 'fits']);
    await db.del('k'.repeat(64));
    // UTF-8 bytes count, and a sublevel's prefix is part of the key.
    expect((await rejection(db.put('é'.repeat(32), 'x'))).code).toBe('LEVEL_INVALID_KEY');
    const sublevel = db.sublevel('s'); // prefix "!s!": 3 bytes
    await sublevel.put('k'.repeat(60), 'fits');
    expect((await rejection(sublevel.put('k'.repeat(61), 'x'))).code).toBe('LEVEL_INVALID_KEY');
  });

  it('a larger keySize holds longer keys; it is immutable once the store exists', async () => {
    const directory = tempDir();
    const db = openLevel(directory, { keySize: 300 });
    await db.put('k'.repeat(298), 'fits');
    expect((await rejection(db.put('k'.repeat(299), 'x'))).code).toBe('LEVEL_INVALID_KEY');
    await db.close();
    const other = openLevel(directory, { keySize: 64 });
    const error = await rejection(other.open());
    expect(error.code).toBe('LEVEL_DATABASE_NOT_OPEN');
    expect((error.cause as ArmdbError).code).toBe('ARMDB_FORMAT_MISMATCH');
  });

  it('keySize and shards are checked at construction', () => {
    expect(() => new ArmdbLevel(tempDir(), { encryption: { key: KEY }, keySize: 1 })).toThrow(RangeError);
    expect(() => new ArmdbLevel(tempDir(), { encryption: { key: KEY }, keySize: 1.5 })).toThrow(TypeError);
    expect(() => new ArmdbLevel(tempDir(), { encryption: { key: KEY }, shards: 4 as 1 })).toThrow(/"shards" expected 1/);
  });
});

describe('batch', () => {
  it('applies every operation or, when one key is too long, none of them', async () => {
    const directory = tempDir();
    const db = openLevel(directory);
    await db.batch([
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: 'b', value: '2' },
    ]);
    const error = await rejection(
      db.batch([
        { type: 'del', key: 'a' },
        { type: 'put', key: 'c', value: '3' },
        { type: 'put', key: 'x'.repeat(100), value: 'too long' },
      ]),
    );
    expect(error.code).toBe('LEVEL_INVALID_KEY');
    expect(await db.getMany(['a', 'b', 'c'])).toEqual(['1', '2', undefined]);
    const chained = db.batch().del('a').put('c', '3').put('b', '4');
    await chained.write({ sync: true });
    await db.close();
    const reopened = openLevel(directory);
    expect(await reopened.iterator().all()).toEqual([
      ['b', '4'],
      ['c', '3'],
    ]);
  });

  it('refuses a batch with a value above maxValueBytes as LEVEL_INVALID_VALUE, applying nothing', async () => {
    const db = openLevel(tempDir(), { maxValueBytes: 8 });
    await db.put('a', 'small');
    const error = await rejection(
      db.batch([
        { type: 'put', key: 'a', value: 'changed' },
        { type: 'put', key: 'b', value: 'way too large' },
      ]),
    );
    expect(error.code).toBe('LEVEL_INVALID_VALUE');
    expect((error.cause as ArmdbError).code).toBe('ARMDB_VALUE_TOO_LARGE');
    expect(await db.iterator().all()).toEqual([['a', 'small']]);
  });
});

/** Keys from a small alphabet with shared prefixes and a zero byte, so order and padding matter. */
const KEYS = ['a', 'a\u0000', 'a\u0000\u0000', 'aa', 'ab', 'b', 'ba', 'c', 'c\u0000', 'd'] as const;
const byteOrder = (left: string, right: string): number => Buffer.compare(Buffer.from(left), Buffer.from(right));

type Write =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'del'; key: string }
  | { kind: 'batch'; operations: { key: string; value: string | undefined }[] }
  | { kind: 'clear'; from: string };
type Step = { kind: 'next' } | { kind: 'seek'; target: string } | Write;

const keyArbitrary = fc.constantFrom<string>(...KEYS);
const valueArbitrary = fc.string({ minLength: 0, maxLength: 6 }).map((text) => `v${text}`);
const writeArbitrary: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), key: keyArbitrary, value: valueArbitrary }),
  fc.record({ kind: fc.constant('del' as const), key: keyArbitrary }),
  fc.record({
    kind: fc.constant('batch' as const),
    operations: fc.array(fc.record({ key: keyArbitrary, value: fc.option(valueArbitrary, { nil: undefined }) }), {
      minLength: 1,
      maxLength: 4,
    }),
  }),
  fc.record({ kind: fc.constant('clear' as const), from: keyArbitrary }),
);
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'next' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('seek' as const), target: fc.constantFrom<string>(...KEYS, 'a\u0000\u0000\u0000', 'bb') }),
  },
  { weight: 3, arbitrary: writeArbitrary },
);

async function applyWrite(db: ArmdbLevel, model: Map<string, string>, write: Write): Promise<void> {
  if (write.kind === 'put') {
    await db.put(write.key, write.value);
    model.set(write.key, write.value);
  } else if (write.kind === 'del') {
    await db.del(write.key);
    model.delete(write.key);
  } else if (write.kind === 'batch') {
    await db.batch(
      write.operations.map(({ key, value }) =>
        value === undefined ? { type: 'del' as const, key } : { type: 'put' as const, key, value },
      ),
    );
    for (const { key, value } of write.operations) value === undefined ? model.delete(key) : model.set(key, value);
  } else {
    await db.clear({ gte: write.from });
    for (const key of [...model.keys()]) if (byteOrder(key, write.from) >= 0) model.delete(key);
  }
}

describe('implicit snapshot of an iterator', () => {
  it('yields the entries of the moment it was created, in order, whatever is written meanwhile (model)', async () => {
    const directory = tempDir();
    const db = openLevel(directory);
    await db.open();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(keyArbitrary, valueArbitrary), { maxLength: 8 }),
        fc.record({
          gte: fc.option(keyArbitrary, { nil: undefined }),
          lt: fc.option(keyArbitrary, { nil: undefined }),
          reverse: fc.boolean(),
          mode: fc.constantFrom('entries', 'keys', 'values'),
        }),
        fc.array(stepArbitrary, { maxLength: 24 }),
        async (initial, range, steps) => {
          const sublevel = db.sublevel(`run${run++}`);
          const model = new Map<string, string>();
          for (const [key, value] of initial) model.set(key, value);
          await sublevel.batch([...model].map(([key, value]) => ({ type: 'put' as const, key, value })));
          const options = {
            ...(range.gte === undefined ? {} : { gte: range.gte }),
            ...(range.lt === undefined ? {} : { lt: range.lt }),
            reverse: range.reverse,
          };
          const inRange = (key: string): boolean =>
            (range.gte === undefined || byteOrder(key, range.gte) >= 0) && (range.lt === undefined || byteOrder(key, range.lt) < 0);
          const direction = range.reverse ? -1 : 1;
          const snapshot = [...model].filter(([key]) => inRange(key)).sort(([left], [right]) => direction * byteOrder(left, right));
          const iterator =
            range.mode === 'entries'
              ? sublevel.iterator(options)
              : range.mode === 'keys'
                ? sublevel.keys(options)
                : sublevel.values(options);
          // Model position: the next entry lies beyond `position` (at it, when `inclusive`).
          let position: string | undefined;
          let inclusive = false;
          try {
            for (const step of steps) {
              if (step.kind === 'next') {
                const expected = snapshot.find(
                  ([key]) => position === undefined || direction * byteOrder(key, position) > 0 || (inclusive && key === position),
                );
                const actual = await iterator.next();
                if (expected === undefined) expect(actual).toBeUndefined();
                else {
                  expect(actual).toEqual(range.mode === 'entries' ? expected : range.mode === 'keys' ? expected[0] : expected[1]);
                  position = expected[0];
                  inclusive = false;
                }
              } else if (step.kind === 'seek') {
                iterator.seek(step.target);
                position = step.target;
                inclusive = true;
              } else await applyWrite(sublevel as unknown as ArmdbLevel, model, step);
            }
          } finally {
            await iterator.close();
          }
          // After the iterator closed, reads see the writes.
          expect(await sublevel.iterator().all()).toEqual([...model].sort(([left], [right]) => byteOrder(left, right)));
        },
      ),
      { seed: 0x5a9, numRuns: 150 },
    );
  });
});

describe('errors', () => {
  it('a second open of the directory: LEVEL_DATABASE_NOT_OPEN caused by LEVEL_LOCKED caused by ARMDB_LOCKED', async () => {
    const directory = tempDir();
    await openLevel(directory).open();
    const error = await rejection(openLevel(directory).open());
    expect(error.code).toBe('LEVEL_DATABASE_NOT_OPEN');
    const locked = error.cause as Error & { code: string; cause: unknown };
    expect(locked.code).toBe('LEVEL_LOCKED');
    expect(locked.cause).toBeInstanceOf(ArmdbError);
    expect((locked.cause as ArmdbError).code).toBe('ARMDB_LOCKED');
  });

  it('a wrong key: LEVEL_DATABASE_NOT_OPEN with ARMDB_WRONG_KEY as cause; createIfMissing and errorIfExists', async () => {
    const directory = tempDir();
    const db = openLevel(directory);
    await db.put('a', '1');
    await db.close();
    const wrong = openLevel(directory, { encryption: { key: testKey(19) } });
    const error = await rejection(wrong.open());
    expect(error.code).toBe('LEVEL_DATABASE_NOT_OPEN');
    expect((error.cause as ArmdbError).code).toBe('ARMDB_WRONG_KEY');
    expect((await rejection(openLevel(directory, { errorIfExists: true }).open())).cause).toMatchObject({ message: /already exists/ });
    expect((await rejection(openLevel(tempDir(), { createIfMissing: false }).open())).cause).toMatchObject({ message: /does not exist/ });
    expect(await openLevel(directory).get('a')).toBe('1');
  });

  it('operations on a closed database reject with LEVEL_DATABASE_NOT_OPEN', async () => {
    const db = openLevel(tempDir());
    await db.put('a', '1');
    await db.close();
    expect((await rejection(db.get('a'))).code).toBe('LEVEL_DATABASE_NOT_OPEN');
    expect((await rejection(db.put('a', '2'))).code).toBe('LEVEL_DATABASE_NOT_OPEN');
  });
});

describe('encryption', () => {
  it('passes encryption options through: a passphrase store opens with it, and no plaintext reaches the disk', async () => {
    const directory = tempDir();
    const passphrase = new TextEncoder().encode('correct horse');
    const options = { encryption: { passphrase, scryptLogN: 10 } };
    const db = openLevel(directory, options);
    const marker = 'PLAINTEXT-MARKER-0123456789';
    await db.put(`key-${marker}`, `value-${marker}`);
    await db.close();
    for (const name of readdirSync(directory, { recursive: true }) as string[]) {
      const path = join(directory, name);
      if (statSync(path).isFile()) expect(readFileSync(path).includes(marker), name).toBe(false);
    }
    expect(await openLevel(directory, options).get(`key-${marker}`)).toBe(`value-${marker}`);
  });

  it('keeps the key out of what inspect, JSON and the postopen hook show', async () => {
    const key = new Uint8Array(32).fill(0xa7);
    const db = openLevel(tempDir(), { encryption: { key } });
    let hookOptions: unknown;
    db.hooks.postopen.add(async (options) => {
      hookOptions = options;
    });
    await db.open();
    const shown = [inspect(db, { depth: 8, showHidden: true }), inspect(hookOptions, { depth: 8, showHidden: true })];
    for (const text of shown) {
      expect(text).not.toContain('167, 167, 167');
      expect(text).not.toContain('a7a7a7a7');
      expect(text).not.toContain('encryption');
    }
  });
});
