/**
 * Explicit snapshots of an {@link ArmdbLevel} (`db.snapshot()`, docs/level.md §Snapshots), built on
 * the journal of the implicit ones (src/level/snapshot.ts): while a snapshot is open, the first
 * write to any key after the snapshot records the value the key had (one read, shared by every open
 * snapshot and iterator), so a read through the snapshot takes the recorded value for a key written
 * since and the live one for any other key. Unlike an iterator's journal, a snapshot's covers every
 * key and both directions, and hands out copies: one snapshot serves many reads and callers may keep
 * (and change) what they get.
 *
 * The recorded values live in memory until the snapshot closes; compaction never touches them, and a
 * key not written since is read from the tree, whose index compaction keeps pointing at its value.
 */
import { AbstractSnapshot } from 'abstract-level';
import type { VarTree } from '../collections/var-tree.js';
import type { EncodedBound } from './key-codec.js';
import { inRange, SnapshotJournal, type ReaderJournal, type ReaderRange } from './snapshot.js';

/** abstract-level's types leave out the constructor: `options.owner` is the database that closes it. */
const SnapshotBase = AbstractSnapshot as unknown as new (options: { owner: unknown }) => AbstractSnapshot;

const FULL_RANGE: ReaderRange = { lower: undefined, upper: undefined, reverse: false };

/** @internal A copy of a recorded value (null and undefined pass through). */
function copied(value: Uint8Array | null | undefined): Uint8Array | null | undefined {
  return value instanceof Uint8Array ? value.slice() : value;
}

/**
 * @internal The state of an {@link ArmdbLevel} at the moment `db.snapshot()` was called. A token, as
 * in abstract-level: pass it as `{ snapshot }` to `get`, `getMany`, `has`, `hasMany`, `iterator`,
 * `keys`, `values` and `clear`; `close()` releases the values it holds.
 */
export class ArmdbSnapshot extends SnapshotBase {
  /** Values at the snapshot of the keys written since; emptied by close (the caller may keep the token). */
  #journal = new SnapshotJournal(FULL_RANGE);
  /** The database the snapshot was taken of (the root, also for a sublevel's snapshot). */
  readonly database: object;
  readonly #release: (snapshot: ArmdbSnapshot) => void;

  constructor(options: { owner: unknown }, database: object, release: (snapshot: ArmdbSnapshot) => void) {
    super(options);
    this.database = database;
    this.#release = release;
  }

  /** @internal Stops recording writes; abstract-level calls it once, after the reads in flight. */
  async _close(): Promise<void> {
    this.#release(this);
    this.#journal = new SnapshotJournal(FULL_RANGE);
  }

  /** Where writes record the values this snapshot keeps. */
  get journal(): SnapshotJournal {
    return this.#journal;
  }

  /** The value of `key` at the snapshot (a copy), undefined if absent then. */
  get(tree: VarTree, key: Uint8Array): Uint8Array | undefined {
    const before = this.#journal.before(key);
    if (before === undefined) return tree.get(key);
    return before === null ? undefined : before.slice();
  }

  /** Whether `key` was present at the snapshot. */
  has(tree: VarTree, key: Uint8Array): boolean {
    const before = this.#journal.before(key);
    return before === undefined ? tree.has(key) : before !== null;
  }

  /** Values of `keys` at the snapshot; keys not written since are read with one sorted `getMany`. */
  getMany(tree: VarTree, keys: readonly Uint8Array[]): (Uint8Array | undefined)[] {
    const values: (Uint8Array | undefined)[] = new Array(keys.length).fill(undefined);
    const livePositions: number[] = [];
    for (let position = 0; position < keys.length; position++) {
      const before = this.#journal.before(keys[position]!);
      if (before === undefined) livePositions.push(position);
      else if (before !== null) values[position] = before.slice();
    }
    if (livePositions.length > 0) {
      const live = tree.getMany(livePositions.map((position) => keys[position]!));
      for (let index = 0; index < livePositions.length; index++) values[livePositions[index]!] = live[index];
    }
    return values;
  }

  /** The snapshot as a reader's journal over `range`: what a {@link SnapshotReader} merges with the live cursor. */
  journalFor(range: ReaderRange): ReaderJournal {
    return new SnapshotRangeView(this.#journal, range);
  }
}

/** An explicit snapshot's journal seen through one reader's range and direction. */
class SnapshotRangeView implements ReaderJournal {
  readonly #journal: SnapshotJournal;
  readonly #range: ReaderRange;

  constructor(journal: SnapshotJournal, range: ReaderRange) {
    this.#journal = journal;
    this.#range = range;
  }

  get isEmpty(): boolean {
    return this.#journal.isEmpty;
  }

  before(key: Uint8Array): Uint8Array | null | undefined {
    return copied(this.#journal.before(key));
  }

  nextPresent(position: EncodedBound | undefined): Uint8Array | undefined {
    const { lower, upper, reverse } = this.#range;
    // Before the first entry the reader's position is unset: start at the range's own start.
    // A reader's position never lies before its range's start (a seek is clamped to the range).
    const key = this.#journal.nextPresent(position ?? (reverse ? upper : lower), reverse);
    return key !== undefined && inRange(key, lower, upper) ? key : undefined;
  }
}
