// Hash index (Maps) against the ordered index (Trees) on the same data, one run: memory per key,
// point lookups per second, and for Trees an ordered scan; ConstMap get from memory.
//
//   npm run build && node bench/collections.js [--n 200000]
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConstMap, VarMap, VarTree } from '../dist/index.js';
import { parseOptions, printTable } from './lib/harness.js';
import { perSecond } from './lib/util.js';

const { n: count } = parseOptions('npm run build && node bench/collections.js [options]', {
  n: { type: 'number', default: 200_000, min: 1, integer: true, help: 'keys' },
});
const keyList = Array.from({ length: count }, () => new Uint8Array(randomBytes(16)));
const value = new Uint8Array(100);
const options = { keySize: 16, encryption: { key: randomBytes(32) }, syncIntervalMs: 0, autoCompact: false };
const rate = (/** @type {number} */ operations, /** @type {number} */ started) =>
  Math.round(perSecond(operations, performance.now() - started)).toLocaleString('en-US');
const rows = [];

/** @type {[string, (directory: string) => Promise<VarMap | VarTree | ConstMap>][]} */
const collections = [
  ['VarMap', (directory) => VarMap.open(directory, options)],
  ['VarTree', (directory) => VarTree.open(directory, options)],
  ['ConstMap', (directory) => ConstMap.open(directory, { ...options, valueSize: 100 })],
];
for (const [name, open] of collections) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-collections-'));
  try {
    const db = await open(directory);
    for (const key of keyList) db.put(key, value);
    await db.sync();
    for (const key of keyList) db.get(key); // warm
    let started = performance.now();
    for (let round = 0; round < 3; round++) for (const key of keyList) db.get(key);
    const row = [name, rate(3 * count, started), Math.round(db.stats().indexBytes / count), '—', '—'];
    if (db instanceof VarTree) {
      started = performance.now();
      let scanned = 0;
      for (let round = 0; round < 3; round++) for (const entry of db.range()) if (entry) scanned++;
      row[3] = rate(scanned, started);
      started = performance.now();
      scanned = 0;
      for (let round = 0; round < 3; round++) for (const key of db.keys()) if (key) scanned++;
      row[4] = rate(scanned, started);
    }
    rows.push(row);
    await db.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}
console.log(`armdb collections bench: n ${count}, node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`);
printTable(['collection', 'get per second', 'indexBytes per key', 'range() entries per second', 'keys() per second'], rows);
