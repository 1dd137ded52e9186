/**
 * Hidden passphrase prompts on a real terminal (issue 15, item 1): a command that asks twice (create,
 * change-key) must read both answers, and a prompt must leave stdin usable. On the old code the
 * second prompt failed with "AbortError: The operation was aborted": leaving `for await` over stdin
 * destroyed it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { armdb, BUILT, removeTempDirs, tempDir } from './run.js';
import { armdbOnTerminal } from './terminal.js';

const PASSPHRASE = 'first passphrase 15';
const NEW_PASSPHRASE = 'second passphrase 15';
const LOW_COST = ['--scrypt-log-n', '10'];

function records(count: number): string {
  let text = '';
  for (let index = 0; index < count; index++)
    text += `${JSON.stringify({ key: Buffer.from(keys.fromString(`k${index}`, 16)).toString('hex'), value: Buffer.from(`v${index}`).toString('hex') })}\n`;
  return text;
}

/** The values of k0..k(count-1), opened with `passphrase`. */
async function valuesWith(directory: string, passphrase: string, count: number): Promise<string[]> {
  const db = await VarMap.open(directory, { keySize: 16, encryption: { passphrase }, syncIntervalMs: 0 });
  try {
    return Array.from({ length: count }, (_, index) => new TextDecoder().decode(db.get(keys.fromString(`k${index}`, 16))));
  } finally {
    await db.close();
  }
}

const expected = (count: number): string[] => Array.from({ length: count }, (_, index) => `v${index}`);

describe.skipIf(!BUILT)('passphrase prompts on a terminal', () => {
  afterAll(removeTempDirs);

  it('import --create asks twice, reads both answers, then imports stdin redirected from a file', async () => {
    const root = tempDir('prompt');
    const input = path.join(root, 'in.jsonl');
    fs.writeFileSync(input, records(20));
    const directory = path.join(root, 'store');
    const result = await armdbOnTerminal(
      ['import', directory, '--create', '--key-size', '16', ...LOW_COST],
      [
        { prompt: 'New passphrase: ', answer: PASSPHRASE },
        { prompt: 'Repeat the passphrase: ', answer: PASSPHRASE },
      ],
      { shellSuffix: ` < '${input}'` },
    );
    expect(result.status, result.screen).toBe(0);
    expect(result.screen).not.toContain(PASSPHRASE);
    expect(await valuesWith(directory, PASSPHRASE, 20)).toEqual(expected(20));
  });

  it('a mismatch at the repeat prompt says the passphrases differ (exit 2) and writes nothing', async () => {
    const root = tempDir('prompt');
    const input = path.join(root, 'in.jsonl');
    fs.writeFileSync(input, records(3));
    const directory = path.join(root, 'store');
    const result = await armdbOnTerminal(
      ['import', directory, '--create', '--key-size', '16', ...LOW_COST, '--in', input],
      [
        { prompt: 'New passphrase: ', answer: PASSPHRASE },
        { prompt: 'Repeat the passphrase: ', answer: `${PASSPHRASE}x` },
      ],
    );
    expect(result.status, result.screen).toBe(2);
    expect(result.screen).toContain('the passphrases differ');
    expect(fs.existsSync(path.join(directory, 'MANIFEST'))).toBe(false);
  });

  it('change-key asks for the current passphrase, then the new one twice, and the new one opens the store', async () => {
    const root = tempDir('prompt');
    const directory = path.join(root, 'store');
    const created = armdb(['import', directory, '--create', '--key-size', '16', ...LOW_COST], {
      input: records(5),
      passphrase: PASSPHRASE,
    });
    expect(created.status, created.stderr).toBe(0);
    const result = await armdbOnTerminal(
      ['change-key', directory],
      [
        { prompt: 'Passphrase: ', answer: PASSPHRASE },
        { prompt: 'New passphrase: ', answer: NEW_PASSPHRASE },
        { prompt: 'Repeat the passphrase: ', answer: NEW_PASSPHRASE },
      ],
    );
    expect(result.status, result.screen).toBe(0);
    expect(result.screen).not.toContain(NEW_PASSPHRASE);
    expect(await valuesWith(directory, NEW_PASSPHRASE, 5)).toEqual(expected(5));
  });

  it('without a terminal, change-key names the options that give a new key', () => {
    const root = tempDir('prompt');
    const directory = path.join(root, 'store');
    expect(
      armdb(['import', directory, '--create', '--key-size', '16', ...LOW_COST], { input: records(1), passphrase: PASSPHRASE }).status,
    ).toBe(0);
    const result = armdb(['change-key', directory], { passphrase: PASSPHRASE });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('no new key given: use --new-key-file, ARMDB_NEW_PASSPHRASE');
  });
});
