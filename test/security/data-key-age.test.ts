/**
 * Data-key age (docs/security-model.md §Data-key age): the KEYRING records when each data key was
 * made, `dataKeyMaxAgeMs` rotates the active one once it is older — at open and after every
 * barrier — and `stats().dataKeyAgeMs` shows the age. A test clock (the engine-hooks seam) stands in
 * for time; nothing sleeps.
 */
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { decodeKeyring } from '../../src/format/keyring.js';
import { type OpenOptions, VarMap } from '../../src/index.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { storeTest as it, trackStore } from '../helpers/store.js';

const KEY_SIZE = 16;
const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`key-${String(index).padStart(12, '0')}`);
const DAY_MS = 24 * 3600 * 1000;

function manualClock(startMs = Date.UTC(2026, 0, 1)): { now: () => number; set: (ms: number) => void } {
  let current = startMs;
  return {
    now: () => current,
    set: (ms) => {
      current = ms;
    },
  };
}

function optionsOf(key: Uint8Array, extra: Partial<OpenOptions> = {}): OpenOptions {
  return { keySize: KEY_SIZE, encryption: { key }, shards: 2, syncIntervalMs: 0, autoCompact: false, ...extra };
}

async function openWithClock(dir: string, options: OpenOptions, now: () => number): Promise<VarMap> {
  return trackStore(dir, await VarMap.open(dir, withEngineHooks({ ...options }, { now })));
}

/** Resolves with the next `armdb:audit` event named `name` (rotation by age runs after the barrier, in the background). */
function nextAuditEvent(name: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (message: unknown): void => {
      const event = message as Record<string, unknown>;
      if (event['event'] !== name) return;
      unsubscribe('armdb:audit', listener);
      resolve(event);
    };
    subscribe('armdb:audit', listener);
  });
}

const keyringOf = (dir: string) => decodeKeyring(fs.readFileSync(path.join(dir, 'KEYRING')));

describe('data-key age', () => {
  it('the KEYRING records each data key creation time; stats().dataKeyAgeMs counts from it across reopens', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const clock = manualClock();
    const created = clock.now();
    const db = await openWithClock(dir, optionsOf(key), clock.now);
    expect(db.stats().dataKeyAgeMs).toBe(0);
    clock.set(created + 5000);
    expect(db.stats().dataKeyAgeMs).toBe(5000);
    await db.rotateDataKey();
    expect(db.stats().dataKeyAgeMs).toBe(0);
    await db.close();
    expect(keyringOf(dir).dataKeys.map((entry) => [entry.keyId, entry.createdAtMs])).toEqual([
      [1, created],
      [2, created + 5000],
    ]);
    clock.set(created + 3 * DAY_MS);
    const reopened = await openWithClock(dir, optionsOf(key), clock.now);
    expect(reopened.stats().dataKeyAgeMs).toBe(3 * DAY_MS - 5000);
    await reopened.close();
    const plain = trackStore(tempDir(), await VarMap.open(tempDir(), { keySize: KEY_SIZE, encryption: 'none' }));
    expect(plain.stats().dataKeyAgeMs).toBeUndefined();
  });

  it('checked at open: a service that restarts more often than dataKeyMaxAgeMs still rotates, and only once', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const clock = manualClock();
    const start = clock.now();
    const options = optionsOf(key, { dataKeyMaxAgeMs: DAY_MS });
    // Restarts every 12 hours: the key's age is kept in the KEYRING, not counted from open.
    for (let restart = 0; restart < 5; restart++) {
      clock.set(start + restart * (DAY_MS / 2));
      const db = await openWithClock(dir, options, clock.now);
      await db.put(keyOf(restart), encoder.encode(`written at restart ${restart}`));
      await db.close();
    }
    // Ages at the opens: 0, 12 h, 24 h (not older), 36 h (rotated: key 2 made then), 12 h.
    expect(keyringOf(dir).dataKeys.map((entry) => [entry.keyId, entry.createdAtMs - start])).toEqual([
      [1, 0],
      [2, 3 * (DAY_MS / 2)],
    ]);
    expect(keyringOf(dir).activeKeyId).toBe(2);
    const db = await openWithClock(dir, options, clock.now);
    expect(db.stats().dataKeyAgeMs).toBe(DAY_MS / 2);
    expect(Object.keys(db.stats().filesPerKeyId).sort()).toEqual(['1', '2']);
    for (let restart = 0; restart < 5; restart++) expect(db.get(keyOf(restart))).toBeDefined();
  });

  it('checked after every barrier: the first sync past the age rotates the data key, in the background', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    const clock = manualClock();
    const start = clock.now();
    const db = await openWithClock(dir, optionsOf(key, { dataKeyMaxAgeMs: 60_000 }), clock.now);
    await db.put(keyOf(1), encoder.encode('one'));
    await db.sync();
    clock.set(start + 60_000);
    await db.put(keyOf(2), encoder.encode('two'));
    await db.sync();
    // Not older than the limit yet: no rotation.
    expect(db.stats().filesPerKeyId).toEqual({ 1: 2 });
    clock.set(start + 60_001);
    const rotated = nextAuditEvent('rotate-data-key');
    await db.put(keyOf(3), encoder.encode('three'));
    await db.sync();
    const event = await rotated;
    expect(event).toMatchObject({ activeKeyId: 2, reason: 'age' });
    expect(db.stats().dataKeyAgeMs).toBe(0);
    expect(db.stats().filesPerKeyId[2]).toBe(2);
    await db.close();
    const reopened = await VarMap.open(dir, optionsOf(key));
    try {
      expect(reopened.get(keyOf(3))).toEqual(encoder.encode('three'));
      expect(keyringOf(dir).activeKeyId).toBe(2);
    } finally {
      await reopened.close();
    }
  });

  it('dataKeyMaxAgeMs and providerTimeoutMs are validated: integers ≥ 1', async ({ tempDir }) => {
    const dir = tempDir();
    const key = randomBytes(32);
    await expect(VarMap.open(dir, optionsOf(key, { dataKeyMaxAgeMs: 0 }))).rejects.toThrow(RangeError);
    await expect(VarMap.open(dir, optionsOf(key, { dataKeyMaxAgeMs: 1.5 }))).rejects.toThrow(TypeError);
    await expect(VarMap.open(dir, optionsOf(key, { dataKeyMaxAgeMs: '1d' as unknown as number }))).rejects.toThrow(TypeError);
    await expect(VarMap.open(dir, optionsOf(key, { providerTimeoutMs: 0 }))).rejects.toThrow(RangeError);
    expect(fs.existsSync(path.join(dir, 'KEYRING'))).toBe(false);
  });
});
