/**
 * `armdb export <dir>`: every live record as a JSON line `{"key":"…","value":"…"}` (hex or base64),
 * streamed with backpressure. Trees export in key order; Maps, which have no key order, in on-disk
 * order (each page is then decrypted once, not once per record). Memory stays flat: one value is read
 * at a time, output waits for 'drain', and a Map costs 4 bytes per key for its list of index handles.
 */
import * as fs from 'node:fs';
import type { Engine } from '../engine/engine.js';
import { Walk } from '../engine/walk.js';
import {
  choiceOption,
  count,
  flag,
  KEY_HELP,
  KEY_OPTIONS,
  existingDirectory,
  note,
  stringOption,
  UsageError,
  type Command,
} from './command.js';
import { BYTE_FORMATS, encodeBytes, type ByteFormat } from './encoding.js';
import { LineWriter } from './output.js';
import { progressReporter } from './progress.js';
import { openExisting } from './store.js';

/** Index handles of every live record: key order for trees, else file order. */
function recordHandles(engine: Engine): Iterable<number> {
  if (engine.ordered !== undefined) return engine.ordered.handles({});
  const index = engine.index;
  const handles = new Int32Array(index.size);
  let count = 0;
  index.forEachHandle((handle) => {
    handles[count++] = handle;
  });
  const listed = handles.subarray(0, count);
  // Const collections hold their values in memory: no page to read, no order to keep.
  if (index.valueSize === 0) listed.sort((left, right) => index.compareLocations(left, right));
  return listed;
}

/**
 * Writes every live record of `engine` to `writer` as a JSON line, in slices; `onRecord(done)` reports
 * progress after each slice. Returns the number of records written.
 */
export async function exportRecords(
  engine: Engine,
  writer: LineWriter,
  format: ByteFormat,
  onRecord: (done: number) => void,
): Promise<number> {
  const index = engine.index;
  let done = 0;
  const walk = new Walk({ operation: 'export', onSlice: () => onRecord(done) });
  await walk.each(recordHandles(engine), async (handle) => {
    const key = encodeBytes(index.keyView(handle), format);
    const value = encodeBytes(engine.readHandle(handle), format);
    await writer.write(`{"key":"${key}","value":"${value}"}\n`);
    done++;
  });
  return done;
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'write every record as JSON lines (plaintext!) to stdout or a new file',
  maxPositionals: 1,
  options: { ...KEY_OPTIONS, format: { type: 'string' }, out: { type: 'string', short: 'o' }, quiet: { type: 'boolean', short: 'q' } },
  help: `Usage: armdb export <dir> [--format hex|base64] [--out <file>] [--quiet] [key options]

Writes every live record of the store in <dir> as one JSON line:
  {"key":"<encoded key>","value":"<encoded value>"}
Trees (VarTree, ConstTree, TypedTree) in key order; Maps in on-disk order. Typed collections
export the bytes their codec stored. The output is PLAINTEXT: keep it as safe as the key.

Options:
  --format hex|base64   encoding of keys and values (default hex)
  -o, --out <file>      write to a new file, created with mode 0600 (it must not exist; it is
                        fsynced when complete and removed if the export fails); default stdout
  -q, --quiet           no progress or summary on stderr
  -h, --help            show this help

${KEY_HELP}

Exit codes: 0 ok; 1 wrong key, integrity failure, I/O error; 2 usage.

Example:
  armdb export ./data --key-file ./data.key --format base64 --out backup.jsonl`,
  async run(values, positionals) {
    const directory = existingDirectory(positionals, 'export');
    const format = choiceOption(values, 'format', BYTE_FORMATS, 'hex');
    const out = stringOption(values, 'out');
    const quiet = flag(values, 'quiet');
    if (out !== undefined && fs.existsSync(out)) throw new UsageError(`${out} already exists; export writes a new file only`);
    const { engine } = await openExisting(directory, values);
    let writer: LineWriter | undefined;
    let exported = 0;
    try {
      writer = out === undefined ? LineWriter.toStdout() : LineWriter.toNewFile(out);
      const progress = progressReporter('export', { quiet });
      const total = engine.size;
      try {
        exported = await exportRecords(engine, writer, format, (done) => progress.update(done, total));
        progress.update(exported, total);
      } finally {
        progress.finish();
      }
      await writer.finish();
    } catch (error) {
      writer?.abandon();
      await engine.close().catch(() => undefined);
      throw error;
    }
    await engine.close();
    if (!quiet)
      note(`armdb export: ${count(exported, 'record')} exported as ${format}${out === undefined ? '' : ` to ${out}`} (plaintext)`);
    return 0;
  },
};
