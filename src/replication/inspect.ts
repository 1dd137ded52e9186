/** What `armdb replicate status` prints: the stream and the lease of a replicated store, read only. */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { armdbError } from '../errors.js';

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
    const info = await jsm.streams.info(stream).catch((error: unknown) => {
      throw armdbError('ARMDB_REPLICATION', `no stream for "${name}"`, error);
    });
    const snapshot = await jsm.streams.getMessage(stream, { last_by_subj: `armdb.${name}.snapshot` }).catch(() => null);
    let leaseHolder: string | undefined;
    let leaseRevision: number | undefined;
    try {
      const kv = await new Kvm(jetstream(connection)).open(stream);
      const lease = await kv.get('lease');
      if (lease !== null && lease.operation === 'PUT') {
        leaseRevision = lease.revision;
        const holder: unknown = (JSON.parse(new TextDecoder().decode(lease.value)) as { holder?: unknown }).holder;
        leaseHolder = typeof holder === 'string' ? holder : undefined;
      }
    } catch {
      // No bucket, or an unreadable lease: shown as none.
    }
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
    };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
