/**
 * What the core knows of replication (docs/replication.md): an opaque option that opens the engine
 * for a collection, and the handle a collection exposes as `db.replication`. The NATS implementation
 * lives behind the `armdb/replication` subpath, so the core never loads a NATS client.
 *
 * @module
 */
import type { ResolvedOptions } from '../config.js';
import type { Engine } from '../engine/engine.js';
import type { CollectionKindId } from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';

/** @internal The property of a {@link ReplicationOption} the core opens it by; a registered symbol, so `dist` and `src` copies agree. */
export const REPLICATION_DRIVER: unique symbol = Symbol.for('armdb.replication.driver') as never;

/** Where a replica stands (`db.replication.status()`). */
export interface ReplicationStatus {
  /** `'leader'` ships, `'follower'` applies, `'fenced'`: a leader whose lease another node took. */
  readonly role: 'leader' | 'follower' | 'fenced';
  /** The lease epoch (the lease key's revision when its holder took it): the fencing token. 0 before any. */
  readonly epoch: number;
  /** Stream sequence of the last message published (leader) or applied (follower). */
  readonly appliedSequence: number;
  /** Follower: age of the oldest message received but not yet served by reads; leader: of the oldest unpublished operation. 0 when caught up. */
  readonly lagMs: number;
  /** Holder of the lease, as it named itself (`natsReplication({ holder })`), if known. */
  readonly leader: string | undefined;
  /** The error that stopped replication, if it stopped. Reads still serve the last good state. */
  readonly error: Error | undefined;
}

/**
 * The replication handle of a collection opened with a `replication` option.
 *
 * @example
 * ```ts
 * await replica.replication.caughtUp();
 * console.log(replica.replication.status()); // { role: 'follower', epoch: 3, appliedSequence: 42, lagMs: 0, … }
 * ```
 */
export interface Replication {
  /**
   * Follower: resolves once it has applied, and serves reads from, every message the stream held when
   * called. Leader: once every operation made durable before the call is in the stream. Rejects with
   * the error that stopped replication.
   */
  caughtUp(): Promise<void>;
  /** A fresh snapshot of where the replica stands. */
  status(): ReplicationStatus;
  /**
   * Follower: takes the lease with the next epoch, applies what the old leader published, reopens the
   * directory writable and ships from there on. The old leader's next write or sync fails with
   * `ARMDB_FENCED`.
   */
  promote(): Promise<void>;
}

/** @internal What a collection's `open` hands the driver. */
export interface ReplicationOpenRequest {
  readonly directory: string;
  readonly options: ResolvedOptions;
  readonly kind: CollectionKindId;
  /** A test's file system (engine-hooks), or undefined for the real one. */
  readonly fileSystem: FileSystem | undefined;
}

/** @internal The driver's side of a replicated collection. */
export interface ReplicationController extends Replication {
  /** The collection's `sync()`: the engine's barrier, then what the acknowledgement mode asks of the stream. */
  sync(): Promise<void>;
  /** The collection's `close()`: the engine, then the stream and the connection. */
  close(): Promise<void>;
}

/** @internal */
export interface ReplicationDriver {
  open(request: ReplicationOpenRequest): Promise<{ readonly engine: Engine; readonly controller: ReplicationController }>;
}

/**
 * The `replication` option of every collection's `open`, made by `natsReplication()` from
 * `armdb/replication`. Opaque: only what that function returns is accepted.
 */
export interface ReplicationOption {
  /** @internal */
  readonly [REPLICATION_DRIVER]: ReplicationDriver;
}

const controllers = new WeakMap<Engine, ReplicationController>();

/** @internal */
export function registerController(engine: Engine, controller: ReplicationController): void {
  controllers.set(engine, controller);
}

/** @internal The controller of a replicated collection's engine, or undefined. */
export function controllerOf(engine: Engine): ReplicationController | undefined {
  return controllers.get(engine);
}

/** @internal */
export function isReplicationOption(value: unknown): value is ReplicationOption {
  return typeof value === 'object' && value !== null && typeof (value as Record<symbol, unknown>)[REPLICATION_DRIVER] === 'object';
}
