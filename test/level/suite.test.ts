/**
 * abstract-level's own compliance suite, unmodified, against the built ArmdbLevel: runs
 * test/level/suite.mjs (tape over node_modules/abstract-level/test) in a child process and reads its
 * TAP summary. Needs `npm run build` first (npm test does it); without dist/level it fails rather than
 * skip, so the suite cannot silently stop running.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const RUNNER = fileURLToPath(new URL('./suite.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/level/index.js', import.meta.url));

function run(): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

function summary(output: string, name: string): number | undefined {
  const match = new RegExp(`^# ${name}\\s+(\\d+)$`, 'm').exec(output);
  return match === null ? undefined : Number(match[1]);
}

test('ArmdbLevel passes abstract-level/test: every assertion, none skipped', { timeout: 600_000 }, async () => {
  expect(existsSync(BUILT), `${BUILT} is missing: run "npm run build" first`).toBe(true);
  const { status, output } = await run();
  const failures = output.split('\n').filter((line) => line.startsWith('not ok'));
  expect(failures, output.slice(-4000)).toEqual([]);
  expect(status).toBe(0);
  const tests = summary(output, 'tests');
  const passed = summary(output, 'pass');
  expect(summary(output, 'fail')).toBeUndefined();
  expect(passed).toBe(tests);
  // abstract-level 3.1.1 has 5132 assertions for what ArmdbLevel's `supports` claims (twice: on the
  // database and on a sublevel); far fewer means a part of the suite stopped running.
  expect(passed).toBeGreaterThanOrEqual(5100);
  expect(output).not.toMatch(/# (SKIP|TODO)/i);
  // The parts gated by `supports` ran: implicit and explicit snapshots, getSync, has, seek.
  for (const title of [
    '# delete key after snapshotting',
    '# simple getSync()',
    '# simple has()',
    '# iterator().seek() respects snapshot',
    '# get() entries from multiple snapshots',
    '# iterator(), keys(), values() with snapshot',
    '# clear() entries from snapshot',
    '# snapshot is closed along with iterator',
  ])
    expect(output).toContain(title);
  console.log(`abstract-level/test: ${passed} of ${tests} assertions passed`);
});
