/**
 * `armdb import --create` killed (SIGKILL) at the named crash points it passes: creating the store
 * (KEYRING, then MANIFEST), and close() — sealing the active files, the barrier that makes every
 * imported record durable, the hints, the last MANIFEST. After the kill the directory holds either no
 * store (killed before its first MANIFEST) or one that opens, whose every present key holds exactly
 * its imported value, and which holds all of them once close()'s barrier was done. verify() is ok.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VarMap } from '../../src/collections/var-map.js';
import type { CrashPoint } from '../../src/engine/crash-points.js';
import { patternBytes } from '../helpers/store.js';
import { distBuilt } from './kill-harness.js';
import { temporaryDirectory } from './scenario.js';

const CHILD = fileURLToPath(new URL('./import-crash-child.mjs', import.meta.url));
const RECORDS = 2000;

function keyOf(index: number): Uint8Array {
  const key = new Uint8Array(16);
  new DataView(key.buffer).setUint32(0, index * 2654435761);
  new DataView(key.buffer).setUint32(12, index);
  return key;
}
const valueFor = (index: number): Uint8Array => patternBytes(40 + (index % 300), index);

function runChild(
  args: string[],
  point: CrashPoint,
  pass: number,
): Promise<{ stdout: string; stderr: string; signal: NodeJS.Signals | null; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { ...process.env, ARMDB_POINT: point, ARMDB_POINT_PASS: String(pass), ARMDB_IMPORT_ARGS: JSON.stringify(args) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ stdout, stderr, signal, code }));
  });
}

// Every point `armdb import --create` passes, in order.
// The MANIFEST is replaced in the store's creation; close()'s barrier appends a record to its log
// (docs/format.md §7.7): durable once the append's fsync is done.
const POINTS: { point: CrashPoint; pass: number; durable: boolean }[] = [
  { point: 'create:keyring-written', pass: 1, durable: false },
  { point: 'manifest:renamed', pass: 1, durable: false },
  { point: 'create:manifest-written', pass: 1, durable: false },
  { point: 'close:active-files-sealed', pass: 1, durable: false },
  { point: 'barrier:files-synced', pass: 1, durable: false },
  { point: 'manifest:appended', pass: 1, durable: false },
  { point: 'manifest:append-synced', pass: 1, durable: true },
  { point: 'close:barrier-done', pass: 1, durable: true },
  { point: 'hint:renamed', pass: 1, durable: true },
  { point: 'close:hints-written', pass: 1, durable: true },
];

describe.skipIf(!distBuilt())('armdb import killed at its crash points', () => {
  it.each(POINTS)(
    'killed at $point (pass $pass): no store, or one holding only imported values (all of them once durable: $durable)',
    async ({ point, pass, durable }) => {
      const made = temporaryDirectory('import-crash');
      try {
        const key = new Uint8Array(randomBytes(32));
        const keyFile = path.join(made.path, 'import.key');
        writeFileSync(keyFile, key, { mode: 0o600 });
        chmodSync(keyFile, 0o600);
        const input = path.join(made.path, 'input.jsonl');
        const lines: string[] = [];
        for (let index = 0; index < RECORDS; index++)
          lines.push(
            JSON.stringify({ key: Buffer.from(keyOf(index)).toString('hex'), value: Buffer.from(valueFor(index)).toString('hex') }),
          );
        writeFileSync(input, `${lines.join('\n')}\n`);
        const store = path.join(made.path, 'store');
        const outcome = await runChild(
          ['import', store, '--create', '--key-size', '16', '--shards', '2', '--key-file', keyFile, '--in', input, '--quiet'],
          point,
          pass,
        );
        expect(outcome.stderr).toBe('');
        expect(outcome.stdout.trim().split('\n').at(-1)).toBe(JSON.stringify({ type: 'point', name: point }));
        expect(outcome.signal).toBe('SIGKILL');
        if (!existsSync(path.join(store, 'MANIFEST'))) {
          expect(durable).toBe(false);
          return;
        }
        const db = await VarMap.open(store, { keySize: 16, shards: 2, encryption: { key } });
        try {
          let present = 0;
          for (let index = 0; index < RECORDS; index++) {
            const value = db.get(keyOf(index));
            if (value === undefined) continue;
            present++;
            expect(value).toEqual(valueFor(index));
          }
          expect(db.size).toBe(present);
          if (durable) expect(present).toBe(RECORDS);
          expect((await db.verify()).ok).toBe(true);
        } finally {
          await db.close();
        }
      } finally {
        made.cleanup();
      }
    },
  );
});
