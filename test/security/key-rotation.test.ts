/**
 * The MANIFEST key rotates with every key operation, and recovery never deletes data on the word of a
 * MANIFEST alone (issue 13, item 1; docs/security-model.md §Key lifecycle, docs/format.md §7.4).
 *
 * The attack: the meta key (the manifest MAC key's root) was created once and re-wrapped unchanged by
 * every KEYRING write. Anyone holding an old KEYRING and the credential it was sealed under could sign
 * MANIFESTs for the store forever, even after the leaked-credential procedure (changeKey →
 * rotateDataKey → compact({ reencrypt: true })): any epoch (defeating `expectedMinEpoch`), any subset
 * of files (recovery then deleted the dropped files as leftovers: a record vanished, verify() ok).
 *
 * Now every KEYRING write wraps a fresh meta key, after a MANIFEST signed under the old and the new
 * key is durable; and an unlisted file that is not provably redundant is moved to `quarantine/`,
 * reported by stats() and verify(), instead of being deleted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { makeCredential, openKeyring } from '../../src/crypto/keys.js';
import { nodeProvider } from '../../src/crypto/node-provider.js';
import { decodeManifest, encodeManifest, peekManifestFormatVersion, type Manifest } from '../../src/format/manifest.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { ArmdbError, VarMap, keys, type OpenOptions } from '../../src/index.js';
import { FaultFileSystem } from '../crash/fault-fs.js';
import { readManifestUnauthenticated } from '../helpers/manifest.js';
import { storeTest as it, testKey } from '../helpers/store.js';

const KEY_SIZE = 16;
const keyOf = (index: number): Uint8Array => keys.fromString(`key-${String(index).padStart(6, '0')}`, KEY_SIZE);
const valueFor = (index: number, label: string): Uint8Array => new TextEncoder().encode(`${label}-${index}-`.repeat(20));

function optionsOf(key: Uint8Array, extra: Partial<OpenOptions> = {}): OpenOptions {
  return { keySize: KEY_SIZE, encryption: { key }, shards: 1, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false, ...extra };
}

/** What an attacker derives from a KEYRING copy and the raw key it was sealed under: the manifest MAC key. */
async function manifestMacKeyOf(keyringBytes: Uint8Array, key: Uint8Array): Promise<Uint8Array> {
  const opened = await openKeyring(keyringBytes, makeCredential({ kind: 'key', key }), {
    provider: nodeProvider,
    providerTimeoutMs: 1000,
    now: Date.now,
  });
  try {
    return opened.manifestMacKey(nodeProvider);
  } finally {
    opened.destroy();
  }
}

/** Parses a MANIFEST without its key (the attacker knows the layout), changes it and signs it under `macKey`. */
function forgeManifest(bytes: Uint8Array, macKey: Uint8Array, change: (manifest: Manifest) => Manifest): Uint8Array {
  return encodeManifest(change(readManifestUnauthenticated(bytes).manifest), (body) => nodeProvider.hmac(macKey, body));
}

const manifestPath = (dir: string): string => path.join(dir, 'MANIFEST');
const keyringPath = (dir: string): string => path.join(dir, 'KEYRING');

async function openError(dir: string, options: OpenOptions): Promise<unknown> {
  try {
    const db = await VarMap.open(dir, options);
    await db.close();
  } catch (error) {
    return error;
  }
  return undefined;
}

/**
 * A store with records across several sealed files, one key deleted (its tombstone and its old value
 * in different files). Returns the model of what it holds.
 */
async function buildStore(dir: string, key: Uint8Array): Promise<Map<number, string>> {
  const model = new Map<number, string>();
  const db = await VarMap.open(dir, optionsOf(key));
  for (let index = 0; index < 400; index++) {
    db.put(keyOf(index), valueFor(index, 'v1'));
    model.set(index, new TextDecoder().decode(valueFor(index, 'v1')));
  }
  db.delete(keyOf(7));
  model.delete(7);
  await db.close();
  return model;
}

function expectModel(db: VarMap, model: Map<number, string>): void {
  for (let index = 0; index < 400; index++) {
    const value = db.get(keyOf(index));
    expect(value === undefined ? undefined : new TextDecoder().decode(value), `key ${index}`).toBe(model.get(index));
  }
}

describe('the MANIFEST key after the leaked-credential procedure', () => {
  it('an old KEYRING copy and its credential cannot sign a MANIFEST the store accepts (higher epoch, a file dropped): refused, nothing lost', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const oldKey = testKey(11);
    const newKey = testKey(12);
    const model = await buildStore(dir, oldKey);
    // The attacker's copy, taken before the credential leaked and was changed.
    const oldKeyring = fs.readFileSync(keyringPath(dir));

    const db = await VarMap.open(dir, optionsOf(oldKey));
    await db.changeKey({ key: newKey });
    await db.rotateDataKey();
    const report = await db.compact({ reencrypt: true });
    expect(report.shreddedKeyIds).toEqual([1]);
    const epoch = db.stats().epoch;
    await db.close();

    const genuine = fs.readFileSync(manifestPath(dir));
    const oldMacKey = await manifestMacKeyOf(oldKeyring, oldKey);
    const forged = forgeManifest(genuine, oldMacKey, (manifest) => {
      const sealed = manifest.files.filter((file) => file.state === 2);
      expect(sealed.length).toBeGreaterThan(1);
      // A higher epoch than the application anchored, and one data file dropped.
      return { ...manifest, epoch: manifest.epoch + 1000, files: manifest.files.filter((file) => file !== sealed[0]) };
    });
    fs.writeFileSync(manifestPath(dir), forged);
    const error = await openError(dir, optionsOf(newKey, { expectedMinEpoch: epoch + 2 }));
    expect(error, 'the forged MANIFEST must be refused').toBeInstanceOf(ArmdbError);
    expect(['ARMDB_INTEGRITY', 'ARMDB_WRONG_KEY']).toContain((error as ArmdbError).code);
    // The same forgery beside the attacker's old KEYRING: the application's credential does not open it.
    const currentKeyring = fs.readFileSync(keyringPath(dir));
    fs.writeFileSync(keyringPath(dir), oldKeyring, { mode: 0o600 });
    expect(((await openError(dir, optionsOf(newKey))) as ArmdbError).code).toBe('ARMDB_WRONG_KEY');
    fs.writeFileSync(keyringPath(dir), currentKeyring, { mode: 0o600 });

    // Nothing was changed by the refused opens: the genuine MANIFEST opens everything.
    fs.writeFileSync(manifestPath(dir), genuine);
    const reopened = await VarMap.open(dir, optionsOf(newKey, { expectedMinEpoch: epoch }));
    try {
      expectModel(reopened, model);
      expect(reopened.stats().quarantinedFiles).toBe(0);
      expect((await reopened.verify()).ok).toBe(true);
    } finally {
      await reopened.close();
    }
  });

  it('each key operation alone (changeKey, rotateDataKey, crypto-shredding) replaces the meta key: the KEYRING from just before it no longer signs', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = testKey(21);
    const otherKey = testKey(22);
    await buildStore(dir, key);
    const db = await VarMap.open(dir, optionsOf(key));
    const macKeys: string[] = [];
    const current = async (credential: Uint8Array): Promise<string> =>
      Buffer.from(await manifestMacKeyOf(fs.readFileSync(keyringPath(dir)), credential)).toString('hex');
    try {
      macKeys.push(await current(key));
      await db.rotateDataKey();
      macKeys.push(await current(key));
      const report = await db.compact({ reencrypt: true });
      expect(report.shreddedKeyIds).toEqual([1]);
      macKeys.push(await current(key));
      await db.changeKey({ key: otherKey });
      macKeys.push(await current(otherKey));
      await db.sync();
    } finally {
      await db.close();
    }
    expect(new Set(macKeys).size, 'a new manifest MAC key after every operation').toBe(4);
    // The MANIFEST on disk is signed under the last key only, and the earlier ones are refused.
    const bytes = fs.readFileSync(manifestPath(dir));
    for (const [index, hex] of macKeys.entries()) {
      const verify = (): Manifest => decodeManifest(bytes, (body) => nodeProvider.hmac(Buffer.from(hex, 'hex'), body));
      if (index === macKeys.length - 1) expect(verify().epoch).toBeGreaterThan(1);
      else expect(verify).toThrow(/fails its MAC/);
    }
  });

  it('a version-1 store (as 0.1.0 wrote it) opens, stays version 1 while nothing is written, and its first barrier replaces its MANIFEST with a version-3 one', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = testKey(31);
    const model = await buildStore(dir, key);
    // Rewrite the MANIFEST as version 1, signed under the store's own key: what 0.1.0 left on disk.
    const macKey = await manifestMacKeyOf(fs.readFileSync(keyringPath(dir)), key);
    const { manifest } = readManifestUnauthenticated(fs.readFileSync(manifestPath(dir)));
    fs.writeFileSync(
      manifestPath(dir),
      encodeManifest(manifest, (body) => nodeProvider.hmac(macKey, body), { formatVersion: 1 }),
    );
    expect(peekManifestFormatVersion(fs.readFileSync(manifestPath(dir)))).toBe(1);

    const db = await VarMap.open(dir, optionsOf(key));
    try {
      expectModel(db, model);
      expect(peekManifestFormatVersion(fs.readFileSync(manifestPath(dir))), 'a clean open writes nothing').toBe(1);
      db.put(keyOf(500), valueFor(500, 'v2'));
      await db.sync();
      expect(peekManifestFormatVersion(fs.readFileSync(manifestPath(dir))), 'upgraded by the first barrier').toBe(3);
      await db.changeKey({ key: testKey(32) });
      expect(peekManifestFormatVersion(fs.readFileSync(manifestPath(dir)))).toBe(3);
    } finally {
      await db.close();
    }
    const reopened = await VarMap.open(dir, optionsOf(testKey(32)));
    try {
      expectModel(reopened, model);
      expect(reopened.get(keyOf(500))).toEqual(valueFor(500, 'v2'));
    } finally {
      await reopened.close();
    }
  });
});

describe('leftovers: removed only when redundant, otherwise quarantined', () => {
  /**
   * Whoever signs a MANIFEST (here the test, with the current key: a stand-in for a bug or for an
   * attacker who holds the current credential) cannot make recovery delete records: a dropped file
   * that holds the newest record of some key is moved to quarantine/, and reported.
   */
  it('a MANIFEST that drops a file holding live records: the file is quarantined, never deleted; stats() and verify() report it', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = testKey(41);
    await buildStore(dir, key);
    const macKey = await manifestMacKeyOf(fs.readFileSync(keyringPath(dir)), key);
    const genuine = fs.readFileSync(manifestPath(dir));
    let droppedFileId = 0;
    fs.writeFileSync(
      manifestPath(dir),
      forgeManifest(genuine, macKey, (manifest) => {
        const dropped = manifest.files.find((file) => file.state === 2)!;
        droppedFileId = dropped.fileId;
        return { ...manifest, epoch: manifest.epoch + 1, files: manifest.files.filter((file) => file !== dropped) };
      }),
    );
    const droppedData = path.join(dir, 'shard-000', `${String(droppedFileId).padStart(6, '0')}.data`);
    const droppedBytes = fs.readFileSync(droppedData);

    const db = await VarMap.open(dir, optionsOf(key));
    const quarantined = path.join(dir, 'quarantine', `shard-000-${String(droppedFileId).padStart(6, '0')}.data`);
    try {
      expect(fs.existsSync(droppedData)).toBe(false);
      expect(fs.readFileSync(quarantined).equals(droppedBytes), 'moved, byte for byte').toBe(true);
      expect(db.stats().quarantinedFiles).toBe(1);
      const report = await db.verify();
      expect(report.failures).toEqual([]);
      expect(report.quarantinedFiles).toEqual([path.join('quarantine', `shard-000-${String(droppedFileId).padStart(6, '0')}.data`)]);
      expect(report.ok).toBe(false);
    } finally {
      await db.close();
    }
    // Still reported at the next open, and never deleted by armdb.
    const again = await VarMap.open(dir, optionsOf(key));
    try {
      expect(again.stats().quarantinedFiles).toBe(1);
      expect(fs.existsSync(quarantined)).toBe(true);
    } finally {
      await again.close();
    }
  });

  it('a MANIFEST that drops the file holding the only tombstone of a key: quarantined (deleting it would bring the key back)', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = testKey(51);
    const db = await VarMap.open(dir, optionsOf(key));
    db.put(keyOf(1), valueFor(1, 'old'));
    for (let index = 100; index < 300; index++) db.put(keyOf(index), valueFor(index, 'filler'));
    await db.close();
    const withTombstone = await VarMap.open(dir, optionsOf(key));
    withTombstone.delete(keyOf(1));
    await withTombstone.close();
    const macKey = await manifestMacKeyOf(fs.readFileSync(keyringPath(dir)), key);
    const genuine = fs.readFileSync(manifestPath(dir));
    fs.writeFileSync(
      manifestPath(dir),
      forgeManifest(genuine, macKey, (manifest) => {
        const newest = manifest.files.reduce((latest, file) => (file.fileId > latest.fileId ? file : latest));
        return { ...manifest, epoch: manifest.epoch + 1, files: manifest.files.filter((file) => file !== newest) };
      }),
    );
    const reopened = await VarMap.open(dir, optionsOf(key));
    try {
      expect(reopened.stats().quarantinedFiles).toBe(1);
      // The old value is served again (the tombstone is out of the store), but the tombstone is kept
      // and reported, not silently destroyed.
      expect((await reopened.verify()).ok).toBe(false);
    } finally {
      await reopened.close();
    }
  });

  it('the old files of a compaction interrupted after its MANIFEST switch (every record copied or deleted) are still deleted, not quarantined', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const key = testKey(61);
    const model = await buildStore(dir, key);
    const faults = new FaultFileSystem();
    const db = await VarMap.open(dir, withEngineHooks({ ...optionsOf(key) }, { fileSystem: faults }));
    db.put(keyOf(3), valueFor(3, 'v2'));
    model.set(3, new TextDecoder().decode(valueFor(3, 'v2')));
    for (let index = 200; index < 400; index++) db.delete(keyOf(index));
    for (let index = 200; index < 400; index++) model.delete(index);
    // The process dies at the first unlink of an old data file: the MANIFEST without the old files is
    // durable, and every old file is still there (tombstones the compaction dropped included).
    faults.crashAt(1, { match: (kind, filePath) => kind === 'unlink' && filePath.endsWith('.data') });
    // Deleting retired files cannot fail a compaction (its switch is durable by then): compact() may
    // resolve; the process is dead either way.
    await db.compact().catch(() => undefined);
    await db.close().catch(() => undefined);
    expect(faults.crashPoint?.kind).toBe('unlink');
    const reopened = await VarMap.open(dir, optionsOf(key));
    try {
      expectModel(reopened, model);
      expect(reopened.stats().quarantinedFiles).toBe(0);
      expect((await reopened.verify()).ok).toBe(true);
      expect(fs.existsSync(path.join(dir, 'quarantine'))).toBe(false);
    } finally {
      await reopened.close();
    }
  });
});
