import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashIndex } from '../../../src/index/hash-index.js';
import type { KeySource } from '../../../src/index/key-index.js';
import { hex } from '../../helpers/bytes.js';

/** What the index must say about a key: the model's entry. */
interface Location {
  fileId: number;
  position: number;
  valueLength: number;
  sequence: number;
}

const location = fc.record({
  fileId: fc.nat(0xffff_ffff),
  // Record positions are 8-aligned (an odd one marks a released handle).
  position: fc.nat(0x1fff_ffff).map((word) => word * 8),
  valueLength: fc.nat(0xffff_ffff),
  // The whole sequence range, so that both halves of the split sequence are exercised.
  sequence: fc.oneof(fc.integer({ min: 1, max: 0xffff_ffff }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
});

/** 2-byte keys over 4,096 values: repeats, removals inside probe runs, and growth past 1,024 handles. */
const key = fc.integer({ min: 0, max: 4095 }).map((value) => Uint8Array.of(value >>> 8, value & 0xff));

const operation = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), key, location }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('relocate' as const),
      key,
      fileId: fc.nat(0xffff_ffff),
      position: fc.nat(0x1fff_ffff).map((word) => word * 8),
    }),
  },
);

/** Every key of the model is found with its location; every other key of the key space is absent. */
function expectAgrees(index: HashIndex, model: Map<string, Location>): void {
  expect(index.size).toBe(model.size);
  for (const [name, expected] of model) {
    const handle = index.find(Buffer.from(name, 'hex'));
    expect(handle).toBeGreaterThanOrEqual(0);
    expect(index.isLive(handle)).toBe(true);
    expect(hex(index.keyView(handle))).toBe(name);
    expect({
      fileId: index.fileIdOf(handle),
      position: index.positionOf(handle),
      valueLength: index.valueLengthOf(handle),
      sequence: index.sequenceOf(handle),
    }).toEqual(expected);
  }
  for (let value = 0; value < 4096; value += 7) {
    const probe = Uint8Array.of(value >>> 8, value & 0xff);
    if (!model.has(hex(probe))) expect(index.find(probe)).toBe(-1);
  }
  const visited: string[] = [];
  index.forEachHandle((handle) => visited.push(hex(index.keyView(handle))));
  expect(new Set(visited)).toEqual(new Set(model.keys()));
  expect(visited.length).toBe(model.size);
}

describe('HashIndex location records (one record per handle) and slot hashes', () => {
  for (const hashBits of [1, 4, 32]) {
    it(`agrees with a Map of locations under puts, removals, relocations, handle reuse and growth (${hashBits}-bit slot hashes)`, () => {
      fc.assert(
        fc.property(fc.array(operation, { maxLength: 2500 }), (operations) => {
          const index = new HashIndex(2, { hashBits });
          const model = new Map<string, Location>();
          let mostLive = 0;
          for (const step of operations) {
            const name = hex(step.key);
            if (step.kind === 'put') {
              const handle = index.findOrInsert(step.key);
              const { fileId, position, valueLength, sequence } = step.location;
              index.setLocation(handle, fileId, position, valueLength, sequence);
              model.set(name, { ...step.location });
            } else if (step.kind === 'remove') {
              expect(index.remove(step.key)).toBe(model.delete(name));
            } else {
              const handle = index.find(step.key);
              const expected = model.get(name);
              expect(handle >= 0).toBe(expected !== undefined);
              if (expected !== undefined) {
                index.relocate(handle, step.fileId, step.position);
                expected.fileId = step.fileId;
                expected.position = step.position;
              }
            }
            mostLive = Math.max(mostLive, model.size);
          }
          expectAgrees(index, model);
          // Released handles are handed out again before new ones: handles stay below the most keys ever live.
          expect(index.handleLimit).toBeLessThanOrEqual(mostLive);
        }),
        { numRuns: hashBits === 1 ? 15 : 40, seed: 0x16 + hashBits },
      );
    });
  }

  it('a bulk insert with few-bit slot hashes keeps first handles, drops duplicates and leaves every location unset', () => {
    fc.assert(
      fc.property(
        fc.array(key, { minLength: 4096, maxLength: 6000 }),
        fc.array(fc.tuple(key, location), { maxLength: 300 }),
        fc.array(key, { maxLength: 300 }),
        (bulkKeys, before, removed) => {
          const index = new HashIndex(2, { hashBits: 8 });
          const model = new Map<string, Location>();
          for (const [beforeKey, beforeLocation] of before) {
            const { fileId, position, valueLength, sequence } = beforeLocation;
            index.setLocation(index.findOrInsert(beforeKey), fileId, position, valueLength, sequence);
            model.set(hex(beforeKey), beforeLocation);
          }
          // Removals first, so that the bulk insert reuses released handles.
          for (const removedKey of removed) expect(index.remove(removedKey)).toBe(model.delete(hex(removedKey)));
          const bytes = new Uint8Array(bulkKeys.length * 3);
          bulkKeys.forEach((bulkKey, position) => {
            bytes.set(bulkKey, position * 3 + 1);
          });
          const source: KeySource = { keyBytes: bytes, keyOffset: 1, keyStride: 3, count: bulkKeys.length };
          const { handles, added } = index.insertMany([source]);
          const firstHandle = new Map<string, number>();
          bulkKeys.forEach((bulkKey, position) => {
            const name = hex(bulkKey);
            const handle = handles[position]!;
            expect(hex(index.keyView(handle))).toBe(name);
            expect(firstHandle.get(name) ?? handle).toBe(handle);
            firstHandle.set(name, handle);
          });
          const newKeys = [...firstHandle.keys()].filter((name) => !model.has(name));
          expect(added.length).toBe(newKeys.length);
          expect(new Set(Array.from(added))).toEqual(new Set(newKeys.map((name) => firstHandle.get(name))));
          for (const handle of added) {
            expect(index.isLive(handle)).toBe(false);
            expect(index.sequenceOf(handle)).toBe(0);
          }
          for (const name of newKeys) {
            const handle = firstHandle.get(name)!;
            index.setLocation(handle, 3, handle * 8, 1, 2 ** 40 + handle);
            model.set(name, { fileId: 3, position: handle * 8, valueLength: 1, sequence: 2 ** 40 + handle });
          }
          expectAgrees(index, model);
        },
      ),
      { numRuns: 4, seed: 0x1616 },
    );
  });
});
