/**
 * @internal When and how a collection calls its {@link WriteHook} (SPEC §6): whether a write reads
 * the old value first, what `onWrite` is handed after a commit, and `onInit` for every live entry at
 * open and for entries `migrate` keeps.
 */
import type { WriteHook } from '../config.js';
import type { WriteOperation } from '../engine/engine.js';
import type { KeyIndex } from '../index/key-index.js';
import { Walk } from '../engine/walk.js';
import { copyBytes } from '../format/bytes.js';

/** @internal The write-hook policy of one collection; a collection without a hook has one too. */
export class WriteHookPolicy<V> {
  readonly #hook: WriteHook<V> | undefined;
  /** Whether a write must read the value it replaces: a hook that did not opt out with `needsOldValue: false`. */
  readonly wantsOldValue: boolean;

  constructor(hook: WriteHook<V> | undefined) {
    this.#hook = hook;
    this.wantsOldValue = hook !== undefined && hook.needsOldValue !== false;
  }

  /** Whether there is a hook to tell about writes: then every write takes the general commit path. */
  get watchesWrites(): boolean {
    return this.#hook !== undefined;
  }

  /** Hands the hook each committed operation: a copy of its key, the value before and after. */
  committed(operations: readonly WriteOperation[], oldValues: readonly (V | undefined)[], newValues: readonly (V | undefined)[]): void {
    const hook = this.#hook;
    if (hook === undefined) return;
    for (let index = 0; index < operations.length; index++) {
      hook.onWrite(copyBytes(operations[index]!.key), oldValues[index], newValues[index]);
    }
  }

  /** `onInit` of one entry (`key` is the hook's to keep), if the hook has one. */
  init(key: Uint8Array, value: V): void {
    this.#hook?.onInit?.(key, value);
  }

  /** Calls `onInit` for every live entry of `index`, in slices; `valueOfHandle` gives an entry's value. */
  async initAll(index: KeyIndex, valueOfHandle: (handle: number) => V): Promise<void> {
    const hook = this.#hook;
    const onInit = hook?.onInit;
    if (onInit === undefined) return;
    await new Walk({ operation: 'open' }).each(index.liveHandles(), (handle) => {
      onInit.call(hook, index.keyOf(handle), valueOfHandle(handle));
    });
  }
}
