/**
 * What a script relies on, through the real `shoal` process against a real cluster (nats-server
 * and two `shoal node` processes): every verb's `--json` is the protocol's reply, errors are
 * `{"error": {code, message}}`, exit codes by class (docs/cli.md), and `upsert --file` naming bad
 * lines, skipping them, and resuming after a failure.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXIT_BY_CODE, EXIT_DEGRADED, EXIT_PARTIAL, EXIT_SKIPPED, EXIT_USAGE } from '../../src/cli/exit-codes.js';
import { TestCluster } from '../helpers/cluster.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cluster: TestCluster;
let dir: string;
let stateDir: string;

function shoal(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--nats', cluster.nats.url], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20, env: { ...process.env, SHOAL_STATE_DIR: stateDir } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** Runs `shoal`, expects `code`, and returns stdout parsed as JSON. */
async function json<T = Record<string, unknown>>(code: number, ...args: string[]): Promise<T> {
  const r = await shoal(...args, '--json');
  assert.equal(r.code, code, `shoal ${args.join(' ')} --json: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A failure with --json: one line on stdout, the protocol's error, and the exit code of its class. */
async function jsonError(code: keyof typeof EXIT_BY_CODE, message: RegExp, ...args: string[]): Promise<void> {
  const r = await shoal(...args, '--json');
  assert.equal(r.code, EXIT_BY_CODE[code], `shoal ${args.join(' ')}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stdout.trim().split('\n').length, 1, `one line: ${r.stdout}`);
  const e = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(e), ['error']);
  assert.equal(e.error.code, code);
  assert.match(e.error.message, message);
}

function points(n: number, dim = 4, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `p${from + i}`, vector: Array.from({ length: dim }, (_, d) => (d === 0 ? 1 : ((from + i) % 10) + d)), metadata: { i: from + i } }));
}

before(async () => {
  cluster = await TestCluster.start({ nodes: 2, env: { SHOAL_FAULTS: 'internal' } });
  dir = mkdtempSync(join(tmpdir(), 'shoal-cli-json-'));
  stateDir = join(dir, 'state');
});

after(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('shoal --json and exit codes against a cluster', () => {
  it('cli json - every data and admin verb prints the protocol reply, parseable, with exit 0', async () => {
    const created = await json<{ collection: { name: string; dim: number; shards: unknown[] } }>(0, 'collections', 'create', 'docs', '--dim', '4', '--shards', '2', '--replicas', '1', '--metric', 'l2');
    assert.equal(created.collection.name, 'docs');
    assert.equal(created.collection.shards.length, 2);

    // an identical create succeeds and says so, not "created"
    const again = await shoal('collections', 'create', 'docs', '--dim', '4', '--shards', '2', '--replicas', '1', '--metric', 'l2');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /'docs' already exists with the same settings \(dim 4, l2, 2 shards × 1 replicas\): nothing changed/);
    assert.doesNotMatch(again.stdout, /created/);
    const fresh = await shoal('collections', 'create', 'other', '--dim', '2', '--replicas', '1');
    assert.match(fresh.stdout, /^created 'other': dim 2, cosine, 1 shards × 1 replicas/);

    const file = join(dir, 'docs.jsonl');
    writeFileSync(file, `${points(30).join('\n')}\n`);
    const up = await json(0, 'upsert', 'docs', '--file', file, '--batch', '10');
    assert.equal(up['upserted'], 30);
    assert.equal(up['batches'], 3);
    assert.deepEqual(up['skipped'], []);
    assert.equal(up['lines'], 30);

    const list = await json<{ collections: { name: string; count: number }[] }>(0, 'collections', 'list');
    assert.deepEqual(list.collections.map((c) => c.name).sort(), ['docs', 'other']);
    const described = await json<{ collection: { name: string; count: number } }>(0, 'collections', 'describe', 'docs');
    assert.equal(described.collection.name, 'docs');

    const got = await json<{ points: { id: string; vector: number[] }[] }>(0, 'get', 'docs', 'p1', 'missing', 'p2', '--consistency', 'strong');
    assert.deepEqual(got.points.map((p) => [p.id, p.vector]), [['p1', [1, 2, 3, 4]], ['p2', [1, 3, 4, 5]]]);

    const found = await json<{ hits: { id: string; distance: number; vector?: number[] }[]; coverage: { shards: number; answered: number; failed: unknown[] }; partial: boolean }>(
      0, 'search', 'docs', '--vector', '[1, 2, 3, 4]', '--k', '2', '--consistency', 'strong', '--with-vector',
    );
    assert.deepEqual(found.hits.map((h) => h.id), ['p1', 'p11'], 'both at distance 0; the tie goes by id');
    assert.deepEqual(found.hits[0]?.vector, [1, 2, 3, 4]);
    assert.deepEqual(found.coverage, { shards: 2, answered: 2, failed: [] });
    assert.equal(found.partial, false);

    // --with-vector in the table: abbreviated, with the dimension
    const table = await shoal('search', 'docs', '--vector', '[1, 2, 3, 4]', '--k', '1', '--consistency', 'strong', '--with-vector');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^#\s+ID\s+DISTANCE\s+VECTOR\s+METADATA$/m);
    assert.match(table.stdout, /p1\s+0\s+\[1, 2, 3, …\(4\)\]\s+\{"i":1\}/);

    const queries = join(dir, 'queries.jsonl');
    writeFileSync(queries, `${JSON.stringify({ vector: [1, 2, 3, 4], k: 1, consistency: 'strong' })}\n`);
    const batch = await json<{ results: { hits: { id: string }[]; partial: boolean }[] }>(0, 'search-batch', 'docs', '--file', queries);
    assert.deepEqual(batch.results.map((r) => r.hits.map((h) => h.id)), [['p1']]);

    assert.deepEqual(await json(0, 'delete', 'docs', 'p29', 'missing'), { deleted: 1 });
    assert.deepEqual(await json(0, 'count', 'docs', '--consistency', 'strong'), { count: 29 });

    const status = await json<{ nodes: { id: string; state: string }[]; epoch: number; health: { healthy: boolean } }>(0, 'status');
    assert.deepEqual(status.nodes.map((n) => [n.id, n.state]).sort(), [['n1', 'up'], ['n2', 'up']]);
    assert.equal(typeof status.epoch, 'number');
    assert.equal(status.health.healthy, true);

    const rebalance = await json<{ state: string; moves: unknown[] }>(0, 'rebalance', 'status');
    assert.ok(['idle', 'running', 'paused'].includes(rebalance.state), JSON.stringify(rebalance));
    assert.ok(Array.isArray(rebalance.moves));

    assert.deepEqual(await json(0, 'collections', 'drop', 'other'), { dropped: true });
  });

  it('cli json - errors: {"error": {code, message}} on one stdout line, the exit code of the class; without --json, the code on stderr', async () => {
    await jsonError('NOT_FOUND', /collection 'nope' does not exist/, 'get', 'nope', 'a');
    const text = await shoal('get', 'nope', 'a');
    assert.equal(text.code, EXIT_BY_CODE.NOT_FOUND);
    assert.equal(text.stdout, '');
    assert.equal(text.stderr.trim(), "error: NOT_FOUND: collection 'nope' does not exist");

    await jsonError('NOT_FOUND', /does not exist/, 'collections', 'describe', 'nope');
    await jsonError('NOT_FOUND', /^collection 'nope' does not exist$/, 'upsert', 'nope', '--file', join(dir, 'docs.jsonl'));
    await jsonError('ALREADY_EXISTS', /exists with different settings: dim 4 \(asked 5\)/, 'collections', 'create', 'docs', '--dim', '5', '--shards', '2', '--replicas', '1', '--metric', 'l2');
    await jsonError('INVALID_ARGUMENT', /vector has 3 dimensions/, 'search', 'docs', '--vector', '[1, 2, 3]');
    const many = join(dir, 'many-queries.jsonl');
    writeFileSync(many, `${Array.from({ length: 101 }, () => JSON.stringify({ vector: [1, 2, 3, 4] })).join('\n')}\n`);
    await jsonError('PAYLOAD_TOO_LARGE', /queries has 101 items; the limit is 100/, 'search-batch', 'docs', '--file', many);
    await jsonError('UNAVAILABLE', /replicas 3 needs 3 nodes up; 2 are up/, 'collections', 'create', 'wide', '--dim', '2', '--replicas', '3');
    await jsonError('TIMEOUT', /deadline|no answer/, 'search', 'docs', '--vector', '[1, 2, 3, 4]', '--timeout', '1');
    const internal = await shoal('collections', 'create', 'fault-internal', '--dim', '2', '--replicas', '1');
    assert.equal(internal.code, 0, internal.stderr);
    await jsonError('INTERNAL', /injected fault/, 'search', 'fault-internal', '--vector', '[1, 0]');

    // a mistake on the command line: exit 2, with --json the same error shape
    const usage = await shoal('search', 'docs', '--vector', '[1, 2, 3, 4]', '--k', 'abc', '--json');
    assert.equal(usage.code, EXIT_USAGE);
    assert.deepEqual(JSON.parse(usage.stdout), { error: { code: 'INVALID_ARGUMENT', message: '--k must be 1 to 1000, got abc' } });
    const usageText = await shoal('search', 'docs', '--vector', '[1, 2, 3, 4]', '--k', 'abc');
    assert.equal(usageText.code, EXIT_USAGE);
    assert.match(usageText.stderr, /^error: --k must be 1 to 1000, got abc\n\nshoal search <collection>/);

    // no cluster there at all
    const r = await new Promise<Run>((resolve) => {
      execFile(process.execPath, [CLI, 'count', 'docs', '--json', '--nats', 'nats://127.0.0.1:1'], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }));
    });
    assert.equal(r.code, EXIT_BY_CODE.UNAVAILABLE, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'UNAVAILABLE');
  });

  it('cli upsert - a bad line is named by its file line; the lines before it are loaded, and --resume goes on from it', async () => {
    await json(0, 'collections', 'create', 'lines', '--dim', '4', '--shards', '2', '--replicas', '1');
    const good = points(1000);
    const bad = [...good];
    bad[700] = JSON.stringify({ id: 'p700', vector: [1, 2, 3] });
    const file = join(dir, 'lines.jsonl');
    writeFileSync(file, `${bad.join('\n')}\n`);

    const r = await shoal('upsert', 'lines', '--file', file, '--batch', '200');
    assert.equal(r.code, EXIT_BY_CODE.INVALID_ARGUMENT, r.stderr);
    assert.match(r.stderr, /error: INVALID_ARGUMENT: line 701: vector has 3 dimensions; the collection has 4; 700 points in 4 batches were upserted before it; run again with --resume to go on from line 701/);
    assert.deepEqual(await json(0, 'count', 'lines', '--consistency', 'strong'), { count: 700 });
    const e = await json<{ error: { code: string; message: string } }>(EXIT_BY_CODE.INVALID_ARGUMENT, 'upsert', 'lines', '--file', file, '--batch', '200');
    assert.match(e.error.message, /^line 701: vector has 3 dimensions/);

    // the line fixed, --resume loads what is left, from line 701
    writeFileSync(file, `${good.join('\n')}\n`);
    const resumed = await json(0, 'upsert', 'lines', '--file', file, '--batch', '200', '--resume');
    assert.equal(resumed['resumedAfterLine'], 700);
    assert.equal(resumed['upserted'], 300);
    assert.deepEqual(await json(0, 'count', 'lines', '--consistency', 'strong'), { count: 1000 });
    const text = await shoal('upsert', 'lines', '--file', file, '--resume');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /upserted 0 points into 'lines' in 0 batches, .*resumed after line 1,000/);
    assert.equal(readdirSync(join(stateDir, 'upsert')).filter((f) => f.startsWith('lines-')).length, 1, 'one progress record for the file and collection');

    // lines appended since: the next --resume loads them
    writeFileSync(file, `${[...good, ...points(5, 4, 1000)].join('\n')}\n`);
    assert.equal((await json(0, 'upsert', 'lines', '--file', file, '--resume'))['upserted'], 5);

    // a file that changed before the recorded line: refused, nothing loaded
    writeFileSync(file, `${[JSON.stringify({ id: 'changed', vector: [1, 1, 1, 1] }), ...good.slice(1)].join('\n')}\n`);
    const changed = await shoal('upsert', 'lines', '--file', file, '--resume');
    assert.equal(changed.code, EXIT_USAGE, changed.stderr);
    assert.match(changed.stderr, /is not the file an earlier run loaded up to line 1005 .*remove .*lines-.*\.json to load it from the start/);
    assert.deepEqual(await json(0, 'count', 'lines', '--consistency', 'strong'), { count: 1005 });
  });

  it('cli upsert - --skip-invalid reports each bad line on stderr, loads the rest, counts them, and exits 5', async () => {
    await json(0, 'collections', 'create', 'skips', '--dim', '4', '--replicas', '1');
    const lines = points(10);
    lines[2] = JSON.stringify({ id: 'p2', vector: [1, 2, 3] });
    lines[6] = '{"id": "p6", "vector": [1,';
    lines[8] = JSON.stringify({ id: '', vector: [1, 2, 3, 4] });
    const file = join(dir, 'skips.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await shoal('upsert', 'skips', '--file', file, '--skip-invalid', '--batch', '3');
    assert.equal(r.code, EXIT_SKIPPED, r.stderr);
    assert.match(r.stderr, /^skipped line 3: vector has 3 dimensions; the collection has 4$/m);
    assert.match(r.stderr, /^skipped line 7: not valid JSON/m);
    assert.match(r.stderr, /^skipped line 9: id /m);
    assert.match(r.stdout, /upserted 7 points into 'skips' in 3 batches, .*3 invalid lines skipped/);
    assert.deepEqual(await json(0, 'count', 'skips', '--consistency', 'strong'), { count: 7 });
    const summary = await json<{ upserted: number; skipped: { line: number; message: string }[] }>(EXIT_SKIPPED, 'upsert', 'skips', '--file', file, '--skip-invalid');
    assert.deepEqual(summary.skipped.map((s) => s.line), [3, 7, 9]);
    assert.equal(summary.skipped[0]?.message, 'vector has 3 dimensions; the collection has 4');
    assert.equal(summary.upserted, 7);
  });

  it('cli json - a search some shards do not answer prints the partial reply and exits 4; status exits 3', async () => {
    // the last test: it stops the node that holds shard 1 of 'docs' (one replica per shard)
    const d = await json<{ collection: { shards: { shard: number; leader: string | null }[] } }>(0, 'collections', 'describe', 'docs');
    const holder = d.collection.shards[1]?.leader;
    const other = d.collection.shards[0]?.leader;
    assert.ok(holder && other && holder !== other, `the two shards on the two nodes: ${JSON.stringify(d)}`);
    await cluster.stopNode(holder);

    const r = await json<{ hits: { id: string }[]; coverage: { shards: number; answered: number; failed: { shard: number; reason: string }[] }; partial: boolean }>(
      EXIT_PARTIAL, 'search', 'docs', '--vector', '[1, 2, 3, 4]', '--k', '3', '--timeout', '2000',
    );
    assert.equal(r.partial, true);
    assert.equal(r.coverage.answered, 1);
    assert.deepEqual(r.coverage.failed.map((f) => f.shard), [1]);
    assert.ok(r.hits.length > 0, 'the hits of the shard that answered');
    const text = await shoal('search', 'docs', '--vector', '[1, 2, 3, 4]', '--k', '3', '--timeout', '2000');
    assert.equal(text.code, EXIT_PARTIAL, text.stderr);
    assert.match(text.stderr, /hits from 1\/2 shards \(PARTIAL: shard 1 /);
    const queries = join(dir, 'queries.jsonl');
    await json(EXIT_PARTIAL, 'search-batch', 'docs', '--file', queries, '--timeout', '2000');

    const status = await json<{ health: { healthy: boolean } }>(EXIT_DEGRADED, 'status');
    assert.equal(status.health.healthy, false);
  });
});
