import type { OpenOptions } from '../config.js';
import { CollectionKind } from '../format/manifest.js';
import { Collection } from './collection.js';
import { finishOpen, openEngine } from './open.js';
import { bytesValues } from './values.js';

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
  /**
   * Opens (or creates) the map stored in `directory`, recovering from a crash if needed.
   * Rejects with `ARMDB_LOCKED` if the directory is open elsewhere, `ARMDB_WRONG_KEY` for a wrong key
   * or passphrase, `ARMDB_FORMAT_MISMATCH` if the directory holds another kind of collection or
   * different immutable options, `ARMDB_INTEGRITY` / `ARMDB_ROLLBACK` for damaged or replaced files,
   * and TypeError/RangeError for invalid options.
   *
   * @example
   * ```ts
   * const db = await VarMap.open('./sessions', {
   *   keySize: 16,
   *   encryption: { passphrase: process.env.SESSIONS_PASSPHRASE! },
   *   cacheBytes: 16 * 2 ** 20,
   * });
   * ```
   */
  static async open(directory: string, options: OpenOptions<Uint8Array>): Promise<VarMap> {
    const engine = await openEngine(directory, options, CollectionKind.varMap, 0);
    const map = new VarMap(engine, options.hook, bytesValues);
    return finishOpen(map, engine, () => map.initHook());
  }
}
