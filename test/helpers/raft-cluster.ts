/**
 * Three (or more) real node processes (test/fixtures/raft-node.ts) over one real nats-server,
 * for the chaos test and the Raft benchmark: start, SIGKILL, restart, and ask them things.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { GroupStatus } from '../../src/replication/raft-state-machine.js';
import { decodeCbor, encodeCbor } from '../../src/runtime/codec.js';
import { NATS_CONNECTION_DEFAULTS } from '../../src/runtime/actor-system.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';

const FIXTURE = new URL('../fixtures/raft-node.js', import.meta.url).pathname;

export interface AppendReply {
  index?: number;
  error?: { code: string; message: string };
}

export class RaftProcessCluster {
  readonly dirs = new Map<string, string>();
  readonly procs = new Map<string, ChildProcess>();
  readonly nc: NatsConnection;
  private readonly root: string;

  private constructor(
    readonly server: NatsServer,
    readonly nodes: string[],
    nc: NatsConnection,
    private readonly extraArgs: string[],
  ) {
    this.nc = nc;
    this.root = mkdtempSync(join(tmpdir(), 'shoal-raft-procs-'));
    for (const n of nodes) this.dirs.set(n, join(this.root, n));
  }

  static async start(server: NatsServer, nodes: string[], extraArgs: string[] = []): Promise<RaftProcessCluster> {
    const nc = await connect({ servers: server.url, ...NATS_CONNECTION_DEFAULTS });
    const c = new RaftProcessCluster(server, nodes, nc, extraArgs);
    await Promise.all(nodes.map((n) => c.startNode(n)));
    return c;
  }

  /** Starts (or restarts, on its old directory) node `n`; resolves when it serves. */
  async startNode(n: string): Promise<void> {
    // SHOAL_FIXTURE_NODE_ARGS passes node flags to the node processes (e.g. `--cpu-prof` to profile them).
    const nodeArgs = process.env['SHOAL_FIXTURE_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
    const args = [...nodeArgs, FIXTURE, '--nats', this.server.url, '--node', n, '--peers', this.nodes.join(','), '--dir', this.dirs.get(n) as string, ...this.extraArgs];
    // stdin is a pipe from this process: the node exits when it closes (this process died).
    const p = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.procs.set(n, p);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${n} did not start within 20 s`)), 20_000);
      p.stdout?.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${n} exited with ${code} before it was ready`));
      });
    });
    p.stdout?.resume();
  }

  /** SIGKILL: the process dies at whatever instruction it is on. */
  async kill(n: string): Promise<void> {
    const p = this.procs.get(n);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
    this.procs.delete(n);
  }

  alive(n: string): boolean {
    return this.procs.has(n);
  }

  async ask<T>(n: string, req: unknown, timeoutMs = 5_000): Promise<T> {
    const res = await this.nc.request(`_shoal.raftfix.${n}`, encodeCbor(req), { timeout: timeoutMs });
    return decodeCbor(res.data) as T;
  }

  async status(n: string, group = 'g0'): Promise<(GroupStatus & { readyAt: number | null }) | undefined> {
    try {
      return await this.ask<GroupStatus & { readyAt: number | null }>(n, { op: 'status', group }, 1_000);
    } catch {
      return undefined;
    }
  }

  /** The node that leads `group` and has committed its first entry of the term, if any. */
  async leader(group = 'g0'): Promise<string | undefined> {
    for (const n of this.nodes) {
      if (!this.alive(n)) continue;
      const s = await this.status(n, group);
      if (s?.role === 'leader') return n;
    }
    return undefined;
  }

  async waitForLeader(group = 'g0', timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await this.leader(group);
      if (l) return l;
      await sleep(50);
    }
    throw new Error(`no leader of ${group} within ${timeoutMs} ms`);
  }

  append(n: string, data: Uint8Array, group = 'g0', timeoutMs = 3_000): Promise<AppendReply> {
    return this.ask<AppendReply>(n, { op: 'append', group, data, timeoutMs }, timeoutMs + 1_000);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.kill(n)));
    await this.nc.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
