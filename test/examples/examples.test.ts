/**
 * The README's samples are programs (issue 15, item 22): each file in examples/ runs against the
 * built package (`import … from 'armdb'` resolves to this package's own exports), twice, in a fresh
 * directory, and prints what its comments promise; the TypeScript one compiles under `strict`
 * against the published declarations first. The README's quick start is the file, verbatim.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = path.join(ROOT, 'examples');
const BUILT = fs.existsSync(path.join(ROOT, 'dist', 'index.js'));
const made: string[] = [];
afterAll(() => {
  for (const directory of made) fs.rmSync(directory, { recursive: true, force: true });
});

function workDirectory(): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-example-'));
  made.push(directory);
  return directory;
}

function run(file: string, cwd: string): string[] {
  return execFileSync(process.execPath, [file], { cwd, encoding: 'utf8' }).trimEnd().split('\n');
}

describe.skipIf(!BUILT)('examples/', () => {
  it('quick-start.mjs creates its key once, and a second run opens the same store', () => {
    const cwd = workDirectory();
    const file = path.join(EXAMPLES, 'quick-start.mjs');
    expect(run(file, cwd)).toEqual(['new store', '{"user":7}']);
    expect(fs.statSync(path.join(cwd, 'sessions.key')).mode & 0o777).toBe(0o600);
    expect(run(file, cwd)).toEqual(['opened the store again', '{"user":7}']);
  });

  it('atomic-and-cas.mjs moves money all or nothing and refuses a stale compare-and-swap', () => {
    const cwd = workDirectory();
    expect(run(path.join(EXAMPLES, 'atomic-and-cas.mjs'), cwd)).toEqual([
      'checking 70, savings 30',
      'stale update refused: ARMDB_CAS_MISMATCH',
      'savings 35',
    ]);
  });

  it('await-using.ts compiles under strict TypeScript and closes the store at the end of each block', () => {
    const outDir = path.join(EXAMPLES, '.build');
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', EXAMPLES, '--outDir', outDir], {
      encoding: 'utf8',
    });
    const cwd = workDirectory();
    const compiled = path.join(outDir, 'await-using.js');
    expect(run(compiled, cwd)).toEqual(['2 events, last: stopped']);
    expect(run(compiled, cwd)).toEqual(['4 events, last: stopped']);
  });

  it("the README's quick start is examples/quick-start.mjs, verbatim", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const code = fs.readFileSync(path.join(EXAMPLES, 'quick-start.mjs'), 'utf8');
    expect(readme).toContain(`\`\`\`js\n${code}\`\`\``);
  });
});
