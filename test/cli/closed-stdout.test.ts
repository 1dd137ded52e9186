/**
 * A reader that stops early (issue 15, item 8): `armdb info … | head -1` and `armdb export … | head -2`
 * must end quietly with exit 0, as `git log | head` does, not with an EPIPE stack trace and exit 1.
 * The test closes its end of the pipe itself, before or after reading, so EPIPE is certain, not raced.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { BUILT, CLI, removeTempDirs, tempDir, testKey, writeKeyFile } from './run.js';

const KEY = testKey(15);
let directory = '';
let keyFile = '';

/** Runs `armdb …args`, closing stdout after `linesToRead` lines (0: before any is read). */
function runAndCloseStdout(
  args: readonly string[],
  linesToRead: number,
): Promise<{ status: number | null; stderr: string; lines: number }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let lines = 0;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr += text;
  });
  if (linesToRead === 0) child.stdout.destroy();
  else
    child.stdout.on('data', (chunk: Buffer) => {
      lines += chunk.filter((byte) => byte === 0x0a).length;
      if (lines >= linesToRead) child.stdout.destroy();
    });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, lines }));
  });
}

describe.skipIf(!BUILT)('a closed standard output', () => {
  beforeAll(async () => {
    const root = tempDir('epipe');
    keyFile = writeKeyFile(root, KEY);
    directory = path.join(root, 'store');
    const db = await VarMap.open(directory, { keySize: 16, encryption: { key: KEY }, syncIntervalMs: 0 });
    for (let index = 0; index < 20_000; index++) db.put(keys.fromString(`k${index}`, 16), new Uint8Array(64).fill(index & 0xff));
    await db.close();
  });
  afterAll(removeTempDirs);

  it('info whose reader is gone before it writes exits 0 and prints nothing on stderr', async () => {
    const result = await runAndCloseStdout(['info', directory, '--key-file', keyFile], 0);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('export | head -2: export stops at its next write, exits 0, and prints nothing on stderr', async () => {
    const result = await runAndCloseStdout(['export', directory, '--key-file', keyFile, '--quiet'], 2);
    expect(result.lines).toBeGreaterThanOrEqual(2);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('export whose reader is gone before it writes exits 0', async () => {
    const result = await runAndCloseStdout(['export', directory, '--key-file', keyFile, '--quiet'], 0);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
