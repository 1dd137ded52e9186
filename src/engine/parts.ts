/**
 * The engine's parts, made and connected in one place: each part gets the parts it works with, and the
 * two links that point back (a rotation queues a hint; a barrier starts background compaction and hint
 * retries) are closed here.
 */
import { SealRing } from '../crypto/seal-ring.js';
import type { ResolvedOptions } from '../config.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { CollectionKindId } from '../format/manifest.js';
import type { KeyIndex } from '../index/key-index.js';
import { OrderedIndex } from '../index/ordered-index.js';
import type { FileSystem } from '../io/file-system.js';
import type { BlockCache } from '../storage/block-cache.js';
import type { DataFile } from '../storage/data-file.js';
import { DurabilityBarrier, type ManifestTemplate } from './barrier.js';
import { CompactionPolicy } from './compaction-policy.js';
import { FileFactory } from './file-factory.js';
import { FileRemover } from './file-removal.js';
import type { EngineGuard } from './guard.js';
import { HintWriter } from './hints.js';
import { KeyLifecycle, ManifestSigner } from './key-lifecycle.js';
import type { Counters } from './reports.js';
import type { RootFiles } from './root-files.js';
import { Shards } from './shard.js';

/** What the parts are made from: the store as opened, and the engine's own pieces they share. */
export interface PartsInit {
  readonly directory: string;
  readonly options: ResolvedOptions;
  readonly collectionKind: CollectionKindId;
  readonly fileSystem: FileSystem;
  readonly provider: CryptoProvider;
  readonly rootFiles: RootFiles;
  readonly index: KeyIndex;
  readonly cache: BlockCache | undefined;
  readonly guard: EngineGuard;
  readonly counters: Counters;
  /** Aborted by close(). */
  readonly closeSignal: AbortSignal;
  /** The clock of key ages and audit events. */
  readonly now: () => number;
}

export interface EngineParts {
  readonly factory: FileFactory;
  readonly remover: FileRemover;
  readonly shards: Shards;
  readonly barrier: DurabilityBarrier;
  readonly hints: HintWriter;
  readonly keys: KeyLifecycle;
  readonly compaction: CompactionPolicy;
  /** Signs every MANIFEST; derives the replication MAC key. */
  readonly signer: ManifestSigner;
}

export function makeParts(init: PartsInit): EngineParts {
  const { directory, options, fileSystem, provider, rootFiles, cache, guard, counters } = init;
  const { manifest, keys } = rootFiles;
  // What most parts share: where the store is, how to reach it, and the engine's state checks.
  const shared = { directory, fileSystem, guard };
  const remover = new FileRemover(fileSystem, directory);
  const factory = makeFactory(init);
  let hints: HintWriter | undefined;
  let compaction: CompactionPolicy | undefined;
  const onSealed = (file: DataFile): void => hints!.schedule(file);
  // The worker seals AES-GCM pages with node:crypto: a store without encryption, or on `noble`, has no use for it.
  const sealRing =
    options.sealThreads > 0 && options.cipher === 'node' && options.credential !== undefined
      ? new SealRing({ onFailure: (error) => guard.poison(error) })
      : undefined;
  const shards = new Shards({ ...shared, factory, counters, keepsUnsyncedPages: cache !== undefined, onSealed, sealRing });
  const signer = new ManifestSigner(provider, keys, rootFiles.manifestMacKey);
  let keyLifecycle: KeyLifecycle | undefined;
  const afterBarrier = (): void => {
    compaction!.maybeCompactInBackground();
    hints!.retry();
    // dataKeyMaxAgeMs: the age is checked after every barrier (key-lifecycle.ts).
    void keyLifecycle!.checkDataKeyAge();
  };
  const template = manifestTemplate(init);
  const barrier = new DurabilityBarrier({
    ...shared,
    shards,
    factory,
    signer,
    cache,
    counters,
    template,
    epoch: manifest.epoch,
    manifestLog: rootFiles.manifestLog,
    listedFiles: manifest.files,
    afterBarrier,
  });
  // Const collections need their values in memory: hints do not carry them.
  const enabled = options.hints && options.valueSize === 0;
  hints = new HintWriter({ ...shared, provider, keys, keySize: options.keySize, enabled, shards, barrier });
  const { credential, providerTimeoutMs, dataKeyMaxAgeMs } = options;
  const { now } = init;
  keyLifecycle = new KeyLifecycle({
    ...shared,
    provider,
    keys,
    credential,
    signer,
    barrier,
    shards,
    remover,
    providerTimeoutMs,
    dataKeyMaxAgeMs,
    now,
  });
  compaction = new CompactionPolicy({ ...compactionOptions(init), factory, shards, barrier, hints, keys: keyLifecycle, remover });
  return { factory, remover, shards, barrier, hints, keys: keyLifecycle, compaction, signer };
}

/** New data files: ids from the MANIFEST's next file id on, under the store's keys. */
function makeFactory(init: PartsInit): FileFactory {
  const { directory, fileSystem, provider, options, counters } = init;
  const { manifest, keys } = init.rootFiles;
  const { algorithm, databaseId, nextFileId } = manifest;
  return new FileFactory({
    directory,
    fileSystem,
    provider,
    keys,
    algorithm,
    databaseId,
    writeBufferBytes: options.writeBufferBytes,
    counters,
    nextFileId,
  });
}

/** The MANIFEST fields fixed for the store's lifetime. */
function manifestTemplate(init: PartsInit): ManifestTemplate {
  const { options, rootFiles } = init;
  return {
    algorithm: rootFiles.manifest.algorithm,
    collectionKind: init.collectionKind,
    databaseId: rootFiles.manifest.databaseId,
    keySize: options.keySize,
    valueSize: options.valueSize,
    shards: options.shards,
    shardPrefixBits: options.shardPrefixBits,
  };
}

/** What compaction takes from the engine's options and shared pieces. */
function compactionOptions(init: PartsInit) {
  const { directory, fileSystem, options, index, cache, guard, counters, closeSignal } = init;
  return {
    directory,
    fileSystem,
    keySize: options.keySize,
    maxFileBytes: options.maxFileBytes,
    autoCompact: options.autoCompact,
    compactionThreshold: options.compactionThreshold,
    index,
    // Tree collections: compaction writes live records in key order.
    ordered: index instanceof OrderedIndex ? index : undefined,
    cache,
    guard,
    counters,
    closeSignal,
  };
}
