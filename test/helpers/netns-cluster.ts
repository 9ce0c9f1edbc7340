/**
 * A Shoal cluster on three "hosts" that can be cut off from each other: each host is a Linux
 * network namespace made by the test (`shoal-<pid>-<i>`), joined to a bridge in the root
 * namespace by a veth pair, with an address in a private /24 (10.213.<random>.0/24) that exists
 * only on these namespaces and the bridge. Each host runs one nats-server (a 3-server NATS
 * cluster with JetStream, so the metadata bucket has 3 replicas) and one `shoal node` connected
 * to its own host's server. This process reaches the servers through the bridge's address in
 * the same /24, as a client on the network that the hosts share.
 *
 * `cut(i)` takes the bridge's end of host i's link down: host i's server and node still talk to
 * each other, but nothing crosses between host i and the rest (the other hosts and this process)
 * until `heal(i)`. TCP connections are not reset; each side finds out through its pings. Not
 * nats-server 2.9.10 about its routes: outbound traffic on a route delays its PINGs, so a route
 * that carries traffic to a cut-off host is not dropped, and what is routed to that host (a third
 * of the routers' queue group, JetStream's requests and replies for the metadata bucket) is lost
 * until TCP gives up (nats-io/nats-server#4014, fixed upstream by #4016). With Linux's default
 * (15 retransmissions, minutes) such a route lived on for 25 s and more after a cut, and the
 * metadata bucket answered nothing meanwhile; so each host's namespace gives up on unacknowledged
 * data after 3 retransmissions (`net.ipv4.tcp_retries2=3`: about 3 s on this network, as the
 * servers' pings take for an idle route), as docs/deploy.md advises for the servers' machines.
 *
 * Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip`; without them `start()` fails and
 * says so. The namespaces, veths and bridge are removed by `stop()`, when `start()` fails, and
 * when this process exits; leftovers of a process that was SIGKILLed are removed by the next start.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ShoalClient, type ClientOptions } from '../../src/client/client.js';
import { NATS_CONNECTION_DEFAULTS } from '../../src/runtime/actor-system.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { leaderOf, spawnNode, waitFor } from './cluster.js';
import { startTestNats } from './nats.js';
import { NODE_PROCESS_FLAGS } from '../../src/cli/node-flags.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

export const NETNS_CLIENT_PORT = 4222;
export const NETNS_ROUTE_PORT = 6222;
/** Retransmissions of unacknowledged data before TCP gives up on a connection, in each host's namespace (Linux: 15). */
const TCP_RETRIES2 = 3;
/** The bridge's (this process's) address in the hosts' /24. */
const BRIDGE_HOST = 254;

/**
 * How clients in this process connect: every host's server, pinged every second and left after
 * two unanswered pings (as the servers treat their clients and routes), and a connect attempt
 * to a cut-off server given up after 2 s.
 */
export const NETNS_CLIENT_CONNECTION = { pingInterval: 1_000, maxPingOut: 2, timeout: 2_000, ...NATS_CONNECTION_DEFAULTS } as const;

export interface NetnsHost {
  /** 1-based. */
  index: number;
  ns: string;
  ip: string;
  /** The bridge's end of the host's veth pair (in the root namespace). */
  link: string;
  nodeId: string;
  dataDir: string;
  nats: NatsServer | undefined;
  proc: ChildProcess | undefined;
  log: string[];
}

export interface NetnsClusterOptions {
  prefix?: string;
  /** Extra environment for node processes. */
  env?: Record<string, string>;
}

export class NetnsCluster {
  readonly hosts: NetnsHost[] = [];
  private readonly clients: ShoalClient[] = [];
  private readonly conns: NatsConnection[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly onExit = (): void => this.teardownSync();

  private constructor(
    readonly root: string,
    readonly prefix: string,
    readonly subnet: string,
    private readonly bridge: string,
    private readonly env: Record<string, string>,
  ) {}

  static async start(opts: NetnsClusterOptions = {}): Promise<NetnsCluster> {
    removeLeftovers();
    const pid = process.pid;
    const subnet = freeSubnet();
    const c = new NetnsCluster(mkdtempSync(join(tmpdir(), 'shoal-netns-')), opts.prefix ?? 'shoal', subnet, `shb${pid}`, opts.env ?? {});
    process.on('exit', c.onExit);
    try {
      c.createNetwork();
      const routes = c.hosts.map((h) => `nats://${h.ip}:${NETNS_ROUTE_PORT}`);
      await Promise.all(
        c.hosts.map(async (h) => {
          h.nats = await startTestNats({
            host: h.ip,
            port: NETNS_CLIENT_PORT,
            serverName: `host${h.index}`,
            cluster: { name: `shoal-${pid}`, port: NETNS_ROUTE_PORT, routes },
            // dead routes and clients are noticed within ~3 s
            pingIntervalSec: 1,
            pingMax: 2,
            wrap: ['ip', 'netns', 'exec', h.ns],
          });
        }),
      );
      await Promise.all(c.hosts.map((h) => c.startNode(h)));
      const client = await c.client();
      await waitFor(async () => (await client.clusterStatus(2_000)).nodes.filter((x) => x.state === 'up').length === c.hosts.length, 'all 3 nodes up', 60_000);
      return c;
    } catch (err) {
      await c.stop().catch(() => undefined);
      throw err;
    }
  }

  /** Every host's client URL. */
  get urls(): string[] {
    return this.hosts.map((h) => h.nats?.url ?? `nats://${h.ip}:${NETNS_CLIENT_PORT}`);
  }

  /** The host that runs node `nodeId` (1-based). */
  hostOf(nodeId: string): number {
    const h = this.hosts.find((x) => x.nodeId === nodeId);
    if (!h) throw new Error(`no node ${nodeId}`);
    return h.index;
  }

  /** The host whose server a connection is on (by the server's name), or undefined. */
  hostOfConnection(nc: NatsConnection): number | undefined {
    const m = /^host(\d+)$/.exec(nc.info?.server_name ?? '');
    return m ? Number(m[1]) : undefined;
  }

  /** A NATS connection from this process to the cluster (closed by `stop()`). */
  async connect(): Promise<NatsConnection> {
    const nc = await connect({ servers: this.urls, ...NETNS_CLIENT_CONNECTION });
    this.conns.push(nc);
    return nc;
  }

  async client(opts: Partial<ClientOptions> = {}): Promise<ShoalClient> {
    const c = await ShoalClient.connect({ nc: await this.connect(), prefix: this.prefix, ...opts });
    this.clients.push(c);
    return c;
  }

  leaderOf(client: ShoalClient, name: string, shard: number): Promise<string> {
    return leaderOf(client, name, shard);
  }

  /**
   * Runs `node <script> <args>` inside host `i`'s namespace, as a program on that host: it reaches
   * the host's own server at `nats://<ip>:4222` and, like the host, nothing else while the host is
   * cut off. Its stdin is a pipe (closing it is how such a program is told to finish); it is
   * killed by `stop()` if still running.
   */
  spawnIn(i: number, script: string, args: string[]): ChildProcess {
    const proc = spawn('ip', ['netns', 'exec', this.host(i).ns, process.execPath, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.push(proc);
    return proc;
  }

  /** Cuts host `i` off from the other hosts and from this process. */
  cut(i: number): void {
    ip('link', 'set', this.host(i).link, 'down');
  }

  heal(i: number): void {
    ip('link', 'set', this.host(i).link, 'up');
  }

  async stop(): Promise<void> {
    process.off('exit', this.onExit);
    for (const h of this.hosts) tryIp('link', 'set', h.link, 'up');
    await Promise.all(
      this.children.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      }),
    );
    await Promise.all(this.clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(this.conns.map((nc) => nc.close().catch(() => undefined)));
    await Promise.all(
      this.hosts.map(async (h) => {
        const p = h.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGCONT');
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }),
    );
    await Promise.all(this.hosts.map((h) => h.nats?.stop()));
    this.teardownSync();
  }

  private host(i: number): NetnsHost {
    const h = this.hosts[i - 1];
    if (!h) throw new Error(`no host ${i}`);
    return h;
  }

  private createNetwork(): void {
    const pid = process.pid;
    for (let i = 1; i <= 3; i++) {
      this.hosts.push({
        index: i, ns: `shoal-${pid}-${i}`, ip: `${this.subnet}.${i}`, link: `shv${pid}h${i}`,
        nodeId: `n${i}`, dataDir: join(this.root, `n${i}`), nats: undefined, proc: undefined, log: [],
      });
    }
    try {
      execFileSync('ip', ['netns', 'add', `shoal-${pid}-1`], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw new Error(
        `NetnsCluster needs to create network namespaces, and \`ip netns add shoal-${pid}-1\` failed: ${stderrOf(err)}. ` +
          'Run it as root (or with CAP_NET_ADMIN and CAP_SYS_ADMIN), with iproute2 installed.',
      );
    }
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.subnet}.${BRIDGE_HOST}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    for (const h of this.hosts) {
      if (h.index !== 1) ip('netns', 'add', h.ns);
      const peer = `shp${pid}h${h.index}`;
      ip('link', 'add', h.link, 'type', 'veth', 'peer', 'name', peer);
      ip('link', 'set', peer, 'netns', h.ns);
      ip('-n', h.ns, 'link', 'set', peer, 'name', 'eth0');
      ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
      ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      // see the header: a route to a cut-off host that carries traffic dies with its TCP connection
      ip('netns', 'exec', h.ns, 'sh', '-c', `echo ${TCP_RETRIES2} > /proc/sys/net/ipv4/tcp_retries2`);
      ip('link', 'set', h.link, 'master', this.bridge);
      ip('link', 'set', h.link, 'up');
    }
  }

  private async startNode(h: NetnsHost): Promise<void> {
    // `ip netns exec` execs the command: the child's pid is the node's, and signals reach it.
    const command = ['ip', 'netns', 'exec', h.ns, process.execPath, ...NODE_PROCESS_FLAGS, CLI, 'node', '--id', h.nodeId, '--nats', `nats://${h.ip}:${NETNS_CLIENT_PORT}`, '--data', h.dataDir, '--prefix', this.prefix];
    const { proc, ready } = spawnNode(h.nodeId, command, { SHOAL_KV_REPLICAS: '3', ...this.env }, h.log);
    h.proc = proc;
    await ready;
  }

  /** Synchronous, so that it can run on process exit: kills what is left, then removes the network. */
  private teardownSync(): void {
    for (const p of this.children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const h of this.hosts) {
      if (h.proc && h.proc.exitCode === null && h.proc.signalCode === null) h.proc.kill('SIGKILL');
      if (h.nats && h.nats.pid > 0) {
        try {
          process.kill(h.nats.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    // A NATS client's connect attempt that timed out leaves its socket trying (nats.js does not
    // destroy a socket still connecting): one begun while a host was cut off can still be sending
    // SYNs here, and without the bridge's route they would leave through the default route to an
    // address outside this machine (and keep this process alive for minutes). The /24 is this
    // cluster's alone, so every socket of this namespace to it is one of ours: abort them.
    try {
      execFileSync('ss', ['-K', '-tn', 'dst', `${this.subnet}.0/24`], { stdio: 'ignore' });
    } catch {
      // no ss: the sockets time out by themselves
    }
    for (const h of this.hosts) {
      tryIp('link', 'del', h.link);
      tryIp('netns', 'del', h.ns);
    }
    tryIp('link', 'del', this.bridge);
    rmSync(this.root, { recursive: true, force: true });
  }
}

function ip(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`ip ${args.join(' ')} failed: ${stderrOf(err)}`);
  }
}

function tryIp(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
  } catch {
    // not there (or already removed with its namespace)
  }
}

function stderrOf(err: unknown): string {
  const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
  return stderr || (err instanceof Error ? err.message : String(err));
}

/** A 10.213.x.0/24 that no address or route of the root namespace is in, as `10.213.x`. */
function freeSubnet(): string {
  const used = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'addr'], { encoding: 'utf8' });
  for (let tries = 0; tries < 50; tries++) {
    const x = Math.floor(Math.random() * 256);
    if (!used.includes(`10.213.${x}.`) && !/10\.0\.0\.0\/8|10\.213\.0\.0\/16/.test(used)) return `10.213.${x}`;
  }
  throw new Error('no free 10.213.x.0/24 for the test hosts');
}

/** Namespaces, veths and bridges of earlier runs whose process is gone (SIGKILLed before its cleanup). */
function removeLeftovers(): void {
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      // EPERM: there, but another user's (a run without root but with CAP_NET_ADMIN)
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  let namespaces = '';
  let links = '';
  try {
    namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
  } catch {
    return; // start() reports what is missing
  }
  for (const m of namespaces.matchAll(/^shoal-(\d+)-\d+/gm)) if (!alive(Number(m[1]))) tryIp('netns', 'del', m[0]);
  for (const m of links.matchAll(/^\d+: (sh[bv](\d+)(?:h\d+)?)[@:]/gm)) if (!alive(Number(m[2]))) tryIp('link', 'del', m[1] as string);
}
