/**
 * Invariants of armdb's own code. A failed `assert` is a bug in armdb, never bad input: bad input
 * from a caller is a `TypeError`/`RangeError` (src/config.ts), bad bytes from disk an `ArmdbError`
 * (src/errors.ts). Assert both sides of a boundary (STYLE.md habit 7).
 */

/** Thrown when an invariant of armdb's own code does not hold. */
export class ArmdbAssertionError extends Error {
  override readonly name = 'ArmdbAssertionError';
}

/**
 * Throws {@link ArmdbAssertionError} naming `what` when `condition` is falsy. `what` says what should
 * have held; on a hot path pass a constant string, not a template built on every call.
 */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new ArmdbAssertionError(`armdb invariant failed: ${what}`);
}
