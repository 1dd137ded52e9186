/**
 * What `npm pack` ships (issue 15, items 2-4): a build made by `prepare` (so installing from a clone
 * or a git URL works), the LICENSE that package.json names, and the sources every source map and
 * declaration map points at. Needs `npm run build` first, as the CLI suites do.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILT = fs.existsSync(path.join(ROOT, 'dist', 'index.js'));

function packedFiles(): Set<string> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const output = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const [pack] = JSON.parse(output) as { files: { path: string }[] }[];
  return new Set(pack!.files.map((file) => file.path));
}

describe.skipIf(!BUILT)('the published package', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    license: string;
    scripts: Record<string, string>;
    main: string;
    types: string;
    bin: Record<string, string>;
  };

  it('builds itself when installed from a clone: a prepare script runs the build', () => {
    expect(manifest.scripts['prepare']).toBe('npm run build');
  });

  it('ships the entry points, the command, a LICENSE, and every file a source map names', () => {
    const files = packedFiles();
    for (const entry of [manifest.main, manifest.types, ...Object.values(manifest.bin)]) expect(files).toContain(path.normalize(entry));
    expect(manifest.license).toBe('MIT');
    expect(files).toContain('LICENSE');
    expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toContain('MIT License');
    const maps = [...files].filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(fs.readFileSync(path.join(ROOT, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const target = path.normalize(path.join(path.dirname(map), source));
        if (!files.has(target)) missing.push(`${map} → ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
