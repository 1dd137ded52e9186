/**
 * Key providers (docs/security-model.md §Key providers): `encryption: { provider }` stores only the
 * provider's blob; a provider that throws or returns a wrong key fails open with ARMDB_WRONG_KEY (its
 * error as `cause`), one that hangs with ARMDB_PROVIDER_TIMEOUT after `providerTimeoutMs`; a recovery
 * passphrase slot opens the store when the provider is gone.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { decodeKeyring } from '../../src/format/keyring.js';
import { ArmdbError, type KeyProvider, type OpenOptions, VarMap } from '../../src/index.js';
import { expectRejectCode } from '../helpers/errors.js';
import { memoryProvider, withUnwrap } from '../helpers/providers.js';
import { storeTest as it, trackStore } from '../helpers/store.js';

const KEY_SIZE = 16;
const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`key-${String(index).padStart(12, '0')}`);

function optionsOf(encryption: OpenOptions['encryption'], extra: Partial<OpenOptions> = {}): OpenOptions {
  return { keySize: KEY_SIZE, encryption, shards: 1, syncIntervalMs: 0, autoCompact: false, ...extra };
}

async function storeUnder(dir: string, provider: KeyProvider, count = 10): Promise<void> {
  const db = await VarMap.open(dir, optionsOf({ provider }));
  for (let index = 0; index < count; index++) await db.put(keyOf(index), encoder.encode(`value ${index}`));
  await db.addKeySlot({ passphrase: 'recovery words', scryptLogN: 10 }, { label: 'recovery' });
  await db.close();
}

const never = (): Promise<Uint8Array> => new Promise<Uint8Array>(() => undefined);

describe('key providers', () => {
  it('the KEYRING holds the provider id and its blob, never the KEK; the provider opens the store, a recovery slot too', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const kms = memoryProvider('kms:alias/armdb');
    await storeUnder(dir, kms.provider);
    const keyring = fs.readFileSync(path.join(dir, 'KEYRING'));
    expect(decodeKeyring(keyring).slots.map((slot) => [slot.label, slot.kind, slot.providerId])).toEqual([
      ['default', 3, 'kms:alias/armdb'],
      ['recovery', 2, ''],
    ]);
    for (const kek of kms.wrappedKeks) expect(keyring.includes(Buffer.from(kek))).toBe(false);
    const db = trackStore(dir, await VarMap.open(dir, optionsOf({ provider: kms.provider })));
    expect(db.get(keyOf(3))).toEqual(encoder.encode('value 3'));
    expect(db.keySlots()[0]).toEqual({
      label: 'default',
      kind: 'provider',
      createdAtMs: expect.any(Number),
      providerId: 'kms:alias/armdb',
    });
    await db.close();
    const recovered = await VarMap.open(dir, optionsOf({ passphrase: 'recovery words' }));
    expect(recovered.get(keyOf(9))).toEqual(encoder.encode('value 9'));
    await recovered.close();
  });

  it('unwrap throws → ARMDB_WRONG_KEY with the provider error as cause; the store is unharmed', async ({ tempDir }) => {
    const dir = tempDir();
    const kms = memoryProvider();
    await storeUnder(dir, kms.provider);
    const denied = new Error('AccessDeniedException: not authorized to kms:Decrypt');
    const error = await expectRejectCode(
      VarMap.open(dir, optionsOf({ provider: withUnwrap(kms.provider, () => Promise.reject(denied)) })),
      'ARMDB_WRONG_KEY',
    );
    expect(error.cause).toBe(denied);
    // A provider of another id has no slot here.
    await expectRejectCode(VarMap.open(dir, optionsOf({ provider: { ...kms.provider, id: 'another-kms' } })), 'ARMDB_WRONG_KEY');
    const db = await VarMap.open(dir, optionsOf({ provider: kms.provider }));
    expect(db.size).toBe(10);
    await db.close();
  });

  it('unwrap returns a wrong key (random bytes, another length, not bytes) → ARMDB_WRONG_KEY, before anything is decrypted', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const kms = memoryProvider();
    await storeUnder(dir, kms.provider);
    for (const answer of [new Uint8Array(randomBytes(64)), new Uint8Array(64), new Uint8Array(randomBytes(32)), 'a string']) {
      const liar = withUnwrap(kms.provider, async () => answer as Uint8Array);
      await expectRejectCode(VarMap.open(dir, optionsOf({ provider: liar })), 'ARMDB_WRONG_KEY');
    }
    const db = await VarMap.open(dir, optionsOf({ provider: kms.provider }));
    expect(db.size).toBe(10);
    await db.close();
  });

  it('a provider that never answers → ARMDB_PROVIDER_TIMEOUT after providerTimeoutMs; the lock is released; addKeySlot too', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    const kms = memoryProvider();
    await storeUnder(dir, kms.provider);
    const hanging = withUnwrap(kms.provider, never);
    await expectRejectCode(VarMap.open(dir, optionsOf({ provider: hanging }, { providerTimeoutMs: 50 })), 'ARMDB_PROVIDER_TIMEOUT');
    // The lock went with the failed open: the store opens at once.
    const db = trackStore(dir, await VarMap.open(dir, optionsOf({ passphrase: 'recovery words' })));
    const before = fs.readFileSync(path.join(dir, 'KEYRING'));
    const stuck: KeyProvider = { id: 'stuck', wrap: never, unwrap: never };
    await db.close();
    const withTimeout = trackStore(dir, await VarMap.open(dir, optionsOf({ passphrase: 'recovery words' }, { providerTimeoutMs: 50 })));
    await expectRejectCode(withTimeout.addKeySlot({ provider: stuck }, { label: 'stuck' }), 'ARMDB_PROVIDER_TIMEOUT');
    expect(fs.readFileSync(path.join(dir, 'KEYRING')).equals(before)).toBe(true);
    expect(withTimeout.keySlots().map((slot) => slot.label)).toEqual(['default', 'recovery']);
    await withTimeout.close();
  });

  it('a malformed provider is a TypeError at the boundary', async ({ tempDir }) => {
    const dir = tempDir();
    for (const provider of [null, {}, { id: 1, wrap: never, unwrap: never }, { id: 'x', wrap: never }]) {
      await expect(VarMap.open(dir, optionsOf({ provider } as unknown as OpenOptions['encryption']))).rejects.toThrow(TypeError);
    }
    await expect(VarMap.open(dir, optionsOf({ provider: { id: '', wrap: never, unwrap: never } }))).rejects.toThrow(RangeError);
    expect(fs.existsSync(path.join(dir, 'KEYRING'))).toBe(false);
    const error = await VarMap.open(dir, optionsOf({ provider: { id: 'x', wrap: never, unwrap: never } }, { providerTimeoutMs: 20 })).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ArmdbError);
    expect((error as ArmdbError).code).toBe('ARMDB_PROVIDER_TIMEOUT');
  });
});
