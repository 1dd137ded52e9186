/**
 * Snapshots for stores larger than memory, over a real 3-node JetStream cluster (docs/replication.md
 * §Object-store snapshots): a snapshot whose upload is held while the leader writes and compacts
 * still holds the files of its cut (the pin), and a follower bootstraps from it byte-identical; a
 * snapshot a follower downloads is kept by the leader's trimming (the reader lease), and a follower
 * whose snapshot is deleted anyway starts again from the newest one.
 *
 * The test hooks of src/replication/bootstrap.ts hold an upload or a download at a known point, so
 * the interleaving is fixed, not timed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { snapshotHooks } from '../../src/replication/bootstrap.js';
import { natsReplication, restoreFromStream } from '../../src/replication/index.js';
import { readerBucketOf } from '../../src/replication/reader-lease.js';
import { filesOf, storeOptions, text } from './harness.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

let cluster: NatsCluster;
let workDirectory: string;
let connection: NatsConnection;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-snapshot-stream-'));
  connection = await connect({ servers: cluster.servers });
});

afterAll(async () => {
  await connection?.close();
  await cluster?.stop();
  if (workDirectory !== undefined) fs.rmSync(workDirectory, { recursive: true, force: true });
});

afterEach(() => {
  snapshotHooks.beforeDownload = undefined;
  snapshotHooks.beforeUpload = undefined;
});

type Model = Map<string, string>;
const KEY_COUNT = 300;
const options = { ...storeOptions, maxFileBytes: 16 * 4096 };

async function round(leader: VarMap, model: Model, number: number): Promise<void> {
  for (let index = number % 3; index < KEY_COUNT; index += 3) {
    const value = `round ${number} key ${index} `.repeat(1 + (index % 5));
    leader.put(keys.fromString(`k${index}`, 16), text(value));
    model.set(`k${index}`, value);
  }
  await leader.sync();
}

/** Rounds `from` to `to` (exclusive), each synced and caught up by the stream before the next. */
async function rounds(leader: VarMap, model: Model, from: number, to: number): Promise<void> {
  for (let number = from; number < to; number++) {
    await round(leader, model, number);
    await leader.replication.caughtUp();
  }
}

async function expectContents(db: VarMap, model: Model): Promise<void> {
  expect(db.size).toBe(model.size);
  for (let index = 0; index < KEY_COUNT; index++) {
    const expected = model.get(`k${index}`);
    expect(db.get(keys.fromString(`k${index}`, 16)), `k${index}`).toEqual(expected === undefined ? undefined : text(expected));
  }
}

async function snapshotNames(name: string): Promise<string[]> {
  const store = await new Objm(jetstream(connection)).open(`ARMDB_${name}`);
  return (await store.list())
    .filter((info) => !info.deleted && info.name.startsWith('snapshot.'))
    .map((info) => info.name)
    .sort();
}

async function firstStreamSequence(name: string): Promise<number> {
  const info = await (await jetstreamManager(connection)).streams.info(`ARMDB_${name}`);
  return info.state.first_seq;
}

/** A promise with its resolve, and a hook that holds the first call until it is resolved. */
function gate(): { reached: Promise<string>; release: () => void; hook: (name: string) => Promise<void>; calls: string[] } {
  let reach!: (name: string) => void;
  let release!: () => void;
  const reached = new Promise<string>((resolve) => {
    reach = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const calls: string[] = [];
  return {
    reached,
    release,
    calls,
    hook: async (name) => {
      calls.push(name);
      if (calls.length === 1) {
        reach(name);
        await released;
      }
    },
  };
}

function leaderOptions(name: string) {
  return {
    ...options,
    replication: natsReplication({
      servers: cluster.servers,
      name,
      role: 'leader',
      ack: 'replicated',
      snapshotEveryBytes: 1,
      retainSnapshots: 1,
    }),
  };
}

function followerOptions(name: string) {
  return { ...options, replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }) };
}

test('a snapshot uploaded while the leader writes and compacts holds the files of its cut, and a follower bootstraps from it', async () => {
  const name = 'pinned';
  const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), leaderOptions(name));
  const model: Model = new Map();
  let follower: VarMap | undefined;
  try {
    for (let number = 0; number < 3; number++) await round(leader, model, number);
    await leader.replication.caughtUp();
    const upload = gate();
    snapshotHooks.beforeUpload = upload.hook;
    await round(leader, model, 3);
    await upload.reached;
    // The capture of round 3's cut is pinned and not uploaded yet: files appended, compacted away, MANIFEST replaced.
    const before = filesOf(path.join(workDirectory, `${name}-a`));
    for (let number = 4; number < 7; number++) await round(leader, model, number);
    await leader.compact();
    await leader.sync();
    const after = filesOf(path.join(workDirectory, `${name}-a`));
    expect([...before.keys()].some((file) => !after.has(file))).toBe(true);
    upload.release();
    await leader.replication.caughtUp();
    snapshotHooks.beforeUpload = undefined;
    // More than one file was uploaded from the pin, after the compaction.
    expect(upload.calls.length).toBeGreaterThan(2);
    // The newest snapshot is that capture: the compaction and later rounds are in the stream after it.
    const [newest] = await snapshotNames(name);
    expect(newest).toBeDefined();
    const streamInfo = await (await jetstreamManager(connection)).streams.info(`ARMDB_${name}`);
    expect(Number(newest!.slice('snapshot.'.length))).toBeLessThan(streamInfo.state.last_seq - 3);

    follower = await VarMap.open(path.join(workDirectory, `${name}-b`), followerOptions(name));
    await follower.replication.caughtUp();
    await expectContents(follower, model);
    expect(follower.replication.status().error).toBeUndefined();
    const leaderFiles = filesOf(path.join(workDirectory, `${name}-a`));
    const followerFiles = filesOf(path.join(workDirectory, `${name}-b`));
    expect([...followerFiles.keys()].sort()).toEqual([...leaderFiles.keys()].sort());
    for (const [file, bytes] of leaderFiles) expect(followerFiles.get(file)?.equals(bytes), file).toBe(true);
  } finally {
    await follower?.close();
    await leader.close();
  }
});

test("a trim while a follower downloads keeps the follower's snapshot and the stream after it; the follower opens", async () => {
  const name = 'leased';
  const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), leaderOptions(name));
  const model: Model = new Map();
  let follower: VarMap | undefined;
  try {
    await rounds(leader, model, 0, 3);
    const [downloaded] = await snapshotNames(name);
    expect(downloaded).toBeDefined();
    const download = gate();
    snapshotHooks.beforeDownload = download.hook;
    const opening = VarMap.open(path.join(workDirectory, `${name}-b`), followerOptions(name));
    await download.reached;
    // Newer snapshots stored meanwhile, each followed by a trim that keeps one.
    await rounds(leader, model, 3, 6);
    const during = await snapshotNames(name);
    expect(during).toContain(downloaded);
    expect(during.length).toBe(2);
    expect(await firstStreamSequence(name)).toBeLessThanOrEqual(Number(downloaded!.slice('snapshot.'.length)));
    download.release();
    follower = await opening;
    await follower.replication.caughtUp();
    await expectContents(follower, model);

    // Its lease was let go once it read the stream after the snapshot: the next trim deletes it.
    await round(leader, model, 6);
    await leader.replication.caughtUp();
    expect(await snapshotNames(name)).not.toContain(downloaded);
    await follower.replication.caughtUp();
    await expectContents(follower, model);
  } finally {
    await follower?.close();
    await leader.close();
  }
});

test('a follower whose snapshot is deleted anyway (its lease lost) starts again from the newest one', async () => {
  const name = 'vanished';
  const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), leaderOptions(name));
  const model: Model = new Map();
  let follower: VarMap | undefined;
  try {
    await rounds(leader, model, 0, 3);
    const [first] = await snapshotNames(name);
    const download = gate();
    snapshotHooks.beforeDownload = download.hook;
    const opening = VarMap.open(path.join(workDirectory, `${name}-b`), followerOptions(name));
    await download.reached;
    // The lease lost (as if it expired), then newer snapshots: the follower's is deleted.
    const leases = await new Kvm(jetstream(connection)).open(readerBucketOf(name));
    const held: string[] = [];
    for await (const key of await leases.keys()) held.push(key);
    expect(held).toHaveLength(1);
    await leases.purge(held[0]!);
    await rounds(leader, model, 3, 6);
    expect(await snapshotNames(name)).not.toContain(first);
    download.release();
    follower = await opening;
    await follower.replication.caughtUp();
    await expectContents(follower, model);
    expect(follower.replication.status().error).toBeUndefined();
  } finally {
    await follower?.close();
    await leader.close();
  }
});

test('a download that fails a check leaves no file of the snapshot under its name: nothing partial can be opened', async () => {
  const name = 'partial';
  const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), leaderOptions(name));
  const model: Model = new Map();
  try {
    await rounds(leader, model, 0, 3);
  } finally {
    await leader.close();
  }
  // One file object (the largest) replaced by other bytes under its own name; the others are sound.
  const store = await new Objm(jetstream(connection)).open(`ARMDB_${name}`);
  const files = (await store.list()).filter((info) => !info.deleted && info.name.startsWith('file.'));
  expect(files.length).toBeGreaterThan(4);
  const largest = files.sort((left, right) => right.size - left.size)[0]!;
  const bytes = (await store.getBlob(largest.name))!;
  bytes[bytes.length >> 1]! ^= 0x01;
  await store.putBlob({ name: largest.name }, bytes);

  const followerDirectory = path.join(workDirectory, `${name}-b`);
  await expect(VarMap.open(followerDirectory, followerOptions(name))).rejects.toMatchObject({ code: 'ARMDB_INTEGRITY' });
  expect([...filesOf(followerDirectory).keys()]).toEqual([]);
  const restoreDirectory = path.join(workDirectory, `${name}-r`);
  await expect(restoreFromStream({ servers: cluster.servers, name, to: restoreDirectory })).rejects.toMatchObject({
    code: 'ARMDB_INTEGRITY',
  });
  expect([...filesOf(restoreDirectory).keys()]).toEqual([]);
});

test('a restore holds a lease on its snapshot: a trim meanwhile keeps it, and the restore gives the contents of its point', async () => {
  const name = 'restore-leased';
  const leader = await VarMap.open(path.join(workDirectory, `${name}-a`), leaderOptions(name));
  const model: Model = new Map();
  try {
    await rounds(leader, model, 0, 3);
    const atPoint = new Map(model);
    const point = leader.replication.status().appliedSequence;
    const [downloaded] = await snapshotNames(name);
    const download = gate();
    snapshotHooks.beforeDownload = download.hook;
    const restoreDirectory = path.join(workDirectory, `${name}-r`);
    const restoring = restoreFromStream({ servers: cluster.servers, name, to: restoreDirectory, at: point });
    await download.reached;
    await rounds(leader, model, 3, 6);
    expect(await snapshotNames(name)).toContain(downloaded);
    download.release();
    const report = await restoring;
    expect(report.sequence).toBe(point);
    const restored = await VarMap.open(restoreDirectory, { ...options });
    try {
      await expectContents(restored, atPoint);
    } finally {
      await restored.close();
    }
  } finally {
    await leader.close();
  }
});
