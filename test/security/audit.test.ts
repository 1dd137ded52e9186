/**
 * The audit trail (docs/security-model.md §Audit trail): every event of a full key lifecycle on
 * `armdb:audit` — open (slot, epoch), failed open (code), addKeySlot, removeKeySlot, changeKey,
 * rotateDataKey, shredding (key ids), verify, integrity failure — each with a timestamp and the
 * database id, and none holding any secret in any encoding.
 */
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect } from 'vitest';
import { ArmdbError, type OpenOptions, VarMap } from '../../src/index.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { memoryProvider } from '../helpers/providers.js';
import { storeTest as it } from '../helpers/store.js';

const KEY_SIZE = 16;
const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`key-${String(index).padStart(12, '0')}`);

/** Every way a secret could be written into an event: hex (both cases), base64, base64url, bytes as numbers, UTF-8. */
function encodings(secret: Uint8Array): string[] {
  const buffer = Buffer.from(secret);
  const numbers = [...secret.subarray(0, 8)];
  return [
    buffer.toString('hex'),
    buffer.toString('hex').toUpperCase(),
    buffer.toString('base64'),
    buffer.toString('base64url'),
    numbers.join(','),
    numbers.join(', '),
    ...(secret.every((byte) => byte >= 0x20 && byte < 0x7f) ? [buffer.toString('latin1')] : []),
  ];
}

describe('armdb:audit', () => {
  it('a full lifecycle publishes every event, each with timestamp and database id, and no secret in any encoding', async ({ tempDir }) => {
    const dir = tempDir();
    const events: Record<string, unknown>[] = [];
    const listener = (message: unknown): void => {
      events.push(message as Record<string, unknown>);
    };
    subscribe('armdb:audit', listener);
    const clockStart = Date.UTC(2026, 5, 1);
    let clock = clockStart;
    const now = (): number => clock;
    const key = new Uint8Array(randomBytes(32));
    const passphrase = 'audit canary passphrase words';
    const nextKey = new Uint8Array(randomBytes(32));
    const kms = memoryProvider('audit-kms');
    const options = (encryption: OpenOptions['encryption']): OpenOptions =>
      withEngineHooks({ keySize: KEY_SIZE, encryption, shards: 1, syncIntervalMs: 0, autoCompact: false, maxFileBytes: 65536 }, { now });
    try {
      let db = await VarMap.open(dir, options({ key }));
      for (let index = 0; index < 200; index++) await db.put(keyOf(index), encoder.encode(`value ${index} `.repeat(20)));
      await db.addKeySlot({ passphrase, scryptLogN: 10 }, { label: 'recovery' });
      await db.addKeySlot({ provider: kms.provider }, { label: 'hsm' });
      await db.close();
      clock += 1000;
      db = await VarMap.open(dir, options({ passphrase }));
      await db.changeKey({ passphrase: `${passphrase} v2`, scryptLogN: 10 });
      await db.rotateDataKey();
      const { shreddedKeyIds } = await db.compact({ reencrypt: true });
      expect(shreddedKeyIds).toEqual([1]);
      expect((await db.verify()).ok).toBe(true);
      await db.removeKeySlot('default', { rotateKek: true, credentials: [{ key }, { provider: kms.provider }] });
      await db.close();
      await expect(VarMap.open(dir, options({ key: nextKey }))).rejects.toThrow(ArmdbError);
      db = await VarMap.open(dir, options({ provider: kms.provider }));
      await db.close();
      // A flipped byte in a sealed page: the read that meets it is an integrity failure.
      const shardDir = path.join(dir, 'shard-000');
      const dataFile = fs
        .readdirSync(shardDir)
        .filter((name) => name.endsWith('.data'))
        .sort()[0]!;
      const bytes = fs.readFileSync(path.join(shardDir, dataFile));
      bytes[100]! ^= 0x01;
      fs.writeFileSync(path.join(shardDir, dataFile), bytes);
      db = await VarMap.open(dir, options({ provider: kms.provider }));
      let failedReads = 0;
      for (let index = 0; index < 200; index++) {
        try {
          db.get(keyOf(index));
        } catch (error) {
          expect((error as ArmdbError).code).toBe('ARMDB_INTEGRITY');
          failedReads++;
        }
      }
      expect(failedReads).toBeGreaterThan(0);
      await db.close();
    } finally {
      unsubscribe('armdb:audit', listener);
    }

    const names = events.map((event) => event['event']);
    for (const name of [
      'open',
      'open-failed',
      'add-key-slot',
      'remove-key-slot',
      'change-key',
      'rotate-data-key',
      'shred',
      'verify',
      'integrity-failure',
    ]) {
      expect(names, name).toContain(name);
    }
    const databaseId = events[0]!['databaseId'];
    expect(databaseId).toMatch(/^[0-9a-f]{32}$/);
    for (const event of events) {
      expect(event['databaseId'], String(event['event'])).toBe(databaseId);
      expect(typeof event['timestampMs']).toBe('number');
      expect(event['timestampMs']).toBeGreaterThanOrEqual(clockStart);
      expect(event['directory']).toBe(path.resolve(dir));
    }
    const opens = events.filter((event) => event['event'] === 'open');
    expect(opens.map((event) => event['slot'])).toEqual(['default', 'recovery', 'hsm', 'hsm']);
    expect(opens.every((event) => typeof event['epoch'] === 'number' && (event['epoch'] as number) >= 1)).toBe(true);
    expect(events.find((event) => event['event'] === 'open-failed')).toMatchObject({ code: 'ARMDB_WRONG_KEY' });
    expect(events.find((event) => event['event'] === 'shred')).toMatchObject({ keyIds: [1] });
    expect(events.find((event) => event['event'] === 'change-key')).toMatchObject({ label: 'recovery', kind: 'passphrase' });
    expect(events.find((event) => event['event'] === 'remove-key-slot')).toMatchObject({ label: 'default', kekRotated: true });
    expect(events.find((event) => event['event'] === 'integrity-failure')).toMatchObject({ shard: 0 });

    // Every secret: the keys, the passphrases, the provider's root key and every KEK it was handed.
    const secrets = [key, nextKey, encoder.encode(passphrase), encoder.encode(`${passphrase} v2`), kms.rootKey, ...kms.wrappedKeks];
    expect(kms.wrappedKeks.length).toBeGreaterThanOrEqual(2);
    const rendered = events.map((event) => `${JSON.stringify(event)}\n${inspect(event, { depth: Infinity })}`).join('\n');
    for (const secret of secrets) {
      for (const encoded of encodings(secret)) expect(rendered.includes(encoded), `a secret as ${encoded.slice(0, 6)}…`).toBe(false);
    }
    expect(rendered).not.toContain('audit canary');
  });
});
