// Engine numbers against this machine's physical baselines, in one run (issue 3's design targets):
// buffered put, hot get, cold get vs. a bare 4 KiB pread + AES-GCM open, open time without hints.
//
//   npm run build && node bench/engine.js [--collection VarMap|VarTree] [--n 1000000] [--shards 4] [--reps 3]
//
// Prints medians of --reps repetitions. Nothing here is asserted: these machines are shared and noisy.
import { createDecipheriv, createCipheriv, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { VarMap, VarTree } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    collection: { type: 'string', default: 'VarMap' },
    n: { type: 'string', default: '1000000' },
    shards: { type: 'string', default: '4' },
    reps: { type: 'string', default: '3' },
  },
});
const count = Number(values.n);
const Collection = { VarMap, VarTree }[values.collection];
if (Collection === undefined) throw new Error('--collection is VarMap or VarTree');
const shards = Number(values.shards);
const reps = Number(values.reps);
const median = (samples) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];
const perSecond = (operations, milliseconds) => Math.round((operations / milliseconds) * 1000);

const keyList = Array.from({ length: count }, () => new Uint8Array(randomBytes(16)));
const value = new Uint8Array(100).fill(7);
const key = randomBytes(32);
const results = { putPerSecond: [], hotGetPerSecond: [], coldGetPerSecond: [], openMs: [], rawPreadOpenPerSecond: [] };

for (let rep = 0; rep < reps; rep++) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-bench-'));
  try {
    let db = await Collection.open(directory, { keySize: 16, encryption: { key }, shards, syncIntervalMs: 0 });
    let started = performance.now();
    for (const k of keyList) db.put(k, value);
    results.putPerSecond.push(perSecond(count, performance.now() - started));
    await db.close();

    started = performance.now();
    db = await Collection.open(directory, { keySize: 16, encryption: { key }, shards, syncIntervalMs: 0 });
    results.openMs.push(performance.now() - started);
    for (const k of keyList) db.get(k);
    started = performance.now();
    for (const k of keyList) db.get(k);
    results.hotGetPerSecond.push(perSecond(count, performance.now() - started));
    await db.close();

    // Cold: no cache, random order, every get authenticates and decrypts its page from the OS page cache.
    db = await Collection.open(directory, { keySize: 16, encryption: { key }, shards, syncIntervalMs: 0, cacheBytes: 0 });
    const sample = keyList.slice(0, Math.min(count, 200_000));
    started = performance.now();
    for (const k of sample) db.get(k);
    results.coldGetPerSecond.push(perSecond(sample.length, performance.now() - started));
    await db.close();

    // Baseline: bare random 4 KiB pread + AES-256-GCM open of the same number of pages.
    const baseFile = path.join(directory, 'baseline.bin');
    const pages = 16_384;
    const pageKey = randomBytes(32);
    const tags = [];
    const handle = fs.openSync(baseFile, 'w+');
    for (let page = 0; page < pages; page++) {
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32LE(page);
      const cipher = createCipheriv('aes-256-gcm', pageKey, nonce, { authTagLength: 16 });
      fs.writeSync(handle, Buffer.concat([cipher.update(randomBytes(4096)), cipher.final()]), 0, 4096, page * 4096);
      tags.push(cipher.getAuthTag());
    }
    const buffer = Buffer.alloc(4096);
    started = performance.now();
    for (let index = 0; index < sample.length; index++) {
      const page = (index * 7919) % pages;
      fs.readSync(handle, buffer, 0, 4096, page * 4096);
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32LE(page);
      const decipher = createDecipheriv('aes-256-gcm', pageKey, nonce, { authTagLength: 16 });
      decipher.setAuthTag(tags[page]);
      decipher.update(buffer);
      decipher.final();
    }
    results.rawPreadOpenPerSecond.push(perSecond(sample.length, performance.now() - started));
    fs.closeSync(handle);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

const summary = Object.fromEntries(Object.entries(results).map(([name, samples]) => [name, Math.round(median(samples))]));
summary.coldGetVsRawRatio = Number((summary.rawPreadOpenPerSecond / summary.coldGetPerSecond).toFixed(2));
console.log(JSON.stringify({ n: count, shards, reps, node: process.version, ...summary }, null, 2));
