/**
 * The key hierarchy (docs/format.md §8, docs/security-model.md):
 *
 * ```
 * caller's key ──HKDF──┐
 *                      ├─> KEK (wrap key ‖ MAC key) ──AES-GCM wrap──> meta key, data keys (KEYRING)
 * passphrase ──scrypt──┘
 * data key ──HKDF(file salt, file binding)──> per-file encryption and MAC keys
 * meta key ──HKDF──> manifest MAC key
 * ```
 * The meta key is replaced with every KEYRING rewrite (docs/security-model.md §Key lifecycle), so a
 * copy of an old KEYRING and the credential it was sealed under cannot sign a MANIFEST of today.
 * Keys live in Uint8Arrays that {@link KeySet.destroy} zeroes; no object here prints its bytes.
 */
import { randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { inspect } from 'node:util';
import { armdbError, integrityError } from '../errors.js';
import { ByteWriter, copyBytes } from '../format/bytes.js';
import { DATABASE_ID_BYTES, KEY_BYTES, SALT_BYTES } from '../format/constants.js';
import {
  checkScryptParameters,
  decodeKeyring,
  encodeKeyring,
  KekKind,
  verifyKeyringMac,
  type Keyring,
  type ScryptParameters,
} from '../format/keyring.js';
import { nodeProvider } from './node-provider.js';
import type { CryptoProvider } from './provider.js';

const encoder = new TextEncoder();
const KEK_INFO = encoder.encode('armdb/v1 kek');
const WRAP_LABEL = encoder.encode('armdb/v1 wrap');
const MANIFEST_INFO = encoder.encode('armdb/v1 manifest');

/** The default scrypt cost (SPEC §5.2): N = 2^17, r = 8, p = 1 — 128 MiB and ~0.3 s here. */
export const DEFAULT_SCRYPT: ScryptParameters = Object.freeze({ logN: 17, r: 8, p: 1 });

/**
 * What the caller gave to open the keyring. Passphrases are UTF-8 bytes from here on. `scrypt` is the
 * cost the caller asked for (`scryptLogN`), or undefined: a rewrite then keeps the stored cost, and a
 * new store gets {@link DEFAULT_SCRYPT} (docs/security-model.md §Key lifecycle).
 */
export type Credential =
  | { readonly kind: 'key'; readonly key: Uint8Array }
  | { readonly kind: 'passphrase'; readonly passphrase: Uint8Array; readonly scrypt?: ScryptParameters | undefined };

function redact(this: unknown): string {
  return '[armdb credential: redacted]';
}

/** Wraps caller secrets so that inspect/JSON/String never show them. */
export function makeCredential(credential: Credential): Credential {
  const copy =
    credential.kind === 'key'
      ? { kind: 'key' as const, key: copyBytes(credential.key) }
      : { kind: 'passphrase' as const, passphrase: copyBytes(credential.passphrase), scrypt: credential.scrypt };
  Object.defineProperties(copy, {
    [inspect.custom]: { value: redact },
    toJSON: { value: redact },
    toString: { value: redact },
  });
  return copy;
}

export function wipeCredential(credential: Credential): void {
  if (credential.kind === 'key') credential.key.fill(0);
  else credential.passphrase.fill(0);
}

interface Kek {
  readonly wrapKey: Uint8Array;
  readonly macKey: Uint8Array;
}

function scrypt(passphrase: Uint8Array, salt: Uint8Array, parameters: ScryptParameters): Promise<Uint8Array> {
  const N = 2 ** parameters.logN;
  const maxmem = 128 * parameters.r * N + 2 ** 20 + 128 * parameters.r * parameters.p;
  return new Promise((resolve, reject) => {
    scryptCallback(passphrase, salt, 2 * KEY_BYTES, { N, r: parameters.r, p: parameters.p, maxmem }, (error, derived) => {
      if (error) reject(error);
      else resolve(new Uint8Array(derived.buffer, derived.byteOffset, derived.length));
    });
  });
}

/** Derives the KEK. scrypt parameters are bounded before the KDF runs (a doctored keyring cannot hang open). */
async function deriveKek(
  provider: CryptoProvider,
  credential: Credential,
  kdfSalt: Uint8Array,
  scryptParameters: ScryptParameters,
): Promise<Kek> {
  let material: Uint8Array;
  if (credential.kind === 'key') {
    material = provider.hkdf(credential.key, kdfSalt, KEK_INFO, 2 * KEY_BYTES);
  } else {
    checkScryptParameters(scryptParameters);
    material = await scrypt(credential.passphrase, kdfSalt, scryptParameters);
  }
  const kek = { wrapKey: material.slice(0, KEY_BYTES), macKey: material.slice(KEY_BYTES) };
  material.fill(0);
  return kek;
}

function wipeKek(kek: Kek): void {
  kek.wrapKey.fill(0);
  kek.macKey.fill(0);
}

function wrapAad(databaseId: Uint8Array, keyId: number): Uint8Array {
  return new ByteWriter(WRAP_LABEL.length + DATABASE_ID_BYTES + 4).raw(WRAP_LABEL).raw(databaseId, DATABASE_ID_BYTES).u32(keyId).finish();
}

function wrapKey(provider: CryptoProvider, kek: Kek, databaseId: Uint8Array, keyId: number, key: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const { ciphertext, tag } = provider.aead(kek.wrapKey).seal(nonce, wrapAad(databaseId, keyId), key);
  return new ByteWriter(12 + KEY_BYTES + 16).raw(nonce).raw(ciphertext, KEY_BYTES).raw(tag, 16).finish();
}

function unwrapKey(provider: CryptoProvider, kek: Kek, databaseId: Uint8Array, keyId: number, wrapped: Uint8Array): Uint8Array {
  const nonce = wrapped.subarray(0, 12);
  const ciphertext = wrapped.subarray(12, 12 + KEY_BYTES);
  const tag = wrapped.subarray(12 + KEY_BYTES);
  return provider.aead(kek.wrapKey).open(nonce, wrapAad(databaseId, keyId), ciphertext, tag);
}

/** The unwrapped keys of an open store. */
export class KeySet {
  readonly databaseId: Uint8Array;
  activeKeyId: number;
  #metaKey: Uint8Array;
  readonly #dataKeys: Map<number, Uint8Array>;

  constructor(databaseId: Uint8Array, metaKey: Uint8Array, dataKeys: Map<number, Uint8Array>, activeKeyId: number) {
    this.databaseId = databaseId;
    this.#metaKey = metaKey;
    this.#dataKeys = dataKeys;
    this.activeKeyId = activeKeyId;
  }

  /** The data key of `keyId`; ARMDB_INTEGRITY if the keyring has no such key (shredded or forged id). */
  dataKey(keyId: number): Uint8Array {
    const key = this.#dataKeys.get(keyId);
    if (key === undefined) throw integrityError(`data key ${keyId} is not in the keyring`);
    return key;
  }

  get keyIds(): number[] {
    return [...this.#dataKeys.keys()].sort((left, right) => left - right);
  }

  /** The MAC key of the manifest (docs/format.md §2.4). */
  manifestMacKey(provider: CryptoProvider): Uint8Array {
    return deriveManifestMacKey(provider, this.#metaKey, this.databaseId);
  }

  /**
   * Makes `metaKey` (from {@link createMetaKey}) the meta key and zeroes the previous one: call it
   * only once a KEYRING wrapping `metaKey` is durable. The set takes ownership of the bytes.
   */
  replaceMetaKey(metaKey: Uint8Array): void {
    if (metaKey.length !== KEY_BYTES) throw new RangeError(`a meta key has ${KEY_BYTES} bytes`);
    this.#metaKey.fill(0);
    this.#metaKey = metaKey;
  }

  /** Adds a fresh random data key and returns its id (not yet active, not yet persisted). */
  addDataKey(): number {
    const keyId = Math.max(0, ...this.#dataKeys.keys()) + 1;
    this.#dataKeys.set(keyId, new Uint8Array(randomBytes(KEY_BYTES)));
    return keyId;
  }

  /** Forgets a data key (crypto-shredding once the keyring without it is persisted). */
  removeDataKey(keyId: number): void {
    if (keyId === this.activeKeyId) throw new Error('the active data key cannot be removed');
    this.#dataKeys.get(keyId)?.fill(0);
    this.#dataKeys.delete(keyId);
  }

  /** @internal Used when re-wrapping. */
  entries(): { metaKey: Uint8Array; dataKeys: ReadonlyMap<number, Uint8Array> } {
    return { metaKey: this.#metaKey, dataKeys: this.#dataKeys };
  }

  destroy(): void {
    this.#metaKey.fill(0);
    for (const key of this.#dataKeys.values()) key.fill(0);
  }

  [inspect.custom](): string {
    return `KeySet { keyIds: [${this.keyIds.join(', ')}], activeKeyId: ${this.activeKeyId} }`;
  }

  toJSON(): object {
    return { keyIds: this.keyIds, activeKeyId: this.activeKeyId };
  }
}

/** Choices of {@link sealKeyring} beyond the keys and the credential. */
export interface SealOptions {
  /**
   * The active key id to write; defaults to the keys' own. Rotation passes the new id so that it
   * becomes active in memory only once the KEYRING naming it is durable.
   */
  readonly activeKeyId?: number;
  /**
   * scrypt cost for a passphrase credential: the stored cost on a rewrite (a rewrite never lowers it
   * silently), else the credential's, else {@link DEFAULT_SCRYPT}.
   */
  readonly scrypt?: ScryptParameters | undefined;
  /** The meta key to wrap instead of the set's own: the next one, while the meta key rotates. */
  readonly metaKey?: Uint8Array;
}

/** Encodes the keyring of `keys` wrapped under a KEK derived from `credential` with a fresh KDF salt. */
export async function sealKeyring(
  keys: KeySet,
  credential: Credential,
  provider: CryptoProvider = nodeProvider,
  options: SealOptions = {},
): Promise<Uint8Array> {
  const activeKeyId = options.activeKeyId ?? keys.activeKeyId;
  const kdfSalt = new Uint8Array(randomBytes(SALT_BYTES));
  const scryptParameters =
    credential.kind === 'passphrase' ? (options.scrypt ?? credential.scrypt ?? DEFAULT_SCRYPT) : { logN: 0, r: 0, p: 0 };
  const kek = await deriveKek(provider, credential, kdfSalt, scryptParameters);
  try {
    const { dataKeys } = keys.entries();
    const metaKey = options.metaKey ?? keys.entries().metaKey;
    const keyring: Keyring = {
      kekKind: credential.kind === 'key' ? KekKind.rawKey : KekKind.passphrase,
      scrypt: scryptParameters,
      kdfSalt,
      databaseId: keys.databaseId,
      activeKeyId,
      wrappedMetaKey: wrapKey(provider, kek, keys.databaseId, 0, metaKey),
      dataKeys: [...dataKeys.entries()]
        .sort(([left], [right]) => left - right)
        .map(([keyId, key]) => ({ keyId, wrapped: wrapKey(provider, kek, keys.databaseId, keyId, key) })),
    };
    return encodeKeyring(keyring, (body) => provider.hmac(kek.macKey, body));
  } finally {
    wipeKek(kek);
  }
}

/** A fresh random meta key (32 bytes). */
export function createMetaKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/** manifest MAC key = HKDF-SHA256(meta key, salt = database id, info = "armdb/v1 manifest") (docs/format.md §2.4). */
export function deriveManifestMacKey(provider: CryptoProvider, metaKey: Uint8Array, databaseId: Uint8Array): Uint8Array {
  return provider.hkdf(metaKey, databaseId, MANIFEST_INFO, KEY_BYTES);
}

/** Creates the keys of a new database: random database id, meta key and first data key (id 1). */
export function createKeySet(): KeySet {
  const databaseId = new Uint8Array(randomBytes(DATABASE_ID_BYTES));
  const metaKey = new Uint8Array(randomBytes(KEY_BYTES));
  return new KeySet(databaseId, metaKey, new Map([[1, new Uint8Array(randomBytes(KEY_BYTES))]]), 1);
}

/**
 * Opens a keyring: checks framing and bounds, derives the KEK, verifies the MAC (a mismatch is
 * ARMDB_WRONG_KEY, raised before anything else is decrypted), then unwraps every key.
 */
export async function openKeyring(bytes: Uint8Array, credential: Credential, provider: CryptoProvider = nodeProvider): Promise<KeySet> {
  const keyring = decodeKeyring(bytes);
  const expectedKind = credential.kind === 'key' ? KekKind.rawKey : KekKind.passphrase;
  if (keyring.kekKind !== expectedKind) {
    const stored = keyring.kekKind === KekKind.rawKey ? 'a raw key' : 'a passphrase';
    throw armdbError('ARMDB_WRONG_KEY', `the store is protected by ${stored}; a ${credential.kind} was given`);
  }
  const kek = await deriveKek(provider, credential, keyring.kdfSalt, keyring.scrypt);
  try {
    if (!verifyKeyringMac(bytes, (body) => provider.hmac(kek.macKey, body))) {
      throw armdbError('ARMDB_WRONG_KEY', 'the key or passphrase does not open this store');
    }
    const metaKey = unwrapKey(provider, kek, keyring.databaseId, 0, keyring.wrappedMetaKey);
    const dataKeys = new Map<number, Uint8Array>();
    for (const entry of keyring.dataKeys)
      dataKeys.set(entry.keyId, unwrapKey(provider, kek, keyring.databaseId, entry.keyId, entry.wrapped));
    return new KeySet(keyring.databaseId, metaKey, dataKeys, keyring.activeKeyId);
  } finally {
    wipeKek(kek);
  }
}
