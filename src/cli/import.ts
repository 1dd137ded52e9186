/**
 * `armdb import <dir>`: reads JSON lines `{"key":"…","value":"…"}` (stdin by default) into a store,
 * creating it with `--create`.
 *
 * Every line is validated completely (UTF-8, JSON, exactly the fields key and value, encoding, key
 * size, value size) before its record is written; a record is one write, so no record is ever half
 * applied. The input is streamed, never buffered whole and never copied to a temporary file (it is
 * plaintext). At the first bad line the import stops: the records of the lines before it are written
 * and synced, nothing from the bad line on, and the line number is reported (exit 1). `--check`
 * validates the whole input and writes nothing: run it first for all-or-nothing behaviour.
 */
import * as fs from 'node:fs';
import { DEFAULTS, MAX_SCRYPT_LOG_N, type EncryptionOption } from '../config.js';
import type { StoreDescription } from '../engine/describe.js';
import type { Engine } from '../engine/engine.js';
import { armdbError } from '../errors.js';
import { Limits } from '../format/constants.js';
import type { CollectionKindId } from '../format/manifest.js';
import { MAX_CONST_VALUE_BYTES } from '../collections/open.js';
import {
  choiceOption,
  count,
  flag,
  integerOption,
  KEY_HELP,
  KEY_OPTIONS,
  existingDirectory,
  note,
  stringOption,
  UsageError,
  type Command,
  type OptionValues,
} from './command.js';
import { BYTE_FORMATS, decodeBytes, type ByteFormat } from './encoding.js';
import { InputError, readLines, type Line } from './lines.js';
import { CLI_OPEN_OPTIONS, describe, encryptionFor, isConstKind, KIND_BY_NAME, openChecked, peekStore, wipeEncryption } from './store.js';

/** What a line is checked against. */
export interface RecordShape {
  readonly keySize: number;
  /** Exact value size of Const stores; 0 = variable, up to `maxValueBytes`. */
  readonly valueSize: number;
  readonly maxValueBytes: number;
  readonly format: ByteFormat;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The record of one line, or undefined for a blank line. Messages never quote the line: it may hold
 * secrets (V8's JSON.parse messages would, so they are not passed on).
 */
function parseRecord(line: Line, shape: RecordShape): { key: Uint8Array; value: Uint8Array } | undefined {
  const fail = (message: string): never => {
    throw new InputError(line.number, message);
  };
  let text: string;
  try {
    text = utf8.decode(line.bytes);
  } catch {
    return fail('not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('expected a JSON object {"key":"…","value":"…"}');
  const record = parsed as Record<string, unknown>;
  if (Object.keys(record).some((field) => field !== 'key' && field !== 'value'))
    return fail('unexpected field: only "key" and "value" are allowed');
  const decode = (field: 'key' | 'value'): Uint8Array => {
    const encoded = record[field];
    if (typeof encoded !== 'string') return fail(`"${field}" is missing or not a string`);
    return decodeBytes(encoded, shape.format) ?? fail(`"${field}" is not valid ${shape.format}`);
  };
  const key = decode('key');
  if (key.length !== shape.keySize) fail(`"key" is ${key.length} bytes; the store's keys are ${shape.keySize} bytes`);
  const value = decode('value');
  if (shape.valueSize > 0 && value.length !== shape.valueSize)
    fail(`"value" is ${value.length} bytes; the store's values are exactly ${shape.valueSize} bytes`);
  if (shape.valueSize === 0 && value.length > shape.maxValueBytes)
    fail(`"value" is ${value.length} bytes, above the ${shape.maxValueBytes}-byte limit (--max-value-bytes)`);
  return { key, value };
}

/** Room in a line for its JSON framing: field names, quotes, spaces, escapes. */
const LINE_FRAMING_BYTES = 4096;

/** Longest line worth reading for a shape: both fields at 2 characters per byte, plus framing. */
function maxLineBytes(shape: RecordShape): number {
  return LINE_FRAMING_BYTES + 2 * (shape.keySize + (shape.valueSize > 0 ? shape.valueSize : shape.maxValueBytes));
}

const CREATE_ONLY = ['key-size', 'kind', 'value-size', 'shards', 'shard-prefix-bits', 'scrypt-log-n'] as const;

interface Target {
  readonly shape: RecordShape;
  readonly open: (() => Promise<Engine>) | undefined;
}

/** The options `--create` asks for. */
function requestedStore(values: OptionValues) {
  const keySize = integerOption(values, 'key-size', 1, Limits.maxKeyBytes);
  if (keySize === undefined) throw new UsageError('--create needs --key-size <bytes>');
  const kindName = choiceOption(values, 'kind', Object.keys(KIND_BY_NAME), 'VarMap');
  const kind = KIND_BY_NAME[kindName]!;
  const valueSize = integerOption(values, 'value-size', 1, MAX_CONST_VALUE_BYTES);
  if (isConstKind(kind) && valueSize === undefined) throw new UsageError(`--kind ${kindName} needs --value-size <bytes>`);
  if (!isConstKind(kind) && valueSize !== undefined)
    throw new UsageError(`--value-size applies to ConstMap and ConstTree only, not ${kindName}`);
  return {
    kindName,
    kind,
    keySize,
    valueSize: valueSize ?? 0,
    shards: integerOption(values, 'shards', 1, Limits.maxShards),
    shardPrefixBits: integerOption(values, 'shard-prefix-bits', 0, keySize * 8),
    scryptLogN: integerOption(values, 'scrypt-log-n', 10, MAX_SCRYPT_LOG_N),
  };
}

/** With `--create` on an existing store: every option given must be what the store has. */
function checkRequested(requested: ReturnType<typeof requestedStore>, values: OptionValues, description: StoreDescription): void {
  const mismatch = (what: string, stored: string | number, given: string | number): never => {
    throw armdbError('ARMDB_FORMAT_MISMATCH', `the store exists with ${what} ${stored}; --create asked for ${given}`);
  };
  if (requested.keySize !== description.keySize) mismatch('key size', description.keySize, requested.keySize);
  if (stringOption(values, 'kind') !== undefined && requested.kind !== description.collectionKind)
    mismatch('class', description.collection, requested.kindName);
  if (requested.valueSize !== 0 && requested.valueSize !== description.valueSize)
    mismatch('value size', description.valueSize, requested.valueSize);
  if (requested.shards !== undefined && requested.shards !== description.shards) mismatch('shards', description.shards, requested.shards);
  if (requested.shardPrefixBits !== undefined && requested.shardPrefixBits !== description.shardPrefixBits) {
    mismatch('shardPrefixBits', description.shardPrefixBits, requested.shardPrefixBits);
  }
}

async function prepareTarget(
  directory: string,
  values: OptionValues,
  format: ByteFormat,
  maxValueBytes: number,
  check: boolean,
): Promise<Target> {
  const create = flag(values, 'create');
  const store = fs.existsSync(directory) ? peekStore(directory) : undefined;
  const requested = create ? requestedStore(values) : undefined;
  const runtime = { ...CLI_OPEN_OPTIONS, cacheBytes: 0, maxValueBytes };
  if (store === undefined) {
    if (requested === undefined)
      throw new UsageError(`${directory} holds no armdb store (no MANIFEST); to create one add --create --key-size <bytes>`);
    const shape: RecordShape = { keySize: requested.keySize, valueSize: requested.valueSize, maxValueBytes, format };
    if (check) return { shape, open: undefined };
    let encryption: EncryptionOption = await encryptionFor(values, undefined, { confirm: true });
    if (typeof encryption === 'object' && 'passphrase' in encryption && requested.scryptLogN !== undefined)
      encryption = { ...encryption, scryptLogN: requested.scryptLogN };
    const options = {
      keySize: requested.keySize,
      encryption,
      ...(requested.shards === undefined ? {} : { shards: requested.shards }),
      ...(requested.shardPrefixBits === undefined ? {} : { shardPrefixBits: requested.shardPrefixBits }),
      ...runtime,
    };
    return { shape, open: () => openWith(directory, options, requested.kind, requested.valueSize, encryption) };
  }
  const encryption = await encryptionFor(values, store);
  let description: StoreDescription;
  try {
    description = await describe(directory, encryption);
  } catch (error) {
    wipeEncryption(encryption);
    throw error;
  }
  if (requested !== undefined) checkRequested(requested, values, description);
  const shape: RecordShape = { keySize: description.keySize, valueSize: description.valueSize, maxValueBytes, format };
  if (check) {
    wipeEncryption(encryption);
    return { shape, open: undefined };
  }
  const options = {
    keySize: description.keySize,
    encryption,
    shards: description.shards,
    shardPrefixBits: description.shardPrefixBits,
    ...runtime,
  };
  return { shape, open: () => openWith(directory, options, description.collectionKind, description.valueSize, encryption) };
}

async function openWith(
  directory: string,
  options: Parameters<typeof openChecked>[1],
  kind: CollectionKindId,
  valueSize: number,
  encryption: EncryptionOption,
): Promise<Engine> {
  try {
    return await openChecked(directory, options, kind, valueSize);
  } finally {
    wipeEncryption(encryption);
  }
}

export const importCommand: Command = {
  name: 'import',
  summary: 'read JSON lines into a store (stdin or --in), optionally creating it',
  maxPositionals: 1,
  options: {
    ...KEY_OPTIONS,
    format: { type: 'string' },
    in: { type: 'string', short: 'i' },
    create: { type: 'boolean' },
    'key-size': { type: 'string' },
    kind: { type: 'string' },
    'value-size': { type: 'string' },
    shards: { type: 'string' },
    'shard-prefix-bits': { type: 'string' },
    'scrypt-log-n': { type: 'string' },
    'max-value-bytes': { type: 'string' },
    check: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
  help: `Usage: armdb import <dir> [--format hex|base64] [--in <file>] [--check] [key options]
       armdb import <dir> --create --key-size <bytes> [--kind <class>] [--value-size <bytes>] …

Reads JSON lines {"key":"…","value":"…"} (as armdb export writes them) from stdin or --in and
puts every record into the store in <dir> (a key already present is overwritten; of two lines with
the same key the later wins). Blank lines are skipped. Synced and closed at the end.

Every line is validated completely — UTF-8, JSON, exactly the fields "key" and "value", the
encoding, the key size, the value size (exact for ConstMap/ConstTree) — before its record is
written. At the first bad line the import stops and reports the line number (exit 1): the records
of the lines before it are written and synced, nothing from that line on. Use --check first to get
all or nothing. No temporary files: the input is streamed.

Options:
  --format hex|base64       encoding of keys and values (default hex)
  -i, --in <file>           read this file instead of stdin
  --check                   validate the whole input, write nothing
  --max-value-bytes <n>     largest value accepted (default ${DEFAULTS.maxValueBytes})
  -q, --quiet               no summary on stderr
  -h, --help                show this help
Creating a store (only when <dir> holds none; on an existing store the options given must match):
  --create                  create the store if <dir> holds none
  --key-size <n>            key bytes, 1..${Limits.maxKeyBytes} (required with --create)
  --kind <class>            VarMap (default), VarTree, ConstMap, ConstTree, TypedMap, TypedTree
  --value-size <n>          value bytes of ConstMap/ConstTree (required for them)
  --shards <n>              1..256 (default ${DEFAULTS.shards})
  --shard-prefix-bits <n>   route by the first n bits of the key (default 0)
  --scrypt-log-n <n>        scrypt cost of a new passphrase store, 10..18 (default 17; lower only
                            for tests; 18 needs 256 MiB of memory)
  A new store is encrypted with --key-file or the passphrase (asked twice on a terminal), or
  unencrypted with --no-encryption.

${KEY_HELP}

Exit codes: 0 every line imported; 1 a bad line (its number is on stderr), wrong key, integrity
failure, I/O error; 2 usage.

Examples:
  armdb export ./old --key-file old.key | armdb import ./new --key-file new.key --create --key-size 16
  armdb import ./data --key-file data.key --in backup.jsonl --check && \\
    armdb import ./data --key-file data.key --in backup.jsonl`,
  async run(values, positionals) {
    const create = flag(values, 'create');
    const directory = positionals[0];
    if (directory === undefined || directory.length === 0)
      throw new UsageError('missing <dir>; usage: armdb import <dir> (see armdb import --help)');
    if (!create || fs.existsSync(directory)) existingDirectory(positionals, 'import');
    if (!create) {
      const given = CREATE_ONLY.filter((name) => values[name] !== undefined);
      if (given.length > 0) throw new UsageError(`--${given[0]} applies only with --create`);
    }
    const format = choiceOption(values, 'format', BYTE_FORMATS, 'hex');
    const maxValueBytes = integerOption(values, 'max-value-bytes', 0, Limits.maxValueBytes, DEFAULTS.maxValueBytes);
    const inputPath = stringOption(values, 'in');
    if (inputPath !== undefined && !fs.existsSync(inputPath)) throw new UsageError(`input file ${inputPath} does not exist`);
    const check = flag(values, 'check');
    const quiet = flag(values, 'quiet');

    const target = await prepareTarget(directory, values, format, maxValueBytes, check);
    const input = inputPath === undefined ? process.stdin : fs.createReadStream(inputPath);
    const engine = target.open === undefined ? undefined : await target.open();
    let records = 0;
    let lastLine = 0;
    let bad: InputError | undefined;
    try {
      for await (const line of readLines(input, maxLineBytes(target.shape))) {
        lastLine = line.number;
        const record = parseRecord(line, target.shape);
        if (record === undefined) continue;
        engine?.commitOne(engine.shardOf(record.key), record.key, record.value);
        records++;
      }
    } catch (error) {
      if (!(error instanceof InputError)) {
        await engine?.close().catch(() => undefined);
        throw error;
      }
      bad = error;
    } finally {
      if (input !== process.stdin) (input as fs.ReadStream).destroy();
    }
    // close() is the durability barrier: every record of a fully validated line is synced.
    await engine?.close();
    const verb = check ? 'valid' : 'imported and synced';
    if (bad !== undefined) {
      note(`armdb import: ${bad.message}`);
      const before = `lines 1..${bad.line - 1} (${count(records, 'record')})`;
      if (check)
        note(
          `armdb import: stopped at line ${bad.line}; ${bad.line === 1 ? 'no line before it' : `${before} are valid`}; --check: nothing was written`,
        );
      else
        note(
          `armdb import: stopped at line ${bad.line}; ${bad.line === 1 ? 'nothing was imported' : `${before} were imported and synced`}, nothing from line ${bad.line} on`,
        );
      return 1;
    }
    if (!quiet)
      note(
        `armdb import: ${count(records, 'record')} ${verb} (${count(lastLine, 'line')})${check ? '; --check: nothing was written' : ''}`,
      );
    return 0;
  },
};
