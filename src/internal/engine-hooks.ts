/**
 * @internal The test seam: how tests give an engine a fault-injecting file system. This module is not
 * in package.json's exports map, so code that installs armdb cannot reach it; the public `open()`
 * takes only the documented options.
 */
import type { FileSystem } from '../io/file-system.js';

/** What a test may swap in beneath an engine. */
export interface EngineHooks {
  readonly fileSystem?: FileSystem;
  /** The clock of data-key ages, slot creation times and audit events (ms since the epoch). */
  readonly now?: () => number;
}

const hooksByOptions = new WeakMap<object, EngineHooks>();

/**
 * Returns `options` with `hooks` attached for the next `open` that receives this very object. Pass a
 * fresh object (`withEngineHooks({ ...options }, hooks)`) so that no other open inherits them.
 */
export function withEngineHooks<O extends object>(options: O, hooks: EngineHooks): O {
  hooksByOptions.set(options, hooks);
  return options;
}

/** The hooks attached to `options`, or none. */
export function engineHooksOf(options: unknown): EngineHooks {
  return (typeof options === 'object' && options !== null ? hooksByOptions.get(options) : undefined) ?? {};
}
