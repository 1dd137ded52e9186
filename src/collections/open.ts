/** @internal Shared steps of every collection's `open`. */
import { checkInteger, resolveOptions } from '../config.js';
import { Engine } from '../engine/engine.js';
import type { CollectionKindId } from '../format/manifest.js';
import { engineHooksOf } from '../internal/engine-hooks.js';
import {
  isReplicationOption,
  REPLICATION_DRIVER,
  type ReplicationDriver,
  type ReplicationOpenRequest,
  registerController,
} from '../replication/contract.js';
import type { Collection } from './collection.js';

/** Largest `valueSize` of Const collections: their values live in memory. */
export const MAX_CONST_VALUE_BYTES = 65_536;

/** @internal */
export function openEngine(directory: unknown, options: unknown, kind: CollectionKindId, valueSize: number): Promise<Engine> {
  if (typeof directory !== 'string' || directory.length === 0) throw new TypeError('"directory" expected a non-empty string');
  const replication = (options as { replication?: unknown } | undefined)?.replication;
  if (replication !== undefined && !isReplicationOption(replication)) {
    throw new TypeError('"replication" expected what natsReplication() from \'armdb/replication\' returns');
  }
  const resolved = resolveOptions(options, valueSize);
  const hooks = engineHooksOf(options);
  if (replication === undefined) return Engine.open(directory, resolved, kind, hooks);
  return openReplicated(replication[REPLICATION_DRIVER], { directory, options: resolved, kind, fileSystem: hooks.fileSystem });
}

/** A replicated collection: the driver opens the engine (a leader's records its file operations, a follower's is read-only). */
async function openReplicated(driver: ReplicationDriver, request: ReplicationOpenRequest): Promise<Engine> {
  const { engine, controller } = await driver.open(request);
  registerController(engine, controller);
  return engine;
}

/** @internal `valueSize` of Const collections. */
export function checkValueSize(options: unknown): number {
  const value = typeof options === 'object' && options !== null ? (options as { valueSize?: unknown }).valueSize : undefined;
  return checkInteger('valueSize', value, 1, MAX_CONST_VALUE_BYTES);
}

/** @internal Runs the collection's open-time work (walks in slices); closes the engine if it fails. */
// biome-ignore lint/suspicious/noExplicitAny: any collection, whatever its value type (V is used both in and out).
export async function finishOpen<C extends Collection<any>>(collection: C, engine: Engine, prepare: () => Promise<void>): Promise<C> {
  try {
    await prepare();
    return collection;
  } catch (error) {
    await engine.close().catch(() => undefined);
    throw error;
  }
}
