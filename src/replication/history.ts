/**
 * The manifest history of a replicated store (docs/replication.md §Manifest history): a KV bucket
 * `ARMDBH_<name>` with one entry per batch the leader published, keyed by the leader's clock when the
 * stream acknowledged it and the batch's stream sequence, so `restore --at <time>` finds the stream
 * sequence of a moment by listing keys, without reading the stream. Values hold no secret: sequence,
 * time, lease epoch, batch, MANIFEST epoch.
 *
 * Key: `t.<ms since 1970, 15 digits>.<stream sequence, 16 digits>`. Value: JSON
 * `{ "sequence", "timeMs", "epoch", "batch", "manifestEpoch" }`.
 *
 * Entries are put in batch order, so the bucket's own stream (`KV_ARMDBH_<name>`) holds them in
 * stream-sequence order, and a writer never puts a time before the bucket's last one (a leader whose
 * clock is behind its predecessor's records the predecessor's last time): times grow with the stream
 * sequence too. A lookup is therefore a binary search over the bucket's stream, O(log entries) reads
 * of one message each, never a listing of every key.
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';

/** One published batch. */
export interface HistoryEntry {
  readonly sequence: number;
  /** The leader's clock when the stream acknowledged the batch, ms since 1970. */
  readonly timeMs: number;
  readonly epoch: number;
  readonly batch: number;
  readonly manifestEpoch: number;
}

/** At most this many puts wait for the servers; a leader that outruns them skips entries (restore then lands on an earlier batch). */
const MAX_QUEUED = 1024;
const KEY = /^t\.(\d{15})\.(\d{16})$/;

export function historyBucketOf(name: string): string {
  return `ARMDBH_${name}`;
}

function keyOf(entry: HistoryEntry): string {
  return `t.${String(Math.max(0, Math.floor(entry.timeMs))).padStart(15, '0')}.${String(entry.sequence).padStart(16, '0')}`;
}

/** The leader's writer: entries are put in order, in the background; a failed put is skipped. */
export class HistoryWriter {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #bucket: string;
  readonly #replicas: number;
  #kv: Promise<KV> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #queued = 0;
  /** The last time put (or found in the bucket when it opened): no entry gets an earlier one. */
  #lastTimeMs = 0;

  constructor(js: JetStreamClient, jsm: JetStreamManager, name: string, replicas: number) {
    this.#js = js;
    this.#jsm = jsm;
    this.#bucket = historyBucketOf(name);
    this.#replicas = replicas;
  }

  #open(): Promise<KV> {
    this.#kv ??= (async () => {
      const kv = await new Kvm(this.#js).create(this.#bucket, { history: 1, replicas: this.#replicas });
      const last = await lastEntry(this.#jsm, this.#bucket).catch(() => undefined);
      if (last !== undefined) this.#lastTimeMs = Math.max(this.#lastTimeMs, last.entry.timeMs);
      return kv;
    })();
    // A bucket that could not be created is tried again at the next entry.
    this.#kv.catch(() => {
      this.#kv = undefined;
    });
    return this.#kv;
  }

  record(entry: HistoryEntry): void {
    if (this.#queued >= MAX_QUEUED) return;
    this.#queued++;
    this.#chain = this.#chain.then(async () => {
      try {
        const kv = await this.#open();
        // Times never go back in put order (a failover to a machine whose clock is behind): lookups bisect on them.
        const timeMs = Math.max(Math.floor(entry.timeMs), this.#lastTimeMs);
        this.#lastTimeMs = timeMs;
        const monotone = { ...entry, timeMs };
        await kv.put(keyOf(monotone), new TextEncoder().encode(JSON.stringify(monotone)));
      } catch {
        // The history is an index: a missing entry makes a restore to that moment land on the batch before.
      } finally {
        this.#queued--;
      }
    });
  }

  /** Resolves once every entry recorded so far was put (or skipped). */
  settled(): Promise<void> {
    return this.#chain;
  }

  /** Removes the entries of batches before `sequence` (the stream no longer holds them). */
  async trimBefore(sequence: number): Promise<void> {
    await this.settled();
    await this.#open();
    const newestBefore = await bisect(this.#jsm, this.#bucket, (entry) => entry.sequence < sequence);
    if (newestBefore === undefined) return;
    // Entries are put in batch order, so every message up to this one is of an earlier batch.
    // (streamSequence + 1 >= 2: a purge to 1 would purge everything.)
    await this.#jsm.streams.purge(streamOf(this.#bucket), { seq: newestBefore.streamSequence + 1 });
  }
}

/** An entry with the sequence of its message in the bucket's stream. */
export interface LocatedEntry {
  readonly entry: HistoryEntry;
  readonly streamSequence: number;
}

function streamOf(bucket: string): string {
  return `KV_${bucket}`;
}

/** The entry a message of the bucket's stream holds: the key names time and sequence; the value adds the epochs. */
function entryOf(bucket: string, message: StoredMsg): LocatedEntry | undefined {
  const prefix = `$KV.${bucket}.`;
  if (!message.subject.startsWith(prefix)) return undefined;
  const match = KEY.exec(message.subject.slice(prefix.length));
  if (match === null) return undefined;
  const fromKey: HistoryEntry = { sequence: Number(match[2]), timeMs: Number(match[1]), epoch: 0, batch: 0, manifestEpoch: 0 };
  let entry = fromKey;
  try {
    const value = JSON.parse(new TextDecoder().decode(message.data)) as Partial<Record<keyof HistoryEntry, unknown>>;
    const number = (field: unknown): number => (Number.isSafeInteger(field) ? (field as number) : 0);
    entry = { ...fromKey, epoch: number(value.epoch), batch: number(value.batch), manifestEpoch: number(value.manifestEpoch) };
  } catch {
    // A value that is not JSON (a delete marker): the key alone.
  }
  return { entry, streamSequence: message.seq };
}

/** The first entry at or after `streamSequence` in the bucket's stream, or undefined. */
async function entryFrom(jsm: JetStreamManager, bucket: string, streamSequence: number): Promise<LocatedEntry | undefined> {
  // STREAM.MSG.GET takes `next_by_subj` (nats-server 2.9 on): the client's type for it lists only `seq` and `last_by_subj`.
  const query = { seq: streamSequence, next_by_subj: `$KV.${bucket}.t.>` } as unknown as { seq: number };
  const message = await jsm.streams.getMessage(streamOf(bucket), query);
  if (message === null) return undefined;
  return entryOf(bucket, message);
}

/** The bucket stream's message range, or null when there is no bucket. */
async function rangeOf(jsm: JetStreamManager, bucket: string): Promise<{ first: number; last: number; messages: number } | null> {
  try {
    const info = await jsm.streams.info(streamOf(bucket));
    return { first: info.state.first_seq, last: info.state.last_seq, messages: info.state.messages };
  } catch {
    return null;
  }
}

async function lastEntry(jsm: JetStreamManager, bucket: string): Promise<LocatedEntry | undefined> {
  return bisect(jsm, bucket, () => true);
}

/**
 * The last entry (in stream order) for which `holds` is true, where `holds` is true for a prefix of
 * the entries (times and sequences grow in stream order): a binary search over the bucket's stream.
 */
async function bisect(jsm: JetStreamManager, bucket: string, holds: (entry: HistoryEntry) => boolean): Promise<LocatedEntry | undefined> {
  const range = await rangeOf(jsm, bucket);
  if (range === null || range.messages === 0) return undefined;
  let low = range.first;
  let high = range.last;
  let best: LocatedEntry | undefined;
  while (low <= high) {
    const middle = Math.floor((low + high) / 2);
    const located = await entryFrom(jsm, bucket, middle);
    if (located === undefined || located.streamSequence > high) {
      high = middle - 1;
    } else if (holds(located.entry)) {
      best = located;
      low = located.streamSequence + 1;
    } else {
      high = middle - 1;
    }
  }
  return best;
}

/** The first and last entries of the history and how many it holds; undefined without a bucket or entries. */
export async function historyRange(
  jsm: JetStreamManager,
  name: string,
): Promise<{ readonly entries: number; readonly first: HistoryEntry; readonly last: HistoryEntry } | undefined> {
  const bucket = historyBucketOf(name);
  const range = await rangeOf(jsm, bucket);
  if (range === null || range.messages === 0) return undefined;
  const first = await entryFrom(jsm, bucket, range.first);
  const last = await lastEntry(jsm, bucket);
  if (first === undefined || last === undefined) return undefined;
  return { entries: range.messages, first: first.entry, last: last.entry };
}

/**
 * The last batch acknowledged at or before `time`, from the history; undefined if the history holds
 * nothing then, null if the store has no history (no bucket, or an empty one: a stream written before
 * it existed). A binary search over the bucket's stream: O(log entries) reads.
 */
export async function historyAt(js: JetStreamClient, name: string, time: Date): Promise<HistoryEntry | undefined | null> {
  const jsm = await js.jetstreamManager();
  const bucket = historyBucketOf(name);
  const range = await rangeOf(jsm, bucket);
  if (range === null || range.messages === 0) return null;
  const limitMs = time.getTime();
  const found = await bisect(jsm, bucket, (entry) => entry.timeMs <= limitMs);
  return found?.entry;
}
