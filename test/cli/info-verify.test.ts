/**
 * `armdb info` and `armdb verify` on stores written by the library: what they report, the exit codes
 * of a wrong key and of a damaged page, and that a damaged store is left exactly as it was found.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConstTree, VarMap, keys, type EncryptionOption } from '../../src/index.js';
import { armdb, BUILT, outputs, removeTempDirs, secretForms, snapshot, tempDir, testKey, writeKeyFile } from './run.js';

const KEY = testKey(1);
const OTHER_KEY = testKey(2);
const PASSPHRASE = 'cli suite passphrase 7f3a';
const PAGE = 4096;

function valueFor(index: number): Uint8Array {
  return new TextEncoder().encode(`value-${index}-`.repeat(8));
}

/** A closed VarMap: 3000 keys over 2 shards in 64 KiB files (several sealed files per shard), 500 deleted. */
async function writeVarMap(directory: string, encryption: EncryptionOption): Promise<void> {
  const db = await VarMap.open(directory, { keySize: 16, encryption, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536 });
  for (let index = 0; index < 3000; index++) db.put(keys.fromString(`key-${index}`, 16), valueFor(index));
  for (let index = 0; index < 500; index++) db.delete(keys.fromString(`key-${index}`, 16));
  await db.close();
}

describe.skipIf(!BUILT)('armdb info and verify', () => {
  let root: string;
  let keyFile: string;
  let otherKeyFile: string;

  beforeAll(() => {
    root = tempDir('info');
    keyFile = writeKeyFile(root, KEY);
    otherKeyFile = writeKeyFile(root, OTHER_KEY, 'other.key');
  });

  afterAll(() => {
    const leaks = secretForms([KEY, OTHER_KEY, PASSPHRASE]).filter((secret) => outputs.some((output) => output.includes(secret)));
    removeTempDirs();
    expect(leaks).toEqual([]);
  });

  it('info prints class, options, files, live keys, dead bytes, epoch and key ids', async () => {
    const store = path.join(root, 'var-map');
    await writeVarMap(store, { key: KEY });
    const text = armdb(['info', store, '--key-file', keyFile]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/collection\s+VarMap/);
    expect(text.stdout).toMatch(/key size\s+16 bytes/);
    expect(text.stdout).toMatch(/live keys\s+2,500/);
    expect(text.stdout).toMatch(/encrypted\s+yes/);

    const result = armdb(['info', store, '--key-file', keyFile, '--json']);
    expect(result.status).toBe(0);
    const info = JSON.parse(result.stdout);
    expect(info).toMatchObject({
      formatVersion: 3,
      collection: 'VarMap',
      options: { keySize: 16, valueSize: null, shards: 2, shardPrefixBits: 0, encrypted: true },
      liveKeys: 2500,
      keyIdsInUse: [1],
      activeKeyId: 1,
    });
    expect(info.filesPerShard).toHaveLength(2);
    expect(info.filesPerShard.every((count: number) => count >= 2)).toBe(true);
    expect(info.deadRatio).toBeGreaterThan(0);
    expect(info.deadRatio).toBeLessThan(1);
    expect(info.epoch).toBeGreaterThan(0);
  });

  it('info --manifest-only does not open the store: not one byte changes', async () => {
    const store = path.join(root, 'manifest-only');
    await writeVarMap(store, { key: KEY });
    const before = snapshot(store);
    const result = armdb(['info', store, '--key-file', keyFile, '--manifest-only', '--json']);
    expect(result.status).toBe(0);
    const info = JSON.parse(result.stdout);
    expect(info.collection).toBe('VarMap');
    expect(info.liveKeys).toBeUndefined();
    expect(snapshot(store)).toEqual(before);
  });

  it('info of a ConstTree reports its value size', async () => {
    const store = path.join(root, 'const-tree');
    const db = await ConstTree.open(store, { keySize: 8, valueSize: 4, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0 });
    for (let index = 0; index < 10; index++) db.put(keys.u64(index), new Uint8Array([1, 2, 3, index]));
    await db.close();
    const info = JSON.parse(armdb(['info', store, '--key-file', keyFile, '--json']).stdout);
    expect(info).toMatchObject({ collection: 'ConstTree', options: { keySize: 8, valueSize: 4, shards: 1 }, liveKeys: 10 });
  });

  it('a passphrase store opens through ARMDB_PASSPHRASE', async () => {
    const store = path.join(root, 'passphrase');
    await writeVarMap(store, { passphrase: PASSPHRASE, scryptLogN: 10 });
    const info = armdb(['info', store, '--json'], { passphrase: PASSPHRASE });
    expect(info.status).toBe(0);
    expect(JSON.parse(info.stdout).liveKeys).toBe(2500);
    const verify = armdb(['verify', store], { passphrase: PASSPHRASE });
    expect(verify.status).toBe(0);
    expect(verify.stdout).toContain('every page authentic');
  });

  it('verify of an intact store exits 0 and reports pages and files', async () => {
    const store = path.join(root, 'intact');
    await writeVarMap(store, { key: KEY });
    const result = armdb(['verify', store, '--key-file', keyFile]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^ok: \d+ pages in \d+ files, every page authentic$/m);
    // Not a terminal: plain progress lines on stderr, ending at 100%.
    expect(result.stderr).toMatch(/verify: 100% \(/);
    const json = JSON.parse(armdb(['verify', store, '--key-file', keyFile, '--json', '--quiet']).stdout);
    expect(json).toMatchObject({ ok: true, opened: true, failures: [] });
    expect(json.pages).toBeGreaterThan(10);
  });

  it('a wrong key exits 1 with ARMDB_WRONG_KEY, for every command that opens', async () => {
    const store = path.join(root, 'wrong-key');
    await writeVarMap(store, { key: KEY });
    const before = snapshot(store);
    for (const command of ['info', 'verify', 'export']) {
      const result = armdb([command, store, '--key-file', otherKeyFile]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('ARMDB_WRONG_KEY');
    }
    const imported = armdb(['import', store, '--key-file', otherKeyFile], { input: '' });
    expect(imported.status).toBe(1);
    expect(imported.stderr).toContain('ARMDB_WRONG_KEY');
    const passphrase = armdb(['info', store], { passphrase: 'not the key' });
    expect(passphrase.status).toBe(1);
    expect(passphrase.stderr).toContain('ARMDB_WRONG_KEY');
    expect(snapshot(store)).toEqual(before);
  });

  it('a planted MANIFEST or KEYRING larger than any valid one is refused unread: exit 1, ARMDB_INTEGRITY, store unchanged', async () => {
    for (const name of ['MANIFEST', 'KEYRING']) {
      const store = path.join(root, `huge-${name}`);
      await writeVarMap(store, { key: KEY });
      const before = snapshot(store);
      // Extended (sparse) to 3 GiB, past the bound (the MANIFEST's is 120 MB): read whole, it would
      // cost that memory. Cut back afterwards, it is byte for byte the original file again.
      const planted = path.join(store, name);
      const size = fs.statSync(planted).size;
      fs.truncateSync(planted, 3 * 2 ** 30);
      for (const command of ['info', 'verify', 'export']) {
        const result = armdb([command, store, '--key-file', keyFile]);
        expect(result.status, `${command} with a huge ${name}`).toBe(1);
        expect(result.stdout + result.stderr).toContain('ARMDB_INTEGRITY'); // verify reports on stdout
      }
      const imported = armdb(['import', store, '--key-file', keyFile], { input: '' });
      expect(imported.status).toBe(1);
      expect(imported.stderr).toContain('ARMDB_INTEGRITY');
      expect(fs.statSync(planted).size).toBe(3 * 2 ** 30);
      fs.truncateSync(planted, size);
      expect(snapshot(store)).toEqual(before);
    }
  });

  it('the encryption mode is never guessed: --no-encryption only for unencrypted stores', async () => {
    const plain = path.join(root, 'plain');
    await writeVarMap(plain, 'none');
    expect(armdb(['info', plain, '--no-encryption']).status).toBe(0);
    const withKey = armdb(['info', plain, '--key-file', keyFile]);
    expect(withKey.status).toBe(1);
    expect(withKey.stderr).toContain('--no-encryption');
    const encrypted = path.join(root, 'encrypted');
    await writeVarMap(encrypted, { key: KEY });
    const without = armdb(['info', encrypted, '--no-encryption']);
    expect(without.status).toBe(1);
    expect(without.stderr).toContain('ARMDB_FORMAT_MISMATCH');
  });

  it('a flipped byte in a sealed data page: verify exits 1 naming file and page, and the store is unchanged', async () => {
    const store = path.join(root, 'corrupt');
    await writeVarMap(store, { key: KEY });
    const shardDirectory = path.join(store, 'shard-000');
    const dataFile = fs
      .readdirSync(shardDirectory)
      .filter((name) => name.endsWith('.data') && fs.statSync(path.join(shardDirectory, name)).size >= 3 * PAGE)
      .sort()[0]!;
    expect(dataFile).toBeDefined();
    const target = path.join(shardDirectory, dataFile);
    const bytes = fs.readFileSync(target);
    bytes[2 * PAGE + 123]! ^= 0x10;
    fs.writeFileSync(target, bytes);

    const before = snapshot(store);
    const result = armdb(['verify', store, '--key-file', keyFile]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(`shard-000/${dataFile}`);
    expect(result.stdout).toMatch(/page 2\b/);
    expect(result.stdout).toContain('ARMDB_INTEGRITY');
    expect(snapshot(store)).toEqual(before);

    const json = JSON.parse(armdb(['verify', store, '--key-file', keyFile, '--json', '-q']).stdout);
    expect(json.ok).toBe(false);
    expect(json.failures[0]).toMatchObject({ shard: 0, file: `shard-000/${dataFile}`, fileId: Number(dataFile.slice(0, 6)), page: 2 });
    expect(snapshot(store)).toEqual(before);
  });
});
