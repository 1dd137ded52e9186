/**
 * The key lifecycle (docs/security-model.md §Key lifecycle, §Key slots): key slots, changeKey,
 * rotateDataKey (by call and by age), crypto-shredding of data keys no file uses, and the MANIFEST
 * signing key they rotate. Every operation is published on `armdb:audit` (audit.ts).
 */
import { channel } from 'node:diagnostics_channel';
import {
  createKek,
  createMetaKey,
  DEFAULT_SCRYPT,
  deriveManifestMacKey,
  sealKeyring,
  wipeCredential,
  type Credential,
  type KeySet,
  type KeySlotInfo,
  type SlotContext,
} from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { armdbError } from '../errors.js';
import { type KeySlotRecord, SlotKind, SlotLimits } from '../format/keyring.js';
import { encodeManifest, encodeManifestRecord, type Manifest, type ManifestDelta } from '../format/manifest.js';
import { publishAudit } from './audit.js';
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
  /**
   * Grows whenever the set of keys signing changes. A MANIFEST log record carries the MACs of the
   * keys signing when it is written, so the barrier replaces the whole MANIFEST at each change:
   * the base then carries exactly the keys the records after it use (docs/format.md §7.7).
   */
  #generation = 0;

  constructor(provider: CryptoProvider, keys: KeySet | undefined, macKey: Uint8Array) {
    this.#provider = provider;
    this.#keys = keys;
    this.#macKey = macKey;
  }

  /** The data key new files are written under (0 without encryption). */
  get activeKeyId(): number {
    return this.#keys?.activeKeyId ?? 0;
  }

  /** Changes whenever the keys that sign change (a rotation begins, is abandoned or completes). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * A key for another purpose (the replication stream's MAC, src/replication), derived with HKDF
   * from the manifest MAC key of now: whoever opens the same KEYRING derives the same key.
   */
  deriveKey(info: Uint8Array, length: number): Uint8Array {
    return this.#provider.hkdf(this.#macKey, new Uint8Array(0), info, length);
  }

  /** The MANIFEST's bytes, signed: always the current format version (docs/format.md §1.4). */
  sign(manifest: Manifest): Uint8Array {
    const macKey = this.#macKey;
    const nextMacKey = this.#nextMacKey;
    return encodeManifest(manifest, (body) => this.#provider.hmac(macKey, body), {
      nextMac: nextMacKey === undefined ? undefined : (body) => this.#provider.hmac(nextMacKey, body),
    });
  }

  /** MACs a record signed now carries (docs/format.md §7.7). */
  get macCount(): number {
    return this.#nextMacKey === undefined ? 1 : 2;
  }

  /** One MANIFEST log record, signed like {@link sign}, chained to `previousMac`. */
  signRecord(delta: ManifestDelta, previousMac: Uint8Array): { bytes: Uint8Array; chainMac: Uint8Array } {
    const macKey = this.#macKey;
    const nextMacKey = this.#nextMacKey;
    return encodeManifestRecord(
      delta,
      previousMac,
      (body) => this.#provider.hmac(macKey, body),
      nextMacKey === undefined ? undefined : (body) => this.#provider.hmac(nextMacKey, body),
    );
  }

  /** From now on sign under `nextMacKey` too. */
  beginRotation(nextMacKey: Uint8Array): void {
    this.#nextMacKey = nextMacKey;
    this.#generation++;
  }

  /** The rotation did not happen: sign under the current key alone again. */
  abandonRotation(nextMacKey: Uint8Array): void {
    if (this.#nextMacKey !== nextMacKey) return;
    this.#nextMacKey = undefined;
    this.#generation++;
  }

  /** The new KEYRING is on disk: sign under the next key alone. */
  completeRotation(nextMacKey: Uint8Array): void {
    this.#macKey.fill(0);
    this.#macKey = nextMacKey;
    this.#nextMacKey = undefined;
    this.#generation++;
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
  /** The caller's credential (copied): wiped at close. Rewrites use the KEK, never the credential. */
  readonly credential: Credential | undefined;
  readonly signer: ManifestSigner;
  readonly guard: EngineGuard;
  readonly barrier: DurabilityBarrier;
  readonly shards: Shards;
  readonly remover: FileRemover;
  /** `providerTimeoutMs` (provider slots added or re-wrapped). */
  readonly providerTimeoutMs: number;
  /** `dataKeyMaxAgeMs`: undefined rotates never by age. */
  readonly dataKeyMaxAgeMs: number | undefined;
  /** The clock of key ages, slot creation times and audit events. */
  readonly now: () => number;
}

/** Options of `removeKeySlot`. */
export interface RemoveKeySlotOptions {
  /**
   * Also replace the KEK with a fresh one and re-wrap it in every remaining slot: the removed
   * credential then opens no KEYRING written from now on, even by someone who kept the old KEK
   * (docs/security-model.md §Key slots). Each remaining slot must be one this handle opened or
   * added, or be opened by one of `credentials`.
   */
  readonly rotateKek?: boolean;
  /** Credentials of remaining slots this handle has not opened (for `rotateKek`). */
  readonly credentials?: readonly Credential[];
}

export class KeyLifecycle {
  readonly #parts: KeyLifecycleParts;
  #credential: Credential | undefined;
  /** KEYRING rewrites (changeKey, rotateDataKey, shredding) one at a time. */
  #keyringChain: Promise<unknown> = Promise.resolve();
  /** Key operations (changeKey, rotateDataKey, crypto-shredding) run one at a time: see #exclusively. */
  #operations: Promise<unknown> = Promise.resolve();
  /** A rotation by age is queued or running: the barrier it runs does not queue another. */
  #ageRotation: Promise<void> | undefined;

  constructor(parts: KeyLifecycleParts) {
    this.#parts = parts;
    this.#credential = parts.credential;
  }

  /** The data key new files are written under (0 without encryption). */
  get activeKeyId(): number {
    return this.#parts.signer.activeKeyId;
  }

  /** Milliseconds since the active data key was made (undefined without encryption). */
  get dataKeyAgeMs(): number | undefined {
    const keys = this.#parts.keys;
    if (keys === undefined) return undefined;
    return Math.max(0, this.#parts.now() - keys.createdAtMs(keys.activeKeyId));
  }

  /** The key slots (labels, kinds, creation times; never secrets). */
  keySlots(): KeySlotInfo[] {
    return this.#parts.keys?.slotInfos() ?? [];
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

  #audit(event: Parameters<typeof publishAudit>[1], fields?: Readonly<Record<string, unknown>>): void {
    const { directory, keys, now } = this.#parts;
    publishAudit({ directory, databaseId: keys?.databaseId, now }, event, fields);
  }

  get #slotContext(): SlotContext {
    return { provider: this.#parts.provider, providerTimeoutMs: this.#parts.providerTimeoutMs, now: this.#parts.now };
  }

  #requireKeys(operation: string): KeySet {
    this.#parts.guard.assertWritable();
    if (this.#parts.keys === undefined) {
      throw armdbError('ARMDB_FORMAT_MISMATCH', `${operation} needs an encrypted store; this one was created with encryption: 'none'`);
    }
    return this.#parts.keys;
  }

  /**
   * Runs a key operation after every key operation called before it has settled. Each one reads the
   * key set, rewrites the KEYRING and then changes the set in memory; interleaved, shredding could
   * drop a key that a rotation had added but not yet made active, or two slot changes could each
   * write a KEYRING without the other's slot.
   */
  #exclusively<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#operations.then(operation);
    this.#operations = run.catch(() => undefined);
    return run;
  }

  /**
   * Replaces the credential of one slot — the one that opened the store — keeping its label. With
   * one slot the KEK is replaced too (as a version-1 store's was), so an old KEYRING copy opened
   * with the old credential yields a KEK that opens no later KEYRING; with more slots the KEK stays
   * (the other slots wrap it). The KEYRING is replaced in one atomic step, after a MANIFEST signed
   * under both meta keys is durable: a crash leaves exactly one of the old and the new credential
   * working for that slot. `next` is wiped afterwards.
   */
  async changeKey(next: Credential): Promise<void> {
    this.#requireKeys('changeKey');
    return this.#exclusively(async () => {
      const keys = this.#requireKeys('changeKey');
      const slots = keys.slots;
      const target = slots.find((slot) => slot.label === keys.openedSlotLabel) ?? (slots.length === 1 ? slots[0] : undefined);
      if (target === undefined)
        throw new RangeError(`the slot that opened the store is gone; use addKeySlot and removeKeySlot instead of changeKey`);
      const rotateKek = slots.length === 1;
      const kek = rotateKek ? createKek() : undefined;
      // A passphrase slot keeps its cost unless the caller chose one (`scryptLogN`); a key slot turning
      // into a passphrase slot gets the default.
      const scrypt = target.kind === SlotKind.passphrase ? target.scrypt : DEFAULT_SCRYPT;
      try {
        const made = await keys.makeSlot(
          next,
          target.label,
          this.#slotContext,
          kek,
          next.kind === 'passphrase' ? (next.scrypt ?? scrypt) : undefined,
        );
        const nextSlots = slots.map((slot) => (slot === target ? made.slot : slot));
        await this.#writeKeyring({ slots: nextSlots, kek });
        keys.commitSlots(nextSlots, new Map([[target.label, made.unlock]]), kek);
        keys.openedSlotLabel = target.label;
      } catch (error) {
        kek?.fill(0);
        throw error;
      } finally {
        wipeCredential(next);
      }
      crashPoint('change-key:keyring-written', () => ({ directory: this.#parts.directory }));
      if (keyChannel.hasSubscribers) keyChannel.publish({ directory: this.#parts.directory, event: 'changeKey' });
      this.#audit('change-key', { label: target.label, kind: next.kind, kekRotated: rotateKek });
    });
  }

  /** Adds a slot wrapping the KEK under `credential` (wiped afterwards). Labels are unique; 16 slots at most. */
  async addKeySlot(credential: Credential, label: string): Promise<void> {
    try {
      this.#requireKeys('addKeySlot');
    } catch (error) {
      wipeCredential(credential);
      throw error;
    }
    return this.#exclusively(async () => {
      try {
        const keys = this.#requireKeys('addKeySlot');
        if (keys.slots.some((slot) => slot.label === label)) throw new RangeError(`"label" ${JSON.stringify(label)} names a slot already`);
        if (keys.slots.length >= SlotLimits.maxSlots) throw new RangeError(`a store holds at most ${SlotLimits.maxSlots} key slots`);
        const made = await keys.makeSlot(credential, label, this.#slotContext);
        const nextSlots = [...keys.slots, made.slot];
        await this.#writeKeyring({ slots: nextSlots });
        keys.commitSlots(nextSlots, new Map([[label, made.unlock]]));
        this.#audit('add-key-slot', { label, kind: credential.kind });
      } finally {
        wipeCredential(credential);
      }
    });
  }

  /**
   * Removes the slot `label`; the last slot cannot be removed. Without `rotateKek` the KEK stays:
   * the removed credential still opens any copy of an earlier KEYRING, and the KEK it yields there
   * opens today's KEYRING too (docs/security-model.md §Key slots).
   */
  async removeKeySlot(label: string, options: RemoveKeySlotOptions = {}): Promise<void> {
    const extra = options.credentials ?? [];
    const wipeExtra = (): void => {
      for (const credential of extra) wipeCredential(credential);
    };
    try {
      this.#requireKeys('removeKeySlot');
    } catch (error) {
      wipeExtra();
      throw error;
    }
    return this.#exclusively(async () => {
      let kek: Uint8Array | undefined;
      try {
        const keys = this.#requireKeys('removeKeySlot');
        if (!keys.slots.some((slot) => slot.label === label)) throw new RangeError(`"label" ${JSON.stringify(label)} names no key slot`);
        if (keys.slots.length === 1) throw new RangeError('the last key slot cannot be removed: add another first');
        let nextSlots: KeySlotRecord[] = keys.slots.filter((slot) => slot.label !== label);
        if (options.rotateKek === true) {
          for (const slot of nextSlots) {
            if (keys.isUnlocked(slot.label)) continue;
            for (const credential of extra) if (await keys.unlockSlot(slot, credential, this.#slotContext)) break;
          }
          const locked = nextSlots.filter((slot) => !keys.isUnlocked(slot.label)).map((slot) => slot.label);
          if (locked.length > 0)
            throw armdbError(
              'ARMDB_WRONG_KEY',
              `rotateKek re-wraps the new KEK in every remaining slot; give the credentials of ${locked.map((name) => JSON.stringify(name)).join(', ')}`,
            );
          kek = createKek();
          const rewrapped: KeySlotRecord[] = [];
          for (const slot of nextSlots) rewrapped.push((await keys.rewrapSlot(slot, kek, this.#slotContext))!);
          nextSlots = rewrapped;
        }
        await this.#writeKeyring({ slots: nextSlots, kek });
        keys.commitSlots(nextSlots, new Map(), kek);
        kek = undefined;
        this.#audit('remove-key-slot', { label, kekRotated: options.rotateKek === true });
      } finally {
        kek?.fill(0);
        wipeExtra();
      }
    });
  }

  /**
   * Makes a fresh data key active: the KEYRING gains it first (atomically), then every shard moves to
   * a new active file under it. Older files keep their key until compaction rewrites them
   * (`compact({ reencrypt: true })`), after which the old key is removed from the KEYRING.
   */
  async rotateDataKey(): Promise<void> {
    this.#requireKeys('rotateDataKey');
    return this.#exclusively(() => this.#rotateDataKeyNow('call'));
  }

  /**
   * After open and after every barrier (one call from the engine's afterBarrier): rotates the data
   * key when `dataKeyMaxAgeMs` is set and the active key is older. A failure is published on
   * `armdb:audit` and tried again after the next barrier; it never fails the barrier.
   */
  checkDataKeyAge(): Promise<void> | undefined {
    const { dataKeyMaxAgeMs, keys, guard } = this.#parts;
    if (dataKeyMaxAgeMs === undefined || keys === undefined || this.#ageRotation !== undefined || guard.closing) return undefined;
    const age = this.dataKeyAgeMs ?? 0;
    if (age <= dataKeyMaxAgeMs) return undefined;
    const rotation = this.#exclusively(async () => {
      // Another rotation may have run while this one waited.
      if ((this.dataKeyAgeMs ?? 0) <= dataKeyMaxAgeMs || guard.closing) return;
      await this.#rotateDataKeyNow('age');
    })
      .catch((error: unknown) => {
        this.#audit('rotate-data-key', { reason: 'age', failed: true, code: (error as { code?: unknown }).code ?? 'ERROR' });
      })
      .finally(() => {
        this.#ageRotation = undefined;
      });
    this.#ageRotation = rotation;
    return rotation;
  }

  async #rotateDataKeyNow(reason: 'call' | 'age'): Promise<void> {
    const { directory, guard, shards, barrier } = this.#parts;
    const keys = this.#requireKeys('rotateDataKey');
    // The new key is always the highest id and active; only non-active keys are ever removed, so an
    // id is never handed out twice.
    const keyId = keys.addDataKey(this.#parts.now());
    // Active in memory (new files, the manifest) only once the KEYRING that holds it is durable.
    try {
      await this.#writeKeyring({ activeKeyId: keyId });
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
    this.#audit('rotate-data-key', { activeKeyId: keyId, reason });
  }

  /** Crypto-shredding: data keys no file (data or hint) uses any more leave the KEYRING. */
  shredUnusedKeys(): Promise<number[]> {
    return this.#exclusively(() => this.#shredUnusedKeysNow());
  }

  async #shredUnusedKeysNow(): Promise<number[]> {
    const { directory, shards } = this.#parts;
    const keys = this.#parts.keys;
    if (keys === undefined) return [];
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
    await this.#writeKeyring({});
    crashPoint('shred:keyring-written', () => ({ directory }));
    if (keyChannel.hasSubscribers) keyChannel.publish({ directory, event: 'shred', keyIds: unused });
    this.#audit('shred', { keyIds: unused });
    return unused;
  }

  /**
   * Seals and atomically replaces the KEYRING with the current keys (and `change.slots`, under
   * `change.kek` when the KEK rotates), with a **new meta key** (docs/security-model.md §Key
   * lifecycle): a copy of an older KEYRING, opened with a credential it holds, then yields a manifest
   * MAC key that no longer signs this store's MANIFEST.
   *
   * Order, so that the store opens after a crash at any point (docs/format.md §7.4):
   *   1. seal the new KEYRING;
   *   2. from now on sign every MANIFEST under the current and the next key, and make one such
   *      MANIFEST durable (a barrier): it verifies under the old and under the new KEYRING;
   *   3. replace the KEYRING (the commit point);
   *   4. sign under the next key alone.
   */
  #writeKeyring(change: { slots?: readonly KeySlotRecord[]; kek?: Uint8Array | undefined; activeKeyId?: number }): Promise<void> {
    const write = this.#keyringChain.then(() => this.#writeKeyringNow(change));
    this.#keyringChain = write.catch(() => undefined);
    return write;
  }

  async #writeKeyringNow(change: { slots?: readonly KeySlotRecord[]; kek?: Uint8Array | undefined; activeKeyId?: number }): Promise<void> {
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
      bytes = sealKeyring(keys, provider, {
        activeKeyId: change.activeKeyId ?? keys.activeKeyId,
        metaKey: nextMetaKey,
        ...(change.slots === undefined ? {} : { slots: change.slots }),
        ...(change.kek === undefined ? {} : { kek: change.kek }),
      });
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
    // A version-1 KEYRING is version 2 from its first rewrite on.
    keys.keyringVersion = 2;
  }
}
