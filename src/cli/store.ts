/**
 * Opening a store the CLI knows nothing about: its class and immutable options come from the
 * authenticated MANIFEST ({@link describeStore}); the engine is then opened with them.
 *
 * The encryption mode is never guessed from the directory: an unencrypted store is opened only with
 * `--no-encryption`, so a store swapped for an unencrypted one cannot quietly receive plaintext.
 */
import { resolveOptions, type EncryptionOption, type OpenOptions } from '../config.js';
import { openEngine } from '../collections/open.js';
import { wipeCredential } from '../crypto/keys.js';
import { describeStore, type StoreDescription } from '../engine/describe.js';
import type { Engine } from '../engine/engine.js';
import { holdsDataFiles, readManifestBytes } from '../engine/root-files.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { armdbError, integrityError } from '../errors.js';
import { Algorithm } from '../format/constants.js';
import { CollectionKind, peekManifestAlgorithm, type CollectionKindId } from '../format/manifest.js';
import { flag, stringOption, UsageError, type OptionValues } from './command.js';
import { encryptionFrom } from './key-source.js';

export const KIND_BY_NAME: Record<string, CollectionKindId> = {
  VarMap: CollectionKind.varMap,
  VarTree: CollectionKind.varTree,
  ConstMap: CollectionKind.constMap,
  ConstTree: CollectionKind.constTree,
  TypedMap: CollectionKind.typedMap,
  TypedTree: CollectionKind.typedTree,
};

export function isConstKind(kind: CollectionKindId): boolean {
  return kind === CollectionKind.constMap || kind === CollectionKind.constTree;
}

/**
 * Whether `directory` holds a store, and whether it is encrypted (from the MANIFEST's algorithm byte,
 * authenticated later). `undefined`: no MANIFEST. A directory without a MANIFEST that holds data files
 * is a damaged store, not an empty directory.
 */
export function peekStore(directory: string): { encrypted: boolean } | undefined {
  const bytes = readManifestBytes(nodeFileSystem, directory);
  if (bytes === undefined) {
    if (holdsDataFiles(nodeFileSystem, directory)) throw integrityError(`the MANIFEST of ${directory} is missing but data files exist`);
    return undefined;
  }
  return { encrypted: peekManifestAlgorithm(bytes) !== Algorithm.none };
}

/** Like {@link peekStore}, but a directory without a store is a usage error. */
export function requireStore(directory: string): { encrypted: boolean } {
  const found = peekStore(directory);
  if (found === undefined) throw new UsageError(`${directory} holds no armdb store (no MANIFEST)`);
  return found;
}

/** The encryption option for a store from `--no-encryption`, `--key-file`, ARMDB_PASSPHRASE or a prompt. */
export async function encryptionFor(
  values: OptionValues,
  store: { encrypted: boolean } | undefined,
  prompt?: { confirm: boolean },
): Promise<EncryptionOption> {
  const none = flag(values, 'no-encryption');
  const keyFile = stringOption(values, 'key-file');
  if (none && keyFile !== undefined) throw new UsageError('--no-encryption and --key-file exclude each other');
  if (store !== undefined && none && store.encrypted)
    throw armdbError('ARMDB_FORMAT_MISMATCH', 'the store is encrypted; --no-encryption was given');
  if (store !== undefined && !none && !store.encrypted) {
    throw armdbError('ARMDB_FORMAT_MISMATCH', "the store was created with encryption 'none'; pass --no-encryption to open it");
  }
  return encryptionFrom({ keyFile, none }, prompt?.confirm === true ? { confirm: true } : {});
}

/** Zeroes the caller's copy of a key (the library keeps its own). */
export function wipeEncryption(encryption: EncryptionOption): void {
  if (typeof encryption === 'object' && 'key' in encryption && encryption.key instanceof Uint8Array) encryption.key.fill(0);
  if (typeof encryption === 'object' && 'passphrase' in encryption && encryption.passphrase instanceof Uint8Array)
    encryption.passphrase.fill(0);
}

/** Reads and authenticates the MANIFEST (and KEYRING): the store's class and immutable options. */
export async function describe(directory: string, encryption: EncryptionOption): Promise<StoreDescription> {
  // resolveOptions turns the option into a credential exactly as open() does (NFC for passphrases).
  const credential = resolveOptions({ keySize: 1, encryption }, 0).credential;
  try {
    return await describeStore(directory, credential);
  } finally {
    if (credential !== undefined) wipeCredential(credential);
  }
}

/** Opens the engine; option errors of the library (TypeError/RangeError) are usage errors here. */
export function openChecked(directory: string, options: OpenOptions, kind: CollectionKindId, valueSize: number): Promise<Engine> {
  try {
    return openEngine(directory, options, kind, valueSize);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
}

/** Runtime options every CLI open uses: no background timer, no background compaction. */
export const CLI_OPEN_OPTIONS = { syncIntervalMs: 0, autoCompact: false } as const;

export interface OpenedStore {
  readonly engine: Engine;
  readonly description: StoreDescription;
}

/**
 * Describes and opens an existing store. Opening runs recovery, which authenticates every page of
 * every file, and starts a new (empty) active file per shard, as every open does.
 */
export async function openExisting(directory: string, values: OptionValues, extra: Partial<OpenOptions> = {}): Promise<OpenedStore> {
  const store = requireStore(directory);
  const encryption = await encryptionFor(values, store);
  try {
    const description = await describe(directory, encryption);
    const engine = await openChecked(
      directory,
      {
        keySize: description.keySize,
        encryption,
        shards: description.shards,
        shardPrefixBits: description.shardPrefixBits,
        ...CLI_OPEN_OPTIONS,
        ...extra,
      },
      description.collectionKind,
      description.valueSize,
    );
    return { engine, description };
  } finally {
    wipeEncryption(encryption);
  }
}

/** `shard-000/000001.data` */
export function dataFileName(shard: number, fileId: number): string {
  return `shard-${String(shard).padStart(3, '0')}/${String(fileId).padStart(6, '0')}.data`;
}
