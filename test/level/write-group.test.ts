/**
 * `writeGroup`, the collection-layer method armdb/level's batches use: `atomic` for writes only,
 * without the transaction's read overlay. All of it or none, deletes of absent keys dropped unless
 * the group put the key earlier, every key of one shard, and a watching hook sees what `atomic` shows.
 */
import { describe, expect, it } from 'vitest';
import { VarTree, type OpenOptions } from '../../src/index.js';
import { expectCode } from '../helpers/errors.js';
import { testKey } from '../helpers/bytes.js';
import { storesClosedAfterEach } from '../helpers/temp-dir.js';

const { tempDir, track } = storesClosedAfterEach('write-group');
const key = (byte: number): Uint8Array => Uint8Array.of(byte, 0, 0, 0);
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function open(options: Partial<OpenOptions> = {}) {
  return track(await VarTree.open(tempDir(), { keySize: 4, encryption: { key: testKey(7) }, syncIntervalMs: 0, shards: 1, ...options }));
}

describe('writeGroup', () => {
  it('applies puts and deletes in order, and survives a reopen', async () => {
    const directory = tempDir();
    const tree = track(await VarTree.open(directory, { keySize: 4, encryption: { key: testKey(7) }, shards: 1 }));
    tree.put(key(1), bytes('one'));
    tree.writeGroup([
      { key: key(2), value: bytes('two') },
      { key: key(1), value: undefined },
      { key: key(3), value: bytes('three') },
      { key: key(3), value: bytes('three again') },
    ]);
    await tree.close();
    const reopened = track(await VarTree.open(directory, { keySize: 4, encryption: { key: testKey(7) }, shards: 1 }));
    expect([...reopened.range()]).toEqual([
      [key(2), bytes('two')],
      [key(3), bytes('three again')],
    ]);
  });

  it('applies nothing when one value is too large or one key has the wrong size', async () => {
    const tree = await open({ maxValueBytes: 4 });
    tree.put(key(1), bytes('one'));
    expectCode(
      () =>
        tree.writeGroup([
          { key: key(1), value: undefined },
          { key: key(2), value: bytes('too large') },
        ]),
      'ARMDB_VALUE_TOO_LARGE',
    );
    expect(() =>
      tree.writeGroup([
        { key: key(1), value: undefined },
        { key: new Uint8Array(3), value: bytes('x') },
      ]),
    ).toThrow(RangeError);
    expect([...tree.range()]).toEqual([[key(1), bytes('one')]]);
  });

  it('drops a delete of an absent key, but not one of a key put earlier in the group', async () => {
    const tree = await open();
    const before = tree.stats().deletes;
    tree.writeGroup([{ key: key(9), value: undefined }]);
    expect(tree.stats().deletes).toBe(before);
    tree.writeGroup([
      { key: key(5), value: bytes('five') },
      { key: key(6), value: undefined },
      { key: key(5), value: undefined },
    ]);
    expect(tree.has(key(5))).toBe(false);
    expect(tree.stats().deletes).toBe(before + 1);
  });

  it('refuses keys of different shards with ARMDB_SHARD_MISMATCH, applying nothing', async () => {
    const tree = await open({ shards: 8 });
    const keys = Array.from({ length: 64 }, (_, index) => key(index));
    const other = keys.find((candidate) => candidate !== keys[0] && !sameShard(tree, keys[0]!, candidate))!;
    expectCode(
      () =>
        tree.writeGroup([
          { key: keys[0]!, value: bytes('a') },
          { key: other, value: bytes('b') },
        ]),
      'ARMDB_SHARD_MISMATCH',
    );
    expect(tree.size).toBe(0);
  });

  it('a watching hook sees each operation with the value before it, as in atomic', async () => {
    const seen: [number, string | undefined, string | undefined][] = [];
    const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));
    const tree = await open({ hook: { onWrite: (written, old, next) => seen.push([written[0]!, text(old), text(next)]) } });
    tree.put(key(1), bytes('one'));
    seen.length = 0;
    tree.writeGroup([
      { key: key(1), value: bytes('uno') },
      { key: key(1), value: undefined },
      { key: key(2), value: undefined },
    ]);
    expect(seen).toEqual([
      [1, 'one', 'uno'],
      [1, 'uno', undefined],
    ]);
  });
});

/** Whether two keys route to the same shard, found through atomic's own check. */
function sameShard(tree: VarTree, left: Uint8Array, right: Uint8Array): boolean {
  try {
    tree.atomic(left, (tx) => tx.has(right));
    return true;
  } catch {
    return false;
  }
}
