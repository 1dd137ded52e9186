/**
 * A real SIGKILL at every named crash point (src/engine/crash-points.ts): crash-point-child.mjs runs
 * store creation, synced rounds of writes (barriers, rotations, hints), compact(), rotateDataKey(),
 * compact({ reencrypt: true }) (crypto-shredding), changeKey() and close() through the built package
 * and kills itself at one point. The directory is then opened in process and must hold, for every
 * key, exactly the value of one round no older than the last acknowledged one; verify() ok; a second
 * open identical. Needs `npm run build` (skipped with a message otherwise).
 */
import { describe, it } from 'vitest';
import { CRASH_POINTS, type CrashPoint } from '../../src/engine/crash-points.js';
import { killAtPointAndCheck } from './crash-point-run.js';
import { DIST_ENTRY, distBuilt } from './kill-harness.js';

const built = distBuilt();
if (!built) console.warn(`test/crash/crash-points-kill.test.ts skipped: ${DIST_ENTRY} is missing; run \`npm run build\` first`);

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
      await killAtPointAndCheck(point, { pass: 1, afterAck, collection: 'VarMap' });
    });
  },
);
