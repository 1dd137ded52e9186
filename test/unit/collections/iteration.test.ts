/**
 * Iteration of the ordered collections (VarTree, ConstTree, TypedTree) while the tree is mutated
 * (SPEC §3: "every key present for the whole iteration is yielded exactly once, in order"), early
 * termination (`return()`, `break`, `using`), copies, keys() never reading values, closed
 * collections, and validation of range options.
 */
import { describe, expect, it } from 'vitest';
import { ConstTree, TypedTree, VarTree, codecs, type Codec, type OrderedCollection } from '../../../src/index.js';
import { expectCode } from '../../helpers/errors.js';
import { Random } from '../../helpers/random.js';
import { storesClosedAfterEach } from '../../helpers/temp-dir.js';

const ENCRYPTION_KEY = new Uint8Array(32).map((_, index) => (index * 13 + 5) & 0xff);
const KEY_SIZE = 2;

const keyOf = (n: number): Uint8Array => Uint8Array.of(n >>> 8, n & 0xff);
const numberOfKey = (key: Uint8Array): number => (key[0]! << 8) | key[1]!;

// ---- temp directories and open collections, cleaned after each test -----------------------------

const { tempDir, track } = storesClosedAfterEach('iteration');

const baseOptions = { keySize: KEY_SIZE, encryption: { key: ENCRYPTION_KEY }, syncIntervalMs: 0, shards: 2, autoCompact: false } as const;

// ---- the three flavours ---------------------------------------------------------------------------

interface Flavour<V> {
  readonly name: string;
  open(directory: string): Promise<OrderedCollection<V>>;
  /** A value carrying the number `n`. */
  value(n: number): V;
  /** The number a value carries. */
  numberOf(value: V): number;
  /** Whether yielded values are copies the caller may mutate (Typed* serve the stored object). */
  readonly valuesAreCopies: boolean;
}

const varTree: Flavour<Uint8Array> = {
  name: 'VarTree',
  open: async (directory) => track(await VarTree.open(directory, baseOptions)),
  // Variable length: 4 bytes of number plus up to 6 bytes of padding.
  value: (n) => {
    const bytes = new Uint8Array(4 + (n % 7));
    new DataView(bytes.buffer).setUint32(0, n);
    return bytes;
  },
  numberOf: (value) => new DataView(value.buffer, value.byteOffset, value.length).getUint32(0),
  valuesAreCopies: true,
};

const constTree: Flavour<Uint8Array> = {
  name: 'ConstTree',
  open: async (directory) => track(await ConstTree.open(directory, { ...baseOptions, valueSize: 4 })),
  value: (n) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, n);
    return bytes;
  },
  numberOf: (value) => new DataView(value.buffer, value.byteOffset, value.length).getUint32(0),
  valuesAreCopies: true,
};

interface Boxed {
  readonly n: number;
  readonly label: string;
}

const typedTree: Flavour<Boxed> = {
  name: 'TypedTree',
  open: async (directory) => track(await TypedTree.open<Boxed>(directory, { ...baseOptions, codec: codecs.json as Codec<Boxed> })),
  value: (n) => ({ n, label: `value ${n}` }),
  numberOf: (value) => value.n,
  valuesAreCopies: false,
};

async function filled<V>(flavour: Flavour<V>, numbers: Iterable<number>, valueOffset = 0): Promise<OrderedCollection<V>> {
  const tree = await flavour.open(tempDir());
  for (const n of numbers) tree.put(keyOf(n), flavour.value(n + valueOffset));
  return tree;
}

const range = (start: number, end: number, step = 1): number[] => {
  const numbers: number[] = [];
  for (let n = start; n < end; n += step) numbers.push(n);
  return numbers;
};

/**
 * Iterates `tree` and calls `mutate` between steps; checks on the fly: order, no key twice, every
 * yielded key present (with its current value) when yielded, never a key inserted behind the cursor;
 * and at the end every key present throughout was yielded.
 */
function iterateWhileMutating<V>(
  flavour: Flavour<V>,
  tree: OrderedCollection<V>,
  model: Map<number, number>,
  reverse: boolean,
  mutate: (current: number, model: Map<number, number>, put: (n: number, value: number) => void, remove: (n: number) => void) => void,
): number[] {
  const presentThroughout = new Set(model.keys());
  const insertedBehind = new Set<number>();
  const yielded: number[] = [];
  let cursor: number | undefined;
  const behind = (n: number): boolean => cursor !== undefined && (reverse ? n >= cursor : n <= cursor);
  const put = (n: number, value: number): void => {
    if (n < 0 || n > 0xffff) return;
    if (!model.has(n) && behind(n)) insertedBehind.add(n);
    tree.put(keyOf(n), flavour.value(value));
    model.set(n, value);
  };
  const remove = (n: number): void => {
    expect(tree.delete(keyOf(n))).toBe(model.delete(n));
    presentThroughout.delete(n);
  };
  for (const [key, value] of tree.range({ reverse })) {
    const n = numberOfKey(key);
    if (cursor !== undefined) expect(reverse ? n < cursor : n > cursor, `order: ${n} after ${cursor}`).toBe(true);
    expect(model.has(n), `yielded ${n}, which is not present`).toBe(true);
    expect(flavour.numberOf(value), `value of ${n}`).toBe(model.get(n));
    expect(insertedBehind.has(n), `yielded ${n}, inserted behind the cursor`).toBe(false);
    yielded.push(n);
    cursor = n;
    mutate(n, model, put, remove);
  }
  const yieldedSet = new Set(yielded);
  expect(yieldedSet.size).toBe(yielded.length);
  for (const n of presentThroughout) expect(yieldedSet.has(n), `key ${n} present throughout was not yielded`).toBe(true);
  return yielded;
}

function defineSuite<V>(flavour: Flavour<V>): void {
  describe(`${flavour.name}: mutating while iterating`, () => {
    for (const reverse of [false, true]) {
      const direction = reverse ? 'reverse' : 'forward';

      it(`deleting the current key continues with the next one (${direction})`, async () => {
        const numbers = range(0, 300, 2);
        const tree = await filled(flavour, numbers);
        const model = new Map(numbers.map((n) => [n, n]));
        const yielded = iterateWhileMutating(flavour, tree, model, reverse, (current, _model, _put, remove) => remove(current));
        expect(yielded).toEqual(reverse ? [...numbers].reverse() : numbers);
        expect(tree.size).toBe(0);
        expect([...tree.keys()]).toEqual([]);
      });

      it(`deleting the current key and the next one skips the deleted one (${direction})`, async () => {
        const numbers = range(0, 200, 2);
        const tree = await filled(flavour, numbers);
        const model = new Map(numbers.map((n) => [n, n]));
        const yielded = iterateWhileMutating(flavour, tree, model, reverse, (current, _model, _put, remove) => {
          remove(current);
          const next = reverse ? current - 2 : current + 2;
          if (model.has(next)) remove(next);
        });
        const ordered = reverse ? [...numbers].reverse() : numbers;
        expect(yielded).toEqual(ordered.filter((_, index) => index % 2 === 0));
      });

      it(`keys inserted ahead may be yielded (once, in order), keys inserted behind never are (${direction})`, async () => {
        const numbers = range(100, 400, 3);
        const tree = await filled(flavour, numbers);
        const model = new Map(numbers.map((n) => [n, n]));
        const originals = new Set(numbers);
        const yielded = iterateWhileMutating(flavour, tree, model, reverse, (current, _model, put) => {
          if (!originals.has(current)) return; // mutate at original keys only: no endless chain of inserts ahead
          const step = reverse ? -1 : 1;
          put(current + step, 10_000 + current); // just ahead
          put(current - step, 20_000 + current); // just behind
          put(current - 50 * step, 30_000 + current); // far behind
        });
        // Inserting just ahead of the cursor: here the re-seek finds it, so it is yielded (allowed).
        expect(yielded.length).toBeGreaterThanOrEqual(numbers.length);
        const expected = [...model.keys()].sort((a, b) => a - b);
        expect([...tree.keys()].map(numberOfKey)).toEqual(expected);
      });

      it(`bursts of inserts and deletes (leaf splits and unlinks) while the cursor is held (${direction})`, async () => {
        const numbers = range(0, 4000, 10);
        const tree = await filled(flavour, numbers);
        const model = new Map(numbers.map((n) => [n, n]));
        const originals = new Set(numbers);
        let step = 0;
        iterateWhileMutating(flavour, tree, model, reverse, (current, _model, put, remove) => {
          if (!originals.has(current)) return; // mutate at original keys only: no endless chain of inserts ahead
          step++;
          const ahead = reverse ? -1 : 1;
          if (step % 5 === 0) for (let offset = 1; offset < 9; offset++) put(current + ahead * offset, current * 10 + offset); // a burst ahead: splits
          if (step % 7 === 0) for (let offset = 1; offset < 9; offset++) put(current - ahead * offset, current * 10 + offset); // behind
          if (step % 11 === 0)
            for (let offset = 10; offset <= 300; offset += 10) if (model.has(current + ahead * offset)) remove(current + ahead * offset);
          if (step % 13 === 0)
            for (let offset = 10; offset <= 300; offset += 10) if (model.has(current - ahead * offset)) remove(current - ahead * offset);
        });
        expect([...tree.keys()].map(numberOfKey)).toEqual([...model.keys()].sort((a, b) => a - b));
      });

      it(`overwriting values while iterating: each key is yielded once with its value at that moment (${direction})`, async () => {
        const numbers = range(0, 500, 5);
        const tree = await filled(flavour, numbers);
        const model = new Map(numbers.map((n) => [n, n]));
        const yielded = iterateWhileMutating(flavour, tree, model, reverse, (current, _model, put) => {
          put(current, current + 1_000_000); // the current key
          const next = reverse ? current - 5 : current + 5;
          if (model.has(next)) put(next, next + 2_000_000); // the next key: yielded with this value
        });
        expect(yielded).toEqual(reverse ? [...numbers].reverse() : numbers);
        for (const n of numbers) expect(flavour.numberOf(tree.get(keyOf(n))!)).toBe(n + 1_000_000);
      });

      it(`random mutations between steps keep the iteration guarantees (${direction})`, async () => {
        const random = new Random(reverse ? 7 : 8);
        const next = (): number => random.next();
        for (let round = 0; round < 4; round++) {
          const numbers = range(0, 1500).filter(() => next() < 0.3);
          const tree = await filled(flavour, numbers);
          const model = new Map(numbers.map((n) => [n, n]));
          let counter = 0;
          iterateWhileMutating(flavour, tree, model, reverse, (current, state, put, remove) => {
            const operations = Math.floor(next() * 4);
            for (let index = 0; index < operations; index++) {
              const choice = next();
              const target = Math.floor(next() * 1500);
              counter++;
              if (choice < 0.15) {
                if (state.has(current)) remove(current);
              } else if (choice < 0.45) {
                if (state.has(target)) remove(target);
              } else if (choice < 0.8) put(target, 100_000 + counter);
              else if (state.has(current)) put(current, 200_000 + counter);
            }
          });
          expect([...tree.keys()].map(numberOfKey)).toEqual([...model.keys()].sort((a, b) => a - b));
        }
      });
    }

    it('a bounded range with a limit stays within its bounds while mutated', async () => {
      const numbers = range(0, 300, 3);
      const tree = await filled(flavour, numbers);
      const seen: number[] = [];
      for (const key of tree.keys({ gte: keyOf(30), lt: keyOf(200), limit: 20 })) {
        const n = numberOfKey(key);
        seen.push(n);
        tree.put(keyOf(n + 1), flavour.value(0)); // ahead, inside the bounds
        tree.put(keyOf(n === 30 ? 10 : n - 1), flavour.value(0)); // behind
        tree.put(keyOf(250 + seen.length), flavour.value(0)); // beyond the upper bound
        tree.delete(keyOf(n));
      }
      expect(seen.length).toBe(20);
      for (let index = 1; index < seen.length; index++) expect(seen[index]!).toBeGreaterThan(seen[index - 1]!);
      for (const n of seen) {
        expect(n).toBeGreaterThanOrEqual(30);
        expect(n).toBeLessThan(200);
      }
    });
  });

  describe(`${flavour.name}: ending iterators, copies, closed collections`, () => {
    it('return() stops the iterator: later next() calls are done', async () => {
      const tree = await filled(flavour, range(0, 10));
      for (const make of [
        () => tree.range(),
        () => tree.keys(),
        () => tree.values({ reverse: true }),
        () => tree.prefix(new Uint8Array(0)),
      ]) {
        const iterator = make();
        expect(iterator.next().done).toBe(false);
        expect(iterator.return()).toEqual({ done: true, value: undefined });
        expect(iterator.next()).toEqual({ done: true, value: undefined });
        expect(iterator.next().done).toBe(true);
        // Mutations after return() do not revive it.
        tree.put(keyOf(100), flavour.value(100));
        expect(iterator.next().done).toBe(true);
        tree.delete(keyOf(100));
      }
    });

    it('break in for…of closes the iterator', async () => {
      const tree = await filled(flavour, range(0, 10));
      const iterator = tree.keys();
      for (const key of iterator) {
        if (numberOfKey(key) === 3) break;
      }
      expect(iterator.next().done).toBe(true);
    });

    it('`using` and [Symbol.dispose] stop the iterator', async () => {
      const tree = await filled(flavour, range(0, 10));
      let escaped: ReturnType<typeof tree.range> | undefined;
      {
        using iterator = tree.range();
        escaped = iterator;
        expect(numberOfKey(iterator.next().value![0])).toBe(0);
      }
      expect(escaped.next().done).toBe(true);
      const direct = tree.keys({ reverse: true });
      expect(numberOfKey(direct.next().value!)).toBe(9);
      direct[Symbol.dispose]();
      expect(direct.next().done).toBe(true);
      direct[Symbol.dispose](); // idempotent
      expect(direct.return().done).toBe(true);
    });

    it('iterators are iterable (return themselves) and a limit of 0 yields nothing', async () => {
      const tree = await filled(flavour, range(0, 5));
      const iterator = tree.keys();
      expect(iterator[Symbol.iterator]()).toBe(iterator);
      expect([...tree.range({ limit: 0 })]).toEqual([]);
      expect([...tree.prefix(new Uint8Array(0), { limit: 0 })]).toEqual([]);
      expect([...tree.keys({ limit: 2, reverse: true })].map(numberOfKey)).toEqual([4, 3]);
    });

    it('yielded keys (and byte values) are copies: mutating them changes nothing stored', async () => {
      const numbers = range(0, 20);
      const tree = await filled(flavour, numbers);
      for (const [key, value] of tree.range()) {
        key.fill(0xee);
        if (flavour.valuesAreCopies) (value as Uint8Array).fill(0xee);
      }
      for (const key of tree.keys()) key.fill(0xdd);
      for (const [key] of tree.prefix(Uint8Array.of(0))) key.fill(0xcc);
      if (flavour.valuesAreCopies) for (const value of tree.values()) (value as Uint8Array).fill(0xbb);
      const first = tree.first()!;
      const last = tree.last()!;
      first[0].fill(0xaa);
      last[0].fill(0xaa);
      if (flavour.valuesAreCopies) {
        (first[1] as Uint8Array).fill(0xaa);
        (last[1] as Uint8Array).fill(0xaa);
      }
      expect([...tree.keys()].map(numberOfKey)).toEqual(numbers);
      expect([...tree.values()].map((value) => flavour.numberOf(value))).toEqual(numbers);
      for (const n of numbers) expect(flavour.numberOf(tree.get(keyOf(n))!)).toBe(n);
      expect(tree.has(keyOf(0xeeee))).toBe(false);
    });

    it('iterating after close throws ARMDB_CLOSED, when creating and when advancing', async () => {
      const tree = await filled(flavour, range(0, 10));
      const started = tree.range();
      expect(started.next().done).toBe(false);
      const fresh = tree.keys({ reverse: true });
      await tree.close();
      expectCode(() => tree.range(), 'ARMDB_CLOSED');
      expectCode(() => tree.keys(), 'ARMDB_CLOSED');
      expectCode(() => tree.values({ reverse: true }), 'ARMDB_CLOSED');
      expectCode(() => tree.prefix(Uint8Array.of(0)), 'ARMDB_CLOSED');
      expectCode(() => tree.first(), 'ARMDB_CLOSED');
      expectCode(() => tree.last(), 'ARMDB_CLOSED');
      expectCode(() => started.next(), 'ARMDB_CLOSED');
      expectCode(() => fresh.next(), 'ARMDB_CLOSED');
      // Once failed, the iterator is finished (no crash on further calls).
      expect(started.next().done).toBe(true);
      expect(fresh.return().done).toBe(true);
    });

    it('invalid range options are refused when the iterator is created', async () => {
      const tree = await filled(flavour, range(0, 5));
      const k = keyOf(1);
      expect(() => tree.range({ gt: k, gte: k })).toThrow(TypeError);
      expect(() => tree.keys({ lt: k, lte: k })).toThrow(TypeError);
      expect(() => tree.values({ gt: k, gte: k, lt: k })).toThrow(TypeError);
      expect(() => tree.range({ gt: new Uint8Array(3) })).toThrow(RangeError);
      expect(() => tree.range({ gte: new Uint8Array(1) })).toThrow(RangeError);
      expect(() => tree.keys({ lt: new Uint8Array(0) })).toThrow(RangeError);
      expect(() => tree.values({ lte: new Uint8Array(16) })).toThrow(RangeError);
      expect(() => tree.range({ gt: [0, 1] as unknown as Uint8Array })).toThrow(TypeError);
      expect(() => tree.range({ limit: -1 })).toThrow(RangeError);
      expect(() => tree.keys({ limit: -5 })).toThrow(RangeError);
      expect(() => tree.range({ limit: 1.5 })).toThrow(TypeError);
      expect(() => tree.range(5 as unknown as object)).toThrow(TypeError);
      expect(() => tree.prefix(new Uint8Array(3))).toThrow(RangeError);
      expect(() => tree.prefix('ab' as unknown as Uint8Array)).toThrow(TypeError);
      expect(() => tree.prefix(new Uint8Array(1), { limit: -1 })).toThrow(RangeError);
      // Still usable afterwards.
      expect([...tree.keys()].map(numberOfKey)).toEqual([0, 1, 2, 3, 4]);
    });
  });
}

defineSuite(varTree);
defineSuite(constTree);
defineSuite(typedTree);

describe('keys() never reads values', () => {
  it('TypedTree: keys() decodes nothing, even after values were overwritten; values() decodes the overwritten ones', async () => {
    let decodes = 0;
    const counting: Codec<{ n: number }> = {
      encode: (value) => codecs.json.encode(value),
      decode: (bytes) => {
        decodes++;
        return codecs.json.decode(bytes) as { n: number };
      },
    };
    const directory = tempDir();
    const options = { ...baseOptions, codec: counting };
    const writer = track(await TypedTree.open(directory, options));
    for (let n = 0; n < 50; n++) writer.put(keyOf(n), { n });
    await writer.close();

    decodes = 0;
    const tree = track(await TypedTree.open(directory, options));
    expect(decodes).toBe(50); // open decodes every live value
    decodes = 0;
    expect([...tree.keys()].length).toBe(50);
    expect([...tree.keys({ reverse: true, gte: keyOf(10) })].length).toBe(40);
    expect(decodes).toBe(0);
    // Overwrites invalidate the decoded objects (put encodes, never decodes).
    for (let n = 0; n < 50; n += 5) tree.put(keyOf(n), { n: n + 1000 });
    expect(decodes).toBe(0);
    expect([...tree.keys()].length).toBe(50);
    expect(decodes).toBe(0);
    // values() decodes each overwritten entry once, then serves the kept objects.
    expect([...tree.values()].map((value) => value.n)).toEqual(range(0, 50).map((n) => (n % 5 === 0 ? n + 1000 : n)));
    expect(decodes).toBe(10);
    expect([...tree.values()].length).toBe(50);
    expect(decodes).toBe(10);
  });

  it('VarTree: keys() reads no page (cache counters unchanged); range() does', async () => {
    const directory = tempDir();
    const options = { ...baseOptions, cacheBytes: 1 << 20 };
    const writer = track(await VarTree.open(directory, options));
    for (let n = 0; n < 200; n++) writer.put(keyOf(n), new Uint8Array(100).fill(n));
    await writer.close();
    const tree = track(await VarTree.open(directory, options));
    const before = tree.stats();
    expect([...tree.keys()].length).toBe(200);
    expect([...tree.keys({ reverse: true, limit: 50 })].length).toBe(50);
    const after = tree.stats();
    expect(after.cacheHits + after.cacheMisses).toBe(before.cacheHits + before.cacheMisses);
    expect([...tree.values()].length).toBe(200);
    const read = tree.stats();
    expect(read.cacheHits + read.cacheMisses).toBeGreaterThan(after.cacheHits + after.cacheMisses);
  });
});
