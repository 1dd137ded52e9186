/**
 * `armdb demo` writes only where it cannot harm data (issue 15, item 9): a new or empty directory it
 * then owns, or one an earlier demo made. A real store, even with a key file beside it that opens it,
 * or any other non-empty directory, is refused with exit 2 and left byte for byte as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { armdb, BUILT, removeTempDirs, snapshot, tempDir, testKey, writeKeyFile } from './run.js';

const lastLine = (text: string): string => text.trimEnd().split('\n').at(-1) ?? '';

describe.skipIf(!BUILT)('armdb demo', () => {
  afterAll(removeTempDirs);

  it('makes a new directory its own, names it on its last line, and uses it again on a second run', () => {
    const root = tempDir('demo');
    const first = armdb(['demo', 'mine'], { cwd: root });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('created mine and a random 32-byte key in mine.key');
    expect(lastLine(first.stdout)).toContain('delete mine and mine.key to start over');
    const again = armdb(['demo', 'mine'], { cwd: root });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('opened mine: 100,000 keys already there');
    const verify = armdb(['verify', path.join(root, 'mine'), '--key-file', path.join(root, 'mine.key')]);
    expect(verify.status, verify.stderr + verify.stdout).toBe(0);
  });

  it('refuses a real store even when <dir>.key opens it, and changes nothing', async () => {
    const root = tempDir('demo');
    const key = testKey(9);
    const directory = path.join(root, 'data');
    writeKeyFile(root, key, 'data.key');
    const db = await VarMap.open(directory, { keySize: 16, encryption: { key }, syncIntervalMs: 0 });
    db.put(keys.fromString('precious', 16), new Uint8Array([1, 2, 3]));
    await db.close();
    const before = snapshot(root);
    const result = armdb(['demo', 'data'], { cwd: root });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('data is not empty and is not a store armdb demo made');
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a non-empty directory that is no store, and creates no key file', () => {
    const root = tempDir('demo');
    fs.mkdirSync(path.join(root, 'photos'));
    fs.writeFileSync(path.join(root, 'photos', 'a.jpg'), 'not a store');
    const result = armdb(['demo', 'photos'], { cwd: root });
    expect(result.status).toBe(2);
    expect(fs.readdirSync(root)).toEqual(['photos']);
  });

  it('refuses an empty directory whose <dir>.key already exists (someone else’s key)', () => {
    const root = tempDir('demo');
    fs.mkdirSync(path.join(root, 'empty'));
    writeKeyFile(root, testKey(3), 'empty.key');
    const before = snapshot(root);
    const result = armdb(['demo', 'empty'], { cwd: root });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('empty.key exists but no demo store is beside it');
    expect(snapshot(root)).toEqual(before);
  });

  it('a parent directory that does not exist is a usage error (exit 2), not a raw ENOENT', () => {
    const root = tempDir('demo');
    const result = armdb(['demo', path.join(root, 'missing', 'x')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/armdb demo: directory .*missing does not exist/);
  });
});
