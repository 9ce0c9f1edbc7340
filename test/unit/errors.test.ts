import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ERROR_CODES,
  ERROR_STATUS,
  ActorFailedError,
  MailboxFullError,
  ShoalError,
  errorFromCode,
  fromWireError,
  toWireError,
} from '../../src/runtime/errors.js';

describe('errors', () => {
  it('errors - every code revives as its own class with its code, message and a status', () => {
    for (const code of ERROR_CODES) {
      const e = fromWireError(toWireError(errorFromCode(code, `m-${code}`)));
      assert.ok(e instanceof ShoalError);
      assert.equal(e.code, code);
      assert.equal(e.message, `m-${code}`);
      assert.equal(e.constructor, errorFromCode(code, '').constructor);
      assert.ok(ERROR_STATUS[code] >= 400);
    }
    assert.ok(fromWireError(toWireError(new MailboxFullError('x'))) instanceof MailboxFullError);
  });

  it('errors - a plain Error or a thrown string becomes ACTOR_FAILED with its message', () => {
    assert.deepEqual(toWireError(new TypeError('bad')), { error: { code: 'ACTOR_FAILED', message: 'TypeError: bad' } });
    assert.ok(fromWireError(toWireError('oops')) instanceof ActorFailedError);
  });
});
