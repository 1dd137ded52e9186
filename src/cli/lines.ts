/**
 * Splits a byte stream into numbered lines (`\n`, with an optional `\r` before it). A line longer than
 * `maxLineBytes` is refused before it is gathered, so a file without newlines cannot exhaust memory.
 */

export class InputError extends Error {
  readonly line: number;

  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

export interface Line {
  /** 1-based. */
  readonly number: number;
  readonly bytes: Buffer;
}

export async function* readLines(input: AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<Line, void, undefined> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  let number = 0;
  const take = (piece: Buffer): void => {
    if (partBytes + piece.length > maxLineBytes) throw new InputError(number + 1, `longer than ${maxLineBytes} bytes`);
    parts.push(piece);
    partBytes += piece.length;
  };
  const finishLine = (): Line => {
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    parts = [];
    partBytes = 0;
    return { number: ++number, bytes };
  };
  for await (const received of input) {
    const chunk = typeof received === 'string' ? Buffer.from(received) : received;
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(0x0a, start);
      if (end < 0) break;
      take(chunk.subarray(start, end));
      yield finishLine();
      start = end + 1;
    }
    if (start < chunk.length) take(chunk.subarray(start));
  }
  if (partBytes > 0) yield finishLine();
}
