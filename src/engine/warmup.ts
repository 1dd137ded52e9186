/**
 * warmup(): loads every page that holds a live value into the cache, file by file in page order (one
 * pread per run of pages), then every value that spans more than two pages as a whole value (the form
 * in which `get` caches it), in file and position order, all up to `cacheBytes`. Const and Typed
 * collections hold their values in memory already; there is nothing to load for them.
 */
import { armdbError } from '../errors.js';
import { PAGE_BYTES } from '../format/constants.js';
import { RECORD_HEADER_BYTES } from '../format/record.js';
import type { KeyIndex } from '../index/key-index.js';
import type { BlockCache } from '../storage/block-cache.js';
import type { EngineGuard } from './guard.js';
import type { Shards } from './shard.js';
import { yieldToEventLoop } from './yield.js';

/** Pages read in one pread, at most. */
const RUN_PAGES = 64;

export interface WarmupParts {
  readonly guard: EngineGuard;
  readonly shards: Shards;
  readonly index: KeyIndex;
  readonly keySize: number;
  readonly cache: BlockCache | undefined;
}

interface WarmupPlan {
  /** Pages holding live values of at most two pages, per file id. */
  readonly pagesByFile: Map<number, Set<number>>;
  /** Large values as flat triples: file id, value position, length. */
  readonly largeValues: number[];
}

export async function warmCache(parts: WarmupParts, options: { readonly signal?: AbortSignal }): Promise<void> {
  const { cache, index } = parts;
  const entries = index.entries;
  if (cache === undefined || entries.valueSize > 0 || entries.objects !== undefined) return;
  const plan = planWarmup(index, parts.keySize);
  const budgetPages = await warmPages(parts, cache, plan.pagesByFile, options);
  await warmLargeValues(parts, cache, plan.largeValues, budgetPages * PAGE_BYTES, options);
}

function planWarmup(index: KeyIndex, keySize: number): WarmupPlan {
  const entries = index.entries;
  const pagesByFile = new Map<number, Set<number>>();
  const largeValues: number[] = [];
  index.forEachHandle((handle) => {
    const start = entries.positions[handle]! + RECORD_HEADER_BYTES + keySize;
    const length = entries.valueLengths[handle]!;
    const fileId = entries.fileIds[handle]!;
    const firstPage = Math.floor(start / PAGE_BYTES);
    const lastPage = Math.floor((start + Math.max(length, 1) - 1) / PAGE_BYTES);
    if (lastPage - firstPage + 1 > 2) {
      largeValues.push(fileId, start, length);
      return;
    }
    let pages = pagesByFile.get(fileId);
    if (pages === undefined) {
      pages = new Set();
      pagesByFile.set(fileId, pages);
    }
    for (let page = firstPage; page <= lastPage; page++) pages.add(page);
  });
  return { pagesByFile, largeValues };
}

function checkNotStopped(parts: WarmupParts, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw armdbError('ARMDB_ABORTED', 'warmup was aborted', signal.reason);
  parts.guard.assertOpen();
}

/** Loads the pages, file by file in id order, runs of up to 64 pages; returns the budget (pages) left. */
async function warmPages(
  parts: WarmupParts,
  cache: BlockCache,
  pagesByFile: Map<number, Set<number>>,
  options: { readonly signal?: AbortSignal },
): Promise<number> {
  let budgetPages = Math.floor(cache.capacityBytes / PAGE_BYTES);
  for (const [fileId, pageSet] of [...pagesByFile].sort(([left], [right]) => left - right)) {
    const pages = [...pageSet].sort((left, right) => left - right);
    for (let index = 0; index < pages.length && budgetPages > 0; ) {
      checkNotStopped(parts, options.signal);
      const file = parts.shards.fileById(fileId);
      if (file === undefined) break;
      let runEnd = index + 1;
      while (
        runEnd < pages.length &&
        pages[runEnd] === pages[runEnd - 1]! + 1 &&
        runEnd - index < RUN_PAGES &&
        runEnd - index < budgetPages
      )
        runEnd++;
      budgetPages -= file.warmPages(pages[index]!, runEnd - index, cache);
      index = runEnd;
      await yieldToEventLoop();
    }
  }
  return budgetPages;
}

/** Loads whole large values in file and position order while they fit in `budgetBytes`. */
async function warmLargeValues(
  parts: WarmupParts,
  cache: BlockCache,
  largeValues: number[],
  budgetBytes: number,
  options: { readonly signal?: AbortSignal },
): Promise<void> {
  const order = Array.from({ length: largeValues.length / 3 }, (_, index) => index * 3);
  order.sort((left, right) => largeValues[left]! - largeValues[right]! || largeValues[left + 1]! - largeValues[right + 1]!);
  let sinceYield = 0;
  for (const at of order) {
    const length = largeValues[at + 2]!;
    if (length > budgetBytes) continue;
    checkNotStopped(parts, options.signal);
    const file = parts.shards.fileById(largeValues[at]!);
    if (file === undefined) continue;
    const cached = file.warmLargeValue(largeValues[at + 1]!, length, cache);
    budgetBytes -= cached;
    sinceYield += cached;
    if (sinceYield >= RUN_PAGES * PAGE_BYTES) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
}
