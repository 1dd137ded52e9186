/**
 * Per-file keys, nonces and AAD (docs/format.md §2). One {@link FileCipher} serves one file instance.
 *
 * ```
 * encKey ‖ macKey = HKDF-SHA256(ikm = data key, salt = file salt, info = "armdb/v1 file" ‖ binding, L = 64)
 * binding         = kind u8 ‖ algorithm u8 ‖ database id (16) ‖ shard u16 ‖ file id u32 ‖ key id u32
 * nonce           = unit index u64 LE ‖ kind u32 LE                         (12 bytes)
 * AAD             = database id (16) ‖ shard u16 ‖ kind u8 ‖ algorithm u8 ‖ file id u32 ‖ key id u32
 *                   ‖ unit index u64 ‖ unit flags u32                      (40 bytes)
 * ```
 * The salt is fresh for every file instance, so the (key, nonce) pair of every sealed unit is unique
 * as long as one writer seals each unit index once; the writer enforces that by sealing strictly in
 * order. Without encryption the same layout is kept, the data key is 32 zero bytes and a unit's tag is
 * CRC-32 over AAD ‖ plaintext followed by 12 zero bytes: integrity against accidents, not attackers.
 */
import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { assert } from '../assert.js';
import { integrityError, type ArmdbErrorDetails } from '../errors.js';
import { ByteWriter, isAllZero, setU64 } from '../format/bytes.js';
import { Algorithm, FileKind, KEY_BYTES, TAG_BYTES, type AlgorithmId } from '../format/constants.js';
import { crc32 } from '../format/crc32.js';
import type { FileIdentity } from '../format/tag-file.js';
import { aeadKeyObject } from './node-provider.js';
import type { Aead, CryptoProvider } from './provider.js';

const FILE_INFO_LABEL = new TextEncoder().encode('armdb/v1 file');
export const AAD_BYTES = 40;
const ZERO_KEY = new Uint8Array(KEY_BYTES);

function bindingBytes(identity: FileIdentity): Uint8Array {
  return new ByteWriter(FILE_INFO_LABEL.length + 28)
    .raw(FILE_INFO_LABEL)
    .u8(identity.kind)
    .u8(identity.algorithm)
    .raw(identity.databaseId, 16)
    .u16(identity.shard)
    .u32(identity.fileId)
    .u32(identity.keyId)
    .finish();
}

/** The 12-byte nonce of a unit (page or hint chunk). */
export function unitNonce(unitIndex: number, kind: number): Uint8Array {
  return new ByteWriter(12).u64(unitIndex).u32(kind).finish();
}

/** The 40-byte AAD of a unit. */
export function unitAad(identity: FileIdentity, unitIndex: number, unitFlags: number): Uint8Array {
  return new ByteWriter(AAD_BYTES)
    .raw(identity.databaseId, 16)
    .u16(identity.shard)
    .u8(identity.kind)
    .u8(identity.algorithm)
    .u32(identity.fileId)
    .u32(identity.keyId)
    .u64(unitIndex)
    .u32(unitFlags)
    .finish();
}

/** A sealed unit: ciphertext (same length as the plaintext) and its 16-byte tag. */
export interface SealedUnit {
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** Units sealed by {@link FileCipher.sealUnits}: the ciphertexts, then the 16-byte tags, back to back. */
export interface SealedUnits {
  readonly ciphertext: Uint8Array;
  readonly tags: Uint8Array;
}

/** Largest scratch {@link FileCipher.sealUnits} keeps between calls (a run of a larger value gets memory of its own). */
const SEAL_SCRATCH_MAX_BYTES = 4 * 2 ** 20;
let sealCiphertext = new Uint8Array(0);
let sealTags = new Uint8Array(0);

/**
 * Scratch for sealed units. Ciphertext and tags are not secret (they go to disk as they are), and every
 * write is synchronous, so one buffer serves every file.
 */
function sealScratch(ciphertextBytes: number, tagBytes: number): SealedUnits {
  if (ciphertextBytes > SEAL_SCRATCH_MAX_BYTES) return { ciphertext: new Uint8Array(ciphertextBytes), tags: new Uint8Array(tagBytes) };
  if (sealCiphertext.length < ciphertextBytes)
    sealCiphertext = new Uint8Array(Math.min(SEAL_SCRATCH_MAX_BYTES, Math.max(ciphertextBytes, 2 * sealCiphertext.length)));
  if (sealTags.length < tagBytes) sealTags = new Uint8Array(Math.max(tagBytes, 2 * sealTags.length));
  return { ciphertext: sealCiphertext.subarray(0, ciphertextBytes), tags: sealTags.subarray(0, tagBytes) };
}

/** Called with every (file key, nonce) use, for tests that prove nonces are never reused. */
export type SealObserver = (event: { readonly fileKeyFingerprint: string; readonly nonceHex: string }) => void;
let sealObserver: SealObserver | undefined;

/** @internal Test hook: observe every seal. */
export function setSealObserver(observer: SealObserver | undefined): void {
  sealObserver = observer;
}

export type FileCipherMode = 'read' | 'write';

/** Seals and opens the units of one file instance; also provides the file's MAC. */
export class FileCipher {
  readonly identity: FileIdentity;
  readonly mode: FileCipherMode;
  readonly #provider: CryptoProvider;
  readonly #aead: Aead | undefined;
  readonly #macKey: Uint8Array;
  readonly #fingerprint: string;
  #nextSealIndex = 0;
  /**
   * The nonce and AAD of the unit being sealed or opened, rewritten in place for each unit (every
   * provider consumes them within the call: node:crypto copies them, noble makes a new cipher per call).
   */
  readonly #nonce = new Uint8Array(12);
  readonly #nonceView = new DataView(this.#nonce.buffer);
  readonly #aad: Uint8Array;
  readonly #aadView: DataView;
  /** The AEAD's own KeyObject, for the sealing worker (src/crypto/seal-ring.ts): write-mode AES-GCM files of the `node` provider. */
  readonly #ringKey: KeyObject | undefined;

  /**
   * @param dataKey The data key named by `identity.keyId` (ignored without encryption).
   * @param mode `'write'` only for a file this process created; sealing is refused in `'read'` mode.
   */
  constructor(provider: CryptoProvider, identity: FileIdentity, dataKey: Uint8Array | undefined, mode: FileCipherMode) {
    if (identity.algorithm === Algorithm.aes256gcm && (dataKey === undefined || dataKey.length !== KEY_BYTES)) {
      throw new RangeError('an encrypted file needs a 32-byte data key');
    }
    this.identity = identity;
    this.mode = mode;
    this.#provider = provider;
    const keys = provider.hkdf(
      identity.algorithm === Algorithm.none ? ZERO_KEY : dataKey!,
      identity.salt,
      bindingBytes(identity),
      2 * KEY_BYTES,
    );
    const encKey = keys.subarray(0, KEY_BYTES);
    this.#aead = identity.algorithm === Algorithm.aes256gcm ? provider.aead(encKey) : undefined;
    this.#macKey = keys.slice(KEY_BYTES);
    this.#ringKey = mode === 'write' && this.#aead !== undefined ? aeadKeyObject(this.#aead) : undefined;
    this.#fingerprint = Buffer.from(provider.hmac(keys.subarray(0, KEY_BYTES), FILE_INFO_LABEL).subarray(0, 8)).toString('hex');
    keys.fill(0);
    this.#aad = unitAad(identity, 0, 0);
    this.#aadView = new DataView(this.#aad.buffer, this.#aad.byteOffset, AAD_BYTES);
    this.#nonceView.setUint32(8, identity.kind, true);
  }

  get algorithm(): AlgorithmId {
    return this.identity.algorithm;
  }

  /** How many units this writer has sealed: the next index it will accept. */
  get sealedUnitCount(): number {
    return this.#nextSealIndex;
  }

  /** HMAC-SHA256 under the file's MAC key. */
  readonly mac = (bytes: Uint8Array): Uint8Array => this.#provider.hmac(this.#macKey, bytes);

  /**
   * Seals unit `unitIndex`. Units must be sealed in order 0, 1, 2, … and each exactly once: a second
   * seal of an index would reuse a (key, nonce) pair, which breaks AES-GCM (SP 800-38D §8).
   */
  seal(unitIndex: number, plaintext: Uint8Array, unitFlags = 0): SealedUnit {
    assert(this.mode === 'write', 'FileCipher: a file opened for reading is never sealed');
    // The message is built only on failure: this runs for every page.
    if (unitIndex !== this.#nextSealIndex)
      assert(false, `FileCipher: unit ${unitIndex} sealed in order (next is ${this.#nextSealIndex}); a nonce must never repeat`);
    this.#nextSealIndex++;
    // The observer first: it may itself seal with this cipher, which rewrites the scratch nonce and AAD.
    if (sealObserver !== undefined)
      sealObserver({
        fileKeyFingerprint: this.#fingerprint,
        nonceHex: Buffer.from(unitNonce(unitIndex, this.identity.kind)).toString('hex'),
      });
    const nonce = this.#unitNonce(unitIndex);
    const aad = this.#unitAad(unitIndex, unitFlags);
    if (this.#aead !== undefined) return this.#aead.seal(nonce, aad, plaintext);
    const tag = new Uint8Array(TAG_BYTES);
    new DataView(tag.buffer).setUint32(0, unitCrc(aad, plaintext), true);
    return { ciphertext: plaintext.slice(), tag };
  }

  /**
   * Reserves units `firstUnitIndex` … `firstUnitIndex + count - 1` for the sealing worker, with the
   * order check and the observer of {@link seal}: the indexes (so the nonces) are still decided here, on
   * the thread that owns the file, and each is handed out once. The worker seals them with
   * {@link ringSealing}'s key and AAD exactly as {@link seal} would (unit flags 0).
   */
  reserveUnits(firstUnitIndex: number, count: number): void {
    assert(this.mode === 'write', 'FileCipher: a file opened for reading is never sealed');
    if (firstUnitIndex !== this.#nextSealIndex)
      assert(false, `FileCipher: unit ${firstUnitIndex} sealed in order (next is ${this.#nextSealIndex}); a nonce must never repeat`);
    this.#nextSealIndex += count;
    if (sealObserver !== undefined)
      for (let unit = firstUnitIndex; unit < firstUnitIndex + count; unit++)
        sealObserver({ fileKeyFingerprint: this.#fingerprint, nonceHex: Buffer.from(unitNonce(unit, this.identity.kind)).toString('hex') });
  }

  /**
   * What the sealing worker needs to seal this file's units: the encryption key as a KeyObject (it is
   * cloned into the worker by postMessage, never as bytes in a string), the 40-byte AAD with the
   * identity part filled in, and the unit kind of the nonce. Undefined where the worker is not used:
   * files opened for reading, files without encryption, and the `noble` provider (which is chosen to
   * keep OpenSSL out).
   */
  get ringSealing(): { readonly key: KeyObject; readonly aad: Uint8Array; readonly kind: number } | undefined {
    if (this.#ringKey === undefined) return undefined;
    return { key: this.#ringKey, aad: unitAad(this.identity, 0, 0), kind: this.identity.kind };
  }

  /**
   * Seals units `firstUnitIndex`, `firstUnitIndex + 1`, … — one per `unitBytes` of `plaintext` — as
   * {@link seal} would one by one, with their ciphertexts and tags back to back. Both results are views
   * of scratch memory shared by every cipher and rewritten by the next call: write them out (or copy
   * them) before sealing again. A writer that seals runs of pages thus allocates (and the kernel
   * faults in) no fresh megabyte per run.
   */
  sealUnits(firstUnitIndex: number, plaintext: Uint8Array, unitBytes: number): SealedUnits {
    const count = plaintext.length / unitBytes;
    assert(Number.isInteger(count), 'FileCipher: sealUnits takes whole units');
    const { ciphertext, tags } = sealScratch(plaintext.length, count * TAG_BYTES);
    for (let unit = 0; unit < count; unit++) {
      const offset = unit * unitBytes;
      const sealed = this.seal(firstUnitIndex + unit, plaintext.subarray(offset, offset + unitBytes));
      ciphertext.set(sealed.ciphertext, offset);
      tags.set(sealed.tag, unit * TAG_BYTES);
    }
    return { ciphertext, tags };
  }

  /** Verifies and decrypts unit `unitIndex`; throws ARMDB_INTEGRITY and returns nothing on failure. */
  open(unitIndex: number, ciphertext: Uint8Array, tag: Uint8Array, unitFlags = 0): Uint8Array {
    if (tag.length !== TAG_BYTES)
      throw integrityError(`tag of unit ${unitIndex} has ${tag.length} bytes`, undefined, this.#location(unitIndex));
    const aad = this.#unitAad(unitIndex, unitFlags);
    if (this.#aead !== undefined) {
      try {
        return this.#aead.open(this.#unitNonce(unitIndex), aad, ciphertext, tag);
      } catch (cause) {
        throw integrityError(
          `file ${this.identity.fileId} of shard ${this.identity.shard}: unit ${unitIndex} fails authentication`,
          cause,
          this.#location(unitIndex),
        );
      }
    }
    const stored = new DataView(tag.buffer, tag.byteOffset, TAG_BYTES).getUint32(0, true);
    // An empty unit may carry tag 0: zlib, which computed these tags before, returns 0 for an empty
    // input without memory behind it whatever the AAD (docs/format.md §2.7).
    const legacyEmpty = ciphertext.length === 0 && stored === 0;
    if ((stored !== unitCrc(aad, ciphertext) && !legacyEmpty) || !isAllZero(tag.subarray(4))) {
      throw integrityError(
        `file ${this.identity.fileId} of shard ${this.identity.shard}: unit ${unitIndex} fails its CRC-32`,
        undefined,
        this.#location(unitIndex),
      );
    }
    return ciphertext.slice();
  }

  /**
   * Where a failed unit is, for {@link ArmdbError.details}: a unit of a data file is a page
   * (docs/format.md §2.6); a hint file's units are chunks, which have no page index.
   */
  #location(unitIndex: number): ArmdbErrorDetails {
    const { shard, fileId, kind } = this.identity;
    return kind === FileKind.data ? { shard, fileId, pageIndex: unitIndex } : { shard, fileId };
  }

  /** {@link unitNonce} of this file, in the instance's scratch buffer. */
  #unitNonce(unitIndex: number): Uint8Array {
    setU64(this.#nonceView, 0, unitIndex);
    return this.#nonce;
  }

  /** {@link unitAad} of this file, in the instance's scratch buffer (the identity part is fixed). */
  #unitAad(unitIndex: number, unitFlags: number): Uint8Array {
    setU64(this.#aadView, AAD_BYTES - 12, unitIndex);
    this.#aadView.setUint32(AAD_BYTES - 4, unitFlags, true);
    return this.#aad;
  }

  /** Wipes the MAC key; the AEAD key lives in a KeyObject (node) or is dropped with this object. */
  destroy(): void {
    this.#macKey.fill(0);
  }

  [inspect.custom](): string {
    return `FileCipher { shard: ${this.identity.shard}, fileId: ${this.identity.fileId}, keyId: ${this.identity.keyId}, mode: '${this.mode}' }`;
  }

  toJSON(): object {
    return { shard: this.identity.shard, fileId: this.identity.fileId, keyId: this.identity.keyId, mode: this.mode };
  }
}

/** The CRC-32 tag of an unencrypted unit: CRC-32(AAD ‖ plaintext), docs/format.md §2.7. */
function unitCrc(aad: Uint8Array, plaintext: Uint8Array): number {
  return crc32(plaintext, 0, plaintext.length, crc32(aad));
}
