// Child of test/level/batch-crash.test.ts: writes batches to an ArmdbLevel from the build until it is
// killed. Batch g puts keys k00..k19, each value "g:" padded to 300 bytes (about 6 KiB a batch, more
// than the 4 KiB write buffer, so batches straddle pages that reach the disk before the batch ends).
// Prints "wrote g" after each batch and "synced g" after every 5th, which is written with
// { sync: true }. argv: directory.
import { ArmdbLevel } from '../../dist/level/index.js';

const [directory] = process.argv.slice(2);
// A fixed test key, shared with the test (never a real secret).
const key = new Uint8Array(32).fill(0x5a);
const db = new ArmdbLevel(directory, { encryption: { key }, writeBufferBytes: 4096, syncIntervalMs: 0, autoCompact: false });
await db.open();
const keys = Array.from({ length: 20 }, (_, index) => `k${String(index).padStart(2, '0')}`);
process.stdout.write('ready\n');
for (let generation = 1; ; generation++) {
  const value = `${generation}:`.padEnd(300, '.');
  const sync = generation % 5 === 0;
  await db.batch(
    keys.map((key) => ({ type: 'put', key, value })),
    { sync },
  );
  process.stdout.write(`${sync ? 'synced' : 'wrote'} ${generation}\n`);
}
