/**
 * The long version of kill.test.ts (`npm run slow`): 300 SIGKILL cycles on one store, each child
 * recovering what the previous kill left, plus 100 kills of fresh stores; then the same 300 cycles with
 * background compaction on; then 1,000 cycles with overlapping compactions beside two busy loops. See kill-harness.ts. ARMDB_KILL_VERBOSE=1 prints a line per cycle.
 */
import { describe, expect, it } from 'vitest';
import { DIST_ENTRY, distBuilt, runKillCycles } from './kill-harness.js';

const SEED = process.env['ARMDB_KILL_SEED'] === undefined ? 0x534c4f57 : Number(process.env['ARMDB_KILL_SEED']);
const built = distBuilt();
if (!built) console.warn(`test/crash/kill.slow.test.ts skipped: ${DIST_ENTRY} is missing; run \`npm run build\` first`);
const log = (line: string): void => {
  if (process.env['ARMDB_KILL_VERBOSE'] === '1') console.log(line);
};

describe.skipIf(!built)(
  built ? 'SIGKILL crash cycles (long)' : 'SIGKILL crash cycles (long) (SKIPPED: dist/index.js is missing; run `npm run build` first)',
  () => {
    it('100 fresh stores, each killed at a random point: the first open is correct', async () => {
      const report = await runKillCycles({ cycles: 100, seed: SEED, chained: false, log });
      expect(report.cycles).toBe(100);
    });

    it('300 cycles on one store: kill, recover and check, reopen, restart the writer on the recovered store', async () => {
      const report = await runKillCycles({ cycles: 300, seed: SEED, log });
      console.log(`300 chained cycles: ${report.acknowledgedOps} ops acknowledged (0 lost)`);
      expect(report.cycles).toBe(300);
      expect(report.acknowledgedOps).toBeGreaterThan(0);
    });

    // Background compaction on: kills land inside compactions and in the recovery of compacted stores
    // (a recovery bug there once made stores refuse to open within 20 cycles).
    it('300 cycles on one store with autoCompact on', async () => {
      const report = await runKillCycles({ cycles: 300, seed: SEED + 1, autoCompact: true, log });
      expect(report.cycles).toBe(300);
    });

    // The security review's campaign, kept: SIGKILL cycles with compaction and data-key rotation while
    // every seal of every child is logged; no (file key, nonce) pair may appear twice.
    it('200 cycles with compaction and rotateDataKey, every seal logged: no (key, nonce) pair reused', async () => {
      const report = await runKillCycles({
        cycles: 200,
        seed: SEED + 4,
        autoCompact: true,
        childCompactEveryBatches: 4,
        childRotateEveryBatches: 7,
        logSeals: true,
        log,
      });
      console.log(
        `seal-logging cycles: ${report.seals} seals over ${report.fileKeys} file keys, no pair reused; ${report.acknowledgedOps} ops acknowledged`,
      );
      expect(report.cycles).toBe(200);
      expect(report.seals).toBeGreaterThan(0);
      expect(report.fileKeys).toBeGreaterThan(report.cycles);
    });

    // The figure: at least 1,000 cycles with autoCompact, on a machine whose CPUs are busy (two
    // spinning processes beside the child and the checks), with explicit compactions overlapping the
    // writes and barriers so that adoptions land inside barriers.
    it(
      '1,000 cycles with autoCompact and overlapping compactions, beside two busy loops',
      async () => {
        const report = await runKillCycles({
          cycles: 1000,
          seed: SEED + 3,
          autoCompact: true,
          childCompactEveryBatches: 3,
          busyLoops: 2,
          log,
        });
        console.log(
          `1,000 busy cycles: ${report.acknowledgedOps} ops acknowledged (0 lost), ${report.reportedOps} reported, ${report.adopts} adopts, ${report.adoptsDuringBarrier} during a barrier, ${report.tornRecoveries} torn recoveries`,
        );
        expect(report.cycles).toBe(1000);
        expect(report.adoptsDuringBarrier).toBeGreaterThan(0);
      },
      120 * 60_000,
    );
  },
);
