/**
 * Replication over NATS JetStream (docs/replication.md). A leader records the engine's file operations
 * at the FileSystem interface and publishes them at every durability point to one stream per store;
 * followers apply them to their own directory (byte-identical files) and reopen the engine read-only on
 * the result, which authenticates it as local recovery does. A KV key per store is the lease; its
 * revision is the epoch every message carries, and `expect.lastSequence` fences every publish.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as path from 'node:path';
import {
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { type KV, Kvm, KvWatchInclude } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ResolvedOptions } from '../config.js';
import { type Credential, makeCredential, rememberSlotKeys, wipeCredential } from '../crypto/keys.js';
import { Engine } from '../engine/engine.js';
import { ArmdbError, armdbError, integrityError } from '../errors.js';
import type { FileSystem } from '../io/file-system.js';
import { lockDirectory } from '../io/lock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { overlayFileSystem } from '../io/overlay-file-system.js';
import { type FileOperation, recordingFileSystem } from '../io/recording-file-system.js';
import { applyOperations, TouchedPaths } from './apply.js';
import {
  REPLICATION_DRIVER,
  type ReplicationController,
  type ReplicationDriver,
  type ReplicationOpenRequest,
  type ReplicationOption,
  type ReplicationStatus,
} from './contract.js';
import { EngineSlot } from './engine-slot.js';
import {
  type Capture,
  checkAgainstStream,
  type DecodedSnapshotManifest,
  downloadLeased,
  listSnapshots,
  newestSnapshot,
  openObjectStore,
  type SnapshotPolicy,
  SnapshotTaker,
  verifySnapshotManifest,
} from './bootstrap.js';
import { HistoryWriter } from './history.js';
import { type DecodedPart, decodePart, encodePart, splitIntoParts, verifyPart } from './message.js';
import {
  decodeProgress,
  type FollowerProgress,
  PROGRESS_NAME,
  readProgress,
  recordProgress,
  removeProgress,
  verifyProgress,
} from './progress.js';
import type { ReaderLease } from './reader-lease.js';
import { snapshotOperations } from './snapshot.js';

/** Options of {@link natsReplication}. */
export interface NatsReplicationOptions {
  /** NATS server URL(s), e.g. `'nats://127.0.0.1:4222'`. */
  readonly servers: string | readonly string[];
  /** The replicated store's name: `[A-Za-z0-9_-]{1,64}`; names its stream and lease bucket. */
  readonly name: string;
  /**
   * `'leader'` writes and ships; `'follower'` applies and serves reads (writes: ARMDB_READ_ONLY);
   * `'auto'` starts as a follower, watches the lease, and takes it with the next epoch when its holder
   * stops renewing it for `leaseTtlMs` (the first to take it leads, the others follow it); on a store
   * nobody published yet, the 'auto' node that creates the lease becomes its first leader.
   */
  readonly role: 'leader' | 'follower' | 'auto';
  /**
   * When a leader's `sync()` resolves: `'local'` (default) once durable on this machine, the stream
   * following (lag in `status()`); `'replicated'` once the stream acknowledged it too (with R3 a
   * quorum of the NATS servers holds it).
   */
  readonly ack?: 'local' | 'replicated';
  /** Lease time to live, 1000..3_600_000 ms; the leader renews it every third of it. Default 10_000. */
  readonly leaseTtlMs?: number;
  /** Replicas of the stream and lease bucket, 1..5. Default 3 on a clustered server, else 1. */
  readonly streamReplicas?: number;
  /** How this node names itself in the lease (`status().leader`). Default `host:pid`. */
  readonly holder?: string;
  /**
   * Object-store snapshots (docs/replication.md §Object-store snapshots): a leader stores one once
   * this many bytes were written since the last. Snapshots are off unless this or `snapshotEveryMs` is set.
   */
  readonly snapshotEveryBytes?: number;
  /** A leader stores a snapshot once this long passed since the last (and something was written). */
  readonly snapshotEveryMs?: number;
  /** Snapshots kept in the object store, 1..100; older ones and the objects only they name are deleted. Default 2. */
  readonly retainSnapshots?: number;
  /**
   * Whether the stream (and the manifest history) is trimmed up to the oldest snapshot kept. Default
   * true: point-in-time restore then reaches back to that snapshot and no further.
   */
  readonly trimStream?: boolean;
  /**
   * Whether a leader records each batch in the manifest history bucket that `restore --at <time>`
   * reads (one KV put per batch, in the background). Default true; without it a restore to a time
   * falls back to the stream's timestamps.
   */
  readonly manifestHistory?: boolean;
  /**
   * Bound on what a leader holds in memory that the stream has not acknowledged yet (file operations
   * recorded, parts not yet stored), in bytes, 65_536..2^40. At the bound (servers unreachable, or
   * slower than the writes), new puts and deletes throw `ARMDB_REPLICATION` and `sync()` waits for the
   * stream as with `ack: 'replicated'`; writes are accepted again once the backlog is down to half the
   * bound. Default 64 MiB.
   */
  readonly maxUnpublishedBytes?: number;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAC_INFO = new TextEncoder().encode('armdb/v1 replication');
const LEASE_KEY = 'lease';
/** A follower serves what it applied at least this often under a steady stream. */
const MAX_UNSERVED_MS = 1000;
/** How often a follower checks that its consumer still delivers, and how many checks without progress replace it. */
const CONSUMER_CHECK_MS = 1000;
/**
 * A follower makes what it applied durable at a caught-up point at most this often (and after every
 * snapshot, bootstrap and at close): a follower of a leader that syncs often is caught up after nearly
 * every batch, and need not fsync each (docs/replication.md §Measurements).
 */
const PROGRESS_EVERY_MS = 1000;
const STALLED_CHECKS = 3;
/** Tries of one batch before a sync fails with ARMDB_REPLICATION (about 10 s of backoff); the batch stays queued. */
const MAX_PUBLISH_ATTEMPTS = 8;
/** Room left in a message for its NATS headers (Nats-Msg-Id, Nats-Expected-Last-Sequence). */
const PUBLISH_HEADER_ROOM_BYTES = 1024;
/** Default of `maxUnpublishedBytes`. */
const DEFAULT_MAX_UNPUBLISHED_BYTES = 64 * 2 ** 20;
/** While writes are held, a publish that failed is tried again this often (there is no new durability point to trigger it). */
const HELD_RETRY_MS = 1000;
/** What an operation costs in the backlog besides its bytes: its framing and path, roughly. */
const OPERATION_OVERHEAD_BYTES = 64;

interface Names {
  readonly stream: string;
  readonly files: string;
  readonly snapshot: string;
  readonly bucket: string;
}

function namesOf(name: string): Names {
  return { stream: `ARMDB_${name}`, files: `armdb.${name}.files`, snapshot: `armdb.${name}.snapshot`, bucket: `ARMDB_${name}` };
}

/** What an operation holds in memory until it is published, for `maxUnpublishedBytes`. */
function operationBytes(operation: FileOperation): number {
  return OPERATION_OVERHEAD_BYTES + (operation.kind === 'write' ? operation.bytes.length : 0);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

function isWrongLastSequence(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /wrong last sequence|wrong last msg|10071/i.test(message);
}

/**
 * The `replication` option: replicate the collection over NATS JetStream. The `@nats-io/*` packages
 * are optional peer dependencies: install `@nats-io/transport-node`, `@nats-io/jetstream` and
 * `@nats-io/kv` to use it. The store needs `encryption` (only sealed bytes are shipped); followers open
 * with the same encryption option as the leader: keys and passphrases never go to NATS.
 *
 * @example
 * ```ts
 * import { VarMap } from 'armdb';
 * import { natsReplication } from 'armdb/replication';
 *
 * const primary = await VarMap.open('./a', { keySize: 16, encryption,
 *   replication: natsReplication({ servers: 'nats://127.0.0.1:4222', name: 'sessions', role: 'leader' }) });
 * const replica = await VarMap.open('./b', { keySize: 16, encryption,
 *   replication: natsReplication({ servers: 'nats://127.0.0.1:4222', name: 'sessions', role: 'follower' }) });
 * await replica.replication.caughtUp();
 * ```
 */
export function natsReplication(options: NatsReplicationOptions): ReplicationOption {
  const checked = checkOptions(options);
  const driver: ReplicationDriver = { open: (request) => openReplicated(checked, request) };
  return Object.freeze({ [REPLICATION_DRIVER]: driver });
}

interface CheckedOptions {
  readonly servers: string[];
  readonly name: string;
  readonly role: 'leader' | 'follower' | 'auto';
  readonly ack: 'local' | 'replicated';
  readonly leaseTtlMs: number;
  readonly streamReplicas: number | undefined;
  readonly holder: string;
  readonly snapshots: SnapshotPolicy | undefined;
  readonly manifestHistory: boolean;
  readonly maxUnpublishedBytes: number;
}

function checkOptions(options: NatsReplicationOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected object');
  const servers = typeof options.servers === 'string' ? [options.servers] : options.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((server) => typeof server !== 'string' || server.length === 0)) {
    throw new TypeError('"servers" expected a URL or a non-empty array of URLs');
  }
  if (typeof options.name !== 'string' || !NAME.test(options.name)) throw new TypeError('"name" expected [A-Za-z0-9_-]{1,64}');
  if (options.role !== 'leader' && options.role !== 'follower' && options.role !== 'auto') {
    throw new TypeError("\"role\" expected 'leader' | 'follower' | 'auto'");
  }
  const ack = options.ack ?? 'local';
  if (ack !== 'local' && ack !== 'replicated') throw new TypeError("\"ack\" expected 'local' | 'replicated'");
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  if (!Number.isInteger(leaseTtlMs) || leaseTtlMs < 1000 || leaseTtlMs > 3_600_000) {
    throw new RangeError(`"leaseTtlMs" expected integer 1000..3600000, got ${leaseTtlMs}`);
  }
  const streamReplicas = options.streamReplicas;
  if (streamReplicas !== undefined && (!Number.isInteger(streamReplicas) || streamReplicas < 1 || streamReplicas > 5)) {
    throw new RangeError(`"streamReplicas" expected integer 1..5, got ${streamReplicas}`);
  }
  const manifestHistory = options.manifestHistory ?? true;
  if (typeof manifestHistory !== 'boolean') throw new TypeError('"manifestHistory" expected boolean');
  const maxUnpublishedBytes = options.maxUnpublishedBytes ?? DEFAULT_MAX_UNPUBLISHED_BYTES;
  if (!Number.isSafeInteger(maxUnpublishedBytes) || maxUnpublishedBytes < 65_536 || maxUnpublishedBytes > 2 ** 40) {
    throw new RangeError(`"maxUnpublishedBytes" expected integer 65536..${2 ** 40}, got ${maxUnpublishedBytes}`);
  }
  const holder = options.holder ?? `${hostname()}:${process.pid}`;
  if (typeof holder !== 'string' || holder.length === 0 || holder.length > 256)
    throw new TypeError('"holder" expected a string of 1..256 characters');
  return {
    servers: [...servers],
    name: options.name,
    role: options.role,
    ack,
    leaseTtlMs,
    streamReplicas,
    holder,
    snapshots: snapshotPolicyOf(options),
    manifestHistory,
    maxUnpublishedBytes,
  };
}

function snapshotPolicyOf(options: NatsReplicationOptions): SnapshotPolicy | undefined {
  const { snapshotEveryBytes: everyBytes, snapshotEveryMs: everyMs, retainSnapshots: retain = 2, trimStream = true } = options;
  if (everyBytes !== undefined && (!Number.isSafeInteger(everyBytes) || everyBytes < 1)) {
    throw new RangeError(`"snapshotEveryBytes" expected integer >= 1, got ${everyBytes}`);
  }
  if (everyMs !== undefined && (!Number.isSafeInteger(everyMs) || everyMs < 1))
    throw new RangeError(`"snapshotEveryMs" expected integer >= 1, got ${everyMs}`);
  if (!Number.isInteger(retain) || retain < 1 || retain > 100)
    throw new RangeError(`"retainSnapshots" expected integer 1..100, got ${retain}`);
  if (typeof trimStream !== 'boolean') throw new TypeError('"trimStream" expected boolean');
  if (everyBytes === undefined && everyMs === undefined) return undefined;
  return { everyBytes, everyMs, retain, trimStream };
}

async function openReplicated(options: CheckedOptions, request: ReplicationOpenRequest) {
  const credential = request.options.credential;
  if (credential === undefined) {
    throw armdbError('ARMDB_REPLICATION', "replication needs an encrypted store: with encryption 'none' the files are plaintext");
  }
  let replica: Replica | undefined;
  let session: NatsSession | undefined;
  try {
    session = await NatsSession.connect(options);
    // The replica keeps a copy of its own for every reopen; the one open() resolved goes now.
    replica = new Replica(options, session, request);
    wipeCredential(credential);
    const engine =
      options.role === 'leader'
        ? await replica.openLeader()
        : options.role === 'auto'
          ? await replica.openAuto()
          : await replica.openFollower();
    if (options.role === 'auto' && replica.status().role === 'follower') await replica.watchLease();
    return { engine, controller: replica as ReplicationController };
  } catch (error) {
    wipeCredential(credential);
    replica?.abandon();
    await session?.close();
    throw error;
  }
}

/** The connection, the stream and the lease bucket of one replicated store. */
class NatsSession {
  readonly connection: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly kv: KV;
  readonly names: Names;
  readonly maxPayloadBytes: number;
  readonly replicas: number;

  private constructor(connection: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, kv: KV, names: Names, replicas: number) {
    this.connection = connection;
    this.js = js;
    this.jsm = jsm;
    this.kv = kv;
    this.names = names;
    this.replicas = replicas;
    // The server's limit counts the headers too (message id, expected last sequence): a part cut to
    // exactly max_payload was refused by the client, and a batch above it never published.
    this.maxPayloadBytes = (connection.info?.max_payload ?? 1024 * 1024) - PUBLISH_HEADER_ROOM_BYTES;
  }

  static async connect(options: CheckedOptions): Promise<NatsSession> {
    let connection: NatsConnection;
    try {
      connection = await connect({ servers: options.servers, name: `armdb ${options.name} ${options.role}` });
    } catch (error) {
      throw armdbError('ARMDB_REPLICATION', 'could not connect to the NATS servers', error);
    }
    try {
      const names = namesOf(options.name);
      const jsm = await jetstreamManager(connection);
      const js = jetstream(connection);
      const replicas = options.streamReplicas ?? (connection.info?.cluster === undefined ? 1 : 3);
      try {
        await jsm.streams.info(names.stream);
      } catch {
        try {
          await jsm.streams.add({
            name: names.stream,
            subjects: [`armdb.${options.name}.>`],
            storage: StorageType.File,
            retention: RetentionPolicy.Limits,
            discard: DiscardPolicy.Old,
            num_replicas: replicas,
          });
        } catch (error) {
          // Another node created it meanwhile: then it is there now.
          await jsm.streams.info(names.stream).catch(() => {
            throw error;
          });
        }
      }
      const kv = await new Kvm(js).create(names.bucket, { history: 1, ttl: options.leaseTtlMs, replicas });
      return new NatsSession(connection, js, jsm, kv, names, replicas);
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error instanceof ArmdbError
        ? error
        : armdbError('ARMDB_REPLICATION', 'could not set up the stream and the lease bucket', error);
    }
  }

  /**
   * The stream's last sequence now (0 when empty). A request that timed out is asked again, twice: a
   * stream electing its leader, or servers on a loaded machine, can miss the 5 s of one request.
   */
  async lastSequence(): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        const info = await this.jsm.streams.info(this.names.stream);
        return info.state.last_seq;
      } catch (error) {
        if (attempt >= 3 || !(error instanceof Error) || error.name !== 'TimeoutError') throw error;
      }
    }
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/** What a batch leaves for after its publication: its number, the engine's MANIFEST epoch, a capture. */
interface Landed {
  readonly batch: number;
  readonly manifestEpoch: number;
  readonly capture: Capture | undefined;
}

/** How {@link Replica} takes the lease: see #takeLease. */
type LeaseTake = 'create' | 'takeOver' | { readonly expiredRevision: number };

interface PublishedPart {
  readonly bytes: Uint8Array;
  readonly subject: string;
  readonly messageId: string;
}

interface Waiter {
  readonly sequence: number;
  /** Wait for the sequence to be applied to the directory only, not yet served by reads (promote()). */
  readonly appliedOnly?: boolean;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** One replicated collection: leader or follower, and a follower that becomes the leader. */
class Replica implements ReplicationController {
  readonly #options: CheckedOptions;
  readonly #session: NatsSession;
  readonly #request: ReplicationOpenRequest;
  readonly #root: string;
  readonly #fileSystem: FileSystem;
  /** A private copy of the secret, for every reopen; wiped at close. */
  readonly #credential: Credential;
  #role: 'leader' | 'follower' | 'fenced';
  #epoch = 0;
  #leaseRevision = 0;
  /** Random per controller, not a secret: marks the lease entries this controller wrote (#leaseValue). */
  readonly #leaseToken = randomBytes(16).toString('hex');
  #leader: string | undefined;
  #error: Error | undefined;
  #slot: EngineSlot | undefined;
  #macKey: Uint8Array | undefined;
  #closed = false;
  // leader
  #pending: FileOperation[] = [];
  #pendingSinceMs: number | undefined;
  /** Bytes of {@link #pending} (operationBytes), for the bound `maxUnpublishedBytes`. */
  #pendingBytes = 0;
  /** New records are refused: the backlog reached `maxUnpublishedBytes` (#checkBacklog). */
  #backlogHeld = false;
  /** Bytes of the parts of the batch in flight that the stream has not acknowledged yet. */
  #inFlightBytes = 0;
  #batch = 0;
  #publishedSequence = 0;
  #publishing: Promise<void> | undefined;
  #publishScheduled = false;
  #renewTimer: NodeJS.Timeout | undefined;
  /** A leader's watch of its own lease key: another node's entry fences it at once (#watchOwnLease). */
  #ownLeaseWatch: { stop(): void } | undefined;
  /** The batch being published, its parts encoded once so that a retry sends the very same bytes. */
  #inFlight: { readonly sinceMs: number; next: number; readonly parts: readonly PublishedPart[]; readonly landed?: Landed } | undefined;
  /** Object-store snapshots and the manifest history (src/replication/bootstrap.ts, history.ts). */
  readonly #snapshots: SnapshotTaker | undefined;
  readonly #history: HistoryWriter;
  /** The engine a leader writes through (the slot still holds a promoting follower's until its first batch is out). */
  #writable: Engine | undefined;
  #lastManifestEpoch = 0;
  // follower
  #appliedSequence = 0;
  #servedSequence = 0;
  #lastServedAtMs = 0;
  #oldestUnservedMs: number | undefined;
  #databaseId: Uint8Array | undefined;
  /** The lease epoch of the messages applied: checked apart from {@link #epoch}, which promote() moves on first. */
  #streamEpoch = 0;
  #expectedBatch = 0;
  #batchParts: DecodedPart[] = [];
  /** The last complete batch applied to the directory: its number and the sequence of its last part. */
  #appliedBatch = { batch: 0, sequence: 0 };
  /** The sequence the progress file names (src/replication/progress.ts). */
  #durableSequence = 0;
  #progressAtMs = 0;
  /** What was applied since the last durable point, to fsync at the next. */
  readonly #touched = new TouchedPaths();
  /** From a resume until the next durable point the directory may hold a prefix of what is applied again. */
  #replayingPrefix = false;
  /** Set by a message that found the stream trimmed past it: the consumer starts again after the new bootstrap. */
  #restartConsumer = false;
  #manifestEpochFloor = 0;
  #messages: ConsumerMessages | undefined;
  #consumerDone: Promise<void> | undefined;
  #consumerStopping = false;
  #consumerWatch: NodeJS.Timeout | undefined;
  /** A message is being applied (or the engine reopened on it): the consumer is not stalled. */
  #receiving = false;
  #waiters: Waiter[] = [];

  constructor(options: CheckedOptions, session: NatsSession, request: ReplicationOpenRequest) {
    this.#options = options;
    this.#session = session;
    this.#request = request;
    this.#root = path.resolve(request.directory);
    this.#fileSystem = request.fileSystem ?? nodeFileSystem;
    this.#credential = makeCredential(request.options.credential!);
    // Every reopen of a follower opens the KEYRING with a copy: the passphrase's KDF runs once, not at each.
    rememberSlotKeys(this.#credential);
    this.#role = options.role === 'leader' ? 'leader' : 'follower';
    this.#history = new HistoryWriter(session.js, session.jsm, options.name, session.replicas);
    if (options.snapshots !== undefined) {
      const trimHistory = (sequence: number): Promise<void> => this.#history.trimBefore(sequence);
      this.#snapshots = new SnapshotTaker(
        {
          js: session.js,
          jsm: session.jsm,
          name: options.name,
          stream: session.names.stream,
          replicas: session.replicas,
          maxPayloadBytes: session.maxPayloadBytes,
          ...(options.manifestHistory ? { onTrimmed: trimHistory } : {}),
        },
        this.#fileSystem,
        this.#root,
        options.snapshots,
      );
    }
  }

  // ---- the public handle -----------------------------------------------------------------------

  status(): ReplicationStatus {
    const now = Date.now();
    let lagMs = 0;
    if (this.#role === 'leader') {
      const sinceMs = this.#inFlight?.sinceMs ?? this.#pendingSinceMs;
      if (sinceMs !== undefined) lagMs = now - sinceMs;
    }
    if (this.#role === 'follower' && this.#oldestUnservedMs !== undefined) lagMs = Math.max(0, now - this.#oldestUnservedMs);
    return {
      role: this.#role,
      epoch: this.#epoch,
      appliedSequence: this.#role === 'follower' ? this.#servedSequence : this.#publishedSequence,
      lagMs,
      leader: this.#leader,
      error: this.#error,
    };
  }

  async caughtUp(): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#role !== 'follower') {
      await this.#flush();
      // And the history entries and the object-store snapshot of what was published.
      await this.#history.settled();
      await this.#snapshots?.settled();
      return;
    }
    const target = await this.#session.lastSequence();
    // Replication may have stopped while the stream answered.
    if (this.#error !== undefined) throw this.#error;
    if (this.#servedSequence >= target) return;
    await new Promise<void>((resolve, reject) => this.#waiters.push({ sequence: target, resolve, reject }));
  }

  async sync(): Promise<void> {
    const engine = this.#engine();
    if (this.#role === 'leader' && this.#options.ack === 'local') {
      // The lease is read while the fsyncs run: a sync costs the longer of the two, not their sum.
      const lease = this.#checkLease();
      lease.catch(() => undefined);
      await engine.sync();
      await lease;
      // At the backlog's bound, sync() waits for the stream as with ack 'replicated' (backpressure).
      if (this.#backlogHeld) await this.#flush();
      return;
    }
    await engine.sync();
    if (this.#role === 'fenced') throw this.#fencedError();
    if (this.#role === 'leader') await this.#flush();
  }

  promote(): Promise<void> {
    return this.#promote('takeOver');
  }

  /** `promote()` takes the lease whatever its state; role 'auto' only the expired one it watched. */
  #promote(mode: LeaseTake): Promise<void> {
    this.#promoting ??= this.#promoteOnce(mode).finally(() => {
      this.#promoting = undefined;
    });
    return this.#promoting;
  }

  async #promoteOnce(mode: LeaseTake): Promise<void> {
    if (this.#closed) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    if (this.#role === 'leader') return;
    if (this.#role === 'fenced') throw armdbError('ARMDB_FENCED', 'a fenced leader cannot take the lease again; reopen it as a follower');
    if (this.#error !== undefined) throw this.#error;
    await this.#takeLease(mode);
    let engine: Engine | undefined;
    try {
      this.#stopLeaseWatch();
      // Everything the old leader published up to now is applied before this node writes. A batch it
      // left unfinished (it died between two parts) was never acknowledged: it is dropped.
      const target = await this.#session.lastSequence();
      if (this.#error !== undefined) throw this.#error;
      if (this.#appliedSequence < target) {
        await new Promise<void>((resolve, reject) => this.#waiters.push({ sequence: target, appliedOnly: true, resolve, reject }));
      }
      await this.#stopConsumer();
      this.#batchParts = [];
      this.#macKey?.fill(0);
      this.#macKey = undefined;
      // The read-only engine serves reads until the writable one replaces it (its lock is its overlay's);
      // status() says 'leader' once writes go to the new one.
      engine = await this.#openWritable(this.#appliedSequence);
      if (this.#closed) throw armdbError('ARMDB_CLOSED', 'the collection was closed while it was being promoted');
    } catch (error) {
      await this.#abandonPromotion(engine, error);
      throw error;
    }
    const previous = this.#slot!.swap(engine);
    this.#role = 'leader';
    await this.#watchOwnLease();
    await previous.close();
  }

  /**
   * A promotion that failed (or met close()) after it took the lease: the renewals stop and the lease
   * is handed back, so that another node can take it instead of waiting on a holder that never leads;
   * a writable engine it opened is closed (its lock, its files). Replication stops with the error and
   * reads go on serving the last good state.
   */
  async #abandonPromotion(engine: Engine | undefined, error: unknown): Promise<void> {
    clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    this.#macKey?.fill(0);
    this.#macKey = undefined;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (engine !== undefined) {
      if (this.#writable === engine) this.#writable = undefined;
      await engine.close().catch(() => undefined);
    }
    await this.#session.kv.delete(LEASE_KEY, { previousSeq: this.#leaseRevision }).catch(() => undefined);
    if (!this.#closed) this.#stopWith(error instanceof Error ? error : new Error(String(error)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#renewTimer);
    this.#stopLeaseWatch();
    this.#stopOwnLeaseWatch();
    try {
      await this.#stopConsumer();
      // Read after the consumer stopped: a batch being applied may have swapped in a newer engine.
      const engine = this.#slot?.current;
      if (engine !== undefined) await engine.close();
      if (this.#role === 'leader') {
        await this.#flush().catch(() => undefined);
        await this.#history.settled();
        await this.#snapshots?.settled();
        // A clean close hands the lease back, so the next leader need not wait for it to expire.
        await this.#session.kv.delete(LEASE_KEY, { previousSeq: this.#leaseRevision }).catch(() => undefined);
      }
    } finally {
      for (const waiter of this.#waiters) waiter.reject(armdbError('ARMDB_CLOSED', 'the collection is closed'));
      this.#waiters = [];
      this.#macKey?.fill(0);
      wipeCredential(this.#credential);
      await this.#session.close();
    }
  }

  /** An open that failed: the private copy of the secret goes. */
  abandon(): void {
    clearInterval(this.#renewTimer);
    this.#stopLeaseWatch();
    this.#stopOwnLeaseWatch();
    this.#macKey?.fill(0);
    wipeCredential(this.#credential);
  }

  #engine(): Engine {
    if (this.#slot === undefined) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    return this.#slot.engine;
  }

  // ---- the lease -------------------------------------------------------------------------------

  /**
   * Takes the lease: only if nobody holds it (`'create'`, a leader's open), from whoever does
   * (`'takeOver'`, `promote()`), or if it still is the revision that went unrenewed for a whole TTL
   * (`expiredRevision`, role 'auto'): a compare-and-set, so of several nodes taking it one wins.
   */
  async #takeLease(mode: LeaseTake): Promise<void> {
    const kv = this.#session.kv;
    const value = this.#leaseValue();
    const current = await this.#readLease();
    let revision: number;
    try {
      if (current === null || current.operation !== 'PUT') {
        revision = await kv.create(LEASE_KEY, value);
      } else if (mode === 'takeOver' || (typeof mode === 'object' && mode.expiredRevision === current.revision)) {
        revision = await kv.update(LEASE_KEY, value, current.revision);
      } else if (typeof mode === 'object') {
        throw armdbError('ARMDB_FENCED', `the lease of "${this.#options.name}" was renewed or taken by another node`);
      } else {
        throw armdbError(
          'ARMDB_FENCED',
          `the lease of "${this.#options.name}" is held by another leader; promote() a follower or wait for it to expire`,
        );
      }
    } catch (error) {
      if (error instanceof ArmdbError) throw error;
      throw armdbError('ARMDB_FENCED', 'another node took the lease at the same time', error);
    }
    this.#epoch = revision;
    this.#leaseRevision = revision;
    this.#leader = this.#options.holder;
    clearInterval(this.#renewTimer);
    this.#renewTimer = setInterval(() => void this.#renewLease(), Math.floor(this.#options.leaseTtlMs / 3));
    this.#renewTimer.unref();
  }

  /**
   * The lease entry now. A read that timed out is tried again, twice: a bucket just created (several
   * nodes opening a new store together) or electing its leader can miss the 5 s of one request.
   */
  async #readLease(): Promise<Awaited<ReturnType<KV['get']>>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#session.kv.get(LEASE_KEY);
      } catch (error) {
        if (attempt >= 3 || !(error instanceof Error) || error.name !== 'TimeoutError') throw error;
      }
    }
  }

  /**
   * The lease's value: the holder's name for people, and a random token of this controller for the
   * lease itself. hostname:pid is not unique (a leader and a follower promoted in the same process),
   * the token is: it tells a renewal of our own whose reply was lost from a lease another node took.
   */
  #leaseValue(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ holder: this.#options.holder, token: this.#leaseToken }));
  }

  /** Whether the lease entry is one this controller wrote (its token), whatever its revision. */
  #isOwnLease(entry: { readonly operation: string; readonly value: Uint8Array } | null): boolean {
    if (entry === null || entry.operation !== 'PUT') return false;
    try {
      const token: unknown = (JSON.parse(new TextDecoder().decode(entry.value)) as { token?: unknown }).token;
      return token === this.#leaseToken;
    } catch {
      return false;
    }
  }

  async #renewLease(): Promise<void> {
    // From the take on, promote()'s open included: the renew timer runs only on a node that took the lease.
    if (this.#role === 'fenced' || this.#closed) return;
    try {
      this.#leaseRevision = await this.#session.kv.update(LEASE_KEY, this.#leaseValue(), this.#leaseRevision);
    } catch (error) {
      if (!isWrongLastSequence(error)) return; // The servers are unreachable: the next publish or sync finds out where the lease is.
      // A renewal whose reply was lost (a NATS node died after applying it) moved the revision too:
      // the lease is still ours exactly when the entry holds our token.
      const entry = await this.#session.kv.get(LEASE_KEY).catch(() => undefined);
      if (entry === undefined) return;
      if (this.#isOwnLease(entry)) this.#leaseRevision = entry!.revision;
      else this.#fence(error);
    }
  }

  /**
   * Role 'auto': follows the lease key. Every renewal seen (a PUT) rearms a timer of one TTL; when it
   * fires with no renewal seen, or when the key is deleted (a leader's clean close), this follower
   * tries to take the lease with the next epoch ({@link #promote}). The watch only says when to try:
   * the take is a compare-and-set on the revision that went unrenewed, so a renewal the watch missed,
   * or another follower first, leaves this one a follower, watching the new holder.
   */
  async watchLease(): Promise<void> {
    const kv = this.#session.kv;
    const current = await kv.get(LEASE_KEY).catch(() => null);
    this.#armLeaseTimer(current !== null && current.operation === 'PUT' ? current.revision : 0);
    let watcher: Awaited<ReturnType<KV['watch']>>;
    try {
      watcher = await kv.watch({ key: LEASE_KEY, include: KvWatchInclude.UpdatesOnly });
    } catch {
      // Without the watch the timer alone looks at the lease once per TTL (#takeExpiredLease rearms it).
      return;
    }
    this.#leaseWatch = watcher;
    void (async () => {
      for await (const entry of watcher) {
        if (this.#role !== 'follower' || this.#closed) break;
        if (entry.operation === 'PUT') this.#armLeaseTimer(entry.revision);
        else this.#armLeaseTimer(0, 0);
      }
    })().catch(() => undefined);
  }

  /** Tries to take the lease once `delayMs` passed without another renewal than `revision` (0: none). */
  #armLeaseTimer(revision: number, delayMs = this.#options.leaseTtlMs): void {
    clearTimeout(this.#leaseTimer);
    if (this.#role !== 'follower' || this.#closed) return;
    this.#leaseTimer = setTimeout(() => void this.#takeExpiredLease(revision), delayMs);
    this.#leaseTimer.unref();
  }

  async #takeExpiredLease(revision: number): Promise<void> {
    if (this.#role !== 'follower' || this.#closed || this.#error !== undefined) return;
    let entry: Awaited<ReturnType<KV['get']>>;
    try {
      entry = await this.#session.kv.get(LEASE_KEY);
    } catch {
      // The servers did not answer: look again a third of a TTL later.
      this.#armLeaseTimer(revision, Math.ceil(this.#options.leaseTtlMs / 3));
      return;
    }
    const held = entry !== null && entry.operation === 'PUT';
    if (held && entry!.revision !== revision) {
      // Renewed (or taken) meanwhile, and the watch has not said so yet.
      this.#armLeaseTimer(entry!.revision);
      return;
    }
    try {
      await this.#promote({ expiredRevision: held ? entry!.revision : 0 });
    } catch (error) {
      if (this.#closed || this.#role !== 'follower' || this.#error !== undefined) return;
      if (this.#leaseRevision === 0) {
        // Not taken: another node took it first (ARMDB_FENCED), or the servers did not answer. Follow
        // whoever holds it, and watch that lease from now on.
        const now = await this.#session.kv.get(LEASE_KEY).catch(() => null);
        this.#armLeaseTimer(now !== null && now.operation === 'PUT' ? now.revision : revision);
        return;
      }
      // Taken, but the promotion failed after: replication stops, reads go on.
      this.#stopWith(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #stopLeaseWatch(): void {
    clearTimeout(this.#leaseTimer);
    this.#leaseTimer = undefined;
    this.#leaseWatch?.stop();
    this.#leaseWatch = undefined;
  }

  /** Rejects with ARMDB_FENCED (and fences this leader) once another node holds the lease. */
  async #checkLease(): Promise<void> {
    if (this.#role === 'fenced') throw this.#fencedError();
    const entry = await this.#session.kv.get(LEASE_KEY).catch((error: unknown) => {
      throw armdbError('ARMDB_REPLICATION', 'replication: the lease could not be read (what sync() wrote is durable locally)', error);
    });
    if (entry !== null && entry.revision !== this.#leaseRevision && this.#isOwnLease(entry)) {
      // Our own renewal, applied but unanswered (see #renewLease).
      this.#leaseRevision = entry.revision;
      return;
    }
    if (entry === null || entry.operation !== 'PUT' || entry.revision !== this.#leaseRevision) {
      this.#fence(undefined);
      throw this.#fencedError();
    }
  }

  #fencedError(): ArmdbError {
    return armdbError('ARMDB_FENCED', 'another node took the lease: this leader never appends again');
  }

  #fence(cause: unknown): void {
    if (this.#role === 'fenced') return;
    this.#role = 'fenced';
    clearInterval(this.#renewTimer);
    this.#stopOwnLeaseWatch();
    this.#error ??= armdbError('ARMDB_FENCED', 'another node took the lease: this leader never appends again', cause);
    this.#slot?.current.refuseWrites('ARMDB_FENCED', 'another node took the lease: this leader never appends again');
    this.#writable?.refuseWrites('ARMDB_FENCED', 'another node took the lease: this leader never appends again');
  }

  /**
   * A leader watches its own lease key, so that it is fenced as soon as another node takes the lease
   * (an entry without this controller's token) or deletes it, rather than at its next batch or sync:
   * an idle old leader's next write throws ARMDB_FENCED. The watch only adds an earlier fence: a
   * renewal of our own it reports moves the revision on (as #checkLease does), and the check before
   * every batch and sync stays, for a watch that missed an update (it starts after the take; its
   * consumer can stall when its NATS node dies).
   */
  async #watchOwnLease(): Promise<void> {
    this.#stopOwnLeaseWatch();
    let watcher: Awaited<ReturnType<KV['watch']>>;
    try {
      watcher = await this.#session.kv.watch({ key: LEASE_KEY, include: KvWatchInclude.UpdatesOnly });
    } catch {
      return; // The per-batch and per-sync checks remain.
    }
    if (this.#role !== 'leader' || this.#closed) {
      watcher.stop();
      return;
    }
    this.#ownLeaseWatch = watcher;
    void (async () => {
      for await (const entry of watcher) {
        if (this.#role !== 'leader' || this.#closed || this.#ownLeaseWatch !== watcher) break;
        if (this.#isOwnLease(entry)) {
          if (entry.revision > this.#leaseRevision) this.#leaseRevision = entry.revision;
          continue;
        }
        this.#fence(
          armdbError(
            'ARMDB_FENCED',
            `the lease of "${this.#options.name}" was ${entry.operation === 'PUT' ? 'taken' : 'deleted'} by another node`,
          ),
        );
        break;
      }
    })().catch(() => undefined);
  }

  #stopOwnLeaseWatch(): void {
    this.#ownLeaseWatch?.stop();
    this.#ownLeaseWatch = undefined;
  }

  // ---- the leader ------------------------------------------------------------------------------

  /**
   * Role 'auto': follows the store when a leader published it; on a store nobody published yet (an
   * empty stream) it becomes the first leader if it creates the lease key, a compare-and-set of which
   * one node wins. A node that loses follows the winner once its first snapshot is in the stream, or
   * tries again if the lease goes (its holder died before publishing). Gives up with ARMDB_REPLICATION
   * after three lease TTLs with a lease held and nothing published.
   */
  async openAuto(): Promise<Engine> {
    const deadline = Date.now() + 3 * this.#options.leaseTtlMs;
    for (let attempt = 0; ; attempt++) {
      if ((await this.#session.lastSequence()) > 0) return this.openFollower();
      try {
        await this.#takeLease('create');
      } catch (error) {
        if (!(error instanceof ArmdbError) || error.code !== 'ARMDB_FENCED') throw error;
        // Another node holds the lease and is about to publish its first snapshot: wait for it.
        if (Date.now() > deadline) {
          throw armdbError('ARMDB_REPLICATION', `the lease of "${this.#options.name}" is held but nothing was published`, error);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 500)));
        continue;
      }
      // Won. A leader that published and closed (handing the lease back) between the two reads
      // above leaves a stream to follow: hand the lease back and follow it.
      if ((await this.#session.lastSequence().catch(() => 1)) > 0) {
        clearInterval(this.#renewTimer);
        await this.#session.kv.delete(LEASE_KEY, { previousSeq: this.#leaseRevision }).catch(() => undefined);
        this.#leaseRevision = 0;
        this.#epoch = 0;
        continue;
      }
      this.#role = 'leader';
      try {
        const engine = await this.#openWritable(0);
        await this.#watchOwnLease();
        return engine;
      } catch (error) {
        clearInterval(this.#renewTimer);
        this.#stopOwnLeaseWatch();
        await this.#session.kv.delete(LEASE_KEY, { previousSeq: this.#leaseRevision }).catch(() => undefined);
        throw error;
      }
    }
  }

  async openLeader(): Promise<Engine> {
    await this.#takeLease('create');
    try {
      const engine = await this.#openWritable(await this.#session.lastSequence());
      await this.#watchOwnLease();
      return engine;
    } catch (error) {
      clearInterval(this.#renewTimer);
      this.#stopOwnLeaseWatch();
      await this.#session.kv.delete(LEASE_KEY, { previousSeq: this.#leaseRevision }).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Opens the directory writable with its file operations recorded, and ships a snapshot of it (the
   * files as they were before the open) followed by what the open did, as the first batch of the epoch.
   */
  async #openWritable(lastSequence: number): Promise<Engine> {
    const { fileSystem } = this;
    // The snapshot is read under the directory lock, which is then handed to the engine's open.
    fileSystem.makeDirectory(this.#root, { followLink: true });
    const lock = lockDirectory(fileSystem, this.#root);
    let snapshot: FileOperation[];
    try {
      snapshot = snapshotOperations(fileSystem, this.#root);
      // A follower's progress describes files a leader is about to move on from.
      removeProgress(fileSystem, this.#root);
    } finally {
      lock.release();
    }
    await fileSystem.syncDirectory(this.#root);
    this.#pending = snapshot;
    this.#pendingBytes = snapshot.reduce((sum, operation) => sum + operationBytes(operation), 0);
    this.#pendingSinceMs = Date.now();
    this.#batch = 0;
    this.#publishedSequence = lastSequence;
    const recording = recordingFileSystem(this.#snapshots?.track(fileSystem) ?? fileSystem, this.#root, {
      onOperation: (operation) => {
        if (this.#role === 'fenced') return;
        this.#pendingSinceMs ??= Date.now();
        this.#pending.push(operation);
        this.#pendingBytes += operationBytes(operation);
        if (!this.#backlogHeld && this.#pendingBytes + this.#inFlightBytes >= this.#options.maxUnpublishedBytes) this.#checkBacklog();
      },
      onDurable: () => this.#schedulePublish(),
    });
    const options: ResolvedOptions = { ...this.#request.options, credential: makeCredential(this.#credential) };
    const engine = await Engine.open(this.#request.directory, options, this.#request.kind, { fileSystem: recording });
    this.#writable = engine;
    try {
      this.#macKey = engine.deriveKey(MAC_INFO, 32);
      this.#slot ??= new EngineSlot(engine);
      await this.#flush();
    } catch (error) {
      await engine.close().catch(() => undefined);
      throw error;
    }
    return engine;
  }

  get fileSystem(): FileSystem {
    return this.#fileSystem;
  }

  #schedulePublish(): void {
    if (this.#publishScheduled || this.#role === 'fenced') return;
    this.#publishScheduled = true;
    setImmediate(() => {
      this.#publishScheduled = false;
      this.#flush().catch(() => {
        // Writes held wait for this backlog: nothing else would publish it again.
        if (this.#backlogHeld && !this.#closed && this.#role === 'leader') setTimeout(() => this.#schedulePublish(), HELD_RETRY_MS).unref();
      });
    });
  }

  /** Publishes every operation recorded so far; resolves once the stream acknowledged them. */
  #flush(): Promise<void> {
    const run = (this.#publishing ?? Promise.resolve()).catch(() => undefined).then(() => this.#publishPending());
    this.#publishing = run;
    return run;
  }

  async #publishPending(): Promise<void> {
    if (this.#role === 'fenced') throw this.#fencedError();
    // Nothing before the engine is open: the MAC key comes from its KEYRING.
    if (this.#macKey === undefined) return;
    while (this.#inFlight !== undefined || this.#pending.length > 0) {
      if (this.#inFlight === undefined) {
        const operations = this.#pending;
        this.#pending = [];
        this.#pendingBytes = 0;
        const sinceMs = this.#pendingSinceMs ?? Date.now();
        this.#pendingSinceMs = undefined;
        const batch = ++this.#batch;
        const parts = splitIntoParts(operations, this.#session.maxPayloadBytes);
        const databaseId = this.#slot!.current.databaseId;
        // The files as this batch leaves them, read in this same synchronous step (bootstrap.ts).
        const landed: Landed = { batch, manifestEpoch: this.#manifestEpoch(), capture: this.#snapshots?.capture(operations) };
        const header = { databaseId, epoch: this.#epoch, batch, partCount: parts.length, leaderTimeMs: sinceMs };
        this.#inFlight = {
          sinceMs,
          next: 0,
          parts: parts.map((operationsOfPart, part) => ({
            bytes: encodePart({ ...header, part }, operationsOfPart, this.#macKey!),
            subject: batch === 1 && part === 0 ? this.#session.names.snapshot : this.#session.names.files,
            messageId: `${hex(databaseId)}.${this.#epoch}.${batch}.${part}`,
          })),
          landed,
        };
      }
      const inFlight = this.#inFlight;
      this.#inFlightBytes = inFlight.parts.slice(inFlight.next).reduce((sum, part) => sum + part.bytes.length, 0);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#publishInFlight(inFlight);
          break;
        } catch (error) {
          if (error instanceof ArmdbError && error.code === 'ARMDB_FENCED') {
            if (inFlight.landed?.capture !== undefined) this.#snapshots?.drop();
            throw error;
          }
          // A NATS node that went down, a stream electing its new leader: the same parts again, later.
          if (attempt >= MAX_PUBLISH_ATTEMPTS || this.#closed) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** (attempt - 1), 2000)));
        }
      }
      this.#inFlight = undefined;
      this.#inFlightBytes = 0;
      if (inFlight.landed !== undefined) this.#afterBatch(inFlight.landed);
      if (this.#backlogHeld) this.#checkBacklog();
    }
  }

  /** Bytes recorded or encoded that the stream has not acknowledged yet. */
  #backlogBytes(): number {
    return this.#pendingBytes + this.#inFlightBytes;
  }

  /**
   * Backpressure (`maxUnpublishedBytes`): at the bound, new records are refused with
   * ARMDB_REPLICATION (the engine's write hold) and a durability point is made so that the backlog is
   * published; once it is down to half the bound, writes are accepted again. A leader keeps what it
   * made durable locally whatever the stream does: only new writes are refused.
   */
  #checkBacklog(): void {
    const engine = this.#writable;
    if (engine === undefined) return;
    const backlogBytes = this.#backlogBytes();
    if (!this.#backlogHeld && backlogBytes >= this.#options.maxUnpublishedBytes) {
      this.#backlogHeld = true;
      engine.holdWrites(
        `${backlogBytes} bytes are not in the stream yet (maxUnpublishedBytes ${this.#options.maxUnpublishedBytes}): the NATS servers are unreachable or slower than the writes`,
      );
      // Published at the next durability point: make one now (a write that filled the backlog may not be followed by a sync).
      // Not from inside the engine's file operation that reported the bytes: once it returned.
      setImmediate(() => {
        if (!this.#closed && this.#role === 'leader') engine.sync().catch(() => undefined);
      });
    } else if (this.#backlogHeld && backlogBytes <= this.#options.maxUnpublishedBytes / 2) {
      this.#backlogHeld = false;
      engine.holdWrites(undefined);
    }
  }

  /** The writable engine's MANIFEST epoch; once it closed (the batches of close()), the last one read. */
  #manifestEpoch(): number {
    try {
      if (this.#writable !== undefined) this.#lastManifestEpoch = this.#writable.stats().epoch;
    } catch {
      // Closed: its last epoch stands.
    }
    return this.#lastManifestEpoch;
  }

  /** A batch the stream stored: its history entry, and the snapshot captured at its cut. */
  #afterBatch(landed: Landed): void {
    const sequence = this.#publishedSequence;
    const { batch, manifestEpoch, capture } = landed;
    if (this.#options.manifestHistory) this.#history.record({ sequence, timeMs: Date.now(), epoch: this.#epoch, batch, manifestEpoch });
    if (capture === undefined || this.#macKey === undefined) return;
    const databaseId = this.#slot!.current.databaseId;
    this.#snapshots?.store(capture, { databaseId, epoch: this.#epoch, batch, sequence, manifestEpoch, macKey: this.#macKey.slice() });
  }

  /** Sends what is left of the batch in flight; ARMDB_FENCED once the lease or the stream says another node leads. */
  async #publishInFlight(inFlight: { next: number; readonly parts: readonly PublishedPart[] }): Promise<void> {
    try {
      await this.#checkLease();
      while (inFlight.next < inFlight.parts.length) {
        const part = inFlight.parts[inFlight.next]!;
        // A retry after a lost acknowledgement sends the same bytes under the same id: the stream
        // de-duplicates it and answers with the sequence it stored it at.
        let acknowledgement: { readonly seq: number };
        try {
          acknowledgement = await this.#session.js.publish(part.subject, part.bytes, {
            msgID: part.messageId,
            expect: { lastSequence: this.#publishedSequence },
          });
        } catch (error) {
          if (isWrongLastSequence(error) && (await this.#adoptStoredParts(inFlight))) continue;
          throw error;
        }
        this.#publishedSequence = acknowledgement.seq;
        this.#inFlightBytes -= part.bytes.length;
        inFlight.next++;
      }
    } catch (error) {
      if (isWrongLastSequence(error) || (error instanceof ArmdbError && error.code === 'ARMDB_FENCED')) {
        this.#fence(error);
        throw this.#fencedError();
      }
      // The servers did not answer: the batch stays in flight, to be sent again as it is.
      throw armdbError('ARMDB_REPLICATION', 'could not publish to the stream', error);
    }
  }

  /**
   * After a refusal of `expect.lastSequence`: whether the messages the stream holds past the last
   * acknowledged one are this batch's next parts (same subject, message id and bytes), stored by a
   * publish whose acknowledgement was lost and resent after the stream's duplicate window (2 min by
   * default), when the stream no longer recognises the id and checks the sequence instead. If they
   * all are, they count as acknowledged; anything else is another node's, and this leader is fenced.
   */
  async #adoptStoredParts(inFlight: { next: number; readonly parts: readonly PublishedPart[] }): Promise<boolean> {
    const { jsm, names } = this.#session;
    const last = await this.#session.lastSequence();
    let sequence = this.#publishedSequence;
    let next = inFlight.next;
    while (sequence < last && next < inFlight.parts.length) {
      const stored = await jsm.streams.getMessage(names.stream, { seq: sequence + 1 });
      const part = inFlight.parts[next]!;
      if (
        stored === null ||
        stored.subject !== part.subject ||
        stored.header?.get('Nats-Msg-Id') !== part.messageId ||
        Buffer.compare(Buffer.from(stored.data), Buffer.from(part.bytes)) !== 0
      ) {
        return false;
      }
      sequence++;
      next++;
    }
    if (sequence !== last || next === inFlight.next) return false;
    this.#publishedSequence = sequence;
    for (let part = inFlight.next; part < next; part++) this.#inFlightBytes -= inFlight.parts[part]!.bytes.length;
    inFlight.next = next;
    return true;
  }

  // ---- the follower ----------------------------------------------------------------------------

  async openFollower(): Promise<Engine> {
    const { fileSystem } = this;
    const { jsm, names } = this.#session;
    let start: number | undefined;
    let markerError: unknown;
    try {
      const marker = await jsm.streams.getMessage(names.stream, { last_by_subj: names.snapshot });
      if (marker !== null) start = marker.seq;
    } catch (error) {
      markerError = error;
    }
    // An object-store snapshot at or after the stream's last snapshot: the stream is read only after it.
    const stored = await this.#objectSnapshot(start ?? 0);
    const hasProgress = fileSystem.exists(path.join(this.#root, PROGRESS_NAME));
    if (start === undefined && stored === undefined && !hasProgress) {
      throw armdbError('ARMDB_REPLICATION', `no leader has published "${this.#options.name}" yet: open the leader first`, markerError);
    }
    fileSystem.makeDirectory(this.#root, { followLink: true });
    // The replica's own lock, held from open to close; the engines it reopens lock their overlay.
    const lock = lockDirectory(fileSystem, this.#root);
    this.#releaseFollowerLock = () => lock.release();
    const target = await this.#session.lastSequence();
    const ready = new Promise<void>((resolve, reject) => this.#waiters.push({ sequence: target, resolve, reject }));
    // A reader lease on the object-store snapshot, held until the stream after it was read (bootstrap.ts).
    let lease: ReaderLease | undefined;
    try {
      // A follower that ran here before goes on from its durable progress, if the stream still holds what follows it.
      const resumeAt = await this.#resume();
      if (resumeAt !== undefined) {
        start = resumeAt;
        this.#wake();
      } else if (stored !== undefined) {
        const downloaded = await this.#bootstrap(stored.store, stored.manifest, start ?? 0);
        lease = downloaded.lease;
        start = downloaded.manifest.sequence + 1;
        this.#wake();
      } else if (start === undefined) {
        throw armdbError('ARMDB_REPLICATION', `the stream of "${this.#options.name}" holds no snapshot to start from`, markerError);
      }
      await this.#startConsumer(start);
      await ready;
      await lease?.release();
    } catch (error) {
      await lease?.release();
      await this.#stopConsumer();
      await this.#slot?.current.close().catch(() => undefined);
      lock.release();
      throw error;
    }
    return this.#slot!.engine;
  }

  #releaseFollowerLock: (() => void) | undefined;
  // role 'auto'
  #leaseWatch: { stop(): void } | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #promoting: Promise<void> | undefined;

  /** The newest object-store snapshot if it is no older than the stream's own snapshot at `streamSnapshot`. */
  async #objectSnapshot(streamSnapshot: number) {
    const store = await openObjectStore(this.#session.js, this.#options.name);
    if (store === undefined) return undefined;
    try {
      const newest = newestSnapshot(await listSnapshots(store));
      if (newest === undefined || newest.manifest.sequence < streamSnapshot) return undefined;
      await checkAgainstStream(this.#session.jsm, this.#session.names.stream, newest.manifest);
      return { store, manifest: newest.manifest };
    } catch (error) {
      // An object store that does not answer (just created, a node down): the stream's own snapshot
      // will do if it still holds one. A snapshot that fails a check is refused whatever the stream holds.
      if (streamSnapshot > 0 && error instanceof ArmdbError && error.code === 'ARMDB_REPLICATION') return undefined;
      throw error;
    }
  }

  /**
   * Goes on from the progress file of a follower that ran here before (src/replication/progress.ts):
   * the directory's files are opened, which authenticates them as recovery does, then the file's MAC
   * is checked under that KEYRING's replication key. The stream sequence to consume from, or undefined
   * (no progress file, one that does not check, or a stream trimmed past it): then the follower starts
   * from a snapshot as a new one does, and the progress file goes.
   */
  async #resume(): Promise<number | undefined> {
    let bytes: Uint8Array | undefined;
    let progress: FollowerProgress;
    try {
      bytes = readProgress(this.fileSystem, this.#root);
      if (bytes === undefined) return undefined;
      progress = decodeProgress(bytes);
    } catch {
      removeProgress(this.fileSystem, this.#root);
      return undefined;
    }
    // A stream that does not answer fails the open as it would without progress; a trimmed one is bootstrapped past.
    // A stream behind the progress (deleted and created again under the same name, or rolled back) is
    // not the one the progress was recorded on: starting from its snapshot replaces the files.
    const { first_seq: first, last_seq: last } = (await this.#session.jsm.streams.info(this.#session.names.stream)).state;
    if (progress.sequence + 1 < first || last < progress.sequence) {
      removeProgress(this.fileSystem, this.#root);
      return undefined;
    }
    this.#manifestEpochFloor = progress.manifestEpochFloor;
    this.#appliedSequence = progress.sequence;
    this.#appliedBatch = { batch: progress.batch, sequence: progress.sequence };
    this.#durableSequence = progress.sequence;
    this.#expectedBatch = progress.batch;
    this.#batchParts = [];
    try {
      const verified = bytes;
      await this.#serve((key) => verifyProgress(verified, key), progress.epoch, progress.databaseId);
    } catch {
      this.#manifestEpochFloor = 0;
      this.#appliedSequence = 0;
      this.#appliedBatch = { batch: 0, sequence: 0 };
      this.#durableSequence = 0;
      this.#expectedBatch = 0;
      removeProgress(this.fileSystem, this.#root);
      return undefined;
    }
    // The previous process may have applied (not fsynced) part of what comes next.
    this.#replayingPrefix = true;
    this.#touched.everything = true;
    return progress.sequence + 1;
  }

  /** The stream's first sequence now: anything before it was trimmed away. */
  async #firstSequence(): Promise<number> {
    const info = await this.#session.jsm.streams.info(this.#session.names.stream);
    return info.state.first_seq;
  }

  /**
   * Makes what was applied durable and records it in the progress file, at each caught-up point (the
   * reopen there is far dearer than these fsyncs) and at close.
   */
  async #recordProgress(): Promise<void> {
    const { batch, sequence } = this.#appliedBatch;
    if (this.#macKey === undefined || this.#databaseId === undefined || sequence === 0 || sequence === this.#durableSequence) return;
    await recordProgress(
      this.fileSystem,
      this.#root,
      this.#touched,
      {
        databaseId: this.#databaseId,
        epoch: this.#streamEpoch,
        batch,
        sequence,
        manifestEpochFloor: this.#manifestEpochFloor,
      },
      this.#macKey,
    );
    this.#durableSequence = sequence;
    this.#progressAtMs = Date.now();
    this.#replayingPrefix = false;
  }

  /**
   * Starts from an object-store snapshot: its files, each checked against its digest, then an open
   * that authenticates them as recovery does, then the manifest's MAC under the key of that KEYRING.
   * The stream goes on from the batch after it.
   */
  async #bootstrap(
    store: NonNullable<Awaited<ReturnType<typeof openObjectStore>>>,
    first: DecodedSnapshotManifest,
    streamSnapshot: number,
  ): Promise<{ manifest: DecodedSnapshotManifest; lease: ReaderLease }> {
    const { js, replicas } = this.#session;
    // Its files are about to be replaced: a progress file from before no longer describes them.
    removeProgress(this.fileSystem, this.#root);
    const newest = async () => (await this.#objectSnapshot(streamSnapshot))?.manifest;
    const { manifest, lease } = await downloadLeased(
      { js, name: this.#options.name, replicas },
      store,
      first,
      newest,
      this.fileSystem,
      this.#root,
    );
    try {
      this.#appliedSequence = manifest.sequence;
      this.#appliedBatch = { batch: manifest.batch, sequence: manifest.sequence };
      this.#expectedBatch = manifest.batch;
      this.#batchParts = [];
      this.#replayingPrefix = false;
      this.#touched.everything = true;
      await this.#serve((key) => verifySnapshotManifest(manifest, key), manifest.epoch, manifest.databaseId);
      await this.#recordProgress();
    } catch (error) {
      await lease.release();
      throw error;
    }
    return { manifest, lease };
  }

  /**
   * Consumes the stream from `start` on. The ordered consumer lives on one NATS node; when that node
   * dies the client reconnects elsewhere, but the consumer is not always recreated (with nats-server
   * 2.9 and the v3 client, a follower connected to a killed stream leader received nothing more and
   * reported nothing). So the follower watches its own progress: a consumer that ended, or one that
   * delivered nothing for {@link STALLED_CHECKS} checks while the stream holds messages past the last
   * one received, is replaced by a new one from the next sequence. A batch half received stays: its
   * next part is the next message.
   */
  async #startConsumer(start: number): Promise<void> {
    const first = await this.#openConsumer(start);
    this.#consumerStopping = false;
    this.#consumerDone = this.#consumeLoop(first);
    this.#watchConsumer();
  }

  async #openConsumer(start: number): Promise<ConsumerMessages> {
    const { js, names } = this.#session;
    const consumer = await js.consumers.get(names.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: start,
    });
    const messages = await consumer.consume();
    this.#messages = messages;
    return messages;
  }

  #consumerStopped(): boolean {
    return this.#consumerStopping || this.#closed || this.#error !== undefined;
  }

  async #consumeLoop(first: ConsumerMessages): Promise<void> {
    let messages: ConsumerMessages | undefined = first;
    for (let failures = 0; ; ) {
      if (messages !== undefined) {
        try {
          for await (const message of messages) {
            if (this.#consumerStopped()) break;
            this.#receiving = true;
            try {
              await this.#receive(message.data, message.seq, message.info.pending);
            } catch (error) {
              this.#stopWith(error instanceof Error ? error : new Error(String(error)));
              break;
            } finally {
              this.#receiving = false;
            }
            if (this.#restartConsumer) {
              // Bootstrapped again past a trimmed stretch: a new consumer from the sequence after the snapshot.
              this.#restartConsumer = false;
              break;
            }
          }
        } catch {
          // The consumer failed (its node went away): replaced below.
        }
      }
      if (this.#consumerStopped()) return;
      try {
        messages = await this.#openConsumer(this.#appliedSequence + 1);
        failures = 0;
        if (this.#consumerStopped()) {
          // #stopConsumer ran while this one was being opened: it closed the one before and waits
          // for this loop, which an idle stream would never wake.
          if (this.#messages === messages) this.#messages = undefined;
          await messages.close().catch(() => undefined);
          return;
        }
      } catch {
        // No stream leader yet (an election): again, later.
        messages = undefined;
        failures++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 2000)));
      }
    }
  }

  /** Replaces a consumer that stopped delivering while the stream holds more (see #startConsumer). */
  #watchConsumer(): void {
    let seenSequence = this.#appliedSequence;
    let stalledChecks = 0;
    let checking = false;
    clearInterval(this.#consumerWatch);
    this.#consumerWatch = setInterval(() => {
      if (checking || this.#receiving || this.#consumerStopped()) return;
      if (this.#appliedSequence !== seenSequence) {
        seenSequence = this.#appliedSequence;
        stalledChecks = 0;
        return;
      }
      checking = true;
      this.#session
        .lastSequence()
        .then((last) => {
          stalledChecks = last > this.#appliedSequence && this.#appliedSequence === seenSequence ? stalledChecks + 1 : 0;
          if (stalledChecks >= STALLED_CHECKS) {
            stalledChecks = 0;
            this.#messages?.stop();
          }
        })
        .catch(() => undefined)
        .finally(() => {
          checking = false;
        });
    }, CONSUMER_CHECK_MS);
    this.#consumerWatch.unref();
  }

  async #stopConsumer(): Promise<void> {
    this.#consumerStopping = true;
    clearInterval(this.#consumerWatch);
    const messages = this.#messages;
    this.#messages = undefined;
    if (messages !== undefined) await messages.close().catch(() => undefined);
    await this.#consumerDone?.catch(() => undefined);
    // The last batch applied is made durable, under the lock, so that the next open goes on from there.
    if (this.#releaseFollowerLock !== undefined && this.#error === undefined) await this.#recordProgress().catch(() => undefined);
    this.#releaseFollowerLock?.();
    this.#releaseFollowerLock = undefined;
  }

  /** Replication stops; reads go on serving the last good state. */
  #stopWith(error: Error): void {
    this.#error ??= error;
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters = [];
  }

  async #receive(bytes: Uint8Array, sequence: number, pending: number): Promise<void> {
    if (sequence <= this.#appliedSequence)
      throw armdbError('ARMDB_ROLLBACK', `replication: stream sequence ${sequence} after ${this.#appliedSequence}`);
    if (sequence > this.#appliedSequence + 1 && this.#appliedSequence > 0 && (await this.#bootstrapPastTrim(sequence))) return;
    const part = decodePart(bytes);
    if (this.#databaseId !== undefined && hex(part.databaseId) !== hex(this.#databaseId)) {
      throw integrityError('replication: a message of another store under this name');
    }
    const startsEpoch = part.epoch !== this.#streamEpoch;
    if (part.epoch < this.#streamEpoch)
      throw armdbError('ARMDB_ROLLBACK', `replication: lease epoch ${part.epoch} after ${this.#streamEpoch}`);
    if (startsEpoch) {
      if (part.batch !== 1 || part.part !== 0 || part.operations[0]?.kind !== 'reset') {
        throw integrityError('replication: a new epoch that does not start with a snapshot (a gap)');
      }
      this.#batchParts = [];
    } else {
      const expectedBatch = this.#batchParts.length === 0 ? this.#expectedBatch + 1 : this.#expectedBatch;
      const expectedPart = this.#batchParts.length;
      if (part.batch < expectedBatch || (part.batch === expectedBatch && part.part < expectedPart)) {
        throw armdbError('ARMDB_ROLLBACK', 'replication: a replayed message');
      }
      if (part.batch !== expectedBatch || part.part !== expectedPart) throw integrityError('replication: a gap in the stream');
      if (this.#batchParts.length > 0 && part.partCount !== this.#batchParts[0]!.partCount)
        throw integrityError('replication: part counts differ');
      // The key of this epoch is known: check before anything touches the directory.
      if (!verifyPart(part, this.#macKey!)) throw integrityError('replication: a message failed authentication');
    }
    this.#expectedBatch = part.batch;
    this.#batchParts.push(part);
    this.#oldestUnservedMs ??= part.leaderTimeMs;
    this.#appliedSequence = sequence;
    if (part.part === part.partCount - 1) {
      const parts = this.#batchParts;
      this.#batchParts = [];
      const snapshotEpoch = parts[0]!.epoch !== this.#streamEpoch;
      applyOperations(
        this.fileSystem,
        this.#root,
        parts.flatMap((each) => each.operations),
        { replayingPrefix: this.#replayingPrefix, touched: this.#touched },
      );
      this.#appliedBatch = { batch: part.batch, sequence };
      const due = pending === 0 || Date.now() - this.#lastServedAtMs >= MAX_UNSERVED_MS;
      // A snapshot: its key comes from the KEYRING it carries, so the engine opens first, then every part is checked.
      if (snapshotEpoch) await this.#serve(parts, part.epoch, part.databaseId);
      else if (due) await this.#serve(undefined, this.#streamEpoch, this.#databaseId!);
      if (snapshotEpoch || (due && Date.now() - this.#progressAtMs >= PROGRESS_EVERY_MS)) {
        // Reads already serve the new state: caughtUp() need not wait for the fsyncs.
        this.#wake();
        await this.#recordProgress();
      }
    }
    this.#wake();
  }

  /**
   * A message past a stretch of the stream this follower never received: the stream was trimmed
   * (purged up to its oldest snapshot kept) while the follower was away or behind. It bootstraps again
   * from the newest object-store snapshot and asks for a new consumer after it; true if it did. A
   * skipped stretch the stream still holds, or no snapshot to start from, is a gap (ARMDB_INTEGRITY).
   */
  async #bootstrapPastTrim(sequence: number): Promise<boolean> {
    const first = await this.#firstSequence();
    if (first <= this.#appliedSequence + 1) throw integrityError('replication: a gap in the stream');
    const stored = await this.#objectSnapshot(0);
    if (stored === undefined || stored.manifest.sequence + 1 < first) {
      throw integrityError(`replication: the stream was trimmed past sequence ${this.#appliedSequence + 1} and no snapshot reaches it`);
    }
    const { manifest, lease } = await this.#bootstrap(stored.store, stored.manifest, 0);
    // The stream after it is read next; should it be trimmed past this snapshot meanwhile, this runs again.
    await lease.release();
    if (manifest.sequence + 1 === sequence) return false;
    this.#restartConsumer = true;
    return true;
  }

  /** Reopens the engine on the applied files and serves reads from it; the old one is closed. */
  async #serve(
    snapshotParts: readonly DecodedPart[] | ((key: Uint8Array) => boolean) | undefined,
    epoch: number,
    databaseId: Uint8Array,
  ): Promise<void> {
    const options: ResolvedOptions = {
      ...this.#request.options,
      credential: makeCredential(this.#credential),
      autoCompact: false,
      syncIntervalMs: 0,
      expectedMinEpoch: this.#manifestEpochFloor,
    };
    const engine = await Engine.open(this.#request.directory, options, this.#request.kind, {
      fileSystem: overlayFileSystem(this.fileSystem),
    });
    engine.refuseWrites('ARMDB_READ_ONLY', 'a follower serves reads only; write to the leader or promote() this replica');
    if (snapshotParts !== undefined) {
      const key = engine.deriveKey(MAC_INFO, 32);
      const verified = typeof snapshotParts === 'function' ? snapshotParts(key) : snapshotParts.every((part) => verifyPart(part, key));
      if (hex(engine.databaseId) !== hex(databaseId) || !verified) {
        key.fill(0);
        await engine.close().catch(() => undefined);
        throw integrityError('replication: a snapshot failed authentication');
      }
      this.#macKey?.fill(0);
      this.#macKey = key;
      this.#streamEpoch = epoch;
      // A follower reports the epoch it follows; a promoting one already holds its own.
      if (this.#leaseRevision === 0) this.#epoch = epoch;
      this.#databaseId = databaseId;
      this.#leader = await this.#leaseHolder();
    }
    // Never again an older MANIFEST than this one (the open may have written one to the overlay: hence - 1).
    this.#manifestEpochFloor = Math.max(this.#manifestEpochFloor, engine.stats().epoch - 1);
    if (this.#slot === undefined) this.#slot = new EngineSlot(engine);
    else if (this.#closed) {
      // close() ran while this engine opened: it is not served, and nothing else would close it.
      await engine.close();
      throw armdbError('ARMDB_CLOSED', 'the collection is closed');
    } else await this.#slot.swap(engine).close();
    this.#servedSequence = this.#appliedSequence;
    this.#lastServedAtMs = Date.now();
    this.#oldestUnservedMs = undefined;
  }

  /** Who holds the lease, as it named itself; undefined if nobody or unreadable. */
  async #leaseHolder(): Promise<string | undefined> {
    try {
      const lease = await this.#session.kv.get(LEASE_KEY);
      if (lease === null || lease.operation !== 'PUT') return undefined;
      const holder: unknown = (JSON.parse(new TextDecoder().decode(lease.value)) as { holder?: unknown }).holder;
      return typeof holder === 'string' ? holder : undefined;
    } catch {
      return undefined;
    }
  }

  #wake(): void {
    const served = this.#servedSequence;
    const remaining: Waiter[] = [];
    for (const waiter of this.#waiters) {
      const reached = waiter.appliedOnly === true ? this.#appliedSequence : served;
      if (reached >= waiter.sequence && this.#slot !== undefined) waiter.resolve();
      else remaining.push(waiter);
    }
    this.#waiters = remaining;
  }
}
