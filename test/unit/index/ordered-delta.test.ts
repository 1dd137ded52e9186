/**
 * The delta of the ordered index (src/index/ordered-index.ts): inserts wait in sorted runs, a merge
 * moves them into the B+ tree in bounded steps, and reads stay exact throughout. The bound on a step
 * is checked by counting the keys each step moves, never by the clock.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELTA_LIMITS, OrderedIndex } from '../../../src/index/ordered-index.js';
import { hex } from '../../helpers/bytes.js';

const scrambledKey = (n: number): Uint8Array => {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, Math.imul(n, 2654435761) >>> 0);
  return bytes;
};

function keysOf(index: OrderedIndex, handles: Iterable<number>): string[] {
  return [...handles].map((handle) => hex(index.entries.keyView(handle)));
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Keys in order, checked without an assertion per key (1M of those would dominate the test). */
function expectAscending(index: OrderedIndex, count: number): void {
  let previous = -1;
  let visited = 0;
  let outOfOrder = 0;
  for (const handle of index.handles({})) {
    const key = index.entries.keyView(handle);
    const value = ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
    if (value <= previous) outOfOrder++;
    previous = value;
    visited++;
  }
  expect(outOfOrder).toBe(0);
  expect(visited).toBe(count);
}

describe('OrderedIndex delta', () => {
  it('orders 1M keys with every sort at most runKeys keys and every merge step at most sliceKeys slots', () => {
    const count = 1_000_000;
    const { runKeys, sliceKeys } = DEFAULT_DELTA_LIMITS;
    const index = new OrderedIndex(4, { delta: { background: false } });
    let largestTail = 0;
    for (let n = 0; n < count; n++) {
      index.findOrInsert(scrambledKey(n));
      largestTail = Math.max(largestTail, index.deltaShape.tailKeys);
    }
    // The inserts sorted the delta a run at a time, never the whole of it.
    expect(largestTail).toBe(runKeys - 1);
    expect(index.deltaShape.runs).toBe(Math.floor(count / runKeys));
    // Exact before any merge step ran: the tail becomes one more run, the cursor walks them all.
    expectAscending(index, count);
    expect(index.deltaShape.runs).toBe(Math.ceil(count / runKeys));
    let steps = 0;
    let slots = 0;
    for (let step = index.mergeStep(); step > 0; step = index.mergeStep()) {
      expect(step).toBeLessThanOrEqual(sliceKeys);
      slots += step;
      steps++;
    }
    // Pairwise merges of similar sizes: a few passes over the keys, in many bounded steps.
    expect(index.deltaShape.runs).toBeLessThanOrEqual(2);
    expect(slots).toBeLessThanOrEqual(count * 5);
    expect(steps).toBeGreaterThanOrEqual(slots / sliceKeys);
    expectAscending(index, count);
  });

  it('a range sees every key inserted before it, while runs wait and while merge steps land between its steps', () => {
    const index = new OrderedIndex(4, { delta: { runKeys: 100, sliceKeys: 37, treeInsertKeys: 10, background: false } });
    const live = new Map<string, Uint8Array>();
    for (let n = 0; n < 1_000; n++) {
      index.findOrInsert(scrambledKey(n));
      live.set(hex(scrambledKey(n)), scrambledKey(n));
    }
    for (let n = 0; n < 1_000; n += 3) {
      index.remove(scrambledKey(n));
      live.delete(hex(scrambledKey(n)));
    }
    expect(index.deltaShape.runs).toBe(10);
    const yielded: string[] = [];
    for (const handle of index.handles({})) {
      yielded.push(hex(index.entries.keyView(handle)));
      index.mergeStep();
    }
    expect(yielded).toEqual([...live.keys()].sort());
    expect(index.deltaShape.runs).toBeLessThan(10);
  });

  it('merges in the background one step per turn of the event loop once order was asked for, and stops when told', async () => {
    const index = new OrderedIndex(4, { delta: { runKeys: 64, sliceKeys: 16, background: true } });
    for (let n = 0; n < 1_024; n++) index.findOrInsert(scrambledKey(n));
    await nextTurn();
    expect(index.deltaShape).toEqual({ tailKeys: 0, runs: 16, merging: false }); // nothing asked for order: runs wait
    expect(index.firstHandle()).toBeGreaterThanOrEqual(0);
    await nextTurn();
    expect(index.deltaShape.merging).toBe(true);
    let turns = 1;
    while ((index.deltaShape.runs > 1 || index.deltaShape.merging) && turns < 10_000) {
      await nextTurn();
      turns++;
    }
    expect(index.deltaShape).toEqual({ tailKeys: 0, runs: 1, merging: false });
    // 16 runs of 64 merge pairwise: 4 passes over 1,024 slots, 16 slots a turn.
    expect(turns).toBeGreaterThanOrEqual((4 * 1_024) / 16);
    for (let n = 1_024; n < 2_048; n++) index.findOrInsert(scrambledKey(n));
    index.stopMerging();
    expect(keysOf(index, index.handles({})).length).toBe(2_048);
    for (let turn = 0; turn < 10; turn++) await nextTurn();
    expect(index.deltaShape).toEqual({ tailKeys: 0, runs: 17, merging: false }); // stopped: the runs stay, reads still see them
  });

  it('keys put between the steps of a range go into the tree, not into a run each', () => {
    const index = new OrderedIndex(4, { delta: { runKeys: 1_000, sliceKeys: 100, treeInsertKeys: 10, background: false } });
    for (let n = 0; n < 500; n++) index.findOrInsert(scrambledKey(n));
    index.mergeAll();
    expect(index.deltaShape.runs).toBe(1);
    let n = 500;
    for (const _ of index.handles({})) if (n < 1_000) index.findOrInsert(scrambledKey(n++));
    expect(index.deltaShape).toEqual({ tailKeys: 0, runs: 1, merging: false });
    expect(keysOf(index, index.handles({})).length).toBe(1_000);
  });

  it('removing keys while a merge is under way removes them from what readers see and from the merged run', () => {
    const index = new OrderedIndex(4, { delta: { runKeys: 50, sliceKeys: 7, treeInsertKeys: 0, background: false } });
    const live = new Set<string>();
    for (let n = 0; n < 100; n++) {
      index.findOrInsert(scrambledKey(n));
      live.add(hex(scrambledKey(n)));
    }
    index.firstHandle();
    for (let n = 0; n < 100; n += 2) {
      index.mergeStep();
      index.remove(scrambledKey(n));
      live.delete(hex(scrambledKey(n)));
      expect(keysOf(index, index.handles({}))).toEqual([...live].sort());
    }
    index.mergeAll();
    expect(index.deltaShape).toEqual({ tailKeys: 0, runs: 1, merging: false });
    expect(keysOf(index, index.handles({}))).toEqual([...live].sort());
    for (let n = 0; n < 100; n += 2) index.findOrInsert(scrambledKey(n)); // reuses the freed handles
    expect(keysOf(index, index.handles({})).length).toBe(100);
  });

  it('mergeInBackground merges what recovery filled without an ordered read, and leaves an empty index alone', async () => {
    const empty = new OrderedIndex(4, { delta: { runKeys: 64, sliceKeys: 16, background: true } });
    empty.mergeInBackground();
    for (let n = 0; n < 256; n++) empty.findOrInsert(scrambledKey(n));
    for (let turn = 0; turn < 100; turn++) await nextTurn();
    expect(empty.deltaShape).toEqual({ tailKeys: 0, runs: 4, merging: false }); // a load into a new store merges nothing

    const recovered = new OrderedIndex(4, { delta: { runKeys: 64, sliceKeys: 16, background: true } });
    for (let n = 0; n < 300; n++) recovered.findOrInsert(scrambledKey(n));
    expect(recovered.deltaShape).toEqual({ tailKeys: 300 - 256, runs: 4, merging: false });
    recovered.mergeInBackground();
    expect(recovered.deltaShape.tailKeys).toBe(0);
    let turns = 0;
    while ((recovered.deltaShape.runs > 1 || recovered.deltaShape.merging) && turns < 10_000) {
      await nextTurn();
      turns++;
    }
    expect(recovered.deltaShape).toEqual({ tailKeys: 0, runs: 1, merging: false });
    expect(keysOf(recovered, recovered.handles({}))).toEqual(Array.from({ length: 300 }, (_, n) => hex(scrambledKey(n))).sort());
  });
});
