/** The one way long work (warmup, verify, migrate, compaction, export) gives the event loop a turn. */
import { setImmediate } from 'node:timers/promises';

/** Resolves after queued I/O callbacks have run, so that a long walk keeps the process responsive. */
export function yieldToEventLoop(): Promise<void> {
  return setImmediate();
}
