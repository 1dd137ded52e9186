// The read-side rows of docs/benchmarks.md in one short run, armdb (VarTree, AES-GCM, node) beside
// lmdb-js, so a change to the get path can be judged without the full bench:
//
//   npm run build && node bench/reads.js [--reps 3] [--n 200000] [--only cold,hot,get4k,load64k]
//
//   cold      random gets on a reopened store whose cache holds 1/32 of the data, against the floor: a
//             random 4 KiB pread plus an AES-256-GCM open with a 40-byte AAD under a KeyObject (what
//             armdb does per page), in a file of the same size as armdb's data, measured right after
//   hot       random gets with every page in cache
//   get4k     random gets of 4 KiB values, every value in cache
//   load64k   3,000 puts of 64 KiB values, then sync; against the floor of sealing alone: 16 pages of
//             4 KiB per value, each with its own AES-256-GCM cipher (KeyObject, 40-byte AAD), no I/O
//
// Stores alternate order per repetition; the figures are medians and ratios of the same run. Each row is
// reported twice: per second of wall time, and per second of process CPU time (every thread: lmdb-js's
// writer thread and libuv's fsync threads count), which moves far less than wall time when other work
// shares the machine.
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PAGE_BYTES } from '../dist/format/constants.js';
import { median, parseOptions, printTable } from './lib/harness.js';
import { loadAdapters } from './lib/adapters.js';
import { freshDirectory, gc, isPromise, makeKeys, makeValues, perSecond, randomIndexes, removeDirectory } from './lib/util.js';
import { warmCache } from './lib/workloads.js';

const options = parseOptions('npm run build && node bench/reads.js [options]', {
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions' },
  n: { type: 'number', default: 200_000, min: 1000, integer: true, help: 'keys of 100-byte values (cold and hot rows)' },
  only: { type: 'string', default: 'cold,hot,get4k,load64k', help: 'rows, comma-separated' },
});
const rows = options.only.split(',');
const MiB = 2 ** 20;
const KEY_SIZE = 16;
const VALUE_SIZE = 100;

/**
 * The cold-get floor: a file of sealed pages, then random preads each followed by an AES-256-GCM open
 * as armdb opens a page (KeyObject key, 12-byte nonce, 40-byte AAD, 16-byte tag).
 */
function coldFloor(directory, fileBytes) {
  const key = createSecretKey(randomBytes(32));
  const aad = randomBytes(40);
  const pages = Math.ceil(fileBytes / PAGE_BYTES);
  const nonce = (page) => {
    const bytes = Buffer.alloc(12);
    bytes.writeUInt32LE(page, 0);
    return bytes;
  };
  const tags = new Array(pages);
  const file = path.join(directory, 'floor.bin');
  const handle = fs.openSync(file, 'w+');
  const plaintext = randomBytes(PAGE_BYTES);
  for (let page = 0; page < pages; page++) {
    const cipher = createCipheriv('aes-256-gcm', key, nonce(page), { authTagLength: 16 });
    cipher.setAAD(aad);
    fs.writeSync(handle, Buffer.concat([cipher.update(plaintext), cipher.final()]), 0, PAGE_BYTES, page * PAGE_BYTES);
    tags[page] = cipher.getAuthTag();
  }
  const buffer = Buffer.alloc(PAGE_BYTES);
  const iv = Buffer.alloc(12);
  return {
    run(reads, seed) {
      const offsets = randomIndexes(reads, pages, seed);
      for (let i = 0; i < reads; i++) {
        const page = offsets[i];
        fs.readSync(handle, buffer, 0, PAGE_BYTES, page * PAGE_BYTES);
        iv.writeUInt32LE(page, 0);
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
        decipher.setAAD(aad);
        decipher.setAuthTag(tags[page]);
        decipher.update(buffer);
        decipher.final();
      }
      return reads;
    },
    close: () => fs.closeSync(handle),
  };
}

/** Values of 64 KiB sealed per second as armdb seals them, page by page (no I/O, no copies): a floor. */
function sealFloor(values, milliseconds) {
  const key = createSecretKey(randomBytes(32));
  const aad = randomBytes(40);
  const nonce = Buffer.alloc(12);
  let sealed = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    const value = values[sealed % values.length];
    for (let offset = 0; offset < value.length; offset += PAGE_BYTES) {
      nonce.writeUInt32LE(offset / PAGE_BYTES + sealed * 16, 0);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      cipher.setAAD(aad);
      cipher.update(value.subarray(offset, offset + PAGE_BYTES));
      cipher.final();
      cipher.getAuthTag();
    }
    sealed++;
    elapsed = performance.now() - started;
  } while (elapsed < milliseconds);
  return sealed;
}

/** Runs `work` (returning an operation count); `{ wall, cpu }` operations per second of each. */
async function timedOps(work) {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const operations = await work();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { wall: perSecond(operations, wallMs), cpu: perSecond(operations, (cpu.user + cpu.system) / 1000) };
}

/** Gets `keys[indexes[i]]` in order, after an untimed pass over the first 10,000 (JIT); every key must be found. */
function gets(store, keys, indexes) {
  for (let i = 0; i < Math.min(10_000, indexes.length); i++) store.get(keys[indexes[i]]);
  return timedOps(() => {
    let found = 0;
    for (let i = 0; i < indexes.length; i++) if (store.get(keys[indexes[i]]) !== undefined) found++;
    if (found !== indexes.length) throw new Error(`${indexes.length - found} keys missing`);
    return indexes.length;
  });
}

/** Puts `count` entries into a fresh store and syncs (timed), then closes it. */
async function load(adapter, directory, keys, values, count, cacheBytes) {
  const store = await adapter.open(directory, { cacheBytes, valueSize: values[0].length });
  const rates = await timedOps(async () => {
    for (let i = 0; i < count; i++) {
      const pending = store.put(keys[i], values[i % values.length]);
      if (isPromise(pending)) await pending;
    }
    await store.sync();
    return count;
  });
  await store.close();
  return rates;
}

const loaded = await loadAdapters();
const adapters = loaded.adapters.filter((adapter) => adapter.id === 'armdb' || adapter.id === 'lmdb');
if (adapters.length < 2) throw new Error(`need armdb and lmdb-js: ${JSON.stringify(loaded.skipped)}`);

const keys = makeKeys(options.n, KEY_SIZE);
const values = makeValues(VALUE_SIZE, 4096);
const hotIndexes = randomIndexes(Math.min(200_000, options.n), options.n, 62);
const coldIndexes = randomIndexes(Math.min(20_000, options.n), options.n, 63);
const large = {
  get4k: { keys: makeKeys(50_000, KEY_SIZE), values: makeValues(4096, 64), count: 50_000, getIndexes: randomIndexes(100_000, 50_000, 65) },
  load64k: { keys: makeKeys(3000, KEY_SIZE), values: makeValues(65_536, 64), count: 3000, getIndexes: randomIndexes(3000, 3000, 66) },
};

/** @type {Record<string, Record<string, number[]>>} */
const samples = {};
const record = (row, store, value) => {
  samples[row] ??= {};
  samples[row][store] ??= [];
  samples[row][store].push(value);
};

for (let rep = 0; rep < options.reps; rep++) {
  for (const adapter of rep % 2 === 0 ? adapters : [...adapters].reverse()) {
    gc();
    if (rows.includes('cold') || rows.includes('hot')) {
      const directory = freshDirectory(`${adapter.id}-reads`);
      try {
        await load(adapter, directory, keys, values, options.n, 64 * MiB);
        if (rows.includes('hot')) {
          const hotOptions = { cacheBytes: Math.max(64 * MiB, options.n * 200), valueSize: VALUE_SIZE };
          const store = await adapter.open(directory, hotOptions);
          await warmCache(store);
          record('hot get', adapter.id, await gets(store, keys, hotIndexes));
          await store.close();
        }
        if (rows.includes('cold')) {
          const cacheBytes = Math.max(64 * 1024, Math.floor((options.n * (KEY_SIZE + VALUE_SIZE)) / 32));
          const coldOptions = { cacheBytes, valueSize: VALUE_SIZE };
          const store = await adapter.open(directory, coldOptions);
          record('cold get', adapter.id, await gets(store, keys, coldIndexes));
          await store.close();
          if (adapter.id === 'armdb') {
            const floorDirectory = freshDirectory('reads-floor');
            const floor = coldFloor(floorDirectory, options.n * 160);
            floor.run(2000, 5);
            record('cold get', 'floor', await timedOps(() => floor.run(coldIndexes.length, 7 + rep)));
            floor.close();
            removeDirectory(floorDirectory);
          }
        }
      } finally {
        removeDirectory(directory);
      }
    }
    for (const name of ['get4k', 'load64k']) {
      if (!rows.includes(name)) continue;
      const spec = large[name];
      const directory = freshDirectory(`${adapter.id}-${name}`);
      try {
        const cacheBytes = Math.ceil(spec.count * (spec.values[0].length + 64) * 1.5);
        const loadRates = await load(adapter, directory, spec.keys, spec.values, spec.count, cacheBytes);
        if (name === 'load64k') {
          record('load 64 KiB', adapter.id, loadRates);
          if (adapter.id === 'armdb') record('load 64 KiB', 'floor', await timedOps(() => sealFloor(spec.values, 500)));
          continue;
        }
        const getOptions = { cacheBytes, valueSize: spec.values[0].length };
        const store = await adapter.open(directory, getOptions);
        await warmCache(store);
        record('get 4 KiB (cached)', adapter.id, await gets(store, spec.keys, spec.getIndexes));
        await store.close();
      } finally {
        removeDirectory(directory);
      }
    }
  }
}

const table = [];
for (const [row, stores] of Object.entries(samples)) {
  for (const clock of ['wall', 'cpu']) {
    const rate = (store) => (stores[store] === undefined ? undefined : median(stores[store].map((sample) => sample[clock])));
    const armdb = rate('armdb') ?? Number.NaN;
    const lmdb = rate('lmdb') ?? Number.NaN;
    const floor = rate('floor');
    table.push([
      row,
      clock,
      Math.round(armdb).toLocaleString('en-US'),
      Math.round(lmdb).toLocaleString('en-US'),
      `${(armdb / lmdb).toFixed(2)}×`,
      floor === undefined
        ? ''
        : `${Math.round(floor).toLocaleString('en-US')} (armdb ${(armdb / floor).toFixed(2)}, lmdb-js ${(lmdb / floor).toFixed(2)} of it)`,
    ]);
  }
}
console.log(
  `armdb read rows: N = ${options.n}, ${options.reps} repetitions, node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`,
);
printTable(
  ['row', 'per second of', 'armdb ops/s', 'lmdb-js ops/s', 'armdb / lmdb-js', 'floor ops/s: cold = pread + open, load = seal only'],
  table,
);
