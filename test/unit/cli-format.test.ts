/** How the CLI prints numbers for people. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDistance, formatVector } from '../../src/cli/read-commands.js';

describe('cli format', () => {
  it('cli format - distances: six significant digits, no trailing zeros, float32 noise around zero as 0', () => {
    assert.equal(formatDistance(0), '0');
    assert.equal(formatDistance(1.11022e-16), '0');
    assert.equal(formatDistance(5.96046e-7), '0');
    assert.equal(formatDistance(8), '8');
    assert.equal(formatDistance(0.123456789), '0.123457');
    assert.equal(formatDistance(-0.5), '-0.5');
  });

  it('cli format - vectors in a table: the first three components and the dimension', () => {
    assert.equal(formatVector(Array.from({ length: 784 }, (_, i) => (i === 0 ? 0.123456 : i === 1 ? -2 : 0))), '[0.1235, -2, 0, …(784)]');
    assert.equal(formatVector(new Float32Array([1, 0, 0])), '[1, 0, 0]');
    assert.equal(formatVector([1, 2]), '[1, 2]');
    assert.equal(formatVector([1, 2, 3, 4]), '[1, 2, 3, …(4)]');
  });
});
