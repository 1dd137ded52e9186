/**
 * Byte helpers of the test suites: hex rendering, comparison by content, and deterministic
 * recognisable bytes and test keys. Not a test file itself (no `.test.ts` suffix).
 */
import { createHash } from 'node:crypto';

/** Lowercase hex of exactly the viewed bytes (a subarray renders only its own range). */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Equal content, whatever the class (Buffer or Uint8Array); `undefined` equals only `undefined`. */
export function sameBytes(left: Uint8Array | undefined, right: Uint8Array | undefined): boolean {
  if (left === undefined || right === undefined) return left === right;
  return left.length === right.length && Buffer.compare(left, right) === 0;
}

/** Deterministic pseudo-random bytes (not secret; recognisable, non-repeating content). */
export function patternBytes(length: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = (Math.imul(seed, 2654435761) + 1) >>> 0;
  for (let index = 0; index < length; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

/** A deterministic 32-byte key for tests (never a real secret); different seeds give different keys. */
export function testKey(seed = 1): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`armdb test key ${seed}`).digest());
}
