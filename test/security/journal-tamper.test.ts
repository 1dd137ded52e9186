/**
 * Tamper evidence for the commit journal (docs/format.md §6A.5): the MANIFEST records how many journal
 * chunks are durable, so a journal that lost, changed or rolled back a chunk holding acknowledged
 * writes is refused at open with ARMDB_INTEGRITY, exactly as a truncated or altered durable page is.
 *
 * The crash image: a store receives five `put` + `sync()` commits (one shard, so all five land in the
 * partial page of one active file and its journal), and its directory is copied while it is still
 * open — what a crash right after the fifth `sync()` leaves. Every case damages a copy of that image.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArmdbError, VarMap, keys } from '../../src/index.js';

const KEY = new Uint8Array(32).fill(7);
const COMMITS = 5;
const options = { keySize: 16, encryption: { key: KEY }, shards: 1, syncIntervalMs: 0 } as const;
const keyOf = (index: number): Uint8Array => keys.fromString(`key-${index}`, 16);
const valueFor = (index: number): Uint8Array => new TextEncoder().encode(`CANARY-${index}-`.repeat(10).slice(0, 100));
const FRAME = 8;
const TAG = 16;
const HEADER = 32;

let root: string;
/** The image after COMMITS syncs, and the journal as it was after 3 of them. */
let image: string;
let olderJournal: Uint8Array;
let otherStoreJournal: Uint8Array;

const journalOf = (dir: string): string => path.join(dir, 'shard-000', '000001.journal');

/** Writes `commits` put+sync commits into a new store at `dir`; `atCommit` sees the directory after each. */
async function buildImage(dir: string, copyTo: string, atCommit?: (commit: number) => void): Promise<void> {
  const db = await VarMap.open(dir, options);
  try {
    for (let index = 0; index < COMMITS; index++) {
      db.put(keyOf(index), valueFor(index));
      await db.sync();
      atCommit?.(index + 1);
    }
    fs.cpSync(dir, copyTo, { recursive: true });
    fs.rmSync(path.join(copyTo, 'LOCK'), { force: true });
  } finally {
    await db.close();
  }
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-journal-tamper-'));
  image = path.join(root, 'image');
  await buildImage(path.join(root, 'live'), image, (commit) => {
    if (commit === 3) olderJournal = new Uint8Array(fs.readFileSync(journalOf(path.join(root, 'live'))));
  });
  await buildImage(path.join(root, 'other-live'), path.join(root, 'other-image'));
  otherStoreJournal = new Uint8Array(fs.readFileSync(journalOf(path.join(root, 'other-image'))));
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

let copies = 0;
function copyOfImage(): string {
  const copy = path.join(root, `copy-${copies++}`);
  fs.cpSync(image, copy, { recursive: true });
  return copy;
}

/** Opening `dir` is refused with ARMDB_INTEGRITY, or (if it opens) every answer is right. */
async function expectRefused(dir: string): Promise<void> {
  let db: VarMap | undefined;
  try {
    db = await VarMap.open(dir, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ArmdbError);
    expect((error as ArmdbError).code).toBe('ARMDB_INTEGRITY');
    return;
  }
  await db.close();
  expect.fail('the damaged journal was accepted');
}

/** Chunk boundaries of a journal file: [start, end) of each frame. */
function frames(bytes: Uint8Array): [number, number][] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result: [number, number][] = [];
  for (let at = HEADER; at < bytes.length; ) {
    const end = at + FRAME + view.getUint16(at + 6, true) + TAG;
    result.push([at, end]);
    at = end;
  }
  return result;
}

describe('commit journal tamper evidence', () => {
  it('control: the image opens and returns every synced write (the journal holds them all)', async () => {
    const journal = new Uint8Array(fs.readFileSync(journalOf(image)));
    expect(frames(journal)).toHaveLength(COMMITS);
    // The data file holds no page: the five commits are only in the journal.
    expect(fs.statSync(path.join(image, 'shard-000', '000001.data')).size).toBe(0);
    const db = await VarMap.open(copyOfImage(), options);
    try {
      for (let index = 0; index < COMMITS; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index));
      expect((await db.verify()).ok).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('the journal deleted → ARMDB_INTEGRITY', async () => {
    const copy = copyOfImage();
    fs.rmSync(journalOf(copy));
    await expectRefused(copy);
  });

  it('the journal truncated: by one byte, by its last chunk, to its header, to nothing → ARMDB_INTEGRITY', async () => {
    const length = fs.statSync(journalOf(image)).size;
    const lastChunk = frames(new Uint8Array(fs.readFileSync(journalOf(image)))).at(-1)!;
    for (const size of [length - 1, lastChunk[0], HEADER, 0]) {
      const copy = copyOfImage();
      fs.truncateSync(journalOf(copy), size);
      await expectRefused(copy);
    }
  });

  it('one bit flipped at positions across every chunk (frame fields, ciphertext, tag) and in the header fields chunks bind → ARMDB_INTEGRITY', async () => {
    const journal = new Uint8Array(fs.readFileSync(journalOf(image)));
    const positions = new Set<number>();
    for (const [start, end] of frames(journal)) {
      for (let at = start; at < start + FRAME; at++) positions.add(at);
      positions.add(start + FRAME);
      positions.add(Math.floor((start + end) / 2));
      for (let at = end - TAG; at < end; at += 5) positions.add(at);
    }
    // Header fields bound into every chunk's AAD: file id, key id, first chunk index.
    for (const at of [12, 16, 20, 24]) positions.add(at);
    for (const at of positions) {
      const copy = copyOfImage();
      const damaged = journal.slice();
      damaged[at]! ^= 1 << (at % 8);
      fs.writeFileSync(journalOf(copy), damaged);
      await expectRefused(copy);
    }
  });

  it('the journal replaced by an older copy of itself (after 3 of the 5 commits) → ARMDB_INTEGRITY', async () => {
    expect(frames(olderJournal)).toHaveLength(3);
    const copy = copyOfImage();
    fs.writeFileSync(journalOf(copy), olderJournal);
    await expectRefused(copy);
  });

  it("another store's journal for the same file id and page → ARMDB_INTEGRITY", async () => {
    const copy = copyOfImage();
    fs.writeFileSync(journalOf(copy), otherStoreJournal);
    await expectRefused(copy);
  });

  it('chunks reordered (the last two swapped) → ARMDB_INTEGRITY', async () => {
    const journal = new Uint8Array(fs.readFileSync(journalOf(image)));
    const [first, second] = frames(journal).slice(-2) as [[number, number], [number, number]];
    const swapped = new Uint8Array(journal.length);
    swapped.set(journal.subarray(0, first[0]));
    swapped.set(journal.subarray(second[0], second[1]), first[0]);
    swapped.set(journal.subarray(first[0], first[1]), first[0] + (second[1] - second[0]));
    const copy = copyOfImage();
    fs.writeFileSync(journalOf(copy), swapped);
    await expectRefused(copy);
  });
});

/**
 * After a restart (§6A.4) the durable chunks are in `.journal2` and `.journal` holds only what the pages
 * or the new slot cover again. The image: put + sync commits until `.journal2` has started over and
 * holds three chunks, copied while the store is open.
 */
describe('commit journal tamper evidence after a restart (two journal files)', () => {
  const secondOf = (dir: string): string => path.join(dir, 'shard-000', '000001.journal2');
  let restarted: string;
  let written = 0;
  /** `.journal2` when it held one chunk. */
  let olderSecond: Uint8Array | undefined;

  beforeAll(async () => {
    const live = path.join(root, 'restart-live');
    restarted = path.join(root, 'restart-image');
    const db = await VarMap.open(live, options);
    try {
      for (let chunks = 0; chunks < 3; written++) {
        expect(written).toBeLessThan(1000);
        db.put(keyOf(written), valueFor(written));
        await db.sync();
        chunks = fs.existsSync(secondOf(live)) ? frames(new Uint8Array(fs.readFileSync(secondOf(live)))).length : 0;
        if (chunks === 1) olderSecond = new Uint8Array(fs.readFileSync(secondOf(live)));
      }
      fs.cpSync(live, restarted, { recursive: true });
      fs.rmSync(path.join(restarted, 'LOCK'), { force: true });
    } finally {
      await db.close();
    }
  });

  function copyOfRestarted(): string {
    const copy = path.join(root, `copy-${copies++}`);
    fs.cpSync(restarted, copy, { recursive: true });
    return copy;
  }

  async function expectEveryWrite(dir: string): Promise<void> {
    const db = await VarMap.open(dir, options);
    try {
      for (let index = 0; index < written; index++) expect(db.get(keyOf(index))).toEqual(valueFor(index));
    } finally {
      await db.close();
    }
  }

  it('control: the image opens with every synced write, and both journal files exist', async () => {
    expect(olderSecond).toBeDefined();
    expect(fs.existsSync(journalOf(restarted))).toBe(true);
    await expectEveryWrite(copyOfRestarted());
  });

  it('the old slot deleted: it holds nothing a durable state needs, so every write is still there', async () => {
    const copy = copyOfRestarted();
    fs.rmSync(journalOf(copy));
    await expectEveryWrite(copy);
  });

  it('the two files swapped by name: the same authenticated chunks, merged by index, so every write is still there', async () => {
    const copy = copyOfRestarted();
    const first = fs.readFileSync(journalOf(copy));
    fs.copyFileSync(secondOf(copy), journalOf(copy));
    fs.writeFileSync(secondOf(copy), first);
    await expectEveryWrite(copy);
  });

  it('the current slot deleted → ARMDB_INTEGRITY', async () => {
    const copy = copyOfRestarted();
    fs.rmSync(secondOf(copy));
    await expectRefused(copy);
  });

  it('the current slot replaced by an older copy of itself (one chunk) → ARMDB_INTEGRITY', async () => {
    const copy = copyOfRestarted();
    fs.writeFileSync(secondOf(copy), olderSecond!);
    await expectRefused(copy);
  });

  it('the current slot replaced by the old slot → ARMDB_INTEGRITY', async () => {
    const copy = copyOfRestarted();
    fs.copyFileSync(journalOf(copy), secondOf(copy));
    await expectRefused(copy);
  });

  it('the current slot truncated by its last chunk → ARMDB_INTEGRITY', async () => {
    const copy = copyOfRestarted();
    const last = frames(new Uint8Array(fs.readFileSync(secondOf(copy)))).at(-1)!;
    fs.truncateSync(secondOf(copy), last[0]);
    await expectRefused(copy);
  });
});
