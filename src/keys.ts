import { Limits } from './format/constants.js';

/**
 * Helpers that build fixed-size keys. Keys compare bytewise, so big-endian integers sort numerically.
 *
 * @example
 * ```ts
 * import { keys } from 'armdb';
 * keys.u64(42);                  // 8 bytes, big-endian
 * keys.fromString('alice', 16);  // UTF-8, zero-padded to 16 bytes
 * ```
 */
export const keys = Object.freeze({
  /** An unsigned 64-bit integer as 8 big-endian bytes. */
  u64(value: number | bigint): Uint8Array {
    const big = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : undefined;
    if (big === undefined) throw new TypeError(`"value" expected safe integer or bigint, got ${String(value)}`);
    if (big < 0n || big > 0xffff_ffff_ffff_ffffn) throw new RangeError(`"value" expected integer 0..2^64-1, got ${big}`);
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, big, false);
    return bytes;
  },

  /** `text` as UTF-8, zero-padded to `size` bytes; RangeError if it is longer. */
  fromString(text: string, size: number): Uint8Array {
    if (typeof text !== 'string') throw new TypeError('"text" expected string');
    if (!Number.isInteger(size) || size < 1 || size > Limits.maxKeyBytes)
      throw new RangeError(`"size" expected integer 1..${Limits.maxKeyBytes}, got ${size}`);
    const encoded = new TextEncoder().encode(text);
    if (encoded.length > size) throw new RangeError(`"text" is ${encoded.length} bytes of UTF-8, longer than the key size ${size}`);
    const bytes = new Uint8Array(size);
    bytes.set(encoded);
    return bytes;
  },
});
