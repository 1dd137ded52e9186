/**
 * Every error the engine raises on purpose is an {@link ArmdbError} with a stable {@link ArmdbErrorCode}.
 * Codes are the contract; messages may change between versions. An error about a place on disk says
 * where in {@link ArmdbError.details}. Messages and details never contain key material, record keys or
 * values (docs/security-model.md §Secrets).
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
 * | `ARMDB_WRONG_KEY` | the key, passphrase or key provider opens no slot of the keyring |
 * | `ARMDB_INTEGRITY` | bytes on disk failed authentication or framing checks, or an entry is of the wrong kind (a link, FIFO or directory where a file belongs) |
 * | `ARMDB_ROLLBACK` | an older generation of the store or of one of its files |
 * | `ARMDB_FORMAT_MISMATCH` | immutable options or format differ from the directory's |
 * | `ARMDB_LOCKED` | the directory is open in this or another process |
 * | `ARMDB_CLOSED` | the collection was closed |
 * | `ARMDB_POISONED` | an earlier write-path I/O error; close and reopen |
 * | `ARMDB_ABORTED` | a long operation was cancelled through its `AbortSignal` |
 * | `ARMDB_PROVIDER_TIMEOUT` | a key provider did not answer `wrap`/`unwrap` within `providerTimeoutMs` |
 * | `ARMDB_READ_ONLY` | a write, sync or maintenance operation on a read-only replica (docs/replication.md) |
 * | `ARMDB_FENCED` | a leader whose lease another node took: it never appends again (docs/replication.md) |
 * | `ARMDB_REPLICATION` | replication cannot start or go on: the NATS servers are unreachable, or the stream has nothing to follow; a leader's unpublished backlog at `maxUnpublishedBytes` (a put or delete) |
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
  'ARMDB_PROVIDER_TIMEOUT',
  'ARMDB_READ_ONLY',
  'ARMDB_FENCED',
  'ARMDB_REPLICATION',
] as const;

/** One of {@link ERROR_CODES}. */
export type ArmdbErrorCode = (typeof ERROR_CODES)[number];

/**
 * Where an error happened, when the code that raised it knows: the shard, the data file, the page of
 * that file, or the path of the file it was reading. Every field is optional, and a field is absent
 * (not `undefined`-valued) when unknown. Never key material, record keys or values.
 */
export interface ArmdbErrorDetails {
  /** Shard of the file, from 0. */
  readonly shard?: number;
  /** Id of the data file, unique across the store: `shard-SSS/NNNNNN.data` (docs/format.md §1.1). */
  readonly fileId?: number;
  /** Index of the 4096-byte page in that data file, from 0. */
  readonly pageIndex?: number;
  /** Path of the file, as armdb opened it. */
  readonly path?: string;
}

const NO_DETAILS: ArmdbErrorDetails = Object.freeze({});

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A frozen copy of the known fields only, so nothing else a caller passes can ride along on an error. */
function frozenDetails(details: ArmdbErrorDetails | undefined): ArmdbErrorDetails {
  if (details === undefined) return NO_DETAILS;
  const copy: { shard?: number; fileId?: number; pageIndex?: number; path?: string } = {};
  if (isIndex(details.shard)) copy.shard = details.shard;
  if (isIndex(details.fileId)) copy.fileId = details.fileId;
  if (isIndex(details.pageIndex)) copy.pageIndex = details.pageIndex;
  if (typeof details.path === 'string') copy.path = details.path;
  return Object.keys(copy).length === 0 ? NO_DETAILS : Object.freeze(copy);
}

/**
 * The one error class of armdb. Switch on `code`, never on `message`; where an error has a location
 * (a page that fails authentication, a damaged file), read it from `details`, never from the message.
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
 *
 * @example
 * ```ts
 * try {
 *   db.get(key);
 * } catch (error) {
 *   if (error instanceof ArmdbError && error.code === 'ARMDB_INTEGRITY') {
 *     const { shard, fileId, pageIndex } = error.details;
 *     console.error(`damaged: shard ${shard}, file ${fileId}, page ${pageIndex}`);
 *   }
 *   throw error;
 * }
 * ```
 */
export class ArmdbError extends Error {
  /** The stable code. */
  readonly code: ArmdbErrorCode;
  /** Where it happened, as far as the code that raised it knows; frozen, empty when nothing is known. */
  readonly details: ArmdbErrorDetails;

  constructor(code: ArmdbErrorCode, message: string, options?: { cause?: unknown; details?: ArmdbErrorDetails }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ArmdbError';
    this.code = code;
    this.details = frozenDetails(options?.details);
  }
}

/** @internal Shorthand used across the engine. */
export function armdbError(code: ArmdbErrorCode, message: string, cause?: unknown, details?: ArmdbErrorDetails): ArmdbError {
  return new ArmdbError(code, `${code}: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    ...(details === undefined ? {} : { details }),
  });
}

/** @internal Raise on bytes from disk that fail a framing or authentication check; `details` says where, when known. */
export function integrityError(message: string, cause?: unknown, details?: ArmdbErrorDetails): ArmdbError {
  return armdbError('ARMDB_INTEGRITY', message, cause, details);
}
