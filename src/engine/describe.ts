/**
 * What a store is, read from its authenticated MANIFEST without opening it (no lock, no recovery):
 * the collection class and immutable options, so tools can open a store they know nothing about.
 */
import * as path from 'node:path';
import type { Credential, KeySlotInfo } from '../crypto/keys.js';
import { nodeProvider } from '../crypto/node-provider.js';
import { integrityError } from '../errors.js';
import { Algorithm } from '../format/constants.js';
import { FileState, type CollectionKindId } from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { COLLECTION_NAMES, destroyRootKeys, openRootFiles, readManifestBytes } from './root-files.js';

export { COLLECTION_NAMES } from './root-files.js';

/** A store's description. Holds no secret. */
export interface StoreDescription {
  readonly formatVersion: number;
  readonly collection: string;
  readonly collectionKind: CollectionKindId;
  readonly encrypted: boolean;
  readonly keySize: number;
  readonly valueSize: number;
  readonly shards: number;
  readonly shardPrefixBits: number;
  readonly epoch: number;
  readonly activeKeyId: number;
  /** Data files per shard, and per key id, as the manifest lists them. */
  readonly filesPerShard: number[];
  readonly keyIdsInUse: number[];
  readonly sealedPages: number;
  /** The key slots (labels, kinds, creation times); empty without encryption. */
  readonly keySlots: KeySlotInfo[];
  /** Every data key in the KEYRING with its creation time (ms since the epoch). */
  readonly dataKeys: { readonly keyId: number; readonly createdAtMs: number }[];
  /** The KEYRING format version (1 or 2); undefined without encryption. */
  readonly keyringVersion: number | undefined;
}

/** Reads and authenticates the MANIFEST (the keyring first when encrypted), with the checks of an open. */
export async function describeStore(
  directory: string,
  credential: Credential | undefined,
  fileSystem: FileSystem = nodeFileSystem,
): Promise<StoreDescription> {
  const root = path.resolve(directory);
  const bytes = readManifestBytes(fileSystem, root);
  if (bytes === undefined) throw integrityError(`no MANIFEST in ${root}: not an armdb store`);
  // The same checks as an open (src/engine/root-files.ts); only the manifest is kept.
  const { manifest, manifestFormatVersion, keys, manifestMacKey } = await openRootFiles(fileSystem, root, bytes, credential, nodeProvider);
  const keySlots = keys?.slotInfos() ?? [];
  const dataKeys = keys?.keyIds.map((keyId) => ({ keyId, createdAtMs: keys.createdAtMs(keyId) })) ?? [];
  const keyringVersion = keys?.keyringVersion;
  destroyRootKeys(keys, manifestMacKey);
  const filesPerShard = new Array<number>(manifest.shards).fill(0);
  const keyIds = new Set<number>();
  let sealedPages = 0;
  for (const file of manifest.files) {
    filesPerShard[file.shard]!++;
    keyIds.add(file.keyId);
    if (file.state === FileState.sealed) sealedPages += file.pageCount;
  }
  return {
    formatVersion: manifestFormatVersion,
    collection: COLLECTION_NAMES[manifest.collectionKind],
    collectionKind: manifest.collectionKind,
    encrypted: manifest.algorithm === Algorithm.aes256gcm,
    keySize: manifest.keySize,
    valueSize: manifest.valueSize,
    shards: manifest.shards,
    shardPrefixBits: manifest.shardPrefixBits,
    epoch: manifest.epoch,
    activeKeyId: manifest.activeKeyId,
    filesPerShard,
    keyIdsInUse: [...keyIds].sort((left, right) => left - right),
    sealedPages,
    keySlots,
    dataKeys,
    keyringVersion,
  };
}
