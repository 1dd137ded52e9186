import type { OpenOptions } from '../config.js';
import { CollectionKind } from '../format/manifest.js';
import { finishOpen, openEngine } from './open.js';
import { OrderedCollection } from './ordered-collection.js';
import { bytesValues } from './values.js';

/**
 * An ordered map from fixed-size keys (compared bytewise) to variable-length byte values on disk:
 * everything {@link VarMap} has, plus ranges, prefixes, reverse order, `first` and `last`.
 *
 * @example
 * ```ts
 * import { VarTree, keys } from 'armdb';
 *
 * const events = await VarTree.open('./events', { keySize: 8, encryption: { key } });
 * events.put(keys.u64(Date.now()), payload);          // big-endian: numeric order
 * for (const [at, body] of events.range({ gte: keys.u64(since), limit: 100 })) {
 *   handle(at, body);
 * }
 * const newest = events.last();
 * await events.close();
 * ```
 */
export class VarTree extends OrderedCollection<Uint8Array> {
  /** @internal Raw bytes need no decoding: the engine reads a batch's values in one pass. */
  protected override valuesOfHandles(handles: Int32Array, count: number, values: Uint8Array[]): void {
    this.engine.readHandles(handles, count, values);
  }

  /**
   * Opens (or creates) the tree stored in `directory`, recovering from a crash if needed.
   * Rejects with `ARMDB_LOCKED` if the directory is open elsewhere, `ARMDB_WRONG_KEY` for a wrong key
   * or passphrase, `ARMDB_FORMAT_MISMATCH` if the directory holds another kind of collection or
   * different immutable options, `ARMDB_INTEGRITY` / `ARMDB_ROLLBACK` for damaged or replaced files,
   * and TypeError/RangeError for invalid options.
   *
   * @example
   * ```ts
   * const events = await VarTree.open('./events', { keySize: 8, encryption: { key }, shards: 1 });
   * ```
   */
  static async open(directory: string, options: OpenOptions<Uint8Array>): Promise<VarTree> {
    const engine = await openEngine(directory, options, CollectionKind.varTree, 0);
    const tree = new VarTree(engine, options.hook, bytesValues);
    return finishOpen(tree, engine, () => tree.initHook());
  }
}
