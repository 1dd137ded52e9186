/** The replication message codec (docs/replication.md §Message format): no NATS needed. */
import { describe, expect, test } from 'vitest';
import type { FileOperation } from '../../src/io/recording-file-system.js';
import { decodePart, encodePart, splitIntoParts, verifyPart } from '../../src/replication/message.js';
import { testKey } from '../helpers/bytes.js';

const header = { databaseId: new Uint8Array(16).fill(3), epoch: 7, batch: 2, part: 0, partCount: 1, leaderTimeMs: 1_700_000_000_000 };
const operations: FileOperation[] = [
  { kind: 'reset' },
  { kind: 'makeDirectory', path: 'shard-000' },
  { kind: 'create', path: 'shard-000/000001.data' },
  { kind: 'write', path: 'shard-000/000001.data', position: 4096, bytes: new Uint8Array([1, 2, 3]) },
  { kind: 'truncate', path: 'shard-000/000001.data', length: 8192 },
  { kind: 'rename', path: 'MANIFEST.0011223344556677.tmp', to: 'MANIFEST' },
  { kind: 'remove', path: 'shard-000/000001.hint' },
];

describe('a replication part', () => {
  test('round-trips every operation kind and verifies under its key only', () => {
    const key = testKey(1);
    const decoded = decodePart(encodePart(header, operations, key));
    expect(decoded.operations).toEqual(operations);
    expect({ ...decoded, operations: undefined, body: undefined, mac: undefined }).toMatchObject({ ...header });
    expect(verifyPart(decoded, key)).toBe(true);
    expect(verifyPart(decoded, testKey(2))).toBe(false);
  });

  test('fails authentication when any byte changes', () => {
    const key = testKey(1);
    const bytes = encodePart(header, operations, key);
    for (let offset = 0; offset < bytes.length; offset += 7) {
      const tampered = bytes.slice();
      tampered[offset]! ^= 0x01;
      let accepted = false;
      try {
        accepted = verifyPart(decodePart(tampered), key);
      } catch (error) {
        expect((error as { code?: string }).code).toBe('ARMDB_INTEGRITY');
      }
      expect(accepted, `offset ${offset}`).toBe(false);
    }
  });

  test('refuses a path outside the store or naming the lock, with ARMDB_INTEGRITY', () => {
    const key = testKey(1);
    const good = encodePart(header, [{ kind: 'remove', path: 'shard-000/LOCKX' }], key);
    for (const replacement of ['shard-000/../LOCK', '/etc/passwdxxxxxx', 'shard-000/LOCK.x']) {
      const bytes = good.slice();
      bytes.set(new TextEncoder().encode(replacement.padEnd(15, 'x').slice(0, 15)), 61);
      expect(() => decodePart(bytes)).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
    }
    expect(() => decodePart(good.subarray(0, 40))).toThrow(expect.objectContaining({ code: 'ARMDB_INTEGRITY' }));
  });

  test('splits a batch into parts that fit the payload and rejoin into the same writes', () => {
    const big = new Uint8Array(10_000).map((_, index) => index % 251);
    const parts = splitIntoParts(
      [
        { kind: 'create', path: 'KEYRING' },
        { kind: 'write', path: 'KEYRING', position: 0, bytes: big },
      ],
      2048,
    );
    expect(parts.length).toBeGreaterThan(4);
    const rebuilt = new Uint8Array(big.length);
    for (const [index, part] of parts.entries()) {
      const encoded = encodePart({ ...header, part: index, partCount: parts.length }, part, testKey(1));
      expect(encoded.length).toBeLessThanOrEqual(2048);
      for (const operation of decodePart(encoded).operations)
        if (operation.kind === 'write') rebuilt.set(operation.bytes, operation.position);
    }
    expect(rebuilt).toEqual(big);
  });
});
