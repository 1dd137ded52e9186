/**
 * The engine's state checks: open, closing, released, and poisoned (STYLE.md habit 4). After a failed
 * write or fsync every further write is refused with ARMDB_POISONED; an fsync is never retried.
 */
import { ArmdbError, armdbError } from '../errors.js';

export class EngineGuard {
  #poisonCause: unknown = undefined;
  #closing = false;
  #released = false;
  /** Why writes are refused although nothing failed: a read-only replica, a fenced leader (src/replication). */
  #writeRefusal: { readonly code: 'ARMDB_READ_ONLY' | 'ARMDB_FENCED'; readonly message: string } | undefined;
  /** Why new records are refused for now (sync and maintenance go on): a replication backlog at its bound. */
  #writeHold: string | undefined;

  /** close() has been called: reads and writes are refused. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Files, keys and the lock are released: no barrier may run any more. */
  get released(): boolean {
    return this.#released;
  }

  get poisoned(): boolean {
    return this.#poisonCause !== undefined;
  }

  beginClose(): void {
    this.#closing = true;
  }

  markReleased(): void {
    this.#released = true;
  }

  assertOpen(): void {
    if (this.#closing) throw armdbError('ARMDB_CLOSED', 'the collection is closed');
  }

  assertWritable(): void {
    this.assertOpen();
    this.assertNotPoisoned();
    if (this.#writeRefusal !== undefined) throw armdbError(this.#writeRefusal.code, this.#writeRefusal.message);
  }

  /** From now on every write, sync and maintenance operation throws `code`; reads go on. The first refusal stays. */
  refuseWrites(code: 'ARMDB_READ_ONLY' | 'ARMDB_FENCED', message: string): void {
    if (this.#writeRefusal === undefined || code === 'ARMDB_FENCED') this.#writeRefusal = { code, message };
  }

  /** Until `holdWrites(undefined)`, every new record throws ARMDB_REPLICATION with `message`; sync, reads and maintenance go on. */
  holdWrites(message: string | undefined): void {
    this.#writeHold = message;
  }

  /** {@link assertWritable}, and no hold on new records. */
  assertAcceptsRecords(): void {
    this.assertWritable();
    if (this.#writeHold !== undefined) throw armdbError('ARMDB_REPLICATION', this.#writeHold);
  }

  /** Throws ARMDB_POISONED (with the first failure as its cause) once a write-path operation failed. */
  assertNotPoisoned(): void {
    if (this.#poisonCause !== undefined) {
      throw armdbError('ARMDB_POISONED', 'an earlier write or fsync failed; close and reopen the collection', this.#poisonCause);
    }
  }

  /** Records a write-path failure: from now on every write is refused (fsync is never retried). */
  poison(error: unknown): ArmdbError {
    if (this.#poisonCause === undefined) this.#poisonCause = error;
    if (error instanceof ArmdbError && error.code === 'ARMDB_POISONED') return error;
    return armdbError('ARMDB_POISONED', 'a write-path I/O operation failed; close and reopen the collection', error);
  }

  /** The error a barrier of a poisoned engine fails with: the poisoning one, wrapped as it was. */
  poisonedError(): ArmdbError | undefined {
    return this.#poisonCause === undefined ? undefined : this.poison(this.#poisonCause);
  }
}
