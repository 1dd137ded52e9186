/**
 * What the engine needs from an index, implemented by the hash index (Maps) and the ordered index
 * (Trees). An entry is addressed by a handle into the shared {@link EntryStore}.
 */
import type { EntryStore } from './entry-store.js';

export interface KeyIndex {
  readonly entries: EntryStore;
  /** Number of entries (live keys, plus tombstones while recovery runs). */
  readonly size: number;
  /** Handle of `key`, or -1. */
  find(key: Uint8Array): number;
  /** Handle of `key`, inserting an entry (location unset) if absent. */
  findOrInsert(key: Uint8Array): number;
  /** Removes `key`; returns whether it was present. */
  remove(key: Uint8Array): boolean;
  /** Visits every handle; the callback must not insert or remove. */
  forEachHandle(visit: (handle: number) => void): void;
  /** Approximate bytes of memory held. */
  readonly memoryBytes: number;
}
