import { PAGE_BYTES } from '../format/constants.js';

/**
 * Ciphertext read from disk is only ever input of `FileCipher.open`, which returns new arrays (node:crypto
 * and noble decrypt into fresh memory; without encryption `open` returns a copy), and it is not secret:
 * reads of up to 64 pages share one buffer instead of allocating (and zeroing) one each time.
 */
const SCRATCH_BYTES = 64 * PAGE_BYTES;
let scratch: Uint8Array | undefined;
export function ciphertextScratch(bytes: number): Uint8Array {
  if (bytes > SCRATCH_BYTES) return new Uint8Array(bytes);
  scratch ??= new Uint8Array(SCRATCH_BYTES);
  return scratch.subarray(0, bytes);
}
