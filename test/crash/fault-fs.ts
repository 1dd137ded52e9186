/**
 * A fault-injecting {@link FileSystem} for crash and error-path tests. It wraps the real
 * `nodeFileSystem` and counts every mutating operation:
 *
 * | kind | what |
 * |---|---|
 * | `open-create` | `open(path, 'create')` |
 * | `write` | `FileHandle.write` |
 * | `truncate` | `FileHandle.truncate` |
 * | `sync` | `FileHandle.sync` (fsync of a file) |
 * | `writeFile` | `FileSystem.writeFile` (exclusive create + fsync, one operation) |
 * | `rename` | `FileSystem.rename` |
 * | `unlink` | `FileSystem.unlink`, `FileSystem.removeFile` |
 * | `makeDirectory` | `FileSystem.makeDirectory` |
 * | `syncDirectory` | `FileSystem.syncDirectory` |
 * | `lock` | `FileSystem.createLockFile`, `FileSystem.removeLockFile` (the directory lock) |
 *
 * `lock` operations are counted in {@link FaultFileSystem.counts} and fail by {@link FaultFileSystem.failNth}
 * like the others, but they stay out of {@link FaultFileSystem.total}, the log and the crash countdown:
 * the lock file holds no data, and a crash loop walks the operations that write the store. After a
 * crash they throw like everything else, so a dead process's `LOCK` stays on disk, as a kill leaves it.
 *
 * Two kinds of fault:
 *
 * - {@link FaultFileSystem.failNth}: the n-th operation of one kind (counted from the moment of the
 *   call, optionally only on paths a filter accepts) fails with an errno (`EIO`, `ENOSPC`, …): it
 *   throws (synchronous operations) or rejects (fsyncs, `writeFile`) an `Error` with that `code`, and
 *   does nothing to the disk. One-shot unless `sticky`.
 * - {@link FaultFileSystem.crashAt}: the process "dies" at the n-th mutating operation from now: that
 *   operation and every later operation of any kind (reads included) throw a {@link SimulatedCrash}
 *   and touch nothing, so the files stay exactly as a killed process would leave them. With
 *   `torn: true` a crashing `write`/`writeFile` first puts a prefix of its bytes on disk (a write cut
 *   short by the kill); with `match` only some operations count (e.g. "the first unlink of a tag file"). `FileHandle.close()` always works: closing releases a descriptor and changes
 *   nothing on disk, and a dead process's descriptors are closed by the kernel too.
 *
 * Every counted operation is appended to {@link FaultFileSystem.log} (kind, path, outcome), so tests
 * can say what the engine was doing when it crashed and count calls after a failure.
 */
import * as path from 'node:path';
import type { FileHandle, FileSystem, OpenMode } from '../../src/io/file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';

export const OPERATION_KINDS = [
  'open-create',
  'write',
  'truncate',
  'sync',
  'writeFile',
  'rename',
  'unlink',
  'makeDirectory',
  'syncDirectory',
  'lock',
] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

/** What happened to one counted operation. */
export type Outcome = 'ok' | 'failed' | 'crashed';

export interface LoggedOperation {
  /** 1-based position among all counted operations since the file system was made (or {@link FaultFileSystem.resetLog}). */
  readonly index: number;
  readonly kind: OperationKind;
  readonly path: string;
  readonly outcome: Outcome;
  /** Bytes of a write/writeFile (before a torn write cut them). */
  readonly bytes?: number;
}

/** An errno-style error, like the ones node:fs throws. */
export class InjectedFault extends Error {
  readonly code: string;
  readonly syscall: string;
  readonly path: string;
  constructor(code: string, syscall: string, filePath: string) {
    super(`${code}: injected fault, ${syscall} '${filePath}'`);
    this.name = 'InjectedFault';
    this.code = code;
    this.syscall = syscall;
    this.path = filePath;
  }
}

/** Thrown by every operation once the simulated process has died. */
export class SimulatedCrash extends Error {
  readonly code = 'ESIMULATEDCRASH';
  constructor(
    readonly operation: string,
    readonly filePath: string,
  ) {
    super(`simulated crash: the process is dead (${operation} '${filePath}')`);
    this.name = 'SimulatedCrash';
  }
}

export interface FailOptions {
  /** Only operations whose path this accepts are counted towards n (and can fail). */
  readonly path?: (filePath: string) => boolean;
  /** Keep failing every later matching operation too (default: only the n-th). */
  readonly sticky?: boolean;
  /**
   * A failing `write`/`writeFile` first puts part of its bytes on disk (`tornFraction`, default half),
   * as a write that runs out of space half-way does (default: nothing reaches the disk).
   */
  readonly partial?: boolean;
}

interface FailRule {
  readonly kind: OperationKind;
  readonly code: string;
  readonly path: ((filePath: string) => boolean) | undefined;
  readonly sticky: boolean;
  readonly partial: boolean;
  /** Matching operations still to let through before failing. */
  remaining: number;
  done: boolean;
}

export interface CrashOptions {
  /** Count only the operations this accepts towards n (default: every mutating operation). */
  readonly match?: (kind: OperationKind, filePath: string) => boolean;
  /** A crashing write or writeFile first writes this part of its bytes (default: nothing). */
  readonly torn?: boolean;
  /** Fraction of the bytes a torn write leaves, 0..1 (default 0.5). */
  readonly tornFraction?: number;
}

export class FaultFileSystem implements FileSystem {
  readonly inner: FileSystem;
  /** Counted operations per kind (including failed and crashed ones). */
  readonly counts: Record<OperationKind, number>;
  /** Every counted operation, in order. */
  readonly log: LoggedOperation[] = [];
  #total = 0;
  #rules: FailRule[] = [];
  /** Counted operations left before the crash (the crash hits when it reaches 0); undefined = no crash armed. */
  #crashCountdown: number | undefined;
  #crashOptions: CrashOptions = {};
  #crashed = false;
  #crashPoint: LoggedOperation | undefined;
  /** The fault being returned comes from a rule with `partial`. */
  #failingPartially = false;

  constructor(inner: FileSystem = nodeFileSystem) {
    this.inner = inner;
    this.counts = Object.fromEntries(OPERATION_KINDS.map((kind) => [kind, 0])) as Record<OperationKind, number>;
  }

  /** Counted operations so far. */
  get total(): number {
    return this.#total;
  }

  /** Whether the simulated process has died. */
  get crashed(): boolean {
    return this.#crashed;
  }

  /** The operation the crash hit, if it happened. */
  get crashPoint(): LoggedOperation | undefined {
    return this.#crashPoint;
  }

  /** Fails the `nth` (1-based, counted from now) operation of `kind` with an error of code `code`. */
  failNth(kind: OperationKind, nth: number, code: string, options: FailOptions = {}): void {
    if (!Number.isInteger(nth) || nth < 1) throw new RangeError(`nth must be a positive integer, got ${nth}`);
    this.#rules.push({
      kind,
      code,
      path: options.path,
      sticky: options.sticky ?? false,
      partial: options.partial ?? false,
      remaining: nth - 1,
      done: false,
    });
  }

  /**
   * The process dies at the `nth` (1-based, counted from now) mutating operation (of those `match`
   * accepts): the ones before it happen, the nth does not (or only partly, with `torn`), and from
   * then on everything throws.
   */
  crashAt(nth: number, options: CrashOptions = {}): void {
    if (!Number.isInteger(nth) || nth < 1) throw new RangeError(`nth must be a positive integer, got ${nth}`);
    this.#crashCountdown = nth;
    this.#crashOptions = options;
  }

  /**
   * The process dies now, between two operations (a named crash point of src/engine/crash-points.ts):
   * from here on every operation throws a {@link SimulatedCrash} and touches nothing.
   */
  crashNow(): void {
    this.#crashed = true;
  }

  /** Disarms every fault (a crash that already happened stays). */
  disarm(): void {
    this.#rules = [];
    this.#crashCountdown = undefined;
  }

  /** Operations logged after position `index` (a value of {@link total} taken earlier). */
  since(index: number): LoggedOperation[] {
    return this.log.filter((entry) => entry.index > index);
  }

  // ---- the gate every operation passes ------------------------------------------------------

  #assertAlive(operation: string, filePath: string): void {
    if (this.#crashed) throw new SimulatedCrash(operation, filePath);
  }

  /**
   * Counts a mutating operation and decides its fate: 'ok' (do it), 'crash' (the process dies now),
   * or an injected fault to throw.
   */
  #gate(kind: OperationKind, filePath: string, bytes?: number): 'ok' | 'crash' | InjectedFault {
    this.#assertAlive(kind, filePath);
    this.#failingPartially = false;
    this.#total++;
    this.counts[kind]++;
    const entry = (outcome: Outcome): LoggedOperation =>
      bytes === undefined
        ? { index: this.#total, kind, path: filePath, outcome }
        : { index: this.#total, kind, path: filePath, outcome, bytes };
    const counts = this.#crashOptions.match === undefined || this.#crashOptions.match(kind, filePath);
    if (this.#crashCountdown !== undefined && counts && --this.#crashCountdown === 0) {
      this.#crashCountdown = undefined;
      this.#crashed = true;
      this.#crashPoint = entry('crashed');
      this.log.push(this.#crashPoint);
      return 'crash';
    }
    const fault = this.#injectedFault(kind, filePath);
    this.log.push(entry(fault === undefined ? 'ok' : 'failed'));
    return fault ?? 'ok';
  }

  /** The fault a {@link failNth} rule injects into this operation, if one does. */
  #injectedFault(kind: OperationKind, filePath: string): InjectedFault | undefined {
    for (const rule of this.#rules) {
      if (rule.done || rule.kind !== kind) continue;
      if (rule.path !== undefined && !rule.path(filePath)) continue;
      if (rule.remaining > 0) {
        rule.remaining--;
        continue;
      }
      if (!rule.sticky) rule.done = true;
      this.#failingPartially = rule.partial;
      return new InjectedFault(rule.code, kind, filePath);
    }
    return undefined;
  }

  /** A lock-file operation: failed by a `lock` rule, outside the count, the log and the crash countdown. */
  #runLock<T>(filePath: string, action: () => T): T {
    this.#assertAlive('lock', filePath);
    this.counts.lock++;
    const fault = this.#injectedFault('lock', filePath);
    if (fault !== undefined) throw fault;
    return action();
  }

  /** Synchronous mutating operation. */
  #run<T>(kind: OperationKind, filePath: string, action: () => T, torn?: () => void, bytes?: number): T {
    const fate = this.#gate(kind, filePath, bytes);
    if (fate === 'crash') {
      if (this.#crashOptions.torn === true) torn?.();
      throw new SimulatedCrash(kind, filePath);
    }
    if (fate !== 'ok') {
      if (this.#failingPartially) torn?.();
      throw fate;
    }
    return action();
  }

  /** Asynchronous mutating operation (rejects rather than throws). */
  #runAsync(kind: OperationKind, filePath: string, action: () => Promise<void>, torn?: () => void, bytes?: number): Promise<void> {
    let fate: 'ok' | 'crash' | InjectedFault;
    try {
      fate = this.#gate(kind, filePath, bytes);
    } catch (error) {
      return Promise.reject(error);
    }
    if (fate === 'crash') {
      if (this.#crashOptions.torn === true) torn?.();
      return Promise.reject(new SimulatedCrash(kind, filePath));
    }
    if (fate !== 'ok') {
      if (this.#failingPartially) torn?.();
      return Promise.reject(fate);
    }
    return action();
  }

  #tornLength(length: number): number {
    return Math.floor(length * (this.#crashOptions.tornFraction ?? 0.5));
  }

  // ---- FileSystem ----------------------------------------------------------------------------

  open(filePath: string, mode: OpenMode): FileHandle {
    if (mode === 'create')
      return new FaultFileHandle(
        this,
        this.#run('open-create', filePath, () => this.inner.open(filePath, mode)),
      );
    this.#assertAlive(`open(${mode})`, filePath);
    return new FaultFileHandle(this, this.inner.open(filePath, mode));
  }

  readFile(filePath: string, maxBytes?: number): Uint8Array | undefined {
    this.#assertAlive('readFile', filePath);
    return this.inner.readFile(filePath, maxBytes);
  }

  writeFile(filePath: string, bytes: Uint8Array): Promise<void> {
    return this.#runAsync(
      'writeFile',
      filePath,
      () => this.inner.writeFile(filePath, bytes),
      () => {
        // A kill while the file is being written: created/truncated, part of the bytes, no fsync.
        const handle = this.inner.open(filePath, this.inner.exists(filePath) ? 'readWrite' : 'create');
        try {
          handle.truncate(0);
          handle.write(bytes.subarray(0, this.#tornLength(bytes.length)), 0);
        } finally {
          handle.close();
        }
      },
      bytes.length,
    );
  }

  rename(from: string, to: string): void {
    this.#run('rename', `${from} -> ${to}`, () => this.inner.rename(from, to));
  }

  unlink(filePath: string): void {
    this.#run('unlink', filePath, () => this.inner.unlink(filePath));
  }

  removeFile(filePath: string): Promise<void> {
    return this.#runAsync('unlink', filePath, () => this.inner.removeFile(filePath));
  }

  list(directory: string): string[] {
    this.#assertAlive('list', directory);
    return this.inner.list(directory);
  }

  makeDirectory(directory: string, options?: { readonly followLink?: boolean }): void {
    this.#run('makeDirectory', path.resolve(directory), () => this.inner.makeDirectory(directory, options));
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
    return this.#runAsync('syncDirectory', directory, () => this.inner.syncDirectory(directory));
  }

  realPath(directory: string): string {
    this.#assertAlive('realPath', directory);
    return this.inner.realPath(directory);
  }

  createLockFile(filePath: string, bytes: Uint8Array): void {
    this.#runLock(filePath, () => this.inner.createLockFile(filePath, bytes));
  }

  readLockFile(filePath: string, maxBytes: number): Uint8Array | undefined {
    this.#assertAlive('readLockFile', filePath);
    return this.inner.readLockFile(filePath, maxBytes);
  }

  removeLockFile(filePath: string): void {
    this.#runLock(filePath, () => this.inner.removeLockFile(filePath));
  }

  // ---- used by FaultFileHandle ----------------------------------------------------------------

  /** @internal */
  handleOperation<T>(kind: OperationKind, filePath: string, action: () => T, torn?: () => void, bytes?: number): T {
    return this.#run(kind, filePath, action, torn, bytes);
  }

  /** @internal */
  handleOperationAsync(kind: OperationKind, filePath: string, action: () => Promise<void>): Promise<void> {
    return this.#runAsync(kind, filePath, action);
  }

  /** @internal */
  assertAlive(operation: string, filePath: string): void {
    this.#assertAlive(operation, filePath);
  }

  /** @internal */
  tornLength(length: number): number {
    return this.#tornLength(length);
  }
}

class FaultFileHandle implements FileHandle {
  readonly #owner: FaultFileSystem;
  readonly #inner: FileHandle;

  constructor(owner: FaultFileSystem, inner: FileHandle) {
    this.#owner = owner;
    this.#inner = inner;
  }

  get path(): string {
    return this.#inner.path;
  }

  read(target: Uint8Array, position: number): number {
    this.#owner.assertAlive('read', this.path);
    return this.#inner.read(target, position);
  }

  write(source: Uint8Array, position: number): void {
    this.#owner.handleOperation(
      'write',
      this.path,
      () => this.#inner.write(source, position),
      () => this.#inner.write(source.subarray(0, this.#owner.tornLength(source.length)), position),
      source.length,
    );
  }

  size(): number {
    this.#owner.assertAlive('size', this.path);
    return this.#inner.size();
  }

  linkCount(): number {
    this.#owner.assertAlive('linkCount', this.path);
    return this.#inner.linkCount();
  }

  truncate(length: number): void {
    this.#owner.handleOperation('truncate', this.path, () => this.#inner.truncate(length));
  }

  sync(): Promise<void> {
    return this.#owner.handleOperationAsync('sync', this.path, () => this.#inner.sync());
  }

  close(): void {
    // Never fails, not even after a crash: it only releases the descriptor.
    this.#inner.close();
  }
}
