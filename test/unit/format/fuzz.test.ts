/**
 * Fuzzing every parser in format/: random bytes, valid encodings with random mutations, and — for the
 * parsers that check a MAC or CRC first — mutations with the MAC/CRC recomputed so that parsing gets
 * past it into the field checks. The property: a parser returns or throws ArmdbError / RangeError,
 * never any other exception. Where a parser returns, the result is also checked for consistency
 * (canonical re-encoding or field invariants).
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ArmdbError } from '../../../src/errors.js';
import { FileKind, Limits, MAC_BYTES, Magic } from '../../../src/format/constants.js';
import { RECORD_HEADER_BYTES, decodeRecordHeader, verifyRecordChecksum } from '../../../src/format/record.js';
import { scanRecords } from '../../../src/format/page.js';
import {
  TAG_FOOTER_BYTES,
  TAG_HEADER_BYTES,
  decodeTagFileFooter,
  decodeTagFileHeader,
  encodeTagFileFooter,
  encodeTagFileHeader,
} from '../../../src/format/tag-file.js';
import type { MacFunction } from '../../../src/format/tag-file.js';
import {
  decodeHintChunkFrame,
  decodeHintChunk,
  decodeHintEntries,
  encodeCompactHintChunk,
  hintEntryAt,
  HintVersion,
  decodeHintHeader,
  encodeHintChunkFrame,
  encodeHintEntries,
  encodeHintHeader,
} from '../../../src/format/hint.js';
import type { HintEntry } from '../../../src/format/hint.js';
import {
  CollectionKind,
  FileState,
  MANIFEST_FILE_ENTRY_BYTES,
  MANIFEST_HEADER_BYTES,
  decodeManifest,
  encodeManifest,
  peekManifestAlgorithm,
} from '../../../src/format/manifest.js';
import type { Manifest } from '../../../src/format/manifest.js';
import { decodeKeyringV1, encodeKeyringV1 } from '../../../src/format/keyring.js';
import {
  SEED,
  expectArmdbError,
  expectOnlyExpectedErrors,
  fakeMac,
  hintChunkFrameArb,
  hintEntryArb,
  identityArb,
  keyringArb,
  manifestArb,
  mutate,
  mutationsArb,
  recordListArb,
  tagFooterArb,
  toHex,
  writeRecordStream,
} from './_support.js';

const RUNS = 1000;
const options = { seed: SEED, numRuns: RUNS };

/** Fully random bytes of length 0..2000. */
const randomBytes = fc.uint8Array({ minLength: 0, maxLength: 2000 });

/** Random bytes, sometimes behind the right magic so that the parser gets past it. */
const randomWithMagic = (magic: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    randomBytes,
    fc.uint8Array({ minLength: 0, maxLength: 400 }).map((tail) => {
      const bytes = new Uint8Array(magic.length + tail.length);
      bytes.set(magic);
      bytes.set(tail, magic.length);
      return bytes;
    }),
  );

/** A MAC function that matches whatever MAC `bytes` stores at `macOffset`. */
function matchingMac(bytes: Uint8Array, macOffset: number): MacFunction {
  return () => bytes.slice(macOffset, macOffset + MAC_BYTES);
}

/** Rewrites the trailing MAC over `bytes[0..length-32]` with the fake MAC (if there is room). */
function withManifestMac(bytes: Uint8Array): Uint8Array {
  if (bytes.length >= MAC_BYTES) bytes.set(fakeMac(bytes.subarray(0, bytes.length - MAC_BYTES)), bytes.length - MAC_BYTES);
  return bytes;
}

function withFooterMac(bytes: Uint8Array): Uint8Array {
  if (bytes.length === TAG_FOOTER_BYTES) bytes.set(fakeMac(bytes.subarray(0, 48)), 48);
  return bytes;
}

function withKeyringCrc(bytes: Uint8Array): Uint8Array {
  if (bytes.length >= 4)
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(
      bytes.length - 4,
      crc32(bytes.subarray(0, bytes.length - 4)) >>> 0,
      true,
    );
  return bytes;
}

function checkManifestInvariants(manifest: Manifest): void {
  expect(manifest.keySize).toBeGreaterThanOrEqual(1);
  expect(manifest.keySize).toBeLessThanOrEqual(Limits.maxKeyBytes);
  expect(manifest.shards).toBeGreaterThanOrEqual(1);
  expect(manifest.shards).toBeLessThanOrEqual(Limits.maxShards);
  expect(manifest.shardPrefixBits).toBeLessThanOrEqual(manifest.keySize * 8);
  expect(Object.values(CollectionKind)).toContain(manifest.collectionKind);
  for (const file of manifest.files) {
    expect(file.shard).toBeLessThan(manifest.shards);
    expect(file.fileId).toBeLessThan(manifest.nextFileId);
    expect([FileState.active, FileState.sealed]).toContain(file.state);
    expect(Number.isSafeInteger(file.pageCount)).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------

describe('fuzz: records (scanRecords, decodeRecordHeader, verifyRecordChecksum)', () => {
  const scan = (bytes: Uint8Array, bufferPosition: number, fromPosition: number, keySize: number, maxValueBytes: number): void => {
    let last = -1;
    const resume = scanRecords(bytes, bufferPosition, fromPosition, keySize, maxValueBytes, 8, (record) => {
      // Records come out in order, inside the buffer, and checked.
      expect(record.position).toBeGreaterThan(last);
      expect(record.position - bufferPosition + record.recordBytes).toBeLessThanOrEqual(bytes.length);
      expect(record.valueLength).toBeLessThanOrEqual(maxValueBytes);
      expect(record.key.length).toBe(keySize);
      expect(record.value.length).toBe(record.valueLength);
      if (record.tombstone) expect(record.valueLength).toBe(0);
      last = record.position;
    });
    expect(resume).toBeGreaterThanOrEqual(fromPosition);
  };

  it('random bytes', () => {
    fc.assert(
      fc.property(
        randomBytes,
        fc.integer({ min: 0, max: 64 }),
        fc.oneof(fc.constant(Limits.maxValueBytes), fc.integer({ min: 0, max: 4096 })),
        fc.integer({ min: 0, max: 3 }).map((page) => page * 4096),
        fc.integer({ min: 0, max: 2100 }),
        fc.boolean(),
        (bytes, keySize, maxValueBytes, bufferPosition, start, aligned) => {
          const fromPosition = bufferPosition + (aligned ? start - (start % 8) : start);
          expectOnlyExpectedErrors(() => scan(bytes, bufferPosition, fromPosition, keySize, maxValueBytes));
        },
      ),
      options,
    );
  });

  it('random bytes: decodeRecordHeader and verifyRecordChecksum at random offsets', () => {
    fc.assert(
      fc.property(randomBytes, fc.integer({ min: -8, max: 2100 }), fc.integer({ min: 0, max: 64 }), (bytes, offset, keySize) => {
        expectOnlyExpectedErrors(() => {
          const header = decodeRecordHeader(bytes, offset, Limits.maxValueBytes);
          if (header !== undefined) verifyRecordChecksum(bytes, offset, keySize, header.valueLength);
        });
      }),
      options,
    );
  });

  it('mutated record streams', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }).chain((keySize) => fc.tuple(fc.constant(keySize), recordListArb(keySize, 20, 600))),
        mutationsArb,
        fc.boolean(),
        ([keySize, records], mutations, skipPage) => {
          const stream = writeRecordStream(records);
          const bytes = mutate(stream.bytes, mutations);
          const bufferPosition = skipPage && bytes.length > 4096 ? 4096 : 0;
          expectOnlyExpectedErrors(() =>
            scan(bytes.subarray(bufferPosition), bufferPosition, bufferPosition, keySize, Limits.maxValueBytes),
          );
        },
      ),
      options,
    );
  });

  it('a single bit flip anywhere inside a record is detected', () => {
    fc.assert(
      fc.property(recordListArb(8, 10, 200), fc.nat(), fc.integer({ min: 0, max: 7 }), (records, at, bit) => {
        const stream = writeRecordStream(records);
        // Pick a byte that belongs to a record's header, key or value (not padding or gap).
        const covered: number[] = [];
        stream.positions.forEach((position, index) => {
          const record = records[index];
          if (record === undefined) return;
          for (let offset = 0; offset < RECORD_HEADER_BYTES + record.key.length + record.value.length; offset++)
            covered.push(position + offset);
        });
        const target = covered[at % covered.length] ?? 0;
        const bytes = stream.bytes.slice();
        bytes[target] = (bytes[target] ?? 0) ^ (1 << bit);
        const seen: number[] = [];
        try {
          scanRecords(bytes, 0, 0, 8, Limits.maxValueBytes, 8, (record) => seen.push(record.sequence));
        } catch (error) {
          expect(error).toBeInstanceOf(ArmdbError);
          expect((error as ArmdbError).code).toBe('ARMDB_INTEGRITY');
          return;
        }
        // Not thrown: the flip must have made a length claim run past the buffer (a torn tail),
        // so the scan stopped early; it must never return the full, undamaged list.
        expect(seen.length).toBeLessThan(records.length);
      }),
      options,
    );
  });
});

describe('fuzz: tag-file header and footer', () => {
  it('decodeTagFileHeader: random bytes', () => {
    fc.assert(
      fc.property(randomWithMagic(Magic.tagHeader), (bytes) => expectOnlyExpectedErrors(() => decodeTagFileHeader(bytes))),
      options,
    );
  });

  it('decodeTagFileHeader: mutated headers; what parses re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(identityArb(FileKind.data), mutationsArb, (identity, mutations) => {
        const bytes = mutate(encodeTagFileHeader(identity, fakeMac), mutations);
        expectOnlyExpectedErrors(() => {
          const header = decodeTagFileHeader(bytes);
          expect(toHex(encodeTagFileHeader(header, () => header.mac))).toBe(toHex(bytes.subarray(0, TAG_HEADER_BYTES)));
        });
      }),
      options,
    );
  });

  it('decodeTagFileFooter: random bytes, with the real and an always-matching MAC', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          randomWithMagic(Magic.tagFooter),
          fc.uint8Array({ minLength: 72, maxLength: 72 }).map((tail) => new Uint8Array([...Magic.tagFooter, ...tail])),
        ),
        (bytes) => {
          expectOnlyExpectedErrors(() => decodeTagFileFooter(bytes, fakeMac));
          expectOnlyExpectedErrors(() => decodeTagFileFooter(bytes, matchingMac(bytes, 48)));
        },
      ),
      options,
    );
  });

  it('decodeTagFileFooter: mutated footers, MAC left stale and MAC recomputed', () => {
    fc.assert(
      fc.property(tagFooterArb, mutationsArb, (footer, mutations) => {
        const encoded = encodeTagFileFooter(footer, fakeMac);
        const stale = mutate(encoded, mutations);
        expectOnlyExpectedErrors(() => {
          const decoded = decodeTagFileFooter(stale, fakeMac);
          // Passing the real MAC means the bytes are unchanged.
          expect(toHex(stale)).toBe(toHex(encoded));
          expect(decoded).toEqual(footer);
        });
        const fixed = withFooterMac(mutate(encoded, mutations));
        expectOnlyExpectedErrors(() => {
          const decoded = decodeTagFileFooter(fixed, fakeMac);
          expect(toHex(encodeTagFileFooter(decoded, fakeMac))).toBe(toHex(fixed));
        });
      }),
      options,
    );
  });

  it('a footer page count at 2^53 is ARMDB_INTEGRITY even with a valid MAC', () => {
    const bytes = encodeTagFileFooter({ pageCount: 1, tagDigest: new Uint8Array(32) }, fakeMac);
    bytes.set([0, 0, 0, 0, 0, 0, 0x20, 0], 8);
    expectArmdbError(() => decodeTagFileFooter(withFooterMac(bytes), fakeMac), 'ARMDB_INTEGRITY');
  });
});

describe('file kind versus magic', () => {
  it('a tag-file header must carry kind data and a hint-file header kind hint', () => {
    const identity = { algorithm: 1 as const, databaseId: new Uint8Array(16), shard: 0, fileId: 1, keyId: 1, salt: new Uint8Array(32) };
    expectArmdbError(() => decodeTagFileHeader(encodeTagFileHeader({ ...identity, kind: FileKind.hint }, fakeMac)), 'ARMDB_INTEGRITY');
    expectArmdbError(() => decodeHintHeader(encodeHintHeader({ ...identity, kind: FileKind.data }, fakeMac)), 'ARMDB_INTEGRITY');
    // A valid header of one kind never parses as the other.
    expectArmdbError(() => decodeHintHeader(encodeTagFileHeader({ ...identity, kind: FileKind.data }, fakeMac)), 'ARMDB_INTEGRITY');
    expectArmdbError(() => decodeTagFileHeader(encodeHintHeader({ ...identity, kind: FileKind.hint }, fakeMac)), 'ARMDB_INTEGRITY');
  });
});

describe('fuzz: hint files', () => {
  it('decodeHintHeader: random bytes', () => {
    fc.assert(
      fc.property(randomWithMagic(Magic.hintHeader), (bytes) => expectOnlyExpectedErrors(() => decodeHintHeader(bytes))),
      options,
    );
  });

  it('decodeHintHeader: mutated headers; what parses re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(identityArb(FileKind.hint), mutationsArb, (identity, mutations) => {
        const bytes = mutate(encodeHintHeader(identity, fakeMac), mutations);
        expectOnlyExpectedErrors(() => {
          const header = decodeHintHeader(bytes);
          expect(toHex(encodeHintHeader(header, () => header.mac, header.version))).toBe(toHex(bytes.subarray(0, TAG_HEADER_BYTES)));
        });
      }),
      options,
    );
  });

  const decodeAll = (bytes: Uint8Array, keySize: number): HintEntry[] => {
    const entries: HintEntry[] = [];
    decodeHintEntries(bytes, keySize, (entry) => {
      expect(entry.key.length).toBe(keySize);
      expect(entry.position % 8).toBe(0);
      expect(entry.sequence).toBeGreaterThanOrEqual(1);
      if (entry.tombstone) expect(entry.valueLength).toBe(0);
      entries.push({ ...entry, key: entry.key.slice() });
    });
    return entries;
  };

  it('decodeHintEntries: random bytes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 }).chain((keySize) =>
          fc.tuple(
            fc.constant(keySize),
            // Half the time a whole number of entries, so the per-entry checks run.
            fc.oneof(
              randomBytes,
              fc
                .integer({ min: 0, max: 30 })
                .chain((count) => fc.uint8Array({ minLength: count * (keySize + 16), maxLength: count * (keySize + 16) })),
            ),
          ),
        ),
        ([keySize, bytes]) => expectOnlyExpectedErrors(() => decodeAll(bytes, keySize)),
      ),
      options,
    );
  });

  it('decodeHintEntries: mutated chunks; what parses re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 40 })
          .chain((keySize) => fc.tuple(fc.constant(keySize), fc.array(hintEntryArb(keySize), { minLength: 1, maxLength: 10 }))),
        mutationsArb,
        ([keySize, entries], mutations) => {
          const bytes = mutate(encodeHintEntries(entries, keySize), mutations);
          expectOnlyExpectedErrors(() => {
            const decoded = decodeAll(bytes, keySize);
            expect(toHex(encodeHintEntries(decoded, keySize))).toBe(toHex(bytes));
          });
        },
      ),
      options,
    );
  });

  const decodeAllCompact = (bytes: Uint8Array, keySize: number): HintEntry[] => {
    const columns = decodeHintChunk(bytes, keySize, HintVersion.compact);
    return Array.from({ length: columns.count }, (_, index) => {
      const entry = hintEntryAt(columns, index, keySize);
      expect(entry.key.length).toBe(keySize);
      expect(entry.position % 8).toBe(0);
      expect(entry.sequence).toBeGreaterThanOrEqual(1);
      if (entry.tombstone) expect(entry.valueLength).toBe(0);
      return { ...entry, key: entry.key.slice() };
    });
  };

  it('decodeHintChunk version 2: random bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), randomBytes, (keySize, bytes) =>
        expectOnlyExpectedErrors(() => decodeAllCompact(bytes, keySize)),
      ),
      options,
    );
  });

  it('decodeHintChunk version 2: mutated chunks; what parses re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((keySize) => fc.tuple(fc.constant(keySize), fc.array(hintEntryArb(keySize), { minLength: 1, maxLength: 10 }))),
        mutationsArb,
        ([keySize, entries], mutations) => {
          const bytes = mutate(encodeCompactHintChunk(entries, keySize), mutations);
          expectOnlyExpectedErrors(() => {
            const decoded = decodeAllCompact(bytes, keySize);
            expect(toHex(encodeCompactHintChunk(decoded, keySize))).toBe(toHex(bytes));
          });
        },
      ),
      options,
    );
  });

  it('decodeHintChunkFrame: random bytes and random room', () => {
    fc.assert(
      fc.property(
        fc.oneof(randomBytes, fc.uint8Array({ minLength: 8, maxLength: 8 })),
        fc.oneof(fc.integer({ min: 0, max: 2 ** 21 }), fc.integer({ min: 0, max: 0xffffffff })),
        (bytes, room) => expectOnlyExpectedErrors(() => decodeHintChunkFrame(bytes, room)),
      ),
      options,
    );
  });

  it('decodeHintChunkFrame: mutated frames', () => {
    fc.assert(
      fc.property(hintChunkFrameArb, mutationsArb, fc.nat({ max: 2 ** 21 }), (frame, mutations, room) => {
        const bytes = mutate(encodeHintChunkFrame(frame), mutations);
        expectOnlyExpectedErrors(() => {
          const decoded = decodeHintChunkFrame(bytes, room);
          expect(decoded.plaintextBytes + 16).toBeLessThanOrEqual(room);
          expect(decoded.plaintextBytes).toBeLessThanOrEqual(Limits.maxHintChunkBytes);
          expect(toHex(encodeHintChunkFrame(decoded))).toBe(toHex(bytes));
        });
      }),
      options,
    );
  });
});

describe('fuzz: manifest', () => {
  it('peekManifestAlgorithm and decodeManifest: random bytes, with the real and an always-matching MAC', () => {
    fc.assert(
      fc.property(randomWithMagic(Magic.manifest), (bytes) => {
        expectOnlyExpectedErrors(() => peekManifestAlgorithm(bytes));
        expectOnlyExpectedErrors(() => decodeManifest(bytes, fakeMac));
        expectOnlyExpectedErrors(() =>
          checkManifestInvariants(decodeManifest(bytes, matchingMac(bytes, Math.max(0, bytes.length - MAC_BYTES)))),
        );
      }),
      options,
    );
  });

  it('mutated manifests, MAC left stale', () => {
    fc.assert(
      fc.property(manifestArb, mutationsArb, (manifest, mutations) => {
        // The base container (version 2); a version-3 log has its own cases below.
        const encoded = encodeManifest(manifest, fakeMac, { formatVersion: 2 });
        const bytes = mutate(encoded, mutations);
        expectOnlyExpectedErrors(() => peekManifestAlgorithm(bytes));
        expectOnlyExpectedErrors(() => {
          const decoded = decodeManifest(bytes, fakeMac);
          expect(toHex(bytes)).toBe(toHex(encoded));
          expect(decoded).toEqual(manifest);
        });
      }),
      options,
    );
  });

  it('mutated manifests, MAC recomputed so the field checks run; what parses re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(manifestArb, mutationsArb, (manifest, mutations) => {
        const bytes = withManifestMac(mutate(encodeManifest(manifest, fakeMac, { formatVersion: 2 }), mutations));
        expectOnlyExpectedErrors(() => {
          const decoded = decodeManifest(bytes, fakeMac);
          checkManifestInvariants(decoded);
          // Canonical except for one documented leniency (docs/format.md §7.3): with has-hint 0 the
          // hint-MAC bytes are not required to be zero. Zero them in the input before comparing.
          const expected = bytes.slice();
          decoded.files.forEach((file, index) => {
            const hintMacAt = MANIFEST_HEADER_BYTES + index * MANIFEST_FILE_ENTRY_BYTES + 88;
            if (file.hintMac === undefined) expected.fill(0, hintMacAt, hintMacAt + MAC_BYTES);
          });
          withManifestMac(expected);
          expect(toHex(encodeManifest(decoded, fakeMac, { formatVersion: 2 }))).toBe(toHex(expected));
        });
      }),
      options,
    );
  });

  it('a wrong magic number is ARMDB_INTEGRITY and another format version ARMDB_FORMAT_MISMATCH, even behind a valid MAC', () => {
    const good = encodeManifest(
      {
        epoch: 1,
        algorithm: 1,
        collectionKind: 1,
        databaseId: new Uint8Array(16),
        keySize: 16,
        valueSize: 0,
        shards: 1,
        shardPrefixBits: 0,
        activeKeyId: 1,
        nextFileId: 1,
        files: [],
      },
      fakeMac,
    );
    const wrongMagic = good.slice();
    wrongMagic.set(Magic.keyring, 0);
    expectArmdbError(() => decodeManifest(withManifestMac(wrongMagic), fakeMac), 'ARMDB_INTEGRITY');
    // Versions 1 to 3 are read (docs/format.md §1.4); 0 and 4 are another armdb's.
    for (const version of [0, 4]) {
      const wrongVersion = good.slice();
      wrongVersion[8] = version;
      expectArmdbError(() => decodeManifest(withManifestMac(wrongVersion), fakeMac), 'ARMDB_FORMAT_MISMATCH');
      expectArmdbError(() => peekManifestAlgorithm(wrongVersion), 'ARMDB_FORMAT_MISMATCH');
    }
  });

  it('a fileCount of 2^32-1 is ARMDB_INTEGRITY without allocating', () => {
    const manifest: Manifest = {
      epoch: 1,
      algorithm: 1,
      collectionKind: 1,
      databaseId: new Uint8Array(16),
      keySize: 16,
      valueSize: 0,
      shards: 1,
      shardPrefixBits: 0,
      activeKeyId: 1,
      nextFileId: 1,
      files: [],
    };
    const bytes = encodeManifest(manifest, fakeMac);
    expect(bytes.length).toBe(MANIFEST_HEADER_BYTES + MAC_BYTES);
    new DataView(bytes.buffer).setUint32(56, 0xffffffff, true);
    withManifestMac(bytes);
    expectArmdbError(() => decodeManifest(bytes, fakeMac), 'ARMDB_INTEGRITY');
    // Also at the limit and with a body that is long enough for a few entries.
    new DataView(bytes.buffer).setUint32(56, Limits.maxManifestFiles, true);
    expectArmdbError(() => decodeManifest(withManifestMac(bytes), fakeMac), 'ARMDB_INTEGRITY');
    const padded = new Uint8Array(MANIFEST_HEADER_BYTES + 3 * 120 + MAC_BYTES);
    padded.set(bytes.subarray(0, MANIFEST_HEADER_BYTES));
    new DataView(padded.buffer).setUint32(56, 0xffffffff, true);
    expectArmdbError(() => decodeManifest(withManifestMac(padded), fakeMac), 'ARMDB_INTEGRITY');
  });
});

describe('fuzz: keyring', () => {
  it('decodeKeyringV1: random bytes, with a stale and a recomputed CRC', () => {
    fc.assert(
      fc.property(randomWithMagic(Magic.keyring), (bytes) => {
        expectOnlyExpectedErrors(() => decodeKeyringV1(bytes));
        expectOnlyExpectedErrors(() => decodeKeyringV1(withKeyringCrc(bytes.slice())));
      }),
      options,
    );
  });

  it('decodeKeyringV1: mutated keyrings, CRC stale and recomputed; what parses re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(keyringArb, mutationsArb, (keyring, mutations) => {
        const encoded = encodeKeyringV1(keyring, fakeMac);
        for (const bytes of [mutate(encoded, mutations), withKeyringCrc(mutate(encoded, mutations))]) {
          expectOnlyExpectedErrors(() => {
            const decoded = decodeKeyringV1(bytes);
            const storedMac = bytes.slice(bytes.length - 4 - MAC_BYTES, bytes.length - 4);
            expect(toHex(encodeKeyringV1(decoded, () => storedMac))).toBe(toHex(bytes));
            expect(decoded.dataKeys.some((entry) => entry.keyId === decoded.activeKeyId)).toBe(true);
          });
        }
      }),
      options,
    );
  });

  it('a key count of 2^32-1 is ARMDB_INTEGRITY', () => {
    const bytes = encodeKeyringV1(
      {
        kekKind: 1,
        scrypt: { logN: 0, r: 0, p: 0 },
        kdfSalt: new Uint8Array(32),
        databaseId: new Uint8Array(16),
        activeKeyId: 1,
        wrappedMetaKey: new Uint8Array(60),
        dataKeys: [{ keyId: 1, wrapped: new Uint8Array(60) }],
      },
      fakeMac,
    );
    new DataView(bytes.buffer).setUint32(76, 0xffffffff, true);
    expectArmdbError(() => decodeKeyringV1(withKeyringCrc(bytes)), 'ARMDB_INTEGRITY');
  });

  it('scrypt parameters beyond the bounds are ARMDB_INTEGRITY before any KDF runs', () => {
    const base = {
      kekKind: 2 as const,
      kdfSalt: new Uint8Array(32),
      databaseId: new Uint8Array(16),
      activeKeyId: 1,
      wrappedMetaKey: new Uint8Array(60),
      dataKeys: [{ keyId: 1, wrapped: new Uint8Array(60) }],
    };
    for (const scrypt of [
      { logN: 9, r: 8, p: 1 },
      { logN: 21, r: 1, p: 1 },
      { logN: 20, r: 8, p: 1 }, // 1 GiB of memory
      { logN: 14, r: 33, p: 1 },
      { logN: 14, r: 8, p: 17 },
      { logN: 17, r: 8, p: 16 }, // too much work
      { logN: 14, r: 0, p: 1 },
      { logN: 14, r: 8, p: 0 },
    ]) {
      expectArmdbError(() => decodeKeyringV1(encodeKeyringV1({ ...base, scrypt }, fakeMac)), 'ARMDB_INTEGRITY');
    }
    // A raw-key keyring must not carry scrypt parameters.
    expectArmdbError(
      () => decodeKeyringV1(encodeKeyringV1({ ...base, kekKind: 1, scrypt: { logN: 14, r: 8, p: 1 } }, fakeMac)),
      'ARMDB_INTEGRITY',
    );
  });
});
