/** verify(): every sealed page of every file authenticated, each failure reported with file and page. */
import { ArmdbError } from '../errors.js';
import { PAGE_BYTES } from '../format/constants.js';
import type { DataFile } from '../storage/data-file.js';
import type { EngineGuard } from './guard.js';
import type { VerifyOptions, VerifyReport } from './reports.js';
import type { Shards } from './shard.js';
import { PAGE_WORK, PAGES_PER_SLICE, Walk } from './walk.js';

export interface VerifyParts {
  readonly guard: EngineGuard;
  readonly shards: Shards;
  /** The highest sequence number written when verify began. */
  readonly sequenceAtStart: number;
  /** Data files in `quarantine/` as of open (relative paths). */
  readonly quarantinedFiles: readonly string[];
}

type Failure = VerifyReport['failures'][number];

/**
 * Authenticates every sealed page of every file, reporting each failure with file and page.
 *
 * Runs in slices between which compaction may retire files and create new ones: a file retired
 * part-way is left (its handle is closed; its live records are in the new files), and a file that
 * appears meanwhile is verified in its turn if it holds records written before verify began (a
 * compaction output). Files holding only later writes are left to the next verify, so a store that
 * keeps writing cannot keep verify running.
 */
export async function verifyFiles(parts: VerifyParts, options: VerifyOptions): Promise<VerifyReport> {
  const { guard, shards } = parts;
  const walk = new Walk({ operation: 'verify', signal: options.signal, checkStillValid: () => guard.assertOpen() });
  walk.throwIfAborted();
  const failures: Failure[] = [];
  const present = new Set(shards.files());
  const inScope = (file: DataFile): boolean => present.has(file) || file.lowestSequence <= parts.sequenceAtStart;
  /** Pages of the live in-scope files not verified yet, `file` from page `from` on. */
  const pagesLeft = (file: DataFile, from: number): number => {
    let left = file.pageCount - from;
    let after = false;
    for (const other of shards.files()) {
      if (after && inScope(other)) left += other.pageCount;
      if (other === file) after = true;
    }
    return left;
  };
  let files = 0;
  let pagesDone = 0;
  // A Map's iterator visits entries added during the iteration and skips deleted ones.
  for (const file of shards.files()) {
    if (!inScope(file)) continue;
    if (file.pageCount > 0) files++;
    for (let first = 0; first < file.pageCount; first += PAGES_PER_SLICE) {
      // Retired by a compaction during the last turn of the event loop.
      if (!shards.isLive(file)) break;
      const count = Math.min(PAGES_PER_SLICE, file.pageCount - first);
      verifyPages(file, first, count, failures);
      pagesDone += count;
      options.onProgress?.({ pagesDone, pagesTotal: pagesDone + pagesLeft(file, first + count) });
      await walk.step(count * PAGE_WORK);
    }
  }
  const quarantinedFiles = [...parts.quarantinedFiles];
  return {
    files,
    pages: pagesDone,
    bytes: pagesDone * PAGE_BYTES,
    failures,
    quarantinedFiles,
    ok: failures.length === 0 && quarantinedFiles.length === 0,
  };
}

/** Authenticates `count` pages of `file` from `first`, one at a time so that each failure is reported. */
function verifyPages(file: DataFile, first: number, count: number, failures: Failure[]): void {
  for (let pageIndex = first; pageIndex < first + count; pageIndex++) {
    try {
      file.readVerifiedPages(pageIndex, 1);
    } catch (error) {
      if (!(error instanceof ArmdbError)) throw error;
      failures.push({ shard: file.shard, fileId: file.fileId, pageIndex, message: error.message });
    }
  }
}
