/**
 * Implicit snapshots for Level iterators (docs/level.md §Snapshots). armdb's tree cursors are live:
 * they yield every key present for the whole iteration exactly once, in order, and see later writes.
 * An iterator here reads the state of the moment it was created instead: while it is open, every
 * write to a key in its range first records the key's value at that moment in the iterator's
 * journal (once per key: the first write after the snapshot is the one that matters). Reading then
 * merges the live cursor with the journal:
 *
 * - a live key the journal knows is yielded with its recorded value, or skipped if it was absent
 *   then (it was created after the snapshot);
 * - a key the journal records as present then but that the cursor does not yield (deleted since, or
 *   deleted and re-created behind the cursor) comes from the journal's sorted list of such keys.
 *
 * Costs nothing while no write touches an open iterator's range; a write that does reads the old
 * value once (for every open iterator together), and the journal holds it until the iterator closes.
 */
import { type ScanBatch, ScanParts } from '../collections/scan-batch.js';
import type { VarTree } from '../collections/var-tree.js';
import type { EncodedBound } from './key-codec.js';

const compare = (left: Uint8Array, right: Uint8Array): number => Buffer.compare(left, right);
const mapKey = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');

/** Range and direction of a reader, in encoded keys. */
export interface ReaderRange {
  readonly lower: EncodedBound | undefined;
  readonly upper: EncodedBound | undefined;
  readonly reverse: boolean;
}

/**
 * What a {@link SnapshotReader} reads its snapshot from: its own {@link SnapshotJournal}, or a view
 * of an explicit snapshot's journal (src/level/explicit-snapshot.ts).
 */
export interface ReaderJournal {
  readonly isEmpty: boolean;
  before(key: Uint8Array): Uint8Array | null | undefined;
  nextPresent(position: EncodedBound | undefined): Uint8Array | undefined;
}

/** The values of keys written since a reader's snapshot, as they were at the snapshot. */
export class SnapshotJournal implements ReaderJournal {
  readonly #range: ReaderRange;
  /** Map key of an encoded key → its value at the snapshot, or null if it was absent. */
  readonly #before = new Map<string, Uint8Array | null>();
  /** Keys present at the snapshot and written since, sorted ascending once `#unsorted` is merged in. */
  #present: Uint8Array[] = [];
  #unsorted: Uint8Array[] = [];

  constructor(range: ReaderRange) {
    this.#range = range;
  }

  get isEmpty(): boolean {
    return this.#before.size === 0;
  }

  /** Whether a write to `key` must be recorded here: inside the range and not recorded yet. */
  wants(key: Uint8Array): boolean {
    return inRange(key, this.#range.lower, this.#range.upper) && !this.#before.has(mapKey(key));
  }

  /** Records the value `key` had at the snapshot (`undefined`: absent); call only when {@link wants}. */
  record(key: Uint8Array, value: Uint8Array | undefined): void {
    this.#before.set(mapKey(key), value ?? null);
    if (value !== undefined) this.#unsorted.push(key);
  }

  /** `undefined` if `key` was not written since the snapshot, else its value then (null: absent). */
  before(key: Uint8Array): Uint8Array | null | undefined {
    return this.#before.get(mapKey(key));
  }

  /**
   * The first key present at the snapshot and written since that lies beyond `position` in the
   * reader's direction (at or beyond it when `position.exclusive` is false), or undefined. An
   * explicit snapshot's journal serves readers of both directions: `reverse` overrides the range's.
   */
  nextPresent(position: EncodedBound | undefined, reverse = this.#range.reverse): Uint8Array | undefined {
    if (this.#unsorted.length > 0) {
      this.#present = this.#present.concat(this.#unsorted).sort(compare);
      this.#unsorted = [];
    }
    const present = this.#present;
    if (present.length === 0) return undefined;
    if (!reverse) {
      // First index whose key is beyond position.
      let low = 0;
      let high = present.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        const order = position === undefined ? 1 : compare(present[middle]!, position.key);
        if (order > 0 || (order === 0 && !position!.exclusive)) high = middle;
        else low = middle + 1;
      }
      return present[low];
    }
    // Last index whose key is before position.
    let low = -1;
    let high = present.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      const order = position === undefined ? -1 : compare(present[middle]!, position.key);
      if (order < 0 || (order === 0 && !position!.exclusive)) low = middle;
      else high = middle - 1;
    }
    return low < 0 ? undefined : present[low];
  }
}

export function inRange(key: Uint8Array, lower: EncodedBound | undefined, upper: EncodedBound | undefined): boolean {
  if (lower !== undefined) {
    const order = compare(key, lower.key);
    if (order < 0 || (order === 0 && lower.exclusive)) return false;
  }
  if (upper !== undefined) {
    const order = compare(key, upper.key);
    if (order > 0 || (order === 0 && upper.exclusive)) return false;
  }
  return true;
}

/** Whether `key` lies beyond `position` in the direction (at it counts when not exclusive). */
function beyond(key: Uint8Array, position: EncodedBound | undefined, reverse: boolean): boolean {
  if (position === undefined) return true;
  const order = compare(key, position.key) * (reverse ? -1 : 1);
  return order > 0 || (order === 0 && !position.exclusive);
}

/** One entry as the reader yields it: the encoded key and (when values are read) the value. */
export type ReaderEntry = [key: Uint8Array, value: Uint8Array | undefined];

/**
 * Reads a range of the tree as of the reader's snapshot (created with the reader), in key order or
 * reverse. `seek` moves within the same snapshot.
 */
export class SnapshotReader {
  readonly #tree: VarTree;
  readonly #range: ReaderRange;
  readonly #readValues: boolean;
  readonly journal: SnapshotJournal;
  /** Where reads come from: {@link journal}, or an explicit snapshot's when the reader was given one. */
  readonly #source: ReaderJournal;
  /** The live, batched cursor over the range (src/collections/scan-batch.ts). */
  #live: ScanBatch<Uint8Array>;
  #peeked: ReaderEntry | undefined;
  #liveDone = false;
  /** Where the next entry must lie beyond: the last key yielded (exclusive) or a seek target. */
  #positionKey: Uint8Array | undefined;
  #positionExclusive = false;

  /** `source`: read an explicit snapshot instead of the reader's own (then unregistered) journal. */
  constructor(tree: VarTree, range: ReaderRange, readValues: boolean, source?: ReaderJournal) {
    this.#tree = tree;
    this.#range = range;
    this.#readValues = readValues;
    this.journal = new SnapshotJournal(range);
    this.#source = source ?? this.journal;
    this.#live = this.#open(range.lower, range.upper);
  }

  /** The next entry of the snapshot, or undefined at the end. */
  next(): ReaderEntry | undefined {
    const journal = this.#source;
    if (journal.isEmpty && this.#peeked === undefined) {
      // Nothing in the range was written since the snapshot: the live cursor is the snapshot.
      if (this.#liveDone) return undefined;
      const entry = this.#liveNext();
      if (entry === undefined) {
        this.#liveDone = true;
        return undefined;
      }
      this.#positionKey = entry[0];
      this.#positionExclusive = true;
      return entry;
    }
    const reverse = this.#range.reverse;
    for (;;) {
      const live = this.#peek();
      const restored = journal.nextPresent(this.#position());
      if (restored !== undefined && (live === undefined || compare(restored, live[0]) * (reverse ? -1 : 1) <= 0)) {
        if (live !== undefined && compare(restored, live[0]) === 0) this.#peeked = undefined;
        const value = journal.before(restored);
        return this.#yield([restored, this.#readValues ? (value ?? undefined) : undefined]);
      }
      if (live === undefined) return undefined;
      this.#peeked = undefined;
      if (!beyond(live[0], this.#position(), reverse)) continue;
      const before = journal.before(live[0]);
      if (before === null) continue; // created after the snapshot
      if (before === undefined) return this.#yield(live);
      return this.#yield([live[0], this.#readValues ? before : undefined]);
    }
  }

  /**
   * Continues from the first key at or beyond `target` in the reader's direction (a key after it,
   * or before it in reverse), within the original range.
   */
  seek(target: EncodedBound): void {
    this.#live.close();
    const { lower, upper, reverse } = this.#range;
    const targetLower = !reverse ? tighterLower(lower, target) : lower;
    const targetUpper = reverse ? tighterUpper(upper, target) : upper;
    this.#live = this.#open(targetLower, targetUpper);
    this.#peeked = undefined;
    this.#liveDone = false;
    const position = reverse ? tighterUpper(upper, target) : tighterLower(lower, target);
    this.#positionKey = position.key;
    this.#positionExclusive = position.exclusive;
  }

  close(): void {
    this.#live.close();
  }

  #yield(entry: ReaderEntry): ReaderEntry {
    this.#positionKey = entry[0];
    this.#positionExclusive = true;
    return entry;
  }

  #position(): EncodedBound | undefined {
    return this.#positionKey === undefined ? undefined : { key: this.#positionKey, exclusive: this.#positionExclusive };
  }

  /** The live cursor's next entry (fresh arrays, the caller's), or undefined at its end. */
  #liveNext(): ReaderEntry | undefined {
    const live = this.#live;
    const position = live.advance();
    if (position < 0) return undefined;
    return [live.keys[position]!, this.#readValues ? live.values[position] : undefined];
  }

  #peek(): ReaderEntry | undefined {
    if (this.#peeked !== undefined || this.#liveDone) return this.#peeked;
    const entry = this.#liveNext();
    if (entry === undefined) {
      this.#liveDone = true;
      return undefined;
    }
    this.#peeked = entry;
    return entry;
  }

  #open(lower: EncodedBound | undefined, upper: EncodedBound | undefined): ScanBatch<Uint8Array> {
    const bounds = {
      lower: lower?.key,
      lowerExclusive: lower?.exclusive ?? false,
      upper: upper?.key,
      upperExclusive: upper?.exclusive ?? false,
      reverse: this.#range.reverse,
    };
    return this.#tree.scanBatch(bounds, Infinity, this.#readValues ? ScanParts.entries : ScanParts.keys);
  }
}

function tighterLower(bound: EncodedBound | undefined, target: EncodedBound): EncodedBound {
  if (bound === undefined) return target;
  const order = compare(bound.key, target.key);
  if (order > 0) return bound;
  if (order < 0) return target;
  return bound.exclusive ? bound : target;
}

function tighterUpper(bound: EncodedBound | undefined, target: EncodedBound): EncodedBound {
  if (bound === undefined) return target;
  const order = compare(bound.key, target.key);
  if (order < 0) return bound;
  if (order > 0) return target;
  return bound.exclusive ? bound : target;
}
