/**
 * `armdb info` and `armdb verify` count the same data files (issue 15, item 14): verify's open starts
 * an empty active file per shard, which holds no page to check and is not counted.
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { armdb, BUILT, removeTempDirs, tempDir, testKey, writeKeyFile } from './run.js';

const KEY = testKey(21);

describe.skipIf(!BUILT)('file counts', () => {
  afterAll(removeTempDirs);

  it('info lists as many data files as verify checks', async () => {
    const root = tempDir('counts');
    const keyFile = writeKeyFile(root, KEY);
    const directory = path.join(root, 'store');
    const db = await VarMap.open(directory, { keySize: 16, encryption: { key: KEY }, shards: 4, syncIntervalMs: 0 });
    for (let index = 0; index < 3000; index++) db.put(keys.fromString(`k${index}`, 16), new Uint8Array(100));
    await db.close();
    const info = JSON.parse(armdb(['info', directory, '--key-file', keyFile, '--json']).stdout) as { files: number };
    const verify = JSON.parse(armdb(['verify', directory, '--key-file', keyFile, '--json', '--quiet']).stdout) as {
      files: number;
      ok: boolean;
    };
    expect(verify.ok).toBe(true);
    expect(info.files).toBeGreaterThan(0);
    expect(verify.files).toBe(info.files);
  });
});
