/**
 * `armdb/replication`: replicas and failover over NATS JetStream, shipping only ciphertext
 * (docs/replication.md). Needs the optional peer dependencies `@nats-io/transport-node`,
 * `@nats-io/jetstream` and `@nats-io/kv`.
 *
 * @example
 * ```ts
 * import { VarMap } from 'armdb';
 * import { natsReplication } from 'armdb/replication';
 *
 * const replica = await VarMap.open('./b', { keySize: 16, encryption: { key },
 *   replication: natsReplication({ servers: 'nats://127.0.0.1:4222', name: 'sessions', role: 'follower' }) });
 * await replica.replication.caughtUp();
 * ```
 *
 * @module armdb/replication
 */
export { natsReplication, type NatsReplicationOptions } from './nats.js';
export { restoreFromStream, type RestoreOptions, type RestoreReport, verifyRestoredSnapshot } from './restore.js';
export type { DecodedSnapshotManifest, SnapshotEntry, SnapshotManifest } from './bootstrap.js';
export type { Replication, ReplicationOption, ReplicationStatus } from './contract.js';
