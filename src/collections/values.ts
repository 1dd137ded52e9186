/**
 * How a collection checks, encodes and decodes its values: raw bytes (Var*), exactly `valueSize`
 * bytes (Const*), or JS values through a codec (Typed*).
 */
import { checkBytes } from '../config.js';
import { armdbError } from '../errors.js';

/**
 * Turns values into bytes and back (SPEC §3). `decode` must accept every output of `encode`.
 *
 * @example
 * ```ts
 * const point: Codec<{ x: number; y: number }> = {
 *   encode: ({ x, y }) => new Uint8Array(new Float64Array([x, y]).buffer),
 *   decode: (bytes) => { const [x, y] = new Float64Array(bytes.slice().buffer); return { x: x!, y: y! }; },
 * };
 * ```
 */
export interface Codec<T> {
  /**
   * The bytes stored for `value`. Called on every write (and for the `expected` value of `cas`,
   * which compares encoded bytes), so it must be deterministic. Must return a `Uint8Array`; if it
   * throws or returns anything else the write fails with a TypeError and nothing is stored.
   */
  encode(value: T): Uint8Array;
  /**
   * The value of stored bytes (a fresh copy the codec may keep, whose `buffer` holds exactly these
   * bytes, at offset 0). Called once per entry at open and
   * after each read from disk. If it throws, the read or open fails with `ARMDB_FORMAT_MISMATCH`
   * (usually: the store was written with another codec).
   */
  decode(bytes: Uint8Array): T;
}

/** @internal */
export interface ValueHandler<V> {
  /** Checks a caller's value; returns the bytes to store. */
  encode(value: V): Uint8Array;
  /** Bytes from the store (a fresh copy the handler may keep) to the caller's value. */
  decode(bytes: Uint8Array): V;
}

function errorClass(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/** @internal */
export const bytesValues: ValueHandler<Uint8Array> = {
  encode: (value) => checkBytes('value', value),
  decode: (bytes) => bytes,
};

/** @internal */
export function fixedValues(valueSize: number): ValueHandler<Uint8Array> {
  return {
    encode: (value) => checkBytes('value', value, valueSize),
    decode: (bytes) => bytes,
  };
}

/** @internal A codec's failures become typed errors that name the collection. */
export function typedValues<T>(codec: Codec<T>, describe: () => string): ValueHandler<T> {
  return {
    encode(value) {
      let bytes: unknown;
      try {
        bytes = codec.encode(value);
      } catch (error) {
        // The message names only the class (a codec's own message may quote the value); the error
        // itself is the cause, for the caller who handed that value in and must see why it failed.
        throw new TypeError(`${describe()}: codec.encode threw a ${errorClass(error)}`, { cause: error });
      }
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`${describe()}: codec.encode must return a Uint8Array`);
      return bytes;
    },
    decode(bytes) {
      // A codec may view `bytes.buffer` (new Float64Array(bytes.buffer)): give it a buffer of its own,
      // never a slab shared with other values (copyOut).
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      try {
        return codec.decode(own);
      } catch (error) {
        // Never the codec's error as cause: a SyntaxError from JSON.parse quotes the stored bytes.
        throw armdbError(
          'ARMDB_FORMAT_MISMATCH',
          `${describe()}: codec.decode threw a ${errorClass(error)} on a stored value (was the store written with another codec?)`,
        );
      }
    },
  };
}

/** @internal */
export function checkCodec(codec: unknown): Codec<unknown> {
  if (
    typeof codec !== 'object' ||
    codec === null ||
    typeof (codec as Codec<unknown>).encode !== 'function' ||
    typeof (codec as Codec<unknown>).decode !== 'function'
  ) {
    throw new TypeError('"codec" expected { encode(value): Uint8Array; decode(bytes): value }');
  }
  return codec as Codec<unknown>;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Built-in codecs.
 *
 * @example
 * ```ts
 * const users = await TypedMap.open<{ name: string }>('./users', { keySize: 8, codec: codecs.json, encryption: { key } });
 * users.put(keys.u64(1), { name: 'Ada' });
 * ```
 */
export const codecs = Object.freeze({
  /** JSON text as UTF-8. `undefined` and functions are not representable (JSON's rules). */
  json: Object.freeze({
    encode: (value: unknown): Uint8Array => {
      const text = JSON.stringify(value);
      if (text === undefined) throw new TypeError('codecs.json cannot encode undefined');
      return textEncoder.encode(text);
    },
    decode: (bytes: Uint8Array): unknown => JSON.parse(textDecoder.decode(bytes)),
    // biome-ignore lint/suspicious/noExplicitAny: codecs.json serves any TypedMap<T>; Codec<unknown> would not be assignable to Codec<T>.
  }) as Codec<any>,
});
