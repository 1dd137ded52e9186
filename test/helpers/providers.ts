/**
 * Key providers for tests of the provider contract (src/crypto/keys.ts `KeyProvider`): an in-process
 * AES-256-GCM "KMS" whose root key never leaves its closure, and ones that misbehave on purpose.
 * The PKCS#11 provider is tested against a real SoftHSM2 token (test/security/pkcs11.test.ts).
 * Not a test file itself (no `.test.ts` suffix).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyProvider } from '../../src/index.js';

export interface MemoryProvider {
  readonly provider: KeyProvider;
  /** The root key, for the test's secret search only. */
  readonly rootKey: Uint8Array;
  /** Every KEK handed to wrap(), for the test's secret search only. */
  readonly wrappedKeks: Uint8Array[];
  /** Calls of unwrap() so far. */
  unwrapCalls: number;
}

/** A provider that seals the KEK with AES-256-GCM under a random root key it keeps to itself. */
export function memoryProvider(id = 'memory-kms'): MemoryProvider {
  const rootKey = new Uint8Array(randomBytes(32));
  const state: MemoryProvider = {
    rootKey,
    wrappedKeks: [],
    unwrapCalls: 0,
    provider: {
      id,
      async wrap(kek) {
        state.wrappedKeks.push(kek.slice());
        const nonce = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', rootKey, nonce);
        const sealed = Buffer.concat([cipher.update(kek), cipher.final()]);
        return new Uint8Array(Buffer.concat([nonce, sealed, cipher.getAuthTag()]));
      },
      async unwrap(blob) {
        state.unwrapCalls++;
        const decipher = createDecipheriv('aes-256-gcm', rootKey, blob.subarray(0, 12));
        decipher.setAuthTag(blob.subarray(blob.length - 16));
        return new Uint8Array(Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]));
      },
    },
  };
  return state;
}

/** `base` with unwrap() replaced. */
export function withUnwrap(base: KeyProvider, unwrap: KeyProvider['unwrap']): KeyProvider {
  return { id: base.id, wrap: (kek) => base.wrap(kek), unwrap };
}
