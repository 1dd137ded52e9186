/**
 * Where the CLI gets the secret: `--key-file` (32 raw bytes, or 64 hex characters), the
 * `ARMDB_PASSPHRASE` environment variable, or a hidden prompt on a terminal — never an argument,
 * which would show in `ps` and shell history.
 */
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import type { EncryptionOption } from '../config.js';
import { equalBytes } from '../format/bytes.js';

export class UsageError extends Error {}

/** Longest key file read: 64 hex digits leave room for line breaks and spaces, nothing more is a key. */
const MAX_KEY_FILE_BYTES = 4096;
// O_NOFOLLOW: the mode checked is the mode of what is read. O_NONBLOCK: a FIFO is refused, not waited on.
const KEY_FILE_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);

/**
 * Reads a key file: exactly 32 bytes, or 64 hex digits (whitespace ignored). The file is opened once,
 * never through a symbolic link, and its kind, mode and size are checked on that descriptor: a file
 * others can read, a link, a FIFO or anything but a regular file of at most 4 KiB is refused.
 */
export function readKeyFile(path: string): Uint8Array {
  let descriptor: number;
  try {
    descriptor = fs.openSync(path, KEY_FILE_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK')
      throw new UsageError(`key file ${path} is a symbolic link; give the path of the file itself`);
    if (code === 'ENOENT') throw new UsageError(`key file ${path} does not exist`);
    throw error;
  }
  let bytes: Uint8Array;
  try {
    const stat = fs.fstatSync(descriptor);
    if (!stat.isFile()) throw new UsageError(`key file ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) throw new UsageError(`key file ${path} is readable by other users; run chmod 600 on it`);
    if (stat.size > MAX_KEY_FILE_BYTES) throw new UsageError(`key file ${path} must hold 32 raw bytes or 64 hex digits`);
    // One byte more than the bound: a file that grew after fstat is refused by what was read.
    const buffer = new Uint8Array(MAX_KEY_FILE_BYTES + 1);
    let read = 0;
    while (read < buffer.length) {
      const count = fs.readSync(descriptor, buffer, read, buffer.length - read, read);
      if (count === 0) break;
      read += count;
    }
    if (read > MAX_KEY_FILE_BYTES) {
      buffer.fill(0);
      throw new UsageError(`key file ${path} must hold 32 raw bytes or 64 hex digits`);
    }
    bytes = buffer.slice(0, read);
    buffer.fill(0);
  } finally {
    fs.closeSync(descriptor);
  }
  if (bytes.length === 32) return bytes;
  const text = Buffer.from(bytes).toString('latin1').replace(/\s+/g, '');
  bytes.fill(0);
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  throw new UsageError(`key file ${path} must hold 32 raw bytes or 64 hex digits`);
}

/**
 * Bytes typed after the Enter that ended a prompt (a pasted "secret\rsecret\r" arrives in one chunk):
 * they answer the next prompt. Zeroed as they are taken.
 */
let typedAhead: number[] = [];

/**
 * The terminal to prompt on: stdin when it is one, else (when stderr shows the prompt on a terminal)
 * the process's controlling terminal, so that `armdb import <dir> < records.jsonl` can still ask for
 * the passphrase, as ssh and gpg do.
 */
function openTerminal(): { input: tty.ReadStream; owned: boolean } | undefined {
  if (process.stdin.isTTY) return { input: process.stdin as tty.ReadStream, owned: false };
  // The prompt goes to stderr: when that is not a terminal nobody sees it, so nobody is asked.
  if (!process.stderr.isTTY) return undefined;
  let descriptor: number;
  try {
    descriptor = fs.openSync('/dev/tty', fs.constants.O_RDONLY | (fs.constants.O_NOCTTY ?? 0));
  } catch {
    return undefined; // no controlling terminal (a service, CI)
  }
  if (!tty.isatty(descriptor)) {
    fs.closeSync(descriptor);
    return undefined;
  }
  return { input: new tty.ReadStream(descriptor), owned: true };
}

/**
 * Reads one line from the terminal in raw mode, without echo. Listens for 'data' and removes its
 * listeners when the line is complete, so the stream stays usable: the next prompt, or `import`
 * reading its records from stdin, goes on reading it (leaving a `for await` loop would destroy it).
 */
async function promptHidden(question: string, noTerminal: string): Promise<Uint8Array> {
  const terminal = openTerminal();
  if (terminal === undefined) throw new UsageError(noTerminal);
  const { input, owned } = terminal;
  // Echo off before the prompt shows: an answer typed (or pasted) the moment it appears is never echoed.
  input.setRawMode(true);
  process.stderr.write(question);
  const collected: number[] = [];
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      const finish = (outcome: () => void): void => {
        input.off('data', onData);
        input.off('end', onEnd);
        input.off('error', onError);
        outcome();
      };
      /** Takes typed bytes; true once the line is complete (the rest is kept for the next prompt). */
      const take = (bytes: ArrayLike<number>): boolean => {
        for (let index = 0; index < bytes.length; index++) {
          const byte = bytes[index]!;
          if (byte === 0x0d || byte === 0x0a || byte === 0x04) {
            typedAhead = Array.from({ length: bytes.length - index - 1 }, (_, offset) => bytes[index + 1 + offset]!);
            finish(() => resolve(normalized(collected)));
            return true;
          }
          if (byte === 0x03) {
            finish(() => reject(new UsageError('cancelled')));
            return true;
          }
          if (byte === 0x7f || byte === 0x08) collected.pop();
          else collected.push(byte);
        }
        return false;
      };
      const onData = (chunk: Buffer): void => {
        take(chunk);
        chunk.fill(0);
      };
      const onEnd = (): void => finish(() => resolve(normalized(collected)));
      const onError = (error: Error): void => finish(() => reject(error));
      input.on('data', onData);
      input.once('end', onEnd);
      input.once('error', onError);
      const ahead = typedAhead;
      typedAhead = [];
      const done = take(ahead);
      ahead.fill(0);
      if (!done) input.resume();
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    if (owned) input.destroy();
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

/**
 * The encryption option for a store, from the sources above in that order. `confirm` asks twice
 * (creating a store: a typo would lock the data away for good).
 */
export async function encryptionFrom(
  options: {
    keyFile?: string | undefined;
    none?: boolean | undefined;
    /** The option that gives a key file, for messages: `--key-file` or `--new-key-file`. */
    keyFileOption?: string;
    environmentVariable?: string;
  },
  prompt: { question?: string; confirm?: boolean } = {},
): Promise<EncryptionOption> {
  if (options.none) return 'none';
  if (options.keyFile !== undefined) {
    if (!fs.existsSync(options.keyFile)) throw new UsageError(`key file ${options.keyFile} does not exist`);
    return { key: readKeyFile(options.keyFile) };
  }
  const variable = options.environmentVariable ?? 'ARMDB_PASSPHRASE';
  const fromEnvironment = process.env[variable];
  // Read once, then gone from the environment: child processes do not inherit it, and no later code
  // of this process finds it there (docs/security-model.md §12).
  delete process.env[variable];
  if (fromEnvironment !== undefined && fromEnvironment.length > 0) return { passphrase: fromEnvironment };
  const which = options.keyFileOption === '--new-key-file' ? 'no new key given' : 'no key given';
  const noTerminal = `${which}: use ${options.keyFileOption ?? '--key-file'}, ${variable}, or run on a terminal to be prompted`;
  const passphrase = await promptHidden(prompt.question ?? (prompt.confirm ? 'New passphrase: ' : 'Passphrase: '), noTerminal);
  if (passphrase.length === 0) throw new UsageError('empty passphrase');
  if (prompt.confirm) {
    const again = await promptHidden('Repeat the passphrase: ', noTerminal);
    const same = equalBytes(passphrase, again);
    again.fill(0);
    if (!same) {
      passphrase.fill(0);
      throw new UsageError('the passphrases differ');
    }
  }
  return { passphrase };
}
