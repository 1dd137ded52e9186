/**
 * Shared helpers for the format/ codec tests: a deterministic fake MAC, hex helpers, fast-check
 * arbitraries producing valid field values, byte mutations for fuzzing, and a test-only page writer
 * that applies the same padding rule as the real data-file writer.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import fc from 'fast-check';
import { ArmdbError } from '../../../src/errors.js';
import { Algorithm, DATABASE_ID_BYTES, Limits, MAC_BYTES, SALT_BYTES } from '../../../src/format/constants.js';
import type { FileKindId } from '../../../src/format/constants.js';
import { nextRecordPosition } from '../../../src/format/page.js';
import type { ScannedRecord } from '../../../src/format/page.js';
import { MAX_SEQUENCE, RecordFlag, encodeRecord, recordBytes, type RecordAlignment } from '../../../src/format/record.js';
import type { FileIdentity, MacFunction, TagFileFooter } from '../../../src/format/tag-file.js';
import type { HintChunkFrame, HintEntry } from '../../../src/format/hint.js';
import { CollectionKind, FileState } from '../../../src/format/manifest.js';
import type { Manifest, ManifestFile } from '../../../src/format/manifest.js';
import { KekKind, WRAPPED_KEY_BYTES, checkScryptParameters } from '../../../src/format/keyring.js';
import type { KeyringV1 as Keyring, KeyringEntry, ScryptParameters } from '../../../src/format/keyring.js';

/** Fixed seed: every property in this folder is reproducible. */
export const SEED = 0x41524d44;

/** A deterministic stand-in for HMAC-SHA256: plain SHA-256 of the bytes. */
export const fakeMac: MacFunction = (bytes) => new Uint8Array(createHash('sha256').update(bytes).digest());

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Joins rows of hex (written 16 bytes a line in the tests) into bytes. */
export function fromHex(...rows: readonly string[]): Uint8Array {
  const text = rows.join('');
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new Error('bad hex literal');
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** `length` bytes counting up from `start` (mod 256). */
export function counting(length: number, start: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (start + index) & 0xff);
}

export function filled(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

export function le32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

export function le16(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(offset, true);
}

/** Runs `parse`; passes if it returns or throws an ArmdbError or RangeError, fails on anything else. */
export function expectOnlyExpectedErrors(parse: () => unknown): void {
  try {
    parse();
  } catch (error) {
    if (error instanceof ArmdbError || error instanceof RangeError) return;
    throw new Error(`parser threw an unexpected ${error instanceof Error ? error.constructor.name : typeof error}: ${String(error)}`, {
      cause: error,
    });
  }
}

/** Asserts that `run` throws an ArmdbError with `code`. */
export function expectArmdbError(run: () => unknown, code: ArmdbError['code']): ArmdbError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ArmdbError);
  const error = caught as ArmdbError;
  expect(error.code).toBe(code);
  return error;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries of valid field values.

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Any u64 the codecs accept: below 2^53. */
export const u53 = fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, MAX_SEQUENCE), fc.maxSafeNat());
export const sequenceArb = fc.oneof(
  fc.constantFrom(1, 2 ** 32 - 1, 2 ** 32, 2 ** 52, MAX_SEQUENCE),
  fc.integer({ min: 1, max: MAX_SEQUENCE }),
);

export const bytesOf = (length: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: length, maxLength: length });

/** File identities of one kind: tag-file headers carry kind data, hint-file headers kind hint. */
export const identityArb = (kind: FileKindId): fc.Arbitrary<FileIdentity> =>
  fc.record({
    algorithm: fc.constantFrom(Algorithm.none, Algorithm.aes256gcm),
    kind: fc.constant(kind),
    databaseId: bytesOf(DATABASE_ID_BYTES),
    shard: u16,
    fileId: u32,
    keyId: u32,
    salt: bytesOf(SALT_BYTES),
  });

export const tagFooterArb: fc.Arbitrary<TagFileFooter> = fc.record({ pageCount: u53, tagDigest: bytesOf(MAC_BYTES) });

export const hintEntryArb = (keySize: number): fc.Arbitrary<HintEntry> =>
  fc
    .record({
      key: bytesOf(keySize),
      sequence: sequenceArb,
      tombstone: fc.boolean(),
      position: fc.integer({ min: 0, max: Math.floor(0xffffffff / 8) }).map((slot) => slot * 8),
      valueLength: fc.integer({ min: 0, max: Limits.maxValueBytes }),
    })
    .map((entry) => (entry.tombstone ? { ...entry, valueLength: 0 } : entry));

export const hintChunkFrameArb: fc.Arbitrary<HintChunkFrame> = fc.record({
  plaintextBytes: fc.integer({ min: 0, max: Limits.maxHintChunkBytes }),
  last: fc.boolean(),
});

const manifestFileArb = (shards: number, nextFileId: number): fc.Arbitrary<ManifestFile> =>
  fc.record({
    shard: fc.integer({ min: 0, max: shards - 1 }),
    state: fc.constantFrom(FileState.active, FileState.sealed),
    fileId: fc.integer({ min: 0, max: nextFileId - 1 }),
    keyId: u32,
    // A u32 in version 3 (a data file never has 2^32 pages, docs/format.md §7.3).
    pageCount: u32,
    headerMac: bytesOf(MAC_BYTES),
    tagDigest: bytesOf(MAC_BYTES),
    hintMac: fc.option(bytesOf(MAC_BYTES), { nil: undefined }),
  });

export const manifestArb: fc.Arbitrary<Manifest> = fc
  .record({
    epoch: u53,
    algorithm: fc.constantFrom(Algorithm.none, Algorithm.aes256gcm),
    collectionKind: fc.constantFrom(...Object.values(CollectionKind)),
    databaseId: bytesOf(DATABASE_ID_BYTES),
    keySize: fc.integer({ min: 1, max: Limits.maxKeyBytes }),
    valueSize: u32,
    shards: fc.integer({ min: 1, max: Limits.maxShards }),
    activeKeyId: u32,
    nextFileId: fc.integer({ min: 1, max: 0xffffffff }),
    prefixSeed: fc.nat(),
  })
  .chain(({ prefixSeed, ...header }) =>
    fc
      .array(manifestFileArb(header.shards, header.nextFileId), { maxLength: 6 })
      .map((files): Manifest => ({ ...header, shardPrefixBits: prefixSeed % (header.keySize * 8 + 1), files })),
  );

const scryptArb: fc.Arbitrary<ScryptParameters> = fc
  .record({
    logN: fc.integer({ min: 10, max: 20 }),
    r: fc.integer({ min: 1, max: 32 }),
    p: fc.integer({ min: 1, max: 16 }),
  })
  .filter((parameters) => {
    try {
      checkScryptParameters(parameters);
      return true;
    } catch {
      return false;
    }
  });

export const keyringArb: fc.Arbitrary<Keyring> = fc
  .record({
    passphrase: fc.boolean(),
    scrypt: scryptArb,
    kdfSalt: bytesOf(SALT_BYTES),
    databaseId: bytesOf(DATABASE_ID_BYTES),
    wrappedMetaKey: bytesOf(WRAPPED_KEY_BYTES),
    keyIds: fc.uniqueArray(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 5 }),
    wrapped: fc.array(bytesOf(WRAPPED_KEY_BYTES), { minLength: 5, maxLength: 5 }),
    activeIndex: fc.nat(),
  })
  .map(({ passphrase, scrypt, kdfSalt, databaseId, wrappedMetaKey, keyIds, wrapped, activeIndex }): Keyring => {
    const ids = [...keyIds].sort((left, right) => left - right);
    const dataKeys: KeyringEntry[] = ids.map((keyId, index) => ({ keyId, wrapped: wrapped[index] ?? new Uint8Array(WRAPPED_KEY_BYTES) }));
    const activeKeyId = ids[activeIndex % ids.length] ?? 1;
    return {
      kekKind: passphrase ? KekKind.passphrase : KekKind.rawKey,
      scrypt: passphrase ? scrypt : { logN: 0, r: 0, p: 0 },
      kdfSalt,
      databaseId,
      activeKeyId,
      wrappedMetaKey,
      dataKeys,
    };
  });

// ---------------------------------------------------------------------------------------------
// Mutations for fuzzing valid encodings.

export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'extend'; readonly bytes: Uint8Array }
  | { readonly kind: 'overwrite'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'set'; readonly at: number; readonly value: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 0x7f, 0x80, 0xfe, 0xff) }),
  },
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** Applies mutations to a copy of `input`; offsets are taken modulo the current length. */
export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = input.slice();
  for (const mutation of mutations) {
    switch (mutation.kind) {
      case 'flip':
        if (bytes.length > 0) {
          const at = mutation.at % bytes.length;
          bytes[at] = (bytes[at] ?? 0) ^ (1 << mutation.bit);
        }
        break;
      case 'truncate':
        bytes = bytes.slice(0, bytes.length === 0 ? 0 : mutation.at % bytes.length);
        break;
      case 'extend': {
        const longer = new Uint8Array(bytes.length + mutation.bytes.length);
        longer.set(bytes);
        longer.set(mutation.bytes, bytes.length);
        bytes = longer;
        break;
      }
      case 'overwrite':
        if (bytes.length > 0) {
          const at = mutation.at % bytes.length;
          bytes.set(mutation.bytes.subarray(0, bytes.length - at), at);
        }
        break;
      case 'set':
        if (bytes.length > 0) bytes[mutation.at % bytes.length] = mutation.value;
        break;
    }
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// A test-only page-stream writer.

/**
 * A copy of a record passed to a scanRecords callback. scanRecords may reuse the object and its
 * views for the next record, so anything kept past the callback must be copied.
 */
export function snapshotRecord(record: ScannedRecord): ScannedRecord {
  return {
    sequence: record.sequence,
    tombstone: record.tombstone,
    batchContinues: record.batchContinues,
    valueLength: record.valueLength,
    position: record.position,
    recordBytes: record.recordBytes,
    key: record.key.slice(),
    value: record.value.slice(),
  };
}

export interface TestRecord {
  readonly sequence: number;
  readonly flags: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface WrittenStream {
  /** The plaintext bytes of the file, zero-filled to a whole number of pages. */
  readonly bytes: Uint8Array;
  /** Where each record's header was written. */
  readonly positions: readonly number[];
  /** The position after the last record. */
  readonly end: number;
}

/**
 * Lays records out the way the real writer does: before each record, position =
 * nextRecordPosition(position); then encodeRecord at position. Gaps stay zero.
 */
export function writeRecordStream(records: readonly TestRecord[], startPosition = 0, alignment: RecordAlignment = 8): WrittenStream {
  let position = startPosition;
  const positions: number[] = [];
  for (const record of records) {
    position = nextRecordPosition(position);
    positions.push(position);
    position += recordBytes(record.key.length, record.value.length, alignment);
  }
  const bytes = new Uint8Array(Math.max(1, Math.ceil(position / 4096)) * 4096);
  records.forEach((record, index) => {
    encodeRecord(bytes, positions[index] ?? 0, record.sequence, record.flags, record.key, record.value, alignment);
  });
  return { bytes, positions, end: position };
}

/** Records of a fixed key size with small values, sequences ascending from 1. */
export const recordListArb = (keySize: number, maxRecords = 40, maxValue = 300): fc.Arbitrary<TestRecord[]> =>
  fc
    .array(
      fc.record({
        flag: fc.constantFrom(0, RecordFlag.tombstone, RecordFlag.batchContinues, RecordFlag.tombstone | RecordFlag.batchContinues),
        key: bytesOf(keySize),
        value: fc.uint8Array({ maxLength: maxValue }),
      }),
      { minLength: 1, maxLength: maxRecords },
    )
    .map((list) =>
      list.map(({ flag, key, value }, index) => ({
        sequence: index + 1,
        flags: flag,
        key,
        value: (flag & RecordFlag.tombstone) !== 0 ? new Uint8Array(0) : value,
      })),
    );
