/**
 * armdb — an embedded, encrypted-at-rest key-value store for Node.js.
 *
 * @example
 * ```ts
 * import { VarMap, keys } from 'armdb';
 * const db = await VarMap.open('./data', { keySize: 16, encryption: { key } });
 * db.put(keys.fromString('hello', 16), new TextEncoder().encode('world'));
 * await db.close();
 * ```
 *
 * @module armdb
 */
export { ArmdbError, ERROR_CODES, type ArmdbErrorCode, type ArmdbErrorDetails } from './errors.js';
export { Collection, type Transaction } from './collections/collection.js';
export { OrderedCollection, type RangeOptions, type PrefixOptions, type EntryIterator } from './collections/ordered-collection.js';
export { VarMap } from './collections/var-map.js';
export { VarTree } from './collections/var-tree.js';
export { ConstMap, ConstTree, type ConstOpenOptions } from './collections/const-map.js';
export { TypedMap, TypedTree, type TypedOpenOptions } from './collections/typed.js';
export { codecs, type Codec } from './collections/values.js';
export { indexHook } from './collections/index-hook.js';
export { keys } from './keys.js';
export type { OpenOptions, EncryptionOption, WriteHook } from './config.js';
export type { Stats, VerifyReport, VerifyOptions, CompactionReport, CompactOptions } from './engine/reports.js';
export type { CipherName } from './crypto/provider.js';
export type { KeyProvider, KeySlotInfo } from './crypto/keys.js';
export { AUDIT_CHANNEL } from './engine/audit.js';
export type { AuditEventBase, AuditEventName } from './engine/audit.js';
export type { Replication, ReplicationOption, ReplicationStatus } from './replication/contract.js';
