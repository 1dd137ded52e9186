/**
 * The writer process of the SIGKILL crash tests (kill-harness.ts). Opens the store through the built
 * package and applies the ops of kill-model.mjs forever — puts, deletes, atomic groups — calling
 * sync() every few dozen ops without waiting for it (writes continue during the barrier; at the next
 * sync point it waits for the previous barrier, so at most one is in flight). It reports
 * on stdout, one JSON object a line (written synchronously: a line the parent reads was written
 * before the child died):
 *
 *   { "type": "opening" }                              right before open (the parent may kill it during recovery)
 *   { "type": "ready", "run", "keys", "tornBytes" }   after open
 *   { "type": "ack", "ops": n }                        after a sync() resolved: ops 0..n-1 are durable
 *   { "type": "progress", "ops": n }                   after every BATCH ops
 *   { "type": "fatal", "message" }                     on any error (then exit 1)
 *   { "type": "point", "name", "shard", "fileIds" }    at every named crash point of the engine
 *                                                      (src/engine/crash-points.ts): the interleaving
 *                                                      of barriers, compaction steps and hint writing
 *
 * Environment (tests only): ARMDB_KILL_DIR, ARMDB_KILL_KEY (the raw 32-byte key as hex),
 * ARMDB_KILL_RUN (run number), ARMDB_KILL_SEED, ARMDB_KILL_AUTOCOMPACT ('1' or '0'),
 * ARMDB_KILL_COMPACT_EVERY (n > 0: start an explicit compact() every n batches, not awaited, so that
 * compactions overlap the writes and barriers that go on meanwhile), ARMDB_KILL_ROTATE_EVERY (n > 0:
 * start a rotateDataKey() every n batches, not awaited), ARMDB_KILL_SEAL_LOG (a file: every seal's
 * file-key fingerprint and nonce is appended to it, one line each, before the sealed bytes are written).
 */
import { openSync, writeSync } from 'node:fs';
import { setSealObserver } from '../../dist/crypto/file-cipher.js';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { setCrashPointHandler } from '../../dist/engine/crash-points.js';
import { VarMap } from '../../dist/index.js';
import { BATCH, STORE_OPTIONS, keyOf, operations } from './kill-model.mjs';

function report(message) {
  writeSync(1, `${JSON.stringify(message)}\n`);
}

function fatal(error) {
  report({
    type: 'fatal',
    message:
      error instanceof Error ? `${error.name}: ${error.message}${error.cause ? ` (cause: ${String(error.cause)})` : ''}` : String(error),
  });
  process.exit(1);
}

process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

const directory = process.env.ARMDB_KILL_DIR;
const keyHex = process.env.ARMDB_KILL_KEY;
const run = Number(process.env.ARMDB_KILL_RUN);
const seed = Number(process.env.ARMDB_KILL_SEED);
if (!directory || !keyHex || keyHex.length !== 64 || !Number.isInteger(run) || !Number.isInteger(seed))
  fatal(new Error('ARMDB_KILL_DIR, ARMDB_KILL_KEY, ARMDB_KILL_RUN and ARMDB_KILL_SEED are required'));

const autoCompact = process.env.ARMDB_KILL_AUTOCOMPACT === '1';
const compactEvery = Number(process.env.ARMDB_KILL_COMPACT_EVERY ?? '0');
const rotateEvery = Number(process.env.ARMDB_KILL_ROTATE_EVERY ?? '0');
if (process.env.ARMDB_KILL_SEAL_LOG) {
  const sealLog = openSync(process.env.ARMDB_KILL_SEAL_LOG, 'a');
  setSealObserver((seal) => writeSync(sealLog, `${seal.fileKeyFingerprint} ${seal.nonceHex}\n`));
}
// The trace: every named point the engine passes (the parent prints the last ones when a check fails).
setCrashPointHandler((name, detail) => report({ type: 'point', name, shard: detail.shard, fileIds: detail.fileIds, epoch: detail.epoch }));
report({ type: 'opening' });
const db = await VarMap.open(directory, { ...STORE_OPTIONS, autoCompact, encryption: { key: new Uint8Array(Buffer.from(keyHex, 'hex')) } });
report({ type: 'ready', run, keys: db.size, tornBytes: db.stats().recoveredTornBytes });

let done = 0;
let inFlight;
let compacting;
let rotating;
let batches = 0;
const stream = operations(run, seed, process.env.ARMDB_KILL_SYNC_EVERY_OP === '1');
for (;;) {
  if (rotateEvery > 0 && batches % rotateEvery === rotateEvery - 1 && rotating === undefined) {
    rotating = db.rotateDataKey().then(() => {
      rotating = undefined;
    }, fatal);
  }
  if (compactEvery > 0 && batches++ % compactEvery === 0 && compacting === undefined) {
    compacting = db.compact().then(() => {
      compacting = undefined;
    }, fatal);
  }
  for (let count = 0; count < BATCH; count++) {
    const op = stream.next().value;
    switch (op.kind) {
      case 'put':
        db.put(keyOf(op.id), op.value);
        break;
      case 'delete':
        db.delete(keyOf(op.id));
        break;
      case 'group-put':
        db.atomic(keyOf(op.writes[0].id), (tx) => {
          for (const write of op.writes) tx.put(keyOf(write.id), write.value);
        });
        break;
      case 'group-delete':
        db.atomic(keyOf(op.ids[0]), (tx) => {
          for (const id of op.ids) tx.delete(keyOf(id));
        });
        break;
    }
    done = op.index + 1;
    if (op.syncAfter) {
      // At most one barrier in flight: the ops between two sync points overlap the previous barrier.
      if (inFlight !== undefined) await inFlight;
      const upTo = done;
      inFlight = db.sync().then(() => report({ type: 'ack', ops: upTo }), fatal);
    }
  }
  report({ type: 'progress', ops: done });
  // Let fsyncs complete and acks go out while the writes go on.
  await yieldToEventLoop();
}
