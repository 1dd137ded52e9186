// armdb/level (ArmdbLevel, encrypted) against classic-level (LevelDB, not encrypted), both through
// the same abstract-level API, in one process: put, batch, get, getSync and an iterator scan.
//
//   npm run build && (cd bench && npm install) && node bench/level.js [--n 100000] [--reps 3]
//
// Keys are 16 random bytes, values 100 random (incompressible) bytes, both with the 'buffer'
// encoding. Each store gets a fresh temporary directory per repetition; the order of the two stores
// alternates between repetitions and every figure is the median of the repetitions. The ratio column
// is ArmdbLevel / classic-level operations per second in this run (> 1: ArmdbLevel is faster); the
// last column is the same ratio per second of the process's CPU time (all threads), which a busy
// machine disturbs far less than wall time.
// Neither store syncs on each write: ArmdbLevel's put resolves once the record is in armdb's write
// buffer (background barrier every second), classic-level's once it is in LevelDB's log (no fsync).
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { median, parseOptions, printTable } from './lib/harness.js';
import { freshDirectory, gc, makeKeys, makeValues, perSecond, randomIndexes, removeDirectory } from './lib/util.js';

const { n: count, reps } = parseOptions('npm run build && node bench/level.js [options]', {
  n: { type: 'number', default: 100_000, min: 1000, integer: true, help: 'keys' },
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions (the median is reported)' },
});

const { ArmdbLevel } = await import('../dist/level/index.js').catch((error) => {
  throw new Error(`cannot load armdb/level from dist/ (run \`npm run build\` first): ${error.message}`);
});
// A peer from bench/'s own package.json: imported by name at run time, not type-checked.
const peer = 'classic-level';
const { ClassicLevel } = await import(peer);

const BATCH = 1000;
const encodings = { keyEncoding: 'buffer', valueEncoding: 'buffer' };
const key = new Uint8Array(randomBytes(32));
const stores = [
  { name: 'ArmdbLevel (AES-256-GCM)', open: (directory) => new ArmdbLevel(directory, { ...encodings, encryption: { key } }) },
  { name: 'classic-level', open: (directory) => new ClassicLevel(directory, encodings) },
];
const keyList = makeKeys(count);
const values = makeValues(100, 1024);
const readOrder = randomIndexes(count, count, 18);

/** Workloads in report order: each gets an open, loaded (except the loads) database and returns operations done. */
const workloads = [
  {
    name: 'put (awaited, one at a time)',
    load: false,
    async run(db) {
      for (let i = 0; i < count; i++) await db.put(keyList[i], values[i % values.length]);
      return count;
    },
  },
  {
    name: `batch (arrays of ${BATCH} puts)`,
    load: false,
    async run(db) {
      for (let start = 0; start < count; start += BATCH) {
        const operations = [];
        for (let i = start; i < Math.min(start + BATCH, count); i++)
          operations.push({ type: 'put', key: keyList[i], value: values[i % values.length] });
        await db.batch(operations);
      }
      return count;
    },
  },
  {
    name: 'get (awaited, random keys)',
    load: true,
    async run(db) {
      for (const index of readOrder) await db.get(keyList[index]);
      return readOrder.length;
    },
  },
  {
    name: 'getSync (random keys)',
    load: true,
    async run(db) {
      for (const index of readOrder) db.getSync(keyList[index]);
      return readOrder.length;
    },
  },
  {
    name: 'iterator scan (nextv(1000), all entries)',
    load: true,
    async run(db) {
      let visited = 0;
      const iterator = db.iterator();
      for (let entries = await iterator.nextv(1000); entries.length > 0; entries = await iterator.nextv(1000)) visited += entries.length;
      await iterator.close();
      return visited;
    },
  },
];

/** @type {Map<string, number[]>} operations per second by `${workload}\u0000${store}` */
const samples = new Map();
/** @type {Map<string, number[]>} operations per CPU-second, same keys */
const cpuSamples = new Map();
for (let repetition = 0; repetition < reps; repetition++) {
  const order = repetition % 2 === 0 ? stores : [...stores].reverse();
  for (const store of order) {
    const directory = freshDirectory('level-bench');
    try {
      let db = store.open(directory);
      await db.open();
      for (const workload of workloads) {
        if (workload.load) {
          // Reads run over a freshly reopened, fully loaded store (put and batch leave it loaded).
          await db.close();
          db = store.open(directory);
          await db.open();
          await workload.run(db); // warm: the same reads once, untimed
        } else {
          await db.clear();
        }
        gc();
        const started = performance.now();
        const cpuBefore = process.cpuUsage();
        const operations = await workload.run(db);
        const cpu = process.cpuUsage(cpuBefore);
        const rate = perSecond(operations, performance.now() - started);
        const id = `${workload.name}\u0000${store.name}`;
        samples.set(id, [...(samples.get(id) ?? []), rate]);
        // Per second of the process's CPU time (every thread, so classic-level's thread pool counts too).
        cpuSamples.set(id, [...(cpuSamples.get(id) ?? []), perSecond(operations, (cpu.user + cpu.system) / 1000)]);
      }
      await db.close();
    } finally {
      removeDirectory(directory);
    }
  }
}

const format = (value) => (value === undefined ? '—' : Math.round(value).toLocaleString('en-US'));
const rows = workloads.map((workload) => {
  const [armdb, classic] = stores.map((store) => median(samples.get(`${workload.name}\u0000${store.name}`) ?? []));
  const ratio = armdb !== undefined && classic !== undefined ? `${(armdb / classic).toFixed(2)}×` : '—';
  const [armdbCpu, classicCpu] = stores.map((store) => median(cpuSamples.get(`${workload.name}\u0000${store.name}`) ?? []));
  const cpuRatio = armdbCpu !== undefined && classicCpu !== undefined ? `${(armdbCpu / classicCpu).toFixed(2)}×` : '—';
  return [workload.name, format(armdb), format(classic), ratio, cpuRatio];
});
console.log(`armdb/level bench: n ${count}, reps ${reps} (medians), node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`);
printTable(['workload', `${stores[0].name} ops/s`, `${stores[1].name} ops/s`, 'ratio', 'ratio per CPU-second'], rows);
