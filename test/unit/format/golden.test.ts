/**
 * Golden byte vectors: they freeze the on-disk format. Each expected value below was produced once,
 * checked against an independent hand-built layout (Buffer writes at the offsets documented in the
 * source), and pasted here literally. A change to any byte layout must fail these tests; if the
 * change is intended it needs a FORMAT_VERSION bump and new vectors.
 *
 * The fake MAC is plain SHA-256 of the MAC'd bytes (see _support.ts).
 */
import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FORMAT_VERSION, MANIFEST_FORMAT_VERSION, PAGE_BYTES, TagFileVersion } from '../../../src/format/constants.js';
import { RecordFlag, decodeRecordHeader, encodeRecord, recordBytes, verifyRecordChecksum } from '../../../src/format/record.js';
import {
  TAG_FOOTER_BYTES,
  TAG_HEADER_BYTES,
  decodeTagFileFooter,
  decodeTagFileHeader,
  encodeTagFileFooter,
  encodeTagFileHeader,
  verifyTagFileHeader,
} from '../../../src/format/tag-file.js';
import type { FileIdentity, MacFunction } from '../../../src/format/tag-file.js';
import {
  decodeHintChunk,
  decodeHintChunkFrame,
  decodeHintEntries,
  decodeHintHeader,
  encodeCompactHintChunk,
  encodeHintChunkFrame,
  encodeHintEntries,
  encodeHintHeader,
  hintEntryAt,
  HintVersion,
  verifyHintHeader,
} from '../../../src/format/hint.js';
import type { HintEntry } from '../../../src/format/hint.js';
import {
  MANIFEST_FILE_ENTRY_BYTES,
  MANIFEST_HEADER_BYTES,
  decodeManifest,
  encodeManifest,
  peekManifestAlgorithm,
  peekManifestFormatVersion,
} from '../../../src/format/manifest.js';
import type { Manifest } from '../../../src/format/manifest.js';
import { decodeManifestLog, encodeManifestRecord, frameManifestAppend } from '../../../src/format/manifest.js';
import { KEYRING_HEADER_BYTES, decodeKeyringV1, encodeKeyringV1, verifyKeyringMac } from '../../../src/format/keyring.js';
import type { KeyringV1 as Keyring } from '../../../src/format/keyring.js';
import { ascii, counting, fakeMac, filled, fromHex, le16, le32, toHex } from './_support.js';

function record(sequence: number, flags: number, key: Uint8Array, value: Uint8Array): Uint8Array {
  const target = new Uint8Array(recordBytes(key.length, value.length, 8));
  expect(encodeRecord(target, 0, sequence, flags, key, value)).toBe(target.length);
  return target;
}

/** CRC-32 as documented: bytes 0..8 ‖ bytes 12..16 ‖ key ‖ value; computed here without record.ts. */
function documentedRecordCrc(bytes: Uint8Array, keySize: number, valueLength: number): number {
  let crc = crc32(bytes.subarray(0, 8));
  crc = crc32(bytes.subarray(12, 16), crc);
  crc = crc32(bytes.subarray(16, 16 + keySize), crc);
  return crc32(bytes.subarray(16 + keySize, 16 + keySize + valueLength), crc) >>> 0;
}

describe('record golden vectors', () => {
  it('normal record', () => {
    const bytes = record(0x123456789ab, 0, ascii('key-0001'), ascii('hello'));
    const expected = fromHex('ab896745230100009af87e2405000000', '6b65792d3030303168656c6c6f000000');
    expect(toHex(bytes)).toBe(toHex(expected));
    // Layout: u64 sequence word at 0, CRC at 8, value length at 12, key at 16, value, zero padding.
    expect(le32(bytes, 0)).toBe(0x456789ab);
    expect(le32(bytes, 4)).toBe(0x123);
    expect(le32(bytes, 8)).toBe(documentedRecordCrc(bytes, 8, 5));
    expect(le32(bytes, 12)).toBe(5);
    expect(toHex(bytes.subarray(16, 24))).toBe(toHex(ascii('key-0001')));
    expect(toHex(bytes.subarray(24, 29))).toBe(toHex(ascii('hello')));
    expect([...bytes.subarray(29)]).toEqual([0, 0, 0]);
    expect(decodeRecordHeader(expected, 0, 1024)).toEqual({
      sequence: 0x123456789ab,
      tombstone: false,
      batchContinues: false,
      valueLength: 5,
    });
    verifyRecordChecksum(expected, 0, 8, 5);
  });

  it('tombstone', () => {
    const bytes = record(2, RecordFlag.tombstone, ascii('key-0002'), new Uint8Array(0));
    const expected = fromHex('020000000000008047dad3e700000000', '6b65792d30303032');
    expect(toHex(bytes)).toBe(toHex(expected));
    expect(bytes[7]).toBe(0x80); // bit 63 of the sequence word
    expect(le32(bytes, 8)).toBe(documentedRecordCrc(bytes, 8, 0));
    expect(le32(bytes, 12)).toBe(0);
    expect(decodeRecordHeader(expected, 0, 1024)).toEqual({ sequence: 2, tombstone: true, batchContinues: false, valueLength: 0 });
    verifyRecordChecksum(expected, 0, 8, 0);
  });

  it('batchContinues record with the largest sequence number', () => {
    const bytes = record(2 ** 53 - 1, RecordFlag.batchContinues, ascii('key-0003'), counting(11, 0));
    const expected = fromHex('ffffffffffff1f4044bb36f90b000000', '6b65792d303030330001020304050607', '08090a0000000000');
    expect(toHex(bytes)).toBe(toHex(expected));
    expect(le32(bytes, 4)).toBe(0x401fffff); // bit 62 + the top 21 sequence bits
    expect(le32(bytes, 8)).toBe(documentedRecordCrc(bytes, 8, 11));
    expect(le32(bytes, 12)).toBe(11);
    expect(bytes.length).toBe(40);
    expect(decodeRecordHeader(expected, 0, 1024)).toEqual({
      sequence: 2 ** 53 - 1,
      tombstone: false,
      batchContinues: true,
      valueLength: 11,
    });
    verifyRecordChecksum(expected, 0, 8, 11);
  });
});

const databaseId = counting(16, 0x00);

describe('tag-file golden vectors', () => {
  const identity: FileIdentity = { algorithm: 1, kind: 1, databaseId, shard: 7, fileId: 0x01020304, keyId: 5, salt: counting(32, 0xa0) };
  const expectedHeader = fromHex(
    '41524d44425441470100010100100000',
    '000102030405060708090a0b0c0d0e0f',
    '07000000040302010500000000000000',
    'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
    'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf',
    '00000000000000000000000000000000',
    'a72756b9c70af000dcc3b514b5bce839',
    '8abac7fb2ba2fdef5bb291ba1ae31dde',
  );

  it('header bytes (version 1: records 8-byte aligned)', () => {
    const bytes = encodeTagFileHeader(identity, fakeMac, TagFileVersion.aligned8);
    expect(bytes.length).toBe(TAG_HEADER_BYTES);
    expect(toHex(bytes)).toBe(toHex(expectedHeader));
  });

  it('version 2 header (records 4-byte aligned, §4.6): the same bytes but the version, which the MAC covers; new files are version 2', () => {
    const bytes = encodeTagFileHeader(identity, fakeMac);
    expect(le16(bytes, 8)).toBe(2);
    expect(toHex(bytes.subarray(10, 96))).toBe(toHex(expectedHeader.subarray(10, 96)));
    expect(toHex(bytes.subarray(96))).toBe(toHex(fakeMac(bytes.subarray(0, 96))));
    expect(decodeTagFileHeader(bytes)).toEqual({ ...identity, mac: bytes.slice(96), version: TagFileVersion.aligned4 });
    const version3 = bytes.slice();
    version3[8] = 3;
    expect(() => decodeTagFileHeader(version3)).toThrow(/format version 3, expected 1 or 2/);
  });

  it('header fields sit at their documented offsets', () => {
    const bytes = expectedHeader;
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('ARMDBTAG');
    expect(le16(bytes, 8)).toBe(FORMAT_VERSION);
    expect(bytes[10]).toBe(1); // algorithm
    expect(bytes[11]).toBe(1); // kind
    expect(le32(bytes, 12)).toBe(PAGE_BYTES);
    expect(toHex(bytes.subarray(16, 32))).toBe(toHex(databaseId));
    expect(le16(bytes, 32)).toBe(7); // shard
    expect(le16(bytes, 34)).toBe(0); // reserved
    expect(le32(bytes, 36)).toBe(0x01020304); // file id
    expect(le32(bytes, 40)).toBe(5); // key id
    expect(le32(bytes, 44)).toBe(0); // reserved
    expect(toHex(bytes.subarray(48, 80))).toBe(toHex(counting(32, 0xa0))); // salt
    expect(toHex(bytes.subarray(80, 96))).toBe('00'.repeat(16)); // reserved
    expect(toHex(bytes.subarray(96, 128))).toBe(toHex(fakeMac(bytes.subarray(0, 96)))); // MAC over the first 96 bytes
  });

  it('header decodes back and verifies', () => {
    const header = decodeTagFileHeader(expectedHeader);
    expect(header).toEqual({ ...identity, mac: expectedHeader.slice(96), version: TagFileVersion.aligned8 });
    verifyTagFileHeader(expectedHeader, header, fakeMac);
  });

  const expectedFooter = fromHex(
    '41524d4442454e440605040302010000',
    'c0c1c2c3c4c5c6c7c8c9cacbcccdcecf',
    'd0d1d2d3d4d5d6d7d8d9dadbdcdddedf',
    '768be51b7135681c80de5a7d3c2922eb',
    'b6be5b0203345f2d58815cfff3f8c5cf',
  );

  it('footer bytes and offsets', () => {
    const bytes = encodeTagFileFooter({ pageCount: 0x010203040506, tagDigest: counting(32, 0xc0) }, fakeMac);
    expect(bytes.length).toBe(TAG_FOOTER_BYTES);
    expect(toHex(bytes)).toBe(toHex(expectedFooter));
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('ARMDBEND');
    expect(le32(bytes, 8)).toBe(0x03040506); // page count, low word
    expect(le32(bytes, 12)).toBe(0x0102); // page count, high word
    expect(toHex(bytes.subarray(16, 48))).toBe(toHex(counting(32, 0xc0))); // tag digest
    expect(toHex(bytes.subarray(48, 80))).toBe(toHex(fakeMac(bytes.subarray(0, 48)))); // MAC over the first 48 bytes
    expect(decodeTagFileFooter(expectedFooter, fakeMac)).toEqual({ pageCount: 0x010203040506, tagDigest: counting(32, 0xc0) });
  });
});

describe('hint golden vectors', () => {
  const identity: FileIdentity = { algorithm: 0, kind: 2, databaseId, shard: 3, fileId: 42, keyId: 0, salt: counting(32, 0x40) };
  const expectedHeader = fromHex(
    '41524d4442484e540100000200100000',
    '000102030405060708090a0b0c0d0e0f',
    '030000002a0000000000000000000000',
    '404142434445464748494a4b4c4d4e4f',
    '505152535455565758595a5b5c5d5e5f',
    '00000000000000000000000000000000',
    'a37cc23c3aa5082023badc23d3f94ce7',
    'd4c2dc69ebf6498bcd14dc22d18e38cc',
  );

  it('header bytes, offsets and decoding', () => {
    const bytes = encodeHintHeader(identity, fakeMac, HintVersion.fixed);
    expect(toHex(bytes)).toBe(toHex(expectedHeader));
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('ARMDBHNT');
    expect(le16(bytes, 8)).toBe(FORMAT_VERSION);
    expect(bytes[10]).toBe(0); // algorithm none
    expect(bytes[11]).toBe(2); // kind hint
    expect(le32(bytes, 12)).toBe(PAGE_BYTES);
    expect(le16(bytes, 32)).toBe(3);
    expect(le32(bytes, 36)).toBe(42);
    expect(toHex(bytes.subarray(48, 80))).toBe(toHex(counting(32, 0x40)));
    expect(toHex(bytes.subarray(96))).toBe(toHex(fakeMac(bytes.subarray(0, 96))));
    const header = decodeHintHeader(expectedHeader);
    expect(header).toEqual({ ...identity, mac: expectedHeader.slice(96), version: HintVersion.fixed });
    verifyHintHeader(expectedHeader, header, fakeMac);
  });

  it('version 2 header: the same bytes but the version, which the MAC covers', () => {
    const bytes = encodeHintHeader(identity, fakeMac);
    expect(le16(bytes, 8)).toBe(2);
    expect(toHex(bytes.subarray(10, 96))).toBe(toHex(expectedHeader.subarray(10, 96)));
    expect(toHex(bytes.subarray(96))).toBe(toHex(fakeMac(bytes.subarray(0, 96))));
    expect(decodeHintHeader(bytes).version).toBe(HintVersion.compact);
    const version4 = bytes.slice();
    version4[8] = 4;
    expect(() => decodeHintHeader(version4)).toThrow(/format version 4, expected 1 or 2 or 3/);
  });

  const entries: HintEntry[] = [
    { key: ascii('abcd'), sequence: 1, tombstone: false, position: 0, valueLength: 100 },
    { key: ascii('wxyz'), sequence: 2 ** 40 + 7, tombstone: true, position: 4096, valueLength: 0 },
  ];
  const expectedEntries = fromHex('61626364010000000000000000000000', '640000007778797a0700000000010080', '0010000000000000');

  it('entries bytes, offsets and decoding', () => {
    const bytes = encodeHintEntries(entries, 4);
    expect(toHex(bytes)).toBe(toHex(expectedEntries));
    // entry = key (4) | u64 sequence word | u32 position | u32 value length = 20 bytes
    expect(le32(bytes, 4)).toBe(1);
    expect(le32(bytes, 8)).toBe(0);
    expect(le32(bytes, 12)).toBe(0);
    expect(le32(bytes, 16)).toBe(100);
    expect(le32(bytes, 24)).toBe(7);
    expect(le32(bytes, 28)).toBe(0x80000100); // tombstone bit 63 + 2^40 → bit 8 of the high word
    expect(le32(bytes, 32)).toBe(4096);
    expect(le32(bytes, 36)).toBe(0);
    const decoded: HintEntry[] = [];
    decodeHintEntries(expectedEntries, 4, (entry) => decoded.push({ ...entry, key: entry.key.slice() }));
    expect(decoded).toEqual(entries);
  });

  // Version 2 (§6.5.2), key size 4: a record of 100 bytes at 0; a tombstone whose sequence jumps by
  // more than 2^40 and whose position is not where the first record ends; one right after it.
  const compactEntries: HintEntry[] = [
    ...entries,
    { key: ascii('efgh'), sequence: 2 ** 40 + 8, tombstone: false, position: 4096 + 24, valueLength: 3 },
  ];
  const expectedCompact = fromHex(
    '03000000', // entry count
    '61626364', // keys
    '7778797a',
    '65666768',
    '0464', // head 1·4 (delta 1, position implied 0); value length 100
    '03', // head 0·4 | position written | tombstone
    '878080808020', // sequence 2^40 + 7, whole
    '8004', // position 4096 / 8 = 512
    '0403', // head 1·4 (delta 1, position implied 4096 + 24); value length 3
  );

  it('version 2 entries: bytes and decoding', () => {
    const bytes = encodeCompactHintChunk(compactEntries, 4);
    expect(toHex(bytes)).toBe(toHex(expectedCompact));
    const columns = decodeHintChunk(expectedCompact, 4, HintVersion.compact);
    expect(columns.count).toBe(3);
    const decoded = Array.from({ length: columns.count }, (_, index) => {
      const entry = hintEntryAt(columns, index, 4);
      return { ...entry, key: entry.key.slice() };
    });
    expect(decoded).toEqual(compactEntries);
  });

  it.each([
    ['a position written where the head implies it', fromHex('01000000', '61626364', '06', '00', '64')],
    ['a whole sequence the head could hold as a delta', fromHex('01000000', '61626364', '00', '05', '64')],
    ['a varint that is not minimal', fromHex('01000000', '61626364', '8400', '64')],
    ['a varint of 9 bytes', fromHex('01000000', '61626364', '00', '818080808080808001', '64')],
    ['a sequence delta above 2^40', fromHex('01000000', '61626364', '8480808080c000', '64')],
    ['bytes after the last entry', fromHex('01000000', '61626364', '04', '64', '00')],
    ['an entry cut short', fromHex('01000000', '61626364', '04')],
    ['more entries than the bytes hold', fromHex('02000000', '61626364', '04', '64')],
    ['a value length above the format limit', fromHex('01000000', '61626364', '04', '8180808002')],
  ])('version 2 entries: %s is ARMDB_INTEGRITY', (_name, bytes) => {
    expect(() => decodeHintChunk(bytes, 4, HintVersion.compact)).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
  });

  it('chunk frames', () => {
    const last = encodeHintChunkFrame({ plaintextBytes: 40, last: true });
    expect(toHex(last)).toBe('2800000001000000');
    const notLast = encodeHintChunkFrame({ plaintextBytes: 0x12345, last: false });
    expect(toHex(notLast)).toBe('4523010000000000');
    expect(decodeHintChunkFrame(fromHex('2800000001000000'), 40 + 16)).toEqual({ plaintextBytes: 40, last: true });
    expect(decodeHintChunkFrame(fromHex('4523010000000000'), 0x12345 + 16)).toEqual({ plaintextBytes: 0x12345, last: false });
  });
});

describe('manifest golden vector, version 1 (written by 0.1.0; still read, and written for a version-1 store until its first key operation)', () => {
  const manifest: Manifest = {
    epoch: 9,
    algorithm: 1,
    collectionKind: 2,
    databaseId,
    keySize: 16,
    valueSize: 0,
    shards: 4,
    shardPrefixBits: 2,
    activeKeyId: 1,
    nextFileId: 3,
    files: [
      {
        shard: 0,
        state: 2,
        fileId: 1,
        keyId: 1,
        pageCount: 10,
        headerMac: filled(32, 0x11),
        tagDigest: filled(32, 0x22),
        hintMac: filled(32, 0x33),
      },
      {
        shard: 3,
        state: 1,
        fileId: 2,
        keyId: 1,
        pageCount: 0,
        headerMac: filled(32, 0x44),
        tagDigest: filled(32, 0x55),
        hintMac: undefined,
      },
    ],
  };
  const expected = fromHex(
    '41524d44424d414e0100010209000000',
    '00000000000102030405060708090a0b',
    '0c0d0e0f100004000200000000000000',
    '01000000030000000200000000000000',
    '00000201010000000100000000000000',
    '0a000000000000001111111111111111',
    '11111111111111111111111111111111',
    '11111111111111112222222222222222',
    '22222222222222222222222222222222',
    '22222222222222223333333333333333',
    '33333333333333333333333333333333',
    '33333333333333330300010002000000',
    '01000000000000000000000000000000',
    '44444444444444444444444444444444',
    '44444444444444444444444444444444',
    '55555555555555555555555555555555',
    '55555555555555555555555555555555',
    '00000000000000000000000000000000',
    '00000000000000000000000000000000',
    'cb384f56aed758fda167d9859f5f2f92',
    'fba255077703f360b1b5023eaac00377',
  );

  it('bytes', () => {
    const bytes = encodeManifest(manifest, fakeMac, { formatVersion: 1 });
    expect(bytes.length).toBe(MANIFEST_HEADER_BYTES + 2 * MANIFEST_FILE_ENTRY_BYTES + 32);
    expect(toHex(bytes)).toBe(toHex(expected));
  });

  it('header and entry fields sit at their offsets', () => {
    const bytes = expected;
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('ARMDBMAN');
    expect(le16(bytes, 8)).toBe(1);
    expect(bytes[10]).toBe(1); // algorithm
    expect(bytes[11]).toBe(2); // collection kind
    expect(le32(bytes, 12)).toBe(9); // epoch low
    expect(le32(bytes, 16)).toBe(0); // epoch high
    expect(toHex(bytes.subarray(20, 36))).toBe(toHex(databaseId));
    expect(le16(bytes, 36)).toBe(16); // key size
    expect(le16(bytes, 38)).toBe(4); // shards
    expect(le16(bytes, 40)).toBe(2); // shard prefix bits
    expect(le32(bytes, 44)).toBe(0); // value size
    expect(le32(bytes, 48)).toBe(1); // active key id
    expect(le32(bytes, 52)).toBe(3); // next file id
    expect(le32(bytes, 56)).toBe(2); // file count
    // entry 0 at 64
    expect(le16(bytes, 64)).toBe(0);
    expect(bytes[66]).toBe(2); // sealed
    expect(bytes[67]).toBe(1); // has hint
    expect(le32(bytes, 68)).toBe(1); // file id
    expect(le32(bytes, 72)).toBe(1); // key id
    expect(le32(bytes, 80)).toBe(10); // page count
    expect(toHex(bytes.subarray(88, 120))).toBe('11'.repeat(32));
    expect(toHex(bytes.subarray(120, 152))).toBe('22'.repeat(32));
    expect(toHex(bytes.subarray(152, 184))).toBe('33'.repeat(32));
    // entry 1 at 184: no hint → flag 0 and a zero hint MAC
    expect(le16(bytes, 184)).toBe(3);
    expect(bytes[186]).toBe(1); // active
    expect(bytes[187]).toBe(0);
    expect(le32(bytes, 188)).toBe(2);
    expect(toHex(bytes.subarray(272, 304))).toBe('00'.repeat(32));
    expect(toHex(bytes.subarray(304))).toBe(toHex(fakeMac(bytes.subarray(0, 304))));
  });

  it('decodes back', () => {
    expect(peekManifestAlgorithm(expected)).toBe(1);
    expect(peekManifestFormatVersion(expected)).toBe(1);
    expect(decodeManifest(expected, fakeMac)).toEqual(manifest);
  });

  it('version 2 with one MAC: the same bytes but the version (offset 8) and the MAC count (offset 60), and the MAC over them', () => {
    const expectedVersion2 = fromHex(
      '41524d44424d414e0200010209000000',
      '00000000000102030405060708090a0b',
      '0c0d0e0f100004000200000000000000',
      '01000000030000000200000001000000',
      '00000201010000000100000000000000',
      '0a000000000000001111111111111111',
      '11111111111111111111111111111111',
      '11111111111111112222222222222222',
      '22222222222222222222222222222222',
      '22222222222222223333333333333333',
      '33333333333333333333333333333333',
      '33333333333333330300010002000000',
      '01000000000000000000000000000000',
      '44444444444444444444444444444444',
      '44444444444444444444444444444444',
      '55555555555555555555555555555555',
      '55555555555555555555555555555555',
      '00000000000000000000000000000000',
      '00000000000000000000000000000000',
      '3608021f4643a98b1f9cc90286d62962',
      '11155a897ca3515f3a58643504c30ddd',
    );
    const bytes = encodeManifest(manifest, fakeMac, { formatVersion: 2 });
    expect(toHex(bytes)).toBe(toHex(expectedVersion2));
    expect(le16(bytes, 8)).toBe(2);
    expect(bytes[60]).toBe(1);
    for (let offset = 0; offset < 304; offset++)
      if (offset !== 8 && offset !== 60) expect(bytes[offset], `offset ${offset}`).toBe(expected[offset]);
    expect(toHex(bytes.subarray(304))).toBe(toHex(fakeMac(bytes.subarray(0, 304))));
    expect(peekManifestFormatVersion(bytes)).toBe(2);
    expect(decodeManifest(bytes, fakeMac)).toEqual(manifest);
  });

  it('version 2 with two MACs (meta key rotating): both over the same body, and either key authenticates it', () => {
    const nextFakeMac: MacFunction = (body) => fakeMac(Uint8Array.of(0x6e, ...body));
    const expectedTwoMacs = fromHex(
      '41524d44424d414e0200010209000000',
      '00000000000102030405060708090a0b',
      '0c0d0e0f100004000200000000000000',
      '01000000030000000200000002000000',
      '00000201010000000100000000000000',
      '0a000000000000001111111111111111',
      '11111111111111111111111111111111',
      '11111111111111112222222222222222',
      '22222222222222222222222222222222',
      '22222222222222223333333333333333',
      '33333333333333333333333333333333',
      '33333333333333330300010002000000',
      '01000000000000000000000000000000',
      '44444444444444444444444444444444',
      '44444444444444444444444444444444',
      '55555555555555555555555555555555',
      '55555555555555555555555555555555',
      '00000000000000000000000000000000',
      '00000000000000000000000000000000',
      'cbe6f13117c3cab94c62c946e395d9af',
      '7808b2db79ea691e8114fc2d69c7229d',
      '2125857b56d97733d941a26e1903fec9',
      '848d9645b437768c2b11138184f71f9a',
    );
    const bytes = encodeManifest(manifest, fakeMac, { formatVersion: 2, nextMac: nextFakeMac });
    expect(toHex(bytes)).toBe(toHex(expectedTwoMacs));
    expect(bytes.length).toBe(MANIFEST_HEADER_BYTES + 2 * MANIFEST_FILE_ENTRY_BYTES + 2 * 32);
    expect(bytes[60]).toBe(2);
    expect(toHex(bytes.subarray(304, 336))).toBe(toHex(fakeMac(bytes.subarray(0, 304))));
    expect(toHex(bytes.subarray(336))).toBe(toHex(nextFakeMac(bytes.subarray(0, 304))));
    expect(decodeManifest(bytes, fakeMac)).toEqual(manifest);
    expect(decodeManifest(bytes, nextFakeMac)).toEqual(manifest);
    expect(() => decodeManifest(bytes, (body) => fakeMac(Uint8Array.of(0x6f, ...body)))).toThrow(/fails its MAC/);
    // A version-1 MANIFEST holds exactly one MAC.
    expect(() => encodeManifest(manifest, fakeMac, { formatVersion: 1, nextMac: nextFakeMac })).toThrow(RangeError);
  });

  it('version 3 (§7.7): the version-2 bytes with version 3 as the base, then one log record chained to its MAC', () => {
    const base = encodeManifest(manifest, fakeMac);
    expect(le16(base, 8)).toBe(MANIFEST_FORMAT_VERSION);
    expect(MANIFEST_FORMAT_VERSION).toBe(3);
    const version2 = encodeManifest(manifest, fakeMac, { formatVersion: 2 });
    for (let offset = 0; offset < 304; offset++) if (offset !== 8) expect(base[offset], `offset ${offset}`).toBe(version2[offset]);
    const delta = {
      epoch: 10,
      activeKeyId: 1,
      nextFileId: 4,
      changed: [{ ...manifest.files[1]!, pageCount: 2, tagDigest: filled(32, 0x66) }],
      removed: [1],
    };
    const record = encodeManifestRecord(delta, base.subarray(304, 336), fakeMac);
    const expectedRecord = fromHex(
      'dd00000022ffffff0100000001000000', // length 221, its complement, MAC count 1, reserved, active key id 1
      '0a000000000000000400000001000100', // epoch 10, next file id 4, 1 changed, 1 removed
      toHex(base.subarray(304, 320)), // previous MAC: the base's MAC
      toHex(base.subarray(320, 336)),
      '03000100020000000100000000000000', // the changed entry (§7.3): shard 3, active, file 2, key 1, 2 pages
      '02000000000000004444444444444444',
      '44444444444444444444444444444444',
      '44444444444444446666666666666666',
      '66666666666666666666666666666666',
      '66666666666666660000000000000000',
      '00000000000000000000000000000000',
      '0000000000000000', // end of the entry
      '01000000', // removed: file 1
      'c54031c9c99a133f682fecb638470604', // MAC over bytes [0, 188)
      '4e5433a18604bc1030403f987fe6a2f1',
      'a5', // end marker
    );
    expect(toHex(record.bytes)).toBe(toHex(expectedRecord));
    expect(toHex(record.bytes.subarray(188, 220))).toBe(toHex(fakeMac(record.bytes.subarray(0, 188))));
    expect(toHex(record.chainMac)).toBe(toHex(record.bytes.subarray(188, 220)));
    // 336 + 221 stays within the first 4096 bytes: no padding.
    expect(frameManifestAppend(base.length, record.bytes)).toBe(record.bytes);
    const file = new Uint8Array([...base, ...record.bytes]);
    const { manifest: state, log } = decodeManifestLog(file, fakeMac);
    expect(state).toEqual({ ...manifest, epoch: 10, nextFileId: 4, files: [delta.changed[0]] });
    expect(log).toEqual({ formatVersion: 3, baseBytes: 336, validBytes: 557, tornBytes: 0, chainMac: record.chainMac, records: 1 });
    // The base alone reads as the base's state.
    expect(decodeManifest(base, fakeMac)).toEqual(manifest);
  });
});

describe('keyring golden vector', () => {
  const keyring: Keyring = {
    kekKind: 2,
    scrypt: { logN: 15, r: 8, p: 1 },
    kdfSalt: counting(32, 0x60),
    databaseId,
    activeKeyId: 2,
    wrappedMetaKey: counting(60, 0x80),
    dataKeys: [
      { keyId: 1, wrapped: filled(60, 0xa1) },
      { keyId: 2, wrapped: filled(60, 0xb2) },
    ],
  };
  const expected = fromHex(
    '41524d44424b4559010002000f000000',
    '08000000010000006061626364656667',
    '68696a6b6c6d6e6f7071727374757677',
    '78797a7b7c7d7e7f0001020304050607',
    '08090a0b0c0d0e0f0200000002000000',
    '808182838485868788898a8b8c8d8e8f',
    '909192939495969798999a9b9c9d9e9f',
    'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
    'b0b1b2b3b4b5b6b7b8b9babb01000000',
    'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1',
    'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1',
    'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1',
    'a1a1a1a1a1a1a1a1a1a1a1a102000000',
    'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2',
    'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2',
    'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2',
    'b2b2b2b2b2b2b2b2b2b2b2b20303bcff',
    'a7048aebc5a5ba288be9bbae2d21cbdc',
    'bceced231988ebbd4f85cd55620db1cc',
  );

  it('bytes', () => {
    expect(toHex(encodeKeyringV1(keyring, fakeMac))).toBe(toHex(expected));
  });

  it('fields sit at their offsets', () => {
    const bytes = expected;
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('ARMDBKEY');
    expect(le16(bytes, 8)).toBe(FORMAT_VERSION);
    expect(bytes[10]).toBe(2); // passphrase
    expect(bytes[11]).toBe(0);
    expect(bytes[12]).toBe(15); // logN
    expect(le32(bytes, 16)).toBe(8); // r
    expect(le32(bytes, 20)).toBe(1); // p
    expect(toHex(bytes.subarray(24, 56))).toBe(toHex(counting(32, 0x60))); // KDF salt
    expect(toHex(bytes.subarray(56, 72))).toBe(toHex(databaseId));
    expect(le32(bytes, 72)).toBe(2); // active key id
    expect(le32(bytes, 76)).toBe(2); // data key count
    expect(KEYRING_HEADER_BYTES).toBe(80);
    expect(toHex(bytes.subarray(80, 140))).toBe(toHex(counting(60, 0x80))); // wrapped meta key
    expect(le32(bytes, 140)).toBe(1);
    expect(toHex(bytes.subarray(144, 204))).toBe('a1'.repeat(60));
    expect(le32(bytes, 204)).toBe(2);
    expect(toHex(bytes.subarray(208, 268))).toBe('b2'.repeat(60));
    expect(toHex(bytes.subarray(268, 300))).toBe(toHex(fakeMac(bytes.subarray(0, 268)))); // MAC over the body
    expect(le32(bytes, 300)).toBe(crc32(bytes.subarray(0, 300)) >>> 0); // CRC over body ‖ MAC
  });

  it('decodes back and its MAC verifies', () => {
    expect(decodeKeyringV1(expected)).toEqual(keyring);
    expect(verifyKeyringMac(expected, fakeMac)).toBe(true);
    expect(verifyKeyringMac(expected, (body) => fakeMac(body).map((byte) => byte ^ 1))).toBe(false);
  });
});

/**
 * Vectors published in docs/format.md, Appendix A.5 and A.7 (data file 7 of shard 1). They come from
 * the format document, not from this suite's encoder run, and use a real HMAC-SHA256 under the file
 * MAC key that the appendix lists, computed here with node:crypto.
 */
describe('docs/format.md Appendix A vectors', () => {
  const fileMacKey = fromHex('de4e082f558277186eb41ea75bdb28b1a5f8dcbfe469e1a22e6e2502174f44b4');
  const hmac = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHmac('sha256', fileMacKey).update(bytes).digest());
  const identity: FileIdentity = {
    algorithm: 1,
    kind: 1,
    databaseId: counting(16, 0x40),
    shard: 1,
    fileId: 7,
    keyId: 1,
    salt: counting(32, 0x60),
  };

  it('A.5 record', () => {
    expect(toHex(record(1, 0, ascii('key1'), ascii('hello')))).toBe('0100000000000000cb5428c3050000006b65793168656c6c6f00000000000000');
  });

  it('A.5 tag-file header and footer', () => {
    expect(toHex(encodeTagFileHeader(identity, hmac, TagFileVersion.aligned8))).toBe(
      toHex(
        fromHex(
          '41524d44425441470100010100100000',
          '404142434445464748494a4b4c4d4e4f',
          '01000000070000000100000000000000',
          '606162636465666768696a6b6c6d6e6f',
          '707172737475767778797a7b7c7d7e7f',
          '00000000000000000000000000000000',
          '45cdfee3fe8e52e105ab056d0ce26436',
          'c82ad36242a0014e98e9ff7c5258ea5a',
        ),
      ),
    );
    const tagDigest = new Uint8Array(createHash('sha256').update(fromHex('b90db8a57b40b5de1141ed3c8170fbe7')).digest());
    expect(toHex(encodeTagFileFooter({ pageCount: 1, tagDigest }, hmac))).toBe(
      toHex(
        fromHex(
          '41524d4442454e440100000000000000',
          'f55107e0072e4f111444d7e2cf25c9a0',
          'ab7a7edd737b56737f807fce550895c1',
          'dbb16ef13e3fe3aaf368fcc08a667d0e',
          '7a607ddda848dcd6df38174d56b90508',
        ),
      ),
    );
  });

  it('A.7 hint header body, chunk frame and entry', () => {
    const header = encodeHintHeader({ ...identity, kind: 2, salt: counting(32, 0xe0) }, () => new Uint8Array(32), HintVersion.fixed);
    expect(toHex(header.subarray(0, 96))).toBe(
      toHex(
        fromHex(
          '41524d4442484e540100010200100000',
          '404142434445464748494a4b4c4d4e4f',
          '01000000070000000100000000000000',
          'e0e1e2e3e4e5e6e7e8e9eaebecedeeef',
          'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff',
          '00000000000000000000000000000000',
        ),
      ),
    );
    expect(toHex(encodeHintChunkFrame({ plaintextBytes: 20, last: true }))).toBe('1400000001000000');
    expect(toHex(encodeHintEntries([{ key: ascii('key1'), sequence: 1, tombstone: false, position: 0, valueLength: 5 }], 4))).toBe(
      '6b65793101000000000000000000000005000000',
    );
  });
});
