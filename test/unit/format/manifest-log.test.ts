/**
 * The version-3 MANIFEST log (docs/format.md §7.7) as bytes: a base and the records appended after it.
 * What a crash can leave (a prefix of the last append, the rest zeros or missing) reads as the state
 * before that append; any other change (a flipped byte anywhere, a record removed, reordered, repeated
 * or taken from another MANIFEST) is ARMDB_INTEGRITY.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ArmdbError } from '../../../src/errors.js';
import {
  decodeManifestLog,
  encodeManifest,
  encodeManifestRecord,
  frameManifestAppend,
  MANIFEST_LOG_PAGE_BYTES,
  type Manifest,
  type ManifestDelta,
  type ManifestFile,
} from '../../../src/format/manifest.js';
import type { MacFunction } from '../../../src/format/tag-file.js';
import { filled } from './_support.js';

const keyedMac =
  (label: number): MacFunction =>
  (body) =>
    new Uint8Array(createHmac('sha256', filled(32, label)).update(body).digest());
const MAC = keyedMac(1);
const NEXT_MAC = keyedMac(2);

function fileEntry(fileId: number, pageCount: number, shard = fileId % 2): ManifestFile {
  return {
    shard,
    state: 1,
    fileId,
    keyId: 1,
    pageCount,
    headerMac: filled(32, fileId),
    tagDigest: filled(32, pageCount & 0xff),
    hintMac: undefined,
  };
}

const BASE: Manifest = {
  epoch: 5,
  algorithm: 1,
  collectionKind: 1,
  databaseId: filled(16, 7),
  keySize: 16,
  valueSize: 0,
  shards: 2,
  shardPrefixBits: 0,
  activeKeyId: 1,
  nextFileId: 3,
  files: [fileEntry(1, 4), fileEntry(2, 0)],
};

interface Log {
  readonly bytes: Uint8Array;
  /** The state after k records, for every k. */
  readonly states: Manifest[];
  /** Where each unit ends: the base, then each record (padding before a record included). */
  readonly ends: number[];
}

/** A base and `count` records: each grows one file, some add and remove files; several pages of log. */
function buildLog(count: number, options: { mac?: MacFunction; nextMac?: MacFunction; base?: Manifest } = {}): Log {
  const mac = options.mac ?? MAC;
  const baseManifest = options.base ?? BASE;
  let bytes: Uint8Array = encodeManifest(baseManifest, mac, { nextMac: options.nextMac });
  let chainMac: Uint8Array = bytes.slice(
    bytes.length - (options.nextMac === undefined ? 32 : 64),
    bytes.length - (options.nextMac === undefined ? 0 : 32),
  );
  const states: Manifest[] = [baseManifest];
  const ends = [bytes.length];
  let files = new Map(baseManifest.files.map((file) => [file.fileId, file]));
  let state = baseManifest;
  for (let index = 0; index < count; index++) {
    const nextFileId = state.nextFileId + (index % 3 === 0 ? 1 : 0);
    const changed: ManifestFile[] = [fileEntry(2, index + 1)];
    // Every third record adds a file (and a batch of them, to make some records large), every fifth removes the oldest added one.
    if (index % 3 === 0) changed.push(fileEntry(nextFileId - 1, 0));
    if (index % 7 === 3) for (let extra = 0; extra < 6; extra++) changed.push(fileEntry(1, index + extra, 1));
    const uniqueChanged = [...new Map(changed.map((file) => [file.fileId, file])).values()];
    const removable = [...files.keys()].filter((fileId) => fileId > 2 && !uniqueChanged.some((file) => file.fileId === fileId));
    const removed = index % 5 === 4 && removable.length > 0 ? [removable[0]!] : [];
    const delta: ManifestDelta = { epoch: state.epoch + 1, activeKeyId: 1, nextFileId, changed: uniqueChanged, removed };
    const record = encodeManifestRecord(delta, chainMac, mac, options.nextMac);
    const framed = frameManifestAppend(bytes.length, record.bytes);
    bytes = new Uint8Array([...bytes, ...framed]);
    chainMac = record.chainMac;
    files = new Map(files);
    for (const fileId of removed) files.delete(fileId);
    for (const file of uniqueChanged) files.set(file.fileId, file);
    state = { ...state, epoch: delta.epoch, nextFileId, files: [...files.values()] };
    states.push(state);
    ends.push(bytes.length);
  }
  return { bytes, states, ends };
}

function integrityErrorOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof ArmdbError) return error.code;
    throw error;
  }
  return undefined;
}

describe('MANIFEST log (docs/format.md §7.7)', () => {
  const log = buildLog(40);

  it('reads back every state; records never cross a 4096-byte boundary (padding is zeros)', () => {
    expect(log.bytes.length).toBeGreaterThan(2 * MANIFEST_LOG_PAGE_BYTES);
    for (let records = 0; records < log.ends.length; records++) {
      const { manifest, log: state } = decodeManifestLog(log.bytes.subarray(0, log.ends[records]), MAC);
      expect(manifest).toEqual(log.states[records]);
      expect(state.records).toBe(records);
      expect(state.tornBytes).toBe(0);
    }
    let paddings = 0;
    for (let records = 1; records < log.ends.length; records++) {
      const start = log.ends[records - 1]!;
      const length = new DataView(log.bytes.buffer, log.bytes.byteOffset + start, 4).getUint32(0, true);
      if (length !== 0) continue;
      paddings++;
      const recordStart = Math.ceil(start / MANIFEST_LOG_PAGE_BYTES) * MANIFEST_LOG_PAGE_BYTES;
      expect(log.bytes.subarray(start, recordStart).every((byte) => byte === 0)).toBe(true);
    }
    expect(paddings).toBeGreaterThan(0);
  });

  it('cut at every byte after the base (a crash during an append): the state of the complete records before the cut', () => {
    for (let cut = log.ends[0]!; cut <= log.bytes.length; cut++) {
      const complete = log.ends.filter((end) => end <= cut).length - 1;
      const { manifest, log: state } = decodeManifestLog(log.bytes.subarray(0, cut), MAC);
      expect(manifest.epoch, `cut at ${cut}`).toBe(log.states[complete]!.epoch);
      expect(state.validBytes).toBe(log.ends[complete]);
      expect(state.tornBytes).toBe(cut - log.ends[complete]!);
    }
  });

  it('the last append written only in part, the rest of the file zeros (a power cut): the state before it', () => {
    const last = log.ends.length - 1;
    const start = log.ends[last - 1]!;
    for (let kept = start; kept < log.bytes.length; kept++) {
      const image = log.bytes.slice();
      image.fill(0, kept);
      const { manifest, log: state } = decodeManifestLog(image, MAC);
      expect(manifest, `kept up to ${kept}`).toEqual(log.states[last - 1]);
      expect(state.tornBytes).toBe(image.length - start);
    }
  });

  it('a flipped bit anywhere (base, padding, any record, the last one included) is ARMDB_INTEGRITY', () => {
    const survivors: number[] = [];
    for (let offset = 0; offset < log.bytes.length; offset++) {
      const image = log.bytes.slice();
      image[offset]! ^= 1 << (offset % 8);
      const code = integrityErrorOf(() => decodeManifestLog(image, MAC));
      // The version (offsets 8, 9): 3 → another version is a typed refusal of its own (§1.4).
      if (code === 'ARMDB_INTEGRITY' || ((offset === 8 || offset === 9) && code === 'ARMDB_FORMAT_MISMATCH')) continue;
      survivors.push(offset);
    }
    expect(survivors).toEqual([]);
  });

  it('a record removed from the middle, two records swapped, the last one repeated: ARMDB_INTEGRITY', () => {
    // Records 1..3 sit in the first page without padding: cut and splice them.
    const short = buildLog(4);
    const [base, first, second, third] = [0, 1, 2, 3].map((index) =>
      short.bytes.subarray(index === 0 ? 0 : short.ends[index - 1], short.ends[index]),
    );
    expect(short.ends[3]).toBeLessThan(MANIFEST_LOG_PAGE_BYTES);
    const spliced = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(parts.flatMap((part) => [...part!]));
    expect(decodeManifestLog(spliced(base!, first!, second!, third!), MAC).manifest).toEqual(short.states[3]);
    expect(integrityErrorOf(() => decodeManifestLog(spliced(base!, first!, third!), MAC))).toBe('ARMDB_INTEGRITY');
    expect(integrityErrorOf(() => decodeManifestLog(spliced(base!, second!, first!, third!), MAC))).toBe('ARMDB_INTEGRITY');
    expect(integrityErrorOf(() => decodeManifestLog(spliced(base!, first!, second!, second!), MAC))).toBe('ARMDB_INTEGRITY');
    // Without its first record, the second does not follow the base.
    expect(integrityErrorOf(() => decodeManifestLog(spliced(base!, second!), MAC))).toBe('ARMDB_INTEGRITY');
  });

  it("a record from another MANIFEST (another store's key, or the same key and another base) is ARMDB_INTEGRITY", () => {
    const ours = buildLog(2);
    const otherKey = buildLog(2, { mac: keyedMac(9) });
    const otherBase = buildLog(2, { base: { ...BASE, databaseId: filled(16, 8) } });
    for (const other of [otherKey, otherBase]) {
      const foreign = other.bytes.subarray(other.ends[1], other.ends[2]);
      const image = new Uint8Array([...ours.bytes.subarray(0, ours.ends[1]), ...foreign]);
      expect(integrityErrorOf(() => decodeManifestLog(image, MAC))).toBe('ARMDB_INTEGRITY');
    }
  });

  it('while the meta key rotates, base and records carry two MACs, and either key reads the whole log', () => {
    const rotating = buildLog(5, { nextMac: NEXT_MAC });
    expect(decodeManifestLog(rotating.bytes, MAC).manifest).toEqual(rotating.states[5]);
    expect(decodeManifestLog(rotating.bytes, NEXT_MAC).manifest).toEqual(rotating.states[5]);
    expect(integrityErrorOf(() => decodeManifestLog(rotating.bytes, keyedMac(3)))).toBe('ARMDB_INTEGRITY');
  });

  it('padding shorter than a length field (a unit ending fewer than 8 bytes before a page boundary) reads back', () => {
    let shortPaddings = 0;
    for (let extraFiles = 0; extraFiles < 80 && shortPaddings < 3; extraFiles++) {
      const extra = Array.from({ length: extraFiles }, (_, index) => fileEntry(1000 + index, 1));
      const variant = buildLog(40, { base: { ...BASE, nextFileId: 2000, files: [...BASE.files, ...extra] } });
      for (let records = 1; records < variant.ends.length; records++) {
        const room = MANIFEST_LOG_PAGE_BYTES - (variant.ends[records - 1]! % MANIFEST_LOG_PAGE_BYTES);
        const length = new DataView(variant.bytes.buffer, variant.bytes.byteOffset + variant.ends[records - 1]!, 4).getUint32(0, true);
        if (room < 8 && length === 0) shortPaddings++;
      }
      expect(decodeManifestLog(variant.bytes, MAC).manifest).toEqual(variant.states.at(-1));
    }
    expect(shortPaddings).toBeGreaterThan(0);
  });

  it('a record that does not fit in one log page is refused by the encoder', () => {
    const changed = Array.from({ length: 40 }, (_, index) => fileEntry(index + 1, 1));
    expect(() => encodeManifestRecord({ epoch: 6, activeKeyId: 1, nextFileId: 50, changed, removed: [] }, filled(32, 0), MAC)).toThrow(
      RangeError,
    );
  });
});
