/**
 * The manifest history of a replicated store (docs/replication.md §Manifest history): a KV bucket
 * `ARMDBH_<name>` with one entry per batch the leader published, keyed by the leader's clock when the
 * stream acknowledged it and the batch's stream sequence, so `restore --at <time>` finds the stream
 * sequence of a moment by listing keys, without reading the stream. Values hold no secret: sequence,
 * time, lease epoch, batch, MANIFEST epoch.
 *
 * Key: `t.<ms since 1970, 15 digits>.<stream sequence, 16 digits>`. Value: JSON
 * `{ "sequence", "timeMs", "epoch", "batch", "manifestEpoch" }`.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
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

  constructor(js: JetStreamClient, jsm: JetStreamManager, name: string, replicas: number) {
    this.#js = js;
    this.#jsm = jsm;
    this.#bucket = historyBucketOf(name);
    this.#replicas = replicas;
  }

  #open(): Promise<KV> {
    this.#kv ??= new Kvm(this.#js).create(this.#bucket, { history: 1, replicas: this.#replicas });
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
        await kv.put(keyOf(entry), new TextEncoder().encode(JSON.stringify(entry)));
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
    const kv = await this.#open();
    let newestBefore: string | undefined;
    let newestSequence = -1;
    for await (const key of await kv.keys('t.>')) {
      const match = KEY.exec(key);
      if (match === null) continue;
      const entrySequence = Number(match[2]);
      if (entrySequence < sequence && entrySequence > newestSequence) {
        newestSequence = entrySequence;
        newestBefore = key;
      }
    }
    if (newestBefore === undefined) return;
    const entry = await kv.get(newestBefore);
    if (entry === null) return;
    // Entries are put in batch order, so every revision up to this one is of an earlier batch.
    // (entry.revision + 1 >= 2: a purge to 1 would purge everything.)
    await this.#jsm.streams.purge(`KV_${this.#bucket}`, { seq: entry.revision + 1 });
  }
}

/**
 * The last batch acknowledged at or before `time`, from the history; undefined if the history holds
 * nothing then, null if the store has no history bucket (a stream written before it existed).
 */
export async function historyAt(js: JetStreamClient, name: string, time: Date): Promise<HistoryEntry | undefined | null> {
  let kv: KV;
  try {
    kv = await new Kvm(js).open(historyBucketOf(name));
  } catch {
    return null;
  }
  const limitMs = time.getTime();
  let best: { timeMs: number; sequence: number; key: string } | undefined;
  let any = false;
  for await (const key of await kv.keys('t.>')) {
    const match = KEY.exec(key);
    if (match === null) continue;
    any = true;
    const timeMs = Number(match[1]);
    const sequence = Number(match[2]);
    if (timeMs > limitMs) continue;
    if (best === undefined || sequence > best.sequence) best = { timeMs, sequence, key };
  }
  if (!any) return null;
  if (best === undefined) return undefined;
  // The key alone names the sequence; the value adds the epochs when it is well formed.
  const fromKey: HistoryEntry = { sequence: best.sequence, timeMs: best.timeMs, epoch: 0, batch: 0, manifestEpoch: 0 };
  const entry = await kv.get(best.key).catch(() => null);
  if (entry === null || entry.operation !== 'PUT') return fromKey;
  try {
    const value = JSON.parse(new TextDecoder().decode(entry.value)) as Partial<Record<keyof HistoryEntry, unknown>>;
    const number = (field: unknown): number => (Number.isSafeInteger(field) ? (field as number) : 0);
    return { ...fromKey, epoch: number(value.epoch), batch: number(value.batch), manifestEpoch: number(value.manifestEpoch) };
  } catch {
    return fromKey;
  }
}
