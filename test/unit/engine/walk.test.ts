/**
 * Walk: every item visited once and in order; the event loop gets a turn between slices and only
 * there; an aborted signal rejects with ARMDB_ABORTED naming the operation, with the signal's reason
 * as cause; progress once per full slice; pages weighed so that a slice is 64 of them.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_WORK, SLICE_WORK, Walk } from '../../../src/engine/walk.js';

const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index);

describe('Walk.each', () => {
  it('visits every item in order and gives the event loop a turn only between slices', async () => {
    const visited: number[] = [];
    let turns = 0;
    let ticking = true;
    const seenTurns: number[] = [];
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      await new Walk({ operation: 'test' }).each(range(2 * SLICE_WORK + 5), (item) => {
        visited.push(item);
        seenTurns.push(turns);
      });
    } finally {
      ticking = false;
    }
    expect(visited).toEqual(range(2 * SLICE_WORK + 5));
    // Within a slice nothing else runs; the first item of each later slice comes after a turn.
    expect(seenTurns[SLICE_WORK - 1]).toBe(seenTurns[0]);
    expect(seenTurns[SLICE_WORK]).toBeGreaterThan(seenTurns[SLICE_WORK - 1]!);
    expect(seenTurns[2 * SLICE_WORK]).toBeGreaterThan(seenTurns[2 * SLICE_WORK - 1]!);
  });

  it('awaits a visit that returns a promise before the next one', async () => {
    const events: string[] = [];
    await new Walk({ operation: 'test' }).each([1, 2], async (item) => {
      events.push(`start ${item}`);
      await Promise.resolve();
      events.push(`end ${item}`);
    });
    expect(events).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('rejects before the first visit when the signal has fired, naming the operation, the reason as cause', async () => {
    const reason = new Error('stop');
    const visited: number[] = [];
    const walk = new Walk({ operation: 'migrate', signal: AbortSignal.abort(reason) });
    const error = await walk.each([1, 2, 3], (item) => void visited.push(item)).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ARMDB_ABORTED', message: 'ARMDB_ABORTED: migrate was aborted', cause: reason });
    expect(visited).toEqual([]);
  });

  it('stops at the end of the slice in which the signal fires', async () => {
    const controller = new AbortController();
    let visits = 0;
    const walk = new Walk({ operation: 'export', signal: controller.signal });
    const walking = walk.each(range(3 * SLICE_WORK), (item) => {
      visits++;
      if (item === 10) controller.abort();
    });
    await expect(walking).rejects.toMatchObject({ code: 'ARMDB_ABORTED' });
    expect(visits).toBe(SLICE_WORK);
  });

  it('reports progress once per full slice, and runs checkStillValid after each turn', async () => {
    let slices = 0;
    let checks = 0;
    const walk = new Walk({ operation: 'test', onSlice: () => slices++, checkStillValid: () => void checks++ });
    await walk.each(range(2 * SLICE_WORK + 1), () => undefined);
    expect(slices).toBe(2);
    expect(checks).toBe(2);
    const closed = new Walk({
      operation: 'test',
      checkStillValid: () => {
        throw new Error('closed');
      },
    });
    await expect(closed.each(range(SLICE_WORK + 1), () => undefined)).rejects.toThrow('closed');
  });
});

describe('Walk.step', () => {
  it('ends a slice after 64 pages of work, not before', async () => {
    let slices = 0;
    const walk = new Walk({ operation: 'verify', onSlice: () => slices++ });
    for (let page = 0; page < 63; page++) await walk.step(PAGE_WORK);
    expect(slices).toBe(0);
    await walk.step(PAGE_WORK);
    expect(slices).toBe(1);
  });

  it('checks the signal after the turn that ends a slice', async () => {
    const controller = new AbortController();
    const walk = new Walk({ operation: 'verify', signal: controller.signal });
    controller.abort();
    await walk.step(PAGE_WORK); // within the slice: no check yet
    await expect(walk.step(SLICE_WORK)).rejects.toMatchObject({ code: 'ARMDB_ABORTED', message: 'ARMDB_ABORTED: verify was aborted' });
  });
});
