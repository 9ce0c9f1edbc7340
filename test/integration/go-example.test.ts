/**
 * The Go example (examples/go/shoal-go, on Debian's nats.go) built with Debian's Go, offline, and
 * run against a real three-node cluster: create, upsert of 10,001 points from files (one request
 * over the points limit, then split in two), search, get from stdin, an error reply, no responders,
 * a timeout and a body over the NATS server's max_payload.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TestCluster } from '../helpers/cluster.js';

const SOURCE = new URL('../../../examples/go/shoal-go', import.meta.url).pathname;
/** Where Debian's golang-github-nats-io-go-nats-dev puts nats.go: a GOPATH. */
const DEBIAN_GOPATH = '/usr/share/gocode';
const SETUP = 'run `bash scripts/setup.sh` (it installs golang-go and golang-github-nats-io-go-nats-dev with apt-get)';

const run = promisify(execFile);
let dir: string;
let bin: string;
let cluster: TestCluster;
let nc: NatsConnection;

function findGo(): string {
  for (const p of [...(process.env['PATH'] ?? '').split(':').filter(Boolean).map((d) => join(d, 'go')), '/usr/lib/go/bin/go']) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new Error(`this test needs Go: ${SETUP}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-go-'));
  const go = findGo();
  if (!existsSync(join(DEBIAN_GOPATH, 'src/github.com/nats-io/nats.go/nats.go'))) {
    throw new Error(`this test needs nats.go in ${DEBIAN_GOPATH}: ${SETUP}`);
  }
  bin = join(dir, 'shoal-go');
  // GOPATH mode on Debian's packaged sources: nothing is downloaded (GOPROXY=off makes sure).
  const env = { ...process.env, GO111MODULE: 'off', GOPATH: DEBIAN_GOPATH, GOCACHE: join(dir, 'gocache'), GOPROXY: 'off', GOFLAGS: '' };
  const started = Date.now();
  await run(go, ['build', '-o', bin, '.'], { cwd: SOURCE, env });
  console.log(`go build (empty GOCACHE): ${Date.now() - started} ms`);
  cluster = await TestCluster.start({ nodes: 3 });
  nc = await connect({ servers: cluster.nats.url });
});

after(async () => {
  await nc?.close();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs shoal-go against the cluster, with `stdin` (if given) as its standard input; never throws on a non-zero exit. */
function shoalGo(args: string[], stdin?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['-s', cluster.nats.url, ...args], { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A shoal-go that fails before reading its input closes the pipe: its exit says why, not EPIPE.
    p.stdin?.on('error', () => undefined);
    if (stdin !== undefined) p.stdin?.end(stdin);
  });
}

function ok(r: Result): Record<string, unknown> {
  assert.equal(r.code, 0, `shoal-go failed: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Point i of the test set: a 100 × 101 grid, so the nearest point to any query is plain to see. */
function point(i: number): { id: string; vector: number[] } {
  return { id: `p${i}`, vector: [i % 100, Math.floor(i / 100), 0.5, 1] };
}

function writeBody(name: string, body: unknown): { path: string; bytes: number } {
  const path = join(dir, name);
  const text = JSON.stringify(body);
  writeFileSync(path, text);
  return { path, bytes: Buffer.byteLength(text) };
}

describe('go example', () => {
  it('go example - creates a collection, upserts 10,001 points from files (split in two: one upsert takes 10,000), searches and gets', async () => {
    const created = ok(await shoalGo(['shoal.v1.admin.collections.create', JSON.stringify({ name: 'grid', dim: 4, metric: 'l2', shards: 2 })]));
    assert.equal((created['collection'] as { name: string }).name, 'grid');

    const points = Array.from({ length: 10_001 }, (_, i) => point(i));
    const all = writeBody('all.json', { points, timeoutMs: 30_000 });
    assert.ok(all.bytes < 1024 * 1024, `10,001 points of dim 4 fit the default max_payload (${all.bytes} bytes)`);
    // One request with all of them is over the protocol's limit: an error reply, exit 1, the code.
    const tooMany = await shoalGo(['-f', all.path, 'shoal.v1.grid.upsert']);
    assert.equal(tooMany.code, 1, tooMany.stderr);
    assert.equal((JSON.parse(tooMany.stdout) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');
    assert.match(tooMany.stderr, /^PAYLOAD_TOO_LARGE \(status 413\): .*10001.*10000/m);

    // Split: 10,000 from a file, the last one from stdin.
    const first = writeBody('first.json', { points: points.slice(0, 10_000), timeoutMs: 30_000, requestId: 'grid-part-1' });
    assert.deepEqual(ok(await shoalGo(['-f', first.path, 'shoal.v1.grid.upsert'])), { upserted: 10_000 });
    assert.deepEqual(ok(await shoalGo(['-f', '-', 'shoal.v1.grid.upsert'], JSON.stringify({ points: points.slice(10_000), requestId: 'grid-part-2' }))), { upserted: 1 });
    assert.deepEqual(ok(await shoalGo(['shoal.v1.grid.count', '{"consistency": "strong"}'])), { count: 10_001 });

    const search = ok(await shoalGo(['shoal.v1.grid.search', JSON.stringify({ vector: [37.1, 42.2, 0.5, 1], k: 3 })])) as { hits: { id: string; distance: number }[]; partial: boolean };
    assert.equal(search.partial, false);
    assert.equal(search.hits[0]?.id, 'p4237');
    assert.ok(Math.abs((search.hits[0]?.distance ?? 1) - 0.05) < 1e-4, `squared distance 0.1² + 0.2², got ${search.hits[0]?.distance}`);
    const last = ok(await shoalGo(['shoal.v1.grid.search', JSON.stringify({ vector: [0, 100, 0.5, 1], k: 1 })])) as { hits: { id: string }[] };
    assert.equal(last.hits[0]?.id, 'p10000', 'the point sent on its own is there too');

    const got = ok(await shoalGo(['-f', '-', 'shoal.v1.grid.get'], JSON.stringify({ ids: ['p10000', 'p4237', 'nope'] }))) as { points: { id: string; vector: number[] }[] };
    assert.deepEqual(got.points, [point(10_000), point(4237)]);
  });

  it('go example - an error reply exits 1 and names its code and status', async () => {
    const r = await shoalGo(['shoal.v1.grid.search', '{"vector": [1, 2]}']);
    assert.equal(r.code, 1);
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
    assert.match(r.stderr, /^INVALID_ARGUMENT \(status 400\): .*dimensions/m);
    const missing = await shoalGo(['shoal.v1.nowhere.count']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^NOT_FOUND \(status 404\)/m);
  });

  it('go example - a wrong subject says no responders, names the subject and what it means', async () => {
    for (const subject of ['shaol.v1.grid.search', 'shoal.v1.grid.serch']) {
      const r = await shoalGo([subject, '{"vector": [1, 2, 3, 4]}']);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`no responders on "${subject.replace(/\./g, '\\.')}" at nats://`));
      assert.match(r.stderr, /the subject is wrong/);
      assert.match(r.stderr, /--prefix/);
      assert.match(r.stderr, /or no Shoal cluster is connected to this NATS server/);
    }
  });

  it('go example - a subject that is subscribed but never answered is a timeout, with what it means for a write', async () => {
    const silent = nc.subscribe('elsewhere.silent'); // takes requests, answers none
    await nc.flush();
    const started = Date.now();
    const r = await shoalGo(['-timeout', '300ms', 'elsewhere.silent', '{}']);
    silent.unsubscribe();
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /timeout: no reply on "elsewhere\.silent" within 300ms/);
    assert.match(r.stderr, /same requestId/);
    assert.ok(Date.now() - started < 5_000);
  });

  it('go example - a body that is not JSON, or over the NATS server max_payload, is refused before sending (exit 2)', async () => {
    const typo = await shoalGo(['shoal.v1.grid.search', '{"vector": [1, 2, 3, 4]']);
    assert.equal(typo.code, 2, typo.stderr);
    assert.match(typo.stderr, /the body is not JSON/);

    const big = writeBody('big.json', { points: Array.from({ length: 10_000 }, (_, i) => ({ id: `b${i}`, vector: Array.from({ length: 16 }, (_, j) => (i * 16 + j) / 7) })) });
    assert.ok(big.bytes > 1024 * 1024);
    const r = await shoalGo(['-f', big.path, 'shoal.v1.grid.upsert']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`the body is ${big.bytes} bytes and this NATS server takes at most 1048576 \\(its max_payload\\): split it`));
  });
});
