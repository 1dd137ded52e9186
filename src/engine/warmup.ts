/**
 * warmup(): loads every page that holds a live value into the cache, file by file in page order (one
 * pread per run of pages), then every value that spans more than two pages as a whole value (the form
 * in which `get` caches it), in file and position order, all up to `cacheBytes`. Const and Typed
 * collections hold their values in memory already; there is nothing to load for them.
 */
import { PAGE_BYTES } from '../format/constants.js';
import { RECORD_HEADER_BYTES } from '../format/record.js';
import type { KeyIndex } from '../index/key-index.js';
import type { BlockCache } from '../storage/block-cache.js';
import type { EngineGuard } from './guard.js';
import type { Shards } from './shard.js';
import { PAGE_WORK, PAGES_PER_SLICE, Walk } from './walk.js';

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

export async function warmCache(parts: WarmupParts, options: { readonly signal?: AbortSignal | undefined }): Promise<void> {
  const { cache, index } = parts;
  if (cache === undefined || index.valueSize > 0 || index.keepsObjects) return;
  const walk = new Walk({ operation: 'warmup', signal: options.signal, checkStillValid: () => parts.guard.assertOpen() });
  walk.throwIfAborted();
  const plan = planWarmup(index, parts.keySize);
  const budgetPages = await warmPages(parts, cache, plan.pagesByFile, walk);
  await warmLargeValues(parts, cache, plan.largeValues, budgetPages * PAGE_BYTES, walk);
}

function planWarmup(index: KeyIndex, keySize: number): WarmupPlan {
  const pagesByFile = new Map<number, Set<number>>();
  const largeValues: number[] = [];
  index.forEachHandle((handle) => {
    const start = index.positionOf(handle) + RECORD_HEADER_BYTES + keySize;
    const length = index.valueLengthOf(handle);
    const fileId = index.fileIdOf(handle);
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

/**
 * Loads the pages, file by file in id order, in runs of up to {@link PAGES_PER_SLICE} pages (one
 * pread each); returns the budget (pages) left.
 */
async function warmPages(parts: WarmupParts, cache: BlockCache, pagesByFile: Map<number, Set<number>>, walk: Walk): Promise<number> {
  let budgetPages = Math.floor(cache.capacityBytes / PAGE_BYTES);
  for (const [fileId, pageSet] of [...pagesByFile].sort(([left], [right]) => left - right)) {
    const pages = [...pageSet].sort((left, right) => left - right);
    for (let index = 0; index < pages.length && budgetPages > 0; ) {
      // Retired by a compaction during the last turn of the event loop.
      const file = parts.shards.fileById(fileId);
      if (file === undefined) break;
      let runEnd = index + 1;
      while (
        runEnd < pages.length &&
        pages[runEnd] === pages[runEnd - 1]! + 1 &&
        runEnd - index < PAGES_PER_SLICE &&
        runEnd - index < budgetPages
      )
        runEnd++;
      budgetPages -= file.warmPages(pages[index]!, runEnd - index, cache);
      await walk.step((runEnd - index) * PAGE_WORK);
      index = runEnd;
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
  walk: Walk,
): Promise<void> {
  const order = Array.from({ length: largeValues.length / 3 }, (_, index) => index * 3);
  order.sort((left, right) => largeValues[left]! - largeValues[right]! || largeValues[left + 1]! - largeValues[right + 1]!);
  for (const at of order) {
    const length = largeValues[at + 2]!;
    if (length > budgetBytes) continue;
    const file = parts.shards.fileById(largeValues[at]!);
    if (file === undefined) continue;
    const cached = file.warmLargeValue(largeValues[at + 1]!, length, cache);
    budgetBytes -= cached;
    await walk.step((cached / PAGE_BYTES) * PAGE_WORK);
  }
}
