/**
 * FIFOs and devices under store names (docs/security-model.md §Hostile directory entries; issue 13,
 * item 4). Opening a FIFO for reading waits for a writer, and reading /dev/zero never ends: a process
 * that did either would hang or fill its memory. So every open here runs in a child process over the
 * BUILT package (dist/, `npm run build` first) with a limit on how long it may take: a hang is reported
 * as a failure of this test, never as a hung test run. Where armdb works, the child answers at once.
 *
 * Symbolic links, hard links, sparse files and directories are in filesystem-attacks.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { fileName } from '../../src/engine/paths.js';
import { VarMap, keys } from '../../src/index.js';
import { patternBytes, storeTest as it, testKey } from '../helpers/store.js';

const DIST_ENTRY = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
if (!fs.existsSync(DIST_ENTRY) || !fs.existsSync(CLI)) throw new Error(`${DIST_ENTRY} is missing: run \`npm run build\` first`);

/** Far more than an open of these small stores takes on a busy machine; only a hang reaches it. */
const HANG_LIMIT_MS = 60_000;
const KEY = testKey(14);
const KEY_COUNT = 50;
const POSIX = process.platform !== 'win32';
const ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

const keyOf = (index: number): Uint8Array => keys.fromString(`key-${index}`, 16);
const valueFor = (index: number): Uint8Array => patternBytes(100, index);
const inShard = (dir: string, id: number, extension: 'data' | 'tags' | 'hint'): string =>
  path.join(dir, 'shard-000', fileName(id, extension));

function options() {
  return { keySize: 16, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0 } as const;
}

/** A closed store: sealed file 1 with its hint, the manifest's next id 2. */
async function makeStore(dir: string): Promise<void> {
  const db = await VarMap.open(dir, options());
  for (let index = 0; index < KEY_COUNT; index++) db.put(keyOf(index), valueFor(index));
  await db.close();
}

/** Replaces `target` by a FIFO (mode 0600, the mode armdb gives its files). */
function plantFifo(target: string): void {
  fs.rmSync(target, { force: true });
  execFileSync('mkfifo', ['-m', '600', target]);
}

// The child opens the store through dist/, checks every key, and prints one JSON line.
const CHILD = `
const [entry, dir, keyHex, count] = process.argv.slice(1);
const { VarMap, keys } = await import(entry);
let db;
try {
  db = await VarMap.open(dir, { keySize: 16, encryption: { key: Buffer.from(keyHex, 'hex') }, shards: 1, syncIntervalMs: 0 });
} catch (error) {
  console.log(JSON.stringify({ outcome: error.name === 'ArmdbError' ? error.code : 'raw ' + (error.code ?? error.name) + ': ' + error.message }));
  process.exit(0);
}
let found = 0;
for (let index = 0; index < Number(count); index++) if (db.get(keys.fromString('key-' + index, 16)) !== undefined) found++;
const damagedHints = db.stats().damagedHints;
await db.close();
console.log(JSON.stringify({ outcome: 'opened', found, damagedHints }));
`;

interface ChildResult {
  readonly outcome: string;
  readonly found?: number;
  readonly damagedHints?: number;
}

function openInChild(dir: string): ChildResult {
  const result = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', CHILD, DIST_ENTRY, dir, Buffer.from(KEY).toString('hex'), String(KEY_COUNT)],
    {
      encoding: 'utf8',
      timeout: HANG_LIMIT_MS,
      killSignal: 'SIGKILL',
    },
  );
  if (result.signal !== null)
    throw new Error(`the open did not return within ${HANG_LIMIT_MS} ms (killed with ${result.signal}): it hangs`);
  if (result.status !== 0) throw new Error(`the child failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as ChildResult;
}

describe.skipIf(!POSIX)(
  'FIFOs and devices under store names: refused at once, never waited on or read without end',
  { timeout: HANG_LIMIT_MS * 4 },
  () => {
    it.for(['MANIFEST', 'KEYRING', 'LOCK'])('%s as a FIFO: ARMDB_INTEGRITY', async (name, { tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      plantFifo(path.join(dir, name));
      expect(openInChild(dir)).toEqual({ outcome: 'ARMDB_INTEGRITY' });
    });

    it.for(['data', 'tags'] as const)('a listed %s file as a FIFO: ARMDB_INTEGRITY', async (extension, { tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      plantFifo(inShard(dir, 1, extension));
      expect(openInChild(dir)).toEqual({ outcome: 'ARMDB_INTEGRITY' });
    });

    it('an unlisted data file of a new id as a FIFO: ARMDB_INTEGRITY', async ({ tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      plantFifo(inShard(dir, 2, 'data'));
      fs.writeFileSync(inShard(dir, 2, 'tags'), '');
      expect(openInChild(dir)).toEqual({ outcome: 'ARMDB_INTEGRITY' });
    });

    it('a hint as a FIFO is only a damaged hint: the store opens from its data file, every key there', async ({ tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      expect(fs.existsSync(inShard(dir, 1, 'hint'))).toBe(true);
      plantFifo(inShard(dir, 1, 'hint'));
      expect(openInChild(dir)).toEqual({ outcome: 'opened', found: KEY_COUNT, damagedHints: 1 });
    });

    it('MANIFEST as a link to /dev/zero: ARMDB_INTEGRITY, nothing read', async ({ tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      fs.rmSync(path.join(dir, 'MANIFEST'));
      fs.symlinkSync('/dev/zero', path.join(dir, 'MANIFEST'));
      expect(openInChild(dir)).toEqual({ outcome: 'ARMDB_INTEGRITY' });
    });

    // Making a device node needs root; where the tests run as root, the node itself is planted (no link to follow).
    it.skipIf(!ROOT)('MANIFEST as a character device reading like /dev/zero: ARMDB_INTEGRITY, nothing read', async ({ tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      fs.rmSync(path.join(dir, 'MANIFEST'));
      execFileSync('mknod', ['-m', '600', path.join(dir, 'MANIFEST'), 'c', '1', '5']);
      expect(openInChild(dir)).toEqual({ outcome: 'ARMDB_INTEGRITY' });
    });

    it('armdb info on a store whose MANIFEST is a FIFO, and a key file that is a FIFO: refused at once', async ({ tempDir }) => {
      const dir = tempDir();
      await makeStore(dir);
      const keyFile = path.join(tempDir(), 'store.key');
      fs.writeFileSync(keyFile, KEY, { mode: 0o600 });
      const run = (args: string[]) => {
        const result = spawnSync(process.execPath, [CLI, ...args], {
          encoding: 'utf8',
          timeout: HANG_LIMIT_MS,
          killSignal: 'SIGKILL',
          env: { ...process.env, ARMDB_PASSPHRASE: '' },
        });
        if (result.signal !== null) throw new Error(`armdb ${args[0]} did not return within ${HANG_LIMIT_MS} ms: it hangs`);
        return result;
      };
      expect(run(['info', dir, '--key-file', keyFile]).status).toBe(0);

      plantFifo(keyFile);
      const fromFifoKey = run(['info', dir, '--key-file', keyFile]);
      expect(fromFifoKey.status).toBe(2);
      expect(fromFifoKey.stderr).toMatch(/not a regular file/);

      fs.rmSync(keyFile);
      fs.writeFileSync(keyFile, KEY, { mode: 0o600 });
      plantFifo(path.join(dir, 'MANIFEST'));
      const onFifoManifest = run(['info', dir, '--key-file', keyFile]);
      expect(onFifoManifest.status).toBe(1);
      expect(onFifoManifest.stderr).toMatch(/ARMDB_INTEGRITY/);
    });
  },
);
