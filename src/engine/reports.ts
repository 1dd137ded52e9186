/**
 * What the engine reports about a store (SPEC §8): the stats snapshot and the result and options of
 * verify(). Plain data, no behaviour; the public surface re-exports them (src/index.ts).
 */

/**
 * Counters and gauges of a collection (SPEC §8), a snapshot returned by
 * {@link Collection.stats | stats()}. No field holds key material, keys or values, so the object is
 * safe to log or export as metrics.
 *
 * Counters (`gets` … `compactions`) count since this open: they live in memory only and start at 0
 * every time the store is opened. Gauges (`keys`, `cacheBytes`, `deadBytes`, `totalBytes`, `files`,
 * …) describe the store now. Byte counts are bytes.
 *
 * @example
 * ```ts
 * const s = db.stats();
 * const hitRate = s.cacheHits / Math.max(1, s.cacheHits + s.cacheMisses);
 * const garbage = s.deadBytes / Math.max(1, s.totalBytes);   // what compaction could reclaim
 * console.log({ keys: s.keys, hitRate, garbage, epoch: s.epoch });
 * ```
 */
export interface Stats {
  /**
   * Milliseconds since the active data key was made (undefined without encryption). A key of a
   * version-1 KEYRING counts from the open that upgraded it. `dataKeyMaxAgeMs` rotates past it.
   */
  dataKeyAgeMs: number | undefined;
  /** Live keys. */
  keys: number;
  /**
   * Key lookups that read the index for a value since open: each `get`, each key of `getMany`, and
   * the reads behind `cas`, `update`, `fetchUpdate`, `atomic` and a hook's old value. `has` and
   * iteration are not counted.
   */
  gets: number;
  /**
   * Value records written since open: `put`, `insert`, `cas`, `update`, and the puts of `atomic` and
   * `migrate`. Records that compaction copies are not counted.
   */
  puts: number;
  /** Tombstones written since open. Deleting a key that is absent writes nothing and is not counted. */
  deletes: number;
  /** Reads served by the decrypted-page cache (or the large-value cache) since open. */
  cacheHits: number;
  /** Reads that missed the caches and read, authenticated and decrypted pages from disk, since open. */
  cacheMisses: number;
  /** Bytes of decrypted pages in the cache. */
  cacheBytes: number;
  /** 4096-byte pages encrypted and written to data files since open (compaction output included). */
  pagesSealed: number;
  /**
   * Bytes written to data and tag files since open: sealed pages, their tags, file headers and
   * footers (compaction output included). Manifest, keyring and hint files are not counted.
   */
  bytesWritten: number;
  /**
   * Durability barriers since open that had something to make durable (explicit `sync()`, the
   * background barrier every `syncIntervalMs`, `close`, compaction). A barrier with nothing to do
   * is not counted.
   */
  syncs: number;
  /**
   * Active data files sealed and replaced by a new active file since open: when one reached
   * `maxFileBytes`, and the active files holding data that an explicit `compact()` seals first.
   */
  rotations: number;
  /** `compact()` runs completed since open, background runs included, whether or not they found work. */
  compactions: number;
  /** Bytes in data files no live key points at (overwritten, deleted, padding). */
  deadBytes: number;
  /**
   * Bytes of record streams in all data files (live + dead), the figure `deadBytes` is a part of.
   * Not the disk usage: tag, hint, manifest and keyring files are not included.
   */
  totalBytes: number;
  /** Data files of all shards, sealed and active. */
  files: number;
  /** The manifest's epoch; grows with every durable change (rollback anchor, SPEC §5.5). */
  epoch: number;
  /** Bytes of a torn tail discarded by recovery at the last open. */
  recoveredTornBytes: number;
  /** Data files whose index entries came from their hint file at the last open. */
  filesFromHints: number;
  /** Hint files the manifest vouched for that could not be used at the last open (the data file was scanned). */
  damagedHints: number;
  /** Data files per data-key id. */
  filesPerKeyId: Record<number, number>;
  /**
   * Data files in the store's `quarantine/` directory as of the last open: files the MANIFEST did not
   * list that recovery could not prove redundant (every record superseded by the files kept), so it
   * set them aside instead of deleting them. armdb never deletes them; 0 on a healthy store. See
   * docs/durability.md §8.1 and {@link VerifyReport.quarantinedFiles}.
   */
  quarantinedFiles: number;
  /** Bytes of memory the index holds. */
  indexBytes: number;
}

/**
 * Result of {@link Collection.verify | verify()}: how much was authenticated and every page that
 * failed. Damage is reported here, not thrown; check `ok`.
 *
 * @example
 * ```ts
 * const report = await db.verify();
 * if (!report.ok) {
 *   for (const f of report.failures) console.error(`shard ${f.shard} file ${f.fileId} page ${f.pageIndex}: ${f.message}`);
 * }
 * ```
 */
export interface VerifyReport {
  /**
   * Data files checked: every file of every shard that holds at least one page, the active ones
   * included. An active file the open has just started holds none and is not counted, so the figure
   * matches the files `armdb info` lists.
   */
  readonly files: number;
  /** Pages authenticated, failed ones included. */
  readonly pages: number;
  /** `pages` × 4096: bytes of ciphertext checked. */
  readonly bytes: number;
  /** One entry per page that failed authentication or framing checks; empty when `ok`. */
  readonly failures: readonly {
    /** Shard of the damaged file. */
    readonly shard: number;
    /**
     * Id of the damaged data file, unique across the store: the file is `shard-SSS/NNNNNN.data`,
     * the id zero-padded to at least 6 digits (docs/format.md).
     */
    readonly fileId: number;
    /** Index of the damaged 4096-byte page in that file, from 0. */
    readonly pageIndex: number;
    /** What failed, from the `ArmdbError` raised for the page (no key material, keys or values). */
    readonly message: string;
  }[];
  /**
   * Data files in the store's `quarantine/` directory (paths relative to the store), as of the last
   * open: unlisted files recovery set aside rather than delete, because it could not prove that the
   * files kept supersede every record in them. Their records are not served; inspect them, then
   * remove them yourself. Empty on a healthy store.
   */
  readonly quarantinedFiles: readonly string[];
  /** True when `failures` and `quarantinedFiles` are both empty. */
  readonly ok: boolean;
}

/** Options of {@link Collection.verify | verify()}. */
export interface VerifyOptions {
  /** Cancels the walk between chunks of pages: `verify` then rejects with `ARMDB_ABORTED`. */
  readonly signal?: AbortSignal;
  /**
   * Called after every chunk of (up to 64) pages with the pages done so far and the total; runs on
   * the event loop between chunks, so keep it cheap.
   */
  readonly onProgress?: (progress: { pagesDone: number; pagesTotal: number }) => void;
}

/**
 * What {@link Collection.compact | compact()} reports, summed over all shards. Byte counts are bytes
 * of record streams (the figures of {@link Stats.totalBytes} and {@link Stats.deadBytes}), not of
 * tag or hint files.
 *
 * @example
 * ```ts
 * const report = await db.compact();
 * console.log(`${report.filesIn} → ${report.filesOut} files, ${report.bytesReclaimed} bytes freed in ${report.durationMs.toFixed(0)} ms`);
 * ```
 */
export interface CompactionReport {
  /** Data files rewritten and deleted. */
  readonly filesIn: number;
  /** Data files written. */
  readonly filesOut: number;
  /** Bytes of the files rewritten (live and dead records, padding). */
  readonly bytesIn: number;
  /** Bytes of the files written in their place. */
  readonly bytesOut: number;
  /** `bytesIn - bytesOut`, never negative: what the run gave back. */
  readonly bytesReclaimed: number;
  /** Live records copied. */
  readonly recordsMoved: number;
  /**
   * Tombstones copied into the new files because a file of the shard outside this run still holds
   * older records (one of them might be a value of the deleted key, which dropping the tombstone
   * would bring back).
   */
  readonly tombstonesKept: number;
  /** Tombstones no longer needed, left out of the new files. */
  readonly tombstonesDropped: number;
  /** Data keys removed from the KEYRING because no file uses them any more (crypto-shredding). */
  readonly shreddedKeyIds: readonly number[];
  /** Wall-clock duration of the run in milliseconds, waiting for the final barrier included. */
  readonly durationMs: number;
}

/** Options of `compact()`. */
export interface CompactOptions {
  /** Stops between slices with ARMDB_ABORTED; files written so far are discarded. */
  readonly signal?: AbortSignal;
  /** Also rewrite every file that is not under the active data key (after `rotateDataKey`). */
  readonly reencrypt?: boolean;
}

/** @internal The counters of {@link Stats}, one object that the engine's parts add to. */
export interface Counters {
  gets: number;
  puts: number;
  deletes: number;
  pagesSealed: number;
  bytesWritten: number;
  syncs: number;
  rotations: number;
  compactions: number;
}

/** @internal Counters at zero, as every open starts them. */
export function newCounters(): Counters {
  return { gets: 0, puts: 0, deletes: 0, pagesSealed: 0, bytesWritten: 0, syncs: 0, rotations: 0, compactions: 0 };
}
