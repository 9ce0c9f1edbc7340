/** How the CLI prints numbers for people. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDistance } from '../../src/cli/read-commands.js';

describe('cli format', () => {
  it('cli format - distances: six significant digits, no trailing zeros, float32 noise around zero as 0', () => {
    assert.equal(formatDistance(0), '0');
    assert.equal(formatDistance(1.11022e-16), '0');
    assert.equal(formatDistance(5.96046e-7), '0');
    assert.equal(formatDistance(8), '8');
    assert.equal(formatDistance(0.123456789), '0.123457');
    assert.equal(formatDistance(-0.5), '-0.5');
  });
});
