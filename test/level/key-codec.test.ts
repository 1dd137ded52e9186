/**
 * The Level key encoding (src/level/key-codec.ts) against a sorted model: random byte strings,
 * encoded into keySize bytes, sort exactly as the strings do bytewise, decode back to themselves, and
 * range bounds longer than the capacity order stored keys as the long bound itself would. Both
 * length-field widths (1 byte up to keySize 256, 2 bytes above). Deterministic seeds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LevelError } from '../../src/level/errors.js';
import { decodeLevelKey, encodeBound, encodeLevelKey, levelKeyCapacity, lengthFieldBytes } from '../../src/level/key-codec.js';

const compare = (left: Uint8Array, right: Uint8Array): number => Buffer.compare(left, right);
const sign = (value: number): number => Math.sign(value);

/** Byte strings biased towards the cases that matter: zero bytes, shared prefixes, empty strings. */
const bytesUpTo = (maxLength: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength }),
    fc.array(fc.constantFrom(0, 1, 0xff), { maxLength: Math.min(maxLength, 6) }).map((values) => Uint8Array.from(values)),
  );

describe.each([2, 3, 16, 64, 128, 256, 257, 300])('keySize %i', (keySize) => {
  const capacity = levelKeyCapacity(keySize);

  it('capacity is keySize minus the length field', () => {
    expect(capacity).toBe(keySize - (keySize <= 256 ? 1 : 2));
    expect(lengthFieldBytes(keySize)).toBe(keySize <= 256 ? 1 : 2);
  });

  it('encoded keys sort as the keys do, and decode to the keys', () => {
    fc.assert(
      fc.property(fc.array(bytesUpTo(capacity), { maxLength: 40 }), (keys) => {
        const model = [...keys].sort(compare);
        const encoded = keys.map((key) => encodeLevelKey(key, keySize));
        for (const key of encoded) expect(key.length).toBe(keySize);
        const sorted = [...encoded].sort(compare).map((key) => decodeLevelKey(key));
        expect(sorted.map((key) => Buffer.from(key).toString('hex'))).toEqual(model.map((key) => Buffer.from(key).toString('hex')));
      }),
      { seed: 0x1e7e1 + keySize, numRuns: 200 },
    );
  });

  it('pairwise: the order of two encoded keys is the order of the keys', () => {
    fc.assert(
      fc.property(bytesUpTo(capacity), bytesUpTo(capacity), (left, right) => {
        expect(sign(compare(encodeLevelKey(left, keySize), encodeLevelKey(right, keySize)))).toBe(sign(compare(left, right)));
      }),
      { seed: 0x0dde + keySize, numRuns: 500 },
    );
  });

  it('a bound longer than the capacity orders stored keys as the bound itself does', () => {
    const longBound = fc.uint8Array({ minLength: capacity + 1, maxLength: capacity + 8 });
    fc.assert(
      fc.property(bytesUpTo(capacity), longBound, fc.boolean(), fc.boolean(), (key, bound, exclusive, isLower) => {
        const encodedBound = encodeBound(bound, exclusive, isLower, keySize);
        const order = compare(encodeLevelKey(key, keySize), encodedBound.key);
        const satisfies = isLower
          ? order > 0 || (order === 0 && !encodedBound.exclusive)
          : order < 0 || (order === 0 && !encodedBound.exclusive);
        const modelOrder = compare(key, bound); // never 0: the bound is longer than any stored key
        expect(satisfies).toBe(isLower ? modelOrder > 0 : modelOrder < 0);
      }),
      { seed: 0xb0d + keySize, numRuns: 500 },
    );
  });

  it(`refuses a key of ${capacity + 1} bytes with LEVEL_INVALID_KEY naming the limit`, () => {
    expect(encodeLevelKey(new Uint8Array(capacity).fill(7), keySize).length).toBe(keySize);
    let caught: unknown;
    try {
      encodeLevelKey(new Uint8Array(capacity + 1), keySize);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(LevelError);
    expect((caught as LevelError).code).toBe('LEVEL_INVALID_KEY');
    expect((caught as LevelError).message).toContain(`longer than ${capacity} bytes`);
    expect((caught as LevelError).message).toContain(`keySize ${keySize}`);
  });
});
