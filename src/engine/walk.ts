/**
 * The one way a long walk over the store (migrate, export, warmup, verify, and the open-time walks of
 * hooks and Typed collections) is paced: work is counted, and after every slice of
 * {@link SLICE_WORK} units the walk reports progress, gives the event loop a turn and checks its
 * `AbortSignal`, so that a store of any size keeps the process responsive and cancellable.
 *
 * @example
 * ```ts
 * const walk = new Walk({ operation: 'migrate', signal });
 * await walk.each(index.liveHandles(), (handle) => visit(handle));   // sync or async visits
 *
 * // pages, with progress: a page is worth PAGE_WORK units, so a slice is PAGES_PER_SLICE pages
 * const pages = new Walk({ operation: 'verify', signal, checkStillValid: assertOpen });
 * pages.throwIfAborted();
 * for (const file of files)
 *   for (let first = 0; first < file.pageCount; first += PAGES_PER_SLICE) {
 *     const count = verifyPages(file, first, PAGES_PER_SLICE);
 *     report(count);
 *     await pages.step(count * PAGE_WORK);
 *   }
 * ```
 */
import { assert } from '../assert.js';
import { armdbError } from '../errors.js';
import { yieldToEventLoop } from './yield.js';

/** Units of work between two turns of the event loop; visiting one index entry is one unit. */
export const SLICE_WORK = 1024;

/**
 * Pages in one slice: what authenticating or loading a 4 KiB page weighs against visiting an entry,
 * and the chunk in which a page walk (verify, warmup) reads and reports progress.
 */
export const PAGES_PER_SLICE = 64;

/** Units of work of one page. */
export const PAGE_WORK = SLICE_WORK / PAGES_PER_SLICE;

/** What a {@link Walk} is and what it reports. */
export interface WalkOptions {
  /** Names the operation in the `ARMDB_ABORTED` message: `"<operation> was aborted"`. */
  readonly operation: string;
  /** Cancels the walk between slices: it then throws `ARMDB_ABORTED` with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** Called at the end of every full slice, before the yield (progress reports). */
  readonly onSlice?: (() => void) | undefined;
  /** Called after every yield, beside the abort check: throws if the walk may not go on (a closed store). */
  readonly checkStillValid?: (() => void) | undefined;
}

/** Paces one long walk in slices; see the module comment. */
export class Walk {
  readonly #options: WalkOptions;
  /** Work done in the current slice. */
  #work = 0;

  constructor(options: WalkOptions) {
    this.#options = options;
  }

  /** The walk's abort check: throws `ARMDB_ABORTED` if its signal has fired. */
  throwIfAborted(): void {
    const signal = this.#options.signal;
    if (signal?.aborted) throw armdbError('ARMDB_ABORTED', `${this.#options.operation} was aborted`, signal.reason);
  }

  /**
   * Counts `work` units done. When that fills the slice, reports it, yields to the event loop and
   * then checks the signal (and `checkStillValid`); otherwise resolves without a turn.
   */
  async step(work: number): Promise<void> {
    assert(work >= 0, 'a walk step does a non-negative amount of work');
    this.#work += work;
    if (this.#work >= SLICE_WORK) await this.#endSlice();
  }

  /**
   * Checks the signal, then calls `visit` for each of `items` (awaiting it when it returns a
   * promise), one unit each, ending a slice between two items whenever one is full. Items are pulled
   * one at a time, so `items` may follow mutations made by earlier visits.
   */
  async each<T>(items: Iterable<T>, visit: (item: T) => void | Promise<void>): Promise<void> {
    this.throwIfAborted();
    for (const item of items) {
      if (this.#work >= SLICE_WORK) await this.#endSlice();
      const pending = visit(item);
      if (pending !== undefined) await pending;
      this.#work++;
    }
  }

  async #endSlice(): Promise<void> {
    this.#work = 0;
    this.#options.onSlice?.();
    await yieldToEventLoop();
    this.throwIfAborted();
    this.#options.checkStillValid?.();
  }
}
