/**
 * The root files of a store, MANIFEST and KEYRING (docs/format.md §7): reading them with every check,
 * creating them for a new store, checking the MANIFEST against the options of an open, and replacing
 * them atomically. The one implementation behind `open()`, {@link describeStore} and the CLI, so that
 * each of them refuses the same stores for the same reasons. An open first takes the store
 * directory's lock ({@link lockStore}).
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { DEFAULT_PROVIDER_TIMEOUT_MS, type ResolvedOptions } from '../config.js';
import { createKeySet, openKeyring, sealKeyring, wipeCredential, type Credential, type KeySet } from '../crypto/keys.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ArmdbError, armdbError, integrityError } from '../errors.js';
import { equalBytes } from '../format/bytes.js';
import { Algorithm, DATABASE_ID_BYTES, KEY_BYTES, MANIFEST_FORMAT_VERSION, type ManifestFormatVersion } from '../format/constants.js';
import {
  decodeManifestLog,
  encodeManifest,
  freshLogState,
  peekManifestAlgorithm,
  type CollectionKindId,
  type Manifest,
  type ManifestLogState,
} from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import { type DirectoryLock, lockDirectory } from '../io/lock.js';
import { replaceFileAtomically } from './atomic-file.js';
import { crashPoint } from './crash-points.js';
import { KEYRING_NAME, MANIFEST_NAME, MAX_KEYRING_BYTES, MAX_MANIFEST_BYTES } from './paths.js';

/** The manifest MAC key of an unencrypted store: 32 zero bytes (docs/format.md §7). Never zeroed, never handed out to be. */
export const ZERO_KEY: Uint8Array = new Uint8Array(KEY_BYTES);

/** Collection class names by the MANIFEST's collection kind (docs/format.md §7.1). */
export const COLLECTION_NAMES: Record<CollectionKindId, string> = {
  1: 'VarMap',
  2: 'VarTree',
  3: 'ConstMap',
  4: 'ConstTree',
  5: 'TypedMap',
  6: 'TypedTree',
};

/**
 * The authenticated root files of a store. The receiver owns `keys` and `manifestMacKey` and must
 * destroy them ({@link destroyRootKeys}).
 */
export interface RootFiles {
  readonly manifest: Manifest;
  /** The MANIFEST's format version as stored (a new store: the current one). */
  readonly manifestFormatVersion: ManifestFormatVersion;
  /** Where the MANIFEST's log stands (docs/format.md §7.7): what the next barrier appends to, or whether it must replace the file. */
  readonly manifestLog: ManifestLogState;
  /** The key set of an encrypted store; undefined without encryption. */
  readonly keys: KeySet | undefined;
  /** {@link ZERO_KEY} without encryption. */
  readonly manifestMacKey: Uint8Array;
}

/** Zeroes the keys of {@link RootFiles} (not {@link ZERO_KEY}, which is shared). */
export function destroyRootKeys(keys: KeySet | undefined, manifestMacKey: Uint8Array | undefined): void {
  keys?.destroy();
  if (manifestMacKey !== undefined && manifestMacKey !== ZERO_KEY) manifestMacKey.fill(0);
}

/** The MANIFEST's bytes, or undefined when there is none; a larger file than the format allows is refused unread. */
export function readManifestBytes(fileSystem: FileSystem, root: string): Uint8Array | undefined {
  return fileSystem.readFile(path.join(root, MANIFEST_NAME), MAX_MANIFEST_BYTES);
}

/** Whether shard directories hold data or tag files: without a MANIFEST, a damaged store rather than an empty directory. */
export function holdsDataFiles(fileSystem: FileSystem, root: string): boolean {
  return fileSystem
    .list(root)
    .some((name) => name.startsWith('shard-') && fileSystem.list(path.join(root, name)).some((file) => /\.(data|tags)$/.test(file)));
}

/**
 * Authenticates an existing store's root files: the KEYRING (present, private, opened with
 * `credential`), then the MANIFEST under the manifest MAC key, then that both belong to one database
 * and that the KEYRING holds the MANIFEST's active data key.
 */
export async function openRootFiles(
  fileSystem: FileSystem,
  root: string,
  manifestBytes: Uint8Array,
  credential: Credential | undefined,
  provider: CryptoProvider,
  custody: CustodyOptions = DEFAULT_CUSTODY,
): Promise<RootFiles> {
  const { keys, manifestMacKey } = await openKeys(fileSystem, root, manifestBytes, credential, provider, custody);
  try {
    // The one reader of MANIFEST bytes: the base and every record of its log (docs/format.md §7.7).
    const { manifest, log } = decodeManifestLog(manifestBytes, (body) => provider.hmac(manifestMacKey, body));
    if (keys !== undefined && !equalBytes(keys.databaseId, manifest.databaseId)) {
      throw integrityError('the MANIFEST and the KEYRING belong to different databases');
    }
    if (keys !== undefined && !keys.keyIds.includes(manifest.activeKeyId))
      throw integrityError(`the manifest's active data key ${manifest.activeKeyId} is not in the keyring`);
    return { manifest, manifestFormatVersion: log.formatVersion, manifestLog: log, keys, manifestMacKey };
  } catch (error) {
    destroyRootKeys(keys, manifestMacKey);
    throw error;
  }
}

async function openKeys(
  fileSystem: FileSystem,
  root: string,
  manifestBytes: Uint8Array,
  credential: Credential | undefined,
  provider: CryptoProvider,
  custody: CustodyOptions,
): Promise<Pick<RootFiles, 'keys' | 'manifestMacKey'>> {
  const keyringPath = path.join(root, KEYRING_NAME);
  if (peekManifestAlgorithm(manifestBytes) === Algorithm.none) {
    // The algorithm byte is not authenticated yet: a KEYRING beside a manifest claiming no
    // encryption means the manifest was altered (a downgrade attempt), not a mismatch of options.
    if (fileSystem.exists(keyringPath)) throw integrityError('the MANIFEST claims no encryption but the store has a KEYRING');
    if (credential !== undefined)
      throw armdbError('ARMDB_FORMAT_MISMATCH', "the store was created with encryption: 'none'; a key was given");
    return { keys: undefined, manifestMacKey: ZERO_KEY };
  }
  if (credential === undefined)
    throw armdbError('ARMDB_FORMAT_MISMATCH', "the store is encrypted; a key or passphrase is needed (encryption: 'none' was given)");
  const atKeyring = { path: keyringPath };
  const keyringMode = fileSystem.modeOf(keyringPath);
  if (keyringMode === undefined) throw integrityError('the KEYRING of an encrypted store is missing', undefined, atKeyring);
  // Windows reports 0o666 for every file: permission bits mean nothing there.
  if (process.platform !== 'win32' && (keyringMode & 0o077) !== 0) {
    throw integrityError(
      `the KEYRING is readable or writable by other users (mode ${keyringMode.toString(8)}); run chmod 600 on it`,
      undefined,
      atKeyring,
    );
  }
  const keyringBytes = fileSystem.readFile(keyringPath, MAX_KEYRING_BYTES);
  if (keyringBytes === undefined) throw integrityError('the KEYRING of an encrypted store is missing', undefined, atKeyring);
  const keys = await openKeyring(keyringBytes, credential, { ...custody, provider });
  try {
    return { keys, manifestMacKey: keys.manifestMacKey(provider) };
  } catch (error) {
    keys.destroy();
    throw error;
  }
}

/** Makes the store's directory if needed and takes its lock; on failure the credential is wiped. */
export async function lockStore(fileSystem: FileSystem, root: string, options: ResolvedOptions): Promise<DirectoryLock> {
  try {
    const existed = fileSystem.exists(root);
    // A regular file where the store's directory should be is the caller's mistake, not damage.
    if (existed && isRegularFile(fileSystem, root))
      throw new TypeError(`"directory" expected a directory or a path to create one, got a file: ${root}`);
    // The caller named this directory: it may be a symbolic link. Nothing inside it is followed.
    fileSystem.makeDirectory(root, { followLink: true });
    // A new store's directory entry must survive power loss too.
    if (!existed) await fileSystem.syncDirectory(path.dirname(root));
    return lockDirectory(fileSystem, root);
  } catch (error) {
    // ARMDB_LOCKED, or the directory could not be made: the engine's copy of the secret goes too.
    if (options.credential !== undefined) wipeCredential(options.credential);
    throw error;
  }
}

/** Whether `target` is a regular file: modeOf answers for one and refuses (ARMDB_INTEGRITY) any other kind of entry. */
function isRegularFile(fileSystem: FileSystem, target: string): boolean {
  try {
    return fileSystem.modeOf(target) !== undefined;
  } catch (error) {
    if (error instanceof ArmdbError) return false;
    throw error;
  }
}

/** The root files of the store in `root`, created when there is no MANIFEST (and no data). */
export async function openOrCreateRootFiles(
  fileSystem: FileSystem,
  root: string,
  options: ResolvedOptions,
  collectionKind: CollectionKindId,
  provider: CryptoProvider,
  now: () => number = Date.now,
): Promise<RootFiles> {
  const manifestBytes = readManifestBytes(fileSystem, root);
  if (manifestBytes !== undefined) {
    const rootFiles = await openRootFiles(fileSystem, root, manifestBytes, options.credential, provider, custodyOf(options, now));
    try {
      checkManifestMatches(rootFiles.manifest, options, collectionKind);
    } catch (error) {
      destroyRootKeys(rootFiles.keys, rootFiles.manifestMacKey);
      throw error;
    }
    return rootFiles;
  }
  if (holdsDataFiles(fileSystem, root))
    throw integrityError('the MANIFEST is missing but data files exist; refusing to start over on top of them', undefined, {
      path: path.join(root, MANIFEST_NAME),
    });
  if (options.expectedMinEpoch !== undefined && options.expectedMinEpoch > 0) {
    throw armdbError('ARMDB_ROLLBACK', `expected a store at epoch ${options.expectedMinEpoch} or later, but the directory holds none`);
  }
  return createRootFiles(fileSystem, root, options, collectionKind, provider, custodyOf(options, now));
}

/** What a new store is made of: its class and the immutable options the MANIFEST records. */
export type NewStoreOptions = Pick<ResolvedOptions, 'credential' | 'keySize' | 'valueSize' | 'shards' | 'shardPrefixBits'>;

/** What opening or creating a KEYRING needs beyond the credential: the slot to try, the provider timeout, the clock. */
export interface CustodyOptions {
  readonly slotLabel?: string | undefined;
  readonly providerTimeoutMs: number;
  readonly now: () => number;
}

const DEFAULT_CUSTODY: CustodyOptions = { providerTimeoutMs: DEFAULT_PROVIDER_TIMEOUT_MS, now: Date.now };

function custodyOf(options: Partial<Pick<ResolvedOptions, 'slotLabel' | 'providerTimeoutMs'>>, now: () => number): CustodyOptions {
  return { slotLabel: options.slotLabel, providerTimeoutMs: options.providerTimeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS, now };
}

/**
 * Creates a store's root files: the KEYRING first (a new key set under the credential), then the
 * first MANIFEST (epoch 1, no files). The first MANIFEST exists before any data file does: a crash
 * during creation leaves either no MANIFEST and no data (creation starts over) or an empty store
 * whose unlisted files recovery handles.
 */
export async function createRootFiles(
  fileSystem: FileSystem,
  root: string,
  options: NewStoreOptions,
  collectionKind: CollectionKindId,
  provider: CryptoProvider,
  custody: CustodyOptions = DEFAULT_CUSTODY,
): Promise<RootFiles> {
  let keys: KeySet | undefined;
  let manifestMacKey: Uint8Array = ZERO_KEY;
  try {
    let databaseId: Uint8Array;
    if (options.credential !== undefined) {
      // The first slot is labelled `encryption.slot` when given, else "default".
      keys = await createKeySet(options.credential, { ...custody, provider }, custody.slotLabel);
      databaseId = keys.databaseId;
      manifestMacKey = keys.manifestMacKey(provider);
      await writeKeyringFile(fileSystem, root, sealKeyring(keys, provider));
      crashPoint('create:keyring-written', () => ({ directory: root }));
    } else {
      databaseId = new Uint8Array(randomBytes(DATABASE_ID_BYTES));
      if (fileSystem.exists(path.join(root, KEYRING_NAME))) fileSystem.unlink(path.join(root, KEYRING_NAME));
    }
    const manifest: Manifest = {
      epoch: 1,
      algorithm: keys === undefined ? Algorithm.none : Algorithm.aes256gcm,
      collectionKind,
      databaseId,
      keySize: options.keySize,
      valueSize: options.valueSize,
      shards: options.shards,
      shardPrefixBits: options.shardPrefixBits,
      activeKeyId: keys?.activeKeyId ?? 0,
      nextFileId: 1,
      files: [],
    };
    const macKey = manifestMacKey;
    const bytes = encodeManifest(manifest, (body) => provider.hmac(macKey, body));
    await writeManifestFile(fileSystem, root, bytes);
    crashPoint('create:manifest-written', () => ({ directory: root }));
    const manifestLog = freshLogState(bytes);
    return { manifest, manifestFormatVersion: MANIFEST_FORMAT_VERSION, manifestLog, keys, manifestMacKey };
  } catch (error) {
    // The caller never sees these keys: zero them here.
    destroyRootKeys(keys, manifestMacKey);
    throw error;
  }
}

/** What an open asks of the store it finds: the MANIFEST's immutable options, class and epoch checked against the caller's. */
export function checkManifestMatches(
  manifest: Manifest,
  options: Pick<ResolvedOptions, 'keySize' | 'valueSize' | 'shards' | 'shardPrefixBits' | 'expectedMinEpoch'>,
  collectionKind: CollectionKindId,
): void {
  const mismatch = (what: string, stored: number, given: number): never => {
    throw armdbError('ARMDB_FORMAT_MISMATCH', `"${what}" is ${stored} in this store; ${given} was given`);
  };
  if (manifest.keySize !== options.keySize) mismatch('keySize', manifest.keySize, options.keySize);
  if (manifest.shards !== options.shards) mismatch('shards', manifest.shards, options.shards);
  if (manifest.shardPrefixBits !== options.shardPrefixBits) mismatch('shardPrefixBits', manifest.shardPrefixBits, options.shardPrefixBits);
  if (manifest.valueSize !== options.valueSize) mismatch('valueSize', manifest.valueSize, options.valueSize);
  if (manifest.collectionKind !== collectionKind) {
    throw armdbError(
      'ARMDB_FORMAT_MISMATCH',
      `the store is a ${COLLECTION_NAMES[manifest.collectionKind]}; it was opened as a ${COLLECTION_NAMES[collectionKind]}`,
    );
  }
  if (options.expectedMinEpoch !== undefined && manifest.epoch < options.expectedMinEpoch) {
    throw armdbError(
      'ARMDB_ROLLBACK',
      `the store's epoch ${manifest.epoch} is older than the expected minimum ${options.expectedMinEpoch}`,
    );
  }
}

/** Replaces the MANIFEST atomically (docs/format.md §7.6): a new base, with an empty log. */
export function writeManifestFile(fileSystem: FileSystem, root: string, bytes: Uint8Array): Promise<void> {
  return replaceFileAtomically(fileSystem, path.join(root, MANIFEST_NAME), bytes, 'manifest');
}

/**
 * Appends `framed` (padding and one record, docs/format.md §7.7) at `at`, the end of the last
 * complete unit of the MANIFEST, and fsyncs it: the second and last round of a barrier. No rename and
 * no directory fsync: the file's name is already durable, and its fsync makes its new length durable.
 * Returns false, writing nothing, when the file is not `at` bytes long (someone else changed it): the
 * caller then replaces the MANIFEST instead.
 */
export async function appendManifestRecord(fileSystem: FileSystem, root: string, framed: Uint8Array, at: number): Promise<boolean> {
  const handle = fileSystem.open(path.join(root, MANIFEST_NAME), 'readWrite');
  try {
    if (handle.size() !== at) return false;
    handle.write(framed, at);
    crashPoint('manifest:appended', () => ({ directory: root }));
    await handle.sync();
  } finally {
    handle.close();
  }
  crashPoint('manifest:append-synced', () => ({ directory: root }));
  return true;
}

/** Replaces the KEYRING atomically (docs/format.md §7.6). */
export function writeKeyringFile(fileSystem: FileSystem, root: string, bytes: Uint8Array): Promise<void> {
  return replaceFileAtomically(fileSystem, path.join(root, KEYRING_NAME), bytes, 'keyring');
}
