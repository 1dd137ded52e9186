/**
 * The engine a follower's collection runs on, replaced as a whole each time the follower reopens its
 * directory at a caught-up point (docs/replication.md §The follower): the collection keeps one object
 * whose every property and method is the current engine's. A swap happens between two synchronous
 * calls, never inside one. An iterator over an ordered collection started before a swap holds the
 * old engine's cursor, whose handles name other keys in the new engine, and the old engine is closed:
 * its next step throws ARMDB_CLOSED (src/collections/scan-batch.ts compares the ordered index it
 * started on with the current one).
 */
import type { Engine } from '../engine/engine.js';

export class EngineSlot {
  #current: Engine;
  /** What the collection holds. */
  readonly engine: Engine;

  constructor(initial: Engine) {
    this.#current = initial;
    const slot = this;
    this.engine = new Proxy(initial, {
      get(_target, property) {
        const current = slot.#current;
        const value: unknown = Reflect.get(current, property, current);
        return typeof value === 'function' ? value.bind(current) : value;
      },
      has: (_target, property) => Reflect.has(slot.#current, property),
    });
  }

  get current(): Engine {
    return this.#current;
  }

  /** Serves `next` from now on; returns the engine it replaces (the caller closes it). */
  swap(next: Engine): Engine {
    const previous = this.#current;
    this.#current = next;
    return previous;
  }
}
