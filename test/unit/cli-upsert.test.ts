/** `shoal upsert --file`: lines checked against the collection, cluster errors mapped back to lines, the progress record. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CollectionSpec } from '../../src/api/types.js';
import { LineError, lineErrorOf, parseLine } from '../../src/cli/upsert-lines.js';
import { LineHash, progressPath, readProgress, stateDirOf, writeProgress } from '../../src/cli/upsert-progress.js';
import { InvalidArgumentError, UnavailableError } from '../../src/runtime/errors.js';

const SPEC: CollectionSpec = { name: 'docs', dim: 4, metric: 'cosine', shards: 2, replicas: 3, sharding: { strategy: 'consistent-hash', vnodes: 128 }, hnsw: { m: 16, efConstruction: 200, ef: 64 } };

function lineError(fn: () => unknown): LineError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LineError, `a LineError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error');
}

describe('cli upsert lines', () => {
  it('cli upsert - a valid line is the point as written', () => {
    assert.deepEqual(parseLine('{"id": "a", "vector": [1, 0, 0, 0.5], "metadata": {"x": 1}}', 3, SPEC), { id: 'a', vector: [1, 0, 0, 0.5], metadata: { x: 1 } });
  });

  it('cli upsert - a bad line is named by its line number, with what the cluster would say of it', () => {
    const dim = lineError(() => parseLine('{"id": "a", "vector": [1, 2, 3]}', 701, SPEC));
    assert.equal(dim.message, 'line 701: vector has 3 dimensions; the collection has 4');
    assert.equal(dim.code, 'INVALID_ARGUMENT');
    assert.equal(dim.line, 701);
    assert.match(lineError(() => parseLine('{"id": "a", "vector": [1,', 2, SPEC)).message, /^line 2: not valid JSON/);
    assert.match(lineError(() => parseLine('{"id": "", "vector": [1, 2, 3, 4]}', 5, SPEC)).message, /^line 5: id /);
    assert.match(lineError(() => parseLine(`{"id": "${'x'.repeat(257)}", "vector": [1, 2, 3, 4]}`, 6, SPEC)).message, /^line 6: id .*256/);
    assert.match(lineError(() => parseLine('{"id": "a", "vector": [0, 0, 0, 0]}', 7, SPEC)).message, /^line 7: vector is all zeros/);
    assert.match(lineError(() => parseLine('[1, 2]', 8, SPEC)).message, /^line 8: point must be an object/);
    assert.match(lineError(() => parseLine('{"id": "a", "vector": [1, 2, 3, 4], "shardKey": "k"}', 9, SPEC)).message, /^line 9: shardKey is only for collections with custom sharding/);
    assert.match(lineError(() => parseLine('{"id": "a", "vector": [1, 2, 3, 4], "extra": 1}', 10, SPEC)).message, /^line 10: unknown field point\.extra/);
  });

  it('cli upsert - a cluster error about points[i] of a batch names the line of point i; others name no line', () => {
    const lines = [101, 102, 105, 106];
    const e = lineErrorOf(new InvalidArgumentError("points[2].vector has 3 dimensions; collection 'docs' has 4"), lines);
    assert.equal(e?.message, "line 105: vector has 3 dimensions; collection 'docs' has 4");
    assert.equal(e?.line, 105);
    assert.equal(lineErrorOf(new InvalidArgumentError('points[3] must be an object, got a string'), lines)?.message, 'line 106: point must be an object, got a string');
    assert.equal(lineErrorOf(new InvalidArgumentError('points[9].id is bad'), lines), undefined, 'an index outside the batch');
    assert.equal(lineErrorOf(new InvalidArgumentError('requestId is too long'), lines), undefined);
    assert.equal(lineErrorOf(new UnavailableError('points[0] shard has no leader'), lines), undefined);
  });
});

describe('cli upsert progress', () => {
  it('cli upsert - the progress record: one per file, cluster and collection; written atomically; read back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-progress-'));
    try {
      const key = { file: '/data/points.jsonl', nats: 'nats://127.0.0.1:4222', prefix: 'shoal', collection: 'docs' };
      const path = progressPath(dir, key);
      assert.ok(path.startsWith(join(dir, 'upsert', 'docs-')));
      assert.notEqual(progressPath(dir, { ...key, collection: 'other' }), path);
      assert.notEqual(progressPath(dir, { ...key, nats: 'nats://elsewhere:4222' }), path);
      assert.notEqual(progressPath(dir, { ...key, file: '/data/other.jsonl' }), path);
      assert.equal(readProgress(path), undefined);
      const h = new LineHash();
      h.add('{"id": "a"}');
      h.add('');
      const rec = { ...key, line: h.lines, sha256: h.digest(), nonBlank: h.nonBlank, upserted: 1, skipped: 0, updatedAt: new Date(0).toISOString() };
      writeProgress(path, rec);
      assert.deepEqual(readProgress(path), rec);
      assert.equal(rec.line, 2);
      assert.equal(rec.nonBlank, 1);
      // the digest goes on over later lines, and depends on every line
      h.add('{"id": "b"}');
      const other = new LineHash();
      other.add('{"id": "A"}');
      other.add('');
      assert.notEqual(other.digest(), rec.sha256);
      assert.notEqual(h.digest(), rec.sha256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cli upsert - the state directory: --state-dir, else $SHOAL_STATE_DIR, else $XDG_STATE_HOME/shoal, else ~/.local/state/shoal', () => {
    assert.equal(stateDirOf('/flag', { SHOAL_STATE_DIR: '/env' }), '/flag');
    assert.equal(stateDirOf(undefined, { SHOAL_STATE_DIR: '/env', XDG_STATE_HOME: '/xdg' }), '/env');
    assert.equal(stateDirOf(undefined, { XDG_STATE_HOME: '/xdg' }), '/xdg/shoal');
    assert.match(stateDirOf(undefined, {}), /\/\.local\/state\/shoal$/);
  });
});
