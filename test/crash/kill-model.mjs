/**
 * The deterministic workload of the SIGKILL crash tests, shared by the child (writer-child.mjs) and
 * the parent (kill-harness.ts): the same seed gives the same operations in both processes, so the
 * parent can replay the model up to any op counter the child acknowledged.
 *
 * Keys are 16 bytes; the store routes by the first byte (shardPrefixBits 8), so the three keys of an
 * atomic group (same first byte) always share a shard. Every value says who wrote it (run, op index,
 * key id, generation, length) and the rest of it is derived from those, so a torn, shifted or stale
 * value can never pass for a valid one. Plain JS (the child runs without a TypeScript loader); types
 * in kill-model.d.mts.
 */

export const KEY_SIZE = 16;
/** Plain keys 0..PLAIN_KEYS-1. */
export const PLAIN_KEYS = 240;
/** Atomic groups 0..GROUPS-1 of GROUP_SIZE keys each. */
export const GROUPS = 16;
export const GROUP_SIZE = 3;
/** The child reports progress after every BATCH ops, so it is at most BATCH ops ahead of its last line. */
export const BATCH = 8;

/** Options of the store (each side adds the key and `autoCompact`). */
export const STORE_OPTIONS = Object.freeze({
  keySize: KEY_SIZE,
  shards: 2,
  shardPrefixBits: 8,
  maxFileBytes: 65536,
  writeBufferBytes: 8192,
  syncIntervalMs: 0,
});

/** xorshift32 in [0, 1). */
export class Random {
  #state;
  constructor(seed) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }
  next() {
    let x = this.#state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#state = x;
    return x / 0x1_0000_0000;
  }
  int(low, high) {
    return low + Math.floor(this.next() * (high - low + 1));
  }
}

/** Key id of plain key n: n. Key id of member j of group g: 0x10000 + g * 4 + j. */
export function keyId(kind, n, j = 0) {
  return kind === 'plain' ? n : 0x10000 + n * 4 + j;
}

export function keyOf(id) {
  const key = new Uint8Array(KEY_SIZE);
  const view = new DataView(key.buffer);
  if (id < 0x10000) {
    key[0] = id % 128; // routing byte: plain keys spread over both shards
    view.setUint32(4, id);
    key[8] = 0x70; // 'p'
  } else {
    const group = (id - 0x10000) >> 2;
    key[0] = 0x80 + group; // one routing byte per group: its members share a shard
    view.setUint32(4, id);
    key[8] = 0x67; // 'g'
  }
  return key;
}

export function groupKeyIds(group) {
  return Array.from({ length: GROUP_SIZE }, (_, j) => keyId('group', group, j));
}

/** Every key the workload can touch, as ids. */
export function allKeyIds() {
  const ids = [];
  for (let n = 0; n < PLAIN_KEYS; n++) ids.push(keyId('plain', n));
  for (let g = 0; g < GROUPS; g++) ids.push(...groupKeyIds(g));
  return ids;
}

const VALUE_HEADER_BYTES = 24;
const MAGIC = 0x41524d56; // 'ARMV'

export function encodeValue(run, op, id, generation, length) {
  const value = new Uint8Array(Math.max(length, VALUE_HEADER_BYTES));
  const view = new DataView(value.buffer);
  view.setUint32(0, MAGIC);
  view.setUint32(4, run);
  view.setUint32(8, op);
  view.setUint32(12, id);
  view.setUint32(16, generation);
  view.setUint32(20, value.length);
  let x = (Math.imul(run, 0x9e3779b1) ^ Math.imul(op, 0x85ebca6b) ^ Math.imul(id, 0xc2b2ae35)) >>> 0 || 1;
  for (let index = VALUE_HEADER_BYTES; index < value.length; index++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    value[index] = x & 0xff;
  }
  return value;
}

/** The fields of a value, or undefined unless every byte is exactly what encodeValue makes. */
export function decodeValue(bytes) {
  if (bytes.length < VALUE_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== MAGIC || view.getUint32(20) !== bytes.length) return undefined;
  const fields = { run: view.getUint32(4), op: view.getUint32(8), id: view.getUint32(12), generation: view.getUint32(16) };
  const expected = encodeValue(fields.run, fields.op, fields.id, fields.generation, bytes.length);
  return Buffer.compare(Buffer.from(expected), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) === 0 ? fields : undefined;
}

function valueLength(random) {
  const roll = random.next();
  if (roll < 0.9) return random.int(1, 1500);
  if (roll < 0.97) return random.int(1500, 6000);
  return random.int(6000, 12000);
}

/**
 * The ops of run `run` (seeded by `seed`), in order, forever. Each op is one commit:
 *   { index, kind: 'put', id, value } | { index, kind: 'delete', id }
 *   | { index, kind: 'group-put', group, generation, writes: [{ id, value }] } | { index, kind: 'group-delete', group, ids }
 * plus `syncAfter: true` on the ops after which the child calls sync() (after every op with `syncEveryOp`:
 * a durable commit per op, which the commit journal carries, docs/format.md §6A).
 */
export function* operations(run, seed, syncEveryOp = false) {
  const random = new Random(seed);
  let nextSync = syncEveryOp ? 1 : random.int(12, 60);
  for (let index = 0; ; index++) {
    const roll = random.next();
    let op;
    if (roll < 0.5) {
      const id = keyId('plain', random.int(0, PLAIN_KEYS - 1));
      op = { index, kind: 'put', id, value: encodeValue(run, index, id, 0, valueLength(random)) };
    } else if (roll < 0.7) {
      op = { index, kind: 'delete', id: keyId('plain', random.int(0, PLAIN_KEYS - 1)) };
    } else if (roll < 0.95) {
      const group = random.int(0, GROUPS - 1);
      const generation = run * 0x10000 + index; // shared by the group's members
      op = {
        index,
        kind: 'group-put',
        group,
        generation,
        writes: groupKeyIds(group).map((id) => ({ id, value: encodeValue(run, index, id, generation, random.int(1, 2000)) })),
      };
    } else {
      const group = random.int(0, GROUPS - 1);
      op = { index, kind: 'group-delete', group, ids: groupKeyIds(group) };
    }
    op.syncAfter = index + 1 === nextSync;
    if (op.syncAfter) nextSync += syncEveryOp ? 1 : random.int(12, 60);
    yield op;
  }
}
