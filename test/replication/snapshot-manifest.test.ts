/**
 * The snapshot manifest (docs/replication.md §Object-store snapshots) as pure bytes: what is encoded
 * decodes to the same manifest and verifies under its key only; any changed byte fails the MAC; a
 * malformed manifest is ARMDB_INTEGRITY, never a crash; the snapshot options are checked at the boundary.
 */
import fc from 'fast-check';
import { expect, test } from 'vitest';
import {
  decodeSnapshotManifest,
  encodeSnapshotManifest,
  type SnapshotEntry,
  type SnapshotManifest,
  sha256,
  verifySnapshotManifest,
} from '../../src/replication/bootstrap.js';
import { natsReplication } from '../../src/replication/index.js';
import { testKey } from '../helpers/bytes.js';

const segment = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,11}$/).filter((name) => name !== 'LOCK' && !name.startsWith('LOCK.'));
const entry: fc.Arbitrary<SnapshotEntry> = fc.oneof(
  fc.array(segment, { minLength: 1, maxLength: 3 }).map((segments) => ({ kind: 'directory' as const, path: segments.join('/') })),
  fc
    .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.uint8Array({ maxLength: 64 }))
    .map(([segments, bytes]) => ({ kind: 'file' as const, path: segments.join('/'), size: bytes.length, digest: sha256(bytes) })),
);
const manifest: fc.Arbitrary<SnapshotManifest> = fc.record({
  databaseId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  epoch: fc.integer({ min: 1, max: 2 ** 40 }),
  batch: fc.integer({ min: 1, max: 2 ** 40 }),
  sequence: fc.integer({ min: 1, max: 2 ** 50 }),
  manifestEpoch: fc.integer({ min: 0, max: 2 ** 40 }),
  leaderTimeMs: fc.integer({ min: 0, max: 2 ** 45 }),
  entries: fc.array(entry, { maxLength: 12 }),
});

test('a manifest decodes to what was encoded and verifies under its key only', () => {
  fc.assert(
    fc.property(manifest, (original) => {
      const key = testKey(3);
      const decoded = decodeSnapshotManifest(encodeSnapshotManifest(original, key));
      const { body: _body, mac: _mac, ...fields } = decoded;
      expect(fields).toEqual(original);
      expect(verifySnapshotManifest(decoded, key)).toBe(true);
      expect(verifySnapshotManifest(decoded, testKey(4))).toBe(false);
    }),
  );
});

test('any changed byte fails the MAC or the parse, with ARMDB_INTEGRITY and nothing else', () => {
  fc.assert(
    fc.property(manifest, fc.nat(), fc.integer({ min: 1, max: 255 }), (original, at, flip) => {
      const key = testKey(3);
      const bytes = encodeSnapshotManifest(original, key);
      const tampered = bytes.slice();
      tampered[at % tampered.length]! ^= flip;
      let decoded: ReturnType<typeof decodeSnapshotManifest>;
      try {
        decoded = decodeSnapshotManifest(tampered);
      } catch (error) {
        expect(error).toMatchObject({ code: 'ARMDB_INTEGRITY' });
        return;
      }
      expect(verifySnapshotManifest(decoded, key)).toBe(false);
    }),
  );
});

test('a truncated manifest or one naming the lock is ARMDB_INTEGRITY', () => {
  const key = testKey(3);
  const bytes = encodeSnapshotManifest(
    {
      databaseId: new Uint8Array(16),
      epoch: 1,
      batch: 1,
      sequence: 1,
      manifestEpoch: 1,
      leaderTimeMs: 0,
      entries: [{ kind: 'file', path: 'shard-0/LOCKS', size: 0, digest: sha256(new Uint8Array(0)) }],
    },
    key,
  );
  for (const length of [0, 10, 65, bytes.length - 33]) {
    expect(() => decodeSnapshotManifest(bytes.subarray(0, length))).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
  }
  // The same bytes with the path renamed to the lock's name (same length): refused before any file is written.
  const lock = bytes.slice();
  lock.set(new TextEncoder().encode('shard-0/LOCK.'), 66 + 3);
  expect(() => decodeSnapshotManifest(lock)).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
});

test('the snapshot options are checked with RangeError and TypeError', () => {
  const base = { servers: 'nats://127.0.0.1:1', name: 'ok', role: 'leader' } as const;
  expect(() => natsReplication({ ...base, snapshotEveryBytes: 0 })).toThrow(RangeError);
  expect(() => natsReplication({ ...base, snapshotEveryMs: 1.5 })).toThrow(RangeError);
  expect(() => natsReplication({ ...base, snapshotEveryMs: 1000, retainSnapshots: 0 })).toThrow(RangeError);
  expect(() => natsReplication({ ...base, snapshotEveryMs: 1000, retainSnapshots: 101 })).toThrow(RangeError);
  expect(() => natsReplication({ ...base, snapshotEveryMs: 1000, trimStream: 'yes' as unknown as boolean })).toThrow(TypeError);
  expect(() => natsReplication({ ...base, snapshotEveryBytes: 1 << 20, retainSnapshots: 3, trimStream: false })).not.toThrow();
  expect(() => natsReplication({ ...base, manifestHistory: 1 as unknown as boolean })).toThrow(TypeError);
});
