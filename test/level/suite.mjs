// Runs abstract-level's own compliance suite (node_modules/abstract-level/test), unmodified, with
// tape against ArmdbLevel from the build, imported as 'armdb/level'. A fresh store in a new temporary directory
// per database the suite asks for; all of them removed at exit. Writes TAP to stdout; the exit code
// is tape's (non-zero on any failed assertion). test/level/suite.test.ts runs this and reads the
// summary.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import suite from 'abstract-level/test/index.js';
import test from 'tape';
// Through the package's own exports map ("./level" → dist/level/index.js), as users import it.
import { ArmdbLevel } from 'armdb/level';

// Level's suite writes keys of up to 108 bytes (nested sublevel prefixes): 128-byte armdb keys hold 127.
const keySize = 128;
const key = new Uint8Array(randomBytes(32));
const root = mkdtempSync(join(tmpdir(), 'armdb-level-suite-'));
let count = 0;

test.onFinish(() => rmSync(root, { recursive: true, force: true }));

suite({
  test,
  factory(options) {
    return new ArmdbLevel(join(root, `db-${count++}`), { encryption: { key }, keySize, syncIntervalMs: 0, ...options });
  },
});
