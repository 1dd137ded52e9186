#!/usr/bin/env node
/**
 * The `armdb` command (docs/cli.md): a dispatcher over one module per subcommand.
 * Exit codes: 0 ok, 1 a failure was found (integrity, wrong key, bad input, I/O), 2 usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ArmdbError } from '../errors.js';
import { benchCommand } from './bench.js';
import { UsageError, type Command } from './command.js';
import { demoCommand } from './demo.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { infoCommand } from './info.js';
import { compactCommand } from './compact.js';
import { changeKeyCommand, rotateKeyCommand } from './key-commands.js';
import { keysCommand } from './keys-command.js';
import { replicateCommand, restoreCommand } from './replicate.js';
import { verifyCommand } from './verify.js';

const COMMANDS: readonly Command[] = [
  infoCommand,
  verifyCommand,
  exportCommand,
  importCommand,
  benchCommand,
  demoCommand,
  compactCommand,
  changeKeyCommand,
  rotateKeyCommand,
  keysCommand,
  restoreCommand,
  replicateCommand,
];

const HELP = `armdb — encrypted embedded key-value store

Usage: armdb <command> [options]

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(12)}${command.summary}`).join('\n')}

Options:
  -h, --help       show help (armdb <command> --help for a command)
  -V, --version    print the version

The key comes from --key-file, the ARMDB_PASSPHRASE environment variable, or a hidden prompt —
never from an argument. Exit codes: 0 ok, 1 a failure was found (integrity, wrong key, bad input,
I/O), 2 usage.`;

/** The running command, for error messages. */
let current: string | undefined;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? process.stderr : process.stdout).write(`${HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) throw new UsageError(`unknown command "${name}"; run armdb --help`);
  current = command.name;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw usageFromParseError(error, command.name);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  if (positionals.length > command.maxPositionals)
    throw new UsageError(`unexpected argument "${positionals[command.maxPositionals]}"; see armdb ${command.name} --help`);
  return command.run(values, positionals);
}

/** The version of this package, read from its package.json (dist/cli/ is two levels below it). */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

/**
 * The argument parser's errors in this command's own words: its texts name the parser's internals
 * ("argument is ambiguous", "-- \"--bogus\"") rather than what to type.
 */
function usageFromParseError(error: unknown, command: string): unknown {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : '';
  const option = /Option '(-[^' ]+)/i.exec(message)?.[1];
  const see = `see armdb ${command} --help`;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${option ?? ''}; ${see}`.replace(' ;', ';'));
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) {
    if (message.includes('does not take an argument')) return new UsageError(`option ${option} takes no value; ${see}`);
    if (message.includes('ambiguous'))
      return new UsageError(`option ${option} needs a value, and one that starts with a dash must be written ${option}=<value>; ${see}`);
    return new UsageError(`option ${option} needs a value; ${see}`);
  }
  return error;
}

function isUsageError(error: unknown): boolean {
  return error instanceof UsageError || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
}

/** An operating-system error (ENOENT, EACCES, EPIPE…): its message is enough. */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    /^E[A-Z]+$/.test(String((error as NodeJS.ErrnoException).code))
  );
}

/**
 * A reader that stops early (`armdb export … | head -2`) closes the pipe: the next write fails with
 * EPIPE. That is no failure of the command: it ends quietly with exit 0, as `git log | head` does.
 * Writes after it go nowhere; a command that streams (export) stops at its next write.
 */
let stdoutClosed = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE' || stdoutClosed) {
    stdoutClosed = true;
    return;
  }
  process.stderr.write(`${current === undefined ? 'armdb' : `armdb ${current}`}: standard output: ${error.message}\n`);
  process.exitCode = 1;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode ??= code;
  },
  (error: unknown) => {
    const prefix = current === undefined ? 'armdb' : `armdb ${current}`;
    if (error instanceof Error && (error as NodeJS.ErrnoException).code === 'EPIPE') {
      // The reader of stdout is gone (see above): the only pipe the command writes to.
      process.exitCode = 0;
    } else if (isUsageError(error)) {
      process.stderr.write(`${prefix}: ${(error as Error).message}\n`);
      process.exitCode = 2;
    } else if (error instanceof ArmdbError || isSystemError(error)) {
      process.stderr.write(`${prefix}: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`${prefix}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
