/**
 * AES-GCM nonce uniqueness (SPEC §5.1, docs/format.md §2.8): no (file encryption key, nonce) pair is
 * ever used for two seals. The test hook `setSealObserver` reports every seal of every file instance
 * (data pages, hint chunks, compaction output) with a fingerprint of the file encryption key and the
 * nonce; the log below fails on the first pair seen twice.
 *
 * - a model-based run (fast-check, seeded) of put / delete / flush / sync / file rotation (64 KiB files)
 *   / close+reopen / compact (with and without re-encryption) / rotateDataKey on a store with two
 *   shards, background compaction and hints on, checked against a Map;
 * - one run over stores that share key material: two databases under the same raw key, a copied
 *   directory opened as original and as copy (same database id, data keys and next file ids), and a
 *   store reopened after a simulated crash that left unlisted pages behind;
 * - a control: two FileCipher instances built with the same key, salt and identity do repeat a pair,
 *   and the log catches it.
 *
 * Reproduce a failure with the seed and path fast-check prints: ARMDB_FC_SEED=<seed> ARMDB_FC_PATH=<path>.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect } from 'vitest';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { FileCipher, setSealObserver } from '../../src/crypto/file-cipher.js';
import { setJournalSealObserver } from '../../src/crypto/journal-cipher.js';
import { nodeProvider } from '../../src/crypto/node-provider.js';
import { sealRingPagesSubmittedForTest, setSealRingMinimumPagesForTest } from '../../src/crypto/seal-ring.js';
import { Algorithm, FileKind, PAGE_BYTES } from '../../src/format/constants.js';
import { VarMap, keys, type CipherName, type OpenOptions } from '../../src/index.js';
import { FaultFileSystem } from '../crash/fault-fs.js';
import { patternBytes, storeTest as it } from '../helpers/store.js';

/** Every (file key fingerprint, nonce) pair sealed while installed; duplicates are recorded. */
class SealLog {
  readonly #seen = new Set<string>();
  readonly duplicates: string[] = [];
  readonly fingerprints = new Set<string>();
  /**
   * Seals per unit kind (the last 4 nonce bytes, docs/format.md §2.6, §6A.3): '01000000' data,
   * '02000000' hint, '03000000' commit journal chunk (its own key, logged under a 'journal:' prefix).
   */
  readonly kinds = new Map<string, number>();
  seals = 0;

  install(): this {
    setSealObserver(({ fileKeyFingerprint, nonceHex }) => {
      const pair = `${fileKeyFingerprint}/${nonceHex}`;
      this.seals++;
      this.fingerprints.add(fileKeyFingerprint);
      const kind = nonceHex.slice(16);
      this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
      if (this.#seen.has(pair)) this.duplicates.push(pair);
      else this.#seen.add(pair);
    });
    setJournalSealObserver(({ journalKeyFingerprint, nonceHex }) => {
      const pair = `journal:${journalKeyFingerprint}/${nonceHex}`;
      this.seals++;
      this.fingerprints.add(`journal:${journalKeyFingerprint}`);
      const kind = nonceHex.slice(16);
      this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
      if (this.#seen.has(pair)) this.duplicates.push(pair);
      else this.#seen.add(pair);
    });
    return this;
  }

  /** Distinct pairs seen. */
  get pairs(): number {
    return this.#seen.size;
  }
}

afterEach(() => {
  setSealRingMinimumPagesForTest(undefined);
  setSealObserver(undefined);
  setJournalSealObserver(undefined);
});

const KEY = new Uint8Array(createHash('sha256').update('armdb nonce test key').digest());
const KEY_COUNT = 48;
const KEY_SIZE = 8;
const keyOf = (index: number): Uint8Array => keys.u64(index);

function storeOptions(cipher: CipherName = 'node', extra: Partial<OpenOptions> = {}): OpenOptions {
  return {
    keySize: KEY_SIZE,
    encryption: { key: KEY },
    shards: 2,
    maxFileBytes: 65536,
    writeBufferBytes: 8192,
    cacheBytes: 1 << 20,
    syncIntervalMs: 0,
    autoCompact: true,
    compactionThreshold: 0.2,
    cipher,
    ...extra,
  };
}

// ---- the model-based run ----------------------------------------------------------------------

interface ValueSpec {
  readonly length: number;
  readonly seed: number;
}

type Model = Map<number, ValueSpec>;

interface Real {
  readonly dir: string;
  readonly options: OpenOptions;
  db: VarMap;
  readonly log: SealLog;
}

/** What the runs exercised, summed over all of them (so the assertions below mean something). */
const exercised = { commands: new Map<string, number>(), fileRotations: 0, dataKeyRotations: 0, compactions: 0 };

async function closeAndCount(db: VarMap): Promise<void> {
  const stats = db.stats();
  exercised.fileRotations += stats.rotations;
  exercised.compactions += stats.compactions;
  await db.close();
}

const bytesOf = (spec: ValueSpec): Uint8Array => patternBytes(spec.length, spec.seed);

function expectMatchesModel(db: VarMap, model: Model): void {
  const wrong: number[] = [];
  for (let index = 0; index < KEY_COUNT; index++) {
    const spec = model.get(index);
    const value = db.get(keyOf(index));
    if (spec === undefined ? value !== undefined : value === undefined || !Buffer.from(value).equals(Buffer.from(bytesOf(spec))))
      wrong.push(index);
  }
  expect(wrong).toEqual([]);
  expect(db.size).toBe(model.size);
}

abstract class StoreCommand implements fc.AsyncCommand<Model, Real> {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const name = this.constructor.name;
    exercised.commands.set(name, (exercised.commands.get(name) ?? 0) + 1);
    await this.apply(model, real);
    expect(real.log.duplicates, `after ${this.toString()}`).toEqual([]);
  }
  abstract apply(model: Model, real: Real): Promise<void>;
  abstract toString(): string;
}

class PutBatch extends StoreCommand {
  constructor(
    readonly first: number,
    readonly count: number,
    readonly length: number,
    readonly seed: number,
  ) {
    super();
  }
  async apply(model: Model, real: Real): Promise<void> {
    for (let offset = 0; offset < this.count; offset++) {
      const index = (this.first + offset) % KEY_COUNT;
      const spec = { length: this.length + offset, seed: this.seed + offset };
      real.db.put(keyOf(index), bytesOf(spec));
      model.set(index, spec);
    }
  }
  toString(): string {
    return `putBatch(${this.first}, ${this.count}, ${this.length}, ${this.seed})`;
  }
}

class Delete extends StoreCommand {
  constructor(readonly index: number) {
    super();
  }
  async apply(model: Model, real: Real): Promise<void> {
    expect(real.db.delete(keyOf(this.index))).toBe(model.has(this.index));
    model.delete(this.index);
  }
  toString(): string {
    return `delete(${this.index})`;
  }
}

class Sync extends StoreCommand {
  async apply(_model: Model, real: Real): Promise<void> {
    await real.db.sync();
  }
  toString(): string {
    return 'sync';
  }
}

class Flush extends StoreCommand {
  async apply(_model: Model, real: Real): Promise<void> {
    real.db.flush();
  }
  toString(): string {
    return 'flush';
  }
}

class Reopen extends StoreCommand {
  async apply(model: Model, real: Real): Promise<void> {
    await closeAndCount(real.db);
    real.db = await VarMap.open(real.dir, real.options);
    expectMatchesModel(real.db, model);
  }
  toString(): string {
    return 'close+reopen';
  }
}

class Compact extends StoreCommand {
  constructor(readonly reencrypt: boolean) {
    super();
  }
  async apply(model: Model, real: Real): Promise<void> {
    await real.db.compact({ reencrypt: this.reencrypt });
    if (this.reencrypt) expect(Object.keys(real.db.stats().filesPerKeyId).length).toBe(1);
    expectMatchesModel(real.db, model);
  }
  toString(): string {
    return `compact({ reencrypt: ${this.reencrypt} })`;
  }
}

class RotateDataKey extends StoreCommand {
  async apply(_model: Model, real: Real): Promise<void> {
    await real.db.rotateDataKey();
    exercised.dataKeyRotations++;
  }
  toString(): string {
    return 'rotateDataKey';
  }
}

const commandArbs = [
  fc
    .record({
      first: fc.nat({ max: KEY_COUNT - 1 }),
      count: fc.integer({ min: 1, max: 24 }),
      length: fc.integer({ min: 1, max: 3500 }),
      seed: fc.nat({ max: 9999 }),
    })
    .map(({ first, count, length, seed }) => new PutBatch(first, count, length, seed)),
  fc
    .record({
      first: fc.nat({ max: KEY_COUNT - 1 }),
      count: fc.integer({ min: 1, max: 24 }),
      length: fc.integer({ min: 1, max: 3500 }),
      seed: fc.nat({ max: 9999 }),
    })
    .map(({ first, count, length, seed }) => new PutBatch(first, count, length, seed)),
  fc.nat({ max: KEY_COUNT - 1 }).map((index) => new Delete(index)),
  fc.constant(new Sync()),
  fc.constant(new Flush()),
  fc.constant(new Reopen()),
  fc.boolean().map((reencrypt) => new Compact(reencrypt)),
  fc.constant(new RotateDataKey()),
];

const SEED = Number(process.env['ARMDB_FC_SEED'] ?? 0x6e6f6e63);
const RUNS = Number(process.env['ARMDB_FC_RUNS'] ?? 30);
const PATH = process.env['ARMDB_FC_PATH'];

describe('no (file key, nonce) pair is ever sealed twice', () => {
  it('model-based: put/delete/flush/sync/rotation/reopen/compact/rotateDataKey on 2 shards', async ({ tempDir }) => {
    const log = new SealLog().install();
    setSealRingMinimumPagesForTest(1);
    const submittedBefore = sealRingPagesSubmittedForTest();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<CipherName>('node', 'noble'),
        // 1: data pages are sealed by the sealing worker (every run of pages, by the hook below).
        fc.constantFrom(0, 1),
        fc.commands(commandArbs, { maxCommands: 30, size: 'max' }),
        async (cipher, sealThreads, commands) => {
          runs++;
          const dir = path.join(tempDir(), 'store');
          const options = storeOptions(cipher, { sealThreads });
          const real: Real = { dir, options, db: await VarMap.open(dir, options), log };
          const model: Model = new Map();
          try {
            await fc.asyncModelRun(() => ({ model, real }), commands);
            await closeAndCount(real.db);
            // The last close writes hints and seals the active files: still no repeat.
            expect(log.duplicates).toEqual([]);
            real.db = await VarMap.open(dir, options);
            expectMatchesModel(real.db, model);
          } finally {
            await real.db.close();
            fs.rmSync(path.dirname(dir), { recursive: true, force: true });
          }
        },
      ),
      { seed: SEED, numRuns: RUNS, ...(PATH === undefined ? {} : { path: PATH }), endOnFailure: true },
    );
    expect(runs).toBeGreaterThanOrEqual(RUNS);
    expect(log.duplicates).toEqual([]);
    // The observer saw the work: many seals, under many file keys (data files, hints, compaction output).
    expect(log.seals).toBeGreaterThan(RUNS * 10);
    expect(log.pairs).toBe(log.seals);
    expect(sealRingPagesSubmittedForTest() - submittedBefore, 'the sealing worker sealed pages too').toBeGreaterThan(RUNS);
    expect(log.fingerprints.size).toBeGreaterThan(RUNS * 2);
    expect(log.kinds.get('01000000')).toBeGreaterThan(RUNS * 10);
    expect(log.kinds.get('02000000'), 'hint chunks were sealed too').toBeGreaterThan(RUNS);
    expect(log.kinds.get('03000000'), 'commit journal chunks were sealed too').toBeGreaterThan(RUNS);
    if (PATH === undefined && RUNS >= 30) {
      for (const name of ['PutBatch', 'Delete', 'Sync', 'Flush', 'Reopen', 'Compact', 'RotateDataKey']) {
        expect(exercised.commands.get(name) ?? 0, name).toBeGreaterThanOrEqual(10);
      }
      expect(exercised.fileRotations).toBeGreaterThan(RUNS);
      expect(exercised.dataKeyRotations).toBeGreaterThanOrEqual(10);
      expect(exercised.compactions).toBeGreaterThanOrEqual(10);
    }
  });

  it('stores sharing key material: two databases under one raw key, a copied directory opened as original and copy, a reopen after a crash', async ({
    tempDir,
  }) => {
    const log = new SealLog().install();
    const root = tempDir();
    const workload = async (db: VarMap, label: number): Promise<void> => {
      for (let round = 0; round < 3; round++) {
        for (let index = 0; index < KEY_COUNT; index++) db.put(keyOf(index), patternBytes(1500 + index, label * 1000 + round));
        for (let index = 0; index < KEY_COUNT; index += 5) db.delete(keyOf(index));
        await db.sync();
      }
      await db.compact();
    };
    const expectWorkload = (db: VarMap, label: number): void => {
      for (let index = 0; index < KEY_COUNT; index++) {
        const value = db.get(keyOf(index));
        if (index % 5 === 0) expect(value).toBeUndefined();
        else expect(Buffer.from(value!).equals(Buffer.from(patternBytes(1500 + index, label * 1000 + 2)))).toBe(true);
      }
    };

    // Two different databases under the same raw key, identical workloads (same file ids, same
    // page indexes, same plaintexts): different database ids and salts keep every file key apart.
    const first = path.join(root, 'first');
    const second = path.join(root, 'second');
    for (const dir of [first, second]) {
      const db = await VarMap.open(dir, storeOptions());
      try {
        await workload(db, 1);
        await db.rotateDataKey();
        await workload(db, 2);
        await db.compact({ reencrypt: true });
      } finally {
        await db.close();
      }
    }
    expect(log.duplicates).toEqual([]);

    // A copied directory: the copy has the same database id, data keys and next file id as the
    // original, so both hand out the same file ids for their new files under the same data key.
    const original = path.join(root, 'original');
    {
      const db = await VarMap.open(original, storeOptions());
      await workload(db, 3);
      await db.close();
    }
    const copy = path.join(root, 'copy');
    fs.cpSync(original, copy, { recursive: true });
    const sealsBefore = log.seals;
    for (const dir of [original, copy]) {
      const db = await VarMap.open(dir, storeOptions());
      try {
        await workload(db, 4);
        expectWorkload(db, 4);
      } finally {
        await db.close();
      }
    }
    expect(log.seals - sealsBefore).toBeGreaterThan(50);
    // Both sides really did write files with the same ids.
    const idsOf = (dir: string): string[] => fs.readdirSync(path.join(dir, 'shard-000')).filter((name) => name.endsWith('.data'));
    expect(idsOf(original).filter((name) => idsOf(copy).includes(name)).length).toBeGreaterThan(0);
    expect(log.duplicates).toEqual([]);
    // And again after a rotation on each side: two different new data keys.
    for (const dir of [original, copy]) {
      const db = await VarMap.open(dir, storeOptions());
      try {
        await db.rotateDataKey();
        await workload(db, 5);
        await db.compact({ reencrypt: true });
      } finally {
        await db.close();
      }
    }
    expect(log.duplicates).toEqual([]);

    // A crash after complete pages reached the disk but before the barrier: the next open sees
    // files the manifest never listed and must not seal into the same (key, nonce) space again.
    const crashed = path.join(root, 'crashed');
    const faults = new FaultFileSystem();
    {
      const db = await VarMap.open(crashed, withEngineHooks({ ...storeOptions() }, { fileSystem: faults }));
      await workload(db, 6);
      for (let index = 0; index < KEY_COUNT; index++) db.put(keyOf(index), patternBytes(3 * PAGE_BYTES, 7000 + index));
      db.flush();
      faults.crashAt(1);
      await db.sync().catch(() => undefined);
      expect(faults.crashed).toBe(true);
      await db.close().catch(() => undefined);
    }
    {
      const db = await VarMap.open(crashed, storeOptions());
      try {
        await workload(db, 7);
        expectWorkload(db, 7);
      } finally {
        await db.close();
      }
    }
    // A crash after barriers journaled the partial page (a copy of the directory taken after sync()
    // stands for the crash image): the reopen writes the journaled records into a new file and never
    // journals or seals the old file's partial page again.
    const journaled = path.join(root, 'journaled');
    const image = path.join(root, 'journaled-image');
    {
      const db = await VarMap.open(journaled, storeOptions());
      try {
        for (let round = 0; round < 5; round++) {
          db.put(keyOf(round), patternBytes(100, 9000 + round));
          await db.sync();
        }
        fs.cpSync(journaled, image, { recursive: true });
        fs.rmSync(path.join(image, 'LOCK'), { force: true });
      } finally {
        await db.close();
      }
    }
    for (let reopen = 0; reopen < 2; reopen++) {
      const db = await VarMap.open(image, storeOptions());
      try {
        for (let round = 0; round < 5; round++) expect(db.get(keyOf(round))).toEqual(patternBytes(100, 9000 + round));
        db.put(keyOf(100 + reopen), patternBytes(100, reopen));
        await db.sync();
      } finally {
        await db.close();
      }
    }
    expect(log.kinds.get('03000000') ?? 0).toBeGreaterThan(5);
    expect(log.duplicates).toEqual([]);
    expect(log.pairs).toBe(log.seals);
  });

  it('control: two cipher instances with the same key, salt and identity repeat a pair, and the log catches it', () => {
    const log = new SealLog().install();
    const identity = {
      algorithm: Algorithm.aes256gcm,
      kind: FileKind.data,
      databaseId: new Uint8Array(16).fill(1),
      shard: 0,
      fileId: 7,
      keyId: 1,
      salt: new Uint8Array(32).fill(2),
    };
    const page = new Uint8Array(PAGE_BYTES);
    new FileCipher(nodeProvider, identity, KEY, 'write').seal(0, page);
    new FileCipher(nodeProvider, { ...identity, salt: new Uint8Array(32).fill(3) }, KEY, 'write').seal(0, page);
    expect(log.duplicates).toEqual([]);
    new FileCipher(nodeProvider, identity, KEY, 'write').seal(0, page);
    expect(log.duplicates).toHaveLength(1);
    expect(log.duplicates[0]).toMatch(/\/000000000000000001000000$/);
  });
});
