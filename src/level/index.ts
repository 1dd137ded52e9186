/**
 * `armdb/level`: an abstract-level 3 database backed by armdb (SPEC §12, docs/level.md). Needs the
 * optional peer dependency `abstract-level`.
 *
 * @example
 * ```ts
 * import { ArmdbLevel } from 'armdb/level';
 * const db = new ArmdbLevel('./data', { encryption: { key } });
 * await db.put('a', 'b');
 * ```
 *
 * @module armdb/level
 */
export { ArmdbLevel, DEFAULT_LEVEL_KEY_SIZE, type ArmdbLevelOptions } from './level.js';
export { LevelError } from './errors.js';
