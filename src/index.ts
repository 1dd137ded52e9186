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
 * @module
 */
export { ArmdbError, ERROR_CODES, type ArmdbErrorCode } from './errors.js';
export { VarMap } from './collections/var-map.js';
export { Collection, type Transaction } from './collections/collection.js';
export { keys } from './keys.js';
export type { OpenOptions, EncryptionOption, WriteHook } from './config.js';
export type { Stats, VerifyReport, VerifyOptions } from './engine/engine.js';
export type { CipherName } from './crypto/provider.js';
