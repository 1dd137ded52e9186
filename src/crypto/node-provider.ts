/**
 * The `node` provider: node:crypto (OpenSSL). About 20× the pure-JS provider on this workload.
 *
 * `decipher.update()` returns plaintext before the tag is checked; it is kept inside `open()` and
 * wiped if `final()` rejects the tag (SPEC §5.1). `authTagLength: 16` is always passed so a
 * truncated tag can never be accepted.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { integrityError } from '../errors.js';
import { asPlainBytes } from '../format/bytes.js';
import { checkAeadArguments, GCM_TAG_BYTES, type Aead, type CryptoProvider } from './provider.js';

/** Stands in for the key (held in a KeyObject) when the nonce and tag lengths are checked. */
const KEY_LENGTH_ONLY = new Uint8Array(32);

class NodeAead implements Aead {
  readonly #key: KeyObject;

  constructor(key: Uint8Array) {
    checkAeadArguments(key, new Uint8Array(12));
    this.#key = createSecretKey(key);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): { ciphertext: Uint8Array; tag: Uint8Array } {
    checkAeadArguments(KEY_LENGTH_ONLY, nonce);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: GCM_TAG_BYTES });
    cipher.setAAD(aad);
    const head = cipher.update(plaintext);
    const tail = cipher.final();
    const ciphertext = tail.length === 0 ? head : Buffer.concat([head, tail]);
    return { ciphertext: asPlainBytes(ciphertext), tag: asPlainBytes(cipher.getAuthTag()) };
  }

  /** The key, for {@link aeadKeyObject}. */
  static keyOf(aead: NodeAead): KeyObject {
    return aead.#key;
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array {
    checkAeadArguments(KEY_LENGTH_ONLY, nonce, tag);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const unverified = decipher.update(ciphertext);
    try {
      const tail = decipher.final();
      return asPlainBytes(tail.length === 0 ? unverified : Buffer.concat([unverified, tail]));
    } catch (cause) {
      unverified.fill(0);
      throw integrityError('AES-GCM authentication failed', cause);
    }
  }
}

/**
 * The KeyObject behind an AEAD of this provider (undefined for any other), for the sealing worker
 * (src/crypto/seal-ring.ts), which receives it cloned through a MessagePort: the same key object, no
 * second copy of the key.
 */
export function aeadKeyObject(aead: Aead): KeyObject | undefined {
  return aead instanceof NodeAead ? NodeAead.keyOf(aead) : undefined;
}

export const nodeProvider: CryptoProvider = {
  name: 'node',
  aead: (key) => new NodeAead(key),
  hkdf: (inputKey, salt, info, length) => new Uint8Array(hkdfSync('sha256', inputKey, salt, info, length)),
  hmac: (key, message) => asPlainBytes(createHmac('sha256', key).update(message).digest()),
};
