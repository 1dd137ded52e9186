/**
 * What every `armdb` subcommand shares: its shape (name, help text, options, run), option parsing
 * helpers, and the checks on a directory argument. A usage problem throws {@link UsageError} (exit 2).
 */
import * as fs from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from './key-source.js';

export { UsageError };

/** Options as `util.parseArgs` declares them. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Parsed option values. */
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  readonly name: string;
  /** One line for `armdb --help`. */
  readonly summary: string;
  /** The full text of `armdb <name> --help`. */
  readonly help: string;
  readonly options: OptionSpec;
  /** Most positional arguments accepted. */
  readonly maxPositionals: number;
  /** Returns the exit code: 0 ok, 1 a failure was found. Throws UsageError for exit 2. */
  run(values: OptionValues, positionals: string[]): Promise<number>;
}

/** `--key-file` and `--no-encryption`: every command that opens a store takes them. */
export const KEY_OPTIONS: OptionSpec = {
  'key-file': { type: 'string' },
  'no-encryption': { type: 'boolean' },
};

export const KEY_HELP = `Key options (the key is never an argument):
  --key-file <path>     32 raw bytes or 64 hex digits, mode 0600
  --no-encryption       the store was created with encryption 'none'
  ARMDB_PASSPHRASE      environment variable holding a passphrase store's passphrase
  (otherwise a hidden prompt when standard input is a terminal)`;

export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function flag(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

/** An integer option within bounds, or `fallback` when absent. */
export function integerOption(values: OptionValues, name: string, minimum: number, maximum: number): number | undefined;
export function integerOption(values: OptionValues, name: string, minimum: number, maximum: number, fallback: number): number;
export function integerOption(values: OptionValues, name: string, minimum: number, maximum: number, fallback?: number): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} expects an integer ${minimum}..${maximum}, got "${text}"`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < minimum || value > maximum)
    throw new UsageError(`--${name} expects an integer ${minimum}..${maximum}, got ${text}`);
  return value;
}

/** One of `choices`, or `fallback` when absent. */
export function choiceOption<T extends string>(values: OptionValues, name: string, choices: readonly T[], fallback: T): T {
  const text = stringOption(values, name);
  if (text === undefined) return fallback;
  if (!(choices as readonly string[]).includes(text)) throw new UsageError(`--${name} expects one of ${choices.join(', ')}, got "${text}"`);
  return text as T;
}

/** The `<dir>` argument of a command that needs an existing directory. */
export function existingDirectory(positionals: string[], command: string): string {
  const directory = positionals[0];
  if (directory === undefined || directory.length === 0)
    throw new UsageError(`missing <dir>; usage: armdb ${command} <dir> (see armdb ${command} --help)`);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(directory);
  } catch {
    throw new UsageError(`directory ${directory} does not exist`);
  }
  if (!stat.isDirectory()) throw new UsageError(`${directory} is not a directory`);
  return directory;
}

/** `1 record`, `2,000 records`. */
export function count(amount: number, noun: string): string {
  return `${amount.toLocaleString('en-US')} ${noun}${amount === 1 ? '' : 's'}`;
}

/** `0 bytes`, `512 bytes`, `12.3 KiB`, `4.5 MiB`, `1.2 GiB`: binary units, one decimal. */
export function byteSize(bytes: number): string {
  if (bytes < 1024) return count(bytes, 'byte');
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The report of a command: its data, on stdout. */
export function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Messages about the run (progress, summaries, warnings) go to stderr so stdout stays data. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}
