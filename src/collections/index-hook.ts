import type { WriteHook } from '../config.js';
import { equalBytes } from '../format/bytes.js';
import type { Collection } from './collection.js';

const EMPTY = new Uint8Array(0);

function sameKey(left: Uint8Array | undefined, right: Uint8Array | undefined): boolean {
  return left !== undefined && right !== undefined && equalBytes(left, right);
}

/**
 * A hook that keeps collection `target` in step as a secondary index (SPEC §6): `project(key, value)`
 * gives the index key (`target`'s keySize bytes) or undefined for none; index entries have empty
 * values. An insert puts the index key, a change of index key deletes the old one and puts the new
 * one, a delete deletes it; at open (`onInit`) index keys that are missing are added.
 *
 * The index is written after the source: a crash between the two can leave an index entry missing
 * (re-added at the next open) or stale (never removed by the hook). Keep both collections in one
 * process and treat the index as derived data that can be rebuilt.
 *
 * @example
 * ```ts
 * // users: key = user id (8 bytes), value = JSON with an email; byEmail: key = 32-byte email hash + 8-byte id
 * const byEmail = await VarTree.open('./users-by-email', { keySize: 40, encryption: { key } });
 * const users = await TypedMap.open<{ email: string }>('./users', {
 *   keySize: 8, codec: codecs.json, encryption: { key },
 *   hook: indexHook(byEmail, (id, user) => concat(sha256(user.email), id)),
 * });
 * ```
 */
export function indexHook<V>(target: Collection<Uint8Array>, project: (key: Uint8Array, value: V) => Uint8Array | undefined): WriteHook<V> {
  if (typeof project !== 'function') throw new TypeError('"project" expected function');
  return {
    needsOldValue: true,
    onWrite(key, oldValue, newValue) {
      const oldIndexKey = oldValue === undefined ? undefined : project(key, oldValue);
      const newIndexKey = newValue === undefined ? undefined : project(key, newValue);
      if (sameKey(oldIndexKey, newIndexKey)) return;
      if (oldIndexKey !== undefined) target.delete(oldIndexKey);
      if (newIndexKey !== undefined) target.put(newIndexKey, EMPTY);
    },
    onInit(key, value) {
      const indexKey = project(key, value);
      if (indexKey !== undefined && !target.has(indexKey)) target.put(indexKey, EMPTY);
    },
  };
}
