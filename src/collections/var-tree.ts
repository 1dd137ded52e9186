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
  /** Opens (or creates) the tree stored in `directory`. */
  static async open(directory: string, options: OpenOptions<Uint8Array>): Promise<VarTree> {
    const engine = await openEngine(directory, options, CollectionKind.varTree, 0);
    const tree = new VarTree(engine, options.hook, bytesValues);
    return finishOpen(tree, engine, () => tree.initHook());
  }
}
