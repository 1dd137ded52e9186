/**
 * The seeded random generator of the test suites: the same seed gives the same sequence on every
 * machine, so a failing seed reproduces. Not for anything secret. Not a test file itself.
 */

/** xorshift32 (Marsaglia 2003): small, fast, reproducible. */
export class Random {
  #state: number;

  /** Seed 0 would be a fixed point of xorshift, so it is replaced by a non-zero constant. */
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }

  /** A number in [0, 1). */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#state = x;
    return x / 0x1_0000_0000;
  }

  /** An integer in [low, high]. */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }
}
