/**
 * The child of import-crash.test.ts: installs a crash-point handler that kills this process with
 * SIGKILL at one named point (ARMDB_POINT, its ARMDB_POINT_PASS-th pass), then runs the built
 * `armdb` command with the arguments in ARMDB_IMPORT_ARGS (JSON) as if from the command line.
 * Writes `{"type":"point","name":…}` on stdout right before it dies there.
 */
import { writeSync } from 'node:fs';
import { setCrashPointHandler } from '../../dist/engine/crash-points.js';

const point = process.env.ARMDB_POINT;
const pass = Number(process.env.ARMDB_POINT_PASS ?? '1');
let seen = 0;
setCrashPointHandler((name) => {
  if (name === point && ++seen === pass) {
    writeSync(1, `${JSON.stringify({ type: 'point', name })}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
});
process.argv = [process.argv[0], 'armdb', ...JSON.parse(process.env.ARMDB_IMPORT_ARGS ?? '[]')];
await import('../../dist/cli/main.js');
