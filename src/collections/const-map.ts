import type { OpenOptions } from '../config.js';
import { CollectionKind } from '../format/manifest.js';
import { Collection } from './collection.js';
import { checkValueSize, finishOpen, openEngine } from './open.js';
import { OrderedCollection } from './ordered-collection.js';
import { fixedValues } from './values.js';

/** Options of {@link ConstMap.open} and {@link ConstTree.open}. */
export interface ConstOpenOptions extends OpenOptions<Uint8Array> {
  /** Bytes of every value, 1..65536. Immutable. Values are also held in memory. */
  readonly valueSize: number;
}

/**
 * A hash map whose values all have exactly `valueSize` bytes. Values are written to disk like every
 * other collection's (same records, same encryption and durability) and also held in memory in one
 * packed array, so `get` never touches disk.
 *
 * @example
 * ```ts
 * import { ConstMap, keys } from 'armdb';
 *
 * const balances = await ConstMap.open('./balances', { keySize: 8, valueSize: 8, encryption: { key } });
 * balances.put(keys.u64(42), keys.u64(1_000));    // 8-byte values
 * balances.get(keys.u64(42));                    // from memory, no I/O
 * await balances.close();
 * ```
 */
export class ConstMap extends Collection<Uint8Array> {
  /**
   * Opens (or creates) the map stored in `directory`, recovering from a crash if needed, and loads
   * every value into memory.
   * Rejects with `ARMDB_LOCKED` if the directory is open elsewhere, `ARMDB_WRONG_KEY` for a wrong key
   * or passphrase, `ARMDB_FORMAT_MISMATCH` if the directory holds another kind of collection or
   * different immutable options, `ARMDB_INTEGRITY` / `ARMDB_ROLLBACK` for damaged or replaced files,
   * and TypeError/RangeError for invalid options.
   *
   * @example
   * ```ts
   * const balances = await ConstMap.open('./balances', { keySize: 8, valueSize: 8, encryption: { key } });
   * ```
   */
  static async open(directory: string, options: ConstOpenOptions): Promise<ConstMap> {
    const valueSize = checkValueSize(options);
    const engine = await openEngine(directory, options, CollectionKind.constMap, valueSize);
    const map = new ConstMap(engine, options.hook, fixedValues(valueSize));
    return finishOpen(map, engine, () => map.initHook());
  }
}

/**
 * An ordered map whose values all have exactly `valueSize` bytes, held in memory as well as on disk:
 * ranges and prefixes without any I/O.
 *
 * @example
 * ```ts
 * import { ConstTree, keys } from 'armdb';
 *
 * const prices = await ConstTree.open('./prices', { keySize: 8, valueSize: 8, encryption: { key } });
 * prices.put(keys.u64(20260101), keys.u64(4200));
 * for (const [day, price] of prices.range({ gte: keys.u64(20260101), reverse: true, limit: 7 })) { … }
 * await prices.close();
 * ```
 */
export class ConstTree extends OrderedCollection<Uint8Array> {
  /**
   * Opens (or creates) the tree stored in `directory`, recovering from a crash if needed, and loads
   * every value into memory.
   * Rejects with `ARMDB_LOCKED` if the directory is open elsewhere, `ARMDB_WRONG_KEY` for a wrong key
   * or passphrase, `ARMDB_FORMAT_MISMATCH` if the directory holds another kind of collection or
   * different immutable options, `ARMDB_INTEGRITY` / `ARMDB_ROLLBACK` for damaged or replaced files,
   * and TypeError/RangeError for invalid options.
   *
   * @example
   * ```ts
   * const prices = await ConstTree.open('./prices', { keySize: 8, valueSize: 8, encryption: { key } });
   * ```
   */
  static async open(directory: string, options: ConstOpenOptions): Promise<ConstTree> {
    const valueSize = checkValueSize(options);
    const engine = await openEngine(directory, options, CollectionKind.constTree, valueSize);
    const tree = new ConstTree(engine, options.hook, fixedValues(valueSize));
    return finishOpen(tree, engine, () => tree.initHook());
  }
}
