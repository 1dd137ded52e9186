/**
 * Reader leases on object-store snapshots (docs/replication.md §Object-store snapshots): a follower
 * bootstrapping from a snapshot, or a restore, holds a key `r.<sequence, 16 digits>.<random>` in the
 * KV bucket `ARMDBR_<name>` (TTL {@link READER_LEASE_TTL_MS}: a reader that died lets go by itself)
 * and puts it again every third of the TTL while it reads. A leader trimming its snapshots keeps every
 * snapshot with a live lease, the file objects it names and the stream after it. The keys hold no
 * secret: a sequence and a time.
 */
import { randomBytes } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';

/** How long a reader lease lives unrenewed. */
export const READER_LEASE_TTL_MS = 30_000;
const KEY_PREFIX = 'r.';

/** The KV bucket of a replicated store's reader leases. */
export function readerBucketOf(name: string): string {
  return `ARMDBR_${name}`;
}

function keyOf(sequence: number, reader: string): string {
  return `${KEY_PREFIX}${String(sequence).padStart(16, '0')}.${reader}`;
}

/** The bucket, created (with `replicas`) if missing. */
async function openReaderBucket(js: JetStreamClient, name: string, replicas: number): Promise<KV> {
  return await new Kvm(js).create(readerBucketOf(name), { history: 1, ttl: READER_LEASE_TTL_MS, replicas });
}

/** A lease one reader holds on one snapshot: renewed until {@link release}. */
export class ReaderLease {
  readonly #kv: KV;
  readonly #key: string;
  readonly #timer: NodeJS.Timeout;
  #released = false;

  private constructor(kv: KV, key: string) {
    this.#kv = kv;
    this.#key = key;
    this.#timer = setInterval(() => {
      this.#put().catch(() => undefined);
    }, READER_LEASE_TTL_MS / 3);
    this.#timer.unref();
  }

  /** Takes a lease on the snapshot of stream sequence `sequence`. */
  static async take(js: JetStreamClient, name: string, sequence: number, replicas: number): Promise<ReaderLease> {
    const kv = await openReaderBucket(js, name, replicas);
    const lease = new ReaderLease(kv, keyOf(sequence, randomBytes(8).toString('hex')));
    try {
      await lease.#put();
    } catch (error) {
      clearInterval(lease.#timer);
      throw error;
    }
    return lease;
  }

  get key(): string {
    return this.#key;
  }

  async #put(): Promise<void> {
    if (this.#released) return;
    await this.#kv.put(this.#key, JSON.stringify({ sinceMs: Date.now() }));
  }

  /** Lets go of the snapshot (best effort: an unrenewed lease expires with its TTL anyway). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    await this.#kv.purge(this.#key).catch(() => undefined);
  }
}

/**
 * The sequences of the snapshots readers hold a live lease on; empty when no reader ever took one
 * (no bucket). Keys that do not parse are ignored: they lease nothing.
 *
 * @example
 * const keep = await leasedSequences(js, 'sessions'); // Set { 1042 } while a follower bootstraps from snapshot 1042
 */
export async function leasedSequences(js: JetStreamClient, name: string): Promise<Set<number>> {
  const leased = new Set<number>();
  let kv: KV;
  try {
    kv = await new Kvm(js).open(readerBucketOf(name));
    await kv.status();
  } catch (error) {
    // No bucket: no reader ever leased a snapshot. Anything else (the servers do not answer) fails the
    // trim rather than deleting what a reader may hold.
    if (error instanceof Error && /not found/i.test(error.message)) return leased;
    throw error;
  }
  for await (const key of await kv.keys(`${KEY_PREFIX}>`)) {
    const sequence = Number(key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 16));
    if (Number.isSafeInteger(sequence) && sequence > 0) leased.add(sequence);
  }
  return leased;
}
