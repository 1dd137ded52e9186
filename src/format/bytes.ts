/**
 * Little-endian field access with bounds checks, shared by every codec in format/.
 * Reads past the end of a buffer raise ARMDB_INTEGRITY, never a RangeError from a DataView, so a
 * truncated file is reported as what it is.
 */
import { timingSafeEqual } from 'node:crypto';
import { markAsUntransferable } from 'node:worker_threads';
import { assert } from '../assert.js';
import { integrityError } from '../errors.js';

const TWO_POW_32 = 2 ** 32;

/** Writes `value`, a safe non-negative integer, as a u64 little-endian field at `at` of `view`. */
export function setU64(view: DataView, at: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, 'u64 field out of range: a safe non-negative integer');
  view.setUint32(at, value % TWO_POW_32, true);
  view.setUint32(at + 4, Math.floor(value / TWO_POW_32), true);
}

/** A cursor over bytes read from disk. Every read is checked against the end of the buffer. */
export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private position: number;
  private readonly what: string;

  constructor(bytes: Uint8Array, what: string, position = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.position = position;
    this.what = what;
  }

  get offset(): number {
    return this.position;
  }

  get remaining(): number {
    return this.bytes.length - this.position;
  }

  private take(length: number): number {
    if (length > this.remaining) {
      throw integrityError(`${this.what} is truncated: needed ${length} bytes at offset ${this.position}, ${this.remaining} left`);
    }
    const at = this.position;
    this.position += length;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.take(1));
  }

  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }

  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  /** A u64 that must fit in a JS number (< 2^53); larger values are an integrity error. */
  u64(): number {
    const at = this.take(8);
    const low = this.view.getUint32(at, true);
    const high = this.view.getUint32(at + 4, true);
    if (high > 0x1fffff) throw integrityError(`${this.what} has a 64-bit field beyond 2^53 at offset ${at}`);
    return high * TWO_POW_32 + low;
  }

  /** A view (not a copy) of the next `length` bytes. */
  bytesView(length: number): Uint8Array {
    const at = this.take(length);
    return this.bytes.subarray(at, at + length);
  }

  /** A copy of the next `length` bytes. */
  copy(length: number): Uint8Array {
    return this.bytesView(length).slice();
  }

  /** Reserved bytes must be zero so that a later version can give them a meaning. */
  zeros(length: number): void {
    const at = this.take(length);
    for (let index = at; index < at + length; index++) {
      if (this.bytes[index] !== 0) throw integrityError(`${this.what} has non-zero reserved byte at offset ${index}`);
    }
  }

  end(): void {
    if (this.remaining !== 0) throw integrityError(`${this.what} has ${this.remaining} unexpected trailing bytes`);
  }
}

/** A cursor that fills a pre-sized buffer. Writing past its end is a bug, not bad input. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private position: number;

  constructor(length: number) {
    this.bytes = new Uint8Array(length);
    this.view = new DataView(this.bytes.buffer);
    this.position = 0;
  }

  get offset(): number {
    return this.position;
  }

  private take(length: number): number {
    assert(this.position + length <= this.bytes.length, 'ByteWriter overflow: fields fit the buffer sized for them');
    const at = this.position;
    this.position += length;
    return at;
  }

  u8(value: number): this {
    this.view.setUint8(this.take(1), value);
    return this;
  }

  u16(value: number): this {
    this.view.setUint16(this.take(2), value, true);
    return this;
  }

  u32(value: number): this {
    this.view.setUint32(this.take(4), value, true);
    return this;
  }

  u64(value: number): this {
    setU64(this.view, this.take(8), value);
    return this;
  }

  raw(bytes: Uint8Array, expectedLength = bytes.length): this {
    // The message names the lengths, so it is built only when the check fails.
    if (bytes.length !== expectedLength) assert(false, `field expected ${expectedLength} bytes, got ${bytes.length}`);
    this.bytes.set(bytes, this.take(bytes.length));
    return this;
  }

  zeros(length: number): this {
    this.take(length);
    return this;
  }

  /** Returns the filled buffer; every byte must have been written. */
  finish(): Uint8Array {
    assert(this.position === this.bytes.length, 'ByteWriter underfilled: every byte of the buffer is written');
    return this.bytes;
  }
}

/**
 * A real copy of `bytes` as a plain Uint8Array. (`Buffer.prototype.slice` returns a view, so
 * `.slice()` on a caller's Buffer would alias it.)
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

/** Bytes of one slab of {@link copyOut}. */
export const SLAB_BYTES = 8192;
/** Largest typed array V8 keeps inside its heap (`V8_TYPED_ARRAY_MAX_SIZE_IN_HEAP`). */
const ON_HEAP_MAX_BYTES = 64;
let slab = new ArrayBuffer(0);
let slabOffset = 0;

/**
 * A fresh copy of `bytes` for a caller to keep and mutate, as a plain Uint8Array. V8 gives a typed
 * array of more than 64 bytes memory of its own outside the heap, which costs about five times the
 * copy; so copies of 65 bytes to 4 KiB are carved, 8-aligned, out of shared 8 KiB slabs, as Node's
 * `Buffer.allocUnsafe` does with its pool. Each copy is its own range: writing to it changes nothing
 * else. Its `buffer` is the slab, which may hold other values this process read; and a slab stays in
 * memory while any copy in it is referenced. Smaller and larger copies get memory of their own.
 */
export function copyOut(bytes: Uint8Array): Uint8Array {
  const copy = allocOut(bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * A zero-filled array of `length` bytes for a caller to keep, from the same slabs as {@link copyOut}
 * (65 bytes to 4 KiB; other lengths get memory of their own): for a copy assembled from pieces.
 */
export function allocOut(length: number): Uint8Array {
  if (length <= ON_HEAP_MAX_BYTES || length > SLAB_BYTES / 2) return new Uint8Array(length);
  if (slabOffset + length > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    // Transferring a slab (postMessage with a transfer list) would detach every other value in it:
    // Node copies an untransferable buffer instead, as it does for its own Buffer pool.
    markAsUntransferable(slab);
    slabOffset = 0;
  }
  const copy = new Uint8Array(slab, slabOffset, length);
  slabOffset += (length + 7) & ~7;
  return copy;
}

/** A plain Uint8Array over the same memory as `bytes` (turns node's Buffers into arrays whose slice() copies). */
export function asPlainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Whether `left` and `right` hold the same bytes: armdb's one byte comparison, for MACs, digests,
 * magic numbers, secrets, keys and values alike. The content is compared in constant time (OpenSSL's
 * `CRYPTO_memcmp` through `timingSafeEqual`), so a MAC check does not reveal how many leading bytes
 * matched; being native, it is also fast on long values. Lengths are not secret and are compared first.
 */
export function equalBytes(left: Uint8Array, right: Uint8Array): boolean {
  return left.length === right.length && timingSafeEqual(left, right);
}

export function isAllZero(bytes: Uint8Array): boolean {
  for (let index = 0; index < bytes.length; index++) if (bytes[index] !== 0) return false;
  return true;
}
