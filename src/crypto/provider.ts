/**
 * The cryptographic primitives behind one interface, with two providers that must agree byte for
 * byte: `node` (node:crypto, OpenSSL — the fast default) and `noble` (@noble/ciphers and
 * @noble/hashes — audited pure JS, for platforms where OpenSSL is unwanted or unavailable).
 */
import { integrityError } from '../errors.js';

/** AES-256-GCM under one key, 12-byte nonces, 16-byte tags. */
export interface Aead {
  /** Encrypts; the ciphertext has the plaintext's length. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): { ciphertext: Uint8Array; tag: Uint8Array };
  /**
   * Decrypts and verifies. Returns plaintext only after the tag verified; otherwise throws
   * ARMDB_INTEGRITY and no byte of the unverified plaintext leaves this call.
   */
  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array;
}

export interface CryptoProvider {
  readonly name: CipherName;
  aead(key: Uint8Array): Aead;
  hkdf(inputKey: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  hmac(key: Uint8Array, message: Uint8Array): Uint8Array;
}

/** The `cipher` option: which provider seals pages. Both write identical bytes. */
export type CipherName = 'node' | 'noble';

export const NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

export function checkAeadArguments(key: Uint8Array, nonce: Uint8Array, tag?: Uint8Array): void {
  if (key.length !== 32) throw new RangeError(`AES-256-GCM key expected 32 bytes, got ${key.length}`);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`AES-GCM nonce expected ${NONCE_BYTES} bytes, got ${nonce.length}`);
  if (tag !== undefined && tag.length !== GCM_TAG_BYTES)
    throw integrityError(`AES-GCM tag expected ${GCM_TAG_BYTES} bytes, got ${tag.length}`);
}
