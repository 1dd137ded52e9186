/**
 * ArmdbError's details (src/errors.ts): the location of an error as fields, frozen, holding nothing
 * but the four known ones.
 */
import { describe, expect, it } from 'vitest';
import { ArmdbError, armdbError, integrityError, type ArmdbErrorDetails } from '../../src/errors.js';

describe('ArmdbError details', () => {
  it('are an empty frozen object when nothing is known', () => {
    for (const error of [new ArmdbError('ARMDB_CLOSED', 'closed'), armdbError('ARMDB_LOCKED', 'locked'), integrityError('bad')]) {
      expect(error.details).toEqual({});
      expect(Object.isFrozen(error.details)).toBe(true);
    }
  });

  it('are a frozen copy of what the thrower passed, beside code, message and cause', () => {
    const cause = new Error('EIO');
    const given = { shard: 1, fileId: 22, pageIndex: 0, path: '/store/shard-001/000022.data' };
    const error = integrityError('page 0 fails authentication', cause, given);
    expect(error.details).toEqual(given);
    expect(error.details).not.toBe(given);
    expect(Object.isFrozen(error.details)).toBe(true);
    expect(() => {
      (error.details as { shard?: number }).shard = 2;
    }).toThrow(TypeError);
    expect(error.code).toBe('ARMDB_INTEGRITY');
    expect(error.message).toBe('ARMDB_INTEGRITY: page 0 fails authentication');
    expect(error.cause).toBe(cause);
  });

  it('leave out fields that are absent or not of their kind, and anything else a caller adds', () => {
    const odd = {
      shard: 2,
      fileId: undefined,
      pageIndex: -1,
      path: new Uint8Array([1, 2, 3]),
      key: new Uint8Array(32),
    } as unknown as ArmdbErrorDetails;
    const error = new ArmdbError('ARMDB_ROLLBACK', 'older', { details: odd });
    expect(error.details).toEqual({ shard: 2 });
    expect(Object.keys(error.details)).toEqual(['shard']);
  });
});
