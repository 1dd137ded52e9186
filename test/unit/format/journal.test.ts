/**
 * The commit journal's bytes (docs/format.md §6A) and the version-3 MANIFEST file entry that records
 * it (§7.3): header and chunk framing, sealing under the journal key (AAD binds place and index), and
 * the entry fields at their offsets.
 */
import { describe, expect, it } from 'vitest';
import { JournalCipher, journalAad, journalNonce } from '../../../src/crypto/journal-cipher.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import { Algorithm } from '../../../src/format/constants.js';
import {
  decodeJournalFrames,
  decodeJournalHeader,
  encodeJournalChunk,
  encodeJournalHeader,
  JOURNAL_HEADER_BYTES,
} from '../../../src/format/journal.js';
import { decodeManifest, encodeManifest, FileState, MANIFEST_HEADER_BYTES, type Manifest } from '../../../src/format/manifest.js';
import { ArmdbError } from '../../../src/errors.js';

const identity = {
  algorithm: Algorithm.aes256gcm,
  databaseId: new Uint8Array(16).fill(1),
  shard: 2,
  fileId: 7,
  keyId: 3,
  salt: new Uint8Array(32).fill(4),
};
const KEY = new Uint8Array(32).fill(9);
const fakeMac = (body: Uint8Array): Uint8Array => new Uint8Array(32).fill(body.length % 251);

describe('journal file', () => {
  it('header: 32 bytes, magic, version 1, kind 3, ids and first chunk at their offsets; round-trips', () => {
    const bytes = encodeJournalHeader({ algorithm: 1, shard: 2, fileId: 7, keyId: 3, firstChunk: 2 ** 40 + 5 });
    expect(bytes.length).toBe(JOURNAL_HEADER_BYTES);
    expect(Buffer.from(bytes.subarray(0, 8)).toString()).toBe('ARMDBJNL');
    expect(Buffer.from(bytes.subarray(8, 16)).toString('hex')).toBe('0100010302000000');
    expect(Buffer.from(bytes.subarray(16, 32)).toString('hex')).toBe('07000000030000000500000000010000');
    expect(decodeJournalHeader(bytes)).toEqual({ algorithm: 1, shard: 2, fileId: 7, keyId: 3, firstChunk: 2 ** 40 + 5 });
    for (const at of [0, 8, 11, 14]) {
      const damaged = bytes.slice();
      damaged[at]! ^= 1;
      expect(decodeJournalHeader(damaged), `offset ${at}`).toBeUndefined();
    }
    expect(decodeJournalHeader(bytes.subarray(0, 31))).toBeUndefined();
  });

  it('chunks: sealed under the journal key with nonce = index, AAD binding place and index; a moved chunk fails', () => {
    const writer = new JournalCipher(nodeProvider, identity, KEY, 0);
    const reader = new JournalCipher(nodeProvider, identity, KEY, undefined);
    const plaintext = new Uint8Array(40).fill(0x5a);
    const place = { pageIndex: 6, offset: 128, length: 40 };
    const sealed = writer.seal(place, plaintext);
    expect(sealed.chunkIndex).toBe(0);
    expect(writer.nextChunkIndex).toBe(1);
    expect(Buffer.from(journalNonce(5)).toString('hex')).toBe('050000000000000003000000');
    expect(journalAad(identity, 5, place).length).toBe(44);
    const frame = encodeJournalChunk(place, sealed.ciphertext, sealed.tag);
    expect(Buffer.from(frame.subarray(0, 8)).toString('hex')).toBe('0600000080002800');
    const file = new Uint8Array(JOURNAL_HEADER_BYTES + frame.length);
    file.set(encodeJournalHeader({ algorithm: 1, shard: 2, fileId: 7, keyId: 3, firstChunk: 0 }));
    file.set(frame, JOURNAL_HEADER_BYTES);
    const { frames, endsCleanly } = decodeJournalFrames(file);
    expect(endsCleanly).toBe(true);
    expect(reader.open(0, frames[0]!, frames[0]!.ciphertext, frames[0]!.tag)).toEqual(plaintext);
    // Another index, page or offset, or another file's key: ARMDB_INTEGRITY.
    expect(() => reader.open(1, place, sealed.ciphertext, sealed.tag)).toThrow(ArmdbError);
    expect(() => reader.open(0, { ...place, pageIndex: 7 }, sealed.ciphertext, sealed.tag)).toThrow(ArmdbError);
    expect(() => reader.open(0, { ...place, offset: 136 }, sealed.ciphertext, sealed.tag)).toThrow(ArmdbError);
    const otherFile = new JournalCipher(nodeProvider, { ...identity, fileId: 8 }, KEY, undefined);
    expect(() => otherFile.open(0, place, sealed.ciphertext, sealed.tag)).toThrow(ArmdbError);
    // A recovered journal is never sealed into.
    expect(() => reader.seal(place, plaintext)).toThrow();
    // A cut frame is reported, not read.
    expect(decodeJournalFrames(file.subarray(0, file.length - 1))).toMatchObject({ frames: [], endsCleanly: false });
  });
});

describe('MANIFEST version 3 file entry', () => {
  const manifest: Manifest = {
    epoch: 4,
    algorithm: 1,
    collectionKind: 1,
    databaseId: new Uint8Array(16).fill(1),
    keySize: 16,
    valueSize: 0,
    shards: 4,
    shardPrefixBits: 0,
    activeKeyId: 1,
    nextFileId: 9,
    files: [
      {
        shard: 1,
        state: FileState.active,
        fileId: 5,
        keyId: 1,
        pageCount: 12,
        headerMac: new Uint8Array(32).fill(0x11),
        tagDigest: new Uint8Array(32).fill(0x22),
        hintMac: undefined,
        journalChunks: 0x0102,
        journalPage: 12,
      },
    ],
  };

  it('journal chunks at entry offset 12, page count at 16 (u32), journal page at 20; decodes back; version 3', () => {
    const bytes = encodeManifest(manifest, fakeMac, { formatVersion: 2 });
    expect(bytes[8]).toBe(3); // a MANIFEST recording a journal is version 3 whatever was asked
    const entry = bytes.subarray(MANIFEST_HEADER_BYTES, MANIFEST_HEADER_BYTES + 120);
    expect(Buffer.from(entry.subarray(12, 24)).toString('hex')).toBe('020100000c0000000c000000');
    expect(decodeManifest(bytes, fakeMac)).toEqual(manifest);
  });

  it('without a journal the entry is byte for byte a version-2 entry, and a sealed entry with journal chunks is refused', () => {
    const plain = { ...manifest, files: [{ ...manifest.files[0]!, journalChunks: 0, journalPage: 0 }] };
    const version2 = encodeManifest(plain, fakeMac, { formatVersion: 2 });
    const version3 = encodeManifest(plain, fakeMac);
    expect(version2[8]).toBe(2);
    expect(version3[8]).toBe(3);
    expect(Buffer.from(version3.subarray(MANIFEST_HEADER_BYTES, -32))).toEqual(Buffer.from(version2.subarray(MANIFEST_HEADER_BYTES, -32)));
    const sealedWithJournal = encodeManifest({ ...manifest, files: [{ ...manifest.files[0]!, state: FileState.sealed }] }, fakeMac);
    expect(() => decodeManifest(sealedWithJournal, fakeMac)).toThrow(/manifest file 5: a (journal page|sealed file)/);
  });
});
