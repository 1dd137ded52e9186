/**
 * Point-in-time restore (docs/replication.md §Restore): the files of a store as of a stream sequence
 * or a time, rebuilt in a new directory from the newest object-store snapshot at or before that point
 * (or, without one, the oldest snapshot the stream holds) and every complete batch of the stream after
 * it. A time is turned into a sequence by the manifest history. The result is authenticated by opening
 * it with the store's secret (the CLI does, as `armdb verify` does, and checks the snapshot manifest's
 * MAC); nothing here decrypts.
 */
import * as path from 'node:path';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { armdbError, integrityError } from '../errors.js';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { applyOperations } from './apply.js';
import {
  checkAgainstStream,
  type DecodedSnapshotManifest,
  downloadLeased,
  listSnapshots,
  newestSnapshot,
  openObjectStore,
  verifySnapshotManifest,
} from './bootstrap.js';
import { historyAt } from './history.js';
import { type DecodedPart, decodePart } from './message.js';
import type { ReaderLease } from './reader-lease.js';

/** What {@link restoreFromStream} restores, from where, to where. */
export interface RestoreOptions {
  /** The NATS servers that hold the stream, as for `natsReplication({ servers })`. */
  readonly servers: string | readonly string[];
  /** The replicated store's name (`natsReplication({ name })`). */
  readonly name: string;
  /** A directory that does not exist yet, or is empty. */
  readonly to: string;
  /** The last stream sequence to include, or a time: every batch published before it. Default: all. */
  readonly at?: number | Date;
  /** @internal */
  readonly fileSystem?: FileSystem;
}

/** Where a restore stopped: the last batch it applied. */
export interface RestoreReport {
  /** Stream sequence of the last message applied. */
  readonly sequence: number;
  /** The lease epoch of the last batch applied. */
  readonly epoch: number;
  /** The number of the last batch applied within its epoch. */
  readonly batch: number;
  /**
   * The object-store snapshot the restore started from, if any: its manifest's MAC is checked with
   * the key of the restored store ({@link verifyRestoredSnapshot}, as `armdb restore` does).
   */
  readonly snapshot?: DecodedSnapshotManifest;
}

const MAC_INFO = new TextEncoder().encode('armdb/v1 replication');

/**
 * Whether the snapshot a restore started from carries a valid MAC under the restored store's
 * replication key (`deriveKey` of the engine opened on the result). True when it started from the stream.
 */
export function verifyRestoredSnapshot(report: RestoreReport, deriveKey: (info: Uint8Array, length: number) => Uint8Array): boolean {
  if (report.snapshot === undefined) return true;
  const key = deriveKey(MAC_INFO, 32);
  try {
    return verifySnapshotManifest(report.snapshot, key);
  } finally {
    key.fill(0);
  }
}

/** Rebuilds the store's files in `to` as of `at`. ARMDB_REPLICATION when there is nothing to restore. */
export async function restoreFromStream(options: RestoreOptions): Promise<RestoreReport> {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const root = path.resolve(options.to);
  if (fileSystem.list(root).length > 0) throw new TypeError(`"to" expected a new or empty directory, got ${root}`);
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  let connection: Awaited<ReturnType<typeof connect>>;
  try {
    connection = await connect({ servers, name: `armdb restore ${options.name}` });
  } catch (error) {
    throw armdbError('ARMDB_REPLICATION', 'could not connect to the NATS servers', error);
  }
  let lease: ReaderLease | undefined;
  try {
    const stream = `ARMDB_${options.name}`;
    const jsm = await jetstreamManager(connection);
    const info = await jsm.streams.info(stream).catch((error: unknown) => {
      throw armdbError('ARMDB_REPLICATION', `no stream for "${options.name}"`, error);
    });
    const js = jetstream(connection);
    let target = info.state.last_seq;
    if (typeof options.at === 'number') target = Math.min(target, options.at);
    else if (options.at instanceof Date) {
      const entry = await historyAt(js, options.name, options.at);
      if (entry === undefined) throw armdbError('ARMDB_REPLICATION', 'the manifest history holds nothing at or before that time');
      if (entry !== null) target = Math.min(target, entry.sequence);
      else {
        // A stream written before the history existed: the first message stored at or after the time; the restore ends just before it.
        const after = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.at.toISOString() });
        const first = await after.next({ expires: 2000 });
        if (first !== null) target = Math.min(target, first.seq - 1);
      }
    }
    // The newest object-store snapshot at or before the target, checked against the stream.
    const objects = await openObjectStore(js, options.name);
    const newestAtTarget = async () => (objects === undefined ? undefined : newestSnapshot(await listSnapshots(objects), target)?.manifest);
    let snapshot = await newestAtTarget();
    if (snapshot === undefined && target < info.state.first_seq) {
      throw armdbError(
        'ARMDB_REPLICATION',
        'the stream holds nothing at or before that point (it was trimmed behind the oldest snapshot kept)',
      );
    }
    fileSystem.makeDirectory(root, { followLink: true });
    let parts: DecodedPart[] = [];
    let epoch = 0;
    let batch = 0;
    let applied: RestoreReport | undefined;
    let start = info.state.first_seq;
    if (snapshot !== undefined && objects !== undefined) {
      await checkAgainstStream(jsm, stream, snapshot);
      // Under a reader lease (held to the end: the stream after the snapshot must stay), retried with
      // the newest snapshot at or before the target if the one chosen is deleted anyway.
      const checked = async () => {
        const newest = await newestAtTarget();
        if (newest !== undefined) await checkAgainstStream(jsm, stream, newest);
        return newest;
      };
      const session = { js, name: options.name, replicas: info.config.num_replicas };
      const downloaded = await downloadLeased(session, objects, snapshot, checked, fileSystem, root);
      lease = downloaded.lease;
      snapshot = downloaded.manifest;
      epoch = snapshot.epoch;
      batch = snapshot.batch;
      applied = { sequence: snapshot.sequence, epoch, batch, snapshot };
      start = snapshot.sequence + 1;
      if (start > target) return applied;
    }
    const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start });
    const messages = await consumer.consume();
    try {
      for await (const message of messages) {
        if (message.seq > target) break;
        const part = decodePart(message.data);
        if (part.epoch !== epoch || parts.length === 0) {
          const startsSnapshot = part.batch === 1 && part.part === 0 && part.operations[0]?.kind === 'reset';
          if (part.epoch < epoch) throw armdbError('ARMDB_ROLLBACK', `restore: lease epoch ${part.epoch} after ${epoch}`);
          if (part.epoch > epoch && !startsSnapshot) {
            // Before the first snapshot (a stream trimmed at its front): nothing to build on yet.
            if (applied === undefined) continue;
            throw integrityError('restore: a new epoch that does not start with a snapshot');
          }
          if (part.epoch === epoch && (part.batch !== batch + 1 || part.part !== 0)) throw integrityError('restore: a gap in the stream');
          // A batch its leader never finished (it was fenced or died) is dropped with the new epoch.
          parts = [];
        } else if (part.batch !== batch || part.part !== parts.length) throw integrityError('restore: a gap in the stream');
        epoch = part.epoch;
        batch = part.batch;
        parts.push(part);
        if (part.part === part.partCount - 1) {
          applyOperations(
            fileSystem,
            root,
            parts.flatMap((each) => each.operations),
          );
          parts = [];
          applied = { sequence: message.seq, epoch, batch, ...(snapshot === undefined ? {} : { snapshot }) };
        }
        if (message.seq >= target) break;
      }
    } finally {
      await messages.close().catch(() => undefined);
    }
    if (applied === undefined) throw armdbError('ARMDB_REPLICATION', 'the stream holds no complete snapshot at or before that point');
    return applied;
  } finally {
    await lease?.release();
    await connection.close().catch(() => undefined);
  }
}
