// Index memory per key, measured in a child process so that nothing else the harness holds skews it.
//
// The child generates the keys, opens an empty encrypted collection (cacheBytes 0, so no decrypted pages
// are held), takes a baseline after a full GC, puts N keys with 100-byte values, syncs, collects again and
// reports the deltas per key: V8 heap + external/ArrayBuffer memory, process RSS, and stats().indexBytes.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseOptions } from './harness.js';
import { freshDirectory, gc, makeKeys, removeDirectory } from './util.js';

const self = fileURLToPath(import.meta.url);

/** Runs the child for `collection` ('VarTree' | 'VarMap') and returns its per-key figures. */
export function measureIndexMemory(collection, count) {
  const output = execFileSync(process.execPath, ['--expose-gc', self, '--collection', collection, '--n', String(count)], {
    encoding: 'utf8',
    maxBuffer: 2 ** 20,
  });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}');
}

function settle() {
  for (let i = 0; i < 3; i++) gc();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed + usage.external, rss: usage.rss };
}

async function child() {
  const values = parseOptions('node bench/lib/memory.js --collection VarTree|VarMap --n <count>', {
    collection: { type: 'string', default: 'VarTree', choices: ['VarTree', 'VarMap'] },
    n: { type: 'number', default: 100_000, min: 1, integer: true },
  });
  const count = values.n;
  const armdb = await import('../../dist/index.js');
  const Collection = values.collection === 'VarMap' ? armdb.VarMap : armdb.VarTree;
  const keys = makeKeys(count);
  const value = new Uint8Array(randomBytes(100));
  const directory = freshDirectory('memory');
  try {
    const db = await Collection.open(directory, {
      keySize: 16,
      encryption: { key: new Uint8Array(randomBytes(32)) },
      cacheBytes: 0,
      syncIntervalMs: 0,
    });
    const before = settle();
    for (const key of keys) db.put(key, value);
    await db.sync();
    const after = settle();
    const { indexBytes } = db.stats();
    process.stdout.write(
      `${JSON.stringify({
        collection: values.collection,
        count,
        heapBytesPerKey: (after.heap - before.heap) / count,
        rssBytesPerKey: (after.rss - before.rss) / count,
        indexBytesPerKey: indexBytes / count,
      })}\n`,
    );
    await db.close();
    if (keys.length !== count) throw new Error('unreachable'); // keeps `keys` alive until after the measurement
  } finally {
    removeDirectory(directory);
  }
}

if (process.argv[1] === self) await child();
