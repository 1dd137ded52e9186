/**
 * Object-store snapshots over a real 3-node JetStream cluster (docs/replication.md §Object-store
 * snapshots): a follower started after the stream was trimmed bootstraps from the object store and
 * ends byte-identical to the leader; a tampered object or a snapshot manifest replayed under a newer
 * name is refused with a typed error; restore to a time reads the manifest history and gives the
 * contents the model had then, and cannot reach behind the oldest snapshot kept.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { historyAt } from '../../src/replication/history.js';
import { natsReplication, restoreFromStream, verifyRestoredSnapshot } from '../../src/replication/index.js';

import { encryption, filesOf, storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const DIST_BUILT = fs.existsSync(fileURLToPath(new URL('../../dist/replication/bootstrap.js', import.meta.url)));

let cluster: NatsCluster;
let workDirectory: string;
let connection: NatsConnection;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-bootstrap-'));
  connection = await connect({ servers: cluster.servers });
});

afterAll(async () => {
  await connection?.close();
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

type Model = Map<string, string>;

/** One round of puts and deletes on the leader and the model, then a sync. */
async function round(leader: VarMap, model: Model, number: number, keyCount: number): Promise<void> {
  for (let index = number % 3; index < keyCount; index += 3) {
    const value = `round ${number} key ${index} `.repeat(1 + (index % 7));
    leader.put(keys.fromString(`k${index}`, 16), text(value));
    model.set(`k${index}`, value);
  }
  for (let index = number; index < keyCount; index += 11) {
    leader.delete(keys.fromString(`k${index}`, 16));
    model.delete(`k${index}`);
  }
  await leader.sync();
}

async function expectContents(db: VarMap, model: Model, keyCount: number): Promise<void> {
  expect(db.size).toBe(model.size);
  for (let index = 0; index < keyCount; index++) {
    const expected = model.get(`k${index}`);
    expect(db.get(keys.fromString(`k${index}`, 16)), `k${index}`).toEqual(expected === undefined ? undefined : text(expected));
  }
}

async function streamState(name: string) {
  const jsm = await jetstreamManager(connection);
  const info = await jsm.streams.info(`ARMDB_${name}`);
  const marker = await jsm.streams.getMessage(`ARMDB_${name}`, { last_by_subj: `armdb.${name}.snapshot` }).catch(() => null);
  return { firstSequence: info.state.first_seq, lastSequence: info.state.last_seq, marker };
}

async function objectNames(name: string): Promise<string[]> {
  const store = await new Objm(jetstream(connection)).open(`ARMDB_${name}`);
  return (await store.list()).filter((info) => !info.deleted).map((info) => info.name);
}

describe('a follower started after the stream was trimmed', () => {
  test('bootstraps from the object store, then follows the stream, with files byte-identical to the leader', async () => {
    const name = 'trimmed';
    const keyCount = 400;
    const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), {
      ...storeOptions,
      replication: natsReplication({
        servers: cluster.servers,
        name,
        role: 'leader',
        ack: 'replicated',
        snapshotEveryBytes: 1,
        retainSnapshots: 1,
      }),
    });
    const model: Model = new Map();
    let follower: VarMap | undefined;
    let afterFirstRound: Date | undefined;
    try {
      for (let number = 0; number < 4; number++) {
        await round(leader, model, number, keyCount);
        // caughtUp() of a leader also waits for the object-store snapshot of what it published.
        await leader.replication.caughtUp();
        afterFirstRound ??= new Date();
      }
      // The stream lost its front, the epoch's first batch (the stream's own snapshot) with it.
      const trimmed = await streamState(name);
      expect(trimmed.firstSequence).toBeGreaterThan(1);
      expect(trimmed.marker).toBeNull();
      const names = await objectNames(name);
      expect(names.filter((object) => object.startsWith('snapshot.'))).toHaveLength(1);
      expect(names.filter((object) => object.startsWith('file.')).length).toBeGreaterThan(2);
      // Point-in-time restore reaches back to the oldest snapshot kept, no further.
      await expect(
        restoreFromStream({ servers: cluster.servers, name, to: path.join(workDirectory, `${name}-early`), at: afterFirstRound! }),
      ).rejects.toMatchObject({ code: 'ARMDB_REPLICATION' });

      follower = await VarMap.open(path.join(workDirectory, `${name}-b`), {
        ...storeOptions,
        replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
      });
      await expectContents(follower, model, keyCount);
      expect(follower.replication.status().epoch).toBe(leader.replication.status().epoch);

      // The same epoch goes on after the snapshot's batch: the follower applies it in order.
      for (let number = 4; number < 7; number++) await round(leader, model, number, keyCount);
      await leader.replication.caughtUp();
      await follower.replication.caughtUp();
      await expectContents(follower, model, keyCount);
      expect(follower.replication.status().error).toBeUndefined();
      const leaderFiles = filesOf(path.join(workDirectory, `${name}-a`));
      const followerFiles = filesOf(path.join(workDirectory, `${name}-b`));
      expect([...leaderFiles.keys()].filter((file) => file.endsWith('.data')).length).toBeGreaterThan(0);
      expect([...followerFiles.keys()].sort()).toEqual([...leaderFiles.keys()].sort());
      for (const [file, bytes] of leaderFiles) expect(followerFiles.get(file)?.equals(bytes), file).toBe(true);
    } finally {
      await follower?.close();
      await leader.close();
    }
  });
});

describe("a batch larger than the server's max payload", () => {
  test('is published in parts with room for their headers, and a follower applies it', async () => {
    const name = 'large-batch';
    const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated' }),
    });
    let follower: VarMap | undefined;
    try {
      // About 3 MiB of sealed pages in one sync: parts cut at the server's max payload (1 MiB).
      const big = new Uint8Array(60_000).fill(0x61);
      for (let index = 0; index < 50; index++) leader.put(keys.fromString(`big${index}`, 16), big);
      await leader.sync();
      follower = await VarMap.open(path.join(workDirectory, `${name}-b`), {
        ...storeOptions,
        replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
      });
      await follower.replication.caughtUp();
      expect(follower.size).toBe(50);
      expect(follower.get(keys.fromString('big49', 16))).toEqual(big);
    } finally {
      await follower?.close();
      await leader.close();
    }
  });
});

describe('a follower refuses', () => {
  /** A leader that stored two snapshots, closed; returns the object store. */
  async function twoSnapshots(name: string) {
    const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), {
      ...storeOptions,
      replication: natsReplication({
        servers: cluster.servers,
        name,
        role: 'leader',
        ack: 'replicated',
        snapshotEveryBytes: 1,
        retainSnapshots: 2,
      }),
    });
    const model: Model = new Map();
    try {
      for (let number = 0; number < 3; number++) {
        await round(leader, model, number, 120);
        await leader.replication.caughtUp();
      }
    } finally {
      await leader.close();
    }
    const store = await new Objm(jetstream(connection)).open(`ARMDB_${name}`);
    const snapshots = (await objectNames(name)).filter((object) => object.startsWith('snapshot.')).sort();
    expect(snapshots).toHaveLength(2);
    return { store, snapshots };
  }

  const openFollower = (name: string) =>
    VarMap.open(path.join(workDirectory, `${name}-b`), {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });

  test('a tampered object with ARMDB_INTEGRITY', async () => {
    const name = 'tampered';
    const { store } = await twoSnapshots(name);
    // Every file object replaced by other bytes under its own name (the object store's own digest then matches them).
    for (const object of (await objectNames(name)).filter((each) => each.startsWith('file.'))) {
      const bytes = (await store.getBlob(object))!;
      bytes[bytes.length >> 1]! ^= 0x01;
      await store.putBlob({ name: object }, bytes);
    }
    await expect(openFollower(name)).rejects.toMatchObject({ code: 'ARMDB_INTEGRITY' });
    await expect(restoreFromStream({ servers: cluster.servers, name, to: path.join(workDirectory, `${name}-r`) })).rejects.toMatchObject({
      code: 'ARMDB_INTEGRITY',
    });
  });

  test('an older snapshot manifest under a newer name with ARMDB_ROLLBACK', async () => {
    const name = 'replayed-snapshot';
    const { store, snapshots } = await twoSnapshots(name);
    const older = (await store.getBlob(snapshots[0]!))!;
    const newer = Number(snapshots[1]!.slice('snapshot.'.length));
    await store.putBlob({ name: `snapshot.${String(newer + 1000).padStart(16, '0')}` }, older);
    await expect(openFollower(name)).rejects.toMatchObject({ code: 'ARMDB_ROLLBACK' });
  });
});

describe('restore --at a time', () => {
  test('reads the manifest history and gives the contents of that moment, from the object store', async () => {
    const name = 'history';
    const keyCount = 90;
    const before = new Date(Date.now() - 60_000);
    const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), {
      ...storeOptions,
      replication: natsReplication({
        servers: cluster.servers,
        name,
        role: 'leader',
        ack: 'replicated',
        snapshotEveryBytes: 1,
        // Every snapshot kept and nothing trimmed: each point below stays restorable.
        retainSnapshots: 100,
        trimStream: false,
      }),
    });
    const model: Model = new Map();
    const points: { model: Model; sequence: number; after: Date }[] = [];
    try {
      for (let number = 0; number < 5; number++) {
        await round(leader, model, number, keyCount);
        await leader.replication.caughtUp();
        points.push({ model: new Map(model), sequence: leader.replication.status().appliedSequence, after: new Date() });
      }
    } finally {
      await leader.close();
    }
    const js = jetstream(connection);
    // The history names the last batch published at each moment.
    for (const point of points) expect((await historyAt(js, name, point.after))?.sequence).toBe(point.sequence);

    const restored = path.join(workDirectory, `${name}-at`);
    const report = await restoreFromStream({ servers: cluster.servers, name, to: restored, at: points[3]!.after });
    expect(report.sequence).toBe(points[3]!.sequence);
    expect(report.snapshot).toBeDefined();
    const db = await VarMap.open(restored, { ...storeOptions });
    try {
      await expectContents(db, points[3]!.model, keyCount);
      // The snapshot manifest's MAC, under the key of the restored KEYRING (as armdb restore checks it).
      const engine = (db as unknown as { engine: { deriveKey(info: Uint8Array, length: number): Uint8Array } }).engine;
      expect(verifyRestoredSnapshot(report, (info, length) => engine.deriveKey(info, length))).toBe(true);
      expect(
        verifyRestoredSnapshot({ ...report, snapshot: { ...report.snapshot!, mac: new Uint8Array(32) } }, (info, length) =>
          engine.deriveKey(info, length),
        ),
      ).toBe(false);
    } finally {
      await db.close();
    }

    // Before the first batch: nothing to restore.
    await expect(
      restoreFromStream({ servers: cluster.servers, name, to: path.join(workDirectory, `${name}-before`), at: before }),
    ).rejects.toMatchObject({
      code: 'ARMDB_REPLICATION',
    });

    if (DIST_BUILT) {
      // armdb restore --at <ISO time>: from a snapshot, its manifest's MAC checked with the key.
      const keyFile = path.join(workDirectory, `${name}-key`);
      fs.writeFileSync(keyFile, encryption.key, { mode: 0o600 });
      const { stdout } = await promisify(execFile)(process.execPath, [
        CLI,
        'restore',
        '--nats',
        cluster.servers[0]!,
        '--name',
        name,
        '--to',
        path.join(workDirectory, `${name}-cli`),
        '--at',
        points[4]!.after.toISOString(),
        '--key-file',
        keyFile,
      ]);
      expect(stdout).toContain(`as of stream sequence ${points[4]!.sequence}`);
      expect(stdout).toContain('from the snapshot of sequence');
      expect(stdout).toContain(`${points[4]!.model.size} keys`);
    }
  });
});
