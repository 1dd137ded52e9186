/** Page geometry, the padding rule (docs/format.md §3.2) and scanRecords. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Limits, PAGE_BYTES } from '../../../src/format/constants.js';
import { RECORD_HEADER_BYTES, encodeRecord, recordBytes } from '../../../src/format/record.js';
import { alignUpToPage, nextRecordPosition, pageIndexOf, pageSpan, pageStart, scanRecords } from '../../../src/format/page.js';
import type { ScannedRecord } from '../../../src/format/page.js';
import { SEED, expectArmdbError, filled, recordListArb, snapshotRecord, writeRecordStream } from './_support.js';
import type { TestRecord } from './_support.js';

const KEY_SIZE = 8;
const key = (index: number): Uint8Array => filled(KEY_SIZE, 0x30 + (index % 64));

/** A record whose total size (header + key + value, padded) is exactly `size` bytes. */
function recordOfSize(sequence: number, size: number): TestRecord {
  const valueLength = size - RECORD_HEADER_BYTES - KEY_SIZE;
  if (valueLength < 0 || recordBytes(KEY_SIZE, valueLength, 8) !== size) throw new Error(`no record of ${size} bytes`);
  return { sequence, flags: 0, key: key(sequence), value: filled(valueLength, sequence & 0xff) };
}

function scanAll(bytes: Uint8Array, bufferPosition = 0, fromPosition = bufferPosition): { records: ScannedRecord[]; resume: number } {
  const records: ScannedRecord[] = [];
  const resume = scanRecords(bytes, bufferPosition, fromPosition, KEY_SIZE, Limits.maxValueBytes, 8, (record) =>
    records.push(snapshotRecord(record)),
  );
  return { records, resume };
}

describe('page geometry', () => {
  it('nextRecordPosition applies the padding rule', () => {
    expect(nextRecordPosition(4088)).toBe(4096);
    expect(nextRecordPosition(4080)).toBe(4080);
    expect(nextRecordPosition(4096)).toBe(4096);
    expect(nextRecordPosition(0)).toBe(0);
    expect(nextRecordPosition(8)).toBe(8);
    expect(nextRecordPosition(2 * PAGE_BYTES - 8)).toBe(2 * PAGE_BYTES);
    expect(nextRecordPosition(2 * PAGE_BYTES - 16)).toBe(2 * PAGE_BYTES - 16);
  });

  it('a header at nextRecordPosition never crosses a page boundary and at most 8 bytes are skipped', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 28 }).map((slot) => slot * 8),
        (position) => {
          const next = nextRecordPosition(position);
          expect(next - position === 0 || next - position === 8).toBe(true);
          expect((next % PAGE_BYTES) + RECORD_HEADER_BYTES).toBeLessThanOrEqual(PAGE_BYTES);
          expect(nextRecordPosition(next)).toBe(next);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('page index, start, alignment and span', () => {
    expect(pageIndexOf(0)).toBe(0);
    expect(pageIndexOf(4095)).toBe(0);
    expect(pageIndexOf(4096)).toBe(1);
    expect(pageStart(3)).toBe(3 * PAGE_BYTES);
    expect(alignUpToPage(0)).toBe(0);
    expect(alignUpToPage(1)).toBe(4096);
    expect(alignUpToPage(4096)).toBe(4096);
    expect(alignUpToPage(4097)).toBe(8192);
    expect(pageSpan(0, 4096)).toEqual({ firstPageIndex: 0, pageCount: 1 });
    expect(pageSpan(4000, 200)).toEqual({ firstPageIndex: 0, pageCount: 2 });
    expect(pageSpan(4096, 0)).toEqual({ firstPageIndex: 1, pageCount: 1 });
    expect(pageSpan(100, 3 * PAGE_BYTES)).toEqual({ firstPageIndex: 0, pageCount: 4 });
  });
});

describe('scanRecords', () => {
  it('finds the record at 4096 after a first page whose last record ends at 4088 (the armdb 0.x stall)', () => {
    // 3 × 1016 + 1040 = 4088: the first page ends in an 8-byte zero gap.
    const records = [
      recordOfSize(1, 1016),
      recordOfSize(2, 1016),
      recordOfSize(3, 1016),
      recordOfSize(4, 1040),
      recordOfSize(5, 48),
      recordOfSize(6, 200),
    ];
    const stream = writeRecordStream(records);
    expect(stream.positions).toEqual([0, 1016, 2032, 3048, 4096, 4144]);
    expect(stream.bytes.length).toBe(2 * PAGE_BYTES);
    expect([...stream.bytes.subarray(4088, 4096)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);

    const { records: scanned, resume } = scanAll(stream.bytes);
    expect(scanned.map((record) => record.position)).toEqual([0, 1016, 2032, 3048, 4096, 4144]);
    expect(scanned.map((record) => record.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(scanned[4]?.value).toEqual(records[4]?.value);
    expect(scanned[5]?.value).toEqual(records[5]?.value);
    expect(resume).toBe(2 * PAGE_BYTES);

    // Resuming exactly at the gap also lands on 4096.
    const fromGap = scanAll(stream.bytes, 0, 4088);
    expect(fromGap.records.map((record) => record.position)).toEqual([4096, 4144]);
    // And so does a scan of the second page alone, buffered from 4096.
    const secondPage = scanAll(stream.bytes.subarray(4096), 4096, 4088);
    expect(secondPage.records.map((record) => record.sequence)).toEqual([5, 6]);
  });

  it('reads a record that spans a page boundary intact', () => {
    // 3 × 1000 = 3000, then a 2000-byte record from 3000 to 5000.
    const records = [recordOfSize(1, 1000), recordOfSize(2, 1000), recordOfSize(3, 1000), recordOfSize(4, 2000), recordOfSize(5, 24)];
    const stream = writeRecordStream(records);
    expect(stream.positions).toEqual([0, 1000, 2000, 3000, 5000]);
    const { records: scanned } = scanAll(stream.bytes);
    expect(scanned.map((record) => record.position)).toEqual([0, 1000, 2000, 3000, 5000]);
    const spanning = scanned[3];
    expect(spanning?.value).toEqual(records[3]?.value);
    expect(spanning?.recordBytes).toBe(2000);
    expect(pageSpan(3000, 2000)).toEqual({ firstPageIndex: 0, pageCount: 2 });
  });

  it('treats an all-zero header as padding to the next page boundary', () => {
    const bytes = new Uint8Array(3 * PAGE_BYTES);
    const first = recordOfSize(1, 32);
    const second = recordOfSize(2, 64);
    const third = recordOfSize(3, 40);
    encodeRecord(bytes, 0, first.sequence, first.flags, first.key, first.value);
    // 32..4096 zero (a sealed, zero-padded tail), record at 4096, zeros up to 8192, record at 8192.
    encodeRecord(bytes, 4096, second.sequence, second.flags, second.key, second.value);
    encodeRecord(bytes, 8192, third.sequence, third.flags, third.key, third.value);
    const { records, resume } = scanAll(bytes);
    expect(records.map((record) => record.position)).toEqual([0, 4096, 8192]);
    expect(resume).toBe(3 * PAGE_BYTES);
  });

  it('an all-zero page yields nothing and resumes at its end', () => {
    const { records, resume } = scanAll(new Uint8Array(2 * PAGE_BYTES));
    expect(records).toEqual([]);
    expect(resume).toBe(2 * PAGE_BYTES);
  });

  it('returns the position of an incomplete record and resumes from it exactly once', () => {
    const records = [
      recordOfSize(1, 1016),
      recordOfSize(2, 1016),
      recordOfSize(3, 1016),
      recordOfSize(4, 1040),
      recordOfSize(5, 48),
      recordOfSize(6, 200),
    ];
    const stream = writeRecordStream(records);
    // Cut inside record 4 (3048..4088): records 1–3 come back, resume at 3048.
    const cut = 3500;
    const part = scanAll(stream.bytes.subarray(0, cut));
    expect(part.records.map((record) => record.sequence)).toEqual([1, 2, 3]);
    expect(part.resume).toBe(3048);
    const rest = scanAll(stream.bytes, 0, part.resume);
    expect(rest.records.map((record) => record.sequence)).toEqual([4, 5, 6]);

    // Cut inside a header: 10 bytes of record 5's header.
    const headerCut = scanAll(stream.bytes.subarray(0, 4106));
    expect(headerCut.records.map((record) => record.sequence)).toEqual([1, 2, 3, 4]);
    expect(headerCut.resume).toBe(4096);
  });

  it('partial scans resumed with longer buffers yield every record exactly once (property)', () => {
    fc.assert(
      fc.property(
        recordListArb(KEY_SIZE, 60, 900),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }),
        (records, cutFractions) => {
          const stream = writeRecordStream(records);
          const cuts = cutFractions.map((fraction) => Math.floor(fraction * stream.bytes.length)).sort((left, right) => left - right);
          cuts.push(stream.bytes.length);
          const seen: number[] = [];
          let resume = 0;
          for (const cut of cuts) {
            // Re-read from the page that holds the resume point, as a reader of sealed pages would.
            const bufferPosition = Math.min(pageStart(pageIndexOf(resume)), cut);
            const buffer = stream.bytes.subarray(bufferPosition, Math.max(cut, bufferPosition));
            resume = scanRecords(buffer, bufferPosition, resume, KEY_SIZE, Limits.maxValueBytes, 8, (record) => {
              seen.push(record.position);
              expect(record.sequence).toBe(seen.length);
            });
            expect(resume).toBeLessThanOrEqual(Math.max(cut, bufferPosition) + PAGE_BYTES);
          }
          expect(seen).toEqual(stream.positions);
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('a corrupted CRC is ARMDB_INTEGRITY', () => {
    const records = [recordOfSize(1, 64), recordOfSize(2, 64), recordOfSize(3, 64)];
    const stream = writeRecordStream(records);
    const valueByte = stream.bytes.slice();
    valueByte[64 + 40] = (valueByte[64 + 40] ?? 0) ^ 0x01; // inside record 2's value
    expectArmdbError(() => scanAll(valueByte), 'ARMDB_INTEGRITY');
    const crcField = stream.bytes.slice();
    crcField[64 + 8] = (crcField[64 + 8] ?? 0) ^ 0x80; // record 2's stored CRC
    expectArmdbError(() => scanAll(crcField), 'ARMDB_INTEGRITY');
    const keyByte = stream.bytes.slice();
    keyByte[128 + 16] = (keyByte[128 + 16] ?? 0) ^ 0x10; // record 3's key
    expectArmdbError(() => scanAll(keyByte), 'ARMDB_INTEGRITY');
    // The records before the damage were visited before the error.
    const visited: number[] = [];
    expect(() => scanRecords(valueByte, 0, 0, KEY_SIZE, Limits.maxValueBytes, 8, (record) => visited.push(record.sequence))).toThrow();
    expect(visited).toEqual([1]);
  });

  it('rejects a value length above maxValueBytes, reserved bits and sequence 0 as ARMDB_INTEGRITY', () => {
    const stream = writeRecordStream([recordOfSize(1, 64)]);
    expectArmdbError(() => scanRecords(stream.bytes, 0, 0, KEY_SIZE, 10, 8, () => undefined), 'ARMDB_INTEGRITY');
    const reserved = stream.bytes.slice();
    reserved[6] = 0x20; // bit 53
    expectArmdbError(() => scanAll(reserved), 'ARMDB_INTEGRITY');
    const zeroSequence = stream.bytes.slice();
    zeroSequence[0] = 0;
    expectArmdbError(() => scanAll(zeroSequence), 'ARMDB_INTEGRITY');
  });

  it('rejects an unaligned start position as ARMDB_INTEGRITY', () => {
    const stream = writeRecordStream([recordOfSize(1, 64)]);
    expectArmdbError(() => scanAll(stream.bytes, 0, 4), 'ARMDB_INTEGRITY');
  });
});
