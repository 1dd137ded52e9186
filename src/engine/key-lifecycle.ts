/**
 * The key lifecycle (docs/security-model.md §Key lifecycle): changeKey, rotateDataKey,
 * crypto-shredding of data keys no file uses, and the MANIFEST signing key they rotate.
 */
import { channel } from 'node:diagnostics_channel';
import {
  createMetaKey,
  DEFAULT_SCRYPT,
  deriveManifestMacKey,
  sealKeyring,
  wipeCredential,
  type Credential,
  type KeySet,
} from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { armdbError } from '../errors.js';
import { MANIFEST_FORMAT_VERSION, type ManifestFormatVersion } from '../format/constants.js';
import type { ScryptParameters } from '../format/keyring.js';
import { encodeManifest, type Manifest } from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import type { DurabilityBarrier } from './barrier.js';
import { crashPoint } from './crash-points.js';
import type { FileRemover } from './file-removal.js';
import type { EngineGuard } from './guard.js';
import { writeKeyringFile } from './root-files.js';
import type { Shards } from './shard.js';

const keyChannel = channel('armdb:key');

/**
 * Signs every MANIFEST: under the manifest MAC key, and under the next one as well while a key
 * operation rotates the meta key (docs/format.md §7.4).
 */
export class ManifestSigner {
  readonly #provider: CryptoProvider;
  readonly #keys: KeySet | undefined;
  #macKey: Uint8Array;
  /**
   * The manifest MAC key of the next meta key while a key operation rotates it: every MANIFEST is then
   * signed under both, so that it verifies under whichever KEYRING a crash leaves (docs/format.md §7.4).
   */
  #nextMacKey: Uint8Array | undefined;
  /** MANIFEST version written: the store's, until a key operation needs two MACs (version 2). */
  #formatVersion: ManifestFormatVersion;

  constructor(provider: CryptoProvider, keys: KeySet | undefined, macKey: Uint8Array, formatVersion: ManifestFormatVersion) {
    this.#provider = provider;
    this.#keys = keys;
    this.#macKey = macKey;
    this.#formatVersion = formatVersion;
  }

  /** The data key new files are written under (0 without encryption). */
  get activeKeyId(): number {
    return this.#keys?.activeKeyId ?? 0;
  }

  /**
   * A key for another purpose (the replication stream's MAC, src/replication), derived with HKDF
   * from the manifest MAC key of now: whoever opens the same KEYRING derives the same key.
   */
  deriveKey(info: Uint8Array, length: number): Uint8Array {
    return this.#provider.hkdf(this.#macKey, new Uint8Array(0), info, length);
  }

  /** The MANIFEST's bytes, signed. */
  sign(manifest: Manifest): Uint8Array {
    const macKey = this.#macKey;
    const nextMacKey = this.#nextMacKey;
    return encodeManifest(manifest, (body) => this.#provider.hmac(macKey, body), {
      formatVersion: this.#formatVersion,
      nextMac: nextMacKey === undefined ? undefined : (body) => this.#provider.hmac(nextMacKey, body),
    });
  }

  /** From now on sign under `nextMacKey` too. Two MACs need MANIFEST version 2: a version-1 store is upgraded here. */
  beginRotation(nextMacKey: Uint8Array): void {
    this.#formatVersion = MANIFEST_FORMAT_VERSION;
    this.#nextMacKey = nextMacKey;
  }

  /** The rotation did not happen: sign under the current key alone again. */
  abandonRotation(nextMacKey: Uint8Array): void {
    if (this.#nextMacKey === nextMacKey) this.#nextMacKey = undefined;
  }

  /** The new KEYRING is on disk: sign under the next key alone. */
  completeRotation(nextMacKey: Uint8Array): void {
    this.#macKey.fill(0);
    this.#macKey = nextMacKey;
    this.#nextMacKey = undefined;
  }

  /** close(): the keys are zeroed (an unencrypted store's key is the shared zero key: filling it keeps it zero). */
  destroy(): void {
    this.#macKey.fill(0);
    this.#nextMacKey?.fill(0);
  }
}

export interface KeyLifecycleParts {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly provider: CryptoProvider;
  readonly keys: KeySet | undefined;
  /** The caller's credential (copied, wiped at close): re-deriving the KEK is needed to rewrite the KEYRING. */
  readonly credential: Credential | undefined;
  /**
   * scrypt cost of the durable KEYRING (undefined for a raw key): every rewrite keeps it unless
   * changeKey is asked for another, so reopening with a lower `scryptLogN` never lowers it.
   */
  readonly keyringScrypt: ScryptParameters | undefined;
  readonly signer: ManifestSigner;
  readonly guard: EngineGuard;
  readonly barrier: DurabilityBarrier;
  readonly shards: Shards;
  readonly remover: FileRemover;
}

export class KeyLifecycle {
  readonly #parts: KeyLifecycleParts;
  #credential: Credential | undefined;
  #keyringScrypt: ScryptParameters | undefined;
  /** KEYRING rewrites (changeKey, rotateDataKey, shredding) one at a time. */
  #keyringChain: Promise<unknown> = Promise.resolve();
  /** Key operations (changeKey, rotateDataKey, crypto-shredding) run one at a time: see #exclusively. */
  #operations: Promise<unknown> = Promise.resolve();

  constructor(parts: KeyLifecycleParts) {
    this.#parts = parts;
    this.#credential = parts.credential;
    this.#keyringScrypt = parts.keyringScrypt;
  }

  /** The data key new files are written under (0 without encryption). */
  get activeKeyId(): number {
    return this.#parts.signer.activeKeyId;
  }

  /** Resolves once every key operation called so far has settled. */
  settled(): Promise<unknown> {
    return this.#operations;
  }

  /** close(): the keys and the credential are zeroed. */
  destroy(): void {
    this.#parts.keys?.destroy();
    this.#parts.signer.destroy();
    if (this.#credential !== undefined) wipeCredential(this.#credential);
  }

  #requireKeys(operation: string): KeySet {
    this.#parts.guard.assertWritable();
    if (this.#parts.keys === undefined || this.#credential === undefined) {
      throw armdbError('ARMDB_FORMAT_MISMATCH', `${operation} needs an encrypted store; this one was created with encryption: 'none'`);
    }
    return this.#parts.keys;
  }

  /**
   * Runs a key operation after every key operation called before it has settled. Each one reads the
   * key set and the credential, rewrites the KEYRING and then changes them in memory; interleaved, a
   * rotation's KEYRING could be sealed with a credential that changeKey has already wiped, or shredding
   * could drop a key that a rotation had added but not yet made active.
   */
  #exclusively<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#operations.then(operation);
    this.#operations = run.catch(() => undefined);
    return run;
  }

  /**
   * Re-wraps the data keys under a new key or passphrase, with a new meta key (see #writeKeyring).
   * The KEYRING is replaced in one atomic step, after a MANIFEST signed under both meta keys is
   * durable: a crash leaves exactly one of the old and the new credential working.
   */
  async changeKey(next: Credential): Promise<void> {
    this.#requireKeys('changeKey');
    return this.#exclusively(async () => {
      this.#requireKeys('changeKey');
      // The stored cost stays unless the caller chose one (`scryptLogN`); a raw key store turning into
      // a passphrase store gets the default.
      const scrypt = next.kind === 'passphrase' ? (next.scrypt ?? this.#keyringScrypt ?? DEFAULT_SCRYPT) : undefined;
      await this.#writeKeyring(next, scrypt);
      this.#keyringScrypt = scrypt;
      crashPoint('change-key:keyring-written', () => ({ directory: this.#parts.directory }));
      const previous = this.#credential!;
      this.#credential = next;
      wipeCredential(previous);
      if (keyChannel.hasSubscribers) keyChannel.publish({ directory: this.#parts.directory, event: 'changeKey' });
    });
  }

  /**
   * Makes a fresh data key active: the KEYRING gains it first (atomically), then every shard moves to
   * a new active file under it. Older files keep their key until compaction rewrites them
   * (`compact({ reencrypt: true })`), after which the old key is removed from the KEYRING.
   */
  async rotateDataKey(): Promise<void> {
    this.#requireKeys('rotateDataKey');
    return this.#exclusively(() => this.#rotateDataKeyNow());
  }

  async #rotateDataKeyNow(): Promise<void> {
    const { directory, guard, shards, barrier } = this.#parts;
    const keys = this.#requireKeys('rotateDataKey');
    // The new key is always the highest id and active; only non-active keys are ever removed, so an
    // id is never handed out twice.
    const keyId = keys.addDataKey();
    // Active in memory (new files, the manifest) only once the KEYRING that holds it is durable.
    try {
      await this.#writeKeyring(this.#credential!, this.#keyringScrypt, keyId);
    } catch (error) {
      keys.removeDataKey(keyId);
      throw error;
    }
    crashPoint('rotate-key:keyring-written', () => ({ directory }));
    keys.activeKeyId = keyId;
    try {
      for (const shard of shards.all) shards.rotate(shard.shard);
    } catch (error) {
      throw guard.poison(error);
    }
    crashPoint('rotate-key:rotated', () => ({ directory, fileIds: shards.all.map((shard) => shard.active.fileId) }));
    barrier.markManifestStale();
    await barrier.schedule();
    if (keyChannel.hasSubscribers) keyChannel.publish({ directory, event: 'rotateDataKey', activeKeyId: keyId });
  }

  /** Crypto-shredding: data keys no file (data or hint) uses any more leave the KEYRING. */
  shredUnusedKeys(): Promise<number[]> {
    return this.#exclusively(() => this.#shredUnusedKeysNow());
  }

  async #shredUnusedKeysNow(): Promise<number[]> {
    const { directory, shards } = this.#parts;
    const keys = this.#parts.keys;
    if (keys === undefined || this.#credential === undefined) return [];
    const inUse = new Set<number>([keys.activeKeyId]);
    for (const file of shards.files()) inUse.add(file.keyId);
    // A file that should be gone but is still on disk keeps its key: try to delete it once more.
    for (const keyId of this.#parts.remover.retryUndeleted(keyChannel)) inUse.add(keyId);
    const unused = keys.keyIds.filter((keyId) => !inUse.has(keyId));
    if (unused.length === 0) return [];
    // The unlinks of the files under these keys must be durable before the keys go: otherwise a
    // power loss could bring back a file whose key no longer exists.
    await shards.syncDirectories();
    crashPoint('shred:directories-synced', () => ({ directory }));
    for (const keyId of unused) keys.removeDataKey(keyId);
    await this.#writeKeyring(this.#credential, this.#keyringScrypt);
    crashPoint('shred:keyring-written', () => ({ directory }));
    if (keyChannel.hasSubscribers) keyChannel.publish({ directory, event: 'shred', keyIds: unused });
    return unused;
  }

  /**
   * Seals and atomically replaces the KEYRING with the current keys under `credential`, at scrypt
   * cost `scrypt` (the stored cost unless changeKey was asked for another), with a **new meta key**
   * (docs/security-model.md §Key lifecycle): a copy of an older KEYRING, opened with the credential it
   * was sealed under, then yields a manifest MAC key that no longer signs this store's MANIFEST.
   *
   * Order, so that the store opens after a crash at any point (docs/format.md §7.4):
   *   1. seal the new KEYRING (the KDF runs; barriers go on meanwhile, signed under the current key);
   *   2. from now on sign every MANIFEST under the current and the next key, and make one such
   *      MANIFEST durable (a barrier): it verifies under the old and under the new KEYRING;
   *   3. replace the KEYRING (the commit point);
   *   4. sign under the next key alone.
   */
  #writeKeyring(credential: Credential, scrypt: ScryptParameters | undefined, activeKeyId?: number): Promise<void> {
    const write = this.#keyringChain.then(() => this.#writeKeyringNow(credential, scrypt, activeKeyId));
    this.#keyringChain = write.catch(() => undefined);
    return write;
  }

  async #writeKeyringNow(credential: Credential, scrypt: ScryptParameters | undefined, activeKeyId: number | undefined): Promise<void> {
    const { provider, signer, barrier, guard } = this.#parts;
    const keys = this.#parts.keys!;
    const nextMetaKey = createMetaKey();
    const nextMacKey = deriveManifestMacKey(provider, nextMetaKey, keys.databaseId);
    const forget = (): void => {
      signer.abandonRotation(nextMacKey);
      nextMetaKey.fill(0);
      nextMacKey.fill(0);
    };
    let bytes: Uint8Array;
    try {
      bytes = await sealKeyring(keys, credential, provider, { activeKeyId: activeKeyId ?? keys.activeKeyId, scrypt, metaKey: nextMetaKey });
      signer.beginRotation(nextMacKey);
      barrier.markManifestStale();
      await barrier.schedule();
    } catch (error) {
      // The KEYRING is unchanged: the current meta key stays (the MANIFEST on disk verifies under it).
      forget();
      throw error;
    }
    try {
      await writeKeyringFile(this.#parts.fileSystem, this.#parts.directory, bytes);
    } catch (error) {
      // Either KEYRING may be on disk now; the MANIFEST on disk verifies under both, and the poisoned
      // collection writes no other.
      forget();
      throw guard.poison(error);
    }
    keys.replaceMetaKey(nextMetaKey);
    signer.completeRotation(nextMacKey);
  }
}
