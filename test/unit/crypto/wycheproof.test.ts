/**
 * Project Wycheproof known-answer and negative tests (vendored in test/fixtures/wycheproof, Apache-2.0)
 * against both crypto providers, through the same entry points the engine uses.
 *
 * AES-GCM: only the cases our {@link Aead} can express are run — 256-bit key, 96-bit IV, 128-bit tag.
 * The interface refuses other key and nonce sizes by design (the engine uses fixed 12-byte nonces).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ArmdbError } from '../../../src/errors.js';
import { nobleProvider } from '../../../src/crypto/noble-provider.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import type { CryptoProvider } from '../../../src/crypto/provider.js';

const FIXTURES = new URL('../../fixtures/wycheproof/', import.meta.url);

function loadVectors<T>(name: string): T {
  return JSON.parse(readFileSync(fileURLToPath(new URL(name, FIXTURES)), 'utf8')) as T;
}

type Result = 'valid' | 'invalid' | 'acceptable';

interface AeadCase {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly key: string;
  readonly iv: string;
  readonly aad: string;
  readonly msg: string;
  readonly ct: string;
  readonly tag: string;
  readonly result: Result;
}
interface AeadGroup {
  readonly keySize: number;
  readonly ivSize: number;
  readonly tagSize: number;
  readonly type: string;
  readonly tests: readonly AeadCase[];
}

interface HkdfCase {
  readonly tcId: number;
  readonly comment: string;
  readonly ikm: string;
  readonly salt: string;
  readonly info: string;
  readonly size: number;
  readonly okm: string;
  readonly result: Result;
}
interface HkdfGroup {
  readonly keySize: number;
  readonly type: string;
  readonly tests: readonly HkdfCase[];
}

interface MacCase {
  readonly tcId: number;
  readonly comment: string;
  readonly key: string;
  readonly msg: string;
  readonly tag: string;
  readonly result: Result;
}
interface MacGroup {
  readonly keySize: number;
  readonly tagSize: number;
  readonly type: string;
  readonly tests: readonly MacCase[];
}

interface VectorFile<G> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: readonly G[];
}

const aesGcm = loadVectors<VectorFile<AeadGroup>>('aes_gcm_test.json');
const hkdfSha256 = loadVectors<VectorFile<HkdfGroup>>('hkdf_sha256_test.json');
const hmacSha256 = loadVectors<VectorFile<MacGroup>>('hmac_sha256_test.json');

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** The error thrown by `action`, or undefined when it returned normally. */
function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

const isAeadApplicable = (group: AeadGroup): boolean =>
  group.type === 'AeadTest' && group.keySize === 256 && group.ivSize === 96 && group.tagSize === 128;
const aesGcmGroups = aesGcm.testGroups.filter(isAeadApplicable);
const aesGcmApplicableCount = aesGcmGroups.reduce((sum, group) => sum + group.tests.length, 0);

const isMacApplicable = (group: MacGroup): boolean => group.type === 'MacTest' && group.tagSize === 256;
const hmacGroups = hmacSha256.testGroups.filter(isMacApplicable);
const hmacApplicableCount = hmacGroups.reduce((sum, group) => sum + group.tests.length, 0);

const hkdfCount = hkdfSha256.testGroups.reduce((sum, group) => sum + group.tests.length, 0);

const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];

describe('vendored Wycheproof files', () => {
  it('are the expected files and hold the cases this suite relies on', () => {
    expect(aesGcm.algorithm).toBe('AES-GCM');
    expect(hkdfSha256.algorithm).toBe('HKDF-SHA-256');
    expect(hmacSha256.algorithm).toBe('HMACSHA256');
    // Counts of the vendored commit (see test/fixtures/wycheproof/README.md); a change means the
    // fixtures were replaced and the filters below should be re-checked.
    expect(aesGcmApplicableCount).toBe(66);
    expect(hkdfCount).toBe(hkdfSha256.numberOfTests);
    expect(hkdfCount).toBe(86);
    expect(hmacApplicableCount).toBe(87);
    // Both outcomes must be exercised, or a provider that accepts everything (or nothing) would pass.
    const aeadCases = aesGcmGroups.flatMap((group) => group.tests);
    expect(aeadCases.some((testCase) => testCase.result === 'valid')).toBe(true);
    expect(aeadCases.some((testCase) => testCase.result === 'invalid')).toBe(true);
    const macCases = hmacGroups.flatMap((group) => group.tests);
    expect(macCases.some((testCase) => testCase.result === 'valid')).toBe(true);
    expect(macCases.some((testCase) => testCase.result === 'invalid')).toBe(true);
    expect(hkdfSha256.testGroups.flatMap((group) => group.tests).some((testCase) => testCase.result === 'invalid')).toBe(true);
  });
});

describe.each(providers)('Wycheproof vectors through the $name provider', (provider) => {
  // Tests inside one file run in declaration order, so the tally checks below see every group.
  const ran = { aesGcm: 0, hkdf: 0, hmac: 0 };

  describe('AES-256-GCM (96-bit IV, 128-bit tag) via provider.aead', () => {
    it.each(aesGcmGroups.map((group, index) => ({ group, number: index + 1, size: group.tests.length })))(
      'group $number ($size cases)',
      ({ group }) => {
        for (const testCase of group.tests) {
          const where = `AES-GCM tcId ${testCase.tcId} (${testCase.result}${testCase.comment ? `: ${testCase.comment}` : ''})`;
          const key = fromHex(testCase.key);
          const nonce = fromHex(testCase.iv);
          const aad = fromHex(testCase.aad);
          const message = fromHex(testCase.msg);
          const ciphertext = fromHex(testCase.ct);
          const tag = fromHex(testCase.tag);
          const aead = provider.aead(key);

          if (testCase.result === 'valid') {
            const sealed = aead.seal(nonce, aad, message);
            expect(toHex(sealed.ciphertext), `${where}: ciphertext`).toBe(testCase.ct);
            expect(toHex(sealed.tag), `${where}: tag`).toBe(testCase.tag);
            const opened = aead.open(nonce, aad, ciphertext, tag);
            expect(toHex(opened), `${where}: opened plaintext`).toBe(testCase.msg);
          } else {
            // No 'acceptable' cases exist in this file; treat anything not valid as must-reject.
            const error = thrownBy(() => aead.open(nonce, aad, ciphertext, tag));
            expect(error, `${where}: open() must throw an ArmdbError`).toBeInstanceOf(ArmdbError);
            expect((error as ArmdbError).code, `${where}: error code`).toBe('ARMDB_INTEGRITY');
            // The invalidity of every applicable case is in the ciphertext/tag: sealing the message
            // must therefore not reproduce the (ciphertext, tag) pair that open() refused.
            const sealed = aead.seal(nonce, aad, message);
            const same = toHex(sealed.ciphertext) === testCase.ct && toHex(sealed.tag) === testCase.tag;
            expect(same, `${where}: seal() reproduced the invalid ciphertext and tag`).toBe(false);
          }
          ran.aesGcm++;
        }
      },
    );

    it('ran every applicable case', () => {
      expect(aesGcmApplicableCount).toBeGreaterThan(0);
      expect(ran.aesGcm).toBe(aesGcmApplicableCount);
    });
  });

  describe('HKDF-SHA256 via provider.hkdf', () => {
    it.each(hkdfSha256.testGroups.map((group, index) => ({ group, number: index + 1, size: group.tests.length, keySize: group.keySize })))(
      'group $number (ikm $keySize bits, $size cases)',
      ({ group }) => {
        for (const testCase of group.tests) {
          const where = `HKDF tcId ${testCase.tcId} (${testCase.result}${testCase.comment ? `: ${testCase.comment}` : ''})`;
          const derive = (): Uint8Array =>
            provider.hkdf(fromHex(testCase.ikm), fromHex(testCase.salt), fromHex(testCase.info), testCase.size);
          if (testCase.result === 'valid') {
            expect(toHex(derive()), where).toBe(testCase.okm);
          } else {
            expect(thrownBy(derive), `${where}: must throw`).toBeDefined();
          }
          ran.hkdf++;
        }
      },
    );

    it('ran every case', () => {
      expect(hkdfCount).toBeGreaterThan(0);
      expect(ran.hkdf).toBe(hkdfCount);
    });
  });

  describe('HMAC-SHA256 (256-bit tags) via provider.hmac', () => {
    it.each(hmacGroups.map((group, index) => ({ group, number: index + 1, size: group.tests.length, keySize: group.keySize })))(
      'group $number (key $keySize bits, $size cases)',
      ({ group }) => {
        for (const testCase of group.tests) {
          const where = `HMAC tcId ${testCase.tcId} (${testCase.result}${testCase.comment ? `: ${testCase.comment}` : ''})`;
          const mac = toHex(provider.hmac(fromHex(testCase.key), fromHex(testCase.msg)));
          if (testCase.result === 'valid') expect(mac, where).toBe(testCase.tag);
          else expect(mac, `${where}: must differ from the modified tag`).not.toBe(testCase.tag);
          ran.hmac++;
        }
      },
    );

    it('ran every applicable case', () => {
      expect(hmacApplicableCount).toBeGreaterThan(0);
      expect(ran.hmac).toBe(hmacApplicableCount);
    });
  });
});
