// A replicated leader in a process of its own, for the SIGKILL test (primary-kill.test.ts): it puts
// key after key, each followed by a sync with ack 'replicated', and prints the index of every write
// whose sync resolved, until it is killed. It opens the store through dist/ (run `npm run build`).
import { writeSync } from 'node:fs';
import { keys, VarMap } from '../../dist/index.js';
import { natsReplication } from '../../dist/replication/index.js';

const environment = process.env;
const key = new Uint8Array(Buffer.from(environment.ARMDB_TEST_KEY, 'hex'));
const db = await VarMap.open(environment.ARMDB_TEST_DIRECTORY, {
  keySize: 16,
  encryption: { key },
  shards: 2,
  syncIntervalMs: 0,
  autoCompact: false,
  replication: natsReplication({
    servers: environment.ARMDB_TEST_SERVERS.split(','),
    name: environment.ARMDB_TEST_NAME,
    role: 'leader',
    ack: 'replicated',
    holder: 'child',
    ...(environment.ARMDB_TEST_LEASE_TTL_MS === undefined ? {} : { leaseTtlMs: Number(environment.ARMDB_TEST_LEASE_TTL_MS) }),
  }),
});
writeSync(1, 'open\n');
for (let index = 0; ; index++) {
  db.put(keys.fromString(`acked-${index}`, 16), new TextEncoder().encode(`value ${index}`));
  await db.sync();
  writeSync(1, `acked ${index}\n`);
}
