/**
 * A power-cut {@link FileSystem} for crash tests: what a machine that loses power may leave on disk,
 * not only what a killed process leaves (that is ./fault-fs.ts). In the spirit of LazyFS (as Jepsen
 * uses it) and ALICE: the engine runs against a real directory, every operation is written through
 * to it (that directory is the OS page cache: what reads see), and beside it the file system keeps a
 * model of what is *durable*. A cut turns the model into a crash image: a fresh directory that holds
 * only what the disk may hold after the power came back. Recovery then runs on that image with the
 * real file system.
 *
 * ## What the model assumes (Linux ext4/xfs, conservatively)
 *
 * Files (inodes) and directory entries are durable independently:
 *
 * - **fsync of a file** makes its data and size durable as of the moment fsync was *called*: every
 *   write and truncate issued before the call, none after. It does **not** make the file's name
 *   durable. A file created and fsynced but whose directory was never fsynced may vanish.
 * - **fsync of a directory** makes the entries created, renamed or removed in it before the call
 *   durable. It does not make the data of those files durable. A subdirectory's own entry is in its
 *   parent: a new directory survives only if its parent is fsynced too.
 * - **Unsynced file changes** (writes and truncates since the file's last completed fsync) each may or
 *   may not be on disk. A write is split at 4 KiB boundaries of the file into pieces, one per
 *   page-cache page. Pages are written back independently and in any order, each with its contents at
 *   some moment: per page, the pieces that survive are a prefix, in issue order, of the unsynced
 *   pieces written to it (a later write to a page is never on disk without an earlier one). A page
 *   that did not survive reads as whatever the disk held there before: the synced bytes, or zeros
 *   past the synced end once a later page extended the file (a hole). One piece may be kept torn: a
 *   prefix of its bytes (any length), and nothing later of its page. Truncates (metadata) survive
 *   or not on their own.
 * - **Unsynced directory changes** persist as a *prefix* of each directory's changes since its last
 *   completed fsync: a journalling file system commits a directory's metadata in order, so a rename is
 *   never durable without the creation before it; different directories are independent (harsher than
 *   one journal). So a replaced MANIFEST may come back as the old one, a created file may vanish, an
 *   unlinked file may reappear, a rename may not have happened. An inode keeps its data whatever its
 *   name: a file renamed over another keeps what was synced of *its* data.
 * - An fsync still running when the power fails did not happen (its changes are unsynced, so any of
 *   them may or may not survive); its promise rejects with {@link SimulatedCrash}, so the engine never
 *   acknowledges what the image may not hold.
 *
 * Not modelled: a disk that acknowledges a flush it did not do (nothing can survive that), bit rot,
 * cross-directory renames (the engine makes none: they throw here), file modes (an image's files are
 * 0600, its directories 0700), and the directory lock: its operations (`createLockFile`,
 * `readLockFile`, `removeLockFile`) go through to the real directory uncounted, and its `LOCK` is not
 * in the model, so an image has none, like a disk that lost an unsynced lock.
 *
 * ## Operations and cuts
 *
 * Mutating operations are counted and logged with the kinds of ./fault-fs.ts (`open-create`, `write`,
 * `truncate`, `sync`, `writeFile`, `rename`, `unlink` (and `removeFile`), `makeDirectory`,
 * `syncDirectory`). Two ways to cut:
 *
 * - {@link PowerCutFileSystem.snapshot}: the state a cut *now* would leave, as an immutable
 *   {@link CrashState}; the run goes on. With {@link PowerCutFileSystem.observe} a test snapshots
 *   before every operation: one run of a workload yields a cut at each of its operations.
 * - {@link PowerCutFileSystem.cutAt}: the power fails at the n-th operation from now: it does not
 *   happen, every later operation throws {@link SimulatedCrash}, and fsyncs in flight reject.
 *   {@link PowerCutFileSystem.crashState} is the state at the cut.
 *
 * {@link CrashState.materialize} writes one crash image for a seed: seeded choices of which unsynced
 * changes survive, reproducible from the seed, and a report of what was dropped or torn.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { FileHandle, FileSystem, OpenMode } from '../../src/io/file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { SimulatedCrash, type LoggedOperation, type OperationKind } from './fault-fs.js';
import { Random } from './scenario.js';

/** Page-cache granularity: unsynced writes survive or vanish in pieces of this size (file offsets). */
export const PIECE_BYTES = 4096;

type FileChange =
  | { readonly sequence: number; readonly kind: 'write'; readonly position: number; readonly bytes: Uint8Array }
  | { readonly sequence: number; readonly kind: 'truncate'; readonly length: number };

type EntryChange =
  | { readonly sequence: number; readonly kind: 'link' | 'unlink'; readonly name: string; readonly inode: number }
  | { readonly sequence: number; readonly kind: 'rename'; readonly from: string; readonly to: string; readonly inode: number };

interface FileInode {
  readonly kind: 'file';
  /** Contents as of the last completed fsync. Never mutated: replaced. */
  durable: Uint8Array;
  /** Changes since, in issue order. */
  pending: FileChange[];
}

interface DirectoryInode {
  readonly kind: 'directory';
  /** Entries as the running process sees them. */
  readonly live: Map<string, number>;
  /** Entries as of the last completed fsync of this directory. */
  durable: Map<string, number>;
  pending: EntryChange[];
}

type Inode = FileInode | DirectoryInode;

/** Frozen inodes of a snapshot: what is durable and what is pending. */
type FrozenInode =
  | { readonly kind: 'file'; readonly durable: Uint8Array; readonly pending: readonly FileChange[] }
  | { readonly kind: 'directory'; readonly durable: ReadonlyMap<string, number>; readonly pending: readonly EntryChange[] };

const ROOT_INODE = 1;

/** Spreads small seeds (1, 2, 3…) over the whole state of the xorshift generator (murmur3's finaliser). */
function mixSeed(seed: number): number {
  let x = seed >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Applies file changes in order to `base` (never mutated). */
function applyFileChanges(base: Uint8Array, changes: readonly FileChange[]): Uint8Array {
  let buffer = base;
  let length = base.length;
  let owned = false;
  const ensure = (needed: number): void => {
    if (owned && needed <= buffer.length) return;
    const grown = new Uint8Array(Math.max(needed, owned ? buffer.length * 2 : needed));
    grown.set(buffer.subarray(0, length));
    buffer = grown;
    owned = true;
  };
  for (const change of changes) {
    if (change.kind === 'write') {
      const end = change.position + change.bytes.length;
      ensure(Math.max(end, length));
      buffer.set(change.bytes, change.position);
      length = Math.max(length, end);
    } else {
      ensure(length);
      // Bytes past the new length are gone; growing again reads zeros.
      if (change.length < length) buffer.fill(0, change.length, length);
      else ensure(change.length);
      length = change.length;
    }
  }
  return owned ? buffer.slice(0, length) : base;
}

/** Applies directory changes in order to `entries` (mutated). */
function applyEntryChanges(entries: Map<string, number>, changes: readonly EntryChange[]): void {
  for (const change of changes) {
    switch (change.kind) {
      case 'link':
        entries.set(change.name, change.inode);
        break;
      case 'unlink':
        if (entries.get(change.name) === change.inode) entries.delete(change.name);
        break;
      case 'rename':
        if (entries.get(change.from) === change.inode) entries.delete(change.from);
        entries.set(change.to, change.inode);
        break;
    }
  }
}

function describeEntryChange(directory: string, change: EntryChange): string {
  const at = (name: string): string => (directory === '' ? name : `${directory}/${name}`);
  return change.kind === 'rename' ? `rename ${at(change.from)} -> ${at(change.to)}` : `${change.kind} ${at(change.name)}`;
}

/** What one crash image kept and dropped, for failure messages. */
export interface CutReport {
  readonly seed: number;
  /** Probability with which each unsynced file piece (and truncate) was kept in this image. */
  readonly keepProbability: number;
  /** Unsynced directory changes that did not survive (relative paths). */
  readonly droppedEntryChanges: readonly string[];
  /** Unsynced file pieces (and truncates) kept and dropped. */
  readonly piecesKept: number;
  readonly piecesDropped: number;
  /** The piece kept as a torn prefix, if any: path, offset, bytes kept of how many. */
  readonly torn: string | undefined;
}

export function describeCut(report: CutReport): string {
  const dropped = report.droppedEntryChanges.length === 0 ? 'none' : report.droppedEntryChanges.join(', ');
  return (
    `cut seed ${report.seed}: keep probability ${report.keepProbability}, file pieces kept ${report.piecesKept} dropped ${report.piecesDropped}, ` +
    `torn ${report.torn ?? 'none'}, directory changes dropped: ${dropped}`
  );
}

/**
 * What a power cut at one moment may leave: per file its durable bytes and unsynced changes, per
 * directory its durable entries and unsynced changes. Immutable; materialize as many images as wanted.
 */
export class CrashState {
  readonly #inodes: ReadonlyMap<number, FrozenInode>;
  /** Counted operations before the cut. */
  readonly operations: number;

  /** @internal */
  constructor(inodes: ReadonlyMap<number, FrozenInode>, operations: number) {
    this.#inodes = inodes;
    this.operations = operations;
  }

  /** Whether anything is unsynced: with nothing pending every seed gives the same image. */
  get pendingChanges(): number {
    let count = 0;
    for (const inode of this.#inodes.values()) count += inode.pending.length;
    return count;
  }

  /**
   * Writes the crash image for `seed` into `target` (created; must not exist or be empty): the tree
   * below the file system's root as the disk may hold it after the cut.
   *
   * Per image, the seed picks a keep probability from {0, ½, 0.9, 1}: 0 is "only what was synced",
   * 1 "everything the OS had" (what a killed process leaves, but for the torn piece). Each piece is
   * kept with that probability while its page's earlier pieces were; each truncate likewise.
   * Directories: with 0 none of the unsynced changes survive, with 1 all, otherwise a uniformly
   * chosen prefix. With probability ½ one unsynced piece is kept torn.
   */
  materialize(target: string, seed: number): CutReport {
    const random = new Random(mixSeed(seed));
    const keepProbability = [0, 0.5, 0.9, 1][random.int(0, 3)]!;
    const tearOne = random.next() < 0.5;
    const droppedEntryChanges: string[] = [];
    let piecesKept = 0;
    let piecesDropped = 0;

    // Directories first: which names exist, and so which files are in the image at all.
    const files = new Map<number, string[]>();
    const directories: { relative: string; inode: number }[] = [];
    const visit = (relative: string, inodeId: number): void => {
      const inode = this.#inodes.get(inodeId)!;
      if (inode.kind !== 'directory') throw new Error(`inode ${inodeId} is not a directory`);
      directories.push({ relative, inode: inodeId });
      const kept = keepProbability === 0 ? 0 : keepProbability === 1 ? inode.pending.length : random.int(0, inode.pending.length);
      const entries = new Map(inode.durable);
      applyEntryChanges(entries, inode.pending.slice(0, kept));
      for (const change of inode.pending.slice(kept)) droppedEntryChanges.push(describeEntryChange(relative, change));
      for (const [name, childId] of [...entries].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))) {
        const child = this.#inodes.get(childId)!;
        const childRelative = relative === '' ? name : `${relative}/${name}`;
        if (child.kind === 'directory') visit(childRelative, childId);
        else files.set(childId, [...(files.get(childId) ?? []), childRelative]);
      }
    };
    visit('', ROOT_INODE);

    // Then file contents: pieces of unsynced changes, kept or dropped, one maybe torn.
    type Piece = { readonly inode: number; readonly change: FileChange };
    const pieces: Piece[] = [];
    for (const inodeId of files.keys()) {
      const inode = this.#inodes.get(inodeId) as Extract<FrozenInode, { kind: 'file' }>;
      for (const change of inode.pending) {
        if (change.kind === 'truncate') {
          pieces.push({ inode: inodeId, change });
          continue;
        }
        for (let offset = 0; offset < change.bytes.length; ) {
          const position = change.position + offset;
          const length = Math.min(change.bytes.length - offset, PIECE_BYTES - (position % PIECE_BYTES));
          pieces.push({
            inode: inodeId,
            change: { sequence: change.sequence, kind: 'write', position, bytes: change.bytes.subarray(offset, offset + length) },
          });
          offset += length;
        }
      }
    }
    const tornPiece = tearOne && pieces.length > 0 ? random.int(0, pieces.length - 1) : -1;
    let torn: string | undefined;
    const keptByInode = new Map<number, FileChange[]>();
    // Pages whose write-back stopped: a later write to the page cannot be on disk without this one.
    const closedPages = new Set<string>();
    pieces.forEach((piece, index) => {
      const change = piece.change;
      let kept: FileChange | undefined = random.next() < keepProbability ? change : undefined;
      if (change.kind === 'write') {
        const page = `${piece.inode}:${Math.floor(change.position / PIECE_BYTES)}`;
        if (closedPages.has(page)) kept = undefined;
        else if (index === tornPiece && change.bytes.length > 1) {
          const keep = random.int(1, change.bytes.length - 1);
          kept = { ...change, bytes: change.bytes.subarray(0, keep) };
          torn = `${files.get(piece.inode)![0]} at ${change.position}: ${keep} of ${change.bytes.length} bytes`;
          closedPages.add(page);
        } else if (kept === undefined) closedPages.add(page);
      }
      if (kept === undefined) {
        piecesDropped++;
        return;
      }
      piecesKept++;
      keptByInode.set(piece.inode, [...(keptByInode.get(piece.inode) ?? []), kept]);
    });

    mkdirSync(target, { recursive: true, mode: 0o700 });
    for (const { relative } of directories) {
      const directory = path.join(target, relative);
      mkdirSync(directory, { recursive: true, mode: 0o700 });
      chmodSync(directory, 0o700);
    }
    for (const [inodeId, names] of files) {
      const inode = this.#inodes.get(inodeId) as Extract<FrozenInode, { kind: 'file' }>;
      const bytes = applyFileChanges(inode.durable, keptByInode.get(inodeId) ?? []);
      for (const name of names) {
        const file = path.join(target, name);
        writeFileSync(file, bytes, { mode: 0o600 });
        chmodSync(file, 0o600);
      }
    }
    return { seed, keepProbability, droppedEntryChanges, piecesKept, piecesDropped, torn };
  }
}

/** Called before every counted operation is applied (a cut there would not include it). */
export type OperationObserver = (operation: { readonly index: number; readonly kind: OperationKind; readonly path: string }) => void;

export interface CutOptions {
  /** Count only the operations this accepts towards n (default: every mutating operation). */
  readonly match?: (kind: OperationKind, filePath: string) => boolean;
}

export class PowerCutFileSystem implements FileSystem {
  readonly inner: FileSystem;
  /** The directory the model covers; everything the engine touches must be below it. */
  readonly root: string;
  /** Every counted operation, in order (outcome 'ok', or 'crashed' for the one the cut hit). */
  readonly log: LoggedOperation[] = [];
  readonly #inodes = new Map<number, Inode>();
  #nextInode = ROOT_INODE + 1;
  /** Orders every change: an fsync covers the changes with a lower sequence number than its call. */
  #sequence = 0;
  #total = 0;
  #observer: OperationObserver | undefined;
  #cutCountdown: number | undefined;
  #cutOptions: CutOptions = {};
  #crashState: CrashState | undefined;

  /**
   * Models `root` (an existing directory) and everything below it; what is there now counts as
   * durable (a store written with the real file system and closed, or an empty directory).
   */
  constructor(root: string, inner: FileSystem = nodeFileSystem) {
    this.inner = inner;
    this.root = path.resolve(root);
    this.#inodes.set(ROOT_INODE, this.#adoptDirectory(this.root));
  }

  #adoptDirectory(directory: string): DirectoryInode {
    const entries = new Map<string, number>();
    for (const name of readdirSync(directory)) {
      const child = path.join(directory, name);
      const id = this.#nextInode++;
      if (statSync(child).isDirectory()) this.#inodes.set(id, this.#adoptDirectory(child));
      else this.#inodes.set(id, { kind: 'file', durable: new Uint8Array(readFileSync(child)), pending: [] });
      entries.set(name, id);
    }
    return { kind: 'directory', live: new Map(entries), durable: entries, pending: [] };
  }

  /** Counted operations so far. */
  get total(): number {
    return this.#total;
  }

  /** Whether the power has been cut ({@link cutAt} reached). */
  get crashed(): boolean {
    return this.#crashState !== undefined;
  }

  /** The state at the cut, once it happened. */
  get crashState(): CrashState | undefined {
    return this.#crashState;
  }

  /** Calls `observer` before every counted operation (undefined: stop). */
  observe(observer: OperationObserver | undefined): void {
    this.#observer = observer;
  }

  /** The power fails at the `nth` (1-based, from now) counted operation (of those `match` accepts). */
  cutAt(nth: number, options: CutOptions = {}): void {
    if (!Number.isInteger(nth) || nth < 1) throw new RangeError(`nth must be a positive integer, got ${nth}`);
    this.#cutCountdown = nth;
    this.#cutOptions = options;
  }

  /** The power fails now. */
  cutNow(): CrashState {
    this.#crashState ??= this.snapshot();
    return this.#crashState;
  }

  /** What a power cut now could leave (the run goes on). */
  snapshot(): CrashState {
    const frozen = new Map<number, FrozenInode>();
    for (const [id, inode] of this.#inodes) {
      frozen.set(
        id,
        inode.kind === 'file'
          ? { kind: 'file', durable: inode.durable, pending: inode.pending.slice() }
          : { kind: 'directory', durable: new Map(inode.durable), pending: inode.pending.slice() },
      );
    }
    return new CrashState(frozen, this.#total);
  }

  // ---- the gate every operation passes ------------------------------------------------------

  #assertAlive(operation: string, filePath: string): void {
    if (this.#crashState !== undefined) throw new SimulatedCrash(operation, filePath);
  }

  /** Counts a mutating operation; throws SimulatedCrash if the power fails here (or failed before). */
  #gate(kind: OperationKind, filePath: string, bytes?: number): void {
    this.#assertAlive(kind, filePath);
    this.#total++;
    const entry = (outcome: 'ok' | 'crashed'): LoggedOperation =>
      bytes === undefined
        ? { index: this.#total, kind, path: filePath, outcome }
        : { index: this.#total, kind, path: filePath, outcome, bytes };
    const counts = this.#cutOptions.match === undefined || this.#cutOptions.match(kind, filePath);
    if (this.#cutCountdown !== undefined && counts && --this.#cutCountdown === 0) {
      this.#cutCountdown = undefined;
      this.cutNow();
      this.log.push(entry('crashed'));
      throw new SimulatedCrash(kind, filePath);
    }
    this.#observer?.({ index: this.#total, kind, path: filePath });
    this.log.push(entry('ok'));
  }

  /** Runs an asynchronous operation; once it settles after a cut it rejects (nothing after a cut is acknowledged). */
  async #settle(operation: string, filePath: string, action: Promise<void>, onDurable: () => void): Promise<void> {
    await action;
    this.#assertAlive(operation, filePath);
    onDurable();
  }

  // ---- the model's namespace ------------------------------------------------------------------

  /** Parent directory inode and name of `filePath` (which must be below the root). */
  #locate(filePath: string): { parent: DirectoryInode; name: string } {
    const absolute = path.resolve(filePath);
    const relative = path.relative(this.root, absolute);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative))
      throw new Error(`power-cut file system: ${filePath} is not below ${this.root}`);
    const parts = relative.split(path.sep);
    const name = parts.pop()!;
    let directory = this.#inodes.get(ROOT_INODE) as DirectoryInode;
    for (const part of parts) {
      const next = this.#inodes.get(directory.live.get(part) ?? -1);
      if (next === undefined || next.kind !== 'directory')
        throw new Error(`power-cut file system: no directory ${part} on the way to ${filePath}`);
      directory = next;
    }
    return { parent: directory, name };
  }

  #directoryAt(directory: string): DirectoryInode | undefined {
    const absolute = path.resolve(directory);
    if (absolute === this.root) return this.#inodes.get(ROOT_INODE) as DirectoryInode;
    const { parent, name } = this.#locate(absolute);
    const inode = this.#inodes.get(parent.live.get(name) ?? -1);
    return inode?.kind === 'directory' ? inode : undefined;
  }

  #fileAt(filePath: string): FileInode | undefined {
    const { parent, name } = this.#locate(filePath);
    const inode = this.#inodes.get(parent.live.get(name) ?? -1);
    return inode?.kind === 'file' ? inode : undefined;
  }

  #link(parent: DirectoryInode, name: string, inode: Inode): number {
    const id = this.#nextInode++;
    this.#inodes.set(id, inode);
    parent.live.set(name, id);
    parent.pending.push({ sequence: ++this.#sequence, kind: 'link', name, inode: id });
    return id;
  }

  #change(
    inode: FileInode,
    change: Omit<Extract<FileChange, { kind: 'write' }>, 'sequence'> | Omit<Extract<FileChange, { kind: 'truncate' }>, 'sequence'>,
  ): void {
    inode.pending.push({ ...change, sequence: ++this.#sequence } as FileChange);
  }

  /** fsync of a file completed: what was issued before its call (sequence ≤ `upTo`) is durable. */
  #fileSynced(inode: FileInode, upTo: number): void {
    const covered = inode.pending.filter((change) => change.sequence <= upTo);
    if (covered.length === 0) return;
    inode.durable = applyFileChanges(inode.durable, covered);
    inode.pending = inode.pending.filter((change) => change.sequence > upTo);
  }

  #directorySynced(inode: DirectoryInode, upTo: number): void {
    const covered = inode.pending.filter((change) => change.sequence <= upTo);
    if (covered.length === 0) return;
    const durable = new Map(inode.durable);
    applyEntryChanges(durable, covered);
    inode.durable = durable;
    inode.pending = inode.pending.filter((change) => change.sequence > upTo);
  }

  // ---- FileSystem ----------------------------------------------------------------------------

  open(filePath: string, mode: OpenMode): FileHandle {
    if (mode === 'create') {
      this.#gate('open-create', filePath);
      const { parent, name } = this.#locate(filePath);
      const handle = this.inner.open(filePath, mode);
      const inode: FileInode = { kind: 'file', durable: new Uint8Array(0), pending: [] };
      this.#link(parent, name, inode);
      return new PowerCutFileHandle(this, handle, inode);
    }
    this.#assertAlive(`open(${mode})`, filePath);
    const handle = this.inner.open(filePath, mode);
    const inode = this.#fileAt(filePath);
    if (inode === undefined) {
      handle.close();
      throw new Error(`power-cut file system: ${filePath} exists but is not in the model (made outside this file system?)`);
    }
    return new PowerCutFileHandle(this, handle, inode);
  }

  readFile(filePath: string, maxBytes?: number): Uint8Array | undefined {
    this.#assertAlive('readFile', filePath);
    return this.inner.readFile(filePath, maxBytes);
  }

  writeFile(filePath: string, bytes: Uint8Array): Promise<void> {
    try {
      this.#gate('writeFile', filePath, bytes.length);
    } catch (error) {
      return Promise.reject(error);
    }
    const { parent, name } = this.#locate(filePath);
    let inode = this.#fileAt(filePath);
    // The real writeFile opens with O_CREAT|O_TRUNC and writes before it awaits the fsync.
    const written = this.inner.writeFile(filePath, bytes);
    if (inode === undefined) {
      inode = { kind: 'file', durable: new Uint8Array(0), pending: [] };
      this.#link(parent, name, inode);
    } else {
      this.#change(inode, { kind: 'truncate', length: 0 });
    }
    this.#change(inode, { kind: 'write', position: 0, bytes: bytes.slice() });
    const upTo = this.#sequence;
    const target = inode;
    return this.#settle('writeFile', filePath, written, () => this.#fileSynced(target, upTo));
  }

  rename(from: string, to: string): void {
    this.#gate('rename', `${from} -> ${to}`);
    const source = this.#locate(from);
    const destination = this.#locate(to);
    if (source.parent !== destination.parent)
      throw new Error(`power-cut file system: rename across directories is not modelled (${from} -> ${to})`);
    const id = source.parent.live.get(source.name);
    if (id === undefined) throw new Error(`power-cut file system: rename of ${from}, which is not in the model`);
    this.inner.rename(from, to);
    const directory = source.parent;
    directory.live.delete(source.name);
    directory.live.set(destination.name, id);
    directory.pending.push({ sequence: ++this.#sequence, kind: 'rename', from: source.name, to: destination.name, inode: id });
  }

  #unlinkInModel(filePath: string): void {
    const { parent, name } = this.#locate(filePath);
    const id = parent.live.get(name);
    if (id === undefined) return;
    parent.live.delete(name);
    parent.pending.push({ sequence: ++this.#sequence, kind: 'unlink', name, inode: id });
  }

  unlink(filePath: string): void {
    this.#gate('unlink', filePath);
    this.inner.unlink(filePath);
    this.#unlinkInModel(filePath);
  }

  removeFile(filePath: string): Promise<void> {
    try {
      this.#gate('unlink', filePath);
    } catch (error) {
      return Promise.reject(error);
    }
    const removed = this.inner.removeFile(filePath);
    // The entry is gone for the model at the call: an unlink issued, durable only with its directory.
    this.#unlinkInModel(filePath);
    return this.#settle('removeFile', filePath, removed, () => undefined);
  }

  list(directory: string): string[] {
    this.#assertAlive('list', directory);
    return this.inner.list(directory);
  }

  makeDirectory(directory: string, options?: { readonly followLink?: boolean }): void {
    const absolute = path.resolve(directory);
    this.#gate('makeDirectory', absolute);
    this.inner.makeDirectory(absolute, options);
    const relative = path.relative(this.root, absolute);
    if (relative === '') return;
    let current = this.#inodes.get(ROOT_INODE) as DirectoryInode;
    for (const part of relative.split(path.sep)) {
      const id = current.live.get(part);
      if (id === undefined) {
        const created: DirectoryInode = { kind: 'directory', live: new Map(), durable: new Map(), pending: [] };
        this.#link(current, part, created);
        current = created;
        continue;
      }
      const next = this.#inodes.get(id)!;
      if (next.kind !== 'directory') throw new Error(`power-cut file system: ${part} is a file`);
      current = next;
    }
  }

  exists(filePath: string): boolean {
    this.#assertAlive('exists', filePath);
    return this.inner.exists(filePath);
  }

  modeOf(filePath: string): number | undefined {
    this.#assertAlive('modeOf', filePath);
    return this.inner.modeOf(filePath);
  }

  syncDirectory(directory: string): Promise<void> {
    try {
      this.#gate('syncDirectory', path.resolve(directory));
    } catch (error) {
      return Promise.reject(error);
    }
    const absolute = path.resolve(directory);
    // The root's own entry, and everything above it, is outside the model (taken as durable).
    const inode = absolute === this.root || absolute.startsWith(this.root + path.sep) ? this.#directoryAt(absolute) : undefined;
    const upTo = this.#sequence;
    return this.#settle('syncDirectory', directory, this.inner.syncDirectory(directory), () => {
      if (inode !== undefined) this.#directorySynced(inode, upTo);
    });
  }

  realPath(directory: string): string {
    this.#assertAlive('realPath', directory);
    return this.inner.realPath(directory);
  }

  createLockFile(filePath: string, bytes: Uint8Array): void {
    this.#assertAlive('createLockFile', filePath);
    this.inner.createLockFile(filePath, bytes);
  }

  readLockFile(filePath: string, maxBytes: number): Uint8Array | undefined {
    this.#assertAlive('readLockFile', filePath);
    return this.inner.readLockFile(filePath, maxBytes);
  }

  removeLockFile(filePath: string): void {
    this.#assertAlive('removeLockFile', filePath);
    this.inner.removeLockFile(filePath);
  }

  // ---- used by PowerCutFileHandle ---------------------------------------------------------------

  /** @internal */
  handleWrite(inode: FileInode, filePath: string, action: () => void, position: number, source: Uint8Array): void {
    this.#gate('write', filePath, source.length);
    action();
    this.#change(inode, { kind: 'write', position, bytes: source.slice() });
  }

  /** @internal */
  handleTruncate(inode: FileInode, filePath: string, action: () => void, length: number): void {
    this.#gate('truncate', filePath);
    action();
    this.#change(inode, { kind: 'truncate', length });
  }

  /** @internal */
  handleSync(inode: FileInode, filePath: string, action: () => Promise<void>): Promise<void> {
    try {
      this.#gate('sync', filePath);
    } catch (error) {
      return Promise.reject(error);
    }
    const upTo = this.#sequence;
    return this.#settle('sync', filePath, action(), () => this.#fileSynced(inode, upTo));
  }

  /** @internal */
  assertAlive(operation: string, filePath: string): void {
    this.#assertAlive(operation, filePath);
  }
}

class PowerCutFileHandle implements FileHandle {
  readonly #owner: PowerCutFileSystem;
  readonly #inner: FileHandle;
  readonly #inode: FileInode;

  constructor(owner: PowerCutFileSystem, inner: FileHandle, inode: FileInode) {
    this.#owner = owner;
    this.#inner = inner;
    this.#inode = inode;
  }

  get path(): string {
    return this.#inner.path;
  }

  read(target: Uint8Array, position: number): number {
    this.#owner.assertAlive('read', this.path);
    return this.#inner.read(target, position);
  }

  write(source: Uint8Array, position: number): void {
    this.#owner.handleWrite(this.#inode, this.path, () => this.#inner.write(source, position), position, source);
  }

  size(): number {
    this.#owner.assertAlive('size', this.path);
    return this.#inner.size();
  }

  truncate(length: number): void {
    this.#owner.handleTruncate(this.#inode, this.path, () => this.#inner.truncate(length), length);
  }

  sync(): Promise<void> {
    return this.#owner.handleSync(this.#inode, this.path, () => this.#inner.sync());
  }

  linkCount(): number {
    this.#owner.assertAlive('linkCount', this.path);
    return this.#inner.linkCount();
  }

  close(): void {
    // Never fails, not even after a cut: it only releases the descriptor.
    this.#inner.close();
  }
}
