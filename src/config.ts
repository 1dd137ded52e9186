/**
 * Open options: the public shape, frozen defaults, and validation at the boundary with one message
 * shape: `"keySize" expected integer 1..1024, got 0` (TypeError for a wrong type, RangeError for a
 * wrong size).
 */
import { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import type { CipherName } from './crypto/provider.js';
import { checkSlotLabel, DEFAULT_SCRYPT, makeCredential, type Credential, type KeyProvider } from './crypto/keys.js';
import { KEY_BYTES, Limits, PAGE_BYTES } from './format/constants.js';
import { ScryptBounds } from './format/keyring.js';
import type { ReplicationOption } from './replication/contract.js';

/**
 * A 32-byte key, or a passphrase stretched with scrypt, or no encryption at all. The value is
 * copied when the store opens; the caller may wipe its own copy afterwards.
 *
 * @example
 * ```ts
 * const withKey: EncryptionOption = { key: randomBytes(32) };            // or a secret KeyObject
 * const withPassphrase: EncryptionOption = { passphrase: process.env.DB_PASSPHRASE! };
 * const plain: EncryptionOption = 'none';                                 // CRC-protected, not encrypted
 * ```
 */
export type EncryptionOption =
  | {
      /**
       * The caller's key: a `Uint8Array` of exactly 32 bytes (RangeError otherwise) or a 32-byte
       * secret `KeyObject`. Generate it with `crypto.randomBytes(32)`. The key-encryption key that
       * wraps the data keys is derived from it with HKDF; it never encrypts pages directly. Losing it
       * loses the data; a different key fails with `ARMDB_WRONG_KEY`.
       */
      readonly key: Uint8Array | KeyObject;
      /**
       * Try only the key slot of this label. Without it, open tries every slot of the credential's
       * kind in stored order: each passphrase slot tried costs one scrypt (docs/security-model.md §Key slots).
       */
      readonly slot?: string;
    }
  | {
      /**
       * A non-empty passphrase, stretched with scrypt into the key-encryption key. Strings are
       * NFC-normalised and UTF-8 encoded, so the same text typed on different systems opens the
       * store; bytes are used as they are. A wrong passphrase fails with `ARMDB_WRONG_KEY` (after
       * the full scrypt cost).
       */
      readonly passphrase: string | Uint8Array;
      /**
       * scrypt cost as log2(N), 10..18; default 17 (SPEC §5.2). scrypt needs 128 · 8 · 2^N bytes of
       * memory: 128 MiB at 17, 256 MiB at 18, the most armdb accepts. Used only when the store is
       * created, or by `changeKey`; without it `changeKey` keeps the store's cost, and opening never
       * changes it. Lower values make brute force cheaper: only for tests.
       */
      readonly scryptLogN?: number;
      /** Try only the key slot of this label (one scrypt at most): see `slot` below. */
      readonly slot?: string;
    }
  | {
      /**
       * A key provider (a KMS, Vault transit, an HSM: `pkcs11Provider` from `armdb/pkcs11`) that
       * holds the root key: armdb stores only the blob its `wrap` returned, and asks its `unwrap`
       * at every open. A provider that throws, or returns a wrong key, fails with `ARMDB_WRONG_KEY`
       * (its error as `cause`); one that does not answer within `providerTimeoutMs` fails with
       * `ARMDB_PROVIDER_TIMEOUT`.
       */
      readonly provider: KeyProvider;
      /** Try only the key slot of this label. */
      readonly slot?: string;
    }
  | 'none';

/**
 * Called after every committed mutation (SPEC §6).
 *
 * @example
 * ```ts
 * const hook: WriteHook<Uint8Array> = {
 *   needsOldValue: false,
 *   onWrite(key, _old, value) { audit.push({ key, deleted: value === undefined }); },
 * };
 * ```
 */
export interface WriteHook<V> {
  /** `oldValue` is undefined when the key was absent or `needsOldValue` is false; `newValue` on delete. */
  onWrite(key: Uint8Array, oldValue: V | undefined, newValue: V | undefined): void;
  /** When false the engine skips reading the old value. Default true. */
  readonly needsOldValue?: boolean;
  /** Called for every live entry at open and for kept entries in `migrate`. */
  onInit?(key: Uint8Array, value: V): void;
}

/** Options of every collection's `open` (SPEC §3). */
export interface OpenOptions<V = Uint8Array> {
  /** Bytes of every key, 1..1024. Immutable. */
  readonly keySize: number;
  /** Required: a key, a passphrase, or `'none'`. */
  readonly encryption: EncryptionOption;
  /** Shards, 1..256. Immutable. Default 4. */
  readonly shards?: number;
  /** Route by the first N bits of the key (0 = whole key). Immutable. Default 0. */
  readonly shardPrefixBits?: number;
  /** Page-cipher provider; both write identical bytes. Default `'node'`. */
  readonly cipher?: CipherName;
  /** Rotation threshold of a data file. Default 256 MiB. */
  readonly maxFileBytes?: number;
  /** Write buffer per shard. Default 1 MiB. */
  readonly writeBufferBytes?: number;
  /** Largest value accepted. Default 16 MiB. */
  readonly maxValueBytes?: number;
  /** Budget of the decrypted-page cache; 0 disables it. Default 64 MiB. */
  readonly cacheBytes?: number;
  /** Dead/total bytes of a file that makes it a compaction candidate. Default 0.3. */
  readonly compactionThreshold?: number;
  /** Compact in the background when the threshold is crossed. Default true. */
  readonly autoCompact?: boolean;
  /** Write hint files for fast open. Default true. */
  readonly hints?: boolean;
  /** Background durability barrier; 0 = only explicit `sync()`/`close()`. Default 1000. */
  readonly syncIntervalMs?: number;
  /**
   * Threads that seal pages off the calling thread: 0 seals every page on it (as before), 1 hands long
   * runs of complete pages (bulk loads, large values) to one worker thread of this process
   * (docs/durability.md §Sealing worker). Used with encryption and the `node` cipher only. Default 0.
   */
  readonly sealThreads?: number;
  /** Write hook (SPEC §6). */
  readonly hook?: WriteHook<V>;
  /** Refuse to open a store whose epoch is lower (rollback anchor, SPEC §5.5). */
  readonly expectedMinEpoch?: number;
  /**
   * How long a key provider (`encryption: { provider }`, a provider slot) may take to answer `wrap`
   * or `unwrap`, in ms; then `ARMDB_PROVIDER_TIMEOUT`. Default 30 000.
   */
  readonly providerTimeoutMs?: number;
  /**
   * Rotate the active data key (as `rotateDataKey()` does) once it is older than this many ms,
   * checked at open and after every durability barrier: a service that restarts often still
   * rotates. Default: never by age. `stats().dataKeyAgeMs` shows the age.
   */
  readonly dataKeyMaxAgeMs?: number;
  /**
   * Replicate over NATS JetStream: `natsReplication({ servers, name, role })` from `armdb/replication`
   * (docs/replication.md). Needs `encryption`: only sealed bytes are shipped.
   */
  readonly replication?: ReplicationOption;
}

export const DEFAULTS = Object.freeze({
  shards: 4,
  shardPrefixBits: 0,
  cipher: 'node' as CipherName,
  maxFileBytes: 256 * 2 ** 20,
  writeBufferBytes: 2 ** 20,
  maxValueBytes: 16 * 2 ** 20,
  cacheBytes: 64 * 2 ** 20,
  compactionThreshold: 0.3,
  autoCompact: true,
  hints: true,
  syncIntervalMs: 1000,
  sealThreads: 0,
});

/** Smallest `maxFileBytes`, in pages. */
const MIN_FILE_PAGES = 16;
/** Largest `writeBufferBytes`. */
const MAX_WRITE_BUFFER_BYTES = 256 * 2 ** 20;

/** Options after validation, with defaults applied and the secret turned into a {@link Credential}. */
export interface ResolvedOptions {
  readonly keySize: number;
  readonly valueSize: number;
  readonly credential: Credential | undefined;
  readonly shards: number;
  readonly shardPrefixBits: number;
  readonly cipher: CipherName;
  readonly maxFileBytes: number;
  readonly writeBufferBytes: number;
  readonly maxValueBytes: number;
  readonly cacheBytes: number;
  readonly compactionThreshold: number;
  readonly autoCompact: boolean;
  readonly hints: boolean;
  readonly syncIntervalMs: number;
  readonly sealThreads: number;
  readonly expectedMinEpoch: number | undefined;
  /** `encryption.slot`: the one slot to try. */
  readonly slotLabel: string | undefined;
  /** How long a key provider may take to answer (default 30 s). */
  readonly providerTimeoutMs: number;
  /** Rotate the active data key once it is older than this (undefined: never by age). */
  readonly dataKeyMaxAgeMs: number | undefined;
}

/** Default `providerTimeoutMs`: 30 s. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 30_000;

function describe(value: unknown): string {
  if (typeof value === 'string') return 'a string';
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  return inspect(value, { depth: 0, maxStringLength: 20 });
}

/** `"name" expected integer min..max, got value` */
export function checkInteger(name: string, value: unknown, minimum: number, maximum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new TypeError(`"${name}" expected integer ${minimum}..${maximum}, got ${describe(value)}`);
  if (value < minimum || value > maximum) throw new RangeError(`"${name}" expected integer ${minimum}..${maximum}, got ${value}`);
  return value;
}

function checkNumber(name: string, value: unknown, minimum: number, maximum: number): number {
  if (typeof value !== 'number' || Number.isNaN(value))
    throw new TypeError(`"${name}" expected number ${minimum}..${maximum}, got ${describe(value)}`);
  if (value < minimum || value > maximum) throw new RangeError(`"${name}" expected number ${minimum}..${maximum}, got ${value}`);
  return value;
}

function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`"${name}" expected boolean, got ${describe(value)}`);
  return value;
}

/** `"key" expected Uint8Array of 16 bytes, got …` */
export function checkBytes(name: string, value: unknown, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array))
    throw new TypeError(`"${name}" expected Uint8Array${length === undefined ? '' : ` of ${length} bytes`}, got ${describe(value)}`);
  if (length !== undefined && value.length !== length)
    throw new RangeError(`"${name}" expected Uint8Array of ${length} bytes, got ${value.length} bytes`);
  return value;
}

/**
 * The largest `scryptLogN` accepted: with r = 8 the KDF needs 128 · 8 · 2^logN bytes, and the KEYRING
 * bounds (docs/format.md §9, `ScryptBounds.maxMemoryBytes`, 256 MiB) allow log N 18 at most.
 */
export const MAX_SCRYPT_LOG_N = Math.log2(ScryptBounds.maxMemoryBytes / (128 * DEFAULT_SCRYPT.r));

/** Every option `open` takes: those of {@link OpenOptions}, `valueSize` (Const) and `codec` (Typed). */
const OPEN_OPTIONS: ReadonlySet<string> = new Set([
  'keySize',
  'encryption',
  'valueSize',
  'codec',
  ...Object.keys(DEFAULTS),
  'hook',
  'expectedMinEpoch',
  'providerTimeoutMs',
  'dataKeyMaxAgeMs',
  'replication',
]);
const KEY_ENCRYPTION_OPTIONS: ReadonlySet<string> = new Set(['key', 'slot']);
const PASSPHRASE_ENCRYPTION_OPTIONS: ReadonlySet<string> = new Set(['passphrase', 'scryptLogN', 'slot']);
const PROVIDER_ENCRYPTION_OPTIONS: ReadonlySet<string> = new Set(['provider', 'slot']);

/**
 * A misspelt option (`syncIntervalMS`) would otherwise be ignored and its default used in silence:
 * every own string key must be one `open` knows. The message names it, and the option it resembles.
 */
function checkKnownOptions(prefix: string, record: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const name of Object.keys(record)) {
    if (known.has(name)) continue;
    const resembling = [...known].find((candidate) => candidate.toLowerCase() === name.toLowerCase());
    const hint = resembling === undefined ? `known: ${[...known].join(', ')}` : `did you mean "${prefix}${resembling}"?`;
    throw new TypeError(`"${prefix}${name}" is not an option of open(); ${hint}`);
  }
}

/** @internal The credential of an `encryption` option (undefined for 'none'). */
export function resolveCredential(encryption: unknown): Credential | undefined {
  if (encryption === 'none') return undefined;
  if (typeof encryption !== 'object' || encryption === null) {
    throw new TypeError(`"encryption" expected { key } | { passphrase } | 'none', got ${describe(encryption)}`);
  }
  const record = encryption as Record<string, unknown>;
  const secrets = ['key', 'passphrase', 'provider'].filter((name) => name in record);
  if (secrets.length > 1)
    throw new TypeError(`"encryption" expected one of "key", "passphrase" or "provider", got ${secrets.join(' and ')}: give one secret`);
  checkKnownOptions(
    'encryption.',
    record,
    'key' in record ? KEY_ENCRYPTION_OPTIONS : 'provider' in record ? PROVIDER_ENCRYPTION_OPTIONS : PASSPHRASE_ENCRYPTION_OPTIONS,
  );
  if (record['slot'] !== undefined) checkSlotLabel('encryption.slot', record['slot']);
  if ('provider' in record)
    return makeCredential({ kind: 'provider', provider: checkKeyProvider('encryption.provider', record['provider']) });
  if ('key' in record) {
    const key = record['key'];
    if (key instanceof KeyObject) {
      if (key.type !== 'secret' || key.symmetricKeySize !== KEY_BYTES)
        throw new RangeError(`"encryption.key" expected a ${KEY_BYTES}-byte secret KeyObject`);
      const exported = new Uint8Array(key.export());
      const credential = makeCredential({ kind: 'key', key: exported });
      exported.fill(0);
      return credential;
    }
    return makeCredential({ kind: 'key', key: checkBytes('encryption.key', key, KEY_BYTES) });
  }
  if ('passphrase' in record) {
    const passphrase = record['passphrase'];
    let bytes: Uint8Array;
    // NFC, so the same passphrase typed on systems that compose characters differently derives the same key.
    if (typeof passphrase === 'string') bytes = new TextEncoder().encode(passphrase.normalize('NFC'));
    else bytes = checkBytes('encryption.passphrase', passphrase);
    if (bytes.length === 0) throw new RangeError('"encryption.passphrase" expected a non-empty passphrase');
    // Checked here, before anything is stored: a cost the KEYRING bounds refuse must not fail later, at creation.
    const logN =
      record['scryptLogN'] === undefined
        ? undefined
        : checkInteger('encryption.scryptLogN', record['scryptLogN'], ScryptBounds.minLogN, MAX_SCRYPT_LOG_N);
    const scrypt = logN === undefined ? undefined : { logN, r: DEFAULT_SCRYPT.r, p: DEFAULT_SCRYPT.p };
    const credential = makeCredential({ kind: 'passphrase', passphrase: bytes, scrypt });
    if (typeof passphrase === 'string') bytes.fill(0);
    return credential;
  }
  throw new TypeError('"encryption" expected { key } | { passphrase } | { provider } | \'none\'');
}

/** `{ id, wrap, unwrap }`, checked at the boundary (the id's length is checked where a slot is made). */
export function checkKeyProvider(name: string, provider: unknown): KeyProvider {
  const candidate = provider as Partial<KeyProvider> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.id !== 'string' ||
    typeof candidate.wrap !== 'function' ||
    typeof candidate.unwrap !== 'function'
  ) {
    // The value is not shown: a provider object may hold a PIN or credentials of its own.
    throw new TypeError(`"${name}" expected { id: string, wrap(kek), unwrap(blob) }, got ${provider === null ? 'null' : typeof provider}`);
  }
  return candidate as KeyProvider;
}

/** @internal `encryption.slot`, or undefined. */
export function resolveSlotLabel(encryption: unknown): string | undefined {
  if (typeof encryption !== 'object' || encryption === null) return undefined;
  const slot = (encryption as Record<string, unknown>)['slot'];
  return slot === undefined ? undefined : checkSlotLabel('encryption.slot', slot);
}

/** Validates `open` options; `valueSize` is 0 for variable-length collections. */
export function resolveOptions(options: unknown, valueSize: number): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError(`"options" expected object, got ${describe(options)}`);
  const record = options as Record<string, unknown>;
  checkKnownOptions('', record, OPEN_OPTIONS);
  const pick = <T>(name: keyof typeof DEFAULTS): T => (record[name] === undefined ? DEFAULTS[name] : record[name]) as T;
  const keySize = checkInteger('keySize', record['keySize'], 1, Limits.maxKeyBytes);
  if (!('encryption' in record) || record['encryption'] === undefined) {
    throw new TypeError('"encryption" is required: { key: Uint8Array(32) } | { passphrase } | \'none\'');
  }
  const cipher = pick<unknown>('cipher');
  if (cipher !== 'node' && cipher !== 'noble') throw new TypeError(`"cipher" expected 'node' | 'noble', got ${describe(cipher)}`);
  const hook = record['hook'];
  if (hook !== undefined && (typeof hook !== 'object' || hook === null || typeof (hook as { onWrite?: unknown }).onWrite !== 'function')) {
    throw new TypeError('"hook" expected { onWrite(key, oldValue, newValue) }');
  }
  const expectedMinEpoch =
    record['expectedMinEpoch'] === undefined
      ? undefined
      : checkInteger('expectedMinEpoch', record['expectedMinEpoch'], 0, Number.MAX_SAFE_INTEGER);
  const resolved: ResolvedOptions = {
    keySize,
    valueSize,
    shards: checkInteger('shards', pick('shards'), 1, Limits.maxShards),
    shardPrefixBits: checkInteger('shardPrefixBits', pick('shardPrefixBits'), 0, keySize * 8),
    cipher,
    maxFileBytes: checkInteger('maxFileBytes', pick('maxFileBytes'), MIN_FILE_PAGES * PAGE_BYTES, Limits.maxFileBytes),
    writeBufferBytes: checkInteger('writeBufferBytes', pick('writeBufferBytes'), PAGE_BYTES, MAX_WRITE_BUFFER_BYTES),
    maxValueBytes: checkInteger('maxValueBytes', pick('maxValueBytes'), 0, Limits.maxValueBytes),
    cacheBytes: checkInteger('cacheBytes', pick('cacheBytes'), 0, Number.MAX_SAFE_INTEGER),
    compactionThreshold: checkNumber('compactionThreshold', pick('compactionThreshold'), 0, 1),
    autoCompact: checkBoolean('autoCompact', pick('autoCompact')),
    hints: checkBoolean('hints', pick('hints')),
    syncIntervalMs: checkInteger('syncIntervalMs', pick('syncIntervalMs'), 0, 2 ** 31 - 1),
    sealThreads: checkInteger('sealThreads', pick('sealThreads'), 0, 1),
    expectedMinEpoch,
    slotLabel: resolveSlotLabel(record['encryption']),
    providerTimeoutMs:
      record['providerTimeoutMs'] === undefined
        ? DEFAULT_PROVIDER_TIMEOUT_MS
        : checkInteger('providerTimeoutMs', record['providerTimeoutMs'], 1, 2 ** 31 - 1),
    dataKeyMaxAgeMs:
      record['dataKeyMaxAgeMs'] === undefined
        ? undefined
        : checkInteger('dataKeyMaxAgeMs', record['dataKeyMaxAgeMs'], 1, Number.MAX_SAFE_INTEGER),
    // Last: only after every other option validated, so a bad option never leaves a credential copy behind.
    credential: resolveCredential(record['encryption']),
  };
  return resolved;
}
