/**
 * The two FileSystem wrappers replication stands on, without NATS: replaying what the recorder saw
 * rebuilds the leader's files byte for byte, and an engine on the overlay leaves its directory as it
 * was, whatever it writes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { overlayFileSystem } from '../../src/io/overlay-file-system.js';
import { type FileOperation, recordingFileSystem } from '../../src/io/recording-file-system.js';
import { applyOperations } from '../../src/replication/apply.js';
import { filesOf, storeOptions, text } from './harness.js';

let workDirectory: string;
beforeEach(() => {
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-fs-'));
});
afterEach(() => fs.rmSync(workDirectory, { recursive: true, force: true }));

function expectSameFiles(left: Map<string, Buffer>, right: Map<string, Buffer>): void {
  expect([...right.keys()].sort()).toEqual([...left.keys()].sort());
  for (const [name, bytes] of left) expect(right.get(name)?.equals(bytes), name).toBe(true);
}

test('applying the recorded operations rebuilds the files byte for byte, and the lock is never recorded', async () => {
  const source = path.join(workDirectory, 'a');
  const target = path.join(workDirectory, 'b');
  const operations: FileOperation[] = [];
  const recording = recordingFileSystem(nodeFileSystem, path.resolve(source), {
    onOperation: (operation) => operations.push(operation),
    onDurable: () => undefined,
  });
  const options = { ...storeOptions, maxFileBytes: 16 * 4096, hints: true };
  const db = await VarMap.open(source, withEngineHooks({ ...options }, { fileSystem: recording }));
  for (let round = 0; round < 3; round++) {
    for (let index = 0; index < 200; index++) db.put(keys.fromString(`k${index}`, 16), text(`r${round} ${index}`.repeat(9)));
    await db.sync();
  }
  await db.compact();
  await db.close();
  expect(operations.some((operation) => operation.kind === 'rename')).toBe(true);
  expect(operations.some((operation) => operation.kind === 'remove')).toBe(true);
  expect(operations.some((operation) => 'path' in operation && path.basename(operation.path).startsWith('LOCK'))).toBe(false);

  fs.mkdirSync(target);
  applyOperations(nodeFileSystem, target, operations);
  expectSameFiles(filesOf(source), filesOf(target));
  const reopened = await VarMap.open(target, { ...options });
  expect(reopened.get(keys.fromString('k7', 16))).toEqual(text('r2 7'.repeat(9)));
  await reopened.close();
});

test('an engine on the overlay reads the directory and leaves it byte-identical, whatever it writes', async () => {
  const directory = path.join(workDirectory, 'a');
  const db = await VarMap.open(directory, { ...storeOptions });
  for (let index = 0; index < 100; index++) db.put(keys.fromString(`k${index}`, 16), text(`value ${index}`));
  await db.sync();
  await db.close();
  const before = filesOf(directory);

  const overlaid = await VarMap.open(directory, withEngineHooks({ ...storeOptions }, { fileSystem: overlayFileSystem(nodeFileSystem) }));
  expect(overlaid.get(keys.fromString('k42', 16))).toEqual(text('value 42'));
  overlaid.put(keys.fromString('k42', 16), text('changed in memory'));
  await overlaid.sync();
  await overlaid.compact();
  expect(overlaid.get(keys.fromString('k42', 16))).toEqual(text('changed in memory'));
  await overlaid.close();
  expectSameFiles(before, filesOf(directory));
  expect(fs.existsSync(path.join(directory, 'LOCK'))).toBe(false);
});

test('replaying operations over a directory that already holds a prefix of them gives the same files (a follower killed mid-apply)', async () => {
  const source = path.join(workDirectory, 'a');
  const operations: FileOperation[] = [];
  const recording = recordingFileSystem(nodeFileSystem, path.resolve(source), {
    onOperation: (operation) => operations.push(operation),
    onDurable: () => undefined,
  });
  const options = { ...storeOptions, maxFileBytes: 16 * 4096, hints: true };
  const db = await VarMap.open(source, withEngineHooks({ ...options }, { fileSystem: recording }));
  for (let round = 0; round < 3; round++) {
    for (let index = 0; index < 120; index++) db.put(keys.fromString(`k${index}`, 16), text(`r${round} ${index}`.repeat(9)));
    await db.sync();
    if (round === 1) await db.compact();
  }
  await db.close();
  const expected = filesOf(source);
  const count = operations.length;
  // Durable points d and crash points k ≥ d: every kind of operation is cut through, renames and removes included.
  const durablePoints = [0, Math.floor(count / 3), Math.floor((2 * count) / 3)];
  const crashPoints = new Set<number>();
  for (let step = 0; step <= 24; step++) crashPoints.add(Math.floor((count * step) / 24));
  operations.forEach((operation, index) => {
    if (operation.kind === 'rename' || operation.kind === 'remove' || operation.kind === 'create') {
      crashPoints.add(index);
      crashPoints.add(index + 1);
    }
  });
  let cases = 0;
  for (const durable of durablePoints) {
    for (const crash of crashPoints) {
      if (crash < durable || crash > count) continue;
      const target = path.join(workDirectory, `replay-${durable}-${crash}`);
      fs.mkdirSync(target);
      applyOperations(nodeFileSystem, target, operations.slice(0, crash));
      applyOperations(nodeFileSystem, target, operations.slice(durable), { replayingPrefix: true });
      expectSameFiles(expected, filesOf(target));
      fs.rmSync(target, { recursive: true, force: true });
      cases++;
    }
  }
  expect(cases).toBeGreaterThan(50);
});
