/**
 * `armdb export` and `armdb import`: round trips through JSON lines (hex and base64, file and pipe),
 * key order for trees, stores created by `import --create`, and bad input: the line number is
 * reported, the lines before it are imported and synced, nothing of the bad line or after it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConstMap, VarMap, VarTree, keys } from '../../src/index.js';
import { armdb, BUILT, hex, outputs, parseJsonLines, removeTempDirs, secretForms, tempDir, testKey, writeKeyFile } from './run.js';

const KEY = testKey(11);
const NEW_KEY = testKey(12);
const PASSPHRASE = 'export import passphrase 91c2';

const keyOf = (index: number): Uint8Array => keys.fromString(`k-${index}`, 16);

/** Values of varied lengths, empty included, with bytes that are not text. */
function valueFor(index: number): Uint8Array {
  const value = new Uint8Array(index % 37 === 0 ? 0 : (index * 7) % 300);
  for (let offset = 0; offset < value.length; offset++) value[offset] = (index + offset * 31) & 0xff;
  return value;
}

const line = (key: string, value: string): string => `${JSON.stringify({ key, value })}\n`;

async function readAll(
  directory: string,
  encryption: Parameters<typeof VarMap.open>[1]['encryption'],
  keySize = 16,
): Promise<Map<string, string>> {
  const db = await VarMap.open(directory, { keySize, encryption, shards: 4, syncIntervalMs: 0 });
  try {
    const all = new Map<string, string>();
    for (let index = 0; index < 400; index++) {
      const value = db.get(keyOf(index));
      if (value !== undefined) all.set(hex(keyOf(index)), hex(value));
    }
    expect(all.size).toBe(db.size);
    return all;
  } finally {
    await db.close();
  }
}

describe.skipIf(!BUILT)('armdb export and import', () => {
  let root: string;
  let keyFile: string;
  let newKeyFile: string;
  let source: string;
  const expected = new Map<string, string>();

  beforeAll(async () => {
    root = tempDir('export');
    keyFile = writeKeyFile(root, KEY);
    newKeyFile = writeKeyFile(root, NEW_KEY, 'new.key');
    source = path.join(root, 'source');
    const db = await VarMap.open(source, { keySize: 16, encryption: { key: KEY }, syncIntervalMs: 0, maxFileBytes: 65536 });
    for (let index = 0; index < 400; index++) db.put(keyOf(index), valueFor(index));
    for (let index = 0; index < 400; index += 5) db.delete(keyOf(index));
    for (let index = 1; index < 400; index++) if (index % 5 !== 0) expected.set(hex(keyOf(index)), hex(valueFor(index)));
    await db.close();
  });

  afterAll(() => {
    const leaks = secretForms([KEY, NEW_KEY, PASSPHRASE]).filter((secret) => outputs.some((output) => output.includes(secret)));
    removeTempDirs();
    expect(leaks).toEqual([]);
  });

  it('export writes every live record once as a JSON line, hex by default', () => {
    const result = armdb(['export', source, '--key-file', keyFile]);
    expect(result.status).toBe(0);
    const records = parseJsonLines(result.stdout);
    expect(records).toHaveLength(expected.size);
    expect(new Map(records.map((record) => [record.key, record.value]))).toEqual(expected);
    expect(
      result.stdout
        .split('\n')
        .filter(Boolean)
        .every((text) => /^\{"key":"[0-9a-f]*","value":"[0-9a-f]*"\}$/.test(text)),
    ).toBe(true);
    expect(result.stderr).toContain(`${expected.size} records exported`);
  });

  it('export --out creates a new 0600 file and refuses to overwrite one (exit 2)', () => {
    const out = path.join(root, 'out.jsonl');
    const result = armdb(['export', source, '--key-file', keyFile, '--out', out, '--format', 'base64']);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('');
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const records = parseJsonLines(fs.readFileSync(out, 'utf8'));
    expect(
      new Map(
        records.map((record) => [Buffer.from(record.key, 'base64').toString('hex'), Buffer.from(record.value, 'base64').toString('hex')]),
      ),
    ).toEqual(expected);
    const again = armdb(['export', source, '--key-file', keyFile, '--out', out]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('already exists');
  });

  it('export | import --create: the copy holds exactly the same records, under another key', async () => {
    const exported = armdb(['export', source, '--key-file', keyFile, '--quiet']);
    const copy = path.join(root, 'copy');
    const imported = armdb(['import', copy, '--key-file', newKeyFile, '--create', '--key-size', '16', '--shards', '4'], {
      input: exported.stdout,
    });
    expect(imported.status).toBe(0);
    expect(imported.stderr).toContain(`${expected.size} records imported and synced`);
    expect(await readAll(copy, { key: NEW_KEY })).toEqual(expected);
    // And the copy round-trips back to the same lines.
    const again = armdb(['export', copy, '--key-file', newKeyFile, '--quiet']);
    expect(new Map(parseJsonLines(again.stdout).map((record) => [record.key, record.value]))).toEqual(expected);
  });

  it('import --in with base64 into a new passphrase store', async () => {
    const out = path.join(root, 'b64.jsonl');
    expect(armdb(['export', source, '--key-file', keyFile, '--format', 'base64', '--out', out]).status).toBe(0);
    const copy = path.join(root, 'passphrase-copy');
    const result = armdb(['import', copy, '--create', '--key-size', '16', '--scrypt-log-n', '10', '--format', 'base64', '--in', out], {
      passphrase: PASSPHRASE,
    });
    expect(result.status).toBe(0);
    expect(await readAll(copy, { passphrase: PASSPHRASE })).toEqual(expected);
  });

  it('import into an existing store overwrites and adds; --create on it checks the options', async () => {
    const target = path.join(root, 'existing');
    const db = await VarMap.open(target, { keySize: 16, encryption: { key: KEY }, syncIntervalMs: 0 });
    db.put(keyOf(1), new Uint8Array([9]));
    db.put(keyOf(399), new Uint8Array([8]));
    await db.close();
    const input = line(hex(keyOf(1)), 'aa') + line(hex(keyOf(2)), 'bb');
    expect(armdb(['import', target, '--key-file', keyFile], { input }).status).toBe(0);
    const all = await readAll(target, { key: KEY });
    expect(all).toEqual(
      new Map([
        [hex(keyOf(1)), 'aa'],
        [hex(keyOf(2)), 'bb'],
        [hex(keyOf(399)), '08'],
      ]),
    );
    const mismatch = armdb(['import', target, '--key-file', keyFile, '--create', '--key-size', '8'], { input });
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toContain('ARMDB_FORMAT_MISMATCH');
    expect(armdb(['import', target, '--key-file', keyFile, '--create', '--key-size', '16'], { input: '' }).status).toBe(0);
  });

  it('a VarTree exports in key order', async () => {
    const tree = path.join(root, 'tree');
    const db = await VarTree.open(tree, { keySize: 8, encryption: { key: KEY }, shards: 3, syncIntervalMs: 0 });
    const order = [5, 900, 3, 70000, 1, 42, 256, 2 ** 40];
    for (const number of order) db.put(keys.u64(number), new Uint8Array([number & 0xff]));
    await db.close();
    const result = armdb(['export', tree, '--key-file', keyFile]);
    expect(result.status).toBe(0);
    const exportedKeys = parseJsonLines(result.stdout).map((record) => record.key);
    expect(exportedKeys).toEqual([...order].sort((left, right) => left - right).map((number) => hex(keys.u64(number))));
  });

  it('import --create --kind ConstMap checks the exact value size', async () => {
    const store = path.join(root, 'const');
    const good = line('0000000000000001', 'aabbccdd') + line('0000000000000002', '01020304');
    const created = armdb(
      ['import', store, '--key-file', keyFile, '--create', '--key-size', '8', '--kind', 'ConstMap', '--value-size', '4'],
      { input: good },
    );
    expect(created.status).toBe(0);
    const wrong = armdb(['import', store, '--key-file', keyFile], {
      input: line('0000000000000003', '01020304') + line('0000000000000004', '0102'),
    });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('line 2');
    expect(wrong.stderr).toContain('exactly 4 bytes');
    const db = await ConstMap.open(store, { keySize: 8, valueSize: 4, encryption: { key: KEY }, syncIntervalMs: 0 });
    expect(db.size).toBe(3);
    expect(db.has(keys.u64(4))).toBe(false);
    expect(hex(db.get(keys.u64(3))!)).toBe('01020304');
    await db.close();
    expect(armdb(['import', path.join(root, 'c2'), '--no-encryption', '--create', '--key-size', '8', '--kind', 'ConstMap']).status).toBe(2);
  });

  describe('bad input', () => {
    const valid = (index: number): string => line(hex(keyOf(index)), hex(valueFor(index + 1)));

    /** A fresh store holding nothing; returns its directory. */
    async function emptyStore(name: string): Promise<string> {
      const directory = path.join(root, name);
      await (await VarMap.open(directory, { keySize: 16, encryption: { key: KEY }, shards: 4, syncIntervalMs: 0 })).close();
      return directory;
    }

    const cases: [string, string, number, string][] = [
      ['bad JSON', `{"key":"${hex(keyOf(3))}","value":"00"`, 3, 'not valid JSON'],
      ['a key of the wrong size', line('00112233', '00').trim(), 3, '"key" is 4 bytes'],
      ['bad hex in the value', line(hex(keyOf(3)), 'zz').trim(), 3, '"value" is not valid hex'],
      ['odd-length hex in the key', line(`${hex(keyOf(3))}0`, '00').trim(), 3, '"key" is not valid hex'],
      ['a missing value', JSON.stringify({ key: hex(keyOf(3)) }), 3, '"value" is missing'],
      ['an extra field', JSON.stringify({ key: hex(keyOf(3)), value: '00', extra: 1 }), 3, 'unexpected field'],
      ['an array', '[1,2]', 3, 'expected a JSON object'],
    ];

    it.each(cases)(
      '%s: exit 1 naming the line; earlier lines imported and synced, nothing partial',
      async (name, bad, lineNumber, message) => {
        const store = await emptyStore(`bad-${name.replaceAll(' ', '-')}`);
        const input = `${valid(1)}\n${bad}\n${valid(4)}`;
        const result = armdb(['import', store, '--key-file', keyFile], { input });
        expect(result.status).toBe(1);
        expect(result.stderr).toContain(`line ${lineNumber}: ${message}`);
        expect(result.stderr).toContain(`stopped at line ${lineNumber}`);
        const all = await readAll(store, { key: KEY });
        // Line 1 is in (and was synced: a fresh open sees it), line 2 is blank, line 3 is bad, line 4 never ran.
        expect(all).toEqual(new Map([[hex(keyOf(1)), hex(valueFor(2))]]));
      },
    );

    it('the bad line is never echoed (it may hold secrets)', async () => {
      const store = await emptyStore('no-echo');
      const secret = 'SECRET-CANARY-0xdeadbeef';
      const result = armdb(['import', store, '--key-file', keyFile], { input: `{"key": "${secret}", "value": ` });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('line 1');
      expect(result.stderr + result.stdout).not.toContain(secret);
      expect(result.stderr + result.stdout).not.toContain('deadbeef');
    });

    it('--check validates everything and writes nothing', async () => {
      const store = await emptyStore('check');
      const good = valid(1) + valid(2);
      const ok = armdb(['import', store, '--key-file', keyFile, '--check'], { input: good });
      expect(ok.status).toBe(0);
      expect(ok.stderr).toContain('2 records valid');
      const bad = armdb(['import', store, '--key-file', keyFile, '--check'], { input: `${good}nope\n` });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain('line 3: not valid JSON');
      expect((await readAll(store, { key: KEY })).size).toBe(0);
    });

    it('a line longer than any valid record is refused without reading it whole', async () => {
      const store = await emptyStore('long');
      const result = armdb(['import', store, '--key-file', keyFile, '--max-value-bytes', '16'], { input: valid(1) + 'x'.repeat(20_000) });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('line 2: longer than');
      expect((await readAll(store, { key: KEY })).size).toBe(1);
    });

    it('a value above --max-value-bytes is refused', async () => {
      const store = await emptyStore('max-value');
      const result = armdb(['import', store, '--key-file', keyFile, '--max-value-bytes', '4'], {
        input: line(hex(keyOf(1)), '0011223344'),
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('line 1: "value" is 5 bytes, above the 4-byte limit');
    });
  });
});
