/**
 * Tamper and rollback evidence on real stores written by the product (SPEC §5.5, docs/format.md §5.7).
 *
 * A pristine store is built once: 3000 keys with 100-byte values carrying a recognisable canary, two
 * shards, 64 KiB files (so each shard has several sealed files), closed. Every case copies it, damages
 * the copy and checks that the damage is refused with a typed error, never answered with wrong bytes.
 * Every `get` that does not throw must return exactly the value written for that key.
 *
 * Data pages are checked in two ways:
 * - offline: damage the closed copy, then open. Without hint files, recovery rebuilds the index by
 *   replaying (and so authenticating) every page, so today `open` itself refuses the copy with
 *   ARMDB_INTEGRITY. Should `open` become lazy (hint files), the same test then requires the failure on
 *   `get` of the affected keys and in `verify()`.
 * - live: open an intact copy, then damage a sealed page on disk under the open store (the page is not
 *   cached yet). Reading a key stored in that page and `verify()` must fail and name file and page.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifestUnauthenticated } from '../helpers/manifest.js';
import { ArmdbError, VarMap, keys, type ArmdbErrorCode } from '../../src/index.js';

const KEY = new Uint8Array(randomBytes(32));
const PAGE = 4096;
const TAG = 16;
const TAG_HEADER = 128;
const TAG_FOOTER = 80;
const KEY_COUNT = 3000;
const VALUE_BYTES = 100;

function options(key: Uint8Array = KEY) {
  return { keySize: 16, encryption: { key }, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536 } as const;
}

const keyOf = (index: number): Uint8Array => keys.fromString(`key-${index}`, 16);

/** 100 bytes: `CANARY-<index>-` repeated (so any leak of plaintext would be recognisable). */
function valueFor(index: number, label = 'CANARY'): Uint8Array {
  const unit = `${label}-${String(index).padStart(6, '0')}-`;
  return new TextEncoder().encode(unit.repeat(Math.ceil(VALUE_BYTES / unit.length)).slice(0, VALUE_BYTES));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, offset) => from + offset);

// ---- files -----------------------------------------------------------------------------------

interface FileInfo {
  readonly shard: number;
  readonly id: number;
  readonly pages: number;
  readonly data: string;
  readonly tags: string;
}

const shardDir = (dir: string, shard: number): string => path.join(dir, `shard-${String(shard).padStart(3, '0')}`);
const fileName = (id: number, extension: 'data' | 'tags'): string => `${String(id).padStart(6, '0')}.${extension}`;
const dataPath = (dir: string, shard: number, id: number): string => path.join(shardDir(dir, shard), fileName(id, 'data'));
const tagPath = (dir: string, shard: number, id: number): string => path.join(shardDir(dir, shard), fileName(id, 'tags'));

/** Data files of `shard`, in id order. */
function filesOf(dir: string, shard: number): FileInfo[] {
  return fs
    .readdirSync(shardDir(dir, shard))
    .filter((name) => name.endsWith('.data'))
    .map((name) => Number(name.slice(0, -'.data'.length)))
    .sort((left, right) => left - right)
    .map((id) => ({
      shard,
      id,
      pages: fs.statSync(dataPath(dir, shard, id)).size / PAGE,
      data: dataPath(dir, shard, id),
      tags: tagPath(dir, shard, id),
    }));
}

function allFiles(dir: string): FileInfo[] {
  return [...filesOf(dir, 0), ...filesOf(dir, 1)];
}

function relocate(file: FileInfo, dir: string): FileInfo {
  return { ...file, data: dataPath(dir, file.shard, file.id), tags: tagPath(dir, file.shard, file.id) };
}

function flipBit(file: string, offset: number, bit = 0): void {
  const bytes = fs.readFileSync(file);
  if (offset < 0 || offset >= bytes.length) throw new Error(`offset ${offset} outside ${file} (${bytes.length} bytes)`);
  bytes[offset] = bytes[offset]! ^ (1 << bit);
  fs.writeFileSync(file, bytes);
}

/** Flips a bit through a separate descriptor, without replacing the file (it may be open). */
function flipBitInPlace(file: string, offset: number, bit = 0): void {
  const descriptor = fs.openSync(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    expect(fs.readSync(descriptor, byte, 0, 1, offset)).toBe(1);
    byte[0] = byte[0]! ^ (1 << bit);
    fs.writeSync(descriptor, byte, 0, 1, offset);
  } finally {
    fs.closeSync(descriptor);
  }
}

/** Swaps two equally long ranges of a file in place. */
function swapRanges(file: string, first: number, second: number, length: number): void {
  const descriptor = fs.openSync(file, 'r+');
  try {
    const a = Buffer.alloc(length);
    const b = Buffer.alloc(length);
    expect(fs.readSync(descriptor, a, 0, length, first)).toBe(length);
    expect(fs.readSync(descriptor, b, 0, length, second)).toBe(length);
    expect(a.equals(b)).toBe(false);
    fs.writeSync(descriptor, b, 0, length, first);
    fs.writeSync(descriptor, a, 0, length, second);
  } finally {
    fs.closeSync(descriptor);
  }
}

function swapFiles(first: string, second: string): void {
  const temporary = `${first}.swap`;
  fs.renameSync(first, temporary);
  fs.renameSync(second, first);
  fs.renameSync(temporary, second);
}

/** The epoch the MANIFEST records, its log included (read without the key). */
function manifestEpoch(dir: string): number {
  return readManifestUnauthenticated(fs.readFileSync(path.join(dir, 'MANIFEST'))).manifest.epoch;
}

function manifestNextFileId(dir: string): number {
  return readManifestUnauthenticated(fs.readFileSync(path.join(dir, 'MANIFEST'))).manifest.nextFileId;
}

// ---- store fixtures --------------------------------------------------------------------------

let root: string;
let pristine: string;
/** Store B: another database written with the same key. */
let otherDatabase: string;
let copies = 0;

function copyOf(source: string): string {
  const dir = path.join(root, `case-${++copies}`);
  fs.cpSync(source, dir, { recursive: true });
  return dir;
}

async function writeStore(dir: string, count: number, label: string): Promise<void> {
  const db = await VarMap.open(dir, options());
  for (let index = 0; index < count; index++) db.put(keyOf(index), valueFor(index, label));
  await db.close();
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-tamper-'));
  pristine = path.join(root, 'pristine');
  await writeStore(pristine, KEY_COUNT, 'CANARY');
  otherDatabase = path.join(root, 'other');
  await writeStore(otherDatabase, 2 * KEY_COUNT, 'OTHERDB');
  // The fixture is what the cases assume: several sealed, multi-page files per shard.
  for (const shard of [0, 1]) {
    const files = filesOf(pristine, shard);
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) expect(Number.isInteger(file.pages)).toBe(true);
    expect(files[0]!.pages).toBeGreaterThanOrEqual(8);
    expect(files[1]!.pages).toBeGreaterThanOrEqual(8);
  }
});

afterAll(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

/** The first sealed file of shard 0 (full, 16+ pages). */
const firstFile = (dir: string): FileInfo => filesOf(dir, 0)[0]!;

// ---- assertions ------------------------------------------------------------------------------

interface ReadOutcome {
  /** Indexes whose get threw ARMDB_INTEGRITY. */
  readonly failed: number[];
  /** Indexes whose get returned bytes other than the value written for that key (must stay empty). */
  readonly wrong: number[];
  /** Indexes whose get returned undefined. */
  readonly missing: number[];
  /** Errors other than ARMDB_INTEGRITY (must stay empty). */
  readonly otherErrors: unknown[];
}

/** Reads every index; a get that does not throw must return exactly that key's value. */
function readAll(
  db: VarMap,
  indexes: readonly number[],
  expected: (index: number) => Uint8Array | undefined = (index) => valueFor(index),
): ReadOutcome {
  const failed: number[] = [];
  const wrong: number[] = [];
  const missing: number[] = [];
  const otherErrors: unknown[] = [];
  for (const index of indexes) {
    let value: Uint8Array | undefined;
    try {
      value = db.get(keyOf(index));
    } catch (error) {
      if (error instanceof ArmdbError && error.code === 'ARMDB_INTEGRITY') failed.push(index);
      else otherErrors.push(error);
      continue;
    }
    const want = expected(index);
    if (value === undefined) {
      if (want !== undefined) missing.push(index);
      continue;
    }
    if (want === undefined || !Buffer.from(value).equals(Buffer.from(want))) wrong.push(index);
  }
  return { failed, wrong, missing, otherErrors };
}

function expectAllIntact(db: VarMap, indexes: readonly number[], expected?: (index: number) => Uint8Array | undefined): void {
  const outcome = readAll(db, indexes, expected);
  expect(outcome).toEqual({ failed: [], wrong: [], missing: [], otherErrors: [] });
}

function expectArmdbCode(error: unknown, codes: readonly ArmdbErrorCode[]): ArmdbError {
  expect(error).toBeInstanceOf(ArmdbError);
  const armdb = error as ArmdbError;
  expect(codes).toContain(armdb.code);
  return armdb;
}

/**
 * `open` must reject with one of `codes`. If it opens instead, every get is checked for wrong bytes
 * (a stronger failure message) before the test fails.
 */
async function expectOpenRejected(dir: string, codes: readonly ArmdbErrorCode[], key: Uint8Array = KEY): Promise<ArmdbError> {
  let db: VarMap;
  try {
    db = await VarMap.open(dir, options(key));
  } catch (error) {
    return expectArmdbCode(error, codes);
  }
  try {
    const outcome = readAll(db, range(0, KEY_COUNT));
    expect(outcome.wrong, 'gets returned wrong bytes').toEqual([]);
  } finally {
    await db.close();
  }
  throw new Error(`open succeeded; expected it to fail with ${codes.join(' or ')}`);
}

/**
 * Whole data files replaced under their tag files: refused at open, or — when open trusts hints and
 * does not decrypt sealed data pages — every read of the affected data fails with ARMDB_INTEGRITY,
 * none returns wrong bytes, and verify() reports the damage.
 */
async function expectRefusedOrDetectedOnRead(dir: string, codes: readonly ArmdbErrorCode[]): Promise<void> {
  let db: VarMap;
  try {
    db = await VarMap.open(dir, options());
  } catch (error) {
    expectArmdbCode(error, codes);
    return;
  }
  try {
    const outcome = readAll(db, range(0, KEY_COUNT));
    expect(outcome.wrong, 'no get may return wrong bytes').toEqual([]);
    expect(outcome.otherErrors).toEqual([]);
    expect(outcome.failed.length, 'reads of the swapped data fail').toBeGreaterThan(0);
    const report = await db.verify();
    expect(report.ok).toBe(false);
  } finally {
    await db.close();
  }
}

/**
 * Damage inside the data pages `pages` of `file` (which lies in `dir`): refused at open with
 * ARMDB_INTEGRITY, or, if open does not authenticate every page, on reading the affected keys and by
 * verify(), which names exactly those pages.
 */
async function expectPageDamageDetected(dir: string, file: FileInfo, pages: readonly number[]): Promise<void> {
  let db: VarMap;
  try {
    db = await VarMap.open(dir, options());
  } catch (error) {
    expectArmdbCode(error, ['ARMDB_INTEGRITY']);
    return;
  }
  try {
    await expectLazyPageFailures(db, file, pages);
  } finally {
    await db.close();
  }
}

async function expectLazyPageFailures(db: VarMap, file: FileInfo, pages: readonly number[]): Promise<void> {
  const outcome = readAll(db, range(0, KEY_COUNT));
  expect(outcome.wrong, 'no get may return wrong bytes').toEqual([]);
  expect(outcome.missing).toEqual([]);
  expect(outcome.otherErrors).toEqual([]);
  expect(outcome.failed.length, 'some key lies in the damaged page').toBeGreaterThanOrEqual(pages.length);
  expect(outcome.failed.length).toBeLessThan(200);
  // Reading the same key again fails again (nothing unverified was cached).
  for (const index of outcome.failed) {
    expect(() => db.get(keyOf(index))).toThrow(ArmdbError);
  }
  const report = await db.verify();
  expect(report.ok).toBe(false);
  expect(report.failures.map(({ shard, fileId, pageIndex }) => ({ shard, fileId, pageIndex }))).toEqual(
    [...pages].sort((left, right) => left - right).map((pageIndex) => ({ shard: file.shard, fileId: file.id, pageIndex })),
  );
  expect(report.failures[0]!.fileId).toBe(file.id);
  expect(report.failures[0]!.pageIndex).toBe(Math.min(...pages));
}

/** Opens an intact copy, damages `file` on disk under the open store, then expects lazy failures. */
async function liveDamage(file: (dir: string) => FileInfo, pages: readonly number[], damage: (file: FileInfo) => void): Promise<void> {
  const dir = copyOf(pristine);
  const db = await VarMap.open(dir, options());
  try {
    const target = file(dir);
    damage(target);
    await expectLazyPageFailures(db, target, pages);
  } finally {
    await db.close();
  }
}

// ---- cases -----------------------------------------------------------------------------------

describe('control', () => {
  it('an untouched copy of the pristine store opens, reads every key and verifies', async () => {
    const dir = copyOf(pristine);
    const db = await VarMap.open(dir, options());
    try {
      expect(db.size).toBe(KEY_COUNT);
      expectAllIntact(db, range(0, KEY_COUNT));
      const report = await db.verify();
      expect(report.ok).toBe(true);
      expect(report.failures).toEqual([]);
      expect(report.files).toBeGreaterThanOrEqual(allFiles(pristine).length);
    } finally {
      await db.close();
    }
  });
});

describe('bit flips in sealed data pages', () => {
  // page index within the first sealed file of shard 0, and the byte within that page
  const positions: { name: string; page: (file: FileInfo) => number; byte: number }[] = [
    { name: 'first byte of page 3', page: () => 3, byte: 0 },
    { name: 'a middle byte of page 3', page: () => 3, byte: 2048 },
    { name: 'last byte of page 3', page: () => 3, byte: PAGE - 1 },
    { name: 'first byte of page 0', page: () => 0, byte: 0 },
    { name: 'last byte of the last page', page: (file) => file.pages - 1, byte: PAGE - 1 },
  ];

  for (const { name, page, byte } of positions) {
    it(`offline: ${name} → ARMDB_INTEGRITY (at open, or on get and verify)`, async () => {
      const dir = copyOf(pristine);
      const file = firstFile(dir);
      const pageIndex = page(file);
      flipBit(file.data, pageIndex * PAGE + byte, 3);
      await expectPageDamageDetected(dir, file, [pageIndex]);
    });

    it(`live: ${name} → get of a key in that page throws ARMDB_INTEGRITY, verify names file and page`, async () => {
      let pageIndex = -1;
      await liveDamage(firstFile, [page(firstFile(pristine))], (file) => {
        pageIndex = page(file);
        flipBitInPlace(file.data, pageIndex * PAGE + byte, 5);
      });
      expect(pageIndex).toBeGreaterThanOrEqual(0);
    });
  }

  it('live: a flip in a page of a sealed file of the other shard is reported for that shard', async () => {
    const second = (dir: string): FileInfo => filesOf(dir, 1)[1]!;
    await liveDamage(second, [5], (file) => flipBitInPlace(file.data, 5 * PAGE + 777, 1));
  });

  it('the error names the damaged page in details (shard, file id, page index): on get, at an open that replays it, and as verify reports it', async () => {
    const located = (file: FileInfo, pageIndex: number) => ({ shard: file.shard, fileId: file.id, pageIndex });
    const dir = copyOf(pristine);
    const db = await VarMap.open(dir, options());
    const file = filesOf(dir, 1)[1]!;
    try {
      flipBitInPlace(file.data, 5 * PAGE + 777, 1);
      const errors: unknown[] = [];
      for (const index of range(0, KEY_COUNT)) {
        try {
          db.get(keyOf(index));
        } catch (error) {
          errors.push(error);
        }
      }
      expect(errors.length, 'some key lies in the damaged page').toBeGreaterThan(0);
      for (const error of errors) {
        const armdb = expectArmdbCode(error, ['ARMDB_INTEGRITY']);
        expect(armdb.details).toEqual(located(file, 5));
        expect(Object.isFrozen(armdb.details)).toBe(true);
      }
      const report = await db.verify();
      expect(report.failures.map(({ shard, fileId, pageIndex }) => ({ shard, fileId, pageIndex }))).toEqual([located(file, 5)]);
    } finally {
      await db.close();
    }

    // Offline, without hints: recovery replays (and so authenticates) every page and refuses the open.
    const offline = copyOf(pristine);
    const target = filesOf(offline, 1)[1]!;
    flipBit(target.data, 5 * PAGE + 777, 1);
    const refusal = await VarMap.open(offline, { ...options(), hints: false }).then(
      async (opened) => {
        await opened.close();
        throw new Error('open succeeded; expected ARMDB_INTEGRITY');
      },
      (error: unknown) => expectArmdbCode(error, ['ARMDB_INTEGRITY']),
    );
    expect(refusal.details).toEqual(located(target, 5));
  });
});

describe('tag files', () => {
  it('a bit flip in a tag of a sealed file → refused at open (ARMDB_INTEGRITY or ARMDB_ROLLBACK)', async () => {
    const dir = copyOf(pristine);
    flipBit(firstFile(dir).tags, TAG_HEADER + 2 * TAG + 5, 0);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  // A bit flip is damage, not an older file generation (SPEC §5.5; security-model.md, "Bit flip in a
  // tag of a sealed file"): the recomputed tag digest no longer matches the footer, so the open is
  // refused with ARMDB_INTEGRITY. Only a tag file cut to a footer-less length reads as ARMDB_ROLLBACK.
  it('a bit flip in a tag of a sealed file → ARMDB_INTEGRITY at open (the tag digest no longer matches)', async () => {
    const dir = copyOf(pristine);
    flipBit(firstFile(dir).tags, TAG_HEADER + 2 * TAG + 5, 0);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
  });

  for (const [name, offset] of [
    ['magic', 0],
    ['version', 8],
    ['database id', 20],
    ['shard', 32],
    ['file id', 36],
    ['key id', 40],
    ['salt', 50],
    ['reserved', 90],
    ['header MAC', 100],
  ] as const) {
    it(`a bit flip in the tag-file header (${name}) → ARMDB_INTEGRITY or ARMDB_ROLLBACK at open`, async () => {
      const dir = copyOf(pristine);
      flipBit(firstFile(dir).tags, offset, 1);
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
    });
  }

  for (const [name, offset] of [
    ['magic', 0],
    ['page count', 8],
    ['tag digest', 30],
    ['footer MAC', 60],
    ['last byte', TAG_FOOTER - 1],
  ] as const) {
    it(`a bit flip in the tag-file footer (${name}) → ARMDB_INTEGRITY or ARMDB_ROLLBACK at open`, async () => {
      const dir = copyOf(pristine);
      const file = firstFile(dir);
      flipBit(file.tags, TAG_HEADER + file.pages * TAG + offset, 2);
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
    });
  }

  it('truncating a tag file by one tag (16 bytes off the end) → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const file = firstFile(dir);
    fs.truncateSync(file.tags, fs.statSync(file.tags).size - TAG);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('removing the last tag but keeping the footer → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const file = firstFile(dir);
    const bytes = fs.readFileSync(file.tags);
    const lastTag = TAG_HEADER + (file.pages - 1) * TAG;
    fs.writeFileSync(file.tags, Buffer.concat([bytes.subarray(0, lastTag), bytes.subarray(lastTag + TAG)]));
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('truncating a tag file to zero → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    fs.truncateSync(firstFile(dir).tags, 0);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('truncating a tag file into its header → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    fs.truncateSync(firstFile(dir).tags, 100);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('extending a tag file by one byte and by one tag → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    for (const extra of [1, TAG]) {
      const dir = copyOf(pristine);
      fs.appendFileSync(firstFile(dir).tags, Buffer.alloc(extra));
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
    }
  });
});

describe('MANIFEST and KEYRING', () => {
  /**
   * Where a flipped MANIFEST bit is refused with ARMDB_FORMAT_MISMATCH instead of ARMDB_INTEGRITY:
   * the version field (bytes 8..9; docs/format.md N2: another version is a format mismatch, and it is
   * read before the MAC, whose scheme depends on the version). Every other bit, the algorithm byte
   * included, must be ARMDB_INTEGRITY.
   */
  const formatMismatchAllowed = (offset: number): boolean => offset === 8 || offset === 9;

  async function manifestFlipOutcome(dir: string, original: Buffer, offset: number, bit: number): Promise<string> {
    const damaged = Buffer.from(original);
    damaged[offset] = damaged[offset]! ^ (1 << bit);
    fs.writeFileSync(path.join(dir, 'MANIFEST'), damaged);
    try {
      const db = await VarMap.open(dir, options());
      await db.close();
      return 'opened';
    } catch (error) {
      return error instanceof ArmdbError ? error.code : `not an ArmdbError: ${String(error)}`;
    }
  }

  it('a bit flip anywhere in the MANIFEST is refused at open (every byte, one bit each)', async () => {
    const dir = copyOf(pristine);
    const original = fs.readFileSync(path.join(dir, 'MANIFEST'));
    const unexpected: { offset: number; bit: number; outcome: string }[] = [];
    for (let offset = 0; offset < original.length; offset++) {
      const bit = offset % 8;
      const outcome = await manifestFlipOutcome(dir, original, offset, bit);
      if (outcome === 'ARMDB_INTEGRITY' || (outcome === 'ARMDB_FORMAT_MISMATCH' && formatMismatchAllowed(offset))) continue;
      unexpected.push({ offset, bit, outcome });
    }
    fs.writeFileSync(path.join(dir, 'MANIFEST'), original);
    expect(unexpected).toEqual([]);
    // The restored manifest still opens the store intact.
    const db = await VarMap.open(dir, options());
    try {
      expectAllIntact(db, range(0, KEY_COUNT));
    } finally {
      await db.close();
    }
  });

  it('every bit of the MANIFEST header (bytes 0..63) is refused with ARMDB_INTEGRITY (version/algorithm: typed refusal)', async () => {
    const dir = copyOf(pristine);
    const original = fs.readFileSync(path.join(dir, 'MANIFEST'));
    const unexpected: { offset: number; bit: number; outcome: string }[] = [];
    for (let offset = 0; offset < 64; offset++) {
      for (let bit = 0; bit < 8; bit++) {
        const outcome = await manifestFlipOutcome(dir, original, offset, bit);
        if (outcome === 'ARMDB_INTEGRITY' || (outcome === 'ARMDB_FORMAT_MISMATCH' && formatMismatchAllowed(offset))) continue;
        unexpected.push({ offset, bit, outcome });
      }
    }
    expect(unexpected).toEqual([]);
  });

  // SPEC §5.5 "a bit flip anywhere … is refused with ARMDB_INTEGRITY", the algorithm byte included: it
  // is read before the MAC (format.md §7.4), and 1 → 0 while a KEYRING exists is tampering
  // (security-model.md: "claims no encryption but the store has a KEYRING"), not a store created
  // without encryption, so the error is ARMDB_INTEGRITY and never ARMDB_FORMAT_MISMATCH.
  it('a flip of the MANIFEST algorithm byte (1 → 0) → ARMDB_INTEGRITY', async () => {
    const dir = copyOf(pristine);
    flipBit(path.join(dir, 'MANIFEST'), 10, 0);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
  });

  it('a MANIFEST whose algorithm byte was flipped to 0 is not opened without encryption either', async () => {
    const dir = copyOf(pristine);
    flipBit(path.join(dir, 'MANIFEST'), 10, 0);
    let error: unknown;
    try {
      const db = await VarMap.open(dir, { keySize: 16, encryption: 'none', shards: 2, syncIntervalMs: 0, maxFileBytes: 65536 });
      await db.close();
    } catch (caught) {
      error = caught;
    }
    expectArmdbCode(error, ['ARMDB_INTEGRITY']);
  });

  it('a bit flip in the MANIFEST (entries and MAC) → ARMDB_INTEGRITY', async () => {
    const manifestLength = fs.statSync(path.join(pristine, 'MANIFEST')).size;
    for (const offset of [20, 64, 64 + 16, 64 + 30, 64 + 60, 64 + 100, manifestLength - 1]) {
      const dir = copyOf(pristine);
      flipBit(path.join(dir, 'MANIFEST'), offset, 4);
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
    }
  });

  it('a bit flip anywhere in the KEYRING → ARMDB_INTEGRITY or ARMDB_WRONG_KEY (every bit)', async () => {
    const dir = copyOf(pristine);
    const keyringPath = path.join(dir, 'KEYRING');
    const original = fs.readFileSync(keyringPath);
    for (let offset = 0; offset < original.length; offset++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = Buffer.from(original);
        damaged[offset] = damaged[offset]! ^ (1 << bit);
        fs.writeFileSync(keyringPath, damaged);
        await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY']);
      }
    }
    fs.writeFileSync(keyringPath, original);
    const db = await VarMap.open(dir, options());
    await db.close();
  });

  it('a missing MANIFEST or KEYRING → ARMDB_INTEGRITY (never a fresh empty store on top of the data)', async () => {
    for (const name of ['MANIFEST', 'KEYRING']) {
      const dir = copyOf(pristine);
      fs.rmSync(path.join(dir, name));
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
    }
  });

  it('wrong key → ARMDB_WRONG_KEY, and the store is unharmed', async () => {
    const dir = copyOf(pristine);
    await expectOpenRejected(dir, ['ARMDB_WRONG_KEY'], new Uint8Array(randomBytes(32)));
    const flipped = Uint8Array.from(KEY);
    flipped[31] = flipped[31]! ^ 1;
    await expectOpenRejected(dir, ['ARMDB_WRONG_KEY'], flipped);
    const db = await VarMap.open(dir, options());
    try {
      expectAllIntact(db, range(0, KEY_COUNT));
    } finally {
      await db.close();
    }
  });
});

describe('truncated, extended and missing data files', () => {
  const cases: { name: string; apply: (file: FileInfo) => void }[] = [
    { name: 'truncated by one byte', apply: (file) => fs.truncateSync(file.data, file.pages * PAGE - 1) },
    { name: 'truncated by one page', apply: (file) => fs.truncateSync(file.data, (file.pages - 1) * PAGE) },
    { name: 'truncated to zero', apply: (file) => fs.truncateSync(file.data, 0) },
    { name: 'extended by one zero byte', apply: (file) => fs.appendFileSync(file.data, Buffer.alloc(1)) },
    { name: 'extended by one random byte', apply: (file) => fs.appendFileSync(file.data, randomBytes(1)) },
    { name: 'extended by one zero page', apply: (file) => fs.appendFileSync(file.data, Buffer.alloc(PAGE)) },
    { name: 'extended by one random page', apply: (file) => fs.appendFileSync(file.data, randomBytes(PAGE)) },
    { name: 'deleted', apply: (file) => fs.rmSync(file.data) },
  ];
  for (const { name, apply } of cases) {
    it(`a sealed data file ${name} → ARMDB_INTEGRITY at open`, async () => {
      const dir = copyOf(pristine);
      apply(firstFile(dir));
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
    });
  }

  it('the last sealed data file of a shard truncated by one page → ARMDB_INTEGRITY', async () => {
    const dir = copyOf(pristine);
    const files = filesOf(dir, 1);
    const last = files[files.length - 1]!;
    expect(last.pages).toBeGreaterThanOrEqual(1);
    fs.truncateSync(last.data, (last.pages - 1) * PAGE);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
  });

  it('a deleted tag file → ARMDB_INTEGRITY', async () => {
    const dir = copyOf(pristine);
    fs.rmSync(firstFile(dir).tags);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
  });

  it('a deleted data + tag pair (a whole sealed file) → ARMDB_INTEGRITY', async () => {
    for (const pick of [(dir: string) => filesOf(dir, 0)[1]!, (dir: string) => filesOf(dir, 1).at(-1)!]) {
      const dir = copyOf(pristine);
      const file = pick(dir);
      fs.rmSync(file.data);
      fs.rmSync(file.tags);
      await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
    }
  });

  it('a sealed file moved to the other shard directory → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const file = firstFile(dir);
    fs.renameSync(file.data, dataPath(dir, 1, file.id));
    fs.renameSync(file.tags, tagPath(dir, 1, file.id));
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });
});

describe('swapped files and pages', () => {
  it('two sealed files of one shard swapped (data and tags) → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const [a, b] = filesOf(dir, 0) as [FileInfo, FileInfo];
    swapFiles(a.data, b.data);
    swapFiles(a.tags, b.tags);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('two sealed files of one shard swapped (data only) → refused at open, or every read of them fails and verify reports it', async () => {
    const dir = copyOf(pristine);
    const [a, b] = filesOf(dir, 0) as [FileInfo, FileInfo];
    swapFiles(a.data, b.data);
    await expectRefusedOrDetectedOnRead(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('two sealed files of one shard of the same length swapped (data only) → refused at open, or every read of them fails and verify reports it', async () => {
    const dir = copyOf(pristine);
    const files = filesOf(dir, 0);
    const a = files[0]!;
    const b = files.slice(1).find((file) => file.pages === a.pages);
    expect(b, 'two full files of the same page count').toBeDefined();
    swapFiles(a.data, b!.data);
    await expectRefusedOrDetectedOnRead(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('two sealed files of one shard swapped (tags only) → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const [a, b] = filesOf(dir, 0) as [FileInfo, FileInfo];
    swapFiles(a.tags, b.tags);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('offline: two pages of one data file swapped (data only) → ARMDB_INTEGRITY (at open, or on get and verify)', async () => {
    const dir = copyOf(pristine);
    const file = firstFile(dir);
    swapRanges(file.data, 2 * PAGE, 6 * PAGE, PAGE);
    await expectPageDamageDetected(dir, file, [2, 6]);
  });

  it('offline: two pages swapped together with their tags → refused (ARMDB_INTEGRITY or ARMDB_ROLLBACK)', async () => {
    const dir = copyOf(pristine);
    const file = firstFile(dir);
    swapRanges(file.data, 2 * PAGE, 6 * PAGE, PAGE);
    swapRanges(file.tags, TAG_HEADER + 2 * TAG, TAG_HEADER + 6 * TAG, TAG);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  // As with the tag bit flip above: swapped tags change the tag digest, so the sealed file is refused
  // with ARMDB_INTEGRITY (security-model.md, "Two pages of a file swapped together with their tags").
  it('offline: two pages swapped together with their tags → ARMDB_INTEGRITY', async () => {
    const dir = copyOf(pristine);
    const file = firstFile(dir);
    swapRanges(file.data, 2 * PAGE, 6 * PAGE, PAGE);
    swapRanges(file.tags, TAG_HEADER + 2 * TAG, TAG_HEADER + 6 * TAG, TAG);
    await expectPageDamageDetected(dir, file, [2, 6]);
  });

  it('live: two pages of one data file swapped → gets of the affected keys throw ARMDB_INTEGRITY, verify names both pages', async () => {
    await liveDamage(firstFile, [2, 6], (file) => swapRanges(file.data, 2 * PAGE, 6 * PAGE, PAGE));
  });

  it('live: two pages swapped with their tags on disk → the same (the verified tags were loaded at open)', async () => {
    await liveDamage(firstFile, [2, 6], (file) => {
      swapRanges(file.data, 2 * PAGE, 6 * PAGE, PAGE);
      swapRanges(file.tags, TAG_HEADER + 2 * TAG, TAG_HEADER + 6 * TAG, TAG);
    });
  });

  it('live: one page overwritten with a page of another file of the same shard → ARMDB_INTEGRITY on get and verify', async () => {
    await liveDamage(firstFile, [4], (file) => {
      const other = filesOf(path.dirname(path.dirname(file.data)), 0)[1]!;
      const page = Buffer.alloc(PAGE);
      const source = fs.openSync(other.data, 'r');
      fs.readSync(source, page, 0, PAGE, 4 * PAGE);
      fs.closeSync(source);
      const target = fs.openSync(file.data, 'r+');
      fs.writeSync(target, page, 0, PAGE, 4 * PAGE);
      fs.closeSync(target);
    });
  });
});

describe('older generations (rollback)', () => {
  interface Generations {
    /** The store after a second session: more writes, sync, more writes, deletes, close. */
    readonly dir: string;
    /** A copy taken during the second session, right after its first sync (files then active). */
    readonly snapshot: string;
    /** The files that were active in the snapshot and are sealed now. */
    readonly activeThen: FileInfo[];
    readonly epochNow: number;
    readonly epochThen: number;
    /** Expected value of an index after the second session (undefined = deleted). */
    readonly expected: (index: number) => Uint8Array | undefined;
  }

  const DELETED = range(0, 50);
  const FIRST_BATCH = range(KEY_COUNT, KEY_COUNT + 200);
  const SECOND_BATCH = range(KEY_COUNT + 200, KEY_COUNT + 400);
  const ALL = range(0, KEY_COUNT + 400);

  async function generations(): Promise<Generations> {
    const dir = copyOf(pristine);
    const before = new Set(allFiles(dir).map((file) => file.id));
    const db = await VarMap.open(dir, options());
    for (const index of FIRST_BATCH) db.put(keyOf(index), valueFor(index));
    await db.sync();
    const snapshot = path.join(root, `snapshot-${++copies}`);
    fs.cpSync(dir, snapshot, { recursive: true });
    fs.rmSync(path.join(snapshot, 'LOCK'), { force: true });
    const epochThen = manifestEpoch(snapshot);
    for (const index of SECOND_BATCH) db.put(keyOf(index), valueFor(index));
    for (const index of DELETED) expect(db.delete(keyOf(index))).toBe(true);
    await db.sync();
    await db.close();
    const activeThen = allFiles(snapshot).filter((file) => !before.has(file.id) && file.pages > 0);
    expect(activeThen.length).toBeGreaterThanOrEqual(1);
    const deleted = new Set(DELETED);
    return {
      dir,
      snapshot,
      activeThen,
      epochNow: manifestEpoch(dir),
      epochThen,
      expected: (index) => (deleted.has(index) ? undefined : valueFor(index)),
    };
  }

  it('control: the second-session store opens with every key, deletes kept', async () => {
    const { dir, expected, epochNow, epochThen } = await generations();
    expect(epochNow).toBeGreaterThan(epochThen);
    const db = await VarMap.open(dir, { ...options(), expectedMinEpoch: epochNow });
    try {
      expect(db.size).toBe(KEY_COUNT + 400 - DELETED.length);
      expectAllIntact(db, ALL, expected);
    } finally {
      await db.close();
    }
  });

  it('an older copy of a file that was active then and is sealed now (data + tags) → ARMDB_ROLLBACK or ARMDB_INTEGRITY', async () => {
    const { dir, activeThen } = await generations();
    for (const file of activeThen) {
      const now = relocate(file, dir);
      expect(fs.statSync(now.tags).size).toBeGreaterThan(fs.statSync(file.tags).size);
    }
    const file = activeThen[0]!;
    const now = relocate(file, dir);
    fs.copyFileSync(file.data, now.data);
    fs.copyFileSync(file.tags, now.tags);
    await expectOpenRejected(dir, ['ARMDB_ROLLBACK', 'ARMDB_INTEGRITY']);
  });

  it('an older copy of only the tag file, or only the data file → ARMDB_ROLLBACK or ARMDB_INTEGRITY', async () => {
    const { dir, activeThen } = await generations();
    const file = activeThen[0]!;
    for (const which of ['tags', 'data'] as const) {
      const copy = copyOf(dir);
      fs.copyFileSync(file[which], relocate(file, copy)[which]);
      await expectOpenRejected(copy, ['ARMDB_ROLLBACK', 'ARMDB_INTEGRITY']);
    }
  });

  it('an older MANIFEST (taken mid-session) over newer files: opens with every durable key, deletes kept; expectedMinEpoch catches it', async () => {
    const { dir, snapshot, expected, epochNow, epochThen } = await generations();
    fs.copyFileSync(path.join(snapshot, 'MANIFEST'), path.join(dir, 'MANIFEST'));
    let error: unknown;
    try {
      const anchored = await VarMap.open(dir, { ...options(), expectedMinEpoch: epochNow });
      await anchored.close();
    } catch (caught) {
      error = caught;
    }
    expectArmdbCode(error, ['ARMDB_ROLLBACK']);

    // Without the anchor: either refused, or opened with every key the old manifest covered (and,
    // as observed, every later durable record too: the newer files are replayed).
    let db: VarMap;
    try {
      db = await VarMap.open(dir, options());
    } catch (caught) {
      expectArmdbCode(caught, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
      return;
    }
    try {
      expect(db.stats().epoch).toBeGreaterThan(epochThen);
      expectAllIntact(db, [...range(0, KEY_COUNT), ...FIRST_BATCH], expected);
      expectAllIntact(db, SECOND_BATCH, expected);
      expect(db.size).toBe(KEY_COUNT + 400 - DELETED.length);
    } finally {
      await db.close();
    }
  });

  it('the pristine MANIFEST over a store that has had a second session: expectedMinEpoch → ARMDB_ROLLBACK', async () => {
    const { dir, epochNow } = await generations();
    fs.copyFileSync(path.join(pristine, 'MANIFEST'), path.join(dir, 'MANIFEST'));
    let error: unknown;
    try {
      const anchored = await VarMap.open(dir, { ...options(), expectedMinEpoch: epochNow });
      await anchored.close();
    } catch (caught) {
      error = caught;
    }
    expectArmdbCode(error, ['ARMDB_ROLLBACK']);
  });

  // An older MANIFEST put back (security-model.md, "An older MANIFEST put back"): the files the second
  // session created have ids >= its nextFileId, so recovery replays them as post-barrier files, and
  // the engine allocates its next file id past them. The store opens with every durable key, or is
  // refused with an ArmdbError; never a raw Node error such as EEXIST from creating a file that exists.
  it('the pristine MANIFEST over a store that has had a second session: refused with an ArmdbError or opened with every durable key', async () => {
    const { dir, expected } = await generations();
    fs.copyFileSync(path.join(pristine, 'MANIFEST'), path.join(dir, 'MANIFEST'));
    let db: VarMap;
    try {
      db = await VarMap.open(dir, options());
    } catch (caught) {
      expectArmdbCode(caught, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
      return;
    }
    try {
      expectAllIntact(db, ALL, expected);
      expect(db.size).toBe(KEY_COUNT + 400 - DELETED.length);
    } finally {
      await db.close();
    }
  });

  // SPEC §4, crash recovery: a rotation creates the next data and tag files at once, but only the next
  // barrier records them (and nextFileId) in the MANIFEST. After a crash between the two, recovery
  // keeps the unlisted files (their ids are >= nextFileId) and the engine allocates its next file id
  // past them, so the store reopens with every durable key, and each unsynced key is absent or intact.
  // A copy of the directory taken while the store is open stands in for a process kill (the files are
  // what the OS holds).
  it('crash after an unsynced rotation: the store reopens with every durable key', async () => {
    const dir = copyOf(pristine);
    const crash = path.join(root, `crash-${++copies}`);
    const synced = range(KEY_COUNT, KEY_COUNT + 100);
    const unsynced = range(KEY_COUNT + 100, KEY_COUNT + 1600);
    const db = await VarMap.open(dir, options());
    try {
      const before = allFiles(dir).length;
      for (const index of synced) db.put(keyOf(index), valueFor(index));
      await db.sync();
      for (const index of unsynced) db.put(keyOf(index), valueFor(index));
      expect(allFiles(dir).length, 'the unsynced writes rotated files').toBeGreaterThan(before);
      fs.cpSync(dir, crash, { recursive: true });
    } finally {
      await db.close();
    }
    const recovered = await VarMap.open(crash, options());
    try {
      expectAllIntact(recovered, [...range(0, KEY_COUNT), ...synced]);
      const outcome = readAll(recovered, unsynced);
      expect(outcome.wrong).toEqual([]);
      expect(outcome.failed).toEqual([]);
    } finally {
      await recovered.close();
    }
  });

  it('a crash copy (taken after sync, while open) opens intact; its active file cut below the durable pages → ARMDB_INTEGRITY', async () => {
    const { snapshot, activeThen } = await generations();
    const intact = copyOf(snapshot);
    const db = await VarMap.open(intact, options());
    try {
      expectAllIntact(db, [...range(0, KEY_COUNT), ...FIRST_BATCH]);
    } finally {
      await db.close();
    }
    const file = activeThen[0]!;
    for (const cut of [
      (target: FileInfo) => fs.truncateSync(target.data, (target.pages - 1) * PAGE),
      (target: FileInfo) => fs.truncateSync(target.tags, TAG_HEADER + (target.pages - 1) * TAG),
      (target: FileInfo) => fs.rmSync(target.data),
    ]) {
      const copy = copyOf(snapshot);
      cut(relocate(file, copy));
      await expectOpenRejected(copy, ['ARMDB_INTEGRITY']);
    }
    const flipped = copyOf(snapshot);
    flipBit(relocate(file, flipped).data, 0, 0);
    await expectOpenRejected(flipped, ['ARMDB_INTEGRITY']);
  });
});

describe('foreign files', () => {
  it('an extra data + tag pair of random bytes, named with an id between existing ones → ARMDB_INTEGRITY', async () => {
    const dir = copyOf(pristine);
    const shard0 = new Set(filesOf(dir, 0).map((file) => file.id));
    const between = filesOf(dir, 1)
      .map((file) => file.id)
      .find((id) => id > Math.min(...shard0) && id < Math.max(...shard0) && !shard0.has(id));
    expect(between).toBeDefined();
    fs.writeFileSync(dataPath(dir, 0, between!), randomBytes(4 * PAGE), { mode: 0o600 });
    fs.writeFileSync(tagPath(dir, 0, between!), randomBytes(TAG_HEADER + 4 * TAG + TAG_FOOTER), { mode: 0o600 });
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
  });

  it('an extra data + tag pair of random bytes with an id beyond the next file id → ARMDB_INTEGRITY', async () => {
    const dir = copyOf(pristine);
    const id = manifestNextFileId(dir) + 3;
    fs.writeFileSync(dataPath(dir, 1, id), randomBytes(2 * PAGE), { mode: 0o600 });
    fs.writeFileSync(tagPath(dir, 1, id), randomBytes(TAG_HEADER + 2 * TAG + TAG_FOOTER), { mode: 0o600 });
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY']);
  });

  it("a sealed file of another database (same key) replacing one of A's → ARMDB_INTEGRITY or ARMDB_ROLLBACK", async () => {
    const dir = copyOf(pristine);
    const mine = firstFile(dir);
    const theirs = relocate(mine, otherDatabase);
    expect(fs.existsSync(theirs.data)).toBe(true);
    fs.copyFileSync(theirs.data, mine.data);
    fs.copyFileSync(theirs.tags, mine.tags);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('a sealed file of another database (same key) added under an id A does not have → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const next = manifestNextFileId(dir);
    // B holds twice the data, so it has files with ids A never handed out, at their proper names.
    const theirs = filesOf(otherDatabase, 0).find((file) => file.id >= next && file.pages > 0);
    expect(theirs).toBeDefined();
    fs.copyFileSync(theirs!.data, dataPath(dir, 0, theirs!.id));
    fs.copyFileSync(theirs!.tags, tagPath(dir, 0, theirs!.id));
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it("a sealed file of another database added under an id between A's own ids → ARMDB_INTEGRITY or ARMDB_ROLLBACK", async () => {
    const dir = copyOf(pristine);
    const shard0 = new Set(filesOf(dir, 0).map((file) => file.id));
    const theirs = filesOf(otherDatabase, 0).find((file) => !shard0.has(file.id) && file.id < manifestNextFileId(dir));
    if (theirs === undefined) {
      // B's shard-0 ids coincide with A's; put B's file under an id of A's shard 1.
      const id = filesOf(dir, 1)[0]!.id;
      fs.copyFileSync(filesOf(otherDatabase, 0)[0]!.data, dataPath(dir, 0, id));
      fs.copyFileSync(filesOf(otherDatabase, 0)[0]!.tags, tagPath(dir, 0, id));
    } else {
      fs.copyFileSync(theirs.data, dataPath(dir, 0, theirs.id));
      fs.copyFileSync(theirs.tags, tagPath(dir, 0, theirs.id));
    }
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });

  it('a file of A put back under another id of A (renamed) → ARMDB_INTEGRITY or ARMDB_ROLLBACK', async () => {
    const dir = copyOf(pristine);
    const [a, b] = filesOf(dir, 0) as [FileInfo, FileInfo];
    fs.copyFileSync(a.data, b.data);
    fs.copyFileSync(a.tags, b.tags);
    await expectOpenRejected(dir, ['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']);
  });
});
