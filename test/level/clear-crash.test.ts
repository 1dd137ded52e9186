/**
 * A Level clear() is all or nothing across a crash: a child (clear-crash-child.mjs, through the
 * build) fills a range of 1500 keys with one batch and clears it, over and over, and is killed with
 * SIGKILL after a number of its output lines that varies per cycle (no sleeps). Reopened, the range
 * holds all 1500 keys of one generation or none — never a part — and nothing of a generation whose
 * clear was synced. Needs `npm run build` (npm test does it); fails rather than skips without it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ArmdbLevel } from '../../src/level/index.js';
import { storesClosedAfterEach } from '../helpers/temp-dir.js';
import { writeAndKill } from './kill-child.js';

const CHILD = fileURLToPath(new URL('./clear-crash-child.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/level/index.js', import.meta.url));
const { tempDir, track } = storesClosedAfterEach('level-clear-crash');

it('a clear() is all or nothing after SIGKILL, and a synced clear stays done', { timeout: 300_000 }, async () => {
  expect(existsSync(BUILT), `${BUILT} is missing: run "npm run build" first`).toBe(true);
  for (const lines of [1, 2, 3, 4, 6, 9, 11, 14, 17, 22, 25, 31]) {
    const directory = tempDir();
    const synced = await writeAndKill(CHILD, directory, lines);
    const db = track(new ArmdbLevel(directory, { encryption: { key: new Uint8Array(32).fill(0x5b) } }));
    const entries = await db.iterator({ gte: 'k', lt: 'l' }).all();
    const generations = new Set(entries.map(([, value]) => Number(value.split(':')[0])));
    expect(entries.length === 0 || entries.length === 1500, `after ${lines} lines: ${entries.length} keys of the range`).toBe(true);
    expect(generations.size, `after ${lines} lines: generations ${[...generations].join(', ')}`).toBeLessThanOrEqual(1);
    const [generation] = generations;
    // A generation still present was written after the last synced clear.
    if (generation !== undefined) expect(generation).toBeGreaterThan(synced);
    await db.close();
  }
});
