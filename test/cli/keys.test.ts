/** `armdb keys list|add|remove` and the key slots and key ages of `armdb info`, on real stores; no secret in any output. */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { armdb, BUILT, outputs, removeTempDirs, secretForms, tempDir, testKey, writeKeyFile } from './run.js';

const APP_KEY = testKey(21);
const OPS_KEY = testKey(22);
const RECOVERY = 'the recovery passphrase 7';
const base = { keySize: 16, shards: 1, syncIntervalMs: 0, autoCompact: false } as const;

async function writeStore(directory: string): Promise<void> {
  const db = await VarMap.open(directory, { ...base, encryption: { key: APP_KEY } });
  for (let index = 0; index < 100; index++) db.put(keys.fromString(`k${index}`, 16), new TextEncoder().encode(`value ${index}`));
  await db.close();
}

describe.skipIf(!BUILT)('armdb keys', () => {
  afterAll(() => {
    const leaks = secretForms([APP_KEY, OPS_KEY, RECOVERY]).filter((secret) => outputs.some((output) => output.includes(secret)));
    removeTempDirs();
    expect(leaks).toEqual([]);
  });

  it('add a key slot and a passphrase slot, list them, open through each, remove one; info shows slots and key ages', async () => {
    const root = tempDir('keys');
    const appKeyFile = writeKeyFile(root, APP_KEY);
    const opsKeyFile = writeKeyFile(root, OPS_KEY, 'ops.key');
    const directory = path.join(root, 'store');
    await writeStore(directory);

    const addKey = armdb(['keys', 'add', directory, '--key-file', appKeyFile, '--label', 'ops', '--new-key-file', opsKeyFile]);
    expect(addKey.status, addKey.stderr).toBe(0);
    const addPassphrase = armdb(['keys', 'add', directory, '--key-file', opsKeyFile, '--label', 'recovery', '--scrypt-log-n', '10'], {
      newPassphrase: RECOVERY,
    });
    expect(addPassphrase.status, addPassphrase.stderr).toBe(0);

    const list = armdb(['keys', 'list', directory, '--json'], { passphrase: RECOVERY });
    expect(list.status, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { slots: { label: string; kind: string }[]; activeDataKeyAgeMs: number };
    expect(listed.slots.map((slot) => [slot.label, slot.kind])).toEqual([
      ['default', 'key'],
      ['ops', 'key'],
      ['recovery', 'passphrase'],
    ]);
    expect(listed.activeDataKeyAgeMs).toBeGreaterThanOrEqual(0);
    const text = armdb(['keys', 'list', directory, '--key-file', opsKeyFile]);
    expect(text.stdout).toMatch(/^recovery\s+passphrase\s+\d{4}-/m);

    const info = armdb(['info', directory, '--key-file', appKeyFile, '--json']);
    expect(info.status, info.stderr).toBe(0);
    const report = JSON.parse(info.stdout);
    expect(report.keySlots.map((slot: { label: string }) => slot.label)).toEqual(['default', 'ops', 'recovery']);
    expect(report.dataKeys).toEqual([{ keyId: 1, createdAt: expect.any(String), ageMs: expect.any(Number), active: true }]);
    expect(report.keyringVersion).toBe(2);
    const infoText = armdb(['info', directory, '--key-file', appKeyFile, '--manifest-only']);
    expect(infoText.stdout).toMatch(/key slots\s+default \(key, .*\); ops \(key, .*\); recovery \(passphrase, .*\)/);
    expect(infoText.stdout).toMatch(/data key ages\s+key 1 \(active\): \d+s/);

    const remove = armdb(['keys', 'remove', directory, '--key-file', appKeyFile, '--label', 'ops']);
    expect(remove.status, remove.stderr).toBe(0);
    const refused = armdb(['info', directory, '--key-file', opsKeyFile]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('ARMDB_WRONG_KEY');
    const db = await VarMap.open(directory, { ...base, encryption: { passphrase: RECOVERY } });
    expect(db.size).toBe(100);
    await db.close();
  });

  it('usage errors: no subcommand, no label, the last slot, a duplicate label (exit 2, nothing changed)', async () => {
    const root = tempDir('keys');
    const appKeyFile = writeKeyFile(root, APP_KEY);
    const opsKeyFile = writeKeyFile(root, OPS_KEY, 'ops.key');
    const directory = path.join(root, 'store');
    await writeStore(directory);
    expect(armdb(['keys', directory, '--key-file', appKeyFile]).status).toBe(2);
    expect(armdb(['keys', 'remove', directory, '--key-file', appKeyFile]).status).toBe(2);
    const last = armdb(['keys', 'remove', directory, '--key-file', appKeyFile, '--label', 'default']);
    expect(last.status).toBe(2);
    expect(last.stderr).toContain('last key slot');
    const duplicate = armdb(['keys', 'add', directory, '--key-file', appKeyFile, '--label', 'default', '--new-key-file', opsKeyFile]);
    expect(duplicate.status).toBe(2);
    const db = await VarMap.open(directory, { ...base, encryption: { key: APP_KEY } });
    expect(db.keySlots().map((slot) => slot.label)).toEqual(['default']);
    await db.close();
  });
});
