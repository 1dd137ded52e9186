/**
 * A real SIGKILL at every named crash point (src/engine/crash-points.ts): crash-point-child.mjs runs
 * store creation, synced rounds of writes (barriers, rotations, hints), compact(), rotateDataKey(),
 * compact({ reencrypt: true }) (crypto-shredding), changeKey() and close() through the built package
 * and kills itself at one point. The directory is then opened in process and must hold, for every
 * key, exactly the value of one round no older than the last acknowledged one; verify() ok; a second
 * open identical. Needs `npm run build` (skipped with a message otherwise).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VarMap } from '../../src/collections/var-map.js';
import { CRASH_POINTS, type CrashPoint } from '../../src/engine/crash-points.js';
import { ArmdbError } from '../../src/errors.js';
import { KEYS, OPTIONS, keyOf, valueFor } from './crash-point-child.mjs';
import { DIST_ENTRY, distBuilt } from './kill-harness.js';
import { temporaryDirectory } from './scenario.js';

const CHILD = fileURLToPath(new URL('./crash-point-child.mjs', import.meta.url));
const built = distBuilt();
if (!built) console.warn(`test/crash/crash-points-kill.test.ts skipped: ${DIST_ENTRY} is missing; run \`npm run build\` first`);

type Line =
  | { type: 'ack'; round: number }
  | { type: 'key-changed' }
  | { type: 'point'; name: string }
  | { type: 'done' }
  | { type: 'fatal'; message: string };

function runChild(environment: Record<string, string>): Promise<{ lines: Line[]; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], { env: { ...process.env, ...environment }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      const lines = stdout
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Line);
      resolve({ lines, signal, stderr });
    });
  });
}

const ROUNDS = 6;
const VALUES = Array.from({ length: ROUNDS }, (_, round) => Array.from({ length: KEYS }, (_, k) => valueFor(round, k)));

/** The round whose value `value` is for key k, or -1 if it is none of them. */
function roundOf(k: number, value: Uint8Array): number {
  for (let round = 0; round < ROUNDS; round++) if (Buffer.compare(VALUES[round]![k]!, value) === 0) return round;
  return -1;
}

async function open(directory: string, keys: readonly Uint8Array[]): Promise<VarMap> {
  for (const [index, key] of keys.entries()) {
    try {
      return await VarMap.open(directory, { ...OPTIONS, encryption: { key } });
    } catch (error) {
      if (index === keys.length - 1 || !(error instanceof ArmdbError) || error.code !== 'ARMDB_WRONG_KEY') throw error;
    }
  }
  throw new Error('unreachable');
}

/** Problems with the store after the kill: each key holds one round's value, ≥ the last acknowledged round. */
async function check(directory: string, keys: readonly Uint8Array[], acknowledged: number): Promise<string[]> {
  const problems: string[] = [];
  const contents: (number | undefined)[] = [];
  const map = await open(directory, keys);
  try {
    for (let k = 0; k < KEYS; k++) {
      const value = map.get(keyOf(k));
      const round = value === undefined ? undefined : roundOf(k, value);
      contents.push(round);
      if (round === -1) problems.push(`key ${k} holds ${value!.length} bytes no round wrote (torn or foreign)`);
      else if (acknowledged >= 0 && (round === undefined || round < acknowledged))
        problems.push(`key ${k} holds ${round === undefined ? 'nothing' : `round ${round}`}; round ${acknowledged} was acknowledged`);
    }
    const report = await map.verify();
    if (!report.ok) problems.push(`verify(): ${JSON.stringify(report.failures.slice(0, 3))}`);
  } finally {
    await map.close();
  }
  const again = await open(directory, keys);
  try {
    let differing = 0;
    for (let k = 0; k < KEYS; k++) {
      const value = again.get(keyOf(k));
      if ((value === undefined ? undefined : roundOf(k, value)) !== contents[k]) differing++;
    }
    if (differing > 0) problems.push(`a second open gave other contents: ${differing} keys differ`);
  } finally {
    await again.close();
  }
  return problems;
}

describe.skipIf(!built)(
  built ? 'SIGKILL at every named crash point' : 'SIGKILL at every named crash point (SKIPPED: run `npm run build` first)',
  () => {
    // The first pass of each point, and the first pass once round 0 is acknowledged (the first passes of
    // the barrier, MANIFEST and KEYRING points fall in the store's creation, with nothing at stake).
    const cases = CRASH_POINTS.flatMap((point: CrashPoint) => [
      { point, afterAck: false, when: 'at its first pass' },
      ...(point.startsWith('create:') ? [] : [{ point, afterAck: true, when: 'at its first pass after an acknowledged sync' }]),
    ]);
    it.each(cases)('killed at $point $when: every acknowledged round survives, nothing torn, verify() ok', async ({ point, afterAck }) => {
      const made = temporaryDirectory('kill-point');
      try {
        const first = new Uint8Array(randomBytes(32));
        const second = new Uint8Array(randomBytes(32));
        const outcome = await runChild({
          ARMDB_POINT_DIR: made.path,
          ARMDB_POINT: point,
          ARMDB_POINT_PASS: '1',
          ARMDB_POINT_AFTER_ACK: afterAck ? '1' : '0',
          ARMDB_POINT_KEYS: Buffer.concat([first, second]).toString('hex'),
        });
        const fatal = outcome.lines.find((line) => line.type === 'fatal');
        expect(fatal, outcome.stderr).toBeUndefined();
        // Every point is reached by the scenario, and the child died there.
        expect(outcome.lines.at(-1)).toEqual({ type: 'point', name: point });
        expect(outcome.signal).toBe('SIGKILL');
        let acknowledged = -1;
        let keyChanged = false;
        for (const line of outcome.lines) {
          if (line.type === 'ack') acknowledged = line.round;
          if (line.type === 'key-changed') keyChanged = true;
        }
        if (afterAck) expect(acknowledged).toBeGreaterThanOrEqual(0);
        // After changeKey resolved only the second key may open the store; before, either (it may be in place).
        const keys = keyChanged ? [second] : [second, first];
        expect(await check(made.path, keys, acknowledged)).toEqual([]);
      } finally {
        made.cleanup();
      }
    });
  },
);
