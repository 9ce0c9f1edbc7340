/**
 * `shoal console` against a real 3-node cluster: every command through `--exec` (and one through
 * standard input), and the interactive console through a real pseudo-terminal (`script` from
 * util-linux): the prompt, TAB completion of an actor address, history across a restart, `ask`
 * to a replica, `watch` ended by Ctrl-C with the console still there, tables fitted to the
 * terminal, and a wrong command answered with help.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { TestCluster } from '../helpers/cluster.js';
import { CLI, runShoal, type CliRun } from '../helpers/run-cli.js';

let cluster: TestCluster;
let client: ShoalClient;
let dir: string;
let traceFile: string;
/** The actor of docs' shard 0 on n1: `n1/replica.<uid>.0`. */
let replica: string;

function scriptBinary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

before(async () => {
  assert.ok(scriptBinary(), 'the console tests need `script` (util-linux; Debian: bsdutils) for a pseudo-terminal: apt-get install bsdutils, or run scripts/setup.sh');
  dir = mkdtempSync(join(tmpdir(), 'shoal-console-'));
  traceFile = join(dir, 'spans.jsonl');
  cluster = await TestCluster.start({ nodes: 3, env: { SHOAL_TRACE_FILE: traceFile } });
  client = await cluster.client();
  await client.createCollection({ name: 'docs', dim: 3, shards: 1, replicas: 3 });
  await client.collection('docs').upsert([
    { id: 'p1', vector: [1, 0, 0], metadata: { lang: 'en' } },
    { id: 'p2', vector: [0, 1, 0], metadata: { lang: 'fr' } },
    { id: 'p3', vector: [0.9, 0.1, 0], metadata: { lang: 'en' } },
  ]);
});

after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `shoal console --exec <commands>` on the cluster. */
function exec(commands: string, ...flags: string[]): Promise<CliRun> {
  return runShoal(['console', '--nats', cluster.nats.url, '--exec', commands, ...flags], { SHOAL_TRACE_FILE: traceFile });
}

/** The JSON documents of a `--json` run, one per line. */
function docs(r: CliRun): Record<string, unknown>[] {
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function noStackTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace in:\n${text}`);
}

describe('console --exec', () => {
  it('console - the cluster commands print their tables and, with --json, one document each', async () => {
    const text = await exec('nodes; collections; describe docs; shard docs/0; count docs; status');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^NODE\s+STATE\s+LAST HEARTBEAT MS\s+REPLICAS\s+LEADERS$/m);
    for (const n of ['n1', 'n2', 'n3']) assert.match(text.stdout, new RegExp(`^${n}\\s+up\\s`, 'm'));
    assert.match(text.stdout, /^docs\s+3\s+cosine\s+1\s+3\s+3$/m, 'collections: dim, metric, shards, replicas, points');
    assert.match(text.stdout, /^docs: dim 3, cosine, 3 points, 3 replicas per shard/m);
    assert.match(text.stdout, /^NODE\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+MATCH\s+LAG\s+LEASES\s+READS\s+HEALTH$/m);
    assert.match(text.stdout, /healthy: 1 shards, 0 degraded/);

    const r = await exec('nodes; collections; describe docs; shard docs/0; count docs; status', '--json');
    assert.equal(r.code, 0, r.stderr);
    const [nodes, collections, described, shard, count, status] = docs(r) as [any, any, any, any, any, any];
    assert.deepEqual(nodes.nodes.map((n: { id: string }) => n.id).sort(), ['n1', 'n2', 'n3']);
    assert.equal(collections.collections[0].name, 'docs');
    assert.equal(described.collection.count, 3);
    // every replica answers for itself with its Raft state; exactly one leads, and all applied the upsert
    assert.equal(shard.replicas.length, 3);
    const statuses = shard.replicas.map((x: { status: { role: string; term: number; commitIndex: number; appliedIndex: number } }) => x.status);
    assert.equal(statuses.filter((s: { role: string }) => s.role === 'leader').length, 1);
    const leader = statuses.find((s: { role: string }) => s.role === 'leader');
    for (const s of statuses) {
      assert.equal(s.term, leader.term);
      assert.ok(s.appliedIndex >= 2, `applied ${s.appliedIndex}: the upsert (after the leader's no-op)`);
    }
    replica = (shard.replicas as { actor: string }[]).map((x) => x.actor).find((a) => a.startsWith('n1/')) as string;
    assert.match(replica, /^n1\/replica\.[0-9a-z]+\.0$/);
    assert.equal(count.count, 3);
    assert.equal(status.health.healthy, true);
  });

  it('console - actors, inspect, ask and tell reach the actors of every node', async () => {
    const r = await exec(`actors; actors --node n2; inspect ${replica}; ask ${replica} {"type": "status"}; ask ${replica} {"type": "count", "consistency": "eventual", "timeoutMs": 2000}; tell n1/replicas {"type": "collect-all"}`, '--json');
    assert.equal(r.code, 0, r.stderr);
    const [all, n2, inspected, status, count, told] = docs(r) as [any, any, any, any, any, any];
    assert.deepEqual(all.systems.map((s: { system: string }) => s.system), ['n1', 'n2', 'n3']);
    const kinds = new Set(all.systems.flatMap((s: { actors: { kind: string }[] }) => s.actors.map((a) => a.kind)));
    for (const k of ['router', 'membership', 'coordinator', 'replica-manager', 'replica']) assert.ok(kinds.has(k), `an actor of kind ${k}`);
    assert.deepEqual(n2.systems.map((s: { system: string }) => s.system), ['n2']);
    assert.equal(inspected.kind, 'replica');
    assert.equal(inspected.state.collection, 'docs');
    assert.equal(inspected.state.shard, 0);
    assert.ok(inspected.mailboxCapacity > 0 && inspected.processed > 0);
    assert.equal(inspected.raft.node, 'n1');
    assert.equal(status.reply.node, 'n1');
    assert.equal(status.reply.count, 3);
    assert.deepEqual(count.reply, { count: 3 });
    assert.equal(told.sent, true);

    const text = await exec(`actors; ask ${replica} {"type": "count", "consistency": "eventual", "timeoutMs": 2000}`);
    assert.match(text.stdout, /^ACTOR\s+KIND\s+STATUS\s+MAILBOX\s+HANDLED\s+RESTARTS\s+STATE$/m);
    assert.match(text.stdout, new RegExp(`^${replica.replace('.', '\\.')}\\s+replica\\s+running\\s+\\d+/\\d+\\s+\\d+\\s+0\\s+collection=docs shard=0 role=`, 'm'));
    assert.match(text.stdout, /"count": 3/);
    // an actor that is not there, and an error the actor answers, are one line each
    const missing = await exec('ask n1/nobody {}');
    assert.equal(missing.code, 14);
    assert.match(missing.stderr, /^error: UNAVAILABLE: no actor n1\/nobody/m);
    noStackTrace(missing.stdout + missing.stderr);
  });

  it('console - search by vector and by a stored point, get and count', async () => {
    const text = await exec('search docs [1, 0, 0] 2; search docs @p1 3 --filter {"lang": "fr"}; get docs p2 nope');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^1\s+p1\s+0\s+\{"lang":"en"\}$/m);
    assert.match(text.stdout, /^2\s+p3\s/m);
    assert.match(text.stdout, /^1\s+p2\s+1\s+\{"lang":"fr"\}$/m, 'the filter keeps p2 only');
    assert.match(text.stdout, /^\{"id":"p2","vector":\[0,1,0\],"metadata":\{"lang":"fr"\}\}$/m);
    assert.match(text.stdout, /^not found: nope$/m);
    const r = await exec('search docs @p3 1; search docs @nothing', '--json');
    const [hits, missing] = docs(r) as [any, any];
    assert.equal(hits.hits[0].id, 'p3');
    assert.equal(missing.error.code, 'NOT_FOUND');
    assert.equal(r.code, 11, 'the first failure is the exit code');
  });

  it('console - the operations: transfer-leader, maintenance, rebalance, reshard', async () => {
    const before = ((docs(await exec('describe docs', '--json'))[0] as any).collection.shards[0].leader) as string;
    const to = ['n1', 'n2', 'n3'].find((n) => n !== before) as string;
    const r = await exec(`transfer-leader docs/0 --to ${to}; maintenance ${to} on; maintenance ${to} off; rebalance; rebalance start --dry-run`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^docs/0: ${to} leads now \\(term \\d+\\)$`, 'm'));
    assert.match(r.stdout, new RegExp(`^${to} is in maintenance: it leads 0 shards`, 'm'));
    assert.match(r.stdout, new RegExp(`^${to} is up: out of maintenance`, 'm'));
    assert.match(r.stdout, /^coordinator n\d: \w+, auto on$/m);
    assert.match(r.stdout, /^dry run: /m);
    await client.createCollection({ name: 'grow', dim: 2, shards: 1, replicas: 1 });
    const rs = await exec('reshard grow 2', '--json');
    assert.equal(rs.code, 0, rs.stdout);
    assert.equal((docs(rs)[0] as any).collection.resharding.to, 2);
  });

  it('console - watch shows live messages decoded, and trace prints a trace as a tree', async () => {
    const w = await exec('watch _shoal.hb.> --count 2', '--json');
    assert.equal(w.code, 0, w.stderr);
    const beats = docs(w) as { subject: string; encoding: string; value: { node: string } }[];
    assert.equal(beats.length, 2);
    for (const b of beats) {
      assert.match(b.subject, /^_shoal\.hb\.n[123]$/);
      assert.equal(b.encoding, 'cbor');
      assert.equal(b.subject, `_shoal.hb.${b.value.node}`);
    }
    const timed = await exec('watch no.such.subject --for 200; count docs');
    assert.match(timed.stdout, /^watch ended: 0 messages\n3$/m);

    // the nodes' span file holds the upsert of before() (router, shard leader): the trace with the
    // most spans, one whose spans have parents in the file (whatever the spans are named)
    assert.ok(existsSync(traceFile), 'the nodes write spans');
    const spans = readFileSync(traceFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; traceId: string; spanId: string; parentSpanId: string | null; startMs: number; durationMs: number });
    const ids = new Set(spans.map((s) => s.spanId));
    const lastEnd = new Map<string, number>();
    for (const s of spans) lastEnd.set(s.traceId, Math.max(lastEnd.get(s.traceId) ?? 0, s.startMs + s.durationMs));
    const byTrace = new Map<string, number>();
    // a trace that ended a while ago: no span of it is still to come while the console reads the file
    for (const s of spans) if (s.parentSpanId !== null && ids.has(s.parentSpanId) && (lastEnd.get(s.traceId) ?? 0) < Date.now() - 1_500) byTrace.set(s.traceId, (byTrace.get(s.traceId) ?? 0) + 1);
    const traceId = [...byTrace.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    assert.ok(traceId, `a trace of spans with parents among ${[...new Set(spans.map((s) => s.name))].slice(0, 20).join(', ')}`);
    const inTrace = spans.filter((s) => s.traceId === traceId);
    const t = await exec(`trace ${traceId}`);
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.match(t.stdout, new RegExp(`^trace ${traceId}: ${inTrace.length} spans?$`, 'm'));
    const lines = t.stdout.trim().split('\n').slice(1);
    assert.equal(lines.length, inTrace.length, 'a line per span');
    assert.ok(lines.some((l) => /^\s*[└├]─ \S/.test(l)), `spans under their parents:\n${t.stdout}`);
    for (const s of inTrace) assert.ok(lines.some((l) => l.includes(`${s.name}  (`)), `span ${s.name} shown`);
    const j = docs(await exec(`trace ${traceId}`, '--json'))[0] as { spans: { children: unknown[] }[] };
    assert.ok(j.spans.length >= 1 && j.spans.some((s) => s.children.length > 0), 'a tree, not a list');
  });

  it('console - a wrong command or argument is answered with help, never a stack trace; commands come on standard input too', async () => {
    const wrong = await exec('frobnicate; shard docs; ask n1 {}');
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /^unknown command 'frobnicate'$/m);
    assert.match(wrong.stderr, /^Commands \(TAB completes/m);
    assert.match(wrong.stderr, /^error: the shard must be <collection>\/<n> \(e\.g\. docs\/0\), got 'docs'$/m);
    assert.match(wrong.stderr, /^shard <collection>\/<n>$/m, 'the help of the command');
    assert.match(wrong.stderr, /^error: actor must be <node>\/<name>/m);
    noStackTrace(wrong.stdout + wrong.stderr);
    // a line that does not parse runs none of its commands (as a shell with an unclosed quote)
    const unclosed = await exec('count docs; search docs [1, 0');
    assert.equal(unclosed.code, 2);
    assert.equal(unclosed.stderr, 'error: unclosed [ at column 25\n');
    assert.equal(unclosed.stdout, '');
    const help = await exec('help; help watch', '--json');
    const [list, one] = docs(help) as [any, any];
    assert.ok(list.commands.length >= 18);
    assert.match(one.summary, /Ctrl-C/);

    const piped = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, 'console', '--nats', cluster.nats.url, '--json'], { stdio: ['pipe', 'pipe', 'inherit'] });
      let stdout = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.on('exit', (code) => resolve({ code, stdout }));
      p.stdin.end('count docs\nget docs p1 --no-vector\nexit\ncount docs\n');
    });
    assert.equal(piped.code, 0);
    assert.deepEqual(piped.stdout.trim().split('\n').map((l) => JSON.parse(l)), [{ count: 3 }, { points: [{ id: 'p1', metadata: { lang: 'en' } }] }], 'exit ends the script');
  });
});

/** The console on a pseudo-terminal of `cols` columns, through `script`. */
class Pty {
  private out = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string>, cols = 100) {
    const cmd = `stty cols ${cols} rows 40; exec '${process.execPath}' '${CLI}' console --nats ${cluster.nats.url}`;
    this.proc = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm', ...env } });
    this.proc.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
  }

  /** What the terminal showed, without its cursor and erase sequences. */
  text(from = 0): string {
    // eslint-disable-next-line no-control-regex
    return this.out.slice(from).replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');
  }

  get length(): number {
    return this.out.length;
  }

  write(keys: string): void {
    this.proc.stdin?.write(keys);
  }

  /** Waits until what came after `from` matches `re`; returns that text. */
  async until(re: RegExp, from = 0, timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const t = this.text(from);
      if (re.test(t)) return t;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`the terminal did not show ${re} within ${timeoutMs} ms; it showed:\n${this.text(from)}`);
  }
}

describe('console on a terminal', () => {
  it('console - prompt, TAB completion of an actor, ask, watch ended by Ctrl-C, fitted tables, help for a wrong command, history after a restart', async () => {
    const env = { XDG_STATE_HOME: join(dir, 'state') };
    const pty = new Pty(env, 100);
    try {
      await pty.until(/3 of 3 nodes up[\s\S]*shoal> $/);
      // TAB completes an actor address (the only actor of n1 whose name starts so)
      let at = pty.length;
      pty.write('inspect n1/rou\t');
      await pty.until(/inspect n1\/router $/, at);
      pty.write('\r');
      await pty.until(/n1\/router \(router, running\)[\s\S]*shoal> $/, at);

      at = pty.length;
      pty.write(`ask ${replica} {"type": "status"}\r`);
      const asked = await pty.until(/"followerReads"[\s\S]*shoal> $/, at);
      assert.match(asked, /"node": "n1"/);
      assert.match(asked, /"role": "(leader|follower)"/);

      at = pty.length;
      pty.write('watch _shoal.hb.>\r');
      await pty.until(/_shoal\.hb\.n\d cbor \{"node":"n\d"/, at);
      pty.write('\x03');
      await pty.until(/watch ended: \d+ messages?\nshoal> $/, at);
      at = pty.length;
      pty.write('count docs\r');
      await pty.until(/^3\nshoal> $/m, at);

      // tables fit the terminal: 100 columns, cells cut with …
      at = pty.length;
      pty.write('actors\r');
      const table = await pty.until(/^ACTOR[\s\S]*shoal> $/m, at);
      const rows = table.split('\n').filter((l) => /^n\d\//.test(l));
      assert.equal(rows.length >= 15, true, table);
      for (const l of rows) assert.ok([...l].length <= 100, `a row wider than the terminal: ${l}`);
      assert.ok(rows.some((l) => l.includes('…')), 'long cells are cut');

      at = pty.length;
      pty.write('frobnicate\r');
      const wrong = await pty.until(/unknown command 'frobnicate'[\s\S]*exit\s+leave[\s\S]*shoal> $/, at);
      noStackTrace(wrong);
      pty.write('count docs\r');
      await pty.until(/^3\nshoal> $/m, at);
      pty.write('\x04');
      assert.equal(await pty.exited, 0, 'Ctrl-D leaves, exit code 0');
    } finally {
      pty.proc.kill();
    }

    // a new console recalls the last one's commands: up-arrow, Enter
    const again = new Pty(env, 100);
    try {
      await again.until(/shoal> $/);
      const at = again.length;
      again.write('\x1b[A');
      await again.until(/shoal> count docs$/, at);
      again.write('\x1b[A');
      await again.until(/shoal> frobnicate$/, at);
      again.write('\x1b[B\r');
      await again.until(/count docs\n3\nshoal> $/, at);
      again.write('exit\r');
      assert.equal(await again.exited, 0);
    } finally {
      again.proc.kill();
    }
  });
});

describe('console with a node down', () => {
  it('console - shard shows a replica whose node is down as a row without state', async () => {
    await cluster.kill('n3');
    const r = await exec('shard docs/0', '--json');
    assert.equal(r.code, 0, r.stdout);
    const replicas = (docs(r)[0] as { replicas: { node: string; actor: string | null; status: unknown; error: string | null }[] }).replicas;
    assert.deepEqual(replicas.map((x) => x.node).sort(), ['n1', 'n2', 'n3']);
    const down = replicas.find((x) => x.node === 'n3');
    assert.deepEqual(down, { node: 'n3', actor: null, status: null, error: 'its node did not answer introspection (down?)' });
    const text = await exec('shard docs/0');
    assert.match(text.stdout, /^n3\s+no answer\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+its node did not answer/m);
  });
});
