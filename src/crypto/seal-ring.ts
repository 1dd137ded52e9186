/**
 * Sealing off the main thread (docs/durability.md §Sealing worker): a ring of slots in shared memory and
 * one worker thread that seals the pages put into them (src/crypto/seal-worker.ts).
 *
 * The main thread keeps every decision that makes a (key, nonce) pair unique: a file reserves its unit
 * indexes in order before its pages enter a slot (FileCipher.reserveUnits), exactly as an inline seal
 * would, and the worker only applies them. The main thread also does every write, in submission order,
 * through the file's own FileHandle (so the FileSystem interface, fault injection and the crash suites
 * see every write): {@link harvest} writes the slots the worker finished, {@link drain} waits for all.
 * Keys cross to the worker as KeyObjects through a MessagePort, never as strings; plaintext in a slot is
 * zeroed as soon as its ciphertext is written.
 *
 * A failure (the worker reports one, dies, or a write of a harvested slot throws) is final: every later
 * call throws the same ARMDB_POISONED error, and the engine refuses writes. Pages of a failed slot never
 * reach the disk; what a barrier made durable before stays.
 */
import type { KeyObject } from 'node:crypto';
import { MessageChannel, Worker } from 'node:worker_threads';
import { assert } from '../assert.js';
import { type ArmdbError, armdbError } from '../errors.js';
import { PAGE_BYTES, TAG_BYTES } from '../format/constants.js';
import { SEAL_WORKER_SOURCE } from './seal-worker.js';

const EMPTY = 0;
const FILLED = 1;
const SEALED = 2;
const STOP = 4;
// 3: the worker failed the slot (anything but SEALED after FILLED is a failure here).
const HEADER_FIELDS = 4;
/** How long the main thread waits on a slot before it checks again whether the worker died. */
const WAIT_SLICE_MS = 200;

/** What a file hands the ring: its key for the worker, and where sealed pages go. */
export interface SealRingFile {
  /** Key, AAD template and unit kind of the file (FileCipher.ringSealing). */
  readonly sealing: { readonly key: KeyObject; readonly aad: Uint8Array; readonly kind: number };
  /** Writes sealed pages `firstPageIndex`, … (ciphertexts and tags back to back, views of the ring). */
  writeSealed(firstPageIndex: number, ciphertext: Uint8Array, tags: Uint8Array): void;
}

export interface SealRingOptions {
  /** Pages per slot (a slot is sealed as one job). Default 256 (1 MiB). */
  readonly slotPages?: number;
  /** Slots in the ring. Default 4. */
  readonly slotCount?: number;
  /**
   * Runs of fewer complete pages are sealed on the calling thread: handing a page over costs a copy
   * and a wake-up, worth it only for runs (docs/benchmarks.md §Sealing off the main thread). Default 16.
   */
  readonly minimumPages?: number;
  /** Called once with the error when the ring fails (the engine poisons itself). */
  readonly onFailure?: (error: ArmdbError) => void;
}

interface InFlight {
  readonly slot: number;
  readonly file: SealRingFile;
  readonly firstPageIndex: number;
  readonly pageCount: number;
}

let injectFailureForTest = false;
let minimumPagesForTest: number | undefined;
let pagesSubmitted = 0;

/** @internal Test hook: pages handed to any sealing worker of this process so far. */
export function sealRingPagesSubmittedForTest(): number {
  return pagesSubmitted;
}

/** @internal Test hook: rings made from now on hand runs of this many pages and more to the worker (undefined: the default). */
export function setSealRingMinimumPagesForTest(pages: number | undefined): void {
  minimumPagesForTest = pages;
}

/** @internal Test hook: the worker fails the next slots it is given (as if node:crypto threw). */
export function setSealRingFailureForTest(fail: boolean): void {
  injectFailureForTest = fail;
}

/** One sealing worker and its ring of shared slots, for one engine. The worker starts on first use. */
export class SealRing {
  readonly slotPages: number;
  readonly slotCount: number;
  readonly minimumPages: number;
  readonly #slotStride: number;
  readonly #onFailure: ((error: ArmdbError) => void) | undefined;
  #worker: Worker | undefined;
  #port: MessageChannel['port1'] | undefined;
  #control: Int32Array | undefined;
  #header: Float64Array | undefined;
  #bytes: Uint8Array | undefined;
  readonly #inFlight: InFlight[] = [];
  #nextSlot = 0;
  readonly #keyIds = new WeakMap<SealRingFile, number>();
  #nextKeyId = 1;
  #failure: ArmdbError | undefined;
  #closed = false;

  constructor(options: SealRingOptions = {}) {
    this.slotPages = options.slotPages ?? 256;
    this.slotCount = options.slotCount ?? 4;
    this.minimumPages = options.minimumPages ?? minimumPagesForTest ?? 16;
    assert(Number.isInteger(this.slotPages) && this.slotPages >= 1, 'SealRing: at least one page per slot');
    assert(Number.isInteger(this.slotCount) && this.slotCount >= 2, 'SealRing: at least two slots');
    this.#slotStride = this.slotPages * (2 * PAGE_BYTES + TAG_BYTES);
    this.#onFailure = options.onFailure;
  }

  /** Pages handed to the worker and not written yet. */
  get pagesInFlight(): number {
    let pages = 0;
    for (const entry of this.#inFlight) pages += entry.pageCount;
    return pages;
  }

  /** The worker thread exists (it starts with the first submission). */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * Hands whole pages `firstPageIndex`, … of `file` to the worker (copied: the caller may reuse
   * `plaintext` at once). The caller reserved their unit indexes. Waits only when the ring is full.
   */
  submit(file: SealRingFile, firstPageIndex: number, plaintext: Uint8Array): void {
    this.#assertUsable();
    const pageCount = plaintext.length / PAGE_BYTES;
    assert(Number.isInteger(pageCount) && pageCount >= 1, 'SealRing: whole pages are sealed');
    this.#start();
    pagesSubmitted += pageCount;
    const keyId = this.#register(file);
    this.harvest();
    for (let page = 0; page < pageCount; page += this.slotPages) {
      const pages = Math.min(this.slotPages, pageCount - page);
      const slot = this.#nextSlot;
      // The ring is full when the next slot is still in flight: it is the oldest, so write it first.
      if (this.#inFlight.length > 0 && this.#inFlight[0]!.slot === slot) this.#complete(true);
      assert(Atomics.load(this.#control!, slot) === EMPTY, 'SealRing: slots are reused in order');
      const plainAt = slot * this.#slotStride;
      this.#bytes!.set(plaintext.subarray(page * PAGE_BYTES, (page + pages) * PAGE_BYTES), plainAt);
      const at = slot * HEADER_FIELDS;
      this.#header![at] = keyId;
      this.#header![at + 1] = firstPageIndex + page;
      this.#header![at + 2] = pages;
      this.#header![at + 3] = injectFailureForTest ? 1 : 0;
      this.#inFlight.push({ slot, file, firstPageIndex: firstPageIndex + page, pageCount: pages });
      Atomics.store(this.#control!, slot, FILLED);
      Atomics.notify(this.#control!, slot);
      this.#nextSlot = (slot + 1) % this.slotCount;
    }
  }

  /** Writes, in order, the slots the worker has finished; never waits. */
  harvest(): void {
    this.#assertUsable();
    while (this.#inFlight.length > 0 && Atomics.load(this.#control!, this.#inFlight[0]!.slot) !== FILLED) this.#complete(false);
  }

  /** Waits for every slot in flight and writes it: afterwards every submitted page is written (not fsynced). */
  drain(): void {
    this.#assertUsable();
    while (this.#inFlight.length > 0) this.#complete(true);
  }

  /** The file is sealed or closed: the worker drops its key when it next reads its port (its next slot, or close). */
  forget(file: SealRingFile): void {
    const id = this.#keyIds.get(file);
    if (id === undefined) return;
    this.#keyIds.delete(file);
    if (this.#failure === undefined && !this.#closed) this.#port?.postMessage({ type: 'forget', id });
  }

  /** Stops the worker. Pages still in flight are dropped, not written (call {@link drain} first). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inFlight.length = 0;
    const control = this.#control;
    if (control !== undefined && this.#failure === undefined) {
      Atomics.store(control, this.#nextSlot, STOP);
      Atomics.notify(control, this.#nextSlot);
    }
    void this.#worker?.terminate();
    this.#port?.close();
    this.#bytes?.fill(0);
    this.#worker = undefined;
  }

  #assertUsable(): void {
    if (this.#failure !== undefined) throw this.#failure;
    assert(!this.#closed, 'SealRing: used after close');
  }

  #start(): void {
    if (this.#worker !== undefined) return;
    const control = new Int32Array(new SharedArrayBuffer((this.slotCount + 1) * Int32Array.BYTES_PER_ELEMENT));
    const header = new Float64Array(new SharedArrayBuffer(this.slotCount * HEADER_FIELDS * Float64Array.BYTES_PER_ELEMENT));
    const memory = new SharedArrayBuffer(this.slotCount * this.#slotStride);
    const channel = new MessageChannel();
    const worker = new Worker(SEAL_WORKER_SOURCE, {
      eval: true,
      workerData: { control, header, memory, port: channel.port2, slotCount: this.slotCount, slotPages: this.slotPages },
      transferList: [channel.port2],
    });
    // A store left open must not keep the process alive; a worker that ends unexpectedly is dead.
    worker.unref();
    worker.on('error', () => this.#markDead());
    worker.on('exit', () => this.#markDead());
    channel.port1.unref();
    this.#worker = worker;
    this.#port = channel.port1;
    this.#control = control;
    this.#header = header;
    this.#bytes = new Uint8Array(memory);
  }

  #markDead(): void {
    if (this.#control !== undefined && !this.#closed) Atomics.store(this.#control, this.slotCount, 1);
  }

  #register(file: SealRingFile): number {
    const known = this.#keyIds.get(file);
    if (known !== undefined) return known;
    const id = this.#nextKeyId++;
    const { key, aad, kind } = file.sealing;
    // Posted before any slot names the id: the worker reads the port when it takes the slot.
    this.#port!.postMessage({ type: 'key', id, key, aad: aad.slice(), kind });
    this.#keyIds.set(file, id);
    return id;
  }

  /** Writes the oldest slot in flight, waiting for the worker when `wait`; a failure is final. */
  #complete(wait: boolean): void {
    const entry = this.#inFlight[0]!;
    const control = this.#control!;
    let state = Atomics.load(control, entry.slot);
    while (state === FILLED && wait) {
      if (Atomics.load(control, this.slotCount) === 1) break;
      Atomics.wait(control, entry.slot, FILLED, WAIT_SLICE_MS);
      state = Atomics.load(control, entry.slot);
    }
    if (state === FILLED && !wait) return;
    if (state !== SEALED) throw this.#fail(undefined);
    const plainAt = entry.slot * this.#slotStride;
    const cipherAt = plainAt + this.slotPages * PAGE_BYTES;
    const tagAt = cipherAt + this.slotPages * PAGE_BYTES;
    const bytes = this.#bytes!;
    try {
      entry.file.writeSealed(
        entry.firstPageIndex,
        bytes.subarray(cipherAt, cipherAt + entry.pageCount * PAGE_BYTES),
        bytes.subarray(tagAt, tagAt + entry.pageCount * TAG_BYTES),
      );
    } catch (error) {
      throw this.#fail(error);
    }
    bytes.fill(0, plainAt, plainAt + entry.pageCount * PAGE_BYTES);
    this.#inFlight.shift();
    Atomics.store(control, entry.slot, EMPTY);
  }

  #fail(cause: unknown): ArmdbError {
    const error =
      cause === undefined
        ? armdbError('ARMDB_POISONED', 'the sealing worker failed; close and reopen the collection')
        : armdbError('ARMDB_POISONED', 'a write of pages sealed by the sealing worker failed; close and reopen the collection', cause);
    this.#failure = error;
    this.#inFlight.length = 0;
    this.#bytes?.fill(0);
    this.#onFailure?.(error);
    return error;
  }
}
