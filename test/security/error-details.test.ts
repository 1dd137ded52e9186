/**
 * A refused store says where in ArmdbError.details, not only in its message (src/errors.ts): the
 * shard, the data file's id and the path of the file at fault, so that a tool can point at the file
 * without parsing text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect } from 'vitest';
import { fileName } from '../../src/engine/paths.js';
import { ArmdbError, VarMap, keys, type OpenOptions } from '../../src/index.js';
import { patternBytes, storeTest as it, testKey } from '../helpers/store.js';

const KEY = testKey(14);
const TAG_HEADER = 128;

function options(): OpenOptions {
  return { keySize: 16, encryption: { key: KEY }, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536 } as OpenOptions;
}

const shardDirectory = (dir: string, shard: number): string => path.join(dir, `shard-${String(shard).padStart(3, '0')}`);

/** A closed store whose shard 1 holds several sealed files; returns the id of its first one. */
async function makeStore(dir: string): Promise<number> {
  const db = await VarMap.open(dir, options());
  for (let index = 0; index < 3000; index++) db.put(keys.fromString(`key-${index}`, 16), patternBytes(100, index));
  await db.close();
  const ids = fs
    .readdirSync(shardDirectory(dir, 1))
    .filter((name) => name.endsWith('.data'))
    .map((name) => Number(name.slice(0, -'.data'.length)))
    .sort((left, right) => left - right);
  expect(ids.length).toBeGreaterThan(2);
  return ids[0]!;
}

async function openError(dir: string): Promise<ArmdbError> {
  const error = await VarMap.open(dir, options()).then(
    async (db) => {
      await db.close();
      return undefined;
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ArmdbError);
  return error as ArmdbError;
}

describe('located errors of recovery carry details', () => {
  it('an altered tag of a sealed file: ARMDB_INTEGRITY naming its shard, file id and tag file', async ({ tempDir }) => {
    const dir = tempDir();
    const fileId = await makeStore(dir);
    const tagFile = path.join(shardDirectory(dir, 1), fileName(fileId, 'tags'));
    const bytes = fs.readFileSync(tagFile);
    bytes[TAG_HEADER + 3] = bytes[TAG_HEADER + 3]! ^ 0x01;
    fs.writeFileSync(tagFile, bytes);
    const error = await openError(dir);
    expect(error.code).toBe('ARMDB_INTEGRITY');
    expect(error.details).toEqual({ shard: 1, fileId, path: tagFile });
  });

  it('a data file the manifest lists, deleted: ARMDB_INTEGRITY naming its shard and file id', async ({ tempDir }) => {
    const dir = tempDir();
    const fileId = await makeStore(dir);
    fs.rmSync(path.join(shardDirectory(dir, 1), fileName(fileId, 'data')));
    const error = await openError(dir);
    expect(error.code).toBe('ARMDB_INTEGRITY');
    expect(error.details).toEqual({ shard: 1, fileId });
  });
});
