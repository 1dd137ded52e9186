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
import { KEY_BYTES, PAGE_BYTES, TAG_BYTES } from '../dist/format/constants.js';
import { VarMap, VarTree } from '../dist/index.js';
import { median, parseOptions, printTable } from './lib/harness.js';
import { perSecond } from './lib/util.js';

const options = parseOptions('npm run build && node bench/engine.js [options]', {
  collection: { type: 'string', default: 'VarMap', choices: ['VarMap', 'VarTree'] },
  n: { type: 'number', default: 1_000_000, min: 1, integer: true, help: 'keys' },
  shards: { type: 'number', default: 4, min: 1, integer: true },
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions' },
});
const { n: count, shards, reps } = options;
const Collection = options.collection === 'VarTree' ? VarTree : VarMap;

const keyList = Array.from({ length: count }, () => new Uint8Array(randomBytes(16)));
const value = new Uint8Array(100).fill(7);
const key = randomBytes(KEY_BYTES);
/** @type {Record<'putPerSecond' | 'hotGetPerSecond' | 'coldGetPerSecond' | 'openMs' | 'rawPreadOpenPerSecond', number[]>} */
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
    const pageKey = randomBytes(KEY_BYTES);
    const tags = [];
    const handle = fs.openSync(baseFile, 'w+');
    for (let page = 0; page < pages; page++) {
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32LE(page);
      const cipher = createCipheriv('aes-256-gcm', pageKey, nonce, { authTagLength: TAG_BYTES });
      fs.writeSync(handle, Buffer.concat([cipher.update(randomBytes(PAGE_BYTES)), cipher.final()]), 0, PAGE_BYTES, page * PAGE_BYTES);
      tags.push(cipher.getAuthTag());
    }
    const buffer = Buffer.alloc(PAGE_BYTES);
    started = performance.now();
    for (let index = 0; index < sample.length; index++) {
      const page = (index * 7919) % pages;
      fs.readSync(handle, buffer, 0, PAGE_BYTES, page * PAGE_BYTES);
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32LE(page);
      const decipher = createDecipheriv('aes-256-gcm', pageKey, nonce, { authTagLength: TAG_BYTES });
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

console.log(`armdb engine bench: ${options.collection}, n ${count}, ${shards} shards, ${reps} repetitions, node ${process.version}`);
const summary = Object.fromEntries(Object.entries(results).map(([name, samples]) => [name, median(samples) ?? Number.NaN]));
printTable(
  ['metric', 'median', 'repetitions'],
  Object.entries(results).map(([name, samples]) => [name, Math.round(summary[name]), samples.map(Math.round).join(', ')]),
);
console.log(
  `cold get ÷ bare pread + AES-GCM open (time per operation): ${(summary.rawPreadOpenPerSecond / summary.coldGetPerSecond).toFixed(2)}×`,
);
