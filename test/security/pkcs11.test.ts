/**
 * `armdb/pkcs11` against a real SoftHSM2 token (docs/security-model.md §Key providers): a token
 * initialised for this run in a temporary directory (SOFTHSM2_CONF points at a temporary config), an
 * AES-256 root key generated inside it (CKA_TOKEN, not extractable), a store opened through it, a
 * provider slot beside a recovery passphrase slot, and the token key destroyed → ARMDB_WRONG_KEY.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { type OpenOptions, VarMap } from '../../src/index.js';
import { pkcs11Provider } from '../../src/pkcs11/index.js';
import { expectRejectCode } from '../helpers/errors.js';
import { storeTest as it } from '../helpers/store.js';

const LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
const USER_PIN = '4711-test-pin';
const KEY_LABEL = 'armdb-root';
const available = fs.existsSync(LIBRARY);
const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof import('pkcs11js');

const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`key-${String(index).padStart(12, '0')}`);
const optionsOf = (encryption: OpenOptions['encryption']): OpenOptions => ({
  keySize: 16,
  encryption,
  shards: 1,
  syncIntervalMs: 0,
  autoCompact: false,
});

let tokenDirectory = '';
let slotId = 0;
const admin = new pkcs11js.PKCS11();

/** A session logged in as the user, on the test token, for generating and destroying the root key. */
function withSession<T>(use: (session: Buffer) => T): T {
  const slotHandle = admin.C_GetSlotList(true).find((handle) => handle.readBigUInt64LE(0) === BigInt(slotId))!;
  const session = admin.C_OpenSession(slotHandle, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      admin.C_Login(session, pkcs11js.CKU_USER, USER_PIN);
    } catch (error) {
      if ((error as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw error;
    }
    return use(session);
  } finally {
    admin.C_CloseSession(session);
  }
}

function generateRootKey(label: string): void {
  withSession((session) =>
    admin.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]),
  );
}

function destroyRootKey(label: string): void {
  withSession((session) => {
    admin.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
    const found = admin.C_FindObjects(session, 10);
    admin.C_FindObjectsFinal(session);
    expect(found).toHaveLength(1);
    admin.C_DestroyObject(session, found[0]!);
  });
}

const providerFor = (label = KEY_LABEL) =>
  pkcs11Provider({ library: LIBRARY, slot: slotId, pin: encoder.encode(USER_PIN), keyLabel: label });

describe.runIf(available)('armdb/pkcs11 with SoftHSM2', () => {
  beforeAll(() => {
    tokenDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-softhsm-'));
    fs.mkdirSync(path.join(tokenDirectory, 'tokens'));
    const config = path.join(tokenDirectory, 'softhsm2.conf');
    fs.writeFileSync(
      config,
      `directories.tokendir = ${path.join(tokenDirectory, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
    );
    // Before the module is loaded in this process: SoftHSM2 reads its configuration at C_Initialize.
    process.env['SOFTHSM2_CONF'] = config;
    const output = execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', 'armdb-test', '--so-pin', '0000-so-pin', '--pin', USER_PIN],
      { env: { ...process.env, SOFTHSM2_CONF: config }, encoding: 'utf8' },
    );
    slotId = Number(/reassigned to slot (\d+)/.exec(output)![1]);
    admin.load(LIBRARY);
    admin.C_Initialize();
    generateRootKey(KEY_LABEL);
  });

  afterAll(() => {
    admin.C_Finalize();
    fs.rmSync(tokenDirectory, { recursive: true, force: true });
  });

  it('a store opened through the token; the KEK is sealed inside it; a recovery passphrase slot beside it', async ({ tempDir }) => {
    const dir = tempDir();
    const provider = providerFor();
    try {
      const db = await VarMap.open(dir, optionsOf({ provider }));
      for (let index = 0; index < 50; index++) await db.put(keyOf(index), encoder.encode(`value ${index}`));
      await db.addKeySlot({ passphrase: 'recovery words', scryptLogN: 10 }, { label: 'recovery' });
      expect(db.keySlots().map((slot) => [slot.label, slot.kind, slot.providerId])).toEqual([
        ['default', 'provider', `pkcs11:${KEY_LABEL}`],
        ['recovery', 'passphrase', undefined],
      ]);
      await db.close();
      const reopened = await VarMap.open(dir, optionsOf({ provider }));
      expect(reopened.get(keyOf(49))).toEqual(encoder.encode('value 49'));
      await reopened.close();
    } finally {
      provider.close();
    }
    const recovered = await VarMap.open(dir, optionsOf({ passphrase: 'recovery words' }));
    expect(recovered.size).toBe(50);
    await recovered.close();
  });

  it('a wrong PIN, and another token key of the same label, are ARMDB_WRONG_KEY with the PKCS#11 error as cause', async ({ tempDir }) => {
    const dir = tempDir();
    const provider = providerFor();
    const db = await VarMap.open(dir, optionsOf({ provider }));
    await db.put(keyOf(1), encoder.encode('one'));
    await db.close();
    provider.close();
    const wrongPin = pkcs11Provider({ library: LIBRARY, slot: slotId, pin: encoder.encode('0000'), keyLabel: KEY_LABEL });
    try {
      const error = await expectRejectCode(VarMap.open(dir, optionsOf({ provider: wrongPin })), 'ARMDB_WRONG_KEY');
      expect(error.cause).toBeInstanceOf(Error);
    } finally {
      wrongPin.close();
    }
  });

  it('the token key destroyed → ARMDB_WRONG_KEY; the recovery passphrase slot still opens the store', async ({ tempDir }) => {
    const dir = tempDir();
    const label = 'armdb-root-to-destroy';
    generateRootKey(label);
    const provider = providerFor(label);
    try {
      const db = await VarMap.open(dir, optionsOf({ provider }));
      await db.put(keyOf(7), encoder.encode('seven'));
      await db.addKeySlot({ passphrase: 'recovery words', scryptLogN: 10 }, { label: 'recovery' });
      await db.close();
      destroyRootKey(label);
      const error = await expectRejectCode(VarMap.open(dir, optionsOf({ provider })), 'ARMDB_WRONG_KEY');
      expect(String((error.cause as Error).message)).toContain('no secret key labelled');
    } finally {
      provider.close();
    }
    const recovered = await VarMap.open(dir, optionsOf({ passphrase: 'recovery words' }));
    expect(recovered.get(keyOf(7))).toEqual(encoder.encode('seven'));
    await recovered.close();
  });

  it('options are checked at the boundary; the PIN never shows in inspect output', () => {
    expect(() => pkcs11Provider({ library: LIBRARY, slot: slotId, pin: USER_PIN as unknown as Uint8Array, keyLabel: KEY_LABEL })).toThrow(
      TypeError,
    );
    expect(() => pkcs11Provider({ library: LIBRARY, slot: -1, pin: encoder.encode(USER_PIN), keyLabel: KEY_LABEL })).toThrow(TypeError);
    const provider = providerFor();
    expect(JSON.stringify(provider)).not.toContain(USER_PIN);
    expect(String(Object.values(provider))).not.toContain(USER_PIN);
    expect(inspect(provider, { showHidden: true, depth: 5 })).not.toContain(USER_PIN);
    provider.close();
  });
});
