/**
 * The operations verbs through the real `shoal` process: usage errors before anything is sent,
 * and, against a real nats-server with a responder standing in for the cluster (the coordinator
 * is not built yet), the requests of PROTOCOL.md "Operations" and what is printed of the replies.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { connectTo, startTestNats } from '../helpers/nats.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `shoal` without blocking this process's event loop (the responders live in it). */
function shoal(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

let server: NatsServer;
let nc: NatsConnection;
let dir: string;

before(async () => {
  server = await startTestNats();
  nc = await connectTo(server);
  dir = mkdtempSync(join(tmpdir(), 'shoal-cli-ops-'));
});

after(async () => {
  await nc.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Answers each request on `subject` with `answer(n, body)`; keeps the bodies it got. */
function respond(subject: string, answer: (n: number, body: Record<string, unknown>) => unknown): { sub: Subscription; bodies: Record<string, unknown>[] } {
  const bodies: Record<string, unknown>[] = [];
  const sub = nc.subscribe(subject, {
    callback: (_err, m: Msg) => {
      const body = m.json<Record<string, unknown>>();
      bodies.push(body);
      m.respond(new TextEncoder().encode(JSON.stringify(answer(bodies.length - 1, body))));
    },
  });
  return { sub, bodies };
}

/** The client sends what is left of its deadline, a millisecond or so under what it was given. */
const deadline = (b: Record<string, unknown> | undefined): number => b?.['timeoutMs'] as number;
const withoutDeadline = ({ timeoutMs: _t, ...b }: Record<string, unknown>): Record<string, unknown> => b;

const STATUS = {
  coordinator: 'n1', state: 'running', auto: true,
  throttle: { maxConcurrentMoves: 2, maxBytesPerSec: 52428800, replaceAfterMs: 60000 },
  moves: [{ id: 'm-41', collection: 'docs', shard: 1, from: 'n2', to: 'n4', reason: 'repair', phase: 'copy', bytesCopied: 18874368, bytesTotal: 94371840, startedAt: '2026-12-01T21:40:00Z' }],
  done: 12, failed: 0, pending: 0,
};

describe('shoal operations verbs', () => {
  it('cli ops - --help lists nodes, shards and rebalance', async () => {
    const r = await shoal('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /nodes\s+put a node in maintenance/);
    assert.match(r.stdout, /shards\s+hand a shard's leadership over/);
    assert.match(r.stdout, /rebalance\s+the rebalance coordinator/);
  });

  it('cli ops - usage errors exit 2 naming the flag and its limit, before connecting to anything', async () => {
    const nowhere = ['--nats', 'nats://127.0.0.1:1'];
    const cases: [string[], RegExp][] = [
      [['rebalance', 'configure', '--max-concurrent-moves', '0'], /^error: --max-concurrent-moves must be 1 to 64, got 0\n/],
      [['rebalance', 'configure', '--max-bytes-per-sec', '50M'], /'50M' is ambiguous; write 50MB \(powers of 1000\) or 50MiB \(powers of 1024\)/],
      [['rebalance', 'configure', '--replace-after-ms=-5'], /--replace-after-ms must be 1000 to 604800000 \(milliseconds\), got -5/],
      [['rebalance', 'configure', '--auto', 'maybe'], /--auto must be true or false, got maybe/],
      [['rebalance', 'configure'], /needs at least one of --max-concurrent-moves/],
      [['rebalance', 'status', '--dry-run'], /--dry-run is not an option of rebalance status/],
      [['rebalance', 'frobnicate'], /rebalance needs status, start, pause, resume or configure, not 'frobnicate'/],
      [['nodes', 'maintenance', 'n2'], /nodes maintenance needs on or off after the node id/],
      [['nodes', 'remove'], /nodes remove needs a node id/],
      [['shards', 'transfer-leader', 'docs', 'one'], /shard must be 0 to 255, got one/],
    ];
    for (const [args, message] of cases) {
      const r = await shoal(...args, ...nowhere);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.match(r.stderr, new RegExp(`\\n\\nshoal ${args[0]} `), 'the usage follows');
    }
  });

  it('cli ops - node and dev refuse bad zone, failure-detection and resource-limit settings before touching their data directory', async () => {
    const data = join(dir, 'never');
    const node = await shoal('node', '--id', 'n1', '--data', data, '--down-after-ms', '10');
    assert.equal(node.code, 2);
    assert.match(node.stderr, /--down-after-ms must be 1000 to 600000, got 10/);
    for (const [flag, value, message] of [
      ['--max-memory', '10', /--max-memory must be at least 16 MiB, got '10'/],
      ['--max-memory', '4G', /--max-memory: '4G' is ambiguous/],
      ['--min-free-disk', 'lots', /--min-free-disk must be a number of bytes ≥ 0/],
      ['--max-pending-requests', '0', /--max-pending-requests must be 1 to 1000000, got 0/],
    ] as const) {
      const r = await shoal('node', '--id', 'n1', '--data', data, flag, value);
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const zone = await shoal('node', '--id', 'n1', '--data', data, '--zone', 'eu west');
    assert.equal(zone.code, 2);
    assert.match(zone.stderr, /--zone "eu west" is not valid/);
    const dev = await shoal('dev', '--data', data, '--zones', 'a,,b');
    assert.equal(dev.code, 2);
    assert.match(dev.stderr, /--zones entry "" is not valid/);
    const devMs = await shoal('dev', '--data', data, '--replace-after-ms', '0');
    assert.equal(devMs.code, 2);
    assert.match(devMs.stderr, /--replace-after-ms must be 1000 to 604800000/);
    assert.equal(existsSync(data), false);
  });

  it('cli ops - nodes maintenance and remove send PROTOCOL.md\'s bodies once, and print the replies in words or raw', async () => {
    const m = respond('shoal.v1.admin.nodes.maintenance', (_n, b) => ({ node: b['node'], state: b['on'] ? 'maintenance' : 'up', leaders: 0 }));
    const rm = respond('shoal.v1.admin.nodes.remove', () => ({ node: 'n2', state: 'draining', moves: 6 }));
    try {
      const on = await shoal('nodes', 'maintenance', 'n2', 'on', '--nats', server.url);
      assert.equal(on.code, 0, on.stderr);
      assert.equal(on.stdout, 'n2 is in maintenance: it leads 0 shards and takes no new replicas\n');
      const off = await shoal('nodes', 'maintenance', 'n2', 'off', '--nats', server.url, '--json');
      assert.deepEqual(JSON.parse(off.stdout), { node: 'n2', state: 'up', leaders: 0 });
      assert.deepEqual(m.bodies.map(withoutDeadline), [{ node: 'n2', on: true }, { node: 'n2', on: false }], 'one request each');
      assert.ok(m.bodies.every((b) => deadline(b) > 29_000 && deadline(b) <= 30_000), 'with the 30 s deadline of a leadership wait');
      const removed = await shoal('nodes', 'remove', 'n2', '--nats', server.url, '--timeout', '2000');
      assert.equal(removed.code, 0, removed.stderr);
      assert.match(removed.stdout, /^n2 is draining: 6 moves take its replicas elsewhere/);
      assert.deepEqual(rm.bodies.map(withoutDeadline), [{ node: 'n2' }]);
      assert.ok(deadline(rm.bodies[0]) > 1_000 && deadline(rm.bodies[0]) <= 2_000, '--timeout is the deadline');
    } finally {
      m.sub.unsubscribe();
      rm.sub.unsubscribe();
    }
  });

  it('cli ops - an error reply prints the server\'s code and message and exits with the code of its class; with --json, the error reply itself', async () => {
    const rm = respond('shoal.v1.admin.nodes.remove', (_n, b) => ({ error: { code: 'NOT_FOUND', message: `node '${String(b['node'])}' was never registered` } }));
    try {
      const r = await shoal('nodes', 'remove', 'n9', '--nats', server.url);
      assert.equal(r.code, 11, 'NOT_FOUND (docs/cli.md)');
      assert.equal(r.stderr, "error: NOT_FOUND: node 'n9' was never registered\n");
      assert.equal(r.stdout, '');
      const j = await shoal('nodes', 'remove', 'n9', '--nats', server.url, '--json');
      assert.equal(j.code, 11);
      assert.equal(j.stdout, `${JSON.stringify({ error: { code: 'NOT_FOUND', message: "node 'n9' was never registered" } })}\n`);
    } finally {
      rm.sub.unsubscribe();
    }
  });

  it('cli ops - shards transfer-leader sends the collection, the shard and --to', async () => {
    const t = respond('shoal.v1.admin.shards.transfer-leader', (_n, b) => ({ collection: b['collection'], shard: b['shard'], leader: b['to'] ?? 'n3', term: 9 }));
    try {
      const r = await shoal('shards', 'transfer-leader', 'docs', '1', '--to', 'n4', '--nats', server.url);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'docs/1: n4 leads now (term 9)\n');
      await shoal('shards', 'transfer-leader', 'docs', '0', '--nats', server.url);
      assert.deepEqual(t.bodies.map(withoutDeadline), [{ collection: 'docs', shard: 1, to: 'n4' }, { collection: 'docs', shard: 0 }]);
      assert.ok(t.bodies.every((b) => deadline(b) > 29_000), 'with the 30 s deadline of a leadership wait');
    } finally {
      t.sub.unsubscribe();
    }
  });

  it('cli ops - rebalance start --dry-run, configure and status send their bodies and print the status', async () => {
    const start = respond('shoal.v1.admin.rebalance.start', () => STATUS);
    const conf = respond('shoal.v1.admin.rebalance.configure', () => STATUS);
    try {
      const dry = await shoal('rebalance', 'start', '--dry-run', '--nats', server.url);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^dry run: 1 move planned, none applied\n\nID {4}SHARD {3}MOVE {5}REASON\nm-41  docs\/1  n2 → n4  repair\n$/);
      const c = await shoal('rebalance', 'configure', '--max-concurrent-moves', '4', '--max-bytes-per-sec', '10MiB', '--auto', 'false', '--nats', server.url);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /^coordinator n1: running, auto on\nthrottle: at most 2 moves at once, 50 MiB\/s, dead nodes replaced after 1m\n/);
      assert.match(c.stdout, /m-41 {2}docs\/1 {2}n2 → n4 {2}repair {2}copy {3}18 MiB\/90 MiB \(20%\)/);
      assert.deepEqual(start.bodies.map(withoutDeadline), [{ dryRun: true }]);
      assert.deepEqual(conf.bodies.map(withoutDeadline), [{ maxConcurrentMoves: 4, maxBytesPerSec: 10485760, auto: false }]);
    } finally {
      start.sub.unsubscribe();
      conf.sub.unsubscribe();
    }
  });

  it('cli ops - rebalance status --watch on a pipe: a line per change until nothing is in flight, then exit 0', async () => {
    const st = respond('shoal.v1.admin.rebalance.status', (n) =>
      n === 0 ? STATUS : n === 1 ? { ...STATUS, moves: [{ ...STATUS.moves[0], phase: 'switch', bytesCopied: 94371840 }] } : { ...STATUS, moves: [], done: 13 },
    );
    try {
      const r = await shoal('rebalance', 'status', '--watch', '--nats', server.url);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, [
        'coordinator n1: running, auto on',
        'throttle: at most 2 moves at once, 50 MiB/s, dead nodes replaced after 1m',
        'moves: 1 in flight, 0 pending, 12 done, 0 failed',
        'm-41 docs/1 n2 → n4 (repair): copy 18 MiB/90 MiB (20%)',
        'm-41 docs/1: copy → switch',
        'm-41 docs/1 n2 → n4: ended',
        'moves: 0 in flight, 0 pending, 13 done, 0 failed',
        'no moves in flight or pending: 13 moves done, none failed',
        '',
      ].join('\n'));
    } finally {
      st.sub.unsubscribe();
    }
  });

  it('cli ops - rebalance status --watch stops on Ctrl-C with exit code 130', async () => {
    const st = respond('shoal.v1.admin.rebalance.status', () => STATUS);
    try {
      const child = spawn(process.execPath, [CLI, 'rebalance', 'status', '--watch', '--nats', server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('m-41')) resolve();
        });
        child.once('exit', (c) => reject(new Error(`exited early with ${c}`)));
      });
      await new Promise((r) => setTimeout(r, 1_500)); // at least one more poll, which prints nothing new
      const code = await new Promise<number | null>((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGINT');
      });
      assert.equal(code, 130);
      assert.ok(st.bodies.length >= 2, 'it polled again');
      assert.equal(out.split('\n').filter((l) => l.startsWith('m-41')).length, 1, 'an unchanged status prints nothing');
    } finally {
      st.sub.unsubscribe();
    }
  });
});
