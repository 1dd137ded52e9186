/**
 * Assertions on armdb's error contract: a stable `code` on an `ArmdbError` (SPEC, errors.md), never
 * the message. Not a test file itself (no `.test.ts` suffix).
 */
import { expect } from 'vitest';
import { ArmdbError, type ArmdbErrorCode } from '../../src/index.js';

/** What `fn` threw; fails the test if it returned. */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

/** `fn` throws an `ArmdbError` with `code`; returns it for further assertions. */
export function expectCode(fn: () => unknown, code: ArmdbErrorCode): ArmdbError {
  const error = caught(fn);
  expect(error, `expected ${code}`).toBeInstanceOf(ArmdbError);
  expect((error as ArmdbError).code).toBe(code);
  return error as ArmdbError;
}

/** `promise` rejects with an `ArmdbError` with `code`; returns it for further assertions. */
export async function expectRejectCode(promise: Promise<unknown>, code: ArmdbErrorCode): Promise<ArmdbError> {
  const error = await promise.then(
    () => new Error('expected the promise to reject'),
    (reason: unknown) => reason,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(ArmdbError);
  expect((error as ArmdbError).code).toBe(code);
  return error as ArmdbError;
}
