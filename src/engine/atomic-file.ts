/**
 * Atomic replacement of a small file (MANIFEST, KEYRING): create `name.<random>.tmp` exclusively,
 * fsync it, rename over `name`, fsync the directory (docs/format.md §7.6). A crash leaves either the
 * old or the new file, and at worst a stale `.tmp` that the next open removes.
 */
import * as path from 'node:path';
import type { FileSystem } from '../io/file-system.js';
import { crashPoint } from './crash-points.js';
import { temporaryPath } from './paths.js';

export async function replaceFileAtomically(
  fileSystem: FileSystem,
  target: string,
  bytes: Uint8Array,
  label: 'manifest' | 'keyring',
): Promise<void> {
  const temporary = temporaryPath(target);
  const directory = path.dirname(target);
  await fileSystem.writeFile(temporary, bytes);
  crashPoint(`${label}:temporary-written`, () => ({ directory }));
  fileSystem.rename(temporary, target);
  crashPoint(`${label}:renamed`, () => ({ directory }));
  await fileSystem.syncDirectory(directory);
  crashPoint(`${label}:replaced`, () => ({ directory }));
}
