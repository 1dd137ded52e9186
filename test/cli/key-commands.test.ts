/** `armdb rotate-key` and `armdb change-key` on real stores; secrets never appear in any output. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VarMap, keys } from '../../src/index.js';
import { armdb, BUILT, outputs, removeTempDirs, secretForms, tempDir, testKey, writeKeyFile } from './run.js';

const OLD_KEY = testKey(11);
const NEW_KEY = testKey(12);
const NEW_PASSPHRASE = 'the new passphrase 42';
const base = { keySize: 16, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false } as const;

async function writeStore(directory: string): Promise<void> {
  const db = await VarMap.open(directory, { ...base, encryption: { key: OLD_KEY } });
  for (let index = 0; index < 3000; index++) db.put(keys.fromString(`k${index}`, 16), new TextEncoder().encode(`value ${index}`));
  await db.close();
}

describe.skipIf(!BUILT)('armdb rotate-key and change-key', () => {
  afterAll(() => {
    const leaks = secretForms([OLD_KEY, NEW_KEY, NEW_PASSPHRASE]).filter((secret) => outputs.some((output) => output.includes(secret)));
    removeTempDirs();
    expect(leaks).toEqual([]);
  });

  it('rotate-key --reencrypt leaves every file under the new data key and shreds the old one', async () => {
    const root = tempDir('keys');
    const keyFile = writeKeyFile(root, OLD_KEY);
    const directory = path.join(root, 'store');
    await writeStore(directory);
    const result = armdb(['rotate-key', directory, '--key-file', keyFile, '--reencrypt']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('data keys removed from the keyring: 1');
    const info = armdb(['info', directory, '--key-file', keyFile, '--json']);
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).keyIdsInUse).toEqual([2]);
    const db = await VarMap.open(directory, { ...base, encryption: { key: OLD_KEY } });
    expect(db.size).toBe(3000);
    expect(new TextDecoder().decode(db.get(keys.fromString('k2999', 16)))).toBe('value 2999');
    await db.close();
  });

  it('rotate-key --reencrypt on a passphrase store keeps the stored scrypt cost (it used to re-seal at the default, 17)', async () => {
    const root = tempDir('keys');
    const directory = path.join(root, 'store');
    const db = await VarMap.open(directory, { ...base, encryption: { passphrase: NEW_PASSPHRASE, scryptLogN: 12 } });
    db.put(keys.fromString('k1', 16), new TextEncoder().encode('value 1'));
    await db.close();
    // The first slot's logN: KEYRING version 2, slots after 100 + 72·keys bytes, logN at +6 (docs/format.md §8.4).
    const storedLogN = (): number => {
      const keyring = readFileSync(path.join(directory, 'KEYRING'));
      return keyring[100 + 72 * keyring.readUInt32LE(12) + 6]!;
    };
    expect(storedLogN()).toBe(12);
    const result = armdb(['rotate-key', directory, '--reencrypt'], { passphrase: NEW_PASSPHRASE });
    expect(result.status, result.stderr).toBe(0);
    expect(storedLogN()).toBe(12);
  });

  it('change-key to a key file: the old key is refused, the new one opens, data files untouched', async () => {
    const root = tempDir('keys');
    const oldKeyFile = writeKeyFile(root, OLD_KEY);
    const newKeyFile = writeKeyFile(root, NEW_KEY, 'new.key');
    const directory = path.join(root, 'store');
    await writeStore(directory);
    const result = armdb(['change-key', directory, '--key-file', oldKeyFile, '--new-key-file', newKeyFile]);
    expect(result.status, result.stderr).toBe(0);
    const refused = armdb(['info', directory, '--key-file', oldKeyFile]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('ARMDB_WRONG_KEY');
    expect(armdb(['verify', directory, '--key-file', newKeyFile]).status).toBe(0);
  });

  it('change-key to a passphrase from ARMDB_NEW_PASSPHRASE', async () => {
    const root = tempDir('keys');
    const oldKeyFile = writeKeyFile(root, OLD_KEY);
    const directory = path.join(root, 'store');
    await writeStore(directory);
    expect(armdb(['change-key', directory, '--key-file', oldKeyFile], { newPassphrase: NEW_PASSPHRASE }).status).toBe(0);
    expect(armdb(['info', directory], { passphrase: NEW_PASSPHRASE }).status).toBe(0);
  });

  it('--no-encryption on an encrypted store is ARMDB_FORMAT_MISMATCH (exit 1), as for every command; on an unencrypted one a usage error (2)', async () => {
    const root = tempDir('keys');
    const encrypted = path.join(root, 'encrypted');
    await writeStore(encrypted);
    for (const command of ['rotate-key', 'change-key']) {
      const result = armdb([command, encrypted, '--no-encryption']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('ARMDB_FORMAT_MISMATCH');
    }
    const plain = path.join(root, 'plain');
    const db = await VarMap.open(plain, { ...base, encryption: 'none' });
    db.put(keys.fromString('k', 16), new Uint8Array([1]));
    await db.close();
    const rotate = armdb(['rotate-key', plain, '--no-encryption']);
    expect(rotate.status).toBe(2);
    expect(rotate.stderr).toContain("a store created with encryption 'none' has no data keys");
  });
});
