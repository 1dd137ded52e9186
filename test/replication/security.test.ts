/**
 * What reaches NATS, over a real 3-node JetStream cluster: no store key, passphrase, record key or
 * plaintext value appears anywhere under the servers' storage directories (the stream, the lease and
 * history buckets, and the object store of snapshots); and a forged or replayed
 * message stops replication with a typed error while the replica keeps serving its last good state.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { decodePart, encodePart } from '../../src/replication/message.js';
import { testKey } from '../helpers/bytes.js';
import { filesOf, storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

let cluster: NatsCluster;
let workDirectory: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-security-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

/** Every byte of every file under `root` whose path contains `within` (default: all), one buffer per file. */
function everyFile(root: string, within = ''): Buffer[] {
  const contents: Buffer[] = [];
  const walk = (directory: string): void => {
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      const absolute = path.join(directory, entry.name);
      if (entry.isDirectory()) walk(absolute);
      else if (entry.isFile() && absolute.includes(within)) contents.push(fs.readFileSync(absolute));
    }
  };
  walk(root);
  return contents;
}

const foundIn = (contents: readonly Buffer[], needle: Uint8Array): boolean => contents.some((bytes) => bytes.indexOf(needle) >= 0);

describe('what NATS stores', () => {
  test.each(['key', 'passphrase'] as const)('holds no secret and no plaintext (%s)', async (kind) => {
    const key = testKey(41);
    const passphrase = 'replication-passphrase-Zq8';
    const encryption = kind === 'key' ? { key } : { passphrase, scryptLogN: 10 };
    const name = `secrets-${kind}`;
    const options = { ...storeOptions, encryption };
    const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), {
      ...options,
      // Object-store snapshots at every batch: the scan covers them too.
      replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated', snapshotEveryBytes: 1 }),
    });
    const follower = await VarMap.open(path.join(workDirectory, `${name}-b`), {
      ...options,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });
    const recordKey = keys.fromString('record-key-Kx71q', 16);
    const value = text('PLAINTEXT-VALUE-must-never-reach-nats-'.repeat(20));
    try {
      for (let index = 0; index < 40; index++) leader.put(keys.fromString(`record-key-${index}-Kx`, 16), value);
      leader.put(recordKey, value);
      await leader.sync();
      await leader.replication.caughtUp();
      await follower.replication.caughtUp();
      expect(follower.get(recordKey)).toEqual(value);
    } finally {
      await follower.close();
      await leader.close();
    }
    const stored = everyFile(cluster.storageRoot);
    // What was shipped is there: the first sealed bytes of a data file (the search can find things).
    const dataFile = [...filesOf(path.join(workDirectory, `${name}-a`)).entries()].find(([file]) => file.endsWith('.data'))![1];
    expect(foundIn(stored, dataFile.subarray(64, 128))).toBe(true);
    // The object store holds the sealed files, and the history bucket its entries.
    expect(foundIn(everyFile(cluster.storageRoot, `OBJ_ARMDB_${name}`), dataFile.subarray(64, 128))).toBe(true);
    expect(everyFile(cluster.storageRoot, `KV_ARMDBH_${name}`).length).toBeGreaterThan(0);
    // And what must not be.
    expect(foundIn(stored, key)).toBe(false);
    expect(foundIn(stored, text(passphrase))).toBe(false);
    expect(foundIn(stored, recordKey)).toBe(false);
    expect(foundIn(stored, text('PLAINTEXT-VALUE'))).toBe(false);
    expect(foundIn(stored, text('record-key-'))).toBe(false);
  });
});

describe('a follower refuses', () => {
  test.each(['forged', 'replayed'] as const)('a %s message with a typed error and keeps serving reads', async (attack) => {
    const name = `refuse-${attack}`;
    const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated' }),
    });
    const follower = await VarMap.open(path.join(workDirectory, `${name}-b`), {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });
    const connection = await connect({ servers: cluster.servers });
    try {
      leader.put(keys.fromString('kept', 16), text('good value'));
      await leader.sync();
      await follower.replication.caughtUp();

      const jsm = await jetstreamManager(connection);
      const stream = `ARMDB_${name}`;
      const last = await jsm.streams.getMessage(stream, { seq: (await jsm.streams.info(stream)).state.last_seq });
      let bytes: Uint8Array;
      if (attack === 'replayed') bytes = last!.data;
      else {
        // The next batch in sequence, well formed, overwriting a page: but MAC'd under a key that is not the store's.
        const previous = decodePart(last!.data);
        const target = [...filesOf(path.join(workDirectory, `${name}-a`)).keys()].find((file) => file.endsWith('.data'))!;
        bytes = encodePart(
          { ...previous, batch: previous.batch + 1, part: 0, partCount: 1 },
          [{ kind: 'write', path: target, position: 0, bytes: new Uint8Array(4096).fill(0x5a) }],
          testKey(99),
        );
      }
      await jetstream(connection).publish(`armdb.${name}.files`, bytes);

      const expected = attack === 'forged' ? 'ARMDB_INTEGRITY' : 'ARMDB_ROLLBACK';
      await expect(follower.replication.caughtUp()).rejects.toMatchObject({ code: expected });
      expect(follower.replication.status().error).toMatchObject({ code: expected });
      // The last good state still serves reads, and nothing of the forgery reached the replica's files.
      expect(follower.get(keys.fromString('kept', 16))).toEqual(text('good value'));
      const leaderFiles = filesOf(path.join(workDirectory, `${name}-a`));
      for (const [file, content] of filesOf(path.join(workDirectory, `${name}-b`))) {
        if (file.endsWith('.data')) expect(content.equals(leaderFiles.get(file)!), file).toBe(true);
      }
    } finally {
      await connection.close();
      await follower.close();
      await leader.close();
    }
  });
});
