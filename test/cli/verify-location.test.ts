/**
 * `armdb verify` locates an open that the store refused by the error's structured `details`, never by
 * its message: here the store opener is replaced by one that refuses with an error whose message names
 * no location at all, so only `details` can tell the command where the damage is.
 */
import * as os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ArmdbError } from '../../src/errors.js';

const refusal = vi.hoisted(() => ({ error: undefined as unknown }));

vi.mock('../../src/cli/store.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/cli/store.js')>()),
  openExisting: () => Promise.reject(refusal.error),
}));

const { verifyCommand } = await import('../../src/cli/verify.js');

/** Runs `armdb verify` in process; what it printed on stdout. */
async function verifyOutput(flags: Record<string, boolean>): Promise<{ status: number; stdout: string }> {
  const lines: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    const status = await verifyCommand.run({ quiet: true, ...flags }, [os.tmpdir()]);
    return { status, stdout: lines.join('') };
  } finally {
    write.mockRestore();
  }
}

describe('armdb verify, an open refused with a located error', () => {
  afterEach(() => {
    refusal.error = undefined;
  });

  it('names shard, file and page from details, whatever the message says', async () => {
    refusal.error = new ArmdbError('ARMDB_INTEGRITY', 'ARMDB_INTEGRITY: a page does not authenticate', {
      details: { shard: 1, fileId: 7, pageIndex: 3 },
    });
    const text = await verifyOutput({});
    expect(text.status).toBe(1);
    expect(text.stdout).toContain('FAILED shard 1, file shard-001/000007.data, page 3: ARMDB_INTEGRITY: a page does not authenticate');

    const json = await verifyOutput({ json: true });
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout).failures).toEqual([
      { shard: 1, file: 'shard-001/000007.data', fileId: 7, page: 3, message: 'ARMDB_INTEGRITY: a page does not authenticate' },
    ]);
  });

  it('names the file without a page when details locate a file only', async () => {
    refusal.error = new ArmdbError('ARMDB_ROLLBACK', 'ARMDB_ROLLBACK: file 5 of shard 2: page 9 is an older generation', {
      details: { shard: 0, fileId: 12 },
    });
    const json = JSON.parse((await verifyOutput({ json: true })).stdout);
    // The message's numbers are not read: the location is details' file 12 of shard 0, with no page.
    expect(json.failures).toEqual([
      {
        shard: 0,
        file: 'shard-000/000012.data',
        fileId: 12,
        page: null,
        message: 'ARMDB_ROLLBACK: file 5 of shard 2: page 9 is an older generation',
      },
    ]);
    expect((await verifyOutput({})).stdout).toContain('FAILED shard 0, file shard-000/000012.data: ARMDB_ROLLBACK');
  });

  it('reports an unlocated refusal by its message alone', async () => {
    refusal.error = new ArmdbError('ARMDB_INTEGRITY', 'ARMDB_INTEGRITY: file 3 of shard 0: unit 5 fails authentication');
    const json = JSON.parse((await verifyOutput({ json: true })).stdout);
    expect(json.failures).toEqual([
      { shard: null, file: null, fileId: null, page: null, message: 'ARMDB_INTEGRITY: file 3 of shard 0: unit 5 fails authentication' },
    ]);
  });
});
