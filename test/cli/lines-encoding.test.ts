/**
 * The pieces of `import` that judge input, tested directly from src/: the line splitter (CRLF, chunk
 * boundaries, a last line without newline, the length bound) and the strict hex/base64 decoders.
 */
import { describe, expect, it } from 'vitest';
import { decodeBytes, encodeBytes } from '../../src/cli/encoding.js';
import { InputError, readLines } from '../../src/cli/lines.js';

async function collect(chunks: string[], maxLineBytes = 1024): Promise<string[]> {
  const lines: string[] = [];
  async function* source() {
    for (const chunk of chunks) yield Buffer.from(chunk);
  }
  for await (const line of readLines(source(), maxLineBytes)) lines.push(`${line.number}:${line.bytes.toString()}`);
  return lines;
}

describe('readLines', () => {
  it('numbers lines across chunk boundaries, strips CR, keeps blank lines and a last line without newline', async () => {
    expect(await collect(['ab', 'c\r\n\nde', 'f\ng', 'h'])).toEqual(['1:abc', '2:', '3:def', '4:gh']);
    expect(await collect(['one\n'])).toEqual(['1:one']);
    expect(await collect([])).toEqual([]);
  });

  it('refuses a line longer than the bound with its number, before gathering it', async () => {
    const error = await collect(['short\n', 'x'.repeat(10), 'y'.repeat(10), '\n'], 15).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).line).toBe(2);
    expect((error as InputError).message).toBe('line 2: longer than 15 bytes');
  });
});

describe('decodeBytes', () => {
  it('round-trips both encodings, the empty string included', () => {
    for (const bytes of [new Uint8Array(0), new Uint8Array([0]), new Uint8Array([1, 2, 3, 250, 255])]) {
      for (const format of ['hex', 'base64'] as const) expect(decodeBytes(encodeBytes(bytes, format), format)).toEqual(bytes);
    }
  });

  it('accepts upper-case hex, refuses odd length and non-hex characters', () => {
    expect(decodeBytes('ABcd', 'hex')).toEqual(new Uint8Array([0xab, 0xcd]));
    expect(decodeBytes('abc', 'hex')).toBeUndefined();
    expect(decodeBytes('zz', 'hex')).toBeUndefined();
    expect(decodeBytes(' ab', 'hex')).toBeUndefined();
  });

  it('refuses unpadded, non-canonical, url-safe and whitespace-broken base64', () => {
    expect(decodeBytes('QQ==', 'base64')).toEqual(new Uint8Array([0x41]));
    expect(decodeBytes('QQ', 'base64')).toBeUndefined();
    expect(decodeBytes('QR==', 'base64')).toBeUndefined();
    expect(decodeBytes('-_8=', 'base64')).toBeUndefined();
    expect(decodeBytes('QQ==\n', 'base64')).toBeUndefined();
    expect(decodeBytes('Q Q==', 'base64')).toBeUndefined();
  });
});
