/**
 * The manifest history (docs/replication.md §Manifest history) over a real JetStream server: a lookup
 * by time is a binary search over the bucket's stream, reading a bounded number of messages however
 * many batches the history holds, and gives what a plain model gives; a writer whose clock is behind
 * the bucket's last entry never records an earlier time; trimming keeps the entries from a sequence on.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type HistoryEntry, HistoryWriter, historyAt, historyRange } from '../../src/replication/history.js';
import { type NatsCluster, startNatsCluster } from './nats-cluster.js';

const ENTRIES = 2000;
const START_MS = 1_700_000_000_000;
let cluster: NatsCluster;
let connection: NatsConnection;

beforeAll(async () => {
  cluster = await startNatsCluster(1);
  connection = await connect({ servers: cluster.servers });
});

afterAll(async () => {
  await connection?.close();
  await cluster?.stop();
});

/** The model's answer: the last entry (in publication order) acknowledged at or before `timeMs`. */
function modelAt(entries: readonly HistoryEntry[], timeMs: number): number | undefined {
  let found: number | undefined;
  for (const entry of entries) if (entry.timeMs <= timeMs) found = entry.sequence;
  return found;
}

test('a lookup by time reads a bounded number of messages and agrees with the model', async () => {
  const name = 'history-many';
  const js = jetstream(connection);
  const jsm = await jetstreamManager(connection);
  const writer = new HistoryWriter(js, jsm, name, 1);
  const entries: HistoryEntry[] = [];
  for (let index = 0; index < ENTRIES; index++) {
    // Several batches in one millisecond, and gaps: times only grow.
    const entry = { sequence: 3 * index + 2, timeMs: START_MS + 7 * Math.floor(index / 3), epoch: 1, batch: index + 1, manifestEpoch: 5 };
    entries.push(entry);
    writer.record(entry);
    if (index % 500 === 499) await writer.settled();
  }
  await writer.settled();

  const probes = [START_MS - 1, START_MS, START_MS + 1, START_MS + 3000, START_MS + 4661, START_MS + 4662, START_MS + 10_000_000];
  for (let index = 0; index < 20; index++) probes.push(START_MS + Math.floor((index * 4700) / 20) + (index % 7));
  for (const timeMs of probes) {
    const before = connection.stats().inMsgs;
    const found = await historyAt(js, name, new Date(timeMs));
    const read = connection.stats().inMsgs - before;
    expect(found?.sequence, `at ${timeMs - START_MS}`).toBe(modelAt(entries, timeMs));
    // log2(2000) ≈ 11 message reads and a stream info or two: a listing would receive all 2000 keys.
    expect(read).toBeLessThan(40);
  }
  const found = await historyAt(js, name, new Date(START_MS + 700));
  expect(found).toEqual(entries.findLast((entry) => entry.timeMs <= START_MS + 700));

  const range = await historyRange(jsm, name);
  expect(range).toEqual({ entries: ENTRIES, first: entries[0], last: entries.at(-1) });
}, 120_000);

test("a writer whose clock is behind the bucket's last entry records the last time, and trimming keeps the rest", async () => {
  const name = 'history-clock';
  const js = jetstream(connection);
  const jsm = await jetstreamManager(connection);
  const first = new HistoryWriter(js, jsm, name, 1);
  for (let index = 0; index < 10; index++)
    first.record({ sequence: index + 1, timeMs: START_MS + 1000 * index, epoch: 1, batch: index + 1, manifestEpoch: 1 });
  await first.settled();
  // A new leader (a new writer) on a machine whose clock is an hour behind.
  const second = new HistoryWriter(js, jsm, name, 1);
  second.record({ sequence: 11, timeMs: START_MS - 3_600_000, epoch: 12, batch: 1, manifestEpoch: 2 });
  second.record({ sequence: 12, timeMs: START_MS - 3_599_000, epoch: 12, batch: 2, manifestEpoch: 2 });
  await second.settled();
  // Both of its entries carry the predecessor's last time: "at or before" follows the stream order.
  expect((await historyAt(js, name, new Date(START_MS + 9000)))?.sequence).toBe(12);
  expect((await historyAt(js, name, new Date(START_MS + 8999)))?.sequence).toBe(9);
  expect((await historyAt(js, name, new Date(START_MS - 3_600_000)))?.sequence).toBeUndefined();

  await second.trimBefore(6);
  const range = await historyRange(jsm, name);
  expect(range?.entries).toBe(7);
  expect(range?.first.sequence).toBe(6);
  expect(range?.last).toMatchObject({ sequence: 12, epoch: 12, timeMs: START_MS + 9000 });
  expect((await historyAt(js, name, new Date(START_MS + 4000)))?.sequence).toBeUndefined();
  expect((await historyAt(js, name, new Date(START_MS + 5000)))?.sequence).toBe(6);
}, 120_000);
