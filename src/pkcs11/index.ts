/**
 * `armdb/pkcs11`: a key provider (docs/security-model.md §Key providers) whose root key is an AES-256
 * key inside a PKCS#11 token (an HSM, a smart card, SoftHSM2). The KEK is encrypted and decrypted
 * **inside the token** with CKM_AES_GCM (PKCS#11 v2.40 §2.12.6); the root key should be generated there
 * non-extractable and never leaves it. The binding, `pkcs11js`, is an optional peer dependency loaded
 * when a provider is made (an Error naming it when it is not installed).
 *
 * @example
 * ```ts
 * import { VarMap } from 'armdb';
 * import { pkcs11Provider } from 'armdb/pkcs11';
 *
 * const provider = pkcs11Provider({
 *   library: '/usr/lib/softhsm/libsofthsm2.so',
 *   slot: 0x2a51c3b1,                        // the slot id the library reports
 *   pin: new TextEncoder().encode(pinFromVault),
 *   keyLabel: 'armdb-root',
 * });
 * const db = await VarMap.open(dir, { keySize: 16, encryption: { provider } });
 * ```
 *
 * @module armdb/pkcs11
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import type { KeyProvider } from '../crypto/keys.js';

/** Options of {@link pkcs11Provider}. */
export interface Pkcs11ProviderOptions {
  /** Path of the token's PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  readonly library: string;
  /** The slot id the module reports for the token (`softhsm2-util --show-slots`, `pkcs11-tool -L`). */
  readonly slot: number;
  /**
   * The user PIN as UTF-8 bytes (copied; zero yours afterwards, and call `close()` to zero the copy).
   * PKCS#11 bindings take the PIN as a string: it is turned into one only for the `C_Login` call.
   */
  readonly pin: Uint8Array;
  /** `CKA_LABEL` of the AES-256 secret key in the token (`CKA_ENCRYPT` and `CKA_DECRYPT` true). */
  readonly keyLabel: string;
  /** The provider id stored in the KEYRING; default `pkcs11:<keyLabel>`. Keep it stable. */
  readonly id?: string;
}

/** A {@link KeyProvider} with a `close()` that logs out and zeroes the PIN. */
export interface Pkcs11Provider extends KeyProvider {
  /** Ends the session, finalizes the module if this provider initialized it, zeroes the PIN copy. */
  close(): void;
}

type Pkcs11Module = typeof import('pkcs11js');
type Pkcs11 = InstanceType<Pkcs11Module['PKCS11']>;
type Handle = Buffer;

/** Blob layout: u8 format (1) ‖ 12-byte IV ‖ ciphertext ‖ 16-byte GCM tag. */
const BLOB_FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Binds the ciphertext to its use: a blob of another application under the same key does not decrypt here. */
const AAD = Buffer.from('armdb/v2 pkcs11 kek', 'ascii');

let binding: Pkcs11Module | undefined;

function loadBinding(): Pkcs11Module {
  if (binding !== undefined) return binding;
  try {
    binding = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
  } catch (cause) {
    throw new Error('armdb/pkcs11 needs the optional peer dependency pkcs11js: npm install pkcs11js', { cause });
  }
  return binding;
}

function checkOptions(options: Pkcs11ProviderOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected { library, slot, pin, keyLabel }');
  if (typeof options.library !== 'string' || options.library.length === 0) throw new TypeError('"library" expected a path');
  if (!Number.isSafeInteger(options.slot) || options.slot < 0) throw new TypeError(`"slot" expected a slot id (integer ≥ 0)`);
  if (!(options.pin instanceof Uint8Array)) throw new TypeError('"pin" expected Uint8Array (UTF-8 bytes)');
  if (typeof options.keyLabel !== 'string' || options.keyLabel.length === 0) throw new TypeError('"keyLabel" expected a non-empty string');
}

/**
 * A key provider over a PKCS#11 token. Each `wrap`/`unwrap` opens a session on `slot`, logs in with
 * the PIN, finds the secret key labelled `keyLabel`, and encrypts or decrypts the 64-byte KEK with
 * CKM_AES_GCM in the token. A missing key, a wrong PIN or a tampered blob throw, which `open` reports
 * as `ARMDB_WRONG_KEY` with the PKCS#11 error as `cause`.
 */
export function pkcs11Provider(options: Pkcs11ProviderOptions): Pkcs11Provider {
  checkOptions(options);
  // Loaded here, not at the first unwrap: a missing binding is a configuration error, not a wrong key.
  loadBinding();
  const pin = new Uint8Array(options.pin);
  const { library, slot, keyLabel } = options;
  const id = options.id ?? `pkcs11:${keyLabel}`;
  let module: Pkcs11 | undefined;
  let initializedHere = false;

  const open = (): { pkcs11: Pkcs11; session: Handle; key: Handle; constants: Pkcs11Module } => {
    const constants = loadBinding();
    if (module === undefined) {
      const instance = new constants.PKCS11();
      instance.load(library);
      try {
        instance.C_Initialize();
        initializedHere = true;
      } catch (error) {
        // Another user of the same module in this process initialized it already.
        if ((error as { code?: number }).code !== constants.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw error;
      }
      module = instance;
    }
    const pkcs11 = module;
    const slotHandle = pkcs11.C_GetSlotList(true).find((handle) => slotIdOf(handle) === BigInt(slot));
    if (slotHandle === undefined) throw new Error(`PKCS#11: no token in slot ${slot}`);
    const session = pkcs11.C_OpenSession(slotHandle, constants.CKF_SERIAL_SESSION | constants.CKF_RW_SESSION);
    try {
      try {
        pkcs11.C_Login(session, constants.CKU_USER, Buffer.from(pin).toString('utf8'));
      } catch (error) {
        if ((error as { code?: number }).code !== constants.CKR_USER_ALREADY_LOGGED_IN) throw error;
      }
      pkcs11.C_FindObjectsInit(session, [
        { type: constants.CKA_CLASS, value: constants.CKO_SECRET_KEY },
        { type: constants.CKA_LABEL, value: keyLabel },
      ]);
      const found = pkcs11.C_FindObjects(session, 2);
      pkcs11.C_FindObjectsFinal(session);
      if (found.length !== 1)
        throw new Error(
          `PKCS#11: ${found.length === 0 ? 'no' : 'more than one'} secret key labelled ${JSON.stringify(keyLabel)} in slot ${slot}`,
        );
      return { pkcs11, session, key: found[0]!, constants };
    } catch (error) {
      pkcs11.C_CloseSession(session);
      throw error;
    }
  };

  const gcm = (constants: Pkcs11Module, iv: Buffer) => ({
    mechanism: constants.CKM_AES_GCM,
    parameter: { type: constants.CK_PARAMS_AES_GCM, iv, ivBits: IV_BYTES * 8, aad: AAD, tagBits: TAG_BYTES * 8 },
  });

  const provider: Pkcs11Provider = {
    id,
    async wrap(kek: Uint8Array): Promise<Uint8Array> {
      const { pkcs11, session, key, constants } = open();
      const plaintext = Buffer.from(kek);
      try {
        const iv = randomBytes(IV_BYTES);
        pkcs11.C_EncryptInit(session, gcm(constants, iv), key);
        const sealed = await pkcs11.C_EncryptAsync(session, plaintext, Buffer.alloc(kek.length + TAG_BYTES + 16));
        return new Uint8Array(Buffer.concat([Buffer.from([BLOB_FORMAT]), iv, sealed]));
      } finally {
        plaintext.fill(0);
        pkcs11.C_CloseSession(session);
      }
    },
    async unwrap(blob: Uint8Array): Promise<Uint8Array> {
      if (blob.length <= 1 + IV_BYTES + TAG_BYTES || blob[0] !== BLOB_FORMAT) throw new Error('PKCS#11: not a blob of armdb/pkcs11');
      const { pkcs11, session, key, constants } = open();
      const out = Buffer.alloc(blob.length);
      try {
        const iv = Buffer.from(blob.subarray(1, 1 + IV_BYTES));
        pkcs11.C_DecryptInit(session, gcm(constants, iv), key);
        const plaintext = await pkcs11.C_DecryptAsync(session, Buffer.from(blob.subarray(1 + IV_BYTES)), out);
        return new Uint8Array(plaintext);
      } finally {
        out.fill(0);
        pkcs11.C_CloseSession(session);
      }
    },
    close(): void {
      pin.fill(0);
      if (module !== undefined && initializedHere) module.C_Finalize();
      module = undefined;
    },
  };
  Object.defineProperty(provider, inspect.custom, { value: () => `Pkcs11Provider { id: ${JSON.stringify(id)}, slot: ${slot} }` });
  return provider;
}

/** CK_SLOT_ID from pkcs11js's handle (a native-endian unsigned long). */
function slotIdOf(handle: Buffer): bigint {
  return handle.length === 8 ? handle.readBigUInt64LE(0) : BigInt(handle.readUInt32LE(0));
}
