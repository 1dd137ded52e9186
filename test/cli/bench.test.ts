/**
 * `armdb bench`: a small profile runs to the end, reports every phase, and removes its temporary store.
 * No timing is asserted (only that numbers are there).
 */
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { armdb, BUILT, removeTempDirs, tempDir } from './run.js';

describe.skipIf(!BUILT)('armdb bench', () => {
  afterAll(removeTempDirs);

  it('profiles put, sync, hot get, reopen and cold get, then removes its store', () => {
    const base = tempDir('bench');
    const result = armdb(['bench', base, '--count', '2000', '--sync-rounds', '3', '--shards', '2', '--cache-bytes', '1048576', '--json']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.setup).toMatchObject({ shards: 2, cacheBytes: 1048576, cipher: 'node', encrypted: true, count: 2000 });
    expect(report.phases.map((phase: { name: string }) => phase.name)).toEqual([
      'put',
      'sync',
      'sync rtt',
      'hot get',
      'reopen',
      'cold get',
    ]);
    for (const phase of report.phases) expect(phase.milliseconds).toBeGreaterThanOrEqual(0);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('text output with the noble cipher and no cache', () => {
    const base = tempDir('bench');
    const result = armdb(['bench', base, '--count', '500', '--sync-rounds', '2', '--cipher', 'noble', '--cache-bytes', '0']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('AES-256-GCM (noble)');
    for (const phase of ['put', 'sync rtt', 'hot get', 'reopen', 'cold get']) expect(result.stdout).toContain(phase);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('an unencrypted profile', () => {
    const result = armdb(['bench', tempDir('bench'), '--count', '200', '--sync-rounds', '1', '--no-encryption']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('no encryption');
  });
});
