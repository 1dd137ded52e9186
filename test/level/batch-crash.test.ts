/**
 * A Level batch is all or nothing across a crash: a child (batch-crash-child.mjs, through the build)
 * writes batches that each overwrite the same 20 keys with a new generation, and is killed with
 * SIGKILL after a number of its output lines that varies per cycle (no sleeps). Reopened, the store
 * holds one generation in all 20 keys — never a mix — and at least the last one acknowledged as
 * synced. Needs `npm run build` (npm test does it); fails rather than skips without it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ArmdbLevel } from '../../src/level/index.js';
import { storesClosedAfterEach } from '../helpers/temp-dir.js';

const CHILD = fileURLToPath(new URL('./batch-crash-child.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/level/index.js', import.meta.url));
const { tempDir, track } = storesClosedAfterEach('level-crash');

/** Runs the child until it has printed `lines` lines after "ready", kills it; the last synced generation. */
function writeAndKill(directory: string, lines: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, directory], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let seen = -1;
    let synced = 0;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        seen++;
        const match = /^synced (\d+)$/.exec(line);
        if (match !== null) synced = Number(match[1]);
        if (seen >= lines && child.exitCode === null) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) =>
      signal === 'SIGKILL' ? resolve(synced) : reject(new Error(`child ended without the kill: ${stderr}`)),
    );
  });
}

it('a batch is all or nothing after SIGKILL, and synced batches survive', { timeout: 300_000 }, async () => {
  expect(existsSync(BUILT), `${BUILT} is missing: run "npm run build" first`).toBe(true);
  for (const lines of [0, 1, 3, 7, 12, 19, 26, 33]) {
    const directory = tempDir();
    const synced = await writeAndKill(directory, lines);
    const db = track(new ArmdbLevel(directory, { encryption: { key: new Uint8Array(32).fill(0x5a) } }));
    const generations = new Set((await db.values().all()).map((value) => Number(value.split(':')[0])));
    const keys = await db.keys().all();
    expect(keys.length === 0 || keys.length === 20, `after ${lines} lines: ${keys.length} keys`).toBe(true);
    expect(generations.size, `after ${lines} lines: generations ${[...generations].join(', ')}`).toBeLessThanOrEqual(1);
    const [generation = 0] = generations;
    expect(generation).toBeGreaterThanOrEqual(synced);
    await db.close();
  }
});
