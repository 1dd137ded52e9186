/**
 * Helpers of the CLI suites: run the BUILT command (`node dist/cli/main.js …`) as a child process,
 * make temporary directories and key files, snapshot a store's files, and remember every output so a
 * suite can check that no secret ever appeared in one.
 *
 * The suites need `npm run build` first; without dist/cli/main.js they are skipped with a message.
 * Not a test file itself (no `.test.ts` suffix).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../helpers/temp-dir.js';

// Shared helpers the CLI suites import from here.
export { hex, testKey } from '../helpers/bytes.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const BUILT = fs.existsSync(CLI);
if (!BUILT) console.warn(`[test/cli] skipped: ${CLI} is missing; run "npm run build" first`);

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Everything any command printed in this suite. */
export const outputs: string[] = [];

/** Runs `armdb …args`. ARMDB_PASSPHRASE (ARMDB_NEW_PASSPHRASE) is set only when `options.passphrase` (`newPassphrase`) is given. */
export function armdb(
  args: string[],
  options: { input?: string | Buffer; passphrase?: string; newPassphrase?: string; cwd?: string } = {},
): RunResult {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['ARMDB_PASSPHRASE'];
  delete env['ARMDB_NEW_PASSPHRASE'];
  if (options.passphrase !== undefined) env['ARMDB_PASSPHRASE'] = options.passphrase;
  if (options.newPassphrase !== undefined) env['ARMDB_NEW_PASSPHRASE'] = options.newPassphrase;
  const result = spawnSync(process.execPath, [CLI, ...args], {
    input: options.input ?? '',
    env,
    cwd: options.cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 2 ** 20,
  });
  if (result.error !== undefined) throw result.error;
  outputs.push(result.stdout, result.stderr);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const made: string[] = [];

export function tempDir(label = 'cli'): string {
  const directory = makeTempDir(label);
  made.push(directory);
  return directory;
}

export function removeTempDirs(): void {
  for (const directory of made.splice(0)) fs.rmSync(directory, { recursive: true, force: true });
}

/** Writes `key` to a new file (mode 0600) and returns its path. */
export function writeKeyFile(directory: string, key: Uint8Array, name = 'store.key'): string {
  const file = path.join(directory, name);
  fs.writeFileSync(file, key, { mode: 0o600 });
  return file;
}

/** Every file below `directory` (relative path → bytes). */
export function snapshot(directory: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.set(path.relative(directory, full), fs.readFileSync(full));
    }
  };
  walk(directory);
  return files;
}

/** The strings in which a secret could leak: hex and base64 of keys, and passphrases as given. */
export function secretForms(secrets: readonly (Uint8Array | string)[]): string[] {
  return secrets.flatMap((secret) =>
    typeof secret === 'string'
      ? [secret]
      : [Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('hex').toUpperCase(), Buffer.from(secret).toString('base64')],
  );
}

/** JSON lines → records (hex or base64). */
export function parseJsonLines(text: string): { key: string; value: string }[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as { key: string; value: string });
}
