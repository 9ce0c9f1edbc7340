import assert from 'node:assert/strict';
import { ShoalError } from '../../src/runtime/errors.js';

/** The ShoalError `p` rejects with, for a test to look into; fails the test if `p` resolves or rejects with anything else. */
export async function shoalRejection(p: Promise<unknown>): Promise<ShoalError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ShoalError, String(err));
    return err;
  }
  assert.fail('it resolved');
}
