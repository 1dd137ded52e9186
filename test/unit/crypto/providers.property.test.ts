/**
 * The two providers must write identical bytes (a store sealed by one is opened by the other) and
 * must both reject any single-bit change of ciphertext, tag or AAD.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArmdbError } from '../../../src/errors.js';
import { nobleProvider } from '../../../src/crypto/noble-provider.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import type { CryptoProvider } from '../../../src/crypto/provider.js';
import { hex } from '../../helpers/bytes.js';

const RUNS = 200;
/** A fixed seed keeps runs reproducible; set FC_SEED to explore other inputs. */
const SEED = process.env['FC_SEED'] === undefined ? 0x41524d44 : Number(process.env['FC_SEED']);
const fcOptions = { numRuns: RUNS, seed: SEED } as const;
const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];

const bytes = (minLength: number, maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength, maxLength });

const aeadInput = fc.record({
  key: bytes(32, 32),
  nonce: bytes(12, 12),
  aad: bytes(0, 64),
  plaintext: bytes(0, 4096),
});

/** The error thrown by `action`, or undefined when it returned normally. */
function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

function flipBit(source: Uint8Array, bit: number): Uint8Array {
  const copy = source.slice();
  copy[bit >>> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('node and noble providers agree', () => {
  it(`AES-256-GCM: identical ciphertext and tag, and each opens the other's output (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(aeadInput, ({ key, nonce, aad, plaintext }) => {
        const node = nodeProvider.aead(key);
        const noble = nobleProvider.aead(key);
        const byNode = node.seal(nonce, aad, plaintext);
        const byNoble = noble.seal(nonce, aad, plaintext);
        expect(byNode.ciphertext.length).toBe(plaintext.length);
        expect(byNode.tag.length).toBe(16);
        expect(hex(byNode.ciphertext)).toBe(hex(byNoble.ciphertext));
        expect(hex(byNode.tag)).toBe(hex(byNoble.tag));
        expect(hex(noble.open(nonce, aad, byNode.ciphertext, byNode.tag))).toBe(hex(plaintext));
        expect(hex(node.open(nonce, aad, byNoble.ciphertext, byNoble.tag))).toBe(hex(plaintext));
        expect(hex(node.open(nonce, aad, byNode.ciphertext, byNode.tag))).toBe(hex(plaintext));
        expect(hex(noble.open(nonce, aad, byNoble.ciphertext, byNoble.tag))).toBe(hex(plaintext));
      }),
      fcOptions,
    );
  });

  it(`AES-256-GCM: one flipped bit of ciphertext, tag or AAD is ARMDB_INTEGRITY on both (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(aeadInput, fc.nat(), ({ key, nonce, aad, plaintext }, bitSeed) => {
        const { ciphertext, tag } = nodeProvider.aead(key).seal(nonce, aad, plaintext);
        // One bit position drawn uniformly over ciphertext ‖ tag ‖ AAD (the tag is never empty).
        const ciphertextBits = ciphertext.length * 8;
        const tagBits = tag.length * 8;
        const bit = bitSeed % (ciphertextBits + tagBits + aad.length * 8);
        let input = { ciphertext, tag, aad };
        if (bit < ciphertextBits) input = { ...input, ciphertext: flipBit(ciphertext, bit) };
        else if (bit < ciphertextBits + tagBits) input = { ...input, tag: flipBit(tag, bit - ciphertextBits) };
        else input = { ...input, aad: flipBit(aad, bit - ciphertextBits - tagBits) };

        for (const provider of providers) {
          let opened: Uint8Array | undefined;
          const error = thrownBy(() => {
            opened = provider.aead(key).open(nonce, input.aad, input.ciphertext, input.tag);
          });
          expect(opened, `${provider.name} returned plaintext for flipped bit ${bit}`).toBeUndefined();
          expect(error, `${provider.name}, flipped bit ${bit}`).toBeInstanceOf(ArmdbError);
          expect((error as ArmdbError).code).toBe('ARMDB_INTEGRITY');
        }
      }),
      fcOptions,
    );
  });

  it('AES-256-GCM: every single-bit flip of a small sealed unit is ARMDB_INTEGRITY on both (exhaustive)', () => {
    const key = Uint8Array.from({ length: 32 }, (_, index) => index * 7 + 1);
    const nonce = Uint8Array.from({ length: 12 }, (_, index) => 0xf0 - index);
    const aad = new TextEncoder().encode('aad bytes');
    const plaintext = new TextEncoder().encode('sixteen byte msg');
    const sealed = nobleProvider.aead(key).seal(nonce, aad, plaintext);
    const parts = { ciphertext: sealed.ciphertext, tag: sealed.tag, aad } as const;
    let checked = 0;
    for (const part of ['ciphertext', 'tag', 'aad'] as const) {
      for (let bit = 0; bit < parts[part].length * 8; bit++) {
        const input = { ...parts, [part]: flipBit(parts[part], bit) };
        for (const provider of providers) {
          const error = thrownBy(() => provider.aead(key).open(nonce, input.aad, input.ciphertext, input.tag));
          expect(error, `${provider.name}: ${part} bit ${bit}`).toBeInstanceOf(ArmdbError);
          expect((error as ArmdbError).code, `${provider.name}: ${part} bit ${bit}`).toBe('ARMDB_INTEGRITY');
          checked++;
        }
      }
    }
    expect(checked).toBe(2 * 8 * (plaintext.length + 16 + aad.length));
  });

  it(`HKDF-SHA256: identical output (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(
        bytes(0, 128),
        bytes(0, 128),
        // node:crypto caps info at 1024 bytes; the engine's infos are a few dozen bytes.
        bytes(0, 256),
        fc.integer({ min: 1, max: 255 * 32 }),
        (inputKey, salt, info, length) => {
          const byNode = nodeProvider.hkdf(inputKey, salt, info, length);
          const byNoble = nobleProvider.hkdf(inputKey, salt, info, length);
          expect(byNode.length).toBe(length);
          expect(hex(byNode)).toBe(hex(byNoble));
        },
      ),
      fcOptions,
    );
  });

  it(`HMAC-SHA256: identical output (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(bytes(0, 200), bytes(0, 4096), (key, message) => {
        const byNode = nodeProvider.hmac(key, message);
        expect(byNode.length).toBe(32);
        expect(hex(byNode)).toBe(hex(nobleProvider.hmac(key, message)));
      }),
      fcOptions,
    );
  });
});
