/** `armdb compact`: reclaims dead bytes, keeps every live value, and prints a report. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VarMap, keys } from '../../src/index.js';
import { armdb, BUILT, removeTempDirs, tempDir, testKey, writeKeyFile } from './run.js';

const KEY = testKey(7);
const options = { keySize: 16, encryption: { key: KEY }, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false } as const;

function bytesOnDisk(directory: string): number {
  let total = 0;
  for (const name of fs.readdirSync(directory, { recursive: true }) as string[]) {
    const stat = fs.statSync(path.join(directory, name));
    if (stat.isFile()) total += stat.size;
  }
  return total;
}

describe.skipIf(!BUILT)('armdb compact', () => {
  afterAll(removeTempDirs);

  it('rewrites a mostly overwritten store into a fraction of its size and keeps every live value', async () => {
    const root = tempDir('compact');
    const keyFile = writeKeyFile(root, KEY);
    const directory = path.join(root, 'store');
    const db = await VarMap.open(directory, options);
    for (let round = 0; round < 5; round++)
      for (let index = 0; index < 2000; index++) db.put(keys.fromString(`k${index}`, 16), new Uint8Array(100).fill(round));
    for (let index = 0; index < 2000; index += 4) db.delete(keys.fromString(`k${index}`, 16));
    await db.close();
    const before = bytesOnDisk(directory);

    const result = armdb(['compact', directory, '--key-file', keyFile, '--json']);
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { filesIn: number; filesOut: number; recordsMoved: number };
    expect(report.filesIn).toBeGreaterThan(report.filesOut);
    expect(report.recordsMoved).toBe(1500);
    expect(bytesOnDisk(directory)).toBeLessThan(before / 3);

    const reopened = await VarMap.open(directory, options);
    expect(reopened.size).toBe(1500);
    for (let index = 0; index < 2000; index++) {
      const value = reopened.get(keys.fromString(`k${index}`, 16));
      if (index % 4 === 0) expect(value).toBeUndefined();
      else expect(value).toEqual(new Uint8Array(100).fill(4));
    }
    expect((await reopened.verify()).ok).toBe(true);
    await reopened.close();
  });

  it('without --json the summary goes to stderr in words (counts with their nouns, a byte size in binary units); stdout stays empty', async () => {
    const root = tempDir('compact');
    const keyFile = writeKeyFile(root, KEY);
    const directory = path.join(root, 'store');
    const db = await VarMap.open(directory, options);
    for (let index = 0; index < 2000; index++) db.put(keys.fromString(`k${index}`, 16), new Uint8Array(100));
    for (let index = 0; index < 2000; index++) db.delete(keys.fromString(`k${index}`, 16));
    await db.close();
    const result = armdb(['compact', directory, '--key-file', keyFile]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    // Every value is dead; the deletions' tombstones may still need a file of their own.
    expect(result.stderr).toMatch(
      /^armdb compact: rewrote [\d,]+ files?(: every record in them was dead, so no new file was needed| into \d+: 0 live records moved)$/m,
    );
    expect(result.stderr).toMatch(/^armdb compact: reclaimed \d+\.\d (KiB|MiB) in \d+\.\d s$/m);
  });
});
