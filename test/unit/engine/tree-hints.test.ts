/**
 * A VarTree reopened from its hint files: open places every hint's keys in bulk (the hash index names
 * the keys it added, the ordered index sorts them once into its tree), and every ordered read after
 * it is exact: the same keys, values and order as a plain sorted model and as an open that scans the
 * data files instead. Small delta limits make the bulk tail longer than a run, as a million keys
 * under the default limits would, so that the tree is built from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDeltaLimitsForTesting } from '../../../src/index/ordered-index.js';
import { keys, type OpenOptions, VarTree } from '../../../src/index.js';
import { hex } from '../../helpers/bytes.js';
import { directoriesRemovedAfterEach } from '../../helpers/temp-dir.js';

const KEY = new Uint8Array(32).fill(0x16);
const makeDirectory = directoriesRemovedAfterEach(false);
const options: OpenOptions = {
  keySize: 16,
  encryption: { key: KEY },
  shards: 2,
  syncIntervalMs: 0,
  maxFileBytes: 2 ** 18,
  autoCompact: false,
};
const COUNT = 12_000;
// Scrambled so that neither the write order nor the handle order is the key order.
const keyOf = (index: number) => keys.fromString(`k-${(Math.imul(index, 2654435761) >>> 0).toString(36)}`, 16);
const valueFor = (index: number, round: number) => new TextEncoder().encode(`value ${index} round ${round}`);

/** Keys in order with their values, as the tree yields them within `options`. */
function entriesOf(db: VarTree, range?: Parameters<VarTree['range']>[0]): [string, string][] {
  return [...db.range(range)].map(([key, value]) => [hex(key), Buffer.from(value).toString()]);
}

function sortedModel(model: Map<string, string>): [string, string][] {
  return [...model].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
}

beforeAll(() => setDeltaLimitsForTesting({ runKeys: 512, sliceKeys: 128, treeInsertKeys: 16 }));
afterAll(() => setDeltaLimitsForTesting(undefined));

describe('VarTree reopened from hints', () => {
  it('ranges, bounds and order equal the model and a scan of the data files; writes after open stay exact', async () => {
    const directory = makeDirectory('tree-hints');
    const model = new Map<string, string>();
    let db = await VarTree.open(directory, options);
    // Overwrites within a file and across files, deletions (tombstones in later hints), keys deleted then written again.
    for (let round = 0; round < 3; round++) {
      for (let index = round * 2000; index < COUNT; index += round + 1) {
        db.put(keyOf(index), valueFor(index, round));
        model.set(hex(keyOf(index)), Buffer.from(valueFor(index, round)).toString());
      }
      for (let index = round; index < COUNT; index += 7) {
        db.delete(keyOf(index));
        model.delete(hex(keyOf(index)));
      }
    }
    await db.close();
    const hintFiles = ['shard-000', 'shard-001'].flatMap((shard) =>
      fs.readdirSync(path.join(directory, shard)).filter((name) => name.endsWith('.hint')),
    );
    expect(hintFiles.length).toBeGreaterThanOrEqual(4);

    db = await VarTree.open(directory, options);
    expect(db.stats().filesFromHints).toBe(hintFiles.length);
    const expected = sortedModel(model);
    expect(db.size).toBe(expected.length);
    expect(entriesOf(db)).toEqual(expected);
    expect(entriesOf(db, { reverse: true })).toEqual([...expected].reverse());
    const [lower] = expected[1000]!;
    const [upper] = expected[7000]!;
    const gt = Buffer.from(lower, 'hex');
    const lte = Buffer.from(upper, 'hex');
    expect(entriesOf(db, { gt, lte })).toEqual(expected.slice(1001, 7001));
    expect(entriesOf(db, { gte: gt, lt: lte, reverse: true, limit: 50 })).toEqual(expected.slice(6950, 7000).reverse());
    expect(hex(db.first()![0])).toBe(expected[0]![0]);
    expect(hex(db.last()![0])).toBe(expected[expected.length - 1]![0]);

    // Writes after open: new keys, overwrites and deletions land beside the tree the hints built.
    for (let index = 0; index < COUNT + 3000; index += 3) {
      if (index % 2 === 0) {
        db.delete(keyOf(index));
        model.delete(hex(keyOf(index)));
      } else {
        db.put(keyOf(index), valueFor(index, 9));
        model.set(hex(keyOf(index)), Buffer.from(valueFor(index, 9)).toString());
      }
    }
    const changed = sortedModel(model);
    expect(entriesOf(db)).toEqual(changed);
    expect(entriesOf(db, { gte: gt, reverse: true })).toEqual(changed.filter(([key]) => key >= lower).reverse());
    await db.close();

    // The same store opened from its hints again and by scanning every data file.
    for (const hints of [true, false]) {
      db = await VarTree.open(directory, { ...options, hints });
      expect(db.stats().filesFromHints > 0).toBe(hints);
      expect(entriesOf(db)).toEqual(changed);
      expect(entriesOf(db, { gt, lte })).toEqual(changed.filter(([key]) => key > lower && key <= upper));
      await db.close();
    }
  });
});
