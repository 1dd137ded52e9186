// Physical limits of this machine, measured in the same run as the stores: what any store could reach.
//
//   sequential write   1 MiB writes to a new file, one fsync at the end, MB/s (10^6 bytes)
//   random pread       4 KiB page-aligned preads at random offsets of that file (OS page cache warm), per second
//   AES-256-GCM seal   node:crypto, one cipher object per 4 KiB page (as armdb seals pages), MB/s
//   pread + decrypt    a random 4 KiB pread followed by an AES-256-GCM open of that page: the floor of a
//                      cold armdb get (no block-cache hit), per second
//
// The ciphers run as armdb's do: the key in a KeyObject (a raw key buffer is a different, slower-to-set-up
// path in node:crypto), a 12-byte nonce, a 40-byte AAD and a 16-byte tag per page.
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
// Pages of armdb's own size, so that the floor is measured in the unit a cold get reads.
import { PAGE_BYTES } from '../../dist/format/constants.js';
import { perSecond, randomIndexes } from './util.js';

const CHUNK = 2 ** 20;
/** The AAD of every page: as long as armdb's (docs/format.md §2), its content does not matter here. */
const AAD = randomBytes(40);

/** A fresh AES-256 key, held as armdb holds its file keys. */
const newKey = () => createSecretKey(randomBytes(32));

function nonceFor(page) {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(page, 8);
  return nonce;
}

function seal(key, page, plaintext) {
  const cipher = createCipheriv('aes-256-gcm', key, nonceFor(page), { authTagLength: 16 });
  cipher.setAAD(AAD);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** Writes `bytes` of sealed pages sequentially with one final fsync; returns MB/s and the page tags. */
function sequentialWrite(file, key, bytes) {
  const pages = bytes / PAGE_BYTES;
  const chunks = [];
  const tags = new Array(pages);
  for (let start = 0; start < pages; start += CHUNK / PAGE_BYTES) {
    const parts = [];
    for (let page = start; page < start + CHUNK / PAGE_BYTES; page++) {
      const sealed = seal(key, page, randomBytes(PAGE_BYTES));
      parts.push(sealed.ciphertext);
      tags[page] = sealed.tag;
    }
    chunks.push(Buffer.concat(parts));
  }
  const handle = fs.openSync(file, 'w');
  const started = performance.now();
  for (const chunk of chunks) fs.writeSync(handle, chunk);
  fs.fsyncSync(handle);
  const elapsed = performance.now() - started;
  fs.closeSync(handle);
  return { mbPerSecond: perSecond(bytes / 1e6, elapsed), tags };
}

function randomPread(file, pages, reads, seed) {
  const offsets = randomIndexes(reads, pages, seed);
  const buffer = Buffer.alloc(PAGE_BYTES);
  const handle = fs.openSync(file, 'r');
  const started = performance.now();
  for (let i = 0; i < reads; i++) fs.readSync(handle, buffer, 0, PAGE_BYTES, offsets[i] * PAGE_BYTES);
  const elapsed = performance.now() - started;
  fs.closeSync(handle);
  return perSecond(reads, elapsed);
}

function preadDecrypt(file, key, tags, reads, seed) {
  const offsets = randomIndexes(reads, tags.length, seed);
  const buffer = Buffer.alloc(PAGE_BYTES);
  const handle = fs.openSync(file, 'r');
  const started = performance.now();
  for (let i = 0; i < reads; i++) {
    const page = offsets[i];
    fs.readSync(handle, buffer, 0, PAGE_BYTES, page * PAGE_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key, nonceFor(page), { authTagLength: 16 });
    decipher.setAAD(AAD);
    decipher.setAuthTag(tags[page]);
    decipher.update(buffer);
    decipher.final();
  }
  const elapsed = performance.now() - started;
  fs.closeSync(handle);
  return perSecond(reads, elapsed);
}

function aesSeal(key, milliseconds) {
  const plaintext = randomBytes(PAGE_BYTES);
  let pages = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    for (let batch = 0; batch < 64; batch++, pages++) seal(key, pages, plaintext);
    elapsed = performance.now() - started;
  } while (elapsed < milliseconds);
  return perSecond((pages * PAGE_BYTES) / 1e6, elapsed);
}

/**
 * A file of sealed pages for the cold-get floor, measured right after each store's cold gets (same moment,
 * same neighbours): `run(reads, seed)` returns random 4 KiB pread + AES-256-GCM opens per second.
 */
export function createColdBaseline(directory, fileBytes) {
  const key = newKey();
  const file = path.join(directory, 'cold-baseline.bin');
  const { tags } = sequentialWrite(file, key, fileBytes);
  return { run: (reads, seed) => preadDecrypt(file, key, tags, reads, seed) };
}

/** One repetition of every physical measurement, in `directory` (removed by the caller). */
export function measurePhysical(directory, { fileBytes, reads, sealMs, seed }) {
  const key = newKey();
  const file = path.join(directory, 'physical.bin');
  const write = sequentialWrite(file, key, fileBytes);
  return {
    seqWriteMbPerSecond: write.mbPerSecond,
    preadPerSecond: randomPread(file, fileBytes / PAGE_BYTES, reads, seed),
    preadDecryptPerSecond: preadDecrypt(file, key, write.tags, reads, seed + 1),
    aesGcmSealMbPerSecond: aesSeal(key, sealMs),
  };
}
