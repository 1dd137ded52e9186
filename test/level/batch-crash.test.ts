/**
 * A Level batch is all or nothing across a crash: a child (batch-crash-child.mjs, through the build)
 * writes batches that each overwrite the same 20 keys with a new generation, and is killed with
 * SIGKILL after a number of its output lines that varies per cycle (no sleeps). Reopened, the store
 * holds one generation in all 20 keys — never a mix — and at least the last one acknowledged as
 * synced. Needs `npm run build` (npm test does it); fails rather than skips without it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ArmdbLevel } from '../../src/level/index.js';
import { storesClosedAfterEach } from '../helpers/temp-dir.js';
import { writeAndKill } from './kill-child.js';

const CHILD = fileURLToPath(new URL('./batch-crash-child.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/level/index.js', import.meta.url));
const { tempDir, track } = storesClosedAfterEach('level-crash');

it('a batch is all or nothing after SIGKILL, and synced batches survive', { timeout: 300_000 }, async () => {
  expect(existsSync(BUILT), `${BUILT} is missing: run "npm run build" first`).toBe(true);
  for (const lines of [0, 1, 3, 7, 12, 19, 26, 33]) {
    const directory = tempDir();
    const synced = await writeAndKill(CHILD, directory, lines);
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
