/**
 * armdb — an embedded, encrypted-at-rest key-value store for Node.js.
 *
 * @example
 * ```ts
 * import { VarMap } from 'armdb';
 * const db = await VarMap.open('./data', { keySize: 16, encryption: { key } });
 * db.put(keys.fromString('hello', 16), new TextEncoder().encode('world'));
 * await db.close();
 * ```
 *
 * @module
 */
export { ArmdbError, ERROR_CODES, type ArmdbErrorCode } from './errors.js';
