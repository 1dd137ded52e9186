/**
 * Where the CLI gets the secret: `--key-file` (32 raw bytes, or 64 hex characters), the
 * `ARMDB_PASSPHRASE` environment variable, or a hidden prompt on a terminal — never an argument,
 * which would show in `ps` and shell history.
 */
import * as fs from 'node:fs';
import type { EncryptionOption } from '../config.js';

export class UsageError extends Error {}

/** Reads a key file: exactly 32 bytes, or 64 hex digits (whitespace ignored). Refuses a file others can read. */
export function readKeyFile(path: string): Uint8Array {
  const stat = fs.statSync(path);
  if ((stat.mode & 0o077) !== 0) throw new UsageError(`key file ${path} is readable by other users; run chmod 600 on it`);
  const bytes = new Uint8Array(fs.readFileSync(path));
  if (bytes.length === 32) return bytes;
  const text = Buffer.from(bytes).toString('latin1').replace(/\s+/g, '');
  bytes.fill(0);
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  throw new UsageError(`key file ${path} must hold 32 raw bytes or 64 hex digits`);
}

async function promptHidden(question: string): Promise<Uint8Array> {
  const input = process.stdin;
  if (!input.isTTY) throw new UsageError('no key given: use --key-file, ARMDB_PASSPHRASE, or run on a terminal to be prompted');
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  const collected: number[] = [];
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      for (const byte of chunk) {
        if (byte === 0x0d || byte === 0x0a) return new Uint8Array(collected);
        if (byte === 0x03) throw new UsageError('cancelled');
        if (byte === 0x7f) collected.pop();
        else collected.push(byte);
      }
    }
    return new Uint8Array(collected);
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
    collected.fill(0);
  }
}

/** The encryption option for a store, from the sources above in that order. */
export async function encryptionFrom(options: { keyFile?: string | undefined; none?: boolean | undefined }, prompt = 'Passphrase: '): Promise<EncryptionOption> {
  if (options.none) return 'none';
  if (options.keyFile !== undefined) return { key: readKeyFile(options.keyFile) };
  const fromEnvironment = process.env['ARMDB_PASSPHRASE'];
  if (fromEnvironment !== undefined && fromEnvironment.length > 0) return { passphrase: fromEnvironment };
  return { passphrase: await promptHidden(prompt) };
}
