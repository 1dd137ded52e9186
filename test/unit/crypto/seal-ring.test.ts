/**
 * The sealing worker (src/crypto/seal-ring.ts) seals exactly what FileCipher would seal on the calling
 * thread: same key, same nonce, same AAD, so the same ciphertext and tags byte for byte; it writes
 * slots back in order; and a failure is final and typed.
 */
import { inspect } from 'node:util';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FileCipher } from '../../../src/crypto/file-cipher.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import { SealRing, type SealRingFile, setSealRingFailureForTest } from '../../../src/crypto/seal-ring.js';
import { ArmdbError } from '../../../src/errors.js';
import { Algorithm, FileKind, PAGE_BYTES, TAG_BYTES } from '../../../src/format/constants.js';
import type { FileIdentity } from '../../../src/format/tag-file.js';

const DATA_KEY = Uint8Array.from({ length: 32 }, (_, index) => (index * 29 + 3) & 0xff);

function identity(fileId: number): FileIdentity {
  return {
    algorithm: Algorithm.aes256gcm,
    kind: FileKind.data,
    databaseId: Uint8Array.from({ length: 16 }, (_, index) => index + 1),
    shard: 3,
    fileId,
    keyId: 2,
    // A fixed salt: two ciphers of the same identity derive the same file key (a test configuration).
    salt: Uint8Array.from({ length: 32 }, (_, index) => (index * 7) & 0xff),
  };
}

/** A file that records what the ring writes, in order. */
class RecordingFile implements SealRingFile {
  readonly cipher: FileCipher;
  readonly ciphertext: number[] = [];
  readonly writes: { firstPageIndex: number; ciphertext: Uint8Array; tags: Uint8Array }[] = [];
  constructor(cipher: FileCipher) {
    this.cipher = cipher;
  }
  get sealing() {
    return this.cipher.ringSealing!;
  }
  writeSealed(firstPageIndex: number, ciphertext: Uint8Array, tags: Uint8Array): void {
    this.writes.push({ firstPageIndex, ciphertext: ciphertext.slice(), tags: tags.slice() });
  }
}

function plaintextPages(pages: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(pages * PAGE_BYTES);
  for (let index = 0; index < bytes.length; index++) bytes[index] = (index * 131 + seed * 17 + (index >>> 12)) & 0xff;
  return bytes;
}

const rings: SealRing[] = [];
afterEach(() => {
  setSealRingFailureForTest(false);
  for (const ring of rings.splice(0)) ring.close();
});

function newRing(slotPages: number, slotCount: number): SealRing {
  const ring = new SealRing({ slotPages, slotCount });
  rings.push(ring);
  return ring;
}

describe('SealRing', () => {
  const shared = new Map<string, SealRing>();
  it('seals byte-identically to FileCipher.sealUnits, runs split over slots and written back in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
        fc.constantFrom(1, 3, 8),
        fc.integer({ min: 2, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        async (runs, slotPages, slotCount, seed) => {
          // One ring (one worker) per geometry, shared by the runs: starting a thread is the slow part.
          const geometry = `${slotPages}/${slotCount}`;
          const ring = shared.get(geometry) ?? newRing(slotPages, slotCount);
          shared.set(geometry, ring);
          const inline = new FileCipher(nodeProvider, identity(7), DATA_KEY, 'write');
          const file = new RecordingFile(new FileCipher(nodeProvider, identity(7), DATA_KEY, 'write'));
          const expected: Uint8Array[] = [];
          const expectedTags: Uint8Array[] = [];
          let next = 0;
          for (const [run, pages] of runs.entries()) {
            const plaintext = plaintextPages(pages, seed + run);
            const sealed = inline.sealUnits(next, plaintext, PAGE_BYTES);
            expected.push(sealed.ciphertext.slice());
            expectedTags.push(sealed.tags.slice());
            file.cipher.reserveUnits(next, pages);
            ring.submit(file, next, plaintext);
            // The caller may reuse its buffer at once: the ring copied the pages.
            plaintext.fill(0xee);
            next += pages;
          }
          ring.drain();
          expect(ring.pagesInFlight).toBe(0);
          let at = 0;
          for (const write of file.writes) {
            expect(write.firstPageIndex).toBe(at);
            at += write.tags.length / TAG_BYTES;
          }
          expect(at).toBe(next);
          // Buffer.equals: a deep toEqual over megabytes is slower than the sealing.
          expect(Buffer.concat(file.writes.map((write) => write.ciphertext)).equals(Buffer.concat(expected))).toBe(true);
          expect(Buffer.concat(file.writes.map((write) => write.tags)).equals(Buffer.concat(expectedTags))).toBe(true);
          // And what it wrote opens under a reading cipher, as any sealed page does.
          const reader = new FileCipher(nodeProvider, identity(7), DATA_KEY, 'read');
          const first = file.writes[0]!;
          const opened = reader.open(0, first.ciphertext.subarray(0, PAGE_BYTES), first.tags.subarray(0, TAG_BYTES));
          expect(Buffer.from(opened).equals(plaintextPages(runs[0]!, seed).subarray(0, PAGE_BYTES))).toBe(true);
        },
      ),
      { seed: 0x5ea1, numRuns: 40 },
    );
  });

  it('keeps files apart: two files in flight at once each get their own key', () => {
    const ring = newRing(4, 3);
    const files = [7, 8].map((fileId) => new RecordingFile(new FileCipher(nodeProvider, identity(fileId), DATA_KEY, 'write')));
    for (let round = 0; round < 3; round++) {
      for (const file of files) {
        file.cipher.reserveUnits(round * 5, 5);
        ring.submit(file, round * 5, plaintextPages(5, round));
      }
    }
    ring.drain();
    for (const [index, file] of files.entries()) {
      const again = new FileCipher(nodeProvider, identity(index === 0 ? 7 : 8), DATA_KEY, 'write');
      const expected = again.sealUnits(0, Buffer.concat([0, 1, 2].map((round) => plaintextPages(5, round))), PAGE_BYTES);
      expect(Buffer.concat(file.writes.map((write) => write.tags)).equals(expected.tags)).toBe(true);
    }
  });

  it('a worker failure is final and typed: nothing of the failed slot is written, every later call throws the same error', () => {
    const failures: ArmdbError[] = [];
    const ring = new SealRing({ slotPages: 2, slotCount: 2, onFailure: (error) => failures.push(error) });
    rings.push(ring);
    const file = new RecordingFile(new FileCipher(nodeProvider, identity(9), DATA_KEY, 'write'));
    file.cipher.reserveUnits(0, 2);
    ring.submit(file, 0, plaintextPages(2, 1));
    ring.drain();
    expect(file.writes).toHaveLength(1);
    setSealRingFailureForTest(true);
    file.cipher.reserveUnits(2, 2);
    ring.submit(file, 2, plaintextPages(2, 2));
    let thrown: unknown;
    try {
      ring.drain();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ArmdbError);
    expect((thrown as ArmdbError).code).toBe('ARMDB_POISONED');
    expect(failures).toEqual([thrown]);
    expect(file.writes).toHaveLength(1);
    expect(() => ring.submit(file, 4, plaintextPages(1, 3))).toThrow(thrown as Error);
    expect(() => ring.harvest()).toThrow(thrown as Error);
  });

  it('a write that throws while harvesting fails the ring', () => {
    const ring = newRing(2, 2);
    const cipher = new FileCipher(nodeProvider, identity(10), DATA_KEY, 'write');
    const file: SealRingFile = {
      sealing: cipher.ringSealing!,
      writeSealed: () => {
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      },
    };
    cipher.reserveUnits(0, 1);
    ring.submit(file, 0, plaintextPages(1, 0));
    expect(() => ring.drain()).toThrow(
      expect.objectContaining({ code: 'ARMDB_POISONED', cause: expect.objectContaining({ code: 'EIO' }) }),
    );
    expect(() => ring.drain()).toThrow(expect.objectContaining({ code: 'ARMDB_POISONED' }));
  });

  it('unit indexes are still reserved in order by the file, never by the worker', () => {
    const cipher = new FileCipher(nodeProvider, identity(11), DATA_KEY, 'write');
    cipher.reserveUnits(0, 3);
    expect(cipher.sealedUnitCount).toBe(3);
    expect(() => cipher.reserveUnits(0, 1)).toThrow(/nonce must never repeat/);
    expect(() => cipher.seal(2, new Uint8Array(PAGE_BYTES))).toThrow(/nonce must never repeat/);
  });

  it('no ring key for files it must not seal: read mode, no encryption, the noble provider', async () => {
    const { nobleProvider } = await import('../../../src/crypto/noble-provider.js');
    expect(new FileCipher(nodeProvider, identity(12), DATA_KEY, 'read').ringSealing).toBeUndefined();
    expect(new FileCipher(nobleProvider, identity(12), DATA_KEY, 'write').ringSealing).toBeUndefined();
    expect(new FileCipher(nodeProvider, { ...identity(12), algorithm: Algorithm.none }, undefined, 'write').ringSealing).toBeUndefined();
    // The key stays a KeyObject, and inspecting a cipher shows no key material.
    const cipher = new FileCipher(nodeProvider, identity(12), DATA_KEY, 'write');
    expect(cipher.ringSealing!.key.type).toBe('secret');
    expect(inspect(cipher)).not.toMatch(/[0-9a-f]{32}/);
  });
});
