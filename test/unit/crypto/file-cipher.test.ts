/**
 * FileCipher: per-file keys, nonces and AAD (src/crypto/file-cipher.ts), for both page algorithms and
 * both crypto providers.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ArmdbError } from '../../../src/errors.js';
import { FileCipher, setSealObserver, type SealObserver } from '../../../src/crypto/file-cipher.js';
import { nobleProvider } from '../../../src/crypto/noble-provider.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import type { CryptoProvider } from '../../../src/crypto/provider.js';
import { Algorithm, FileKind, PAGE_BYTES, TAG_BYTES, type AlgorithmId } from '../../../src/format/constants.js';
import type { FileIdentity } from '../../../src/format/tag-file.js';
import { hex } from '../../helpers/bytes.js';

const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];
const algorithms: readonly { readonly name: string; readonly algorithm: AlgorithmId }[] = [
  { name: 'aes256gcm', algorithm: Algorithm.aes256gcm },
  { name: 'none', algorithm: Algorithm.none },
];
const cases = providers.flatMap((provider) =>
  algorithms.map(({ name, algorithm }) => ({ provider, providerName: provider.name, algorithmName: name, algorithm })),
);

const DATA_KEY = new Uint8Array(32).fill(0xab);
const OTHER_DATA_KEY = new Uint8Array(32).fill(0xcd);

function identityFor(algorithm: AlgorithmId, overrides: Partial<FileIdentity> = {}): FileIdentity {
  return {
    algorithm,
    kind: FileKind.data,
    databaseId: Uint8Array.from({ length: 16 }, (_, index) => 0x10 + index),
    shard: 3,
    fileId: 7,
    keyId: 1,
    salt: Uint8Array.from({ length: 32 }, (_, index) => 0x80 + index),
    ...overrides,
  };
}

/** A recognisable, non-repeating 4096-byte page. */
function pagePlaintext(seed = 1): Uint8Array {
  const page = new Uint8Array(PAGE_BYTES);
  for (let index = 0; index < page.length; index++) page[index] = (index * 31 + seed * 17 + (index >>> 8)) & 0xff;
  return page;
}

function flipBit(source: Uint8Array, bit: number): Uint8Array {
  const copy = source.slice();
  copy[bit >>> 3]! ^= 1 << (bit & 7);
  return copy;
}

/** True when `value` (an error and its `cause` chain) holds a byte array anywhere in its own properties. */
function carriesBytes(value: unknown, seen = new Set<unknown>()): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true;
  return Reflect.ownKeys(value).some((key) => carriesBytes((value as Record<PropertyKey, unknown>)[key], seen));
}

/** Runs `open`, which must fail with ARMDB_INTEGRITY, return nothing, and not carry any bytes in the error. */
function expectIntegrityFailure(open: () => Uint8Array, plaintext: Uint8Array, what: string): void {
  let opened: Uint8Array | undefined;
  let error: unknown;
  try {
    opened = open();
  } catch (caught) {
    error = caught;
  }
  expect(opened, `${what}: returned plaintext`).toBeUndefined();
  expect(error, `${what}: must throw an ArmdbError`).toBeInstanceOf(ArmdbError);
  expect((error as ArmdbError).code, what).toBe('ARMDB_INTEGRITY');
  expect(carriesBytes(error), `${what}: the error carries a byte array`).toBe(false);
  expect(String((error as Error).message)).not.toContain(hex(plaintext.subarray(0, 16)));
}

afterEach(() => {
  setSealObserver(undefined);
});

describe.each(cases)('FileCipher ($algorithmName, $providerName provider)', ({ provider, algorithm }) => {
  const dataKeyFor = (): Uint8Array | undefined => (algorithm === Algorithm.aes256gcm ? DATA_KEY : undefined);

  function writer(identity = identityFor(algorithm), dataKey = dataKeyFor()): FileCipher {
    return new FileCipher(provider, identity, dataKey, 'write');
  }

  it('round-trips a 4096-byte page, also through a reader and through the other provider', () => {
    const plaintext = pagePlaintext();
    const cipher = writer();
    const sealed = cipher.seal(0, plaintext);
    expect(sealed.ciphertext.length).toBe(PAGE_BYTES);
    expect(sealed.tag.length).toBe(TAG_BYTES);
    if (algorithm === Algorithm.aes256gcm) expect(hex(sealed.ciphertext)).not.toBe(hex(plaintext));
    else expect(hex(sealed.ciphertext)).toBe(hex(plaintext));
    expect(hex(cipher.open(0, sealed.ciphertext, sealed.tag))).toBe(hex(plaintext));

    for (const other of providers) {
      const reader = new FileCipher(other, identityFor(algorithm), dataKeyFor(), 'read');
      expect(hex(reader.open(0, sealed.ciphertext, sealed.tag)), `opened by ${other.name}`).toBe(hex(plaintext));
    }
    // Sealing copies: the caller's page is not modified.
    expect(hex(plaintext)).toBe(hex(pagePlaintext()));
  });

  it('round-trips several pages with unit flags', () => {
    const cipher = writer();
    const pages = [pagePlaintext(1), pagePlaintext(2), new Uint8Array(PAGE_BYTES)];
    const sealed = pages.map((page, index) => cipher.seal(index, page, index * 3));
    sealed.forEach((unit, index) => {
      expect(hex(cipher.open(index, unit.ciphertext, unit.tag, index * 3)), `page ${index}`).toBe(hex(pages[index]!));
    });
    expect(cipher.sealedUnitCount).toBe(3);
  });

  it('sealUnits seals a run of pages exactly as seal() does page by page, and keeps the order rule', () => {
    const pages = [pagePlaintext(1), pagePlaintext(2), pagePlaintext(3), new Uint8Array(PAGE_BYTES)];
    const run = new Uint8Array(pages.length * PAGE_BYTES);
    for (const [index, page] of pages.entries()) run.set(page, index * PAGE_BYTES);
    const oneByOne = writer();
    const expected = pages.map((page, index) => oneByOne.seal(index, page));
    const bulk = writer();
    bulk.seal(0, pages[0]!);
    const sealed = bulk.sealUnits(1, run.subarray(PAGE_BYTES), PAGE_BYTES);
    expect(sealed.ciphertext.length).toBe(3 * PAGE_BYTES);
    expect(sealed.tags.length).toBe(3 * TAG_BYTES);
    for (let unit = 0; unit < 3; unit++) {
      expect(hex(sealed.ciphertext.subarray(unit * PAGE_BYTES, (unit + 1) * PAGE_BYTES)), `unit ${unit + 1}`).toBe(
        hex(expected[unit + 1]!.ciphertext),
      );
      expect(hex(sealed.tags.subarray(unit * TAG_BYTES, (unit + 1) * TAG_BYTES))).toBe(hex(expected[unit + 1]!.tag));
    }
    expect(bulk.sealedUnitCount).toBe(4);
    // The next run continues at 4; a run that would repeat or skip an index is refused.
    expect(() => bulk.sealUnits(3, run.subarray(0, PAGE_BYTES), PAGE_BYTES)).toThrow();
    expect(() => bulk.sealUnits(5, run.subarray(0, PAGE_BYTES), PAGE_BYTES)).toThrow();
    expect(() => bulk.sealUnits(4, run.subarray(0, PAGE_BYTES + 1), PAGE_BYTES)).toThrow();
    expect(bulk.sealedUnitCount).toBe(4);
    // The plaintext run is not modified.
    for (const [index, page] of pages.entries()) expect(hex(run.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES))).toBe(hex(page));
  });

  it('refuses to seal out of order or twice for the same index', () => {
    const cipher = writer();
    const page = pagePlaintext();
    expect(() => cipher.seal(1, page)).toThrow();
    expect(cipher.sealedUnitCount).toBe(0);
    cipher.seal(0, page);
    expect(() => cipher.seal(0, page)).toThrow();
    expect(() => cipher.seal(2, page)).toThrow();
    expect(() => cipher.seal(-1, page)).toThrow();
    expect(cipher.sealedUnitCount).toBe(1);
    cipher.seal(1, page);
    expect(() => cipher.seal(1, page)).toThrow();
    expect(() => cipher.seal(0, page)).toThrow();
    expect(cipher.sealedUnitCount).toBe(2);
  });

  it("refuses to seal in 'read' mode, but opens", () => {
    const page = pagePlaintext();
    const sealed = writer().seal(0, page);
    const reader = new FileCipher(provider, identityFor(algorithm), dataKeyFor(), 'read');
    const events: Parameters<SealObserver>[0][] = [];
    setSealObserver((event) => events.push(event));
    expect(() => reader.seal(0, page)).toThrow();
    expect(reader.sealedUnitCount).toBe(0);
    expect(events).toHaveLength(0);
    expect(hex(reader.open(0, sealed.ciphertext, sealed.tag))).toBe(hex(page));
  });

  describe('a page sealed under one identity fails to open under another', () => {
    const plaintext = pagePlaintext();
    const sealPage = (): { ciphertext: Uint8Array; tag: Uint8Array } => {
      const cipher = writer();
      cipher.seal(0, pagePlaintext(9));
      return cipher.seal(1, plaintext, 5);
    };
    const bound: readonly { readonly field: string; readonly identity: Partial<FileIdentity>; readonly dataKey?: Uint8Array }[] = [
      { field: 'fileId', identity: { fileId: 8 } },
      { field: 'shard', identity: { shard: 4 } },
      { field: 'databaseId', identity: { databaseId: flipBit(identityFor(algorithm).databaseId, 127) } },
      { field: 'keyId', identity: { keyId: 2 } },
      { field: 'kind', identity: { kind: FileKind.hint } },
      ...(algorithm === Algorithm.aes256gcm
        ? [
            { field: 'salt', identity: { salt: flipBit(identityFor(algorithm).salt, 0) } },
            { field: 'data key', identity: {}, dataKey: OTHER_DATA_KEY },
          ]
        : []),
    ];

    it('control: the same identity opens it', () => {
      const { ciphertext, tag } = sealPage();
      const reader = new FileCipher(provider, identityFor(algorithm), dataKeyFor(), 'read');
      expect(hex(reader.open(1, ciphertext, tag, 5))).toBe(hex(plaintext));
    });

    it('a different page index', () => {
      const { ciphertext, tag } = sealPage();
      const reader = new FileCipher(provider, identityFor(algorithm), dataKeyFor(), 'read');
      for (const index of [0, 2, 2 ** 32 + 1]) {
        expectIntegrityFailure(() => reader.open(index, ciphertext, tag, 5), plaintext, `page index ${index}`);
      }
    });

    it('different unit flags', () => {
      const { ciphertext, tag } = sealPage();
      const reader = new FileCipher(provider, identityFor(algorithm), dataKeyFor(), 'read');
      expectIntegrityFailure(() => reader.open(1, ciphertext, tag, 4), plaintext, 'unit flags');
    });

    it.each(bound)('a different $field', ({ field, identity, dataKey }) => {
      const { ciphertext, tag } = sealPage();
      const reader = new FileCipher(provider, identityFor(algorithm, identity), dataKey ?? dataKeyFor(), 'read');
      expectIntegrityFailure(() => reader.open(1, ciphertext, tag, 5), plaintext, field);
    });

    if (algorithm === Algorithm.none) {
      it('(by design, without encryption the salt and data key are not bound: the CRC covers AAD and page only)', () => {
        const { ciphertext, tag } = sealPage();
        const otherSalt = new FileCipher(provider, identityFor(algorithm, { salt: new Uint8Array(32) }), undefined, 'read');
        expect(hex(otherSalt.open(1, ciphertext, tag, 5))).toBe(hex(plaintext));
        const withKey = new FileCipher(provider, identityFor(algorithm), OTHER_DATA_KEY, 'read');
        expect(hex(withKey.open(1, ciphertext, tag, 5))).toBe(hex(plaintext));
      });
    }
  });

  it('fails on every flipped bit of the tag', () => {
    const plaintext = pagePlaintext();
    const cipher = writer();
    const { ciphertext, tag } = cipher.seal(0, plaintext);
    for (let bit = 0; bit < TAG_BYTES * 8; bit++) {
      expectIntegrityFailure(() => cipher.open(0, ciphertext, flipBit(tag, bit)), plaintext, `tag bit ${bit}`);
    }
  });

  it('locates a failed unit in details: a data page by shard, file id and page index; a hint chunk has no page', () => {
    const data = writer();
    const sealed = [0, 1, 2].map((index) => data.seal(index, pagePlaintext()));
    const failure = (open: () => Uint8Array): ArmdbError => {
      try {
        open();
      } catch (error) {
        return error as ArmdbError;
      }
      throw new Error('open did not fail');
    };
    const page = sealed[2]!;
    expect(failure(() => data.open(2, page.ciphertext, flipBit(page.tag, 9))).details).toEqual({ shard: 3, fileId: 7, pageIndex: 2 });
    expect(failure(() => data.open(2, page.ciphertext, page.tag.subarray(1))).details).toEqual({ shard: 3, fileId: 7, pageIndex: 2 });

    const hint = writer(identityFor(algorithm, { kind: FileKind.hint }));
    const chunk = hint.seal(0, pagePlaintext());
    expect(failure(() => hint.open(0, chunk.ciphertext, flipBit(chunk.tag, 9))).details).toEqual({ shard: 3, fileId: 7 });
  });

  it('fails on a flipped bit of the ciphertext', () => {
    const plaintext = pagePlaintext();
    const cipher = writer();
    const { ciphertext, tag } = cipher.seal(0, plaintext);
    // Without encryption every bit is tried (CRC-32 detects every single-bit error). With AES-GCM a
    // 7-bit stride (every byte, every bit position within a byte) plus both ends keeps noble quick.
    const stride = algorithm === Algorithm.none ? 1 : 7;
    const bits = new Set<number>();
    for (let bit = 0; bit < PAGE_BYTES * 8; bit += stride) bits.add(bit);
    for (let bit = 0; bit < 64; bit++) {
      bits.add(bit);
      bits.add(PAGE_BYTES * 8 - 1 - bit);
    }
    // Thousands of cases: check cheaply in the loop, report every miss at once.
    const misses: string[] = [];
    const flipped = ciphertext.slice();
    for (const bit of bits) {
      flipped[bit >>> 3]! ^= 1 << (bit & 7);
      try {
        cipher.open(0, flipped, tag);
        misses.push(`bit ${bit}: opened`);
      } catch (error) {
        if (!(error instanceof ArmdbError) || error.code !== 'ARMDB_INTEGRITY') misses.push(`bit ${bit}: ${String(error)}`);
      }
      flipped[bit >>> 3]! ^= 1 << (bit & 7);
    }
    expect(misses).toEqual([]);
    expect(hex(flipped)).toBe(hex(ciphertext));
    expectIntegrityFailure(() => cipher.open(0, flipBit(ciphertext, 12_345), tag), plaintext, 'ciphertext bit 12345');
    expect(bits.size).toBeGreaterThan(algorithm === Algorithm.none ? PAGE_BYTES * 8 - 1 : 4_000);
  });

  it('fails on a truncated or extended tag or ciphertext', () => {
    const plaintext = pagePlaintext();
    const cipher = writer();
    const { ciphertext, tag } = cipher.seal(0, plaintext);
    expectIntegrityFailure(() => cipher.open(0, ciphertext, tag.subarray(0, 15)), plaintext, 'short tag');
    const longTag = new Uint8Array(17);
    longTag.set(tag);
    expectIntegrityFailure(() => cipher.open(0, ciphertext, longTag), plaintext, 'long tag');
    expectIntegrityFailure(() => cipher.open(0, ciphertext.subarray(0, PAGE_BYTES - 1), tag), plaintext, 'short page');
  });

  it('reports one seal event per seal, with distinct nonces and one key fingerprint per file', () => {
    const events: Parameters<SealObserver>[0][] = [];
    setSealObserver((event) => events.push(event));
    const cipher = writer();
    const pages = 50;
    for (let index = 0; index < pages; index++) cipher.seal(index, pagePlaintext(index));
    expect(events).toHaveLength(pages);
    expect(new Set(events.map((event) => event.nonceHex)).size).toBe(pages);
    for (const event of events) expect(event.nonceHex).toMatch(/^[0-9a-f]{24}$/);
    expect(new Set(events.map((event) => event.fileKeyFingerprint)).size).toBe(1);

    // Another file instance (fresh salt) has other keys, hence another fingerprint, and its nonces
    // restart at unit 0 under that other key.
    writer(identityFor(algorithm, { salt: new Uint8Array(32).fill(1) })).seal(0, pagePlaintext());
    expect(events).toHaveLength(pages + 1);
    expect(events[pages]!.fileKeyFingerprint).not.toBe(events[0]!.fileKeyFingerprint);
    expect(events[pages]!.nonceHex).toBe(events[0]!.nonceHex);
  });

  it('never shows key bytes through inspect, JSON or String', () => {
    const identity = identityFor(algorithm);
    const events: Parameters<SealObserver>[0][] = [];
    setSealObserver((event) => events.push(event));
    const cipher = writer(identity, algorithm === Algorithm.aes256gcm ? DATA_KEY : undefined);
    cipher.seal(0, pagePlaintext());

    // Recompute the per-file keys (file-cipher.ts header comment) and check them against the cipher,
    // so the search below looks for the real derived keys.
    const label = new TextEncoder().encode('armdb/v1 file');
    const binding = Buffer.alloc(label.length + 28);
    binding.set(label);
    let at = label.length;
    binding.writeUInt8(identity.kind, at++);
    binding.writeUInt8(identity.algorithm, at++);
    binding.set(identity.databaseId, at);
    at += 16;
    binding.writeUInt16LE(identity.shard, at);
    binding.writeUInt32LE(identity.fileId, at + 2);
    binding.writeUInt32LE(identity.keyId, at + 6);
    const ikm = algorithm === Algorithm.aes256gcm ? DATA_KEY : new Uint8Array(32);
    const derived = provider.hkdf(ikm, identity.salt, binding, 64);
    const encKey = derived.slice(0, 32);
    const macKey = derived.slice(32);
    expect(hex(provider.hmac(encKey, label).subarray(0, 8))).toBe(events[0]!.fileKeyFingerprint);
    const probe = new TextEncoder().encode('probe');
    expect(hex(cipher.mac(probe))).toBe(hex(provider.hmac(macKey, probe)));

    const renderings = [
      inspect(cipher),
      inspect(cipher, { showHidden: true, depth: Infinity, getters: true }),
      inspect(cipher, { customInspect: false, showHidden: true, depth: Infinity }),
      inspect({ nested: [cipher] }, { depth: Infinity }),
      JSON.stringify(cipher),
      JSON.stringify({ nested: [cipher] }),
      String(cipher),
      `${cipher as unknown as string}`,
    ];
    const secrets = algorithm === Algorithm.aes256gcm ? [DATA_KEY, encKey, macKey] : [encKey, macKey];
    for (const rendering of renderings) {
      expect(rendering.toLowerCase()).not.toContain('abab');
      for (const secret of secrets) {
        const secretHex = hex(secret);
        // Every 4-byte window, in either case, and the whole key in base64 / base64url.
        for (let start = 0; start + 8 <= secretHex.length; start += 2) {
          expect(rendering.toLowerCase()).not.toContain(secretHex.slice(start, start + 8));
        }
        expect(rendering).not.toContain(Buffer.from(secret).toString('base64'));
        expect(rendering).not.toContain(Buffer.from(secret).toString('base64url'));
        expect(rendering).not.toContain(Buffer.from(secret).toString('base64').slice(0, 12));
      }
    }
    expect(JSON.parse(JSON.stringify(cipher))).toEqual({ shard: 3, fileId: 7, keyId: 1, mode: 'write' });
  });

  it('destroy() wipes the MAC key', () => {
    const cipher = writer();
    const probe = new TextEncoder().encode('probe');
    const before = hex(cipher.mac(probe));
    cipher.destroy();
    expect(hex(cipher.mac(probe))).not.toBe(before);
    expect(hex(cipher.mac(probe))).toBe(hex(provider.hmac(new Uint8Array(32), probe)));
  });
});

describe('FileCipher construction', () => {
  it('refuses an encrypted file without a 32-byte data key', () => {
    for (const provider of providers) {
      expect(() => new FileCipher(provider, identityFor(Algorithm.aes256gcm), undefined, 'write')).toThrow(RangeError);
      expect(() => new FileCipher(provider, identityFor(Algorithm.aes256gcm), new Uint8Array(16), 'write')).toThrow(RangeError);
    }
  });

  it('both providers write identical bytes for the same identity', () => {
    for (const { algorithm } of algorithms) {
      const key = algorithm === Algorithm.aes256gcm ? DATA_KEY : undefined;
      const byNode = new FileCipher(nodeProvider, identityFor(algorithm), key, 'write').seal(0, pagePlaintext(), 9);
      const byNoble = new FileCipher(nobleProvider, identityFor(algorithm), key, 'write').seal(0, pagePlaintext(), 9);
      expect(hex(byNode.ciphertext)).toBe(hex(byNoble.ciphertext));
      expect(hex(byNode.tag)).toBe(hex(byNoble.tag));
    }
  });
});

describe('an empty unit without encryption (docs/format.md §2.7)', () => {
  const sealEmpty = (unitIndex: number): Uint8Array => {
    // The tag of an empty unit `unitIndex` of a hint file, sealed after the units before it.
    const cipher = new FileCipher(nodeProvider, identityFor(Algorithm.none, { kind: FileKind.hint }), undefined, 'write');
    for (let index = 0; index < unitIndex; index++) cipher.seal(index, new Uint8Array(16));
    return cipher.seal(unitIndex, new Uint8Array(0)).tag;
  };

  it('is sealed with CRC-32(AAD), never the 0 that zlib gave an empty input', () => {
    const tag = sealEmpty(2);
    expect(new DataView(tag.buffer, tag.byteOffset).getUint32(0, true)).not.toBe(0);
    const reader = new FileCipher(nodeProvider, identityFor(Algorithm.none, { kind: FileKind.hint }), undefined, 'read');
    expect(reader.open(2, new Uint8Array(0), tag)).toEqual(new Uint8Array(0));
  });

  it('opens with the tag 0 that earlier writers stored, and is refused with any other wrong tag', () => {
    const reader = new FileCipher(nodeProvider, identityFor(Algorithm.none, { kind: FileKind.hint }), undefined, 'read');
    expect(reader.open(2, new Uint8Array(0), new Uint8Array(TAG_BYTES))).toEqual(new Uint8Array(0));
    const wrong = new Uint8Array(TAG_BYTES);
    wrong[0] = 1;
    expect(() => reader.open(2, new Uint8Array(0), wrong)).toThrow(/fails its CRC-32/);
    // A non-empty unit gets no such leniency.
    expect(() => reader.open(2, new Uint8Array(1), new Uint8Array(TAG_BYTES))).toThrow(/fails its CRC-32/);
  });
});
