import { resolveOptions, type OpenOptions } from '../config.js';
import { Engine, type EngineHooks } from '../engine/engine.js';
import { CollectionKind } from '../format/manifest.js';
import { checkBytes } from '../config.js';
import { Collection } from './collection.js';

/**
 * A hash-indexed map from fixed-size keys to variable-length byte values, stored on disk in encrypted
 * pages and read through the block cache.
 *
 * @example
 * ```ts
 * import { VarMap, keys } from 'armdb';
 * import { randomBytes } from 'node:crypto';
 *
 * const db = await VarMap.open('./sessions', { keySize: 16, encryption: { key: randomBytes(32) } });
 * const id = keys.fromString('session-42', 16);
 * db.put(id, new TextEncoder().encode('{"user":7}'));
 * db.get(id);          // Uint8Array
 * await db.sync();     // durable
 * await db.close();
 * ```
 */
export class VarMap extends Collection<Uint8Array> {
  /** Opens (or creates) the map stored in `directory`. */
  static async open(directory: string, options: OpenOptions<Uint8Array>): Promise<VarMap> {
    const resolved = resolveOptions(options, 0);
    const engine = await Engine.open(directory, resolved, CollectionKind.varMap, (options as { [engineHooks]?: EngineHooks })[engineHooks]);
    return new VarMap(engine, options.hook);
  }

  /** @internal */
  protected encodeValue(value: Uint8Array): Uint8Array {
    return checkBytes('value', value);
  }

  /** @internal */
  protected decodeValue(bytes: Uint8Array): Uint8Array {
    return bytes;
  }
}

/** @internal Tests pass engine hooks (a fault-injecting file system) under this symbol. */
export const engineHooks = Symbol.for('armdb.engineHooks');
