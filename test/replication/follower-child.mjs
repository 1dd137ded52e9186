// A replicated follower in a process of its own, for the restart and trimmed-stream tests
// (follower-restart.test.ts): once open it prints `applied <sequence>` each time it has caught up
// with the stream, and `error <code>` if replication stops, until it is killed. It opens the store
// through dist/ (run `npm run build`).
import { writeSync } from 'node:fs';
import { VarMap } from '../../dist/index.js';
import { natsReplication } from '../../dist/replication/index.js';

const environment = process.env;
const key = new Uint8Array(Buffer.from(environment.ARMDB_TEST_KEY, 'hex'));
const db = await VarMap.open(environment.ARMDB_TEST_DIRECTORY, {
  keySize: 16,
  encryption: { key },
  shards: 2,
  syncIntervalMs: 0,
  autoCompact: false,
  writeBufferBytes: 8192,
  replication: natsReplication({ servers: environment.ARMDB_TEST_SERVERS.split(','), name: environment.ARMDB_TEST_NAME, role: 'follower' }),
});
writeSync(1, 'open\n');
let last = -1;
for (;;) {
  try {
    await db.replication.caughtUp();
  } catch (error) {
    writeSync(1, `error ${error?.code ?? error}\n`);
    process.exit(1);
  }
  const applied = db.replication.status().appliedSequence;
  if (applied !== last) writeSync(1, `applied ${applied}\n`);
  last = applied;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
