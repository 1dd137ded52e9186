/**
 * What `armdb replicate status` prints: the stream, the lease, the object store's snapshots and the
 * manifest history's range of a replicated store, read only (docs/replication.md).
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { ArmdbError, armdbError } from '../errors.js';
import { listSnapshots, openObjectStore } from './bootstrap.js';
import { historyRange } from './history.js';

/** One snapshot of the object store (docs/replication.md §Object-store snapshots). */
export interface SnapshotStatus {
  /** Stream sequence of the batch it follows: a replica reads the stream from the one after. */
  readonly sequence: number;
  /** Lease epoch of that batch. */
  readonly epoch: number;
  /** The leader's clock when that batch was cut, ISO 8601. */
  readonly time: string;
  /** Bytes of its files (sealed, as stored), and how many files. */
  readonly bytes: number;
  readonly files: number;
}

/** The manifest history's range (docs/replication.md §Manifest history): what `restore --at <time>` can reach. */
export interface HistoryStatus {
  readonly entries: number;
  readonly firstSequence: number;
  readonly firstTime: string;
  readonly lastSequence: number;
  readonly lastTime: string;
}

export interface StreamStatus {
  readonly stream: string;
  readonly messages: number;
  readonly bytes: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
  /** Sequence of the newest snapshot's first part: where a new follower starts. */
  readonly snapshotSequence: number | undefined;
  readonly replicas: number;
  /** The NATS server leading the stream (clustered servers only). */
  readonly streamLeader: string | undefined;
  /** Who holds the lease, as it named itself, and its epoch (the lease key's revision). */
  readonly leaseHolder: string | undefined;
  readonly leaseRevision: number | undefined;
  /** The object store's snapshots, oldest first; empty when there is none or no object store. */
  readonly snapshots: readonly SnapshotStatus[];
  /** The manifest history's first and last entries; undefined without one. */
  readonly history: HistoryStatus | undefined;
}

export async function replicationStatus(servers: readonly string[], name: string): Promise<StreamStatus> {
  let connection: Awaited<ReturnType<typeof connect>>;
  try {
    connection = await connect({ servers: [...servers], name: `armdb replicate status ${name}` });
  } catch (error) {
    throw armdbError('ARMDB_REPLICATION', 'could not connect to the NATS servers', error);
  }
  try {
    const stream = `ARMDB_${name}`;
    const jsm = await jetstreamManager(connection);
    const js = jetstream(connection);
    const info = await jsm.streams.info(stream).catch((error: unknown) => {
      throw armdbError('ARMDB_REPLICATION', `no stream for "${name}"`, error);
    });
    const snapshot = await jsm.streams.getMessage(stream, { last_by_subj: `armdb.${name}.snapshot` }).catch(() => null);
    let leaseHolder: string | undefined;
    let leaseRevision: number | undefined;
    try {
      const kv = await new Kvm(js).open(stream);
      const lease = await kv.get('lease');
      if (lease !== null && lease.operation === 'PUT') {
        leaseRevision = lease.revision;
        const holder: unknown = (JSON.parse(new TextDecoder().decode(lease.value)) as { holder?: unknown }).holder;
        leaseHolder = typeof holder === 'string' ? holder : undefined;
      }
    } catch {
      // No bucket, or an unreadable lease: shown as none.
    }
    const snapshots: SnapshotStatus[] = [];
    const store = await openObjectStore(js, name);
    if (store !== undefined) {
      try {
        for (const { manifest } of await listSnapshots(store)) {
          let bytes = 0;
          let files = 0;
          for (const entry of manifest.entries) {
            if (entry.kind !== 'file') continue;
            bytes += entry.size;
            files++;
          }
          snapshots.push({
            sequence: manifest.sequence,
            epoch: manifest.epoch,
            time: new Date(manifest.leaderTimeMs).toISOString(),
            bytes,
            files,
          });
        }
      } catch (error) {
        // A manifest that fails its checks is worth saying, not hiding.
        if (error instanceof ArmdbError && error.code !== 'ARMDB_REPLICATION') throw error;
      }
    }
    const range = await historyRange(jsm, name).catch(() => undefined);
    const history: HistoryStatus | undefined =
      range === undefined
        ? undefined
        : {
            entries: range.entries,
            firstSequence: range.first.sequence,
            firstTime: new Date(range.first.timeMs).toISOString(),
            lastSequence: range.last.sequence,
            lastTime: new Date(range.last.timeMs).toISOString(),
          };
    return {
      stream,
      messages: info.state.messages,
      bytes: info.state.bytes,
      firstSequence: info.state.first_seq,
      lastSequence: info.state.last_seq,
      snapshotSequence: snapshot?.seq,
      replicas: info.config.num_replicas,
      streamLeader: info.cluster?.leader,
      leaseHolder,
      leaseRevision,
      snapshots,
      history,
    };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
