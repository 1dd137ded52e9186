/**
 * The key lifecycle of an encrypted store, end to end (SPEC §5.2–§5.5, docs/format.md §2, §8):
 *
 * - `changeKey` re-wraps the data keys only: data and tag files stay byte-identical, the old
 *   credential is refused with ARMDB_WRONG_KEY, the new one opens everything; a crash at any file
 *   operation of `changeKey` leaves exactly one of the two credentials working.
 * - `rotateDataKey` + `compact({ reencrypt: true })` moves every file to the new data key and shreds
 *   the old one; copies of old files cannot be read with the current KEYRING, and an old file put back
 *   is never served.
 * - the rollback anchor (`stats().epoch`, `expectedMinEpoch`, the `armdb:sync` channel);
 * - secret hygiene of every public object, KEYRING and file permissions;
 * - downgrade attempts on the MANIFEST and the KEYRING.
 *
 * Cases that test/security/tamper.test.ts already has (bit flips of the MANIFEST algorithm byte, of
 * every KEYRING bit, a missing KEYRING) are not repeated here; the downgrade cases below forge
 * well-formed files instead (valid MAC or recomputed CRC), so the semantic checks are what refuses them.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { crc32 } from 'node:zlib';
import { describe, expect } from 'vitest';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import {
  ArmdbError,
  ConstMap,
  ConstTree,
  TypedMap,
  TypedTree,
  VarMap,
  VarTree,
  codecs,
  keys,
  type ArmdbErrorCode,
  type Codec,
  type EncryptionOption,
  type OpenOptions,
} from '../../src/index.js';
import { FaultFileSystem } from '../crash/fault-fs.js';
import { storeTest as it } from '../helpers/store.js';

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

/** A recognisable 32-byte raw key: its plain form is printable, so a leak of it is easy to spot. */
function canaryKey(label: string): Uint8Array {
  const text = `KEYCANARY-${label}-${randomBytes(8).toString('hex')}`.padEnd(32, 'Z').slice(0, 32);
  const key = bytes(text);
  expect(key.length).toBe(32);
  return key;
}

const KEY_SIZE = 16;
const keyOf = (index: number): Uint8Array => keys.fromString(`rk-${String(index).padStart(6, '0')}`, KEY_SIZE);

function valueFor(index: number, label: string, length = 200): Uint8Array {
  const unit = `${label}-${String(index).padStart(6, '0')}-`;
  return bytes(unit.repeat(Math.ceil(length / unit.length)).slice(0, length));
}

const decoder = new TextDecoder();
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : decoder.decode(value));

/** Two shards, 64 KiB files (rotation), no background timer or compaction: file operations are ours. */
function optionsOf(encryption: EncryptionOption, extra: Partial<OpenOptions> = {}): OpenOptions {
  return {
    keySize: KEY_SIZE,
    encryption,
    shards: 2,
    syncIntervalMs: 0,
    maxFileBytes: 65536,
    autoCompact: false,
    cacheBytes: 1 << 20,
    ...extra,
  };
}

/** A credential (what changeKey takes). */
type Credential = Exclude<EncryptionOption, 'none'>;

const passphrase = (value: string): Credential => ({ passphrase: value, scryptLogN: 10 });

async function openWithCode(dir: string, options: OpenOptions): Promise<VarMap | ArmdbErrorCode | string> {
  try {
    return await VarMap.open(dir, options);
  } catch (error) {
    return error instanceof ArmdbError ? error.code : `not an ArmdbError: ${String(error)}`;
  }
}

async function expectOpenFails(dir: string, options: OpenOptions, codes: readonly ArmdbErrorCode[]): Promise<ArmdbError> {
  let error: unknown;
  try {
    const db = await VarMap.open(dir, options);
    await db.close();
  } catch (caught) {
    error = caught;
  }
  expect(error, 'open must fail').toBeInstanceOf(ArmdbError);
  expect(codes).toContain((error as ArmdbError).code);
  return error as ArmdbError;
}

/** The expected contents of a store: key index → value text (absent = deleted or never written). */
type Model = Map<number, string>;

async function writeValues(db: VarMap, model: Model, indexes: Iterable<number>, label: string, length = 200): Promise<void> {
  for (const index of indexes) {
    const value = valueFor(index, label, length);
    db.put(keyOf(index), value);
    model.set(index, decoder.decode(value));
  }
}

function expectContents(db: VarMap, model: Model, upTo: number): void {
  const wrong: { index: number; got: string | undefined }[] = [];
  for (let index = 0; index < upTo; index++) {
    const got = text(db.get(keyOf(index)));
    if (got !== model.get(index)) wrong.push({ index, got: got?.slice(0, 24) });
  }
  expect(wrong).toEqual([]);
  expect(db.size).toBe(model.size);
}

async function expectOpensWithContents(dir: string, options: OpenOptions, model: Model, upTo: number): Promise<void> {
  const db = await VarMap.open(dir, options);
  try {
    expectContents(db, model, upTo);
  } finally {
    await db.close();
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, offset) => from + offset);

function walk(dir: string): { files: string[]; directories: string[] } {
  const files: string[] = [];
  const directories: string[] = [dir];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const inner = walk(full);
      files.push(...inner.files);
      directories.push(...inner.directories);
    } else files.push(full);
  }
  return { files, directories };
}

/** SHA-256 of every data and tag file, by relative path. */
function dataAndTagHashes(dir: string): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const file of walk(dir).files.sort()) {
    if (!/\.(data|tags)$/.test(file)) continue;
    hashes[path.relative(dir, file)] = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  }
  return hashes;
}

function copyDirectory(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true });
  return to;
}

/** Key ids of the data-key entries of a KEYRING (docs/format.md §8.1, §8.4). */
function keyringKeyIds(file: string): number[] {
  const keyring = fs.readFileSync(file);
  // Version 2 (docs/format.md §8.1): key count u32 @12, entries of 72 bytes from 100.
  expect(keyring.readUInt16LE(8)).toBe(2);
  const count = keyring.readUInt32LE(12);
  return range(0, count).map((index) => keyring.readUInt32LE(100 + 72 * index));
}

/** Rewrites the trailing CRC-32 of a KEYRING after a field was changed (docs/format.md §8.5). */
function withKeyringCrc(keyring: Buffer): Buffer {
  const fixed = Buffer.from(keyring);
  fixed.writeUInt32LE(crc32(fixed.subarray(0, fixed.length - 4)) >>> 0, fixed.length - 4);
  return fixed;
}

function dataFilesOf(dir: string, shard: number): number[] {
  return fs
    .readdirSync(path.join(dir, `shard-${String(shard).padStart(3, '0')}`))
    .filter((name) => name.endsWith('.data'))
    .map((name) => Number(name.slice(0, -'.data'.length)))
    .sort((left, right) => left - right);
}

const fileName = (id: number, extension: string): string => `${String(id).padStart(6, '0')}.${extension}`;

/** A closed store with `count` keys under `encryption`; returns the model. */
async function buildStore(
  dir: string,
  encryption: EncryptionOption,
  count: number,
  label = 'CANARY',
  extra: Partial<OpenOptions> = {},
): Promise<Model> {
  const model: Model = new Map();
  const db = await VarMap.open(dir, optionsOf(encryption, extra));
  await writeValues(db, model, range(0, count), label);
  await db.close();
  return model;
}

// ---- changeKey ---------------------------------------------------------------------------------

describe('changeKey', () => {
  it('to a new raw key, to a passphrase and back to a raw key: data and tag files byte-identical, old credential refused, new one opens all data', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const first = canaryKey('first');
    const second = canaryKey('second');
    const third = canaryKey('third');
    const model = await buildStore(dir, { key: first }, 800);
    const before = dataAndTagHashes(dir);
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(6); // several files per shard

    const steps: { from: Credential; to: Credential }[] = [
      { from: { key: first }, to: { key: second } },
      { from: { key: second }, to: passphrase('PASSCANARY correct horse') },
      { from: passphrase('PASSCANARY correct horse'), to: { key: third } },
    ];
    const retired: EncryptionOption[] = [];
    for (const { from, to } of steps) {
      const callerCopy = 'key' in to ? Uint8Array.from(to.key as Uint8Array) : undefined;
      const db = await VarMap.open(dir, optionsOf(from));
      await db.changeKey(to);
      // The store keeps working in the same session.
      expect(text(db.get(keyOf(7)))).toBe(model.get(7));
      await db.close();
      // The caller's key array is copied, never wiped or altered by the store.
      if (callerCopy !== undefined && 'key' in to) expect(Buffer.from(to.key as Uint8Array).equals(Buffer.from(callerCopy))).toBe(true);
      expect(dataAndTagHashes(dir)).toEqual(before);
      retired.push(from);
      for (const old of retired) await expectOpenFails(dir, optionsOf(old), ['ARMDB_WRONG_KEY']);
      await expectOpensWithContents(dir, optionsOf(to), model, 800);
      expect(dataAndTagHashes(dir)).toEqual(before);
    }
    // A wrong passphrase of the right kind is refused too.
    await expectOpenFails(dir, optionsOf(passphrase('PASSCANARY correct horsE')), ['ARMDB_WRONG_KEY']);
  });

  it('later KEYRING rewrites of the same session (rotateDataKey, shredding) use the new credential', async ({ tempDir }) => {
    const dir = tempDir();
    const oldKey = canaryKey('old');
    const newKey = canaryKey('new');
    const model = await buildStore(dir, { key: oldKey }, 600);
    const db = await VarMap.open(dir, optionsOf({ key: oldKey }));
    await db.changeKey(passphrase('PASSCANARY after change'));
    await db.changeKey({ key: newKey });
    await db.rotateDataKey();
    await writeValues(db, model, range(600, 700), 'AFTER');
    const report = await db.compact({ reencrypt: true });
    expect(report.shreddedKeyIds).toEqual([1]);
    await db.close();
    await expectOpenFails(dir, optionsOf({ key: oldKey }), ['ARMDB_WRONG_KEY']);
    await expectOpenFails(dir, optionsOf(passphrase('PASSCANARY after change')), ['ARMDB_WRONG_KEY']);
    await expectOpensWithContents(dir, optionsOf({ key: newKey }), model, 700);
  });

  it('changeKey called while rotateDataKey or a re-encrypting compaction is in flight: the KEYRING is never sealed under a wiped credential', async ({
    tempDir,
  }) => {
    // Key operations used to interleave: a rotation's or shredding's KEYRING write, queued behind
    // changeKey's, was sealed with the credential changeKey had just zeroed, so only an all-zero key
    // opened the store. They now run one after another, in call order.
    for (const [index, second] of (['rotateDataKey', 'compact'] as const).entries()) {
      const dir = tempDir();
      const oldKey = canaryKey(`old${index}`);
      const newKey = canaryKey(`new${index}`);
      const model = await buildStore(dir, { key: oldKey }, 300);
      const db = await VarMap.open(dir, optionsOf({ key: oldKey }));
      if (second === 'compact') await db.rotateDataKey();
      const results = await Promise.allSettled([
        db.changeKey({ key: newKey }),
        second === 'rotateDataKey' ? db.rotateDataKey() : db.compact({ reencrypt: true }),
      ]);
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
      await db.close();
      await expectOpenFails(dir, optionsOf({ key: new Uint8Array(32) }), ['ARMDB_WRONG_KEY']);
      await expectOpenFails(dir, optionsOf({ key: oldKey }), ['ARMDB_WRONG_KEY']);
      await expectOpensWithContents(dir, optionsOf({ key: newKey }), model, 300);
    }
  });

  it('close() called while changeKey or rotateDataKey is under way waits for it: the KEYRING is never sealed over zeroed keys', async ({
    tempDir,
  }) => {
    // close() used to zero the keys and release the lock while the operation's scrypt still ran; the
    // KEYRING it then wrote wrapped zeroed data keys, and the store could no longer be read.
    const oldPass = { passphrase: 'PASSCANARY close race old', scryptLogN: 10 } as const;
    // The new passphrase's scrypt (2^17, the default) outlasts close()'s barrier by far.
    const newPass = { passphrase: 'PASSCANARY close race new', scryptLogN: 17 } as const;
    for (const operation of ['changeKey', 'rotateDataKey'] as const) {
      const dir = tempDir();
      const model = await buildStore(dir, oldPass, 200);
      const db = await VarMap.open(dir, optionsOf(oldPass));
      const running = operation === 'changeKey' ? db.changeKey(newPass) : db.rotateDataKey();
      // One turn of the event loop: the operation has started (its scrypt runs in the thread pool).
      await new Promise(setImmediate);
      const closed = db.close();
      const results = await Promise.allSettled([running, closed]);
      expect(results[1]!.status).toBe('fulfilled');
      expect(results[0]!.status).toBe('fulfilled');
      const opened = operation === 'changeKey' ? newPass : oldPass;
      if (operation === 'changeKey') await expectOpenFails(dir, optionsOf(oldPass), ['ARMDB_WRONG_KEY']);
      await expectOpensWithContents(dir, optionsOf(opened), model, 200);
    }
  });

  it('rotateDataKey while a compaction is shredding: the new key is neither lost nor shredded', async ({ tempDir }) => {
    // Shredding used to drop a key that rotateDataKey had added but not yet made active (its KEYRING
    // write in flight): the rotation then failed and the store no longer opened. A passphrase whose
    // scrypt takes far longer than compacting 400 records keeps the rotation's KEYRING write in flight
    // while the compaction finishes; with key operations serialized the outcome does not depend on it.
    for (const encryption of [{ key: canaryKey('rot') }, { passphrase: 'PASSCANARY rotate race', scryptLogN: 15 }] as const) {
      const dir = tempDir();
      const model = await buildStore(dir, encryption, 400);
      const db = await VarMap.open(dir, optionsOf(encryption));
      for (let index = 0; index < 400; index += 2) {
        db.delete(keyOf(index));
        model.delete(index);
      }
      await db.sync();
      const results = await Promise.allSettled([db.compact(), db.rotateDataKey()]);
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
      await writeValues(db, model, range(400, 450), 'AFTER');
      const activeKeyId = Math.max(...Object.keys(db.stats().filesPerKeyId).map(Number));
      await db.close();
      const reopened = await VarMap.open(dir, optionsOf(encryption));
      expect(Math.max(...Object.keys(reopened.stats().filesPerKeyId).map(Number))).toBe(activeKeyId);
      expectContents(reopened, model, 450);
      await reopened.close();
    }
  });

  describe('interrupted at every file operation', () => {
    const nextCredentials: { name: string; make: () => Credential }[] = [
      { name: 'raw key → raw key', make: () => ({ key: canaryKey('next') }) },
      { name: 'raw key → passphrase', make: () => passphrase('PASSCANARY crash test') },
    ];
    for (const { name, make } of nextCredentials) {
      for (const torn of [false, true]) {
        it(`${name}${torn ? ' (torn writes)' : ''}: exactly one of old and new credential opens the store, with all data`, async ({
          tempDir,
        }) => {
          const root = tempDir();
          const base = path.join(root, 'base');
          const oldKey = canaryKey('old');
          const next = make();
          const model = await buildStore(base, { key: oldKey }, 300, 'CANARY', { hints: false });
          const outcomes: string[] = [];
          let exhaustedAt: number | undefined;
          for (let n = 1; n <= 50 && exhaustedAt === undefined; n++) {
            const dir = copyDirectory(base, path.join(root, `crash-${n}`));
            const faults = new FaultFileSystem();
            const db = await VarMap.open(dir, withEngineHooks({ ...optionsOf({ key: oldKey }, { hints: false }) }, { fileSystem: faults }));
            const caseModel: Model = new Map(model);
            await writeValues(db, caseModel, range(300, 340), `SESSION${n}`);
            await db.sync();
            const mark = faults.total;
            faults.crashAt(n, { torn });
            let failed = false;
            try {
              await db.changeKey(next);
            } catch {
              failed = true;
            }
            const end = faults.total;
            faults.disarm();
            await db.close().catch(() => undefined);
            if (!failed) {
              // n is past the last operation of changeKey: every operation of it was a crash point.
              expect(faults.crashed).toBe(false);
              const operations = faults.since(mark).filter((entry) => entry.index <= end);
              expect(operations.map((entry) => entry.kind)).toContain('rename');
              expect(operations.every((entry) => /KEYRING|MANIFEST/.test(entry.path) || entry.kind === 'syncDirectory')).toBe(true);
              // The meta key rotates: a MANIFEST signed under the old and the new key is durable before
              // the KEYRING changes (docs/format.md §7.4), so every crash point leaves a store that opens.
              const renamed = operations
                .filter((entry) => entry.kind === 'rename')
                .map((entry) => path.basename(entry.path.split(' -> ')[1]!));
              expect(renamed).toEqual(['MANIFEST', 'KEYRING']);
              expect(n - 1).toBe(operations.length);
              exhaustedAt = n;
            } else {
              expect(faults.crashed, `changeKey failed without the simulated crash at n=${n}`).toBe(true);
            }
            const withOld = copyDirectory(dir, path.join(root, `crash-${n}-old`));
            const withNew = copyDirectory(dir, path.join(root, `crash-${n}-new`));
            const old = await openWithCode(withOld, optionsOf({ key: oldKey }, { hints: false }));
            const fresh = await openWithCode(withNew, optionsOf(next, { hints: false }));
            const opened = [old, fresh].filter((result): result is VarMap => result instanceof VarMap);
            const refused = [old, fresh].filter((result) => !(result instanceof VarMap));
            outcomes.push(
              `n=${n} ${faults.crashPoint?.kind ?? 'no crash'}: old ${old instanceof VarMap ? 'opens' : old}, new ${fresh instanceof VarMap ? 'opens' : fresh}`,
            );
            try {
              expect(opened.length, outcomes.at(-1)).toBe(1);
              expect(refused).toEqual(['ARMDB_WRONG_KEY']);
              expectContents(opened[0]!, caseModel, 340);
            } finally {
              for (const store of opened) await store.close();
            }
            if (!failed) expect(fresh).toBeInstanceOf(VarMap);
          }
          expect(exhaustedAt, outcomes.join('\n')).toBeDefined();
          // writeFile, rename, syncDirectory of the MANIFEST, then of the KEYRING, at least.
          expect(exhaustedAt!).toBeGreaterThanOrEqual(7);
          // Both sides were seen: early crashes keep the old key, late ones the new.
          expect(outcomes.some((line) => line.includes('old opens'))).toBe(true);
          expect(outcomes.some((line) => line.includes('new opens'))).toBe(true);
        });
      }
    }
  });

  it('on an unencrypted store: rotateDataKey and changeKey → ARMDB_FORMAT_MISMATCH, nothing changes', async ({ tempDir }) => {
    const dir = tempDir();
    const model: Model = new Map();
    const db = await VarMap.open(dir, optionsOf('none'));
    try {
      await writeValues(db, model, range(0, 50), 'PLAIN');
      await db.sync();
      const error = await db.rotateDataKey().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ArmdbError);
      expect((error as ArmdbError).code).toBe('ARMDB_FORMAT_MISMATCH');
      const changeError = await db.changeKey({ key: canaryKey('x') }).catch((caught: unknown) => caught);
      expect(changeError).toBeInstanceOf(ArmdbError);
      expect((changeError as ArmdbError).code).toBe('ARMDB_FORMAT_MISMATCH');
      // Not poisoned: writes go on.
      await writeValues(db, model, range(50, 60), 'PLAIN');
      await db.sync();
      expect(fs.existsSync(path.join(dir, 'KEYRING'))).toBe(false);
    } finally {
      await db.close();
    }
    await expectOpensWithContents(dir, optionsOf('none'), model, 60);
  });
});

// ---- rotateDataKey and crypto-shredding -------------------------------------------------------

describe('rotateDataKey, re-encrypting compaction and crypto-shredding', () => {
  it('moves every file to the new key, shreds the old one, and copies of old files stay unreadable', async ({ tempDir }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    const key = canaryKey('rotation');
    const count = 900;
    const model = await buildStore(dir, { key }, count, 'OLDCANARY');
    // A full copy before rotation (what a backup or a stolen disk image would hold).
    const preRotation = copyDirectory(dir, path.join(root, 'pre-rotation'));
    expect(keyringKeyIds(path.join(preRotation, 'KEYRING'))).toEqual([1]);

    const db = await VarMap.open(dir, optionsOf({ key }));
    try {
      const statsBefore = db.stats();
      expect(Object.keys(statsBefore.filesPerKeyId)).toEqual(['1']);
      await db.rotateDataKey();
      // Every shard moved to a new active file under key 2; older files keep key 1 for now.
      const rotated = db.stats().filesPerKeyId;
      expect(rotated[2]).toBe(2);
      expect(rotated[1]).toBe(statsBefore.filesPerKeyId[1]);
      // Overwrite a third of the keys, delete a third: old files now hold stale and deleted values.
      for (let index = 0; index < count; index++) {
        if (index % 3 === 0) await writeValues(db, model, [index], 'NEWVALUE');
        else if (index % 3 === 1) {
          expect(db.delete(keyOf(index))).toBe(true);
          model.delete(index);
        }
      }
      await writeValues(db, model, range(count, count + 300), 'NEWVALUE');
      await db.sync();
      const beforeCompaction = db.stats().filesPerKeyId;
      expect(beforeCompaction[2]!).toBeGreaterThan(2); // new data rotated into more files under key 2
      expect(beforeCompaction[1]!).toBeGreaterThan(0);
      const report = await db.compact({ reencrypt: true });
      expect(report.shreddedKeyIds).toEqual([1]);
      expect(Object.keys(db.stats().filesPerKeyId)).toEqual(['2']);
      expectContents(db, model, count + 300);
    } finally {
      await db.close();
    }
    expect(keyringKeyIds(path.join(dir, 'KEYRING'))).toEqual([2]);
    // No file of the old generation is left in the store.
    const preIds = new Set([0, 1].flatMap((shard) => dataFilesOf(preRotation, shard)));
    for (const shard of [0, 1]) for (const id of dataFilesOf(dir, shard)) expect(preIds.has(id)).toBe(false);
    await expectOpensWithContents(dir, optionsOf({ key }), model, count + 300);

    // Crypto-shred proof: the old files with today's KEYRING (and MANIFEST) cannot be read.
    const oldCanaries = new Set(range(0, count).map((index) => decoder.decode(valueFor(index, 'OLDCANARY'))));
    const expectNoOldCanary = (store: VarMap): void => {
      for (let index = 0; index < count; index++) {
        let value: string | undefined;
        try {
          value = text(store.get(keyOf(index)));
        } catch {
          continue;
        }
        expect(value !== undefined && oldCanaries.has(value) && index % 3 === 1, `deleted key ${index} served its old value`).toBe(false);
        expect(value !== undefined && oldCanaries.has(value) && index % 3 === 0, `overwritten key ${index} served its old value`).toBe(
          false,
        );
      }
    };
    for (const [name, replaced] of [
      ['KEYRING and MANIFEST', ['KEYRING', 'MANIFEST']],
      ['KEYRING only', ['KEYRING']],
    ] as const) {
      const attack = copyDirectory(preRotation, path.join(root, `attack-${name.replace(/ /g, '-')}`));
      for (const file of replaced) fs.copyFileSync(path.join(dir, file), path.join(attack, file));
      const result = await openWithCode(attack, optionsOf({ key }));
      if (result instanceof VarMap) {
        try {
          expectNoOldCanary(result);
          // Not one old value may come back: the old data key is gone.
          for (let index = 0; index < count; index++) {
            let value: string | undefined;
            try {
              value = text(result.get(keyOf(index)));
            } catch {
              continue;
            }
            expect(value === undefined || !oldCanaries.has(value), `${name}: key ${index} served a pre-rotation value`).toBe(true);
          }
        } finally {
          await result.close();
        }
      } else {
        expect(result, name).toMatch(/^ARMDB_/);
      }
    }

    // An old data + tag pair put back into the current store under its old name is refused or
    // ignored, never served.
    for (const withHint of [false, true]) {
      const shard = 0;
      const oldId = dataFilesOf(preRotation, shard)[0]!;
      const victim = copyDirectory(dir, path.join(root, `put-back-${withHint ? 'hint' : 'pair'}`));
      const shardDirectory = (base: string): string => path.join(base, `shard-${String(shard).padStart(3, '0')}`);
      const extensions = withHint ? ['data', 'tags', 'hint'] : ['data', 'tags'];
      for (const extension of extensions) {
        const source = path.join(shardDirectory(preRotation), fileName(oldId, extension));
        expect(fs.existsSync(source), source).toBe(true);
        fs.copyFileSync(source, path.join(shardDirectory(victim), fileName(oldId, extension)));
      }
      const result = await openWithCode(victim, optionsOf({ key }));
      if (result instanceof VarMap) {
        try {
          expectContents(result, model, count + 300);
          expectNoOldCanary(result);
          expect((await result.verify()).ok).toBe(true);
        } finally {
          await result.close();
        }
      } else {
        expect(['ARMDB_INTEGRITY', 'ARMDB_ROLLBACK']).toContain(result);
      }
    }
  });
});

// ---- rollback anchor --------------------------------------------------------------------------

describe('rollback anchor', () => {
  it('an older full copy opens without expectedMinEpoch (documented limit) and is refused with ARMDB_ROLLBACK with it; armdb:sync carries the epoch', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    const key = canaryKey('epoch');
    const resolved = path.resolve(dir);
    const events: { directory: string; epoch: number }[] = [];
    const listener = (message: unknown): void => {
      const event = message as { directory: string; epoch: number };
      if (event.directory === resolved) events.push({ directory: event.directory, epoch: event.epoch });
    };
    subscribe('armdb:sync', listener);
    const model: Model = new Map();
    let olderModel: Model;
    let olderEpoch: number;
    let newerEpoch: number;
    const older = path.join(root, 'older-copy');
    try {
      const db = await VarMap.open(dir, optionsOf({ key }));
      try {
        await writeValues(db, model, range(0, 200), 'FIRST');
        await db.sync();
        olderEpoch = db.stats().epoch;
        expect(events.at(-1)?.epoch).toBe(olderEpoch);
        olderModel = new Map(model);
        // A backup taken now (while open, after the barrier: a consistent copy at olderEpoch).
        copyDirectory(dir, older);
        const seen = [olderEpoch];
        for (let round = 0; round < 3; round++) {
          await writeValues(db, model, range(200 + round * 50, 250 + round * 50), `ROUND${round}`);
          await db.sync();
          const epoch = db.stats().epoch;
          expect(events.at(-1)?.epoch, 'the sync event carries the epoch after the barrier').toBe(epoch);
          expect(epoch).toBeGreaterThan(seen.at(-1)!);
          seen.push(epoch);
        }
        newerEpoch = db.stats().epoch;
        expect(newerEpoch).toBeGreaterThanOrEqual(olderEpoch + 3);
      } finally {
        await db.close();
      }
    } finally {
      unsubscribe('armdb:sync', listener);
    }
    // Epochs on the channel only grow.
    for (let index = 1; index < events.length; index++) expect(events[index]!.epoch).toBeGreaterThan(events[index - 1]!.epoch);
    // The current store honours the anchor.
    await expectOpensWithContents(dir, optionsOf({ key }, { expectedMinEpoch: newerEpoch }), model, 350);

    const restore = (): void => {
      fs.rmSync(dir, { recursive: true, force: true });
      copyDirectory(older, dir);
    };
    restore();
    // Without an anchor the rolled-back directory opens with the older contents (SPEC §5.5: the files alone cannot show it).
    await expectOpensWithContents(dir, optionsOf({ key }), olderModel, 350);
    restore();
    const error = await expectOpenFails(dir, optionsOf({ key }, { expectedMinEpoch: newerEpoch }), ['ARMDB_ROLLBACK']);
    expect(error.message).toContain(String(newerEpoch));
    // The anchor equal to the copy's own epoch is accepted.
    restore();
    await expectOpensWithContents(dir, optionsOf({ key }, { expectedMinEpoch: olderEpoch }), olderModel, 350);
  });
});

// ---- secret hygiene ---------------------------------------------------------------------------

interface Secret {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** Every form in which a secret could show up in text. */
function needlesOf(secret: Secret): { form: string; needle: string }[] {
  const buffer = Buffer.from(secret.bytes);
  const piece = buffer.subarray(0, Math.min(12, buffer.length));
  const spacedHex = (value: Buffer): string => [...value].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
  return [
    { form: 'plain', needle: buffer.toString('latin1') },
    { form: 'plain piece', needle: piece.toString('latin1') },
    { form: 'hex', needle: buffer.toString('hex') },
    { form: 'hex piece', needle: piece.toString('hex') },
    { form: 'HEX piece', needle: piece.toString('hex').toUpperCase() },
    { form: 'spaced hex piece', needle: spacedHex(piece) },
    { form: 'base64', needle: buffer.toString('base64').replace(/=+$/, '') },
    { form: 'base64 piece', needle: piece.toString('base64').replace(/=+$/, '') },
    { form: 'base64url', needle: buffer.toString('base64url') },
    { form: 'decimal list', needle: [...piece].join(', ') },
    { form: 'decimal list (json)', needle: [...piece].join(',') },
  ];
}

/** Every way an application might print an object. */
function renderings(value: unknown): { how: string; text: string }[] {
  const attempt = (how: string, render: () => string | undefined): { how: string; text: string } => {
    try {
      return { how, text: render() ?? '' };
    } catch (error) {
      return { how, text: `threw ${String(error)}` };
    }
  };
  const result = [
    attempt('inspect', () => inspect(value)),
    attempt('inspect showHidden depth 10', () => inspect(value, { showHidden: true, depth: 10 })),
    attempt('JSON.stringify', () => JSON.stringify(value)),
    attempt('String', () => String(value)),
    attempt('template literal', () => `${value as string}`),
  ];
  if (value instanceof Error) {
    result.push(
      attempt('stack', () => value.stack),
      attempt('message', () => value.message),
    );
    if (value.cause !== undefined) result.push(attempt('cause', () => inspect(value.cause, { showHidden: true, depth: 10 })));
  }
  return result;
}

function leaksIn(objects: Record<string, unknown>, secrets: readonly Secret[]): string[] {
  const leaks: string[] = [];
  for (const [objectName, value] of Object.entries(objects)) {
    for (const { how, text: raw } of renderings(value)) {
      // inspect() lays long arrays out in aligned columns: compare with the whitespace collapsed too.
      const collapsed = raw.replace(/\s+/g, ' ');
      for (const secret of secrets) {
        for (const { form, needle } of needlesOf(secret)) {
          if (raw.includes(needle) || collapsed.includes(needle)) leaks.push(`${objectName} via ${how}: ${secret.name} (${form})`);
        }
      }
    }
  }
  return leaks;
}

describe('secret hygiene', () => {
  it('no key bytes, passphrase, record key or value in any rendering of any public object', async ({ tempDir }) => {
    const root = tempDir();
    const rawKey = canaryKey('hygiene');
    const phrase = `PASSCANARY-${randomBytes(6).toString('hex')}`;
    const recordKey = keys.fromString(`RKCANARY${randomBytes(4).toString('hex')}`, KEY_SIZE);
    const otherRecordKey = keys.fromString(`RKCANARY2${randomBytes(3).toString('hex')}`, KEY_SIZE);
    const value = bytes(`VALCANARY-${randomBytes(11).toString('hex')}`); // 32 bytes
    expect(value.length).toBe(32);
    const typedValue = { secret: decoder.decode(value) };
    const secrets: Secret[] = [
      { name: 'raw key', bytes: rawKey },
      { name: 'passphrase', bytes: bytes(phrase) },
      { name: 'record key', bytes: recordKey },
      { name: 'other record key', bytes: otherRecordKey },
      { name: 'value', bytes: value },
    ];
    const objects: Record<string, unknown> = {};
    const common = { keySize: KEY_SIZE, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false, cacheBytes: 0 } as const;
    const json = codecs.json as Codec<{ secret: string }>;
    const stores = [
      { name: 'VarMap', open: (dir: string) => VarMap.open(dir, { ...common, encryption: { key: rawKey } }), value: value as unknown },
      {
        name: 'VarMap (passphrase)',
        open: (dir: string) => VarMap.open(dir, { ...common, encryption: { passphrase: phrase, scryptLogN: 10 } }),
        value: value as unknown,
      },
      { name: 'VarTree', open: (dir: string) => VarTree.open(dir, { ...common, encryption: { key: rawKey } }), value: value as unknown },
      {
        name: 'ConstMap',
        open: (dir: string) => ConstMap.open(dir, { ...common, valueSize: 32, encryption: { key: rawKey } }),
        value: value as unknown,
      },
      {
        name: 'ConstTree',
        open: (dir: string) => ConstTree.open(dir, { ...common, valueSize: 32, encryption: { key: rawKey } }),
        value: value as unknown,
      },
      {
        name: 'TypedMap',
        open: (dir: string) => TypedMap.open(dir, { ...common, codec: json, encryption: { key: rawKey } }),
        value: typedValue as unknown,
      },
      {
        name: 'TypedTree',
        open: (dir: string) => TypedTree.open(dir, { ...common, codec: json, encryption: { key: rawKey } }),
        value: typedValue as unknown,
      },
    ];
    for (const store of stores) {
      const dir = path.join(root, store.name.replace(/\W+/g, '-'));
      // The typing of the generic collections differs; the calls below are the same on every class.
      const db = (await store.open(dir)) as unknown as VarTree;
      const put = (k: Uint8Array): void => (db as unknown as { put(k: Uint8Array, v: unknown): void }).put(k, store.value);
      try {
        put(recordKey);
        put(otherRecordKey);
        db.get(recordKey);
        objects[`${store.name}`] = db;
        objects[`${store.name} stats()`] = db.stats();
        db.atomic(recordKey, (tx) => {
          tx.get(recordKey);
          (tx as unknown as { put(k: Uint8Array, v: unknown): void }).put(recordKey, store.value);
          objects[`${store.name} Transaction (inside atomic)`] = tx;
          for (const { how, text: rendered } of renderings(tx))
            objects[`${store.name} Transaction rendered inside atomic via ${how}`] = rendered;
        });
        if (typeof (db as { range?: unknown }).range === 'function') {
          const iterator = db.range();
          const first = iterator.next();
          expect(first.done).toBe(false);
          objects[`${store.name} range() iterator (after next)`] = iterator;
          iterator.return();
          objects[`${store.name} range() iterator (after return)`] = iterator;
        }
        const insertError = (() => {
          try {
            (db as unknown as { insert(k: Uint8Array, v: unknown): void }).insert(recordKey, store.value);
          } catch (error) {
            return error;
          }
          return undefined;
        })();
        expect(insertError).toBeInstanceOf(ArmdbError);
        objects[`${store.name} ARMDB_KEY_EXISTS error`] = insertError;
        objects[`${store.name} CompactionReport`] = await db.compact();
        objects[`${store.name} VerifyReport`] = await db.verify();
        objects[`${store.name} stats() after compaction`] = db.stats();
      } finally {
        await db.close();
      }
      objects[`${store.name} (closed)`] = db;
    }

    // A wrong key and a wrong passphrase.
    const varMapDir = path.join(root, 'VarMap');
    const wrongKey = await VarMap.open(varMapDir, { ...common, encryption: { key: canaryKey('wrong') } }).catch((error: unknown) => error);
    expect((wrongKey as ArmdbError).code).toBe('ARMDB_WRONG_KEY');
    objects['wrong key error'] = wrongKey;
    const wrongPhrase = await VarMap.open(path.join(root, 'VarMap-passphrase-'), {
      ...common,
      encryption: { passphrase: `${phrase}x`, scryptLogN: 10 },
    }).catch((error: unknown) => error);
    expect((wrongPhrase as ArmdbError).code).toBe('ARMDB_WRONG_KEY');
    objects['wrong passphrase error'] = wrongPhrase;
    const kindMismatch = await VarMap.open(varMapDir, { ...common, encryption: { passphrase: phrase, scryptLogN: 10 } }).catch(
      (error: unknown) => error,
    );
    expect((kindMismatch as ArmdbError).code).toBe('ARMDB_WRONG_KEY');
    objects['credential kind mismatch error'] = kindMismatch;

    // An integrity failure: live (get and verify of a damaged page) and at open.
    const damaged = path.join(root, 'damaged');
    {
      const db = await VarMap.open(damaged, { ...common, encryption: { key: rawKey } });
      db.put(recordKey, value);
      for (let index = 0; index < 300; index++) db.put(keyOf(index), valueFor(index, 'FILLER'));
      await db.close();
    }
    const shardWithData = [0, 1].find((shard) => dataFilesOf(damaged, shard).length > 0)!;
    const dataFile = path.join(
      damaged,
      `shard-${String(shardWithData).padStart(3, '0')}`,
      fileName(dataFilesOf(damaged, shardWithData)[0]!, 'data'),
    );
    {
      const db = await VarMap.open(damaged, { ...common, encryption: { key: rawKey } });
      try {
        const page = fs.readFileSync(dataFile);
        page[100] = page[100]! ^ 0x10;
        fs.writeFileSync(dataFile, page);
        let integrity: unknown;
        for (let index = 0; index < 300 && integrity === undefined; index++) {
          try {
            db.get(keyOf(index));
          } catch (error) {
            integrity = error;
          }
        }
        try {
          db.get(recordKey);
        } catch (error) {
          integrity ??= error;
        }
        expect((integrity as ArmdbError).code).toBe('ARMDB_INTEGRITY');
        objects['integrity error (get)'] = integrity;
        const report = await db.verify();
        expect(report.ok).toBe(false);
        objects['VerifyReport with failures'] = report;
      } finally {
        await db.close();
      }
    }
    // At open: a damaged MANIFEST.
    const manifestPath = path.join(damaged, 'MANIFEST');
    const manifest = fs.readFileSync(manifestPath);
    manifest[70] = manifest[70]! ^ 0x04;
    fs.writeFileSync(manifestPath, manifest);
    const atOpen = await VarMap.open(damaged, { ...common, encryption: { key: rawKey } }).catch((error: unknown) => error);
    expect((atOpen as ArmdbError).code).toBe('ARMDB_INTEGRITY');
    objects['integrity error (open)'] = atOpen;

    // The controls: the scan finds the secrets where they are meant to be.
    const control = leaksIn(
      {
        'raw key itself': rawKey,
        'raw key as Buffer': Buffer.from(rawKey),
        'value itself': Buffer.from(value),
        'record key itself': recordKey,
        'phrase itself': phrase,
      },
      secrets,
    );
    expect(control.some((line) => line.includes('raw key (spaced hex piece)'))).toBe(true);
    expect(control.some((line) => line.includes('raw key (decimal list)'))).toBe(true);
    expect(control.some((line) => line.includes('value (plain)'))).toBe(true);
    expect(control.some((line) => line.includes('passphrase (plain)'))).toBe(true);

    expect(Object.keys(objects).length).toBeGreaterThan(50);
    expect(leaksIn(objects, secrets)).toEqual([]);
  });

  // SPEC §5.4 "Errors … never show … values": when `codecs.json` cannot decode a stored value,
  // TypedMap.open throws ARMDB_FORMAT_MISMATCH, and nothing reachable from that error shows the value.
  // V8 quotes JSON.parse input in its SyntaxError (whole when short: `Unexpected token 'V',
  // "VALCANARY-1a2b" is not valid JSON`), so such a codec error must not travel on as the `cause`.
  it('a codec that cannot decode a stored value: the error does not show the value', async ({ tempDir }) => {
    const dir = tempDir();
    const rawKey = canaryKey('codec');
    // Short, like a PIN or a token: V8 quotes short JSON input whole in its SyntaxError.
    const value = bytes(`VALCANARY-${randomBytes(2).toString('hex')}`);
    const identity: Codec<Uint8Array> = { encode: (input) => input, decode: (input) => input };
    const common = { keySize: KEY_SIZE, shards: 1, syncIntervalMs: 0, encryption: { key: rawKey } } as const;
    const writer = await TypedMap.open(dir, { ...common, codec: identity });
    writer.put(keyOf(1), value);
    await writer.close();
    const error = await TypedMap.open(dir, { ...common, codec: codecs.json as Codec<unknown> }).catch((caught: unknown) => caught);
    expect((error as ArmdbError).code).toBe('ARMDB_FORMAT_MISMATCH');
    expect(leaksIn({ 'codec decode error': error }, [{ name: 'value', bytes: value }])).toEqual([]);
  });

  it.skipIf(process.platform === 'win32')(
    'a KEYRING readable by others (0644) is refused with ARMDB_INTEGRITY naming the fix (chmod 600)',
    async ({ tempDir }) => {
      const dir = tempDir();
      const key = canaryKey('mode');
      const model = await buildStore(dir, { key }, 20);
      const keyring = path.join(dir, 'KEYRING');
      expect(fs.statSync(keyring).mode & 0o777).toBe(0o600);
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        fs.chmodSync(keyring, mode);
        const error = await expectOpenFails(dir, optionsOf({ key }), ['ARMDB_INTEGRITY']);
        expect(error.message).toContain('chmod 600');
        expect(fs.statSync(keyring).mode & 0o777, 'the product does not silently change the mode').toBe(mode);
      }
      fs.chmodSync(keyring, 0o600);
      await expectOpensWithContents(dir, optionsOf({ key }), model, 20);
    },
  );

  it.skipIf(process.platform === 'win32')(
    'under umask 0: files 0600 and directories 0700 after rotation, re-encrypting compaction and hint writing',
    async ({ tempDir }) => {
      const root = tempDir();
      const dir = path.join(root, 'parent', 'store');
      const key = canaryKey('umask');
      const wrong = (base: string): string[] => {
        const { files, directories } = walk(base);
        return [
          ...files
            .filter((file) => (fs.statSync(file).mode & 0o777) !== 0o600)
            .map((file) => `${path.relative(base, file)} ${(fs.statSync(file).mode & 0o777).toString(8)}`),
          ...directories
            .filter((entry) => (fs.statSync(entry).mode & 0o777) !== 0o700)
            .map((entry) => `${path.relative(base, entry) || '.'}/ ${(fs.statSync(entry).mode & 0o777).toString(8)}`),
        ];
      };
      const previous = process.umask(0o000);
      let whileOpen: string[] = [];
      let names: string[] = [];
      try {
        const model: Model = new Map();
        const db = await VarMap.open(dir, optionsOf({ key }));
        try {
          await writeValues(db, model, range(0, 600), 'UMASK');
          await db.sync();
          await db.rotateDataKey();
          await writeValues(db, model, range(0, 300), 'UMASK2');
          const report = await db.compact({ reencrypt: true });
          expect(report.filesOut).toBeGreaterThan(0);
          expect(report.shreddedKeyIds).toEqual([1]);
          await db.changeKey(passphrase('PASSCANARY umask'));
          whileOpen = wrong(dir);
        } finally {
          await db.close();
        }
        names = walk(dir).files.map((file) => path.basename(file));
      } finally {
        process.umask(previous);
      }
      expect(process.umask()).toBe(previous);
      expect(names.some((name) => name.endsWith('.hint'))).toBe(true);
      expect(names).toContain('KEYRING');
      expect(names).toContain('MANIFEST');
      expect(whileOpen).toEqual([]);
      expect(wrong(dir)).toEqual([]);
      expect(fs.statSync(path.dirname(dir)).mode & 0o777).toBe(0o700);
    },
  );
});

// ---- downgrade attempts -----------------------------------------------------------------------

describe('downgrade attempts', () => {
  /** A MANIFEST rewritten to claim algorithm 0, with a valid MAC under the zero key of N1 (docs/format.md). */
  function forgedUnencryptedManifest(dir: string): Buffer {
    const manifest = Buffer.from(fs.readFileSync(path.join(dir, 'MANIFEST')));
    expect(manifest[10]).toBe(1);
    manifest[10] = 0;
    const body = manifest.subarray(0, manifest.length - 32);
    createHmac('sha256', Buffer.alloc(32))
      .update(body)
      .digest()
      .copy(manifest, manifest.length - 32);
    return manifest;
  }

  it('a MANIFEST that claims no encryption with a valid (zero-key) MAC beside a KEYRING → ARMDB_INTEGRITY, with the key and with encryption none', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = canaryKey('downgrade');
    const model = await buildStore(dir, { key }, 100);
    const original = fs.readFileSync(path.join(dir, 'MANIFEST'));
    fs.writeFileSync(path.join(dir, 'MANIFEST'), forgedUnencryptedManifest(dir));
    await expectOpenFails(dir, optionsOf({ key }), ['ARMDB_INTEGRITY']);
    await expectOpenFails(dir, optionsOf('none'), ['ARMDB_INTEGRITY']);
    fs.writeFileSync(path.join(dir, 'MANIFEST'), original);
    await expectOpensWithContents(dir, optionsOf({ key }), model, 100);
  });

  it('the same forged MANIFEST with the KEYRING removed, opened with encryption none → refused, never serves ciphertext as values', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = canaryKey('downgrade2');
    await buildStore(dir, { key }, 100);
    fs.writeFileSync(path.join(dir, 'MANIFEST'), forgedUnencryptedManifest(dir));
    fs.rmSync(path.join(dir, 'KEYRING'));
    const result = await openWithCode(dir, optionsOf('none'));
    if (result instanceof VarMap) {
      try {
        const served: number[] = [];
        for (let index = 0; index < 100; index++) {
          try {
            if (result.get(keyOf(index)) !== undefined) served.push(index);
          } catch (error) {
            expect(error).toBeInstanceOf(ArmdbError);
          }
        }
        expect(served, 'values served from an encrypted store opened as unencrypted').toEqual([]);
      } finally {
        await result.close();
      }
      throw new Error('open succeeded on a store whose files are encrypted');
    }
    expect(result).toBe('ARMDB_INTEGRITY');
  });

  it('a KEYRING whose slot kind byte names an unknown kind (CRC recomputed) → ARMDB_INTEGRITY', async ({ tempDir }) => {
    const dir = tempDir();
    const key = canaryKey('kekkind');
    const model = await buildStore(dir, { key }, 30);
    const keyringPath = path.join(dir, 'KEYRING');
    const original = fs.readFileSync(keyringPath);
    // The one slot of a one-key version-2 KEYRING starts at 172 (docs/format.md §8.1).
    const slot = 172;
    expect(original[slot]).toBe(1);
    for (const kind of [0, 4, 0x7f, 0xff]) {
      const doctored = Buffer.from(original);
      doctored[slot] = kind;
      fs.writeFileSync(keyringPath, withKeyringCrc(doctored), { mode: 0o600 });
      await expectOpenFails(dir, optionsOf({ key }), ['ARMDB_INTEGRITY']);
      await expectOpenFails(dir, optionsOf(passphrase('PASSCANARY kind')), ['ARMDB_INTEGRITY']);
    }
    // A raw-key slot that claims scrypt parameters (kind 1 requires zeros, §8.6).
    const withParameters = Buffer.from(original);
    withParameters[slot + 6] = 10;
    withParameters[slot + 7] = 8;
    withParameters[slot + 8] = 1;
    fs.writeFileSync(keyringPath, withKeyringCrc(withParameters), { mode: 0o600 });
    await expectOpenFails(dir, optionsOf({ key }), ['ARMDB_INTEGRITY']);
    fs.writeFileSync(keyringPath, original, { mode: 0o600 });
    await expectOpensWithContents(dir, optionsOf({ key }), model, 30);
  });

  it("an encrypted store opened with encryption: 'none' → ARMDB_FORMAT_MISMATCH, and the store is unharmed", async ({ tempDir }) => {
    const dir = tempDir();
    const key = canaryKey('none');
    const model = await buildStore(dir, { key }, 30);
    const before = fs.readFileSync(path.join(dir, 'MANIFEST'));
    await expectOpenFails(dir, optionsOf('none'), ['ARMDB_FORMAT_MISMATCH']);
    expect(fs.readFileSync(path.join(dir, 'MANIFEST')).equals(before)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'KEYRING'))).toBe(true);
    await expectOpensWithContents(dir, optionsOf({ key }), model, 30);
  });

  it('scrypt parameters raised past the bounds in a passphrase KEYRING (CRC recomputed) → ARMDB_INTEGRITY before scrypt runs', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const phrase = passphrase('PASSCANARY scrypt bounds');
    const model = await buildStore(dir, phrase, 30);
    const keyringPath = path.join(dir, 'KEYRING');
    const original = fs.readFileSync(keyringPath);
    // Version 2: the one slot follows the header (40), meta key (60) and one data-key entry (72).
    const slot = 172;
    expect(original.readUInt16LE(8)).toBe(2);
    expect(original[slot]).toBe(2);
    expect([original[slot + 6], original[slot + 7], original[slot + 8]]).toEqual([10, 8, 1]);
    const doctorings: { name: string; logN: number; r: number; p: number }[] = [
      { name: 'logN 30', logN: 30, r: 8, p: 1 },
      { name: 'logN 21', logN: 21, r: 8, p: 1 },
      { name: 'logN 255', logN: 255, r: 8, p: 1 },
      { name: 'logN 9 (below the minimum)', logN: 9, r: 8, p: 1 },
      { name: 'r 255', logN: 10, r: 255, p: 1 },
      { name: 'p 255', logN: 10, r: 8, p: 255 },
      { name: 'r 0', logN: 10, r: 0, p: 1 },
      { name: 'p 0', logN: 10, r: 8, p: 0 },
      // Each within its own range, the product past the memory bound (128·r·N = 4 GiB).
      { name: 'logN 20, r 32', logN: 20, r: 32, p: 1 },
      // Past the work bound (N·r·p = 2^20·8·16).
      { name: 'logN 20, r 8, p 16', logN: 20, r: 8, p: 16 },
    ];
    const unexpected: string[] = [];
    for (const { name, logN, r, p } of doctorings) {
      const doctored = Buffer.from(original);
      doctored[slot + 6] = logN;
      doctored[slot + 7] = r;
      doctored[slot + 8] = p;
      fs.writeFileSync(keyringPath, withKeyringCrc(doctored), { mode: 0o600 });
      const result = await openWithCode(dir, optionsOf(phrase));
      if (result instanceof VarMap) {
        await result.close();
        unexpected.push(`${name}: opened`);
      } else if (result !== 'ARMDB_INTEGRITY') unexpected.push(`${name}: ${result}`);
    }
    expect(unexpected).toEqual([]);
    fs.writeFileSync(keyringPath, original, { mode: 0o600 });
    await expectOpensWithContents(dir, optionsOf(phrase), model, 30);
  });
});
