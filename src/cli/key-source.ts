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
        if (byte === 0x0d || byte === 0x0a || byte === 0x04) return normalized(collected);
        if (byte === 0x03) throw new UsageError('cancelled');
        if (byte === 0x7f || byte === 0x08) collected.pop();
        else collected.push(byte);
      }
    }
    return normalized(collected);
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
    collected.fill(0);
  }
}

/** A typed passphrase in NFC, as the library normalises string passphrases (same key on every system). */
function normalized(collected: number[]): Uint8Array {
  const bytes = new Uint8Array(collected);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes;
  }
  bytes.fill(0);
  return new TextEncoder().encode(text.normalize('NFC'));
}

function equalSecrets(left: Uint8Array, right: Uint8Array): boolean {
  return left.length === right.length && left.every((byte, index) => byte === right[index]);
}

/**
 * The encryption option for a store, from the sources above in that order. `confirm` asks twice
 * (creating a store: a typo would lock the data away for good).
 */
export async function encryptionFrom(
  options: { keyFile?: string | undefined; none?: boolean | undefined; environmentVariable?: string },
  prompt: { question?: string; confirm?: boolean } = {},
): Promise<EncryptionOption> {
  if (options.none) return 'none';
  if (options.keyFile !== undefined) {
    if (!fs.existsSync(options.keyFile)) throw new UsageError(`key file ${options.keyFile} does not exist`);
    return { key: readKeyFile(options.keyFile) };
  }
  const fromEnvironment = process.env[options.environmentVariable ?? 'ARMDB_PASSPHRASE'];
  if (fromEnvironment !== undefined && fromEnvironment.length > 0) return { passphrase: fromEnvironment };
  const passphrase = await promptHidden(prompt.question ?? (prompt.confirm ? 'New passphrase: ' : 'Passphrase: '));
  if (passphrase.length === 0) throw new UsageError('empty passphrase');
  if (prompt.confirm) {
    const again = await promptHidden('Repeat the passphrase: ');
    const same = equalSecrets(passphrase, again);
    again.fill(0);
    if (!same) {
      passphrase.fill(0);
      throw new UsageError('the passphrases differ');
    }
  }
  return { passphrase };
}
