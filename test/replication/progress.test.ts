/** A follower's progress file (docs/format.md §8A): its bytes, and what a check refuses. */
import { expect, test } from 'vitest';
import { decodeProgress, encodeProgress, PROGRESS_BYTES, verifyProgress } from '../../src/replication/progress.js';

const macKey = new Uint8Array(32).fill(9);
const progress = {
  databaseId: Uint8Array.from({ length: 16 }, (_, index) => index + 1),
  epoch: 7,
  batch: 123,
  sequence: 4567,
  manifestEpochFloor: 89,
};

test('round-trips with the layout of docs/format.md §8A, and verifies under its key only', () => {
  const bytes = encodeProgress(progress, macKey);
  expect(bytes.length).toBe(PROGRESS_BYTES);
  expect(PROGRESS_BYTES).toBe(86);
  expect(Buffer.from(bytes.subarray(0, 6)).toString('hex')).toBe('41524d500100');
  expect(Buffer.from(bytes.subarray(38, 46)).toString('hex')).toBe('00000000000011d7');
  expect(decodeProgress(bytes)).toEqual(progress);
  expect(verifyProgress(bytes, macKey)).toBe(true);
  expect(verifyProgress(bytes, new Uint8Array(32).fill(8))).toBe(false);
});

test('a flipped bit fails the MAC; another length, magic or version is ARMDB_INTEGRITY', () => {
  const bytes = encodeProgress(progress, macKey);
  for (const offset of [6, 30, 40, 53, 60]) {
    const tampered = bytes.slice();
    tampered[offset]! ^= 1;
    expect(verifyProgress(tampered, macKey), `offset ${offset}`).toBe(false);
  }
  expect(() => decodeProgress(bytes.subarray(0, 85))).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
  const magic = bytes.slice();
  magic[0] = 0;
  expect(() => decodeProgress(magic)).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
  const version = bytes.slice();
  version[4] = 2;
  expect(() => decodeProgress(version)).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
});
