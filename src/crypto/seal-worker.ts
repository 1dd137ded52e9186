/**
 * The source of the sealing worker (src/crypto/seal-ring.ts), run with `new Worker(source, { eval: true })`
 * so that the same text runs from `src/` under a test runner and from `dist/` once built.
 *
 * The worker owns no nonce and no page index: each slot of the ring names the file (a key the main
 * thread registered, as a KeyObject sent through a MessagePort) and the first page index, both chosen by
 * the main thread, which reserved those unit indexes in order (FileCipher.reserveUnits). The worker
 * seals the slot's pages as FileCipher.seal would, one AES-256-GCM cipher per page (docs/format.md §2),
 * writes ciphertexts and tags into the slot, and hands the slot back. On any failure it marks the slot
 * failed, marks itself dead and stops: the main thread then refuses writes (ARMDB_POISONED), and no page
 * of that slot ever reaches the disk.
 *
 * Slot states (Int32 per slot in `control`): 0 empty, 1 filled (plaintext ready), 2 sealed, 3 failed,
 * 4 stop. `control[slotCount]` is 1 once the worker is dead. Per slot `header` (Float64) holds
 * [key id, first page index, page count, fail-for-test].
 */
export const SEAL_WORKER_SOURCE = `
'use strict';
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { createCipheriv } = require('node:crypto');
const { control, header, memory, port, slotCount, slotPages } = workerData;
const PAGE = 4096, TAG = 16, FIELDS = 4;
const FILLED = 1, SEALED = 2, FAILED = 3, STOP = 4;
const slotStride = slotPages * (2 * PAGE + TAG);
const bytes = new Uint8Array(memory);
const keys = new Map();
const nonce = Buffer.alloc(12);
function takeMessages() {
  for (;;) {
    const received = receiveMessageOnPort(port);
    if (received === undefined) return;
    const message = received.message;
    if (message.type === 'key') keys.set(message.id, { key: message.key, aad: Buffer.from(message.aad), kind: message.kind });
    else if (message.type === 'forget') keys.delete(message.id);
  }
}
function fail(slot) {
  Atomics.store(control, slotCount, 1);
  Atomics.store(control, slot, FAILED);
  Atomics.notify(control, slot);
}
let slot = 0;
for (;;) {
  let state = Atomics.load(control, slot);
  while (state !== FILLED && state !== STOP) {
    Atomics.wait(control, slot, state);
    state = Atomics.load(control, slot);
  }
  if (state === STOP) break;
  try {
    takeMessages();
    const at = slot * FIELDS;
    const entry = keys.get(header[at]);
    const firstPage = header[at + 1];
    const pages = header[at + 2];
    if (entry === undefined) throw new Error('no key registered for the slot');
    if (header[at + 3] !== 0) throw new Error('seal failure injected by a test');
    if (!(pages >= 1 && pages <= slotPages)) throw new Error('slot page count out of range');
    const plainAt = slot * slotStride;
    const cipherAt = plainAt + slotPages * PAGE;
    const tagAt = cipherAt + slotPages * PAGE;
    const aad = entry.aad;
    for (let page = 0; page < pages; page++) {
      const index = firstPage + page;
      const low = index % 4294967296, high = Math.floor(index / 4294967296);
      nonce.writeUInt32LE(low, 0); nonce.writeUInt32LE(high, 4); nonce.writeUInt32LE(entry.kind, 8);
      aad.writeUInt32LE(low, 28); aad.writeUInt32LE(high, 32); aad.writeUInt32LE(0, 36);
      const cipher = createCipheriv('aes-256-gcm', entry.key, nonce, { authTagLength: TAG });
      cipher.setAAD(aad);
      const out = cipher.update(bytes.subarray(plainAt + page * PAGE, plainAt + (page + 1) * PAGE));
      cipher.final();
      if (out.length !== PAGE) throw new Error('a sealed page has the plaintext length');
      bytes.set(out, cipherAt + page * PAGE);
      bytes.set(cipher.getAuthTag(), tagAt + page * TAG);
    }
  } catch {
    fail(slot);
    break;
  }
  Atomics.store(control, slot, SEALED);
  Atomics.notify(control, slot);
  slot = (slot + 1) % slotCount;
}
keys.clear();
port.close();
`;
