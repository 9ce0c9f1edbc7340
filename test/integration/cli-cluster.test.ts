/**
 * The README's path, end to end, through real processes: `shoal dev` starts a cluster, the CLI
 * creates a collection, loads a JSON-lines file, searches, reads and reports status; Ctrl-C stops
 * everything; `shoal dev` run again finds the data.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startShoal, type StartedShoal } from '../helpers/run-cli.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Dev = StartedShoal;

function startDev(data: string): Promise<Dev> {
  return startShoal(['dev', '--nodes', '3', '--port', '0', '--data', data]);
}

async function shoal(url: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  // upsert keeps its progress records in the state directory: the test's own, not the home directory
  return run(process.execPath, [CLI, ...args, '--nats', url], { encoding: 'utf8', env: { ...process.env, SHOAL_STATE_DIR: join(dir, 'state') } });
}

async function until(fn: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function stopDev(dev: Dev): Promise<number | null> {
  return new Promise((resolve) => {
    dev.proc.once('exit', (code) => resolve(code));
    dev.proc.kill('SIGINT');
  });
}

/** Processes whose command line names `data` (its nodes, and its nats-server's store). */
function processesUnder(data: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue; // exited meanwhile
    }
    if (cmd.includes(data) && !cmd.includes('--test')) found.push(`${pid}: ${cmd.slice(0, 120)}`);
  }
  return found;
}

/** Processes whose command line runs `shoal node` on a directory under `data`. */
function nodeProcessesOf(data: string): number {
  return processesUnder(data).filter((p) => p.includes(' node ')).length;
}

describe('shoal dev and the CLI', () => {
  it('cli - a hangup of shoal dev\'s process group (a closed terminal) leaves nothing of it running; it starts again on the same data, and a second one there refuses at once', async () => {
    const data = join(dir, 'hup');
    const proc = spawn(process.execPath, [CLI, 'dev', '--nodes', '1', '--port', '0', '--data', data], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      proc.once('exit', (c) => reject(new Error(`shoal dev exited with ${c}`)));
    });
    assert.match(url, /^nats:/);
    await new Promise((r) => setTimeout(r, 1_000));
    process.kill(-(proc.pid as number), 'SIGHUP');
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = processesUnder(data);
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, [], 'processes of the hung-up shoal dev still running');
    const again = await startDev(data);
    try {
      await until(async () => (JSON.parse((await shoal(again.url, 'status', '--json')).stdout) as { nodes: { state: string }[] }).nodes.some((x) => x.state === 'up'), 'a node up after the restart');
      // A second shoal dev on the same data refuses at once, naming the running one.
      const t0 = Date.now();
      await assert.rejects(run(process.execPath, [CLI, 'dev', '--nodes', '1', '--port', '0', '--data', data], { encoding: 'utf8', timeout: 10_000 }), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 3, e.stderr);
        assert.match(e.stderr, new RegExp(`in use by another shoal dev \\(pid ${again.proc.pid}\\)`));
        return true;
      });
      assert.ok(Date.now() - t0 < 5_000, 'the refusal is immediate');
    } finally {
      assert.equal(await stopDev(again), 0, `shoal dev starts again on the same data and stops cleanly: ${again.stderr().slice(-500)}`);
    }
  });

  it('cli - dev cluster: create, upsert a file with a summary, search, get, status; Ctrl-C stops all; a restart finds the data', async () => {
    const data = join(dir, 'data');
    const dev = await startDev(data);
    try {
      assert.match(dev.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
      await until(async () => {
        const { stdout } = await shoal(dev.url, 'status', '--json');
        return (JSON.parse(stdout) as { nodes: { state: string }[] }).nodes.filter((n) => n.state === 'up').length === 3;
      }, 'three nodes up');

      const created = await shoal(dev.url, 'collections', 'create', 'docs', '--dim', '3', '--shards', '2', '--metric', 'l2');
      assert.match(created.stdout, /created 'docs': dim 3, l2, 2 shards × 3 replicas/);

      const file = join(dir, 'points.jsonl');
      writeFileSync(file, Array.from({ length: 1200 }, (_, i) => JSON.stringify({ id: `p${i}`, vector: [i, i % 7, 1], metadata: { odd: i % 2 === 1 } })).join('\n') + '\n');
      const up = await shoal(dev.url, 'upsert', 'docs', '--file', file, '--batch', '500');
      assert.match(up.stdout, /upserted 1,200 points into 'docs' in 3 batches/);
      assert.match(up.stderr, /1,200\/1,200 points/, 'progress shows the total');

      const found = await shoal(dev.url, 'search', 'docs', '--vector', '[10, 3, 1]', '--k', '2', '--filter', '{"odd": false}', '--consistency', 'strong', '--json');
      const r = JSON.parse(found.stdout) as { hits: { id: string; distance: number }[]; partial: boolean };
      // p8 and p12 are both at squared distance 8: the tie goes by id in UTF-8 order, 'p12' < 'p8'
      assert.deepEqual(r.hits.map((h) => h.id), ['p10', 'p12']);
      assert.deepEqual(r.hits.map((h) => h.distance), [0, 8]);
      assert.equal(r.partial, false);

      const got = await shoal(dev.url, 'get', 'docs', 'p5', 'missing', '--consistency', 'strong');
      assert.match(got.stdout, /"id":"p5","vector":\[5,5,1\]/);
      assert.match(got.stderr, /not found: missing/);

      // the verbs of the protocol beyond the README's path: search-batch, delete, count, --shard-keys
      const queries = join(dir, 'queries.jsonl');
      writeFileSync(queries, `${JSON.stringify({ vector: [10, 3, 1], k: 1 })}\n${JSON.stringify({ vector: [20, 6, 1], k: 1, consistency: 'strong' })}\n`);
      const batch = JSON.parse((await shoal(dev.url, 'search-batch', 'docs', '--file', queries, '--json')).stdout) as { results: { hits: { id: string }[] }[] };
      assert.deepEqual(batch.results.map((r) => r.hits.map((h) => h.id)), [['p10'], ['p20']]);
      const deleted = await shoal(dev.url, 'delete', 'docs', 'p1100', 'p1101', 'missing');
      assert.match(deleted.stdout, /deleted 2 of 3 ids from 'docs'/);
      assert.deepEqual(JSON.parse((await shoal(dev.url, 'count', 'docs', '--consistency', 'strong', '--json')).stdout), { count: 1198 });
      assert.equal((await shoal(dev.url, 'count', 'docs', '--consistency', 'strong')).stdout.trim(), '1198');
      await assert.rejects(shoal(dev.url, 'search', 'docs', '--vector', '[1, 1, 1]', '--shard-keys', 'a,b'), /shardKeys is only for collections with custom sharding/);
      await assert.rejects(shoal(dev.url, 'search', 'docs', '--vector', '[1, 1, 1]', '--k', 'abc'), (e: { code: number; stderr: string }) => e.code === 2 && /--k must be 1 to 1000, got abc/.test(e.stderr));
      await shoal(dev.url, 'upsert', 'docs', '--file', file, '--batch', '500');

      const described = await shoal(dev.url, 'collections', 'describe', 'docs');
      assert.match(described.stdout, /docs: dim 3, l2, 1200 points/);
      const status = await shoal(dev.url, 'status');
      assert.match(status.stdout, /healthy: 2 shards, 0 degraded/);

      // a bad line: the command stops at it, says where, and says what was loaded before it
      const bad = join(dir, 'bad.jsonl');
      writeFileSync(bad, `${JSON.stringify({ id: 'q1', vector: [1, 1, 1] })}\n{"id": "q2", "vector": [1,\n`);
      await assert.rejects(shoal(dev.url, 'upsert', 'docs', '--file', bad), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 10, e.stderr);
        assert.match(e.stderr, /error: INVALID_ARGUMENT: line 2: not valid JSON .*; 1 point in 1 batch was upserted before it; run again with --resume to go on from line 2/);
        return true;
      });
      await assert.rejects(shoal(dev.url, 'upsert', 'docs', '--file', join(dir, 'nope.jsonl')), /cannot read/);
    } finally {
      assert.equal(await stopDev(dev), 0, `shoal dev stops cleanly on Ctrl-C: ${dev.stderr().slice(-500)}`);
    }
    assert.equal(nodeProcessesOf(data), 0, 'no node process outlives shoal dev');

    const again = await startDev(data);
    try {
      await until(async () => {
        const { stdout } = await shoal(again.url, 'collections', 'list', '--json');
        // the 1,200 of the file, and q1 of bad.jsonl, loaded before its bad line
        return (JSON.parse(stdout) as { collections: { name: string; count: number }[] }).collections.some((c) => c.name === 'docs' && c.count === 1201);
      }, 'the collection and its 1,201 points after a restart');
    } finally {
      assert.equal(await stopDev(again), 0);
    }
  });
});
