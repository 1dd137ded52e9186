/**
 * A real SIGKILL during the key-order compaction of a Tree (src/engine/compaction.ts): the child of
 * crash-points-kill.test.ts writes a VarTree out of key order, so its compact() and
 * compact({ reencrypt: true }) rewrite the files with their live records in key order; it kills
 * itself at each compaction crash point of either run. The store must hold every acknowledged round,
 * nothing torn, verify() ok, a second open identical, and range() must agree with get().
 * Needs `npm run build` (skipped with a message otherwise).
 */
import { describe, it } from 'vitest';
import { CRASH_POINTS } from '../../src/engine/crash-points.js';
import { killAtPointAndCheck } from './crash-point-run.js';
import { DIST_ENTRY, distBuilt } from './kill-harness.js';

const built = distBuilt();
if (!built) console.warn(`test/crash/key-order-compaction-kill.test.ts skipped: ${DIST_ENTRY} is missing; run \`npm run build\` first`);

describe.skipIf(!built)(
  built ? 'SIGKILL during a key-order compaction' : 'SIGKILL during a key-order compaction (SKIPPED: run `npm run build` first)',
  () => {
    // Pass 1 falls in the explicit compact(); pass 2 in compact({ reencrypt: true }) after
    // rotateDataKey() (for 'compaction:input-deleted', the first run's second input).
    const cases = CRASH_POINTS.filter((point) => point.startsWith('compaction:')).flatMap((point) => [
      { point, pass: 1 },
      { point, pass: 2 },
    ]);
    it.each(cases)(
      'VarTree killed at pass $pass of $point: every acknowledged round survives, range() agrees with get()',
      async ({ point, pass }) => {
        await killAtPointAndCheck(point, { pass, afterAck: true, collection: 'VarTree' });
      },
    );
  },
);
