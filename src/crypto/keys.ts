/**
 * The key hierarchy (docs/format.md §8, docs/security-model.md):
 *
 * ```
 * caller's key ──HKDF──┐  slot key ──AES-GCM wrap──┐
 * passphrase ──scrypt──┘                           ├─> KEK (random: wrap key ‖ MAC key) ──AES-GCM wrap──> meta key, data keys
 * key provider (KMS, HSM) ──wrap/unwrap─────────────┘
 * data key ──HKDF(file salt, file binding)──> per-file encryption and MAC keys
 * meta key ──HKDF──> manifest MAC key
 * ```
 * Each key slot of the KEYRING (docs/format.md §8.4) wraps the one KEK under one credential; a
 * version-1 KEYRING derived the KEK from its one credential and is upgraded in memory at open.
 * The meta key is replaced with every KEYRING rewrite (docs/security-model.md §Key lifecycle), so a
 * copy of an old KEYRING and the credential it was sealed under cannot sign a MANIFEST of today.
 * Keys live in Uint8Arrays that {@link KeySet.destroy} zeroes; no object here prints its bytes.
 */
import { randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { inspect } from 'node:util';
import { ArmdbError, armdbError, integrityError } from '../errors.js';
import { ByteWriter, copyBytes } from '../format/bytes.js';
import { DATABASE_ID_BYTES, KEY_BYTES, SALT_BYTES } from '../format/constants.js';
import {
  checkScryptParameters,
  decodeKeyring,
  decodeKeyringV1,
  encodeKeyring,
  encodeSlotHead,
  KEK_BYTES,
  KEYRING_V1,
  KekKind,
  keyringVersion,
  SlotKind,
  SlotLimits,
  verifyKeyringMac,
  WRAPPED_KEK_BYTES,
  type KeySlotRecord,
  type ScryptParameters,
  type SlotKindId,
} from '../format/keyring.js';
import { nodeProvider } from './node-provider.js';
import type { CryptoProvider } from './provider.js';

const encoder = new TextEncoder();
const KEK_INFO = encoder.encode('armdb/v1 kek');
const WRAP_LABEL = encoder.encode('armdb/v1 wrap');
const MANIFEST_INFO = encoder.encode('armdb/v1 manifest');
const SLOT_INFO = encoder.encode('armdb/v2 slot');
const SLOT_WRAP_LABEL = encoder.encode('armdb/v2 slot wrap');

/** The default scrypt cost (SPEC §5.2): N = 2^17, r = 8, p = 1 — 128 MiB and ~0.3 s here. */
export const DEFAULT_SCRYPT: ScryptParameters = Object.freeze({ logN: 17, r: 8, p: 1 });

/**
 * A key provider keeps the root key outside the process (a cloud KMS, Vault transit, an HSM): armdb
 * hands it the KEK to wrap once, stores only the blob it returns, and asks it to unwrap that blob
 * at every open. `id` names the provider in the KEYRING (1..64 UTF-8 bytes, stable across runs).
 *
 * @example
 * ```ts
 * const provider: KeyProvider = {
 *   id: 'kms:alias/armdb',
 *   wrap: async (kek) => kms.encrypt(kek),
 *   unwrap: async (blob) => kms.decrypt(blob),
 * };
 * const db = await open(dir, { encryption: { provider } });
 * ```
 */
export interface KeyProvider {
  /** Names the provider (and its root key) in the KEYRING: 1..64 bytes of UTF-8, stable across runs. */
  readonly id: string;
  /** Encrypts the 64-byte KEK under the root key; returns the blob armdb stores (1..1024 bytes). */
  wrap(kek: Uint8Array): Promise<Uint8Array>;
  /** Decrypts a blob `wrap` returned; returns the 64-byte KEK, or throws. */
  unwrap(blob: Uint8Array): Promise<Uint8Array>;
}

/**
 * What the caller gave to open the keyring. Passphrases are UTF-8 bytes from here on. `scrypt` is the
 * cost the caller asked for (`scryptLogN`), or undefined: a new passphrase slot then gets
 * {@link DEFAULT_SCRYPT}, and changeKey keeps the replaced slot's cost (docs/security-model.md).
 */
export type Credential =
  | { readonly kind: 'key'; readonly key: Uint8Array }
  | { readonly kind: 'passphrase'; readonly passphrase: Uint8Array; readonly scrypt?: ScryptParameters | undefined }
  | { readonly kind: 'provider'; readonly provider: KeyProvider };

/**
 * Passphrase slot keys remembered for a credential that asked for it ({@link rememberSlotKeys}): a
 * replica reopens its engine at every caught-up point with a copy of its credential, and without them
 * each reopen would run scrypt again. Copies made by {@link makeCredential} share the owner's entry;
 * wiping a copy forgets it, wiping the owner zeroes the keys. Keyed by slot salt and cost (neither is
 * secret); the keys are Uint8Arrays, handed out as copies that callers zero as they zero any slot key.
 */
const rememberedSlotKeys = new WeakMap<Credential, { readonly owner: Credential; readonly keys: Map<string, Uint8Array> }>();

/**
 * @internal Keeps the slot keys derived from this passphrase credential, and from its copies, until
 * `wipeCredential(credential)`: an open with a copy then runs no KDF for a slot already derived.
 * For a holder that keeps the passphrase itself in memory anyway (a replica), so nothing is exposed
 * that was not already.
 */
export function rememberSlotKeys(credential: Credential): void {
  if (credential.kind === 'passphrase') rememberedSlotKeys.set(credential, { owner: credential, keys: new Map() });
}

function redact(this: unknown): string {
  return '[armdb credential: redacted]';
}

/** Wraps caller secrets so that inspect/JSON/String never show them. */
export function makeCredential(credential: Credential): Credential {
  const copy =
    credential.kind === 'key'
      ? { kind: 'key' as const, key: copyBytes(credential.key) }
      : credential.kind === 'passphrase'
        ? { kind: 'passphrase' as const, passphrase: copyBytes(credential.passphrase), scrypt: credential.scrypt }
        : { kind: 'provider' as const, provider: credential.provider };
  Object.defineProperties(copy, {
    [inspect.custom]: { value: redact },
    toJSON: { value: redact },
    toString: { value: redact },
  });
  const remembered = rememberedSlotKeys.get(credential);
  if (remembered !== undefined) rememberedSlotKeys.set(copy, remembered);
  return copy;
}

export function wipeCredential(credential: Credential): void {
  const remembered = rememberedSlotKeys.get(credential);
  rememberedSlotKeys.delete(credential);
  if (remembered?.owner === credential) {
    for (const key of remembered.keys.values()) key.fill(0);
    remembered.keys.clear();
  }
  if (credential.kind === 'key') credential.key.fill(0);
  else if (credential.kind === 'passphrase') credential.passphrase.fill(0);
}

interface Kek {
  readonly wrapKey: Uint8Array;
  readonly macKey: Uint8Array;
}

function scrypt(passphrase: Uint8Array, salt: Uint8Array, parameters: ScryptParameters, length: number): Promise<Uint8Array> {
  const N = 2 ** parameters.logN;
  const maxmem = 128 * parameters.r * N + 2 ** 20 + 128 * parameters.r * parameters.p;
  return new Promise((resolve, reject) => {
    scryptCallback(passphrase, salt, length, { N, r: parameters.r, p: parameters.p, maxmem }, (error, derived) => {
      if (error) reject(error);
      else resolve(new Uint8Array(derived.buffer, derived.byteOffset, derived.length));
    });
  });
}

/** The version-1 KEK (docs/format.md §8.7). scrypt parameters are bounded before the KDF runs. */
async function deriveKekV1(
  provider: CryptoProvider,
  credential: Credential,
  kdfSalt: Uint8Array,
  scryptParameters: ScryptParameters,
): Promise<Kek> {
  let material: Uint8Array;
  if (credential.kind === 'key') {
    material = provider.hkdf(credential.key, kdfSalt, KEK_INFO, 2 * KEY_BYTES);
  } else if (credential.kind === 'passphrase') {
    checkScryptParameters(scryptParameters);
    material = await scrypt(credential.passphrase, kdfSalt, scryptParameters, 2 * KEY_BYTES);
  } else {
    throw armdbError('ARMDB_WRONG_KEY', 'a version-1 KEYRING has no provider slot; open it with its key or passphrase');
  }
  const kek = { wrapKey: material.slice(0, KEY_BYTES), macKey: material.slice(KEY_BYTES) };
  material.fill(0);
  return kek;
}

function splitKek(kek: Uint8Array): Kek {
  return { wrapKey: kek.subarray(0, KEY_BYTES), macKey: kek.subarray(KEY_BYTES) };
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

// ---------------------------------------------------------------------------------------------
// Key slots (docs/format.md §8.4)

/** What unlocks a slot again without its credential: its derived slot key, or the provider object. */
type SlotUnlock = { readonly slotKey: Uint8Array } | { readonly provider: KeyProvider };

/** A key slot as `keySlots()` shows it: never a secret. */
export interface KeySlotInfo {
  /** The slot's label, unique in the store. */
  readonly label: string;
  /** What opens it: a raw key, a passphrase, or a key provider. */
  readonly kind: 'key' | 'passphrase' | 'provider';
  /** Milliseconds since the epoch. */
  readonly createdAtMs: number;
  /** The provider's id, for a provider slot. */
  readonly providerId?: string;
}

const SLOT_KIND_NAMES: Record<SlotKindId, KeySlotInfo['kind']> = { 1: 'key', 2: 'passphrase', 3: 'provider' };

function slotKindOf(credential: Credential): SlotKindId {
  return credential.kind === 'key' ? SlotKind.rawKey : credential.kind === 'passphrase' ? SlotKind.passphrase : SlotKind.provider;
}

/** Checks a slot label at the public boundary: 1..64 UTF-8 bytes. */
export function checkSlotLabel(name: string, label: unknown): string {
  if (typeof label !== 'string') throw new TypeError(`"${name}" expected string, got ${typeof label}`);
  const bytes = encoder.encode(label).length;
  if (bytes < 1 || bytes > SlotLimits.maxLabelBytes)
    throw new RangeError(`"${name}" expected 1..${SlotLimits.maxLabelBytes} bytes of UTF-8, got ${bytes}`);
  return label;
}

/** Races a provider call against `timeoutMs`: ARMDB_PROVIDER_TIMEOUT when it does not answer in time. */
async function withTimeout<T>(call: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(armdbError('ARMDB_PROVIDER_TIMEOUT', `the key provider did not answer ${what} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([Promise.resolve().then(call), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The slot key of a key or passphrase slot (docs/format.md §8.4). scrypt bounds are checked first. */
async function deriveSlotKey(provider: CryptoProvider, credential: Credential, slot: KeySlotRecord): Promise<Uint8Array> {
  if (credential.kind === 'key') return provider.hkdf(credential.key, slot.salt, SLOT_INFO, KEY_BYTES);
  if (credential.kind !== 'passphrase') throw new TypeError('a provider slot has no slot key');
  checkScryptParameters(slot.scrypt);
  const remembered = rememberedSlotKeys.get(credential)?.keys;
  const id = `${Buffer.from(slot.salt).toString('hex')}.${slot.scrypt.logN}.${slot.scrypt.r}.${slot.scrypt.p}`;
  const known = remembered?.get(id);
  if (known !== undefined) return copyBytes(known);
  // The first 32 bytes of scrypt's output: a version-1 passphrase KEYRING's KEK wrap key, so its upgrade needs no second scrypt.
  const slotKey = await scrypt(credential.passphrase, slot.salt, slot.scrypt, KEY_BYTES);
  remembered?.set(id, copyBytes(slotKey));
  return slotKey;
}

function slotAad(databaseId: Uint8Array, slot: KeySlotRecord): Uint8Array {
  const head = encodeSlotHead(slot);
  return new ByteWriter(SLOT_WRAP_LABEL.length + DATABASE_ID_BYTES + head.length)
    .raw(SLOT_WRAP_LABEL)
    .raw(databaseId, DATABASE_ID_BYTES)
    .raw(head)
    .finish();
}

function wrapKekUnder(
  provider: CryptoProvider,
  slotKey: Uint8Array,
  databaseId: Uint8Array,
  slot: KeySlotRecord,
  kek: Uint8Array,
): Uint8Array {
  const nonce = randomBytes(12);
  const { ciphertext, tag } = provider.aead(slotKey).seal(nonce, slotAad(databaseId, slot), kek);
  return new ByteWriter(WRAPPED_KEK_BYTES).raw(nonce).raw(ciphertext, KEK_BYTES).raw(tag, 16).finish();
}

/** The KEK from a key or passphrase slot, or undefined when the slot key does not open it. */
function unwrapKekUnder(
  provider: CryptoProvider,
  slotKey: Uint8Array,
  databaseId: Uint8Array,
  slot: KeySlotRecord,
): Uint8Array | undefined {
  try {
    return provider
      .aead(slotKey)
      .open(
        slot.blob.subarray(0, 12),
        slotAad(databaseId, slot),
        slot.blob.subarray(12, 12 + KEK_BYTES),
        slot.blob.subarray(12 + KEK_BYTES),
      );
  } catch {
    return undefined;
  }
}

/** What {@link KeySet.makeSlot} and {@link openKeyring} need beyond the credential. */
export interface SlotContext {
  readonly provider: CryptoProvider;
  /** How long a key provider may take to wrap or unwrap (`providerTimeoutMs`). */
  readonly providerTimeoutMs: number;
  /** The clock of creation times. */
  readonly now: () => number;
}

/** The unwrapped keys of an open store, with the KEK and the slots that wrap it. */
export class KeySet {
  readonly databaseId: Uint8Array;
  activeKeyId: number;
  #metaKey: Uint8Array;
  readonly #dataKeys: Map<number, Uint8Array>;
  readonly #createdAtMs: Map<number, number>;
  /** The random KEK (wrap key ‖ MAC key), 64 bytes. */
  #kek: Uint8Array;
  #slots: KeySlotRecord[];
  /** Slots this handle can re-wrap a new KEK under (the one it opened with, those added since). */
  readonly #unlocked = new Map<string, SlotUnlock>();
  /** The label of the slot that opened the store (changeKey replaces it). */
  openedSlotLabel: string;
  /** The KEYRING version on disk: 1 until the first key operation writes version 2. */
  keyringVersion: number;

  constructor(
    databaseId: Uint8Array,
    metaKey: Uint8Array,
    dataKeys: Map<number, Uint8Array>,
    activeKeyId: number,
    custody: {
      readonly kek: Uint8Array;
      readonly slots: KeySlotRecord[];
      readonly createdAtMs: Map<number, number>;
      readonly openedSlotLabel: string;
      readonly keyringVersion: number;
    },
  ) {
    this.databaseId = databaseId;
    this.#metaKey = metaKey;
    this.#dataKeys = dataKeys;
    this.activeKeyId = activeKeyId;
    this.#kek = custody.kek;
    this.#slots = custody.slots;
    this.#createdAtMs = custody.createdAtMs;
    this.openedSlotLabel = custody.openedSlotLabel;
    this.keyringVersion = custody.keyringVersion;
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

  /** When data key `keyId` was made (ms since the epoch). */
  createdAtMs(keyId: number): number {
    return this.#createdAtMs.get(keyId) ?? 0;
  }

  /** The slots as stored (no secrets: wrapped KEKs and provider blobs only). */
  get slots(): readonly KeySlotRecord[] {
    return this.#slots;
  }

  /** The slots as `keySlots()` shows them. */
  slotInfos(): KeySlotInfo[] {
    return this.#slots.map((slot) => ({
      label: slot.label,
      kind: SLOT_KIND_NAMES[slot.kind],
      createdAtMs: slot.createdAtMs,
      ...(slot.kind === SlotKind.provider ? { providerId: slot.providerId } : {}),
    }));
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

  /** Adds a fresh random data key made at `nowMs` and returns its id (not yet active, not yet persisted). */
  addDataKey(nowMs: number): number {
    const keyId = Math.max(0, ...this.#dataKeys.keys()) + 1;
    this.#dataKeys.set(keyId, new Uint8Array(randomBytes(KEY_BYTES)));
    this.#createdAtMs.set(keyId, nowMs);
    return keyId;
  }

  /** Forgets a data key (crypto-shredding once the keyring without it is persisted). */
  removeDataKey(keyId: number): void {
    if (keyId === this.activeKeyId) throw new Error('the active data key cannot be removed');
    this.#dataKeys.get(keyId)?.fill(0);
    this.#dataKeys.delete(keyId);
    this.#createdAtMs.delete(keyId);
  }

  /**
   * A new slot wrapping the KEK (or `kek`) under `credential`: one scrypt for a passphrase, one
   * `wrap` call for a provider. Nothing changes in the set until {@link commitSlots}.
   */
  async makeSlot(
    credential: Credential,
    label: string,
    context: SlotContext,
    kek: Uint8Array = this.#kek,
    scryptParameters?: ScryptParameters,
  ): Promise<{ slot: KeySlotRecord; unlock: SlotUnlock }> {
    const createdAtMs = context.now();
    if (credential.kind === 'provider') {
      const { provider } = credential;
      const providerId = checkProviderId(provider.id);
      const blob = await withTimeout(() => provider.wrap(copyBytes(kek)), context.providerTimeoutMs, 'wrap');
      if (!(blob instanceof Uint8Array) || blob.length < 1 || blob.length > SlotLimits.maxProviderBlobBytes)
        throw new RangeError(`the key provider's wrap() expected to return 1..${SlotLimits.maxProviderBlobBytes} bytes`);
      const slot: KeySlotRecord = {
        kind: SlotKind.provider,
        label,
        scrypt: NO_SCRYPT,
        createdAtMs,
        salt: new Uint8Array(SALT_BYTES),
        providerId,
        blob: copyBytes(blob),
      };
      return { slot, unlock: { provider } };
    }
    const scryptParams = credential.kind === 'passphrase' ? (scryptParameters ?? credential.scrypt ?? DEFAULT_SCRYPT) : NO_SCRYPT;
    const draft: KeySlotRecord = {
      kind: slotKindOf(credential),
      label,
      scrypt: scryptParams,
      createdAtMs,
      salt: new Uint8Array(randomBytes(SALT_BYTES)),
      providerId: '',
      blob: new Uint8Array(WRAPPED_KEK_BYTES),
    };
    const slotKey = await deriveSlotKey(context.provider, credential, draft);
    return { slot: { ...draft, blob: wrapKekUnder(context.provider, slotKey, this.databaseId, draft, kek) }, unlock: { slotKey } };
  }

  /** Re-wraps `kek` in an existing slot this handle holds the unlock of; undefined if it holds none. */
  async rewrapSlot(slot: KeySlotRecord, kek: Uint8Array, context: SlotContext): Promise<KeySlotRecord | undefined> {
    const unlock = this.#unlocked.get(slot.label);
    if (unlock === undefined) return undefined;
    if ('provider' in unlock) {
      const { provider } = unlock;
      const blob = await withTimeout(() => provider.wrap(copyBytes(kek)), context.providerTimeoutMs, 'wrap');
      if (!(blob instanceof Uint8Array) || blob.length < 1 || blob.length > SlotLimits.maxProviderBlobBytes)
        throw new RangeError(`the key provider's wrap() expected to return 1..${SlotLimits.maxProviderBlobBytes} bytes`);
      return { ...slot, blob: copyBytes(blob) };
    }
    return { ...slot, blob: wrapKekUnder(context.provider, unlock.slotKey, this.databaseId, slot, kek) };
  }

  /** Tries `credential` on `slot`: when it opens it, remembers its unlock (for a later KEK rotation). */
  async unlockSlot(slot: KeySlotRecord, credential: Credential, context: SlotContext): Promise<boolean> {
    if (slotKindOf(credential) !== slot.kind) return false;
    if (credential.kind === 'provider') {
      const { provider } = credential;
      if (slot.providerId !== provider.id) return false;
      let kek: unknown;
      try {
        kek = await withTimeout(() => provider.unwrap(copyBytes(slot.blob)), context.providerTimeoutMs, 'unwrap');
      } catch (error) {
        if (error instanceof ArmdbError && error.code === 'ARMDB_PROVIDER_TIMEOUT') throw error;
        return false;
      }
      const opens = kek instanceof Uint8Array && equalSecret(kek, this.#kek);
      if (kek instanceof Uint8Array) kek.fill(0);
      if (opens) this.#remember(slot.label, { provider });
      return opens;
    }
    const slotKey = await deriveSlotKey(context.provider, credential, slot);
    const kek = unwrapKekUnder(context.provider, slotKey, this.databaseId, slot);
    const opens = kek !== undefined && equalSecret(kek, this.#kek);
    kek?.fill(0);
    if (opens) this.#remember(slot.label, { slotKey });
    else slotKey.fill(0);
    return opens;
  }

  /** Whether this handle can re-wrap a new KEK in the slot `label`. */
  isUnlocked(label: string): boolean {
    return this.#unlocked.has(label);
  }

  /**
   * The KEYRING with `slots` (and `kek`) is durable: they replace the set's. `unlocks` are the new
   * slots' unlocks; the unlocks of slots that are gone are zeroed.
   */
  commitSlots(slots: KeySlotRecord[], unlocks: ReadonlyMap<string, SlotUnlock>, kek?: Uint8Array): void {
    for (const [label, unlock] of unlocks) this.#remember(label, unlock);
    const labels = new Set(slots.map((slot) => slot.label));
    for (const label of [...this.#unlocked.keys()]) if (!labels.has(label)) this.#forget(label);
    this.#slots = slots;
    if (kek !== undefined && kek !== this.#kek) {
      this.#kek.fill(0);
      this.#kek = kek;
    }
    this.keyringVersion = KEYRING_FORMAT_WRITTEN;
  }

  #remember(label: string, unlock: SlotUnlock): void {
    const previous = this.#unlocked.get(label);
    if (previous !== undefined && previous !== unlock && 'slotKey' in previous) previous.slotKey.fill(0);
    this.#unlocked.set(label, unlock);
  }

  #forget(label: string): void {
    const unlock = this.#unlocked.get(label);
    if (unlock !== undefined && 'slotKey' in unlock) unlock.slotKey.fill(0);
    this.#unlocked.delete(label);
  }

  /** @internal Used when re-wrapping. */
  entries(): { metaKey: Uint8Array; dataKeys: ReadonlyMap<number, Uint8Array>; kek: Uint8Array } {
    return { metaKey: this.#metaKey, dataKeys: this.#dataKeys, kek: this.#kek };
  }

  destroy(): void {
    this.#metaKey.fill(0);
    this.#kek.fill(0);
    for (const key of this.#dataKeys.values()) key.fill(0);
    for (const label of [...this.#unlocked.keys()]) this.#forget(label);
  }

  [inspect.custom](): string {
    return `KeySet { keyIds: [${this.keyIds.join(', ')}], activeKeyId: ${this.activeKeyId}, slots: [${this.#slots.map((slot) => JSON.stringify(slot.label)).join(', ')}] }`;
  }

  toJSON(): object {
    return { keyIds: this.keyIds, activeKeyId: this.activeKeyId, slots: this.#slots.map((slot) => slot.label) };
  }
}

const NO_SCRYPT: ScryptParameters = Object.freeze({ logN: 0, r: 0, p: 0 });
const KEYRING_FORMAT_WRITTEN = 2;

function checkProviderId(id: unknown): string {
  if (typeof id !== 'string') throw new TypeError(`"provider.id" expected string, got ${typeof id}`);
  const bytes = encoder.encode(id).length;
  if (bytes < 1 || bytes > SlotLimits.maxProviderIdBytes)
    throw new RangeError(`"provider.id" expected 1..${SlotLimits.maxProviderIdBytes} bytes of UTF-8, got ${bytes}`);
  return id;
}

/** Constant-time comparison of two secrets of equal length. */
function equalSecret(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  let difference = 0;
  for (let index = 0; index < left.length; index++) difference |= left[index]! ^ right[index]!;
  return difference === 0;
}

/** Choices of {@link sealKeyring} beyond the keys. */
export interface SealOptions {
  /**
   * The active key id to write; defaults to the keys' own. Rotation passes the new id so that it
   * becomes active in memory only once the KEYRING naming it is durable.
   */
  readonly activeKeyId?: number;
  /** The meta key to wrap instead of the set's own: the next one, while the meta key rotates. */
  readonly metaKey?: Uint8Array;
  /** The slots to write instead of the set's own (a slot added, removed or replaced). */
  readonly slots?: readonly KeySlotRecord[];
  /** The KEK to wrap the keys under instead of the set's own (a KEK rotation). */
  readonly kek?: Uint8Array;
}

/** Encodes the version-2 keyring of `keys` (docs/format.md §8.1): keys wrapped under the KEK, the slots as given. */
export function sealKeyring(keys: KeySet, provider: CryptoProvider = nodeProvider, options: SealOptions = {}): Uint8Array {
  const activeKeyId = options.activeKeyId ?? keys.activeKeyId;
  const entries = keys.entries();
  const kek = splitKek(options.kek ?? entries.kek);
  const slots = options.slots ?? keys.slots;
  if (slots.length < 1 || slots.length > SlotLimits.maxSlots) throw new RangeError(`a KEYRING holds 1..${SlotLimits.maxSlots} slots`);
  const metaKey = options.metaKey ?? entries.metaKey;
  return encodeKeyring(
    {
      databaseId: keys.databaseId,
      activeKeyId,
      wrappedMetaKey: wrapKey(provider, kek, keys.databaseId, 0, metaKey),
      dataKeys: [...entries.dataKeys.entries()]
        .sort(([left], [right]) => left - right)
        .map(([keyId, key]) => ({
          keyId,
          createdAtMs: keys.createdAtMs(keyId),
          wrapped: wrapKey(provider, kek, keys.databaseId, keyId, key),
        })),
      slots: [...slots],
    },
    (body) => provider.hmac(kek.macKey, body),
  );
}

/** A fresh random KEK (64 bytes: wrap key ‖ MAC key). */
export function createKek(): Uint8Array {
  return new Uint8Array(randomBytes(KEK_BYTES));
}

/** A fresh random meta key (32 bytes). */
export function createMetaKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/** manifest MAC key = HKDF-SHA256(meta key, salt = database id, info = "armdb/v1 manifest") (docs/format.md §2.4). */
export function deriveManifestMacKey(provider: CryptoProvider, metaKey: Uint8Array, databaseId: Uint8Array): Uint8Array {
  return provider.hkdf(metaKey, databaseId, MANIFEST_INFO, KEY_BYTES);
}

/** The label of the first slot of a new store, and of the slot a version-1 KEYRING is upgraded into. */
export const DEFAULT_SLOT_LABEL = 'default';

/**
 * Creates the keys of a new database: random database id, KEK, meta key and first data key (id 1),
 * and its first slot under `credential` (labelled `label`).
 */
export async function createKeySet(credential: Credential, context: SlotContext, label: string = DEFAULT_SLOT_LABEL): Promise<KeySet> {
  const databaseId = new Uint8Array(randomBytes(DATABASE_ID_BYTES));
  const metaKey = new Uint8Array(randomBytes(KEY_BYTES));
  const nowMs = context.now();
  const keys = new KeySet(databaseId, metaKey, new Map([[1, new Uint8Array(randomBytes(KEY_BYTES))]]), 1, {
    kek: createKek(),
    slots: [],
    createdAtMs: new Map([[1, nowMs]]),
    openedSlotLabel: label,
    keyringVersion: 2,
  });
  try {
    const { slot, unlock } = await keys.makeSlot(credential, label, context);
    keys.commitSlots([slot], new Map([[label, unlock]]));
    return keys;
  } catch (error) {
    keys.destroy();
    throw error;
  }
}

/** Which slots {@link openKeyring} tries. */
export interface OpenKeyringOptions extends SlotContext {
  /** Only the slot of this label (`encryption.slot`): one KDF at most. */
  readonly slotLabel?: string | undefined;
}

/**
 * Opens a keyring (docs/format.md §8.6): checks framing and bounds, then tries the slots of the
 * credential's kind in stored order (one scrypt per passphrase slot tried; `slotLabel` narrows it
 * to one) until one yields the KEK, verifies the MAC under it, then unwraps every key. No slot opening
 * is ARMDB_WRONG_KEY; a provider that throws is ARMDB_WRONG_KEY with its error as `cause`.
 */
export async function openKeyring(bytes: Uint8Array, credential: Credential, options: OpenKeyringOptions): Promise<KeySet> {
  if (keyringVersion(bytes) === KEYRING_V1) return openKeyringV1(bytes, credential, options);
  const { provider } = options;
  const keyring = decodeKeyring(bytes);
  const kind = slotKindOf(credential);
  const candidates = keyring.slots.filter(
    (slot) =>
      slot.kind === kind &&
      (options.slotLabel === undefined || slot.label === options.slotLabel) &&
      (credential.kind !== 'provider' || slot.providerId === credential.provider.id),
  );
  if (candidates.length === 0) {
    const what =
      options.slotLabel === undefined
        ? `no ${credential.kind} slot`
        : `no ${credential.kind} slot labelled ${JSON.stringify(options.slotLabel)}`;
    throw armdbError('ARMDB_WRONG_KEY', `the KEYRING has ${what}${credential.kind === 'provider' ? ' for this provider id' : ''}`);
  }
  let opened: { slot: KeySlotRecord; kek: Uint8Array; unlock: SlotUnlock } | undefined;
  let providerError: unknown;
  for (const slot of candidates) {
    if (credential.kind === 'provider') {
      const keyProvider = credential.provider;
      let kek: unknown;
      try {
        kek = await withTimeout(() => keyProvider.unwrap(copyBytes(slot.blob)), options.providerTimeoutMs, 'unwrap');
      } catch (error) {
        if (error instanceof ArmdbError && error.code === 'ARMDB_PROVIDER_TIMEOUT') throw error;
        providerError = error;
        continue;
      }
      if (!(kek instanceof Uint8Array) || kek.length !== KEK_BYTES) {
        providerError = new RangeError(`the key provider's unwrap() expected to return ${KEK_BYTES} bytes`);
        continue;
      }
      // Unauthenticated bytes from the provider: the MAC below decides whether they are the KEK.
      const copy = copyBytes(kek);
      if (verifyKeyringMac(bytes, (body) => provider.hmac(copy.subarray(KEY_BYTES), body))) {
        opened = { slot, kek: copy, unlock: { provider: keyProvider } };
        break;
      }
      copy.fill(0);
      providerError = undefined;
      continue;
    }
    const slotKey = await deriveSlotKey(provider, credential, slot);
    const kek = unwrapKekUnder(provider, slotKey, keyring.databaseId, slot);
    if (kek !== undefined) {
      opened = { slot, kek, unlock: { slotKey } };
      break;
    }
    slotKey.fill(0);
  }
  if (opened === undefined) {
    const message =
      credential.kind === 'provider'
        ? 'the key provider did not yield the key of this store'
        : 'the key or passphrase does not open this store';
    throw armdbError('ARMDB_WRONG_KEY', message, providerError);
  }
  const { slot, kek, unlock } = opened;
  const parts = splitKek(kek);
  // A slot's GCM tag proved this KEK genuine: a MAC that fails under it means the KEYRING was altered
  // (a forged label, a doctored slot, a swapped key) by someone without the KEK.
  if (!verifyKeyringMac(bytes, (body) => provider.hmac(parts.macKey, body))) {
    kek.fill(0);
    if ('slotKey' in unlock) unlock.slotKey.fill(0);
    throw integrityError('the KEYRING fails its MAC under the key its slot yields: it was altered');
  }
  try {
    const metaKey = unwrapKey(provider, parts, keyring.databaseId, 0, keyring.wrappedMetaKey);
    const dataKeys = new Map<number, Uint8Array>();
    const createdAtMs = new Map<number, number>();
    for (const entry of keyring.dataKeys) {
      dataKeys.set(entry.keyId, unwrapKey(provider, parts, keyring.databaseId, entry.keyId, entry.wrapped));
      createdAtMs.set(entry.keyId, entry.createdAtMs);
    }
    const keys = new KeySet(keyring.databaseId, metaKey, dataKeys, keyring.activeKeyId, {
      kek,
      slots: [...keyring.slots],
      createdAtMs,
      openedSlotLabel: slot.label,
      keyringVersion: 2,
    });
    keys.commitSlots([...keyring.slots], new Map([[slot.label, unlock]]));
    return keys;
  } catch (error) {
    kek.fill(0);
    if ('slotKey' in unlock) unlock.slotKey.fill(0);
    throw error;
  }
}

/**
 * A version-1 keyring (docs/format.md §8.7), upgraded in memory: a fresh random KEK, and one slot
 * (labelled {@link DEFAULT_SLOT_LABEL}) wrapping it under the same credential with the stored salt
 * and scrypt cost. The first key operation writes version 2; until then the file stays version 1.
 * A version-1 key's creation time is unknown: it counts from this open.
 */
async function openKeyringV1(bytes: Uint8Array, credential: Credential, options: OpenKeyringOptions): Promise<KeySet> {
  const { provider } = options;
  const keyring = decodeKeyringV1(bytes);
  if (options.slotLabel !== undefined && options.slotLabel !== DEFAULT_SLOT_LABEL)
    throw armdbError('ARMDB_WRONG_KEY', `a version-1 KEYRING has one slot, ${JSON.stringify(DEFAULT_SLOT_LABEL)}`);
  const expectedKind = credential.kind === 'key' ? KekKind.rawKey : credential.kind === 'passphrase' ? KekKind.passphrase : 0;
  if (keyring.kekKind !== expectedKind) {
    const stored = keyring.kekKind === KekKind.rawKey ? 'a raw key' : 'a passphrase';
    throw armdbError('ARMDB_WRONG_KEY', `the store is protected by ${stored}; a ${credential.kind} was given`);
  }
  const kekV1 = await deriveKekV1(provider, credential, keyring.kdfSalt, keyring.scrypt);
  try {
    if (!verifyKeyringMac(bytes, (body) => provider.hmac(kekV1.macKey, body))) {
      throw armdbError('ARMDB_WRONG_KEY', 'the key or passphrase does not open this store');
    }
    const metaKey = unwrapKey(provider, kekV1, keyring.databaseId, 0, keyring.wrappedMetaKey);
    const dataKeys = new Map<number, Uint8Array>();
    const nowMs = options.now();
    const createdAtMs = new Map<number, number>();
    for (const entry of keyring.dataKeys) {
      dataKeys.set(entry.keyId, unwrapKey(provider, kekV1, keyring.databaseId, entry.keyId, entry.wrapped));
      createdAtMs.set(entry.keyId, nowMs);
    }
    const kek = createKek();
    const draft: KeySlotRecord = {
      kind: slotKindOf(credential),
      label: DEFAULT_SLOT_LABEL,
      scrypt: credential.kind === 'passphrase' ? keyring.scrypt : NO_SCRYPT,
      createdAtMs: nowMs,
      salt: keyring.kdfSalt,
      providerId: '',
      blob: new Uint8Array(WRAPPED_KEK_BYTES),
    };
    // The passphrase slot key is the version-1 KEK's wrap key (the same scrypt, §8.7): no second scrypt.
    const slotKey = credential.kind === 'passphrase' ? copyBytes(kekV1.wrapKey) : await deriveSlotKey(provider, credential, draft);
    const slot = { ...draft, blob: wrapKekUnder(provider, slotKey, keyring.databaseId, draft, kek) };
    const keys = new KeySet(keyring.databaseId, metaKey, dataKeys, keyring.activeKeyId, {
      kek,
      slots: [slot],
      createdAtMs,
      openedSlotLabel: DEFAULT_SLOT_LABEL,
      keyringVersion: KEYRING_V1,
    });
    keys.commitSlots([slot], new Map([[DEFAULT_SLOT_LABEL, { slotKey }]]));
    keys.keyringVersion = KEYRING_V1;
    return keys;
  } finally {
    wipeKek(kekV1);
  }
}
