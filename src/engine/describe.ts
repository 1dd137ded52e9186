/**
 * What a store is, read from its authenticated MANIFEST without opening it (no lock, no recovery):
 * the collection class and immutable options, so tools can open a store they know nothing about.
 */
import * as path from 'node:path';
import type { Credential } from '../crypto/keys.js';
import { openKeyring } from '../crypto/keys.js';
import { nodeProvider } from '../crypto/node-provider.js';
import { armdbError, integrityError } from '../errors.js';
import { Algorithm, KEY_BYTES } from '../format/constants.js';
import { decodeManifest, FileState, peekManifestAlgorithm, peekManifestFormatVersion, type CollectionKindId } from '../format/manifest.js';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { KEYRING_NAME, MANIFEST_NAME, MAX_KEYRING_BYTES, MAX_MANIFEST_BYTES } from './paths.js';

export const COLLECTION_NAMES: Record<CollectionKindId, string> = {
  1: 'VarMap',
  2: 'VarTree',
  3: 'ConstMap',
  4: 'ConstTree',
  5: 'TypedMap',
  6: 'TypedTree',
};

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
}

/** Reads and authenticates the MANIFEST (the keyring first when encrypted). */
export async function describeStore(
  directory: string,
  credential: Credential | undefined,
  fileSystem: FileSystem = nodeFileSystem,
): Promise<StoreDescription> {
  const root = path.resolve(directory);
  const bytes = fileSystem.readFile(path.join(root, MANIFEST_NAME), MAX_MANIFEST_BYTES);
  if (bytes === undefined) throw integrityError(`no MANIFEST in ${root}: not an armdb store`);
  const algorithm = peekManifestAlgorithm(bytes);
  let macKey: Uint8Array = new Uint8Array(KEY_BYTES);
  if (algorithm === Algorithm.aes256gcm) {
    if (credential === undefined) throw armdbError('ARMDB_FORMAT_MISMATCH', 'the store is encrypted; a key or passphrase is needed');
    const keyring = fileSystem.readFile(path.join(root, KEYRING_NAME), MAX_KEYRING_BYTES);
    if (keyring === undefined) throw integrityError('the KEYRING of an encrypted store is missing');
    const keys = await openKeyring(keyring, credential, nodeProvider);
    try {
      macKey = keys.manifestMacKey(nodeProvider);
    } finally {
      keys.destroy();
    }
  } else if (fileSystem.exists(path.join(root, KEYRING_NAME))) {
    throw integrityError('the MANIFEST claims no encryption but the store has a KEYRING');
  }
  const manifest = decodeManifest(bytes, (body) => nodeProvider.hmac(macKey, body));
  macKey.fill(0);
  const filesPerShard = new Array<number>(manifest.shards).fill(0);
  const keyIds = new Set<number>();
  let sealedPages = 0;
  for (const file of manifest.files) {
    filesPerShard[file.shard]!++;
    keyIds.add(file.keyId);
    if (file.state === FileState.sealed) sealedPages += file.pageCount;
  }
  return {
    formatVersion: peekManifestFormatVersion(bytes),
    collection: COLLECTION_NAMES[manifest.collectionKind],
    collectionKind: manifest.collectionKind,
    encrypted: algorithm === Algorithm.aes256gcm,
    keySize: manifest.keySize,
    valueSize: manifest.valueSize,
    shards: manifest.shards,
    shardPrefixBits: manifest.shardPrefixBits,
    epoch: manifest.epoch,
    activeKeyId: manifest.activeKeyId,
    filesPerShard,
    keyIdsInUse: [...keyIds].sort((left, right) => left - right),
    sealedPages,
  };
}
