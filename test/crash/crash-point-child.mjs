/**
 * The child of crash-points-kill.test.ts: runs every multi-step operation of the engine through the
 * built package and kills itself with SIGKILL at one named crash point (src/engine/crash-points.ts),
 * as a real process dying there would. Reports on stdout, one JSON object a line, written synchronously:
 *
 *   { "type": "ack", "round": r }     rounds 0..r are durable (a sync() or close() resolved after them)
 *   { "type": "key-changed" }         changeKey resolved: only the second key opens the store now
 *   { "type": "point", "name" }       the point where it kills itself (the next thing it does)
 *   { "type": "done" }                the scenario ended without reaching the point
 *   { "type": "fatal", "message" }    any error (exit 1)
 *
 * Environment: ARMDB_POINT_DIR, ARMDB_POINT (a crash point name), ARMDB_POINT_PASS (1-based),
 * ARMDB_POINT_AFTER_ACK ('1': count passes only once round 0 is acknowledged, so that something
 * acknowledged is at stake), ARMDB_POINT_KEYS (two raw 32-byte keys as hex, concatenated),
 * ARMDB_POINT_COLLECTION ('VarTree' for a Tree, whose compactions write in key order; else VarMap).
 * keyOf(k) does not sort by k, so the rounds write a Tree's keys out of key order.
 *
 * Round r writes every key k of 0..KEYS-1 as value(r, k); rounds 0..3 run before the key operations,
 * 4..5 after. Recovery must give every key the value of one round, at least the last acknowledged.
 */
import { writeSync } from 'node:fs';
import { setCrashPointHandler } from '../../dist/engine/crash-points.js';
import { VarMap, VarTree } from '../../dist/index.js';
import { encodeValue } from './kill-model.mjs';

export const KEYS = 300;
export const OPTIONS = {
  keySize: 16,
  shards: 2,
  maxFileBytes: 65536,
  writeBufferBytes: 8192,
  syncIntervalMs: 0,
  autoCompact: false,
  hints: true,
};

export function keyOf(k) {
  const key = new Uint8Array(16);
  key[0] = k % 251;
  new DataView(key.buffer).setUint32(12, k);
  return key;
}

/** value(r, k): 24..~600 bytes, every byte derived from (r, k) (kill-model.mjs's self-describing values). */
export function valueFor(round, k) {
  return encodeValue(round, 0, k, 0, 24 + ((k * 37 + round * 101) % 577));
}

function report(message) {
  writeSync(1, `${JSON.stringify(message)}\n`);
}

async function main() {
  const directory = process.env.ARMDB_POINT_DIR;
  const point = process.env.ARMDB_POINT;
  const pass = Number(process.env.ARMDB_POINT_PASS ?? '1');
  const keys = Buffer.from(process.env.ARMDB_POINT_KEYS ?? '', 'hex');
  const first = new Uint8Array(keys.subarray(0, 32));
  const second = new Uint8Array(keys.subarray(32, 64));
  const afterAck = process.env.ARMDB_POINT_AFTER_ACK === '1';
  let acknowledged = false;
  let seen = 0;
  setCrashPointHandler((name) => {
    if (afterAck && !acknowledged) return;
    if (name === point && ++seen === pass) {
      report({ type: 'point', name });
      process.kill(process.pid, 'SIGKILL');
    }
  });
  const Collection = process.env.ARMDB_POINT_COLLECTION === 'VarTree' ? VarTree : VarMap;
  const db = await Collection.open(directory, { ...OPTIONS, encryption: { key: first } });
  const round = async (r) => {
    for (let k = 0; k < KEYS; k++) db.put(keyOf(k), valueFor(r, k));
    await db.sync();
    acknowledged = true;
    report({ type: 'ack', round: r });
  };
  for (let r = 0; r < 4; r++) await round(r);
  await db.compact();
  await db.rotateDataKey();
  await db.compact({ reencrypt: true });
  await db.changeKey({ key: second });
  report({ type: 'key-changed' });
  await round(4);
  for (let k = 0; k < KEYS; k++) db.put(keyOf(k), valueFor(5, k));
  await db.close();
  acknowledged = true;
  report({ type: 'ack', round: 5 });
  report({ type: 'done' });
}

if (process.env.ARMDB_POINT_DIR !== undefined) {
  main().catch((error) => {
    report({ type: 'fatal', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    process.exit(1);
  });
}
