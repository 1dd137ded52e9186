/**
 * `armdb demo` (and `npm start`): writes, reads, reopens and verifies a store in `./armdb-demo`, with
 * a random key kept in `./armdb-demo.key` (mode 0600) beside it, and says what it did and how fast.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VarMap } from '../collections/var-map.js';
import { KEY_BYTES } from '../format/constants.js';
import { FILE_MODE } from '../io/node-file-system.js';
import { keys } from '../keys.js';
import { type Command, UsageError } from './command.js';
import { readKeyFile } from './key-source.js';

function rate(count: number, milliseconds: number): string {
  return `${Math.round((count / milliseconds) * 1000).toLocaleString('en-US')}/s`;
}

/** Marks a directory as the demo's own: a file the demo writes into the store directory it creates. */
const DEMO_MARKER = 'ARMDB-DEMO';
const MARKER_TEXT = 'This store was made by `armdb demo`; its key is the file <this directory>.key beside it.\n';

/**
 * The demo writes only where it cannot harm data: a directory that does not exist yet or is empty
 * (then it is made the demo's own, with a new key beside it), or one that an earlier demo made.
 */
function prepareDemoDirectory(root: string, keyPath: string, shown: (file: string) => string): 'new' | 'again' {
  let entries: string[] | undefined;
  try {
    entries = fs.readdirSync(root);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UsageError(`${shown(root)} is not a directory`);
    if (code !== 'ENOENT') throw error;
  }
  if (entries !== undefined && entries.length > 0) {
    if (entries.includes(DEMO_MARKER) && fs.existsSync(keyPath)) return 'again';
    throw new UsageError(`${shown(root)} is not empty and is not a store armdb demo made; give a new directory`);
  }
  if (fs.existsSync(keyPath))
    throw new UsageError(`${shown(keyPath)} exists but no demo store is beside it; give a new directory, or remove that file`);
  const parent = path.dirname(root);
  if (!fs.existsSync(parent)) throw new UsageError(`directory ${shown(parent)} does not exist`);
  fs.mkdirSync(root, { recursive: false, mode: 0o700 });
  fs.writeFileSync(path.join(root, DEMO_MARKER), MARKER_TEXT, { mode: FILE_MODE, flag: 'wx' });
  fs.writeFileSync(keyPath, randomBytes(KEY_BYTES), { mode: FILE_MODE, flag: 'wx' });
  return 'new';
}

async function runDemo(directory: string, print: (line: string) => void): Promise<void> {
  const root = path.resolve(directory);
  const keyPath = `${root}.key`;
  const shown = (file: string): string => path.relative(process.cwd(), file) || file;
  if (prepareDemoDirectory(root, keyPath, shown) === 'new')
    print(`created ${shown(root)} and a random 32-byte key in ${shown(keyPath)} (mode 0600): keep it, the data is unreadable without it`);
  const key = readKeyFile(keyPath);
  const options = { keySize: 16, encryption: { key }, shards: 4 } as const;
  const count = 100_000;
  const value = new Uint8Array(100);

  let db = await VarMap.open(root, options);
  const before = db.size;
  print(`opened ${path.relative(process.cwd(), root) || root}: ${before.toLocaleString('en-US')} keys already there`);
  let started = performance.now();
  for (let index = 0; index < count; index++) {
    new DataView(value.buffer).setUint32(0, index);
    db.put(keys.fromString(`user:${index}`, 16), value);
  }
  const putMs = performance.now() - started;
  started = performance.now();
  await db.sync();
  const syncMs = performance.now() - started;
  print(
    `put ${count.toLocaleString('en-US')} records of 100 bytes, each page AES-256-GCM sealed: ${rate(count, putMs)}; sync ${syncMs.toFixed(1)} ms`,
  );
  started = performance.now();
  let found = 0;
  for (let index = 0; index < count; index++) if (db.get(keys.fromString(`user:${index}`, 16)) !== undefined) found++;
  print(`read them back: ${found.toLocaleString('en-US')} found, ${rate(count, performance.now() - started)}`);
  await db.close();

  started = performance.now();
  db = await VarMap.open(root, options);
  print(
    `closed and reopened in ${(performance.now() - started).toFixed(0)} ms: ${db.size.toLocaleString('en-US')} keys, epoch ${db.stats().epoch}`,
  );
  started = performance.now();
  const report = await db.verify();
  print(
    `verified ${report.pages.toLocaleString('en-US')} pages in ${report.files} files in ${(performance.now() - started).toFixed(0)} ms: ${report.ok ? 'every page authentic' : `${report.failures.length} failures`}`,
  );
  const stats = db.stats();
  print(
    `on disk: ${(stats.totalBytes / 2 ** 20).toFixed(1)} MiB in ${stats.files} files, ${((stats.deadBytes / Math.max(1, stats.totalBytes)) * 100).toFixed(0)}% dead (compaction reclaims it)`,
  );
  await db.close();
  key.fill(0);
  print(
    `run it again: the same keys are overwritten and the dead bytes grow (what compaction reclaims); delete ${shown(root)} and ${shown(keyPath)} to start over`,
  );
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'write, read, reopen and verify a demo store (default ./armdb-demo)',
  maxPositionals: 1,
  options: {},
  help: `Usage: armdb demo [dir]

Writes 100,000 records to an encrypted store (default ./armdb-demo), reads them, reopens and
verifies it, and prints how fast each step was. <dir> must not exist yet or be empty: the demo
then makes it its own, with a random key in <dir>.key (mode 0600) beside it. A directory an
earlier demo made is used again; any other is refused, so the demo never writes into real data.
npm start runs it.`,
  async run(_values, positionals) {
    await runDemo(positionals[0] ?? 'armdb-demo', (line) => process.stdout.write(`${line}\n`));
    return 0;
  },
};
