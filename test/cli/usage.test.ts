/**
 * The command line's contract that needs no store: help, and exit code 2 for usage errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { armdb, BUILT, removeTempDirs, tempDir } from './run.js';

const SUBCOMMANDS = ['info', 'verify', 'export', 'import', 'bench', 'demo', 'compact', 'change-key', 'rotate-key'];

describe.skipIf(!BUILT)('armdb usage', () => {
  afterAll(removeTempDirs);

  it('armdb --help lists every command and exits 0', () => {
    const result = armdb(['--help']);
    expect(result.status).toBe(0);
    for (const name of SUBCOMMANDS) expect(result.stdout).toContain(name);
  });

  it('no command at all is a usage error (2) that still shows the help', () => {
    const result = armdb([]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('Usage: armdb <command>');
  });

  it.each(SUBCOMMANDS)('armdb %s --help exits 0 with a usage text', (name) => {
    for (const flag of ['--help', '-h']) {
      const result = armdb([name, flag]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`Usage: armdb ${name}`);
      expect(result.stderr).toBe('');
    }
  });

  it('an unknown command exits 2', () => {
    const result = armdb(['frobnicate']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
  });

  it.each(['info', 'verify', 'export', 'import'])('%s without <dir> exits 2', (name) => {
    const result = armdb([name]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('missing <dir>');
  });

  it.each(['info', 'verify', 'export', 'import'])('%s on a directory that does not exist exits 2', (name) => {
    const missing = path.join(tempDir(), 'nope');
    const result = armdb([name, missing, '--no-encryption']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('does not exist');
  });

  it('a directory that holds no store exits 2', () => {
    const result = armdb(['info', tempDir(), '--no-encryption']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('holds no armdb store');
  });

  it('an unknown option and an extra argument exit 2', () => {
    const directory = tempDir();
    expect(armdb(['info', directory, '--bogus']).status).toBe(2);
    const extra = armdb(['info', directory, 'second']);
    expect(extra.status).toBe(2);
    expect(extra.stderr).toContain('unexpected argument');
  });

  it('--version and -V print the package version and exit 0', () => {
    const version = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const result = armdb([flag]);
      expect(result.status).toBe(0);
      expect(result.stdout).toBe(`${version}\n`);
    }
  });

  it("option errors are said in the command's own words, naming the option and where help is", () => {
    const directory = tempDir();
    const unknown = armdb(['info', directory, '--bogus']);
    expect(unknown.stderr).toBe('armdb info: unknown option --bogus; see armdb info --help\n');
    const dashed = armdb(['bench', directory, '--count', '-5']);
    expect(dashed.status).toBe(2);
    expect(dashed.stderr).toBe(
      'armdb bench: option --count needs a value, and one that starts with a dash must be written --count=<value>; see armdb bench --help\n',
    );
    const missing = armdb(['bench', directory, '--count']);
    expect(missing.stderr).toBe('armdb bench: option --count needs a value; see armdb bench --help\n');
    const valued = armdb(['info', directory, '--json=yes']);
    expect(valued.status).toBe(2);
    expect(valued.stderr).toBe('armdb info: option --json takes no value; see armdb info --help\n');
  });

  it('a bad option value exits 2', () => {
    const directory = tempDir();
    expect(armdb(['export', directory, '--format', 'base32', '--no-encryption']).status).toBe(2);
    expect(armdb(['bench', directory, '--count', 'many']).status).toBe(2);
    expect(armdb(['bench', directory, '--cipher', 'rot13']).status).toBe(2);
  });

  it('import options that only make sense with --create are refused without it', () => {
    const result = armdb(['import', tempDir(), '--key-size', '16', '--no-encryption']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--key-size applies only with --create');
  });

  it('--create without --key-size exits 2', () => {
    const result = armdb(['import', path.join(tempDir(), 'new'), '--create', '--no-encryption']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--key-size');
  });

  it('a key file that others can read is refused (2), a missing one too', () => {
    const directory = tempDir();
    const keyFile = path.join(directory, 'open.key');
    fs.writeFileSync(keyFile, new Uint8Array(32), { mode: 0o644 });
    fs.chmodSync(keyFile, 0o644);
    const store = path.join(directory, 'store');
    const readable = armdb(['import', store, '--create', '--key-size', '8', '--key-file', keyFile]);
    expect(readable.status).toBe(2);
    expect(readable.stderr).toContain('chmod 600');
    expect(armdb(['import', store, '--create', '--key-size', '8', '--key-file', path.join(directory, 'none.key')]).status).toBe(2);
  });

  it('without --key-file, ARMDB_PASSPHRASE or a terminal there is no key: exit 2, no prompt', () => {
    const result = armdb(['import', path.join(tempDir(), 'new'), '--create', '--key-size', '8']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('no key given');
  });
});
