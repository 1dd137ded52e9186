/** Shared pieces of the replication tests (not a test file itself). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { testKey } from '../helpers/bytes.js';

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);
export const encryption = { key: testKey(7) };
export const storeOptions = { keySize: 16, encryption, shards: 2, syncIntervalMs: 0, autoCompact: false, writeBufferBytes: 8192 } as const;

/** Every file under `root` but the lock and a follower's progress file (REPLICA), by relative path. */
export function filesOf(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (directory: string, prefix: string): void => {
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) walk(path.join(directory, entry.name), relative);
      else if (entry.name !== 'LOCK' && !entry.name.startsWith('REPLICA'))
        files.set(relative, fs.readFileSync(path.join(directory, entry.name)));
    }
  };
  walk(root, '');
  return files;
}

/** The code of what `operation` throws, or 'no error'. */
export function codeOf(operation: () => unknown): string {
  try {
    operation();
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
  return 'no error';
}
