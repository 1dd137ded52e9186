/**
 * Record version 2 (docs/format.md §4.6): records aligned to 4 bytes in files whose tag file is
 * version 2, their hints (version 3, §6.5.3), and the padding and torn-tail rules with either
 * alignment (§3.2). Version 1 (8-byte alignment) stays readable beside it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Limits, PAGE_BYTES } from '../../../src/format/constants.js';
import {
  HintVersion,
  decodeHintChunk,
  encodeCompactHintChunk,
  hintEntryAt,
  hintVersionFor,
  recordVersionOfHint,
  type HintEntry,
} from '../../../src/format/hint.js';
import { nextRecordPosition, scanRecords, type ScannedRecord } from '../../../src/format/page.js';
import {
  RECORD_HEADER_BYTES,
  RECORD_VERSION,
  RecordFlag,
  RecordVersion,
  encodeRecord,
  recordAlignment,
  recordBytes,
  type RecordAlignment,
} from '../../../src/format/record.js';
import {
  SEED,
  ascii,
  expectArmdbError,
  filled,
  fromHex,
  hintEntryArb,
  recordListArb,
  snapshotRecord,
  toHex,
  writeRecordStream,
  type TestRecord,
} from './_support.js';

const ALIGNMENTS: readonly RecordAlignment[] = [8, 4];

function scanAll(bytes: Uint8Array, keySize: number, alignment: RecordAlignment): { records: ScannedRecord[]; resume: number } {
  const records: ScannedRecord[] = [];
  const resume = scanRecords(bytes, 0, 0, keySize, Limits.maxValueBytes, alignment, (record) => records.push(snapshotRecord(record)));
  return { records, resume };
}

describe('record versions (§4.6)', () => {
  it('new files are record version 2, 4-byte aligned; version 1 is 8-byte aligned', () => {
    expect(RECORD_VERSION).toBe(RecordVersion.aligned4);
    expect(recordAlignment(RecordVersion.aligned8)).toBe(8);
    expect(recordAlignment(RecordVersion.aligned4)).toBe(4);
    // 16-byte keys, 100-byte values: the benchmark's records.
    expect(recordBytes(16, 100, 8)).toBe(136);
    expect(recordBytes(16, 100, 4)).toBe(132);
    expect(recordBytes(1, 0, 4)).toBe(20);
    expect(recordBytes(1, 0, 8)).toBe(24);
  });

  it('golden vector: the record of Appendix A.5 in record version 2 is the same bytes, padded to 28', () => {
    const key = ascii('key1');
    const value = ascii('hello');
    const version1 = new Uint8Array(recordBytes(4, 5, 8)).fill(0xee);
    const version2 = new Uint8Array(recordBytes(4, 5, 4)).fill(0xee);
    expect(encodeRecord(version1, 0, 1, 0, key, value, 8)).toBe(32);
    expect(encodeRecord(version2, 0, 1, 0, key, value, 4)).toBe(28);
    expect(toHex(version1)).toBe('0100000000000000cb5428c3050000006b65793168656c6c6f00000000000000');
    expect(toHex(version2)).toBe('0100000000000000cb5428c3050000006b65793168656c6c6f000000');
  });

  it('property: random records round-trip through encode and scan in both versions', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALIGNMENTS),
        fc.integer({ min: 1, max: 48 }).chain((keySize) => fc.tuple(fc.constant(keySize), recordListArb(keySize, 60, 700))),
        (alignment, [keySize, records]) => {
          const stream = writeRecordStream(records, 0, alignment);
          const { records: seen, resume } = scanAll(stream.bytes, keySize, alignment);
          expect(resume).toBe(stream.bytes.length);
          expect(seen.map((record) => record.position)).toEqual(stream.positions);
          for (const [index, record] of seen.entries()) {
            const written = records[index]!;
            expect(record.position % alignment).toBe(0);
            expect(record.sequence).toBe(written.sequence);
            expect(record.tombstone).toBe((written.flags & RecordFlag.tombstone) !== 0);
            expect(record.batchContinues).toBe((written.flags & RecordFlag.batchContinues) !== 0);
            expect(record.key).toEqual(written.key);
            expect(record.value).toEqual(written.value);
            expect(record.recordBytes).toBe(recordBytes(keySize, written.value.length, alignment));
          }
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('a version-2 stream is smaller: no record takes more bytes than in version 1, and at most 4 fewer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 0, max: 5000 }), (keySize, valueLength) => {
        const saved = recordBytes(keySize, valueLength, 8) - recordBytes(keySize, valueLength, 4);
        expect(saved === 0 || saved === 4).toBe(true);
      }),
      { seed: SEED },
    );
  });

  it('padding rule with 4-byte alignment: a record ending 4, 8 or 12 bytes before a page end pushes the next one to the page', () => {
    const keySize = 8;
    for (const gap of [4, 8, 12, 16, 20]) {
      // One record that ends exactly `gap` bytes before the end of page 0, then a small one.
      const first: TestRecord = {
        sequence: 1,
        flags: 0,
        key: filled(keySize, 1),
        value: filled(PAGE_BYTES - gap - RECORD_HEADER_BYTES - keySize, 7),
      };
      const second: TestRecord = { sequence: 2, flags: 0, key: filled(keySize, 2), value: ascii('next') };
      const stream = writeRecordStream([first, second], 0, 4);
      const expectedSecond = gap < RECORD_HEADER_BYTES ? PAGE_BYTES : PAGE_BYTES - gap;
      expect(nextRecordPosition(PAGE_BYTES - gap)).toBe(expectedSecond);
      expect(stream.positions).toEqual([0, expectedSecond]);
      // The gap is zero, and the reader finds both records.
      expect(stream.bytes.subarray(PAGE_BYTES - gap, expectedSecond).every((byte) => byte === 0)).toBe(true);
      const { records } = scanAll(stream.bytes, keySize, 4);
      expect(records.map((record) => [record.sequence, record.position])).toEqual([
        [1, 0],
        [2, expectedSecond],
      ]);
    }
  });

  it('torn tail with either alignment: a record cut anywhere is not returned, and the scan resumes at its header', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALIGNMENTS), recordListArb(16, 30, 900), fc.nat(), (alignment, records, cutSeed) => {
        fc.pre(records.length > 0);
        const stream = writeRecordStream(records, 0, alignment);
        const lastIndex = records.length - 1;
        const lastStart = stream.positions[lastIndex]!;
        // Cut inside the last record (after its header, before its end).
        const lastEnd = lastStart + recordBytes(16, records[lastIndex]!.value.length, alignment);
        const cut = lastStart + RECORD_HEADER_BYTES + (cutSeed % (lastEnd - lastStart - RECORD_HEADER_BYTES));
        const { records: seen, resume } = scanAll(stream.bytes.subarray(0, cut), 16, alignment);
        expect(seen.length).toBe(lastIndex);
        expect(resume).toBe(lastStart);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('a 4-byte-aligned stream read as version 1 fails as ARMDB_INTEGRITY: the alignment is part of the format', () => {
    // Two records of 16 + 8 + 4 = 28 bytes: the second sits at 28, which is not a multiple of 8.
    const records: TestRecord[] = [1, 2].map((sequence) => ({ sequence, flags: 0, key: filled(8, sequence), value: filled(4, 9) }));
    const stream = writeRecordStream(records, 0, 4);
    expect(stream.positions).toEqual([0, 28]);
    expect(scanAll(stream.bytes, 8, 4).records.length).toBe(2);
    expectArmdbError(() => scanAll(stream.bytes, 8, 8), 'ARMDB_INTEGRITY');
  });
});

describe('hint version 3 (§6.5.3)', () => {
  // The version-2 golden example (§6.5.2) with the third record where 4-byte alignment puts it.
  const entries: HintEntry[] = [
    { key: ascii('abcd'), sequence: 1, tombstone: false, position: 0, valueLength: 100 },
    { key: ascii('wxyz'), sequence: 2 ** 40 + 7, tombstone: true, position: 4096, valueLength: 0 },
    { key: ascii('efgh'), sequence: 2 ** 40 + 8, tombstone: false, position: 4096 + 20, valueLength: 3 },
  ];
  const expected = fromHex(
    '03000000', // entry count
    '61626364', // keys
    '7778797a',
    '65666768',
    '0864', // head 1·8 (delta 1, position implied 0, length written); value length 100
    '03', // head 0·8 | position written | tombstone
    '878080808020', // sequence 2^40 + 7, whole
    '8008', // position 4096 / 4 = 1024
    '0803', // head 1·8 (position implied 4096 + 20); value length 3 (not the previous entry's 0)
  );

  it('golden vector: positions in units of 4, implied positions at 4-byte alignment, head = delta · 8 + flags', () => {
    expect(toHex(encodeCompactHintChunk(entries, 4, 4))).toBe(toHex(expected));
    const columns = decodeHintChunk(expected, 4, HintVersion.compactAligned4);
    const decoded = Array.from({ length: columns.count }, (_, index) => {
      const entry = hintEntryAt(columns, index, 4);
      return { ...entry, key: entry.key.slice() };
    });
    expect(decoded).toEqual(entries);
    // The same bytes read as version 2 mean other entries: the version is not interchangeable.
    const asVersion2 = decodeHintChunk(expected, 4, HintVersion.compact);
    expect(asVersion2.sequences[0]).toBe(2);
  });

  it('entries of equal value length in sequence take the key and a one-byte head (the same-length bit)', () => {
    const run: HintEntry[] = Array.from({ length: 10 }, (_, index) => ({
      key: filled(16, index),
      sequence: 1 + index * 3,
      tombstone: false,
      position: index * recordBytes(16, 100, 4),
      valueLength: 100,
    }));
    const bytes = encodeCompactHintChunk(run, 16, 4);
    // The count, the keys, the first entry's head and length, then a head byte each (3 · 8 + 4 = 0x1c).
    expect(bytes.length).toBe(4 + 10 * 16 + 2 + 9);
    expect(toHex(bytes.subarray(4 + 160))).toBe(`0864${'1c'.repeat(9)}`);
    // Version 2 writes every length: one byte more per entry.
    const run8 = run.map((entry, index) => ({ ...entry, position: index * recordBytes(16, 100, 8) }));
    expect(encodeCompactHintChunk(run8, 16, 8).length).toBe(4 + 10 * 16 + 2 * 10);
  });

  it.each([
    ['a tombstone with the same-length bit', fromHex('01000000', '61626364', '0d')],
    ['a value length written that the same-length bit could imply', fromHex('02000000', '61626364', '61626364', '0864', '0864')],
    ['a value length 0 written for a first entry (the previous length is 0)', fromHex('01000000', '61626364', '0800')],
  ])('version 3 entries: %s is ARMDB_INTEGRITY', (_name, bytes) => {
    expectArmdbError(() => decodeHintChunk(bytes, 4, HintVersion.compactAligned4), 'ARMDB_INTEGRITY');
  });

  it('each record version has its own hint version', () => {
    expect(hintVersionFor(RecordVersion.aligned8)).toBe(HintVersion.compact);
    expect(hintVersionFor(RecordVersion.aligned4)).toBe(HintVersion.compactAligned4);
    expect(recordVersionOfHint(HintVersion.fixed)).toBe(RecordVersion.aligned8);
    expect(recordVersionOfHint(HintVersion.compact)).toBe(RecordVersion.aligned8);
    expect(recordVersionOfHint(HintVersion.compactAligned4)).toBe(RecordVersion.aligned4);
  });

  it('property: entries of a 4-byte-aligned stream round-trip through a version-3 chunk', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALIGNMENTS), recordListArb(16, 60, 700), (alignment, records) => {
        const stream = writeRecordStream(records, 0, alignment);
        const hintEntries = records.map((record, index) => ({
          key: record.key,
          sequence: record.sequence,
          tombstone: (record.flags & RecordFlag.tombstone) !== 0,
          position: stream.positions[index]!,
          valueLength: record.value.length,
        }));
        const version = alignment === 4 ? HintVersion.compactAligned4 : HintVersion.compact;
        const columns = decodeHintChunk(encodeCompactHintChunk(hintEntries, 16, alignment), 16, version);
        expect(columns.count).toBe(hintEntries.length);
        for (const [index, entry] of hintEntries.entries()) expect(hintEntryAt(columns, index, 16)).toEqual(entry);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('property: arbitrary entries with 4-aligned positions round-trip', () => {
    // Halved multiples of 8: every multiple of 4 below 2^31, half of them not multiples of 8.
    const aligned = hintEntryArb(8).map((entry) => ({ ...entry, position: entry.position / 2 }));
    fc.assert(
      fc.property(fc.array(aligned, { maxLength: 30 }), (list) => {
        const columns = decodeHintChunk(encodeCompactHintChunk(list, 8, 4), 8, HintVersion.compactAligned4);
        expect(Array.from({ length: columns.count }, (_, index) => hintEntryAt(columns, index, 8))).toEqual(list);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
