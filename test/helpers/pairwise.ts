/**
 * A small deterministic pairwise (all-pairs) generator: rows such that every pair of values of any
 * two dimensions appears together in at least one row. For the configuration matrix of the
 * behavioural suite, where the full product is too slow: 2 × 2 × 2 × 3 × 2 = 48 rows become 6–8.
 *
 * Greedy, in the spirit of AETG (Cohen et al. 1997) but without randomness: each new row starts from
 * the first pair not yet covered, then every other dimension takes the value that covers the most
 * uncovered pairs with the values already chosen (ties: the earliest value). The same input always
 * gives the same rows. Not a test file itself (no `.test.ts` suffix).
 */

/** The dimensions: a name and its values (at least one each). */
export type Dimensions = Readonly<Record<string, readonly unknown[]>>;

/** One row: a value of every dimension. */
export type Row<D extends Dimensions> = { readonly [K in keyof D]: D[K][number] };

/** Rows covering every pair of values of every two dimensions (every value, if there is one dimension). */
export function pairwise<D extends Dimensions>(dimensions: D): Row<D>[] {
  const names = Object.keys(dimensions);
  const sizes = names.map((name) => dimensions[name]!.length);
  for (const [index, size] of sizes.entries()) {
    if (size === 0) throw new RangeError(`pairwise: dimension "${names[index]}" has no values`);
  }
  // uncovered[a][b] holds "i,j" for value i of dimension a and value j of dimension b (a < b).
  const uncovered: Set<string>[][] = names.map(() => names.map(() => new Set<string>()));
  for (let a = 0; a < names.length; a++) {
    for (let b = a + 1; b < names.length; b++) {
      for (let i = 0; i < sizes[a]!; i++) for (let j = 0; j < sizes[b]!; j++) uncovered[a]![b]!.add(`${i},${j}`);
    }
  }
  const remaining = (): number => uncovered.flat().reduce((sum, set) => sum + set.size, 0);
  const rows: number[][] = [];
  if (names.length === 1) {
    for (let i = 0; i < sizes[0]!; i++) rows.push([i]);
  }
  while (remaining() > 0) {
    const row: (number | undefined)[] = names.map(() => undefined);
    // Seed the row with the first uncovered pair.
    seed: for (let a = 0; a < names.length; a++) {
      for (let b = a + 1; b < names.length; b++) {
        const first = uncovered[a]![b]!.values().next();
        if (first.done === true) continue;
        const [i, j] = first.value.split(',').map(Number);
        row[a] = i;
        row[b] = j;
        break seed;
      }
    }
    for (let dimension = 0; dimension < names.length; dimension++) {
      if (row[dimension] !== undefined) continue;
      let best = 0;
      let bestGain = -1;
      for (let value = 0; value < sizes[dimension]!; value++) {
        let gain = 0;
        for (let other = 0; other < names.length; other++) {
          const chosen = row[other];
          if (other === dimension || chosen === undefined) continue;
          const [a, b, key] = other < dimension ? [other, dimension, `${chosen},${value}`] : [dimension, other, `${value},${chosen}`];
          if (uncovered[a]![b]!.has(key)) gain++;
        }
        if (gain > bestGain) {
          best = value;
          bestGain = gain;
        }
      }
      row[dimension] = best;
    }
    const complete = row as number[];
    for (let a = 0; a < names.length; a++) {
      for (let b = a + 1; b < names.length; b++) uncovered[a]![b]!.delete(`${complete[a]},${complete[b]}`);
    }
    rows.push(complete);
  }
  return rows.map((row) => Object.fromEntries(names.map((name, index) => [name, dimensions[name]![row[index]!]])) as Row<D>);
}
