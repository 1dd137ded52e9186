/**
 * The streamed capture of a leader's files (src/replication/capture.ts), without NATS: a file set
 * pinned at one point reads back, a chunk at a time, exactly the bytes it held then, whatever the engine
 * did meanwhile (files appended, compacted away, the MANIFEST replaced), and a plain
 * model of files checks the same under random writes, truncates, renames and unlinks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { keys, VarMap } from '../../src/index.js';
import { withEngineHooks } from '../../src/internal/engine-hooks.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import { FilePin, type PinnedFile, pinningFileSystem } from '../../src/replication/capture.js';
import { filesOf, storeOptions, text } from './harness.js';

let workDirectory: string;
beforeEach(() => {
  workDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-replication-capture-'));
});
afterEach(() => fs.rmSync(workDirectory, { recursive: true, force: true }));

/** Every byte of a pinned file, read `chunkBytes` at a time. */
function readPinned(pin: FilePin, file: PinnedFile, chunkBytes: number): Buffer {
  const parts: Buffer[] = [];
  for (let position = 0; position < file.size; ) {
    const chunk = new Uint8Array(Math.min(chunkBytes, file.size - position));
    const read = pin.read(file, chunk, position);
    expect(read, `${file.path} at ${position}`).toBeGreaterThan(0);
    parts.push(Buffer.from(chunk.subarray(0, read)));
    position += read;
  }
  return Buffer.concat(parts);
}

test('a pin reads the files as they were when it was taken, after appends, compaction and a MANIFEST replaced', async () => {
  const directory = path.join(workDirectory, 'a');
  let pin: FilePin | undefined;
  const fileSystem = pinningFileSystem(nodeFileSystem, () => pin);
  const options = { ...storeOptions, maxFileBytes: 16 * 4096, hints: true };
  const db = await VarMap.open(directory, withEngineHooks({ ...options }, { fileSystem }));
  try {
    for (let round = 0; round < 3; round++) {
      for (let index = 0; index < 150; index++) db.put(keys.fromString(`k${index}`, 16), text(`r${round} ${index} `.repeat(7)));
      await db.sync();
    }
    db.put(keys.fromString('tail', 16), text('partial page'));
    await db.sync();
    pin = FilePin.take(nodeFileSystem, path.resolve(directory));
    const atPin = filesOf(directory);

    for (let round = 3; round < 6; round++) {
      for (let index = 0; index < 150; index += 2) db.put(keys.fromString(`k${index}`, 16), text(`r${round} ${index} `.repeat(7)));
      await db.sync();
    }
    await db.compact();
    const after = filesOf(directory);
    // What the pin has to survive did happen: files gone (compaction), files appended past their pinned length.
    expect([...atPin.keys()].some((name) => !after.has(name))).toBe(true);
    expect([...atPin].some(([name, bytes]) => (after.get(name)?.length ?? 0) > bytes.length)).toBe(true);

    expect(pin.files.map((file) => file.path).sort()).toEqual([...atPin.keys()].sort());
    for (const file of pin.files) {
      expect(readPinned(pin, file, 3000).equals(atPin.get(file.path)!), file.path).toBe(true);
      pin.release(file);
    }
  } finally {
    pin?.releaseAll();
    await db.close();
  }
});

type Operation =
  | { readonly kind: 'write'; readonly file: number; readonly position: number; readonly length: number; readonly fill: number }
  | { readonly kind: 'truncate'; readonly file: number; readonly length: number }
  | { readonly kind: 'rename'; readonly file: number; readonly to: number }
  | { readonly kind: 'unlink'; readonly file: number };

const FILES = 4;
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    file: fc.nat(FILES - 1),
    position: fc.nat(300),
    length: fc.integer({ min: 1, max: 120 }),
    fill: fc.nat(255),
  }),
  fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(FILES - 1), length: fc.nat(300) }),
  fc.record({ kind: fc.constant('rename' as const), file: fc.nat(FILES - 1), to: fc.nat(FILES - 1) }),
  fc.record({ kind: fc.constant('unlink' as const), file: fc.nat(FILES - 1) }),
);

test('against a plain model: whatever is written, truncated, renamed or unlinked after the pin, it reads the bytes of the pin', () => {
  let run = 0;
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 250 }), { minLength: FILES, maxLength: FILES }),
      fc.array(operation, { maxLength: 40 }),
      fc.integer({ min: 1, max: 97 }),
      (initial, operations, chunkBytes) => {
        const directory = path.join(workDirectory, `p${run++}`);
        fs.mkdirSync(directory);
        const nameOf = (file: number): string => path.join(directory, `f${file}`);
        for (const [file, bytes] of initial.entries()) fs.writeFileSync(nameOf(file), bytes);
        let pin: FilePin | undefined = FilePin.take(nodeFileSystem, directory);
        const fileSystem = pinningFileSystem(nodeFileSystem, () => pin);
        for (const step of operations) {
          const name = nameOf(step.file);
          if (step.kind === 'rename' || step.kind === 'unlink') {
            if (!fs.existsSync(name)) continue;
            if (step.kind === 'unlink') fileSystem.unlink(name);
            else if (step.to !== step.file) fileSystem.rename(name, nameOf(step.to));
            continue;
          }
          const handle = fs.existsSync(name) ? fileSystem.open(name, 'readWrite') : fileSystem.open(name, 'create');
          if (step.kind === 'write') handle.write(new Uint8Array(step.length).fill(step.fill), step.position);
          else handle.truncate(step.length);
          handle.close();
        }
        for (const file of pin.files) {
          const expected = Buffer.from(initial[Number(file.path.slice(1))]!);
          expect(readPinned(pin, file, chunkBytes).equals(expected), file.path).toBe(true);
        }
        pin.releaseAll();
        pin = undefined;
      },
    ),
    { numRuns: 150 },
  );
});
