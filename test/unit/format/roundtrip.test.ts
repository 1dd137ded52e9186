/** decode ∘ encode is the identity for every codec, over random valid field values. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FileKind, Limits, TagFileVersion } from '../../../src/format/constants.js';
import { RecordFlag, decodeRecordHeader, encodeRecord, recordBytes, verifyRecordChecksum } from '../../../src/format/record.js';
import {
  TAG_HEADER_BYTES,
  decodeTagFileFooter,
  decodeTagFileHeader,
  encodeTagFileFooter,
  encodeTagFileHeader,
  verifyTagFileHeader,
} from '../../../src/format/tag-file.js';
import {
  HINT_CHUNK_FRAME_BYTES,
  decodeHintChunkFrame,
  decodeHintEntries,
  decodeHintHeader,
  encodeHintChunkFrame,
  encodeHintEntries,
  encodeHintHeader,
  compactHintEntryMaxBytes,
  decodeHintChunk,
  encodeCompactHintChunk,
  hintEntryAt,
  hintEntryBytes,
  HintVersion,
  verifyHintHeader,
} from '../../../src/format/hint.js';
import type { HintEntry } from '../../../src/format/hint.js';
import { decodeManifest, encodeManifest, peekManifestAlgorithm } from '../../../src/format/manifest.js';
import { decodeKeyringV1, encodeKeyringV1, verifyKeyringMac } from '../../../src/format/keyring.js';
import { scanRecords } from '../../../src/format/page.js';
import type { ScannedRecord } from '../../../src/format/page.js';
import {
  SEED,
  bytesOf,
  fakeMac,
  hintChunkFrameArb,
  hintEntryArb,
  identityArb,
  keyringArb,
  manifestArb,
  recordListArb,
  sequenceArb,
  snapshotRecord,
  tagFooterArb,
  writeRecordStream,
} from './_support.js';

const options = { seed: SEED, numRuns: 300 };

describe('round-trips', () => {
  it('record: header and checksum', () => {
    fc.assert(
      fc.property(
        sequenceArb,
        fc.constantFrom(0, RecordFlag.tombstone, RecordFlag.batchContinues, RecordFlag.tombstone | RecordFlag.batchContinues),
        fc.integer({ min: 0, max: 64 }).chain((keySize) => bytesOf(keySize)),
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: 64 }).map((slot) => slot * 8),
        (sequence, flags, key, rawValue, offset) => {
          const tombstone = (flags & RecordFlag.tombstone) !== 0;
          const value = tombstone ? new Uint8Array(0) : rawValue;
          const size = recordBytes(key.length, value.length, 8);
          const target = new Uint8Array(offset + size).fill(0xee);
          expect(encodeRecord(target, offset, sequence, flags, key, value)).toBe(size);
          expect(size % 8).toBe(0);
          expect([...target.subarray(offset + 16 + key.length + value.length, offset + size)].every((byte) => byte === 0)).toBe(true);
          expect(decodeRecordHeader(target, offset, Limits.maxValueBytes)).toEqual({
            sequence,
            tombstone,
            batchContinues: (flags & RecordFlag.batchContinues) !== 0,
            valueLength: value.length,
          });
          verifyRecordChecksum(target, offset, key.length, value.length);
          expect(target.subarray(offset + 16, offset + 16 + key.length)).toEqual(key);
          expect(target.subarray(offset + 16 + key.length, offset + 16 + key.length + value.length)).toEqual(value);
        },
      ),
      options,
    );
  });

  it('record stream: scanRecords returns every record written', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 48 }).chain((keySize) => fc.tuple(fc.constant(keySize), recordListArb(keySize, 60, 700))),
        ([keySize, records]) => {
          const stream = writeRecordStream(records);
          const seen: ScannedRecord[] = [];
          const resume = scanRecords(stream.bytes, 0, 0, keySize, Limits.maxValueBytes, 8, (record) => seen.push(snapshotRecord(record)));
          expect(resume).toBe(stream.bytes.length);
          expect(seen.map((record) => record.position)).toEqual(stream.positions);
          seen.forEach((record, index) => {
            const written = records[index];
            if (written === undefined) throw new Error('more records scanned than written');
            expect(record.sequence).toBe(written.sequence);
            expect(record.tombstone).toBe((written.flags & RecordFlag.tombstone) !== 0);
            expect(record.batchContinues).toBe((written.flags & RecordFlag.batchContinues) !== 0);
            expect(record.key).toEqual(written.key);
            expect(record.value).toEqual(written.value);
            expect(record.recordBytes).toBe(recordBytes(keySize, written.value.length, 8));
          });
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('tag-file header', () => {
    fc.assert(
      fc.property(identityArb(FileKind.data), fc.uint8Array({ maxLength: 64 }), (identity, trailing) => {
        const bytes = encodeTagFileHeader(identity, fakeMac);
        expect(bytes.length).toBe(TAG_HEADER_BYTES);
        // The header is read from the front of a file that also holds tags.
        const file = new Uint8Array(bytes.length + trailing.length);
        file.set(bytes);
        file.set(trailing, bytes.length);
        const header = decodeTagFileHeader(file);
        expect(header).toEqual({ ...identity, mac: fakeMac(bytes.subarray(0, 96)), version: TagFileVersion.aligned4 });
        verifyTagFileHeader(file, header, fakeMac);
      }),
      options,
    );
  });

  it('tag-file footer', () => {
    fc.assert(
      fc.property(tagFooterArb, (footer) => {
        expect(decodeTagFileFooter(encodeTagFileFooter(footer, fakeMac), fakeMac)).toEqual(footer);
      }),
      options,
    );
  });

  it('hint header', () => {
    fc.assert(
      fc.property(identityArb(FileKind.hint), fc.constantFrom(HintVersion.fixed, HintVersion.compact), (identity, version) => {
        const bytes = encodeHintHeader(identity, fakeMac, version);
        const header = decodeHintHeader(bytes);
        expect(header).toEqual({ ...identity, mac: fakeMac(bytes.subarray(0, 96)), version });
        verifyHintHeader(bytes, header, fakeMac);
      }),
      options,
    );
  });

  it('hint entries, version 2: in any order, any sequence and position', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 64 })
          .chain((keySize) => fc.tuple(fc.constant(keySize), fc.array(hintEntryArb(keySize), { maxLength: 20 }))),
        ([keySize, entries]) => {
          const bytes = encodeCompactHintChunk(entries, keySize);
          expect(bytes.length).toBeLessThanOrEqual(4 + entries.length * compactHintEntryMaxBytes(keySize));
          const columns = decodeHintChunk(bytes, keySize, HintVersion.compact);
          const decoded = Array.from({ length: columns.count }, (_, index) => {
            const entry = hintEntryAt(columns, index, keySize);
            return { ...entry, key: entry.key.slice() };
          });
          expect(decoded).toEqual(entries);
        },
      ),
      options,
    );
  });

  it('hint entries, version 2, in record-stream order: 2 bytes beside a key for records of up to 127 bytes of value', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 127 }), { minLength: 1, maxLength: 50 }), (valueLengths) => {
        let position = 0;
        const entries = valueLengths.map((valueLength, index) => {
          const entry = { key: new Uint8Array(16).fill(index), sequence: 1000 + index, tombstone: false, position, valueLength };
          position += recordBytes(16, valueLength, 8);
          return entry;
        });
        const bytes = encodeCompactHintChunk(entries, 16);
        // Every head is one byte but the first, whose delta is 1000 (from 0 at the chunk's start): two.
        expect(bytes.length).toBe(4 + entries.length * 18 + 1);
      }),
      options,
    );
  });

  it('hint entries', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 64 })
          .chain((keySize) => fc.tuple(fc.constant(keySize), fc.array(hintEntryArb(keySize), { maxLength: 20 }))),
        ([keySize, entries]) => {
          const bytes = encodeHintEntries(entries, keySize);
          expect(bytes.length).toBe(entries.length * hintEntryBytes(keySize));
          const decoded: HintEntry[] = [];
          decodeHintEntries(bytes, keySize, (entry) => decoded.push({ ...entry, key: entry.key.slice() }));
          expect(decoded).toEqual(entries);
        },
      ),
      options,
    );
  });

  it('hint chunk frame', () => {
    fc.assert(
      fc.property(hintChunkFrameArb, fc.nat({ max: 1000 }), (frame, slack) => {
        const bytes = encodeHintChunkFrame(frame);
        expect(bytes.length).toBe(HINT_CHUNK_FRAME_BYTES);
        expect(decodeHintChunkFrame(bytes, frame.plaintextBytes + 16 + slack)).toEqual(frame);
      }),
      options,
    );
  });

  it('manifest', () => {
    fc.assert(
      fc.property(manifestArb, (manifest) => {
        const bytes = encodeManifest(manifest, fakeMac);
        expect(peekManifestAlgorithm(bytes)).toBe(manifest.algorithm);
        expect(decodeManifest(bytes, fakeMac)).toEqual(manifest);
      }),
      options,
    );
  });

  it('keyring', () => {
    fc.assert(
      fc.property(keyringArb, (keyring) => {
        const bytes = encodeKeyringV1(keyring, fakeMac);
        expect(decodeKeyringV1(bytes)).toEqual(keyring);
        expect(verifyKeyringMac(bytes, fakeMac)).toBe(true);
      }),
      options,
    );
  });
});
