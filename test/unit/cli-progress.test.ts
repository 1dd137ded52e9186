/**
 * Progress without a terminal (issue 15, item 14): a line for every tenth from 10% to 100%, even when
 * one update crosses several tenths, and no "0% (1,024/20,000)" line whose count contradicts it.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../src/cli/progress.js';

function lines(updates: readonly number[], total: number): string[] {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let text = '';
  (stream as unknown as PassThrough).on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const progress = progressReporter('export', { stream });
  for (const done of updates) progress.update(done, total);
  progress.finish();
  (stream as unknown as PassThrough).read();
  return text.split('\n').filter((line) => line.length > 0);
}

describe('progress on a pipe', () => {
  it('prints each tenth once, in order, with the count at that tenth', () => {
    expect(lines([1024, 5000, 9000, 20_000], 20_000)).toEqual([
      'export: 10% (2,000/20,000)',
      'export: 20% (4,000/20,000)',
      'export: 30% (6,000/20,000)',
      'export: 40% (8,000/20,000)',
      'export: 50% (10,000/20,000)',
      'export: 60% (12,000/20,000)',
      'export: 70% (14,000/20,000)',
      'export: 80% (16,000/20,000)',
      'export: 90% (18,000/20,000)',
      'export: 100% (20,000/20,000)',
    ]);
  });

  it('an empty job is done at once', () => {
    expect(lines([0], 0).at(-1)).toBe('export: 100% (0/0)');
  });
});
