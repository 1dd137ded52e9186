/**
 * close() while a barrier runs and another is queued (found by a second read of the barrier code):
 * close waited for the running barrier and then read the queued one, but by then the queued barrier
 * had become the running one, so close()'s own barrier ran beside it. Both wrote MANIFEST.tmp (one
 * rename then failed with ENOENT and poisoned the close), or the late barrier wrote its MANIFEST
 * after close() had zeroed the MAC key (the next open: "the manifest fails its MAC").
 */
import { describe, expect, it } from 'vitest';
import type { FileHandle } from '../../src/io/file-system.js';
import { ForwardingFileSystem, forwardHandle } from '../helpers/forwarding-file-system.js';
import { keyOf, openMap, shardOf, directoriesRemovedAfterEach, valueFor } from './scenario.js';

const directory = directoriesRemovedAfterEach();

/** The real file system whose data-file fsyncs wait at a gate while `holding` is set. */
class GatedFileSystem extends ForwardingFileSystem {
  holding = false;
  readonly #waiting: (() => void)[] = [];

  release(): void {
    this.holding = false;
    for (const resume of this.#waiting.splice(0)) resume();
  }

  protected override wrapHandle(handle: FileHandle): FileHandle {
    return forwardHandle(handle, {
      sync: () => {
        if (!this.holding) return handle.sync();
        return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() => handle.sync());
      },
    });
  }
}

describe('close() with a barrier running and one queued', () => {
  it('waits for both: every sync() and close() resolve, and the store reopens with all three writes', async () => {
    const dir = directory('close-race');
    const map = await openMap(dir, undefined, { shards: 1, hints: false });
    map.put(keyOf(1), valueFor(1, 1, 1, 50));
    await map.sync();
    map.put(keyOf(2), valueFor(1, 2, 1, 50));
    const first = map.sync();
    map.put(keyOf(3), valueFor(1, 3, 1, 50));
    const second = map.sync();
    const closing = map.close();
    expect((await Promise.allSettled([first, second, closing])).map((result) => result.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    const again = await openMap(dir, undefined, { shards: 1 });
    for (const key of [1, 2, 3]) expect(again.get(keyOf(key))).toEqual(valueFor(1, key, 1, 50));
    await again.close();
  });

  it('the queued barrier held in its fsyncs until close() has begun: the store reopens (its MANIFEST was not written with a zeroed key)', async () => {
    const dir = directory('close-race-held');
    const fileSystem = new GatedFileSystem();
    const map = await openMap(dir, fileSystem, { shards: 2, hints: false });
    let key = 0;
    while (shardOf(map, keyOf(key)) !== 0) key++;
    map.put(keyOf(key), valueFor(1, key, 1, 50));
    await map.sync();
    map.put(keyOf(key), valueFor(2, key, 2, 50));
    const first = map.sync();
    map.put(keyOf(key), valueFor(3, key, 3, 50));
    const second = map.sync();
    const closing = map.close();
    // The queued barrier starts once the first settles: hold its fsyncs, and release them only after
    // close() has had every chance to run its own barrier (two turns of the event loop).
    await first;
    fileSystem.holding = true;
    setImmediate(() => setImmediate(() => fileSystem.release()));
    expect((await Promise.allSettled([second, closing])).map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
    const again = await openMap(dir, undefined, { shards: 2 });
    expect(again.get(keyOf(key))).toEqual(valueFor(3, key, 3, 50));
    await again.close();
  });
});
