/**
 * What the SIGKILL crash-point tests share (crash-points-kill.test.ts, key-order-compaction-kill.test.ts):
 * running crash-point-child.mjs, and the check of the store it leaves: every key holds exactly the
 * value of one round no older than the last acknowledged one; verify() ok; a second open identical;
 * for a Tree, a full range() yields exactly the keys and values get() gives, in key order.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { VarMap } from '../../src/collections/var-map.js';
import { VarTree } from '../../src/collections/var-tree.js';
import { ArmdbError } from '../../src/errors.js';
import { KEYS, OPTIONS, keyOf, valueFor } from './crash-point-child.mjs';
import { temporaryDirectory } from './scenario.js';

const CHILD = fileURLToPath(new URL('./crash-point-child.mjs', import.meta.url));

/** The collection the child writes. */
export type PointCollection = 'VarMap' | 'VarTree';

export type Line =
  | { type: 'ack'; round: number }
  | { type: 'key-changed' }
  | { type: 'point'; name: string }
  | { type: 'done' }
  | { type: 'fatal'; message: string };

export function runChild(environment: Record<string, string>): Promise<{ lines: Line[]; signal: NodeJS.Signals | null; stderr: string }> {
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

async function open(directory: string, keys: readonly Uint8Array[], collection: PointCollection): Promise<VarMap | VarTree> {
  for (const [index, key] of keys.entries()) {
    try {
      const options = { ...OPTIONS, encryption: { key } };
      return collection === 'VarTree' ? await VarTree.open(directory, options) : await VarMap.open(directory, options);
    } catch (error) {
      if (index === keys.length - 1 || !(error instanceof ArmdbError) || error.code !== 'ARMDB_WRONG_KEY') throw error;
    }
  }
  throw new Error('unreachable');
}

/** Problems with the store after the kill: each key holds one round's value, ≥ the last acknowledged round. */
export async function check(
  directory: string,
  keys: readonly Uint8Array[],
  acknowledged: number,
  collection: PointCollection = 'VarMap',
): Promise<string[]> {
  const problems: string[] = [];
  const contents: (number | undefined)[] = [];
  const map = await open(directory, keys, collection);
  try {
    for (let k = 0; k < KEYS; k++) {
      const value = map.get(keyOf(k));
      const round = value === undefined ? undefined : roundOf(k, value);
      contents.push(round);
      if (round === -1) problems.push(`key ${k} holds ${value!.length} bytes no round wrote (torn or foreign)`);
      else if (acknowledged >= 0 && (round === undefined || round < acknowledged))
        problems.push(`key ${k} holds ${round === undefined ? 'nothing' : `round ${round}`}; round ${acknowledged} was acknowledged`);
    }
    if (map instanceof VarTree) {
      const byKey = Array.from({ length: KEYS }, (_, k) => ({ key: keyOf(k), value: map.get(keyOf(k)) }))
        .filter((entry) => entry.value !== undefined)
        .sort((left, right) => Buffer.compare(left.key, right.key));
      const ranged = [...map.range()];
      const same =
        ranged.length === byKey.length &&
        ranged.every(([key, value], at) => Buffer.compare(key, byKey[at]!.key) === 0 && Buffer.compare(value, byKey[at]!.value!) === 0);
      if (!same) problems.push(`range() yields ${ranged.length} entries that differ from get()'s ${byKey.length}`);
    }
    const report = await map.verify();
    if (!report.ok) problems.push(`verify(): ${JSON.stringify(report.failures.slice(0, 3))}`);
  } finally {
    await map.close();
  }
  const again = await open(directory, keys, collection);
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

/**
 * Runs the child until it kills itself at pass `pass` of `point` (counted from round 0's
 * acknowledgement on with `afterAck`), then checks the store it left (see {@link check}).
 */
export async function killAtPointAndCheck(
  point: string,
  { pass, afterAck, collection }: { pass: number; afterAck: boolean; collection: PointCollection },
): Promise<void> {
  const made = temporaryDirectory('kill-point');
  try {
    const first = new Uint8Array(randomBytes(32));
    const second = new Uint8Array(randomBytes(32));
    const outcome = await runChild({
      ARMDB_POINT_DIR: made.path,
      ARMDB_POINT: point,
      ARMDB_POINT_PASS: String(pass),
      ARMDB_POINT_COLLECTION: collection,
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
    expect(await check(made.path, keys, acknowledged, collection)).toEqual([]);
  } finally {
    made.cleanup();
  }
}
