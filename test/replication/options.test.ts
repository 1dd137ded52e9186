/** The `replication` option at the boundary, without NATS: checked before anything connects. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { VarMap } from '../../src/index.js';
import { natsReplication } from '../../src/replication/index.js';
import { storeOptions } from './harness.js';

const servers = 'nats://127.0.0.1:1';

test('natsReplication checks its options with TypeError and RangeError', () => {
  expect(() => natsReplication({ servers, name: 'a.b', role: 'leader' })).toThrow(TypeError);
  expect(() => natsReplication({ servers, name: '', role: 'leader' })).toThrow(TypeError);
  expect(() => natsReplication({ servers, name: 'ok', role: 'primary' as 'leader' })).toThrow(TypeError);
  expect(() => natsReplication({ servers, name: 'ok', role: 'leader', ack: 'quorum' as 'local' })).toThrow(TypeError);
  expect(() => natsReplication({ servers: [], name: 'ok', role: 'leader' })).toThrow(TypeError);
  expect(() => natsReplication({ servers, name: 'ok', role: 'leader', leaseTtlMs: 10 })).toThrow(RangeError);
  expect(() => natsReplication({ servers, name: 'ok', role: 'leader', streamReplicas: 7 })).toThrow(RangeError);
});

test('open refuses a replication option it did not make, and a store without encryption, before connecting', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-options-'));
  try {
    await expect(VarMap.open(path.join(directory, 'a'), { ...storeOptions, replication: {} as never })).rejects.toThrow(TypeError);
    // Nothing listens on port 1: the refusal comes first, with its own code.
    await expect(
      VarMap.open(path.join(directory, 'b'), {
        ...storeOptions,
        encryption: 'none',
        replication: natsReplication({ servers, name: 'plain', role: 'leader' }),
      }),
    ).rejects.toMatchObject({ code: 'ARMDB_REPLICATION', message: expect.stringContaining('encrypted') });
    await expect(
      VarMap.open(path.join(directory, 'c'), { ...storeOptions, replication: natsReplication({ servers, name: 'down', role: 'leader' }) }),
    ).rejects.toMatchObject({ code: 'ARMDB_REPLICATION', message: expect.stringContaining('connect') });
    const plain = await VarMap.open(path.join(directory, 'd'), { ...storeOptions });
    expect(() => plain.replication).toThrow(TypeError);
    await plain.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
