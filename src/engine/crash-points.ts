/**
 * Named points between the steps of the engine's multi-step operations, for crash tests
 * (docs/durability.md §13): a test installs a handler that ends the process there — a SIGKILL in a
 * child process, a simulated death of the fault-injecting file system, or a power cut — and then
 * checks what recovery makes of the files. Each point also tells a trace what the engine is doing
 * (compaction steps, files adopted and retired, barrier rounds), so a failing crash run can be replayed.
 *
 * Not part of the API: no option reaches it, and the package's exports map exposes only the entry
 * point, so an application cannot import this module. Without a handler a point costs one comparison
 * and one closure.
 */

/** Every named point, in the order of the operations they sit in. */
export const CRASH_POINTS = [
  // DurabilityBarrier.run (src/engine/barrier.ts, docs/durability.md §4)
  'barrier:snapshot-taken',
  'barrier:files-synced',
  'barrier:directories-synced',
  // replaceFileAtomically, for the MANIFEST and the KEYRING
  'manifest:temporary-written',
  'manifest:renamed',
  'manifest:replaced',
  // appendManifestRecord: the steady-state barrier's one write and fsync of the MANIFEST
  'manifest:appended',
  'manifest:append-synced',
  'keyring:temporary-written',
  'keyring:renamed',
  'keyring:replaced',
  // store creation (createRootFiles in src/engine/root-files.ts)
  'create:keyring-written',
  'create:manifest-written',
  // compaction (src/engine/compaction.ts, "The five steps")
  'compaction:outputs-written',
  'compaction:outputs-synced',
  'compaction:outputs-renamed',
  'compaction:directory-synced',
  'compaction:adopted',
  'compaction:persisted',
  'compaction:input-deleted',
  'compaction:inputs-deleted',
  // the hint writer
  'hint:temporary-written',
  'hint:renamed',
  'hint:directory-synced',
  // key operations (docs/security-model.md §Key lifecycle)
  'rotate-key:keyring-written',
  'rotate-key:rotated',
  'shred:directories-synced',
  'shred:keyring-written',
  'change-key:keyring-written',
  // close()
  'close:active-files-sealed',
  'close:barrier-done',
  'close:hints-written',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

/** Where the engine is when it passes a point. File ids are those of the files the step handles. */
export interface CrashPointDetail {
  readonly directory: string;
  readonly shard?: number;
  readonly fileIds?: readonly number[];
  readonly epoch?: number;
}

export type CrashPointHandler = (point: CrashPoint, detail: CrashPointDetail) => void;

let handler: CrashPointHandler | undefined;

/**
 * Passes a named point: calls the test's handler, if one is installed. The detail is built only
 * then: without a handler (always, outside tests) a point allocates nothing on the barrier's path.
 */
export function crashPoint(point: CrashPoint, detail: () => CrashPointDetail): void {
  if (handler !== undefined) handler(point, detail());
}

/** Installs `next` (undefined removes it) and returns the handler it replaces. Tests only. */
export function setCrashPointHandler(next: CrashPointHandler | undefined): CrashPointHandler | undefined {
  const previous = handler;
  handler = next;
  return previous;
}
