/**
 * Hostile directory entries (docs/security-model.md §Hostile directory entries; issue 13, items 2, 3,
 * 4, 6, 8, 9): symbolic links and hard links planted under store names, temporary names guessed in
 * advance, sparse files claiming terabytes, directories and files where the other is expected, alias
 * names, and the CLI's key file and environment.
 *
 * Each case states what must happen: a typed ArmdbError (or, where the entry is harmless, a working
 * store), nothing outside the store read through, written, cut or chmod'ed, and nothing stored lost.
 * FIFOs and devices, which could hang a process that opens them, are in special-files.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { type EngineHooks, withEngineHooks } from '../../src/internal/engine-hooks.js';
import { encryptionFrom, readKeyFile, UsageError } from '../../src/cli/key-source.js';
import { fileName, parseFileName } from '../../src/engine/paths.js';
import { ArmdbError, VarMap, keys, type OpenOptions } from '../../src/index.js';
import type { FileSystem } from '../../src/io/file-system.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { FaultFileSystem } from '../crash/fault-fs.js';
import { forwardHandle } from '../helpers/forwarding-file-system.js';
import { patternBytes, storeTest as it, testKey } from '../helpers/store.js';

const KEY = testKey(13);
const KEY_COUNT = 200;
const PAGE = 4096;

function options(extra: Partial<OpenOptions> = {}): OpenOptions {
  return { keySize: 16, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0, ...extra } as OpenOptions;
}

const keyOf = (index: number): Uint8Array => keys.fromString(`key-${index}`, 16);
const valueFor = (index: number): Uint8Array => patternBytes(100, index);
const shard = (dir: string): string => path.join(dir, 'shard-000');
const inShard = (dir: string, id: number, extension: 'data' | 'tags' | 'hint'): string => path.join(shard(dir), fileName(id, extension));

/** A closed store: `count` keys in sealed file 1 (with its hint); the manifest's next id is 2. */
async function makeStore(dir: string, count = KEY_COUNT): Promise<void> {
  const db = await VarMap.open(dir, options());
  for (let index = 0; index < count; index++) db.put(keyOf(index), valueFor(index));
  await db.close();
}

/**
 * A copy of `dir` taken while it is open, as a crash would leave it: file 1 sealed and listed,
 * and this session's active file 2 unlisted, with its authentic tag header and no data page.
 */
async function crashImage(dir: string, copy: string): Promise<void> {
  await makeStore(dir);
  const db = await VarMap.open(dir, options());
  fs.cpSync(dir, copy, { recursive: true });
  await db.close();
  expect(fs.statSync(inShard(copy, 2, 'tags')).size).toBeGreaterThan(0);
  expect(fs.statSync(inShard(copy, 2, 'data')).size).toBe(0);
}

/** What an open of `dir` gives: 'opened' (every key checked, then closed), an ArmdbError code, or `raw …` for anything else. */
async function openOutcome(dir: string, extra: Partial<OpenOptions> = {}, hooks: EngineHooks = {}): Promise<string> {
  let db: VarMap;
  try {
    db = await VarMap.open(dir, withEngineHooks(options(extra), hooks));
  } catch (error) {
    if (error instanceof ArmdbError) return error.code;
    return `raw ${(error as NodeJS.ErrnoException).code ?? (error as Error).name}: ${(error as Error).message}`;
  }
  try {
    for (let index = 0; index < KEY_COUNT; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index));
  } finally {
    await db.close();
  }
  return 'opened';
}

/** A file outside the store that must come through every case untouched. */
function victim(root: string, name: string, bytes = 2 * PAGE): { path: string; expectUntouched(): void } {
  const victimPath = path.join(root, name);
  const content = patternBytes(bytes, 99);
  fs.writeFileSync(victimPath, content, { mode: 0o644 });
  fs.chmodSync(victimPath, 0o644);
  return {
    path: victimPath,
    expectUntouched() {
      expect(fs.readFileSync(victimPath)).toEqual(content);
      expect(fs.statSync(victimPath).mode & 0o777).toBe(0o644);
    },
  };
}

/** A FileSystem that adds up the bytes every read of a `.tags` file asks for (what it allocates for it). */
function countingTagReads(): { fileSystem: FileSystem; tagBytesRequested: () => number } {
  let requested = 0;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    open(filePath, mode) {
      const handle = nodeFileSystem.open(filePath, mode);
      if (!filePath.endsWith('.tags')) return handle;
      return forwardHandle(handle, {
        read(target, position) {
          requested += target.length;
          return handle.read(target, position);
        },
      });
    },
  };
  return { fileSystem, tagBytesRequested: () => requested };
}

/** The largest tag file of the format (docs/format.md §9), with room for the oversize records a file may end in. */
const LARGEST_TAG_FILE_BYTES = 16 * 2 ** 20;

describe('item 2: recovery never follows a link out of the store, nor cuts what it cannot prove is its own', () => {
  it('a symbolic link planted as the unlisted active data file of a crash image: ARMDB_INTEGRITY, its target untouched', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    const copy = path.join(root, 'copy');
    await crashImage(dir, copy);
    const target = victim(root, 'victim');
    fs.rmSync(inShard(copy, 2, 'data'));
    fs.symlinkSync(target.path, inShard(copy, 2, 'data'));
    expect(await openOutcome(copy)).toBe('ARMDB_INTEGRITY');
    target.expectUntouched();
  });

  it('a hard link to a file outside, as the unlisted active data file, none of whose pages authenticates: ARMDB_INTEGRITY, not cut', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    const copy = path.join(root, 'copy');
    await crashImage(dir, copy);
    const target = victim(root, 'victim');
    fs.rmSync(inShard(copy, 2, 'data'));
    fs.linkSync(target.path, inShard(copy, 2, 'data'));
    expect(await openOutcome(copy)).toBe('ARMDB_INTEGRITY');
    target.expectUntouched();
    expect(fs.statSync(target.path).nlink).toBe(2);
  });

  it('the same crash image with junk of its own (no other name) is still cut and sealed: recovery keeps working', async ({ tempDir }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    const copy = path.join(root, 'copy');
    await crashImage(dir, copy);
    fs.writeFileSync(inShard(copy, 2, 'data'), patternBytes(2 * PAGE, 5));
    expect(await openOutcome(copy)).toBe('opened');
    expect(fs.existsSync(inShard(copy, 2, 'data')) ? fs.statSync(inShard(copy, 2, 'data')).size : 0).toBe(0);
  });

  it.for(['data', 'tags'] as const)(
    'a listed sealed %s file replaced by a symbolic link to its own bytes moved out of the store: ARMDB_INTEGRITY',
    async (extension, { tempDir }) => {
      const root = tempDir();
      const dir = path.join(root, 'store');
      await makeStore(dir);
      const outside = path.join(root, `moved.${extension}`);
      fs.renameSync(inShard(dir, 1, extension), outside);
      fs.symlinkSync(outside, inShard(dir, 1, extension));
      const before = fs.readFileSync(outside);
      expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
      expect(fs.readFileSync(outside)).toEqual(before);
    },
  );
});

describe('item 3: temporary files get fresh names, are created exclusively, and root entries are never links', () => {
  it('links planted at MANIFEST.tmp, KEYRING.tmp and a hint temp while the store runs: nothing outside is written or chmod-ed, MANIFEST and KEYRING stay regular files', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    await makeStore(dir);
    const db = await VarMap.open(dir, options());
    const targets = [victim(root, 'manifest-victim'), victim(root, 'keyring-victim'), victim(root, 'hint-victim')];
    // Planted after the open (whose sweep would remove them), where the old fixed names pointed.
    fs.symlinkSync(targets[0]!.path, path.join(dir, 'MANIFEST.tmp'));
    fs.symlinkSync(targets[1]!.path, path.join(dir, 'KEYRING.tmp'));
    fs.symlinkSync(targets[2]!.path, `${inShard(dir, 2, 'hint')}.tmp`);
    for (let index = 0; index < KEY_COUNT; index++) db.put(keyOf(index), valueFor(index));
    await db.sync();
    await db.rotateDataKey();
    await db.close();
    for (const target of targets) target.expectUntouched();
    for (const name of ['MANIFEST', 'KEYRING']) expect(fs.lstatSync(path.join(dir, name)).isFile()).toBe(true);
    expect(fs.lstatSync(inShard(dir, 2, 'hint')).isFile()).toBe(true);
    expect(await openOutcome(dir)).toBe('opened');
    // The planted links were swept by that open like any stale temporary file, their targets left alone.
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    for (const target of targets) target.expectUntouched();
  });

  it('MANIFEST, KEYRING and hints are written under NAME.<16 hex digits>.tmp, and stale ones of that shape are swept at open', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    await makeStore(dir);
    const stale = [
      path.join(dir, 'MANIFEST.0123456789abcdef.tmp'),
      path.join(dir, 'KEYRING.fedcba9876543210.tmp'),
      `${inShard(dir, 1, 'hint')}.0011223344556677.tmp`,
    ];
    for (const name of stale) fs.writeFileSync(name, 'stale');
    const faults = new FaultFileSystem();
    const db = await VarMap.open(dir, withEngineHooks(options(), { fileSystem: faults }));
    for (const name of stale) expect(fs.existsSync(name)).toBe(false);
    for (let index = 0; index < KEY_COUNT; index++) db.put(keyOf(KEY_COUNT + index), valueFor(index));
    await db.rotateDataKey();
    await db.close();
    const renames = faults.log
      .filter((entry) => entry.kind === 'rename')
      .map((entry) =>
        entry.path
          .split(' -> ')
          .map((name) => path.relative(dir, name))
          .join(' -> '),
      );
    const escaped = (text: string): string => text.replace(/[.\\/]/g, (character) => `\\${character}`);
    const temporary = (target: string): RegExp => new RegExp(`^${escaped(target)}\\.[0-9a-f]{16}\\.tmp -> ${escaped(target)}$`);
    expect(renames.filter((entry) => temporary('MANIFEST').test(entry)).length).toBeGreaterThanOrEqual(1);
    expect(renames.filter((entry) => temporary('KEYRING').test(entry)).length).toBe(1);
    expect(renames.filter((entry) => temporary(path.join('shard-000', fileName(2, 'hint'))).test(entry)).length).toBe(1);
    // Every temporary name differs: none is predictable from an earlier one.
    const sources = renames
      .map((entry) => entry.split(' -> ')[0]!)
      .filter((name) => name.endsWith('.tmp') && !name.includes('.data.') && !name.includes('.tags.'));
    expect(new Set(sources).size).toBe(sources.length);
  });

  it.for(['MANIFEST', 'KEYRING'])(
    '%s replaced by a symbolic link to a genuine copy of itself: ARMDB_INTEGRITY, the copy untouched',
    async (name, { tempDir }) => {
      const root = tempDir();
      const dir = path.join(root, 'store');
      await makeStore(dir);
      const outside = path.join(root, name);
      fs.renameSync(path.join(dir, name), outside);
      fs.symlinkSync(outside, path.join(dir, name));
      const before = fs.readFileSync(outside);
      expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
      expect(fs.readFileSync(outside)).toEqual(before);
      expect(fs.lstatSync(path.join(dir, name)).isSymbolicLink()).toBe(true);
    },
  );

  it('a MANIFEST that is a link to nothing is no missing MANIFEST: ARMDB_INTEGRITY, no store is created over it', async ({ tempDir }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    fs.mkdirSync(dir);
    fs.symlinkSync(path.join(root, 'nowhere'), path.join(dir, 'MANIFEST'));
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
    expect(fs.existsSync(path.join(root, 'nowhere'))).toBe(false);
  });

  it('LOCK planted as a symbolic link to a file outside (holding no live pid): ARMDB_INTEGRITY, neither read as a lock nor removed', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    await makeStore(dir);
    const target = victim(root, 'lock-victim', 64);
    fs.symlinkSync(target.path, path.join(dir, 'LOCK'));
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
    expect(fs.lstatSync(path.join(dir, 'LOCK')).isSymbolicLink()).toBe(true);
    target.expectUntouched();
  });

  it('the refusal of a planted LOCK names it in details.path (so the entry to remove is known without reading the message)', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    await makeStore(dir);
    fs.symlinkSync(victim(root, 'lock-victim', 64).path, path.join(dir, 'LOCK'));
    const refusal = await VarMap.open(dir, options()).then(
      async (db) => {
        await db.close();
        throw new Error('open succeeded');
      },
      (error: unknown) => error as ArmdbError,
    );
    expect(refusal).toBeInstanceOf(ArmdbError);
    expect(refusal.code).toBe('ARMDB_INTEGRITY');
    expect(refusal.details).toEqual({ path: path.join(fs.realpathSync(dir), 'LOCK') });
  });

  it('a shard directory replaced by a symbolic link to a copy of it: ARMDB_INTEGRITY', async ({ tempDir }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    await makeStore(dir);
    fs.renameSync(shard(dir), path.join(root, 'shard-000'));
    fs.symlinkSync(path.join(root, 'shard-000'), shard(dir));
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
  });

  it('the one link allowed: the store directory itself, which the caller names, may be a symbolic link', async ({ tempDir }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    await makeStore(dir);
    fs.symlinkSync(dir, path.join(root, 'link'));
    expect(await openOutcome(path.join(root, 'link'))).toBe('opened');
  });
});

describe('item 4: sizes the file system reports are not allocations: sparse files are read only as far as the format allows', () => {
  it('an unlisted sparse pair claiming 2 TiB of data and 2 GiB of tags: taken for an interrupted creation after at most a largest tag file was read, no RangeError', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.writeFileSync(inShard(dir, 2, 'data'), '');
    fs.truncateSync(inShard(dir, 2, 'data'), 2 * 2 ** 40);
    fs.writeFileSync(inShard(dir, 2, 'tags'), '');
    fs.truncateSync(inShard(dir, 2, 'tags'), 2 * 2 ** 30);
    const counting = countingTagReads();
    const db = await VarMap.open(dir, withEngineHooks(options(), { fileSystem: counting.fileSystem }));
    try {
      expect(counting.tagBytesRequested()).toBeLessThanOrEqual(LARGEST_TAG_FILE_BYTES);
      expect(db.stats().recoveredTornBytes).toBe(2 * 2 ** 40);
      for (let index = 0; index < KEY_COUNT; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index));
    } finally {
      await db.close();
    }
    expect(fs.existsSync(inShard(dir, 2, 'tags'))).toBe(false);
  });

  it('an authentic post-barrier file whose data and tag files were extended sparse to 256 GiB and 2 GiB: its tags are read only as far as the format allows, then it is cut back', async ({
    tempDir,
  }) => {
    const root = tempDir();
    const dir = path.join(root, 'store');
    const copy = path.join(root, 'copy');
    await crashImage(dir, copy);
    fs.truncateSync(inShard(copy, 2, 'data'), 256 * 2 ** 30);
    fs.truncateSync(inShard(copy, 2, 'tags'), 2 * 2 ** 30);
    const counting = countingTagReads();
    expect(await openOutcome(copy, {}, { fileSystem: counting.fileSystem })).toBe('opened');
    expect(counting.tagBytesRequested()).toBeLessThanOrEqual(LARGEST_TAG_FILE_BYTES);
    expect(fs.statSync(inShard(copy, 2, 'data')).size).toBe(0);
  });

  it('a MANIFEST larger than any valid one is refused unread, whatever it holds', async ({ tempDir }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.truncateSync(path.join(dir, 'MANIFEST'), 2 ** 40);
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
  });
});

describe('item 6: malformed entries give typed errors, and a damaged hint stays only a damaged hint', () => {
  it('a directory named like a data file of a new id: ARMDB_INTEGRITY', async ({ tempDir }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.mkdirSync(inShard(dir, 999999, 'data'));
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
    expect(fs.statSync(inShard(dir, 999999, 'data')).isDirectory()).toBe(true);
  });

  it.for(['MANIFEST', 'KEYRING'])('%s replaced by a directory: ARMDB_INTEGRITY', async (name, { tempDir }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.rmSync(path.join(dir, name));
    // Mode 0700, as a KEYRING must be: the refusal must come from its kind, not its permissions.
    fs.mkdirSync(path.join(dir, name), { mode: 0o700 });
    fs.chmodSync(path.join(dir, name), 0o700);
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
  });

  it('a shard directory replaced by a file: ARMDB_INTEGRITY', async ({ tempDir }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.rmSync(shard(dir), { recursive: true });
    fs.writeFileSync(shard(dir), 'not a directory');
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
  });

  it('a regular file given as the store directory: a TypeError naming it, and the file unchanged', async ({ tempDir }) => {
    const file = path.join(tempDir(), 'not-a-store');
    fs.writeFileSync(file, 'some file of the application');
    const error = await VarMap.open(file, options()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toBe(`"directory" expected a directory or a path to create one, got a file: ${file}`);
    expect(fs.readFileSync(file, 'utf8')).toBe('some file of the application');
  });

  it('a directory where a stale temporary file would be: ARMDB_INTEGRITY, not a raw EISDIR', async ({ tempDir }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.mkdirSync(path.join(dir, 'MANIFEST.0123456789abcdef.tmp'));
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
  });

  it('a hint replaced by a directory: the open works from the data file, and the hint counts as damaged', async ({ tempDir }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.rmSync(inShard(dir, 1, 'hint'));
    fs.mkdirSync(inShard(dir, 1, 'hint'));
    const db = await VarMap.open(dir, options());
    try {
      expect(db.stats().damagedHints).toBe(1);
      for (let index = 0; index < KEY_COUNT; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index));
      expect((await db.verify()).ok).toBe(true);
    } finally {
      await db.close();
    }
    // Still the directory it was: nothing was written through it or removed.
    expect(fs.statSync(inShard(dir, 1, 'hint')).isDirectory()).toBe(true);
  });

  it('a listed data file replaced by a directory, its hint intact: ARMDB_INTEGRITY at open, never a raw error from get or verify', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    // One page of data: as long as a directory reports itself on most file systems, so only its kind tells it apart.
    await makeStore(dir, 20);
    expect(fs.statSync(inShard(dir, 1, 'data')).size).toBe(PAGE);
    fs.rmSync(inShard(dir, 1, 'data'));
    fs.mkdirSync(inShard(dir, 1, 'data'));
    await expect(VarMap.open(dir, options())).rejects.toMatchObject({ name: 'ArmdbError', code: 'ARMDB_INTEGRITY' });
  });
});

describe('item 8: a file id has one name', () => {
  it('parseFileName accepts only what fileName writes', () => {
    for (const fileId of [1, 999_999, 1_000_000, 4_294_967_295]) {
      for (const extension of ['data', 'tags', 'hint'] as const)
        expect(parseFileName(fileName(fileId, extension))).toEqual({ fileId, extension });
    }
    for (const alias of ['0000001.data', '00000001.tags', '0000000001.hint', '01000000.data'])
      expect(parseFileName(alias), alias).toBeUndefined();
  });

  it('a copy of a file under an alias name (0000001.data beside 000001.data): ARMDB_INTEGRITY, not accepted for good', async ({
    tempDir,
  }) => {
    const dir = tempDir();
    await makeStore(dir);
    fs.copyFileSync(inShard(dir, 1, 'data'), path.join(shard(dir), '0000001.data'));
    fs.copyFileSync(inShard(dir, 1, 'tags'), path.join(shard(dir), '0000001.tags'));
    expect(await openOutcome(dir)).toBe('ARMDB_INTEGRITY');
  });
});

describe('item 9: the CLI reads its key file through one descriptor, and takes the passphrase out of the environment', () => {
  const keyDirectory = (tempDir: () => string): string => {
    const directory = tempDir();
    fs.chmodSync(directory, 0o700);
    return directory;
  };
  const thrownBy = (action: () => unknown): unknown => {
    try {
      action();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it('a key file that is a symbolic link (even to a private key file) is refused', ({ tempDir }) => {
    const directory = keyDirectory(tempDir);
    const real = path.join(directory, 'real.key');
    fs.writeFileSync(real, testKey(7), { mode: 0o600 });
    fs.symlinkSync(real, path.join(directory, 'link.key'));
    expect(readKeyFile(real)).toEqual(testKey(7));
    const error = thrownBy(() => readKeyFile(path.join(directory, 'link.key')));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/symbolic link/);
  });

  it('a sparse key file claiming 2 TiB is refused by its size on the descriptor, unread', ({ tempDir }) => {
    const directory = keyDirectory(tempDir);
    const huge = path.join(directory, 'huge.key');
    fs.writeFileSync(huge, '', { mode: 0o600 });
    fs.truncateSync(huge, 2 * 2 ** 40);
    expect(thrownBy(() => readKeyFile(huge))).toBeInstanceOf(UsageError);
  });

  it('a directory given as the key file is a usage error', ({ tempDir }) => {
    const directory = keyDirectory(tempDir);
    expect(thrownBy(() => readKeyFile(directory))).toBeInstanceOf(UsageError);
  });

  it('ARMDB_PASSPHRASE is gone from the environment once read', async () => {
    const saved = process.env['ARMDB_PASSPHRASE'];
    process.env['ARMDB_PASSPHRASE'] = 'a passphrase from the environment';
    try {
      const encryption = await encryptionFrom({});
      expect(encryption).toEqual({ passphrase: 'a passphrase from the environment' });
      expect(process.env['ARMDB_PASSPHRASE']).toBeUndefined();
      expect('ARMDB_PASSPHRASE' in process.env).toBe(false);
    } finally {
      if (saved === undefined) delete process.env['ARMDB_PASSPHRASE'];
      else process.env['ARMDB_PASSPHRASE'] = saved;
    }
  });
});
