/**
 * A real Shoal cluster for integration tests: one nats-server (JetStream, temp store) and N
 * `shoal node` processes, each with its own data directory. Nodes can be killed (SIGKILL),
 * paused (SIGSTOP) and resumed (SIGCONT), and restarted with their data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShoalClient, type ClientOptions } from '../../src/client/client.js';
import type { NatsServer, NatsServerOptions } from '../../src/runtime/nats-server.js';
import type { NatsSecurity } from '../../src/runtime/nats-security.js';
import { startTestNats } from './nats.js';
import { NODE_PROCESS_FLAGS } from '../../src/cli/node-flags.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

export interface TestNode {
  id: string;
  dataDir: string;
  proc: ChildProcess | undefined;
  log: string[];
  /** This node's own environment, on top of the cluster's. */
  env?: Record<string, string>;
}

export interface ClusterOptions {
  nodes?: number;
  prefix?: string;
  /** Extra environment for node processes. */
  env?: Record<string, string>;
  /** Flags for the node processes' Node.js (e.g. `--cpu-prof`), after {@link nodeFlags}. */
  nodeArgs?: string[];
  /** The Node.js flags a node runs with (default NODE_PROCESS_FLAGS, as `shoal dev` starts them; [] for V8's defaults, in an A/B). */
  nodeFlags?: readonly string[];
  /** The node CLI to run (default this build's src/cli/main.js): another build's, for an A/B in one run. */
  cli?: string;
  /** Environment of single nodes, by id, on top of `env`. */
  nodeEnv?: Record<string, Record<string, string>>;
  /**
   * Called for each node before its first start (e.g. to mount a small filesystem on its data
   * directory); a throw fails the start. `release` is called for each node in {@link TestCluster.stop},
   * once every process has exited and before the cluster's directory is removed.
   */
  prepare?: (node: TestNode) => void;
  release?: (node: TestNode) => void;
  /** More options for the cluster's nats-server: `tls`, `config` (e.g. an authorization block), `env`. */
  nats?: NatsServerOptions;
  /**
   * How {@link TestCluster.client} connects unless told otherwise (TLS, user): needed when the
   * nats-server requires it. The nodes get theirs through `env` (`SHOAL_NATS_*`).
   */
  clientSecurity?: NatsSecurity;
}

export class TestCluster {
  readonly nodes = new Map<string, TestNode>();
  private clients: ShoalClient[] = [];

  private constructor(
    readonly nats: NatsServer,
    readonly root: string,
    readonly prefix: string,
    private readonly env: Record<string, string>,
    private readonly nodeArgs: string[],
    private readonly release: ((node: TestNode) => void) | undefined,
    private readonly clientSecurity: NatsSecurity | undefined,
    private readonly cli: string = CLI,
  ) {}

  static async start(opts: ClusterOptions = {}): Promise<TestCluster> {
    // a paused node is dropped by the server within ~3 s (its subscriptions with it)
    const nats = await startTestNats({ pingIntervalSec: 1, pingMax: 2, ...opts.nats });
    const root = mkdtempSync(join(tmpdir(), 'shoal-cluster-'));
    const c = new TestCluster(nats, root, opts.prefix ?? 'shoal', opts.env ?? {}, [...(opts.nodeFlags ?? NODE_PROCESS_FLAGS), ...(opts.nodeArgs ?? [])], opts.release, opts.clientSecurity, opts.cli ?? CLI);
    const n = opts.nodes ?? 3;
    for (let i = 1; i <= n; i++) {
      const id = `n${i}`;
      c.nodes.set(id, { id, dataDir: join(root, id), proc: undefined, log: [], ...(opts.nodeEnv?.[id] ? { env: opts.nodeEnv[id] } : {}) });
    }
    try {
      for (const node of c.nodes.values()) opts.prepare?.(node);
    } catch (err) {
      await c.stop();
      throw err;
    }
    await Promise.all([...c.nodes.keys()].map((id) => c.startNode(id)));
    await c.waitFor(async () => {
      const s = await (await c.client()).clusterStatus(2_000);
      return s.nodes.filter((x) => x.state === 'up').length === n;
    }, `all ${n} nodes up`);
    return c;
  }

  /** Adds node `id` (a new member, with an empty data directory) and starts it. */
  async addNode(id: string, env: Record<string, string> = {}): Promise<void> {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    this.nodes.set(id, { id, dataDir: join(this.root, id), proc: undefined, log: [], env });
    await this.startNode(id);
  }

  /** Starts (or restarts, with its data) node `id`; resolves when its process reports ready. */
  async startNode(id: string): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    if (node.proc && node.proc.exitCode === null && node.proc.signalCode === null) throw new Error(`node ${id} is running`);
    const { proc, ready } = spawnNode(id, [process.execPath, ...this.nodeArgs, this.cli, 'node', '--id', id, '--nats', this.nats.url, '--data', node.dataDir, '--prefix', this.prefix], { ...this.env, ...(node.env ?? {}) }, node.log);
    node.proc = proc;
    await ready;
  }

  /** SIGKILL: the process dies at once, with whatever it had not flushed. */
  kill(id: string): Promise<void> {
    return this.signal(id, 'SIGKILL');
  }

  /** SIGTERM: a clean stop (what an operator's `systemctl stop` does); resolves once the process exited. */
  stopNode(id: string): Promise<void> {
    return this.signal(id, 'SIGTERM');
  }

  /** Sends `sig` to node `id`'s process, if it runs; resolves once it exited. */
  private async signal(id: string, sig: NodeJS.Signals): Promise<void> {
    const proc = this.nodes.get(id)?.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(sig);
    await exited;
  }

  pause(id: string): void {
    this.nodes.get(id)?.proc?.kill('SIGSTOP');
  }

  resume(id: string): void {
    this.nodes.get(id)?.proc?.kill('SIGCONT');
  }

  async client(opts: Partial<ClientOptions> = {}): Promise<ShoalClient> {
    const c = await ShoalClient.connect({ servers: this.nats.url, prefix: this.prefix, ...(this.clientSecurity ? { security: this.clientSecurity } : {}), ...opts });
    this.clients.push(c);
    return c;
  }

  /** The node leading shard `shard` of collection `name`, once it has one (as `describe` tells it). */
  leaderOf(client: ShoalClient, name: string, shard: number): Promise<string> {
    return leaderOf(client, name, shard);
  }

  /** Polls `cond` until it holds (or throws the last reason after `timeoutMs`). */
  waitFor(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
    return waitFor(cond, what, timeoutMs);
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => undefined)));
    for (const n of this.nodes.values()) if (n.proc && n.proc.signalCode === 'SIGSTOP') this.resume(n.id);
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        const p = n.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGCONT');
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }),
    );
    await this.nats.stop();
    const failures: unknown[] = [];
    for (const n of this.nodes.values()) {
      try {
        this.release?.(n);
      } catch (err) {
        failures.push(err);
      }
    }
    rmSync(this.root, { recursive: true, force: true });
    if (failures.length > 0) throw failures[0];
  }
}

/** The node leading shard `shard` of collection `name`, once it has one (as `describe` tells it). */
/**
 * Starts a `shoal node` process from `command` (the node's command line, possibly behind a prefix
 * such as `ip netns exec`), keeping its last stderr chunks in `log`. `ready` resolves once it
 * reports ready and rejects if it exits first; the process is there at once, for a stop to find.
 */
/** How long a node process may take to report ready before its start fails. */
const NODE_START_TIMEOUT_MS = 60_000;

export function spawnNode(id: string, command: string[], env: Record<string, string>, log: string[]): { proc: ChildProcess; ready: Promise<void> } {
  const [bin, ...args] = command as [string, ...string[]];
  const proc = spawn(bin, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SHOAL_LOG_LEVEL: process.env['SHOAL_LOG_LEVEL'] ?? 'warn', SHOAL_EXIT_ON_STDIN_EOF: '1', ...env },
  });
  proc.stderr.on('data', (d: Buffer) => {
    log.push(d.toString());
    if (log.length > 200) log.shift();
    if (process.env['SHOAL_TEST_VERBOSE']) process.stderr.write(`[${id}] ${d.toString()}`);
  });
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    // A node that cannot start (a refused permission, a lock) must fail its test, not hang it.
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`node ${id} did not report ready within ${NODE_START_TIMEOUT_MS} ms: ${log.join('')}`));
    }, NODE_START_TIMEOUT_MS);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        proc.stdout.off('data', onData);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`node ${id} exited while starting (${sig ?? code}): ${log.join('')}`));
    });
  });
  return { proc, ready };
}

export async function leaderOf(client: ShoalClient, name: string, shard: number): Promise<string> {
  let leader: string | null = null;
  await waitFor(async () => {
    leader = (await client.describeCollection(name, 2_000)).shards[shard]?.leader ?? null;
    return leader !== null;
  }, `a leader for ${name}/${shard}`);
  return leader as unknown as string;
}

/** Polls `cond` until it holds (or throws the last reason after `timeoutMs`). */
export async function waitFor(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
