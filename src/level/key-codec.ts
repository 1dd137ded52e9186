/**
 * Order-preserving encoding of Level's variable-length keys into armdb's fixed `keySize` bytes
 * (docs/level.md §Keys): the key's bytes, zero padding, then the key's length, big-endian, in the
 * last one byte (`keySize` ≤ 256) or two bytes (larger `keySize`).
 *
 * Why bytewise order survives: two keys that differ at a position inside both compare there, as
 * they do unencoded. When one key is a prefix of the other, the longer one holds bytes ≥ 0 where the
 * shorter one holds padding; if those bytes are all zero too, the comparison reaches the length
 * field, where the shorter key is smaller — as it is unencoded. So `encode` is injective and
 * monotonic, and a range over encoded keys holds exactly the encoded keys of the Level range.
 */
import { levelError } from './errors.js';

/** Bytes of the length field at the end of an encoded key of `keySize` bytes. */
export function lengthFieldBytes(keySize: number): number {
  return keySize <= 256 ? 1 : 2;
}

/** Longest Level key (in bytes) that fits into `keySize` bytes: `keySize` minus the length field. */
export function levelKeyCapacity(keySize: number): number {
  return keySize - lengthFieldBytes(keySize);
}

/**
 * `key` encoded into `keySize` bytes. A key longer than {@link levelKeyCapacity} is refused with
 * `LEVEL_INVALID_KEY`, whose message names the limit.
 */
export function encodeLevelKey(key: Uint8Array, keySize: number): Uint8Array {
  const capacity = levelKeyCapacity(keySize);
  if (key.length > capacity) {
    throw levelError(
      'LEVEL_INVALID_KEY',
      `a ${key.length}-byte key is longer than ${capacity} bytes, the most an ArmdbLevel with keySize ${keySize} stores (keySize minus ${lengthFieldBytes(keySize)} length byte${lengthFieldBytes(keySize) === 1 ? '' : 's'}); open it with a larger keySize`,
    );
  }
  const encoded = new Uint8Array(keySize);
  encoded.set(key);
  writeLength(encoded, key.length);
  return encoded;
}

/** The Level key of an encoded key: a view into `encoded` (the caller owns the copy). */
export function decodeLevelKey(encoded: Uint8Array): Uint8Array {
  const keySize = encoded.length;
  const length = lengthFieldBytes(keySize) === 1 ? encoded[keySize - 1]! : (encoded[keySize - 2]! << 8) | encoded[keySize - 1]!;
  // A constructor call, not subarray(): subarray's species lookup was 6 % of a Level scan.
  return new Uint8Array(encoded.buffer, encoded.byteOffset, length);
}

/** A range bound in encoded form: a key and whether the bound itself is excluded. */
export interface EncodedBound {
  readonly key: Uint8Array;
  readonly exclusive: boolean;
}

/**
 * A range bound given as a Level key, encoded. A bound longer than the capacity cannot be stored,
 * but it still orders stored keys: with `T` its first `capacity` bytes, a stored key `k` (never
 * longer than `capacity`) is below the bound exactly when `k ≤ T`, and above it exactly when `k > T`.
 * So `lt`/`lte` of a long bound become `lte T`, and `gt`/`gte` become `gt T`.
 */
export function encodeBound(bound: Uint8Array, exclusive: boolean, isLower: boolean, keySize: number): EncodedBound {
  const capacity = levelKeyCapacity(keySize);
  if (bound.length <= capacity) return { key: encodeLevelKey(bound, keySize), exclusive };
  return { key: encodeLevelKey(bound.subarray(0, capacity), keySize), exclusive: isLower };
}

function writeLength(encoded: Uint8Array, length: number): void {
  const keySize = encoded.length;
  if (lengthFieldBytes(keySize) === 1) encoded[keySize - 1] = length;
  else {
    encoded[keySize - 2] = length >>> 8;
    encoded[keySize - 1] = length & 0xff;
  }
}
