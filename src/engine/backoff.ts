/**
 * When background work that failed (a compaction or a hint write that ran into ENOSPC or EIO) is
 * tried again. It is counted in durability barriers, not in time: background compaction starts after
 * a barrier, and a barrier runs every `syncIntervalMs` or at each `sync()`. After the n-th failure in
 * a row the next 2^(n-1) chances are skipped, at most {@link MAX_SKIPPED_CHANCES}; a success starts over.
 * A full disk is then not hammered at every barrier, and work resumes by itself once there is room.
 */
export const MAX_SKIPPED_CHANCES = 64;

export class Backoff {
  #failures = 0;
  #skipLeft = 0;

  /** Failures in a row since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** One chance to run (a barrier passed): true when the work may run now. */
  allow(): boolean {
    if (this.#skipLeft === 0) return true;
    this.#skipLeft--;
    return false;
  }

  failed(): void {
    this.#failures++;
    this.#skipLeft = Math.min(2 ** (this.#failures - 1), MAX_SKIPPED_CHANCES);
  }

  succeeded(): void {
    this.#failures = 0;
    this.#skipLeft = 0;
  }
}
