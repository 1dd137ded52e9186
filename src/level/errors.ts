/**
 * Level's error codes for armdb's errors (docs/level.md §Errors): abstract-level's callers switch on
 * `LEVEL_*` codes, so every armdb error that crosses the adapter is wrapped in one, with the armdb
 * error as `cause` (its code and details stay reachable there).
 */
import { ArmdbError, type ArmdbErrorCode } from '../errors.js';

/** An error with one of Level's codes, shaped like abstract-level's own (`code`, `cause`, `expected`). */
export class LevelError extends Error {
  /** One of Level's `LEVEL_*` codes. */
  readonly code: string;
  /** True for errors a caller may expect and handle (as abstract-level marks its own). */
  readonly expected: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; expected?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LevelError';
    this.code = code;
    this.expected = options?.expected ?? false;
  }
}

/** @internal */
export function levelError(code: string, message: string, cause?: unknown): LevelError {
  return new LevelError(code, message, { ...(cause === undefined ? {} : { cause }), expected: code === 'LEVEL_INVALID_KEY' });
}

const LEVEL_CODE_OF: Readonly<Partial<Record<ArmdbErrorCode, string>>> = {
  ARMDB_CLOSED: 'LEVEL_DATABASE_NOT_OPEN',
  ARMDB_LOCKED: 'LEVEL_LOCKED',
  ARMDB_INTEGRITY: 'LEVEL_CORRUPTION',
  ARMDB_ROLLBACK: 'LEVEL_CORRUPTION',
  ARMDB_POISONED: 'LEVEL_IO_ERROR',
  ARMDB_VALUE_TOO_LARGE: 'LEVEL_INVALID_VALUE',
  ARMDB_ABORTED: 'LEVEL_ABORTED',
};

/**
 * @internal An armdb error as a Level error with the original as `cause`; anything else (a
 * TypeError or RangeError from an option check, an error already carrying a Level code) unchanged.
 */
export function toLevelError(error: unknown): unknown {
  if (!(error instanceof ArmdbError)) return error;
  const code = LEVEL_CODE_OF[error.code] ?? 'LEVEL_IO_ERROR';
  return levelError(code, error.message, error);
}
