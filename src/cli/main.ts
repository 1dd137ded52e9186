#!/usr/bin/env node
/**
 * The `armdb` command (docs/cli.md). Exit codes: 0 ok, 1 a failure was found, 2 usage.
 */
import { parseArgs } from 'node:util';
import { ArmdbError } from '../errors.js';
import { runDemo } from './demo.js';
import { UsageError } from './key-source.js';

const HELP = `armdb — encrypted embedded key-value store

Usage: armdb <command> [options]

Commands:
  demo [dir]      write, read, reopen and verify a demo store (default ./armdb-demo)

Options:
  -h, --help      show help for a command

The key comes from --key-file, the ARMDB_PASSPHRASE environment variable, or a hidden prompt —
never from an argument.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'demo': {
      const { values, positionals } = parseArgs({ args: rest, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
      if (values.help) {
        process.stdout.write('Usage: armdb demo [dir]\n\nWrites 100,000 records to an encrypted store (default ./armdb-demo), reads them,\nreopens and verifies it. A random key is created in <dir>.key (mode 0600) on first run.\n');
        return 0;
      }
      await runDemo(positionals[0] ?? 'armdb-demo', (line) => process.stdout.write(`${line}\n`));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"; run armdb --help`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`armdb: ${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof ArmdbError) {
      process.stderr.write(`armdb: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`armdb: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
