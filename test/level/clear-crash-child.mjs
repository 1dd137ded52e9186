// Child of test/level/clear-crash.test.ts: fills a range with a batch, then clears it, over and over,
// until it is killed. Generation g puts keys k0000..k1499 (values "g:" padded to 40 bytes) in one
// batch, prints "wrote g", clears the range with db.clear({ gte: 'k', lt: 'l' }) — 1500 tombstones,
// about 130 KiB, far more than the 4 KiB write buffer, so the clear's pages reach the disk before it
// ends — and prints "cleared g", or "synced g" after every 5th clear, which is made durable with
// { sync: true }. argv: directory.
import { ArmdbLevel } from '../../dist/level/index.js';

const [directory] = process.argv.slice(2);
// A fixed test key, shared with the test (never a real secret).
const key = new Uint8Array(32).fill(0x5b);
const db = new ArmdbLevel(directory, { encryption: { key }, writeBufferBytes: 4096, syncIntervalMs: 0, autoCompact: false });
await db.open();
const keys = Array.from({ length: 1500 }, (_, index) => `k${String(index).padStart(4, '0')}`);
process.stdout.write('ready\n');
for (let generation = 1; ; generation++) {
  const value = `${generation}:`.padEnd(40, '.');
  await db.batch(keys.map((key) => ({ type: 'put', key, value })));
  process.stdout.write(`wrote ${generation}\n`);
  const sync = generation % 5 === 0;
  await db.clear({ gte: 'k', lt: 'l', sync });
  process.stdout.write(`${sync ? 'synced' : 'cleared'} ${generation}\n`);
}
