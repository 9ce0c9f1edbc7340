/** How the CLI prints numbers for people. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDistance, formatSearch, formatVector } from '../../src/cli/read-commands.js';
import { indexOptions } from '../../src/cli/collections-command.js';
import { UsageError } from '../../src/cli/command.js';

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

describe('cli indexes and explain', () => {
  it('cli - --index flags become create\'s indexes; a flag without a type is a usage error naming it', () => {
    assert.deepEqual(indexOptions(['year=integer', 'meta.lang=keyword']), { year: 'integer', 'meta.lang': 'keyword' });
    assert.throws(() => indexOptions(['year']), (e: unknown) => e instanceof UsageError && /--index takes <field>=<type> .* got 'year'/.test(e.message));
    assert.throws(() => indexOptions(['year=']), UsageError);
  });

  it('cli - a search with explain prints a line per shard with its plan and matches', () => {
    const f = formatSearch({ hits: [], coverage: { shards: 2, answered: 2, failed: [] }, partial: false, explain: [
      { shard: 0, plan: 'exact', matches: 12, points: 5000, indexed: true },
      { shard: 1, plan: 'hnsw-filtered', matches: 2600, points: 5100, indexed: false },
    ] }, false);
    assert.equal(f.summary, '0 hits from 2/2 shards\nshard 0: exact, 12 of 5000 points match\nshard 1: hnsw-filtered, 2600 of 5100 points match (counted by reading every point)');
  });
});
