// Hash index (Maps) against the ordered index (Trees) on the same data, one run: memory per key,
// point lookups per second, and for Trees an ordered scan; ConstMap get from memory.
//
//   npm run build && node bench/collections.js [--n 200000]
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ConstMap, VarMap, VarTree } from '../dist/index.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' } } });
const count = Number(values.n);
const keyList = Array.from({ length: count }, () => new Uint8Array(randomBytes(16)));
const value = new Uint8Array(100);
const options = { keySize: 16, encryption: { key: randomBytes(32) }, syncIntervalMs: 0, autoCompact: false };
const perSecond = (operations, started) => Math.round((operations / (performance.now() - started)) * 1000);
const results = {};

for (const [name, open, extra] of [
  ['VarMap', VarMap.open, {}],
  ['VarTree', VarTree.open, {}],
  ['ConstMap', ConstMap.open, { valueSize: 100 }],
]) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-collections-'));
  try {
    const db = await open.call(name === 'VarMap' ? VarMap : name === 'VarTree' ? VarTree : ConstMap, directory, { ...options, ...extra });
    for (const key of keyList) db.put(key, value);
    await db.sync();
    for (const key of keyList) db.get(key); // warm
    let started = performance.now();
    for (let round = 0; round < 3; round++) for (const key of keyList) db.get(key);
    const row = { getPerSecond: perSecond(3 * count, started), indexBytesPerKey: Math.round(db.stats().indexBytes / count) };
    if (name === 'VarTree') {
      started = performance.now();
      let scanned = 0;
      for (let round = 0; round < 3; round++) for (const entry of db.range()) if (entry) scanned++;
      row.scanEntriesPerSecond = perSecond(scanned, started);
      started = performance.now();
      scanned = 0;
      for (let round = 0; round < 3; round++) for (const key of db.keys()) if (key) scanned++;
      row.scanKeysPerSecond = perSecond(scanned, started);
    }
    results[name] = row;
    await db.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ n: count, node: process.version, loadAverage: os.loadavg()[0].toFixed(1), results }, null, 2));
