/** ByteReader / ByteWriter bounds and the helpers in bytes.ts. */
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ArmdbError } from '../../../src/errors.js';
import { allocOut, ByteReader, ByteWriter, copyOut, equalBytes, isAllZero, SLAB_BYTES } from '../../../src/format/bytes.js';
import { SEED, expectArmdbError, fromHex, toHex } from './_support.js';

describe('ByteReader', () => {
  it('reads little-endian fields in order', () => {
    const reader = new ByteReader(fromHex('01', '0302', '07060504', '08090a0b0d000000', 'aabbcc'), 'test');
    expect(reader.u8()).toBe(0x01);
    expect(reader.u16()).toBe(0x0203);
    expect(reader.u32()).toBe(0x04050607);
    expect(reader.u64()).toBe(0x0d0b0a0908);
    expect(reader.remaining).toBe(3);
    expect(reader.offset).toBe(15);
    const view = reader.bytesView(2);
    expect(toHex(view)).toBe('aabb');
    expect(view.buffer).toBe(reader.bytes.buffer); // a view, not a copy
    const copy = reader.copy(1);
    expect(toHex(copy)).toBe('cc');
    expect(copy.buffer).not.toBe(reader.bytes.buffer);
    reader.end();
  });

  it('honours the byteOffset of a subarray', () => {
    const backing = fromHex('ffffffff', '78563412', 'ffffffff');
    const reader = new ByteReader(backing.subarray(4, 8), 'test');
    expect(reader.u32()).toBe(0x12345678);
    expectArmdbError(() => reader.u8(), 'ARMDB_INTEGRITY');
  });

  it('starts at the given position', () => {
    const reader = new ByteReader(fromHex('00000000', '2a000000'), 'test', 4);
    expect(reader.u32()).toBe(42);
  });

  it('reading past the end throws ARMDB_INTEGRITY for every field kind', () => {
    const reads: Array<[number, (reader: ByteReader) => unknown]> = [
      [1, (reader) => reader.u8()],
      [2, (reader) => reader.u16()],
      [4, (reader) => reader.u32()],
      [8, (reader) => reader.u64()],
      [5, (reader) => reader.bytesView(5)],
      [5, (reader) => reader.copy(5)],
      [5, (reader) => reader.zeros(5)],
    ];
    for (const [width, read] of reads) {
      for (let length = 0; length < width; length++) {
        const error = expectArmdbError(() => read(new ByteReader(new Uint8Array(length), 'thing')), 'ARMDB_INTEGRITY');
        expect(error.message).toContain('thing is truncated');
      }
      // With exactly enough bytes the read succeeds and the next one fails.
      const reader = new ByteReader(new Uint8Array(width), 'thing');
      read(reader);
      expect(reader.remaining).toBe(0);
      expectArmdbError(() => reader.u8(), 'ARMDB_INTEGRITY');
    }
  });

  it('a failed read does not move the cursor', () => {
    const reader = new ByteReader(new Uint8Array(3), 'test');
    expectArmdbError(() => reader.u32(), 'ARMDB_INTEGRITY');
    expect(reader.offset).toBe(0);
    expect(reader.u16()).toBe(0);
  });

  it('u64 accepts 2^53-1 and rejects 2^53 and above with ARMDB_INTEGRITY', () => {
    expect(new ByteReader(fromHex('ffffffffffff1f00'), 'test').u64()).toBe(Number.MAX_SAFE_INTEGER);
    expect(new ByteReader(fromHex('0000000001000000'), 'test').u64()).toBe(2 ** 32);
    for (const hex of ['0000000000002000', '0100000000002000', 'ffffffffffffffff', '0000000000000080', '00000000ffff3f00']) {
      expectArmdbError(() => new ByteReader(fromHex(hex), 'test').u64(), 'ARMDB_INTEGRITY');
    }
  });

  it('u64 round-trips through ByteWriter for every safe integer', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (value) => {
        const bytes = new ByteWriter(8).u64(value).finish();
        expect(new ByteReader(bytes, 'test').u64()).toBe(value);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('u64 of any 8 bytes is a safe integer or ARMDB_INTEGRITY', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (bytes) => {
        try {
          expect(Number.isSafeInteger(new ByteReader(bytes, 'test').u64())).toBe(true);
          expect((bytes[6] ?? 0) < 0x20 && bytes[7] === 0).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(ArmdbError);
          expect((bytes[6] ?? 0) >= 0x20 || bytes[7] !== 0).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('zeros() rejects a non-zero reserved byte and end() rejects trailing bytes', () => {
    expectArmdbError(() => new ByteReader(fromHex('000100'), 'test').zeros(3), 'ARMDB_INTEGRITY');
    new ByteReader(fromHex('000000'), 'test').zeros(3);
    const reader = new ByteReader(fromHex('0000'), 'test');
    reader.u8();
    expectArmdbError(() => reader.end(), 'ARMDB_INTEGRITY');
  });
});

describe('ByteWriter', () => {
  it('writes little-endian fields and zero fill', () => {
    const bytes = new ByteWriter(1 + 2 + 4 + 8 + 3 + 2)
      .u8(0x01)
      .u16(0x0203)
      .u32(0x04050607)
      .u64(0x0d0b0a0908)
      .raw(fromHex('aabbcc'), 3)
      .zeros(2)
      .finish();
    expect(toHex(bytes)).toBe('01' + '0302' + '07060504' + '08090a0b0d000000' + 'aabbcc' + '0000');
  });

  it('refuses overflow, underfill, wrong raw lengths and unsafe u64 values (programming errors, not ArmdbError)', () => {
    expect(() => new ByteWriter(3).u32(1)).toThrow(/overflow/);
    expect(() => new ByteWriter(4).u16(1).finish()).toThrow(/underfilled/);
    expect(() => new ByteWriter(4).raw(new Uint8Array(3), 4)).toThrow(/expected 4 bytes/);
    expect(() => new ByteWriter(8).u64(2 ** 53)).toThrow(/out of range/);
    expect(() => new ByteWriter(8).u64(-1)).toThrow(/out of range/);
    expect(() => new ByteWriter(8).u64(1.5)).toThrow(/out of range/);
    let caught: unknown;
    try {
      new ByteWriter(0).u8(0);
    } catch (error) {
      caught = error;
    }
    expect(caught).not.toBeInstanceOf(ArmdbError);
  });
});

describe('equalBytes and isAllZero', () => {
  it('equalBytes compares length and content', () => {
    expect(equalBytes(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(equalBytes(fromHex('0102'), fromHex('0102'))).toBe(true);
    expect(equalBytes(fromHex('0102'), fromHex('0103'))).toBe(false);
    expect(equalBytes(fromHex('0102'), fromHex('010200'))).toBe(false);
    expect(equalBytes(fromHex('010200'), fromHex('0102'))).toBe(false);
    expect(equalBytes(fromHex('80'), fromHex('00'))).toBe(false);
    // Views with different offsets into one buffer compare by content.
    const backing = fromHex('0a0b0a0b');
    expect(equalBytes(backing.subarray(0, 2), backing.subarray(2, 4))).toBe(true);
  });

  it('equalBytes agrees with a byte-by-byte comparison (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.boolean(), (left, other, same) => {
        const right = same ? left.slice() : other;
        const expected = left.length === right.length && left.every((byte, index) => byte === right[index]);
        expect(equalBytes(left, right)).toBe(expected);
        expect(equalBytes(right, left)).toBe(expected);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('isAllZero', () => {
    expect(isAllZero(new Uint8Array(0))).toBe(true);
    expect(isAllZero(new Uint8Array(16))).toBe(true);
    expect(isAllZero(fromHex('00000001'))).toBe(false);
    expect(isAllZero(fromHex('80000000'))).toBe(false);
  });
});

describe('copyOut', () => {
  it('every copy is an independent plain Uint8Array with the same bytes, at every size around the slab limits', () => {
    const copies: [Uint8Array, Uint8Array][] = [];
    for (const length of [0, 1, 63, 64, 65, 100, 1000, 4095, 4096, 4097, 10_000]) {
      for (let repeat = 0; repeat < 20; repeat++) {
        const source = Uint8Array.from({ length }, (_, index) => (index * 31 + length + repeat) & 255);
        const copy = copyOut(source);
        expect(Object.getPrototypeOf(copy)).toBe(Uint8Array.prototype);
        expect(copy.length).toBe(length);
        expect(Buffer.from(copy).equals(Buffer.from(source))).toBe(true);
        copies.push([copy, source.slice()]);
      }
    }
    // Overwrite every copy: no other copy (sharing a slab or not) changes.
    for (const [copy] of copies) copy.fill(0xee);
    for (const [copy, original] of copies) {
      copy.set(original);
    }
    for (const [copy, original] of copies) expect(Buffer.from(copy).equals(Buffer.from(original))).toBe(true);
    // Copies are 8-aligned and never overlap.
    const slabbed = copies.map(([copy]) => copy).filter((copy) => copy.length > 64 && copy.length <= SLAB_BYTES / 2);
    for (const copy of slabbed) expect(copy.byteOffset % 8).toBe(0);
    const byBuffer = new Map<ArrayBufferLike, Uint8Array[]>();
    for (const copy of slabbed) byBuffer.set(copy.buffer, [...(byBuffer.get(copy.buffer) ?? []), copy]);
    for (const group of byBuffer.values()) {
      const sorted = [...group].sort((left, right) => left.byteOffset - right.byteOffset);
      for (let index = 1; index < sorted.length; index++)
        expect(sorted[index]!.byteOffset).toBeGreaterThanOrEqual(sorted[index - 1]!.byteOffset + sorted[index - 1]!.length);
    }
  });

  it('slabs are never detached by a transfer (it would silently empty the other values in it)', () => {
    let first = copyOut(new Uint8Array(100).fill(1));
    let second = copyOut(new Uint8Array(100).fill(2));
    if (first.buffer !== second.buffer) {
      first = second;
      second = copyOut(new Uint8Array(100).fill(2));
    }
    expect(first.buffer).toBe(second.buffer);
    // Node copies an untransferable buffer instead of moving it (and does not throw).
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(first.buffer, [first.buffer as ArrayBuffer]);
    port1.close();
    port2.close();
    expect(first.buffer.byteLength).toBeGreaterThan(0);
    expect(second.length).toBe(100);
    expect(second.every((byte) => byte === 2)).toBe(true);
  });
});

describe('allocOut', () => {
  it('gives zero-filled, independent, 8-aligned ranges of shared slabs from 65 bytes to 4 KiB, and memory of their own otherwise', () => {
    const arrays: Uint8Array[] = [];
    for (const length of [0, 1, 64, 65, 100, 2048, 4096, 4097, 10_000]) {
      for (let repeat = 0; repeat < 5; repeat++) {
        const array = allocOut(length);
        expect(Object.getPrototypeOf(array)).toBe(Uint8Array.prototype);
        expect(array.length).toBe(length);
        expect(isAllZero(array)).toBe(true);
        const slabbed = length > 64 && length <= SLAB_BYTES / 2;
        if (slabbed) {
          expect(array.byteOffset % 8).toBe(0);
          expect(array.buffer.byteLength).toBe(SLAB_BYTES);
        } else expect(array.buffer.byteLength).toBe(length);
        array.fill(arrays.length & 0xff);
        arrays.push(array);
      }
    }
    // Filling one never changed another: each still holds its own byte.
    for (const [index, array] of arrays.entries()) expect(array.every((byte) => byte === (index & 0xff))).toBe(true);
  });
});
