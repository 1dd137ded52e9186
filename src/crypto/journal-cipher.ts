/**
 * Sealing the chunks of a commit journal (docs/format.md §6A.3). One key per data-file instance,
 * its own (a key unique to the journal, never used for a page or a hint chunk):
 *
 * ```
 * key   = HKDF-SHA256(ikm = data key, salt = file salt, info = "armdb/v3 journal" ‖ binding, L = 32)
 * binding = algorithm u8 ‖ database id (16) ‖ shard u16 ‖ file id u32 ‖ key id u32
 * nonce = chunk index u64 LE ‖ kind u32 LE (= 3)
 * AAD   = database id (16) ‖ shard u16 ‖ kind u8 (= 3) ‖ algorithm u8 ‖ file id u32 ‖ key id u32
 *         ‖ chunk index u64 ‖ page index u32 ‖ offset u16 ‖ length u16                 (44 bytes)
 * ```
 * The chunk index counts every chunk the file's writer ever sealed and never restarts (a journal
 * restarted on a fresh file keeps counting, §6A.4), and a file whose writer stopped (crash, close) is
 * never journaled again: every (key, nonce) pair is used once by construction. Without encryption
 * the tag is CRC-32(AAD ‖ plaintext) and 12 zero bytes, as for pages (§2.7).
 */
import { inspect } from 'node:util';
import { assert } from '../assert.js';
import { integrityError } from '../errors.js';
import { ByteWriter, isAllZero } from '../format/bytes.js';
import { Algorithm, FileKind, KEY_BYTES, TAG_BYTES } from '../format/constants.js';
import { crc32 } from '../format/crc32.js';
import type { JournalChunkPlace } from '../format/journal.js';
import type { FileIdentity } from '../format/tag-file.js';
import { unitNonce } from './file-cipher.js';
import type { Aead, CryptoProvider } from './provider.js';

const JOURNAL_INFO_LABEL = new TextEncoder().encode('armdb/v3 journal');
export const JOURNAL_AAD_BYTES = 44;
const ZERO_KEY = new Uint8Array(KEY_BYTES);

/** Called with every (journal key, nonce) use, for tests that prove nonces are never reused. */
export type JournalSealObserver = (event: { readonly journalKeyFingerprint: string; readonly nonceHex: string }) => void;
let sealObserver: JournalSealObserver | undefined;

/** @internal Test hook: observe every journal seal. */
export function setJournalSealObserver(observer: JournalSealObserver | undefined): void {
  sealObserver = observer;
}

export type JournalIdentity = Omit<FileIdentity, 'kind'>;

/** The nonce of chunk `chunkIndex`: a unit nonce (§2.6) with the journal's file kind. */
export function journalNonce(chunkIndex: number): Uint8Array {
  return unitNonce(chunkIndex, FileKind.journal);
}

export function journalAad(identity: JournalIdentity, chunkIndex: number, place: JournalChunkPlace): Uint8Array {
  return new ByteWriter(JOURNAL_AAD_BYTES)
    .raw(identity.databaseId, 16)
    .u16(identity.shard)
    .u8(FileKind.journal)
    .u8(identity.algorithm)
    .u32(identity.fileId)
    .u32(identity.keyId)
    .u64(chunkIndex)
    .u32(place.pageIndex)
    .u16(place.offset)
    .u16(place.length)
    .finish();
}

/** Seals (in order, each index once) and opens the chunks of one data file's journal. */
export class JournalCipher {
  readonly identity: JournalIdentity;
  readonly #aead: Aead | undefined;
  readonly #fingerprint: string;
  readonly #writable: boolean;
  #nextSealIndex: number;

  /**
   * @param firstSealIndex Where this writer's chunk counter starts (0 for a new file); `undefined`
   *   makes a reader that refuses to seal (a file recovered from disk is never journaled again).
   */
  constructor(provider: CryptoProvider, identity: JournalIdentity, dataKey: Uint8Array | undefined, firstSealIndex: number | undefined) {
    if (identity.algorithm === Algorithm.aes256gcm && (dataKey === undefined || dataKey.length !== KEY_BYTES))
      throw new RangeError('an encrypted journal needs a 32-byte data key');
    this.identity = identity;
    const binding = new ByteWriter(JOURNAL_INFO_LABEL.length + 27)
      .raw(JOURNAL_INFO_LABEL)
      .u8(identity.algorithm)
      .raw(identity.databaseId, 16)
      .u16(identity.shard)
      .u32(identity.fileId)
      .u32(identity.keyId)
      .finish();
    const key = provider.hkdf(identity.algorithm === Algorithm.none ? ZERO_KEY : dataKey!, identity.salt, binding, KEY_BYTES);
    this.#aead = identity.algorithm === Algorithm.aes256gcm ? provider.aead(key) : undefined;
    this.#fingerprint = Buffer.from(provider.hmac(key, JOURNAL_INFO_LABEL).subarray(0, 8)).toString('hex');
    key.fill(0);
    this.#writable = firstSealIndex !== undefined;
    this.#nextSealIndex = firstSealIndex ?? 0;
  }

  /** The index the next sealed chunk gets. */
  get nextChunkIndex(): number {
    return this.#nextSealIndex;
  }

  /** Seals the next chunk: its index is the writer's counter, which only ever grows. */
  seal(place: JournalChunkPlace, plaintext: Uint8Array): { chunkIndex: number; ciphertext: Uint8Array; tag: Uint8Array } {
    assert(this.#writable, 'JournalCipher: a recovered journal is never sealed into');
    assert(plaintext.length === place.length, 'JournalCipher: the place names the plaintext length');
    const chunkIndex = this.#nextSealIndex++;
    const nonce = journalNonce(chunkIndex);
    if (sealObserver !== undefined)
      sealObserver({ journalKeyFingerprint: this.#fingerprint, nonceHex: Buffer.from(nonce).toString('hex') });
    const aad = journalAad(this.identity, chunkIndex, place);
    if (this.#aead !== undefined) return { chunkIndex, ...this.#aead.seal(nonce, aad, plaintext) };
    const tag = new Uint8Array(TAG_BYTES);
    new DataView(tag.buffer).setUint32(0, crc32(plaintext, 0, plaintext.length, crc32(aad)), true);
    return { chunkIndex, ciphertext: plaintext.slice(), tag };
  }

  /** Opens chunk `chunkIndex`; ARMDB_INTEGRITY when it does not authenticate. */
  open(chunkIndex: number, place: JournalChunkPlace, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array {
    const aad = journalAad(this.identity, chunkIndex, place);
    const failure = () =>
      integrityError(
        `shard ${this.identity.shard}: journal chunk ${chunkIndex} of file ${this.identity.fileId} fails authentication`,
        undefined,
        {
          shard: this.identity.shard,
          fileId: this.identity.fileId,
        },
      );
    if (this.#aead !== undefined) {
      try {
        return this.#aead.open(journalNonce(chunkIndex), aad, ciphertext, tag);
      } catch {
        throw failure();
      }
    }
    const expected = crc32(ciphertext, 0, ciphertext.length, crc32(aad));
    if (new DataView(tag.buffer, tag.byteOffset, TAG_BYTES).getUint32(0, true) !== expected || !isAllZero(tag.subarray(4))) throw failure();
    return ciphertext.slice();
  }

  [inspect.custom](): string {
    return `JournalCipher { shard: ${this.identity.shard}, fileId: ${this.identity.fileId}, keyId: ${this.identity.keyId} }`;
  }

  toJSON(): object {
    return { shard: this.identity.shard, fileId: this.identity.fileId, keyId: this.identity.keyId };
  }
}
