/**
 * Options `open` does not know are refused (issue 15, item 16): a misspelt `syncIntervalMS` used to be
 * ignored, its default taken in silence, and `{ key, passphrase }` opened with the key alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/config.js';
import { VarMap, type OpenOptions } from '../../src/index.js';

const KEY = new Uint8Array(32).fill(7);
const made: string[] = [];
afterAll(() => {
  for (const directory of made) fs.rmSync(directory, { recursive: true, force: true });
});

function refusal(options: unknown): Error | undefined {
  try {
    resolveOptions(options, 0);
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

describe('options open() does not know', () => {
  it('a misspelt option is a TypeError naming it and the option it resembles', () => {
    const error = refusal({ keySize: 16, encryption: 'none', syncIntervalMS: 5 });
    expect(error).toBeInstanceOf(TypeError);
    expect(error!.message).toBe('"syncIntervalMS" is not an option of open(); did you mean "syncIntervalMs"?');
  });

  it('an unrelated unknown option is a TypeError that lists the known ones', () => {
    const error = refusal({ keySize: 16, encryption: 'none', durable: true });
    expect(error).toBeInstanceOf(TypeError);
    expect(error!.message).toMatch(/^"durable" is not an option of open\(\); known: keySize, encryption, /);
  });

  it('a key and a passphrase together are a TypeError naming both, not the key alone', () => {
    const error = refusal({ keySize: 16, encryption: { key: KEY, passphrase: 'also' } });
    expect(error).toBeInstanceOf(TypeError);
    expect(error!.message).toContain('"encryption" expected one of "key", "passphrase" or "provider", got key and passphrase');
  });

  it('an option of the passphrase beside a key is refused by name', () => {
    const error = refusal({ keySize: 16, encryption: { key: KEY, scryptLogN: 12 } });
    expect(error).toBeInstanceOf(TypeError);
    expect(error!.message).toBe('"encryption.scryptLogN" is not an option of open(); known: key, slot');
  });

  it('every documented option, valueSize and codec are accepted', () => {
    const options = {
      keySize: 16,
      encryption: { passphrase: 'p', scryptLogN: 10 },
      shards: 2,
      shardPrefixBits: 0,
      cipher: 'noble',
      maxFileBytes: 2 ** 20,
      writeBufferBytes: 2 ** 16,
      maxValueBytes: 1024,
      cacheBytes: 0,
      compactionThreshold: 0.5,
      autoCompact: false,
      hints: false,
      syncIntervalMs: 0,
      hook: { onWrite() {} },
      expectedMinEpoch: 0,
      valueSize: 8,
      codec: undefined,
    };
    expect(refusal(options)).toBeUndefined();
  });

  it('open() with an unknown option rejects and creates nothing', async () => {
    const directory = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-options-')), 'store');
    made.push(path.dirname(directory));
    const options = { keySize: 16, encryption: { key: KEY }, syncIntervalMS: 0 } as unknown as OpenOptions;
    await expect(VarMap.open(directory, options)).rejects.toThrow(TypeError);
    expect(fs.existsSync(directory)).toBe(false);
  });
});
