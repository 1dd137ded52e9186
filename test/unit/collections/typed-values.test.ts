/**
 * What a Typed collection hands out and what it reports (issue 15, items 19 and 20): the object `get`
 * returns is deep-frozen, so mutating it cannot change what later gets return; a codec that cannot
 * encode a value is a TypeError whose cause is the codec's own error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codecs, keys, TypedMap, TypedTree } from '../../../src/index.js';

interface Row {
  name: string;
  tags: string[];
  address: { city: string };
}

const made: string[] = [];
afterAll(() => {
  for (const directory of made) rmSync(directory, { recursive: true, force: true });
});
function tempDir(): string {
  const directory = mkdtempSync(path.join(tmpdir(), 'armdb-typed-'));
  made.push(directory);
  return directory;
}
const base = { keySize: 8, encryption: 'none', syncIntervalMs: 0 } as const;

describe.each([
  ['TypedMap', (directory: string) => TypedMap.open<Row>(directory, { ...base, codec: codecs.json })],
  ['TypedTree', (directory: string) => TypedTree.open<Row>(directory, { ...base, codec: codecs.json })],
])('%s values', (_name, open) => {
  it('get returns a deep-frozen object: a mutation throws and later gets, and a reopen, see the stored value', async () => {
    const directory = tempDir();
    const db = await open(directory);
    const key = keys.u64(1);
    db.put(key, { name: 'Ada', tags: ['math'], address: { city: 'London' } });
    const first = db.get(key)!;
    expect(Object.isFrozen(first) && Object.isFrozen(first.tags) && Object.isFrozen(first.address)).toBe(true);
    expect(() => {
      first.name = 'Eve';
    }).toThrow(TypeError);
    expect(() => first.tags.push('poetry')).toThrow(TypeError);
    expect(() => {
      first.address.city = 'Paris';
    }).toThrow(TypeError);
    expect(db.get(key)).toEqual({ name: 'Ada', tags: ['math'], address: { city: 'London' } });
    // The caller's own object given to put is not frozen: it is encoded, not kept.
    const mine = { name: 'Bob', tags: [], address: { city: 'Rome' } };
    db.put(keys.u64(2), mine);
    expect(Object.isFrozen(mine)).toBe(false);
    await db.close();
    const reopened = await open(directory);
    expect(Object.isFrozen(reopened.get(key))).toBe(true);
    await reopened.close();
  });

  it('a value the codec cannot encode is a TypeError naming the codec, with its error as the cause; nothing is stored', async () => {
    const db = await open(tempDir());
    const key = keys.u64(3);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = cyclic;
    for (const value of [{ a: 1n }, cyclic]) {
      let caught: unknown;
      try {
        db.put(key, value as unknown as Row);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TypeError);
      expect((caught as Error).message).toMatch(/codec\.encode threw a TypeError$/);
      expect((caught as Error).cause).toBeInstanceOf(TypeError);
    }
    expect(db.has(key)).toBe(false);
    await db.close();
  });
});
