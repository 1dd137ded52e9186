/**
 * Nothing in clear (SPEC §5.4): after a realistic life of an encrypted store (writes, sync, file
 * rotation, deletes, overwrites, close, reopen, more writes, close) no byte of any file in its
 * directory reveals a canary key or value: not whole, not an 8-byte piece, not in hex or base64.
 * Files are 0600 and directories 0700, also under umask 0.
 *
 * Controls: the same scan finds every canary in a store opened with `encryption: 'none'`, and finds
 * hex and base64 forms planted in a file, so a clean result means something.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VarMap, keys, type OpenOptions } from '../../src/index.js';

const KEY_SIZE = 32;
const CANARY_COUNT = 240;
/** Value sizes cycled over the canaries: several, some larger than a page (4096 bytes). */
const VALUE_SIZES = [32, 100, 777, 4000, 4097, 5000, 9000, 20000] as const;

interface Canary {
  readonly name: string;
  readonly text: string;
  /** 8 bytes from the part of `text` that only this canary has. */
  readonly piece: string;
}

/** A per-run random token makes every canary unique to this run and each piece unique to its canary. */
const token = (): string => randomBytes(4).toString('hex');

function canaryKey(index: number): Canary {
  const text = `CANARY-KEY-${String(index).padStart(6, '0')}-${token()}`; // 26 bytes
  return { name: `key ${index}`, text, piece: text.slice(14, 22) };
}

function canaryValue(index: number, generation: number): Canary {
  const unit = `CANARY-VALUE${generation}-${String(index).padStart(6, '0')}-${token()}-`;
  const size = VALUE_SIZES[index % VALUE_SIZES.length]!;
  const text = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  return { name: `value ${index} (generation ${generation}, ${size} bytes)`, text, piece: unit.slice(16, 24) };
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Everything that must not appear on disk for one canary. */
function needlesOf(canary: Canary): { form: string; needle: Buffer }[] {
  const whole = Buffer.from(canary.text, 'latin1');
  const piece = Buffer.from(canary.piece, 'latin1');
  return [
    { form: 'plain', needle: whole },
    { form: '8-byte piece', needle: piece },
    { form: 'hex', needle: Buffer.from(whole.toString('hex')) },
    { form: 'HEX', needle: Buffer.from(whole.toString('hex').toUpperCase()) },
    { form: 'hex piece', needle: Buffer.from(piece.toString('hex')) },
    { form: 'HEX piece', needle: Buffer.from(piece.toString('hex').toUpperCase()) },
    { form: 'base64', needle: Buffer.from(whole.toString('base64')) },
    { form: 'base64 piece', needle: Buffer.from(piece.toString('base64').replace(/=+$/, '')) },
  ];
}

function walk(dir: string): { files: string[]; directories: string[] } {
  const files: string[] = [];
  const directories: string[] = [dir];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const inner = walk(full);
      files.push(...inner.files);
      directories.push(...inner.directories);
    } else {
      files.push(full);
    }
  }
  return { files, directories };
}

interface Finding {
  readonly canary: string;
  readonly form: string;
  readonly file: string;
}

/** Every (canary, form) found in any byte of any file under `dir`. */
function scan(dir: string, canaries: readonly Canary[]): Finding[] {
  const contents = walk(dir).files.map((file) => ({ file: path.relative(dir, file), bytes: fs.readFileSync(file) }));
  expect(contents.length).toBeGreaterThan(0);
  const findings: Finding[] = [];
  for (const canary of canaries) {
    for (const { form, needle } of needlesOf(canary)) {
      for (const { file, bytes: content } of contents) {
        if (content.indexOf(needle) !== -1) findings.push({ canary: canary.name, form, file });
      }
    }
  }
  return findings;
}

interface ModeEntry {
  readonly path: string;
  readonly directory: boolean;
  readonly mode: number;
}

function modes(dir: string): ModeEntry[] {
  const { files, directories } = walk(dir);
  const entry = (full: string, directory: boolean): ModeEntry => ({
    path: path.relative(dir, full) || '.',
    directory,
    mode: fs.statSync(full).mode & 0o777,
  });
  return [...directories.map((full) => entry(full, true)), ...files.map((full) => entry(full, false))];
}

/** Entries whose mode is not 0700 (directories) or 0600 (files), shown in octal. */
function wrongModes(entries: readonly ModeEntry[]): string[] {
  return entries
    .filter(({ directory, mode }) => mode !== (directory ? 0o700 : 0o600))
    .map(({ path: entry, mode }) => `${entry} ${mode.toString(8)}`);
}

// ---- the store's life ------------------------------------------------------------------------

const keyCanaries = Array.from({ length: CANARY_COUNT }, (_, index) => canaryKey(index));
const firstValues = Array.from({ length: CANARY_COUNT }, (_, index) => canaryValue(index, 1));
const secondValues = new Map(Array.from({ length: 20 }, (_, offset) => [10 + offset, canaryValue(10 + offset, 2)] as const));
const DELETED = new Set(Array.from({ length: 10 }, (_, index) => index));

const keyBytes = (index: number): Uint8Array => keys.fromString(keyCanaries[index]!.text, KEY_SIZE);

function expectedFinal(): Map<number, Canary | undefined> {
  const final = new Map<number, Canary | undefined>();
  for (let index = 0; index < CANARY_COUNT; index++)
    final.set(index, DELETED.has(index) ? undefined : (secondValues.get(index) ?? firstValues[index]));
  return final;
}

function expectValues(db: VarMap, upTo: number, final: Map<number, Canary | undefined>): void {
  const wrong: number[] = [];
  for (let index = 0; index < upTo; index++) {
    const want = final.get(index);
    const got = db.get(keyBytes(index));
    if (want === undefined ? got !== undefined : got === undefined || Buffer.from(got).toString('latin1') !== want.text) wrong.push(index);
  }
  expect(wrong).toEqual([]);
}

/**
 * Writes every canary through two sessions: puts, sync, rotation (64 KiB files), deletes, an atomic
 * group, close, reopen, overwrites, more puts, close. `whileOpen` runs after a sync with the store open.
 */
async function liveAndClose(dir: string, options: OpenOptions, whileOpen?: (dir: string) => void): Promise<void> {
  const half = CANARY_COUNT / 2;
  const db = await VarMap.open(dir, options);
  try {
    for (let index = 0; index < half - 20; index++) db.put(keyBytes(index), bytes(firstValues[index]!.text));
    await db.sync();
    // The last 20 of the first half through atomic(), one key per group.
    for (let index = half - 20; index < half; index++) {
      const key = keyBytes(index);
      db.atomic(key, (tx) => tx.put(key, bytes(firstValues[index]!.text)));
    }
    for (const index of DELETED) expect(db.delete(keyBytes(index))).toBe(true);
    await db.sync();
    expect(db.stats().rotations).toBeGreaterThan(0);
    whileOpen?.(dir);
  } finally {
    await db.close();
  }
  const again = await VarMap.open(dir, options);
  try {
    const final = expectedFinal();
    const partial = new Map(final);
    for (const [index] of secondValues) partial.set(index, firstValues[index]);
    expectValues(again, half, partial);
    for (let index = half; index < CANARY_COUNT; index++) again.put(keyBytes(index), bytes(firstValues[index]!.text));
    for (const [index, value] of secondValues) again.put(keyBytes(index), bytes(value.text));
    await again.sync();
    expectValues(again, CANARY_COUNT, final);
  } finally {
    await again.close();
  }
  const last = await VarMap.open(dir, options);
  try {
    expectValues(last, CANARY_COUNT, expectedFinal());
  } finally {
    await last.close();
  }
}

const allCanaries: Canary[] = [...keyCanaries, ...firstValues, ...secondValues.values()];

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-canary-'));
});
afterAll(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

// autoCompact off: every superseded value stays on disk, so the scans look at all of them (the control
// below must find them all in clear). Compaction output is scanned by its own test.
const base = { keySize: KEY_SIZE, shards: 2, syncIntervalMs: 0, maxFileBytes: 65536, autoCompact: false } as const;

describe('an encrypted store holds no canary in any form', () => {
  const key = new Uint8Array(randomBytes(32));
  let dir: string;
  let scannedWhileOpen: Finding[] | undefined;
  let modesWhileOpen: ModeEntry[] = [];

  beforeAll(async () => {
    dir = path.join(root, 'encrypted', 'store'); // created by the product, parents included
    await liveAndClose(dir, { ...base, encryption: { key } }, (open) => {
      scannedWhileOpen = scan(open, allCanaries);
      modesWhileOpen = modes(open);
    });
  });

  it('compaction output and hint files hold no canary either', async () => {
    const compacted = path.join(root, 'encrypted', 'compacted');
    fs.cpSync(dir, compacted, { recursive: true });
    const db = await VarMap.open(compacted, { ...base, encryption: { key } });
    const report = await db.compact();
    await db.close();
    expect(report.filesOut).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(compacted, 'shard-000')).some((name) => name.endsWith('.hint'))).toBe(true);
    expect(scan(compacted, allCanaries)).toEqual([]);
  });

  it('the store went through rotation: several data files per shard', () => {
    for (const shard of ['shard-000', 'shard-001']) {
      expect(fs.readdirSync(path.join(dir, shard)).filter((name) => name.endsWith('.data')).length).toBeGreaterThanOrEqual(3);
    }
  });

  it('no canary key or value (plain, 8-byte piece, hex, base64) in any byte of any file after the final close', () => {
    expect(scan(dir, allCanaries)).toEqual([]);
  });

  it('none either while the store was open after a sync (LOCK and active files included)', () => {
    expect(scannedWhileOpen).toEqual([]);
    expect(modesWhileOpen.some((entry) => entry.path === 'LOCK')).toBe(true);
  });

  it('every file is 0600 and every directory 0700, also while open', () => {
    expect(modes(dir).length).toBeGreaterThan(4);
    expect(wrongModes(modes(dir))).toEqual([]);
    expect(modesWhileOpen.length).toBeGreaterThan(4);
    expect(wrongModes(modesWhileOpen)).toEqual([]);
    // The product created the store directory and its parent: both 0700.
    expect(fs.statSync(path.dirname(dir)).mode & 0o777).toBe(0o700);
  });
});

describe('file modes under umask 0', () => {
  it('files are 0600 and directories 0700 whatever the umask', async () => {
    const key = new Uint8Array(randomBytes(32));
    const dir = path.join(root, 'umask0', 'store');
    const previous = process.umask(0);
    let whileOpen: ModeEntry[] = [];
    try {
      await liveAndClose(dir, { ...base, encryption: { key } }, (open) => {
        whileOpen = modes(open);
      });
    } finally {
      process.umask(previous);
    }
    expect(process.umask()).toBe(previous);
    expect(wrongModes(modes(dir))).toEqual([]);
    expect(whileOpen.some((entry) => entry.path === 'LOCK')).toBe(true);
    expect(wrongModes(whileOpen)).toEqual([]);
    expect(fs.statSync(path.dirname(dir)).mode & 0o777).toBe(0o700);
  });
});

describe('controls: the scan does find canaries', () => {
  it("finds every canary key and value (plain and 8-byte piece) in a store opened with encryption: 'none'", async () => {
    const dir = path.join(root, 'plain');
    await liveAndClose(dir, { ...base, encryption: 'none' });
    const findings = scan(dir, allCanaries);
    const found = new Set(findings.map(({ canary, form }) => `${canary}|${form}`));
    const missing: string[] = [];
    for (const canary of allCanaries) {
      for (const form of ['plain', '8-byte piece']) if (!found.has(`${canary.name}|${form}`)) missing.push(`${canary.name}|${form}`);
    }
    expect(missing).toEqual([]);
    // The large values are found whole although they span several pages.
    expect(findings.some(({ canary, form }) => canary.includes('20000 bytes') && form === 'plain')).toBe(true);
  });

  it('finds hex, upper-case hex and base64 forms planted in a file (nested directory)', () => {
    const dir = path.join(root, 'planted');
    fs.mkdirSync(path.join(dir, 'nested'), { recursive: true });
    const [keyCanary, valueCanary, bigCanary] = [keyCanaries[3]!, firstValues[5]!, firstValues[7]!];
    const planted = Buffer.concat([
      randomBytes(100),
      Buffer.from(Buffer.from(keyCanary.text).toString('hex')),
      randomBytes(7),
      Buffer.from(Buffer.from(valueCanary.text).toString('base64')),
      randomBytes(3),
      Buffer.from(Buffer.from(bigCanary.piece).toString('hex').toUpperCase()),
    ]);
    fs.writeFileSync(path.join(dir, 'nested', 'blob'), planted);
    const forms = new Set(scan(dir, allCanaries).map(({ canary, form }) => `${canary}|${form}`));
    expect(forms.has(`${keyCanary.name}|hex`)).toBe(true);
    expect(forms.has(`${keyCanary.name}|hex piece`)).toBe(true);
    expect(forms.has(`${valueCanary.name}|base64`)).toBe(true);
    expect(forms.has(`${bigCanary.name}|HEX piece`)).toBe(true);
    expect(forms.has(`${keyCanary.name}|plain`)).toBe(false);
  });
});
