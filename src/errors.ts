/**
 * Every error the engine raises on purpose is an {@link ArmdbError} with a stable {@link ArmdbErrorCode}.
 * Codes are the contract; messages may change between versions. Messages never contain key material,
 * record keys or values (docs/security-model.md §Secrets).
 *
 * @module
 */

/**
 * The stable error codes, one per failure a caller may want to handle differently.
 *
 * | code | meaning |
 * |---|---|
 * | `ARMDB_KEY_EXISTS` | `insert` of a key that is present; nothing changed |
 * | `ARMDB_KEY_NOT_FOUND` | `cas` of a key that is absent |
 * | `ARMDB_CAS_MISMATCH` | `cas` whose expected value is not the current one |
 * | `ARMDB_SHARD_MISMATCH` | a key inside `atomic` that routes to another shard |
 * | `ARMDB_VALUE_TOO_LARGE` | a value longer than `maxValueBytes` |
 * | `ARMDB_WRONG_KEY` | the key or passphrase does not open the keyring |
 * | `ARMDB_INTEGRITY` | bytes on disk failed authentication or framing checks, or an entry is of the wrong kind (a link, FIFO or directory where a file belongs) |
 * | `ARMDB_ROLLBACK` | an older generation of the store or of one of its files |
 * | `ARMDB_FORMAT_MISMATCH` | immutable options or format differ from the directory's |
 * | `ARMDB_LOCKED` | the directory is open in this or another process |
 * | `ARMDB_CLOSED` | the collection was closed |
 * | `ARMDB_POISONED` | an earlier write-path I/O error; close and reopen |
 * | `ARMDB_ABORTED` | a long operation was cancelled through its `AbortSignal` |
 */
export const ERROR_CODES = [
  'ARMDB_KEY_EXISTS',
  'ARMDB_KEY_NOT_FOUND',
  'ARMDB_CAS_MISMATCH',
  'ARMDB_SHARD_MISMATCH',
  'ARMDB_VALUE_TOO_LARGE',
  'ARMDB_WRONG_KEY',
  'ARMDB_INTEGRITY',
  'ARMDB_ROLLBACK',
  'ARMDB_FORMAT_MISMATCH',
  'ARMDB_LOCKED',
  'ARMDB_CLOSED',
  'ARMDB_POISONED',
  'ARMDB_ABORTED',
] as const;

/** One of {@link ERROR_CODES}. */
export type ArmdbErrorCode = (typeof ERROR_CODES)[number];

/**
 * The one error class of armdb. Switch on `code`, never on `message`.
 *
 * @example
 * ```ts
 * try {
 *   db.insert(key, value);
 * } catch (error) {
 *   if (error instanceof ArmdbError && error.code === 'ARMDB_KEY_EXISTS') {
 *     // the old value is still stored
 *   } else throw error;
 * }
 * ```
 */
export class ArmdbError extends Error {
  /** The stable code. */
  readonly code: ArmdbErrorCode;

  constructor(code: ArmdbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ArmdbError';
    this.code = code;
  }
}

/** @internal Shorthand used across the engine. */
export function armdbError(code: ArmdbErrorCode, message: string, cause?: unknown): ArmdbError {
  return new ArmdbError(code, `${code}: ${message}`, cause === undefined ? undefined : { cause });
}

/** @internal Raise on bytes from disk that fail a framing or authentication check. */
export function integrityError(message: string, cause?: unknown): ArmdbError {
  return armdbError('ARMDB_INTEGRITY', message, cause);
}
