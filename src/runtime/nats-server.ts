/**
 * A local nats-server for tests, benchmarks and `shoal dev`: found on the PATH (or
 * `NATS_SERVER_BIN`), started on a free port with JetStream and a temporary store, awaited
 * until it accepts connections, and stopped cleanly.
 *
 * The server also dies with its parent, even when the parent is SIGKILLed: it runs under a
 * tiny shell watchdog that holds a pipe from the parent and kills the server when that pipe
 * reaches end-of-file, which the kernel guarantees when the parent exits in any way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const INSTALL_HINT =
  'nats-server was not found. Install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu), ' +
  'or run `bash scripts/setup.sh` in the Shoal checkout, or set NATS_SERVER_BIN to its path.';

export const DEFAULT_START_TIMEOUT_MS = 15_000;

/**
 * The max payload of the servers `shoal dev` and `shoal nats` start: 8 MiB, the most NATS
 * recommends (the server warns above it). nats-server's default, 1 MiB, holds a reply of about
 * 170 vectors of 1,536 dimensions in CBOR, 35 in JSON; 8 MiB holds eight times as many.
 */
export const DEV_MAX_PAYLOAD = 8 * 1024 * 1024;

export class NatsServerNotFoundError extends Error {
  constructor() {
    super(INSTALL_HINT);
    this.name = 'NatsServerNotFoundError';
  }
}

/** The nats-server executable: `NATS_SERVER_BIN`, else the PATH, else Debian's locations. */
export function findNatsServer(): string {
  const fromEnv = process.env['NATS_SERVER_BIN'];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file. ${INSTALL_HINT}`);
  }
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/sbin', '/usr/bin', '/usr/local/bin']) {
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new NatsServerNotFoundError();
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface NatsServerOptions {
  /** Port to listen on; default a free one chosen by the server. */
  port?: number;
  host?: string;
  /** JetStream store directory; default a fresh temporary one, removed on stop. */
  storeDir?: string;
  jetstream?: boolean;
  serverName?: string;
  /** For clusters: `{name, port, routes}`. */
  cluster?: { name: string; port: number; routes: string[] };
  /**
   * How often the server pings each client, and how many pings may go unanswered before it
   * drops the client (nats-server's defaults: 2 minutes, 2). A paused or hung client keeps its
   * subscriptions (a router's place in its queue group, a leader subject) until it is dropped,
   * so a shorter interval bounds how long its requests are lost.
   */
  pingIntervalSec?: number;
  pingMax?: number;
  /**
   * The largest message the server accepts, in bytes (nats-server's default: 1 MiB). Every
   * request and reply must fit; a get or search with vectors needs more (see
   * {@link DEV_MAX_PAYLOAD}).
   */
  maxPayload?: number;
  /**
   * TLS for client connections: the server's certificate and key, and with `caFile` and
   * `verify` it requires every client to present a certificate signed by that CA (mutual TLS).
   * Clients must then connect with TLS (see `src/cli/nats-security.ts`).
   */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
  /**
   * More of the server's configuration file, as text (e.g. an `authorization { users = [...] }`
   * block); `$NAME` in it is taken from {@link env} when the file does not define it.
   */
  config?: string;
  /** Environment variables for the server process (e.g. the passwords a {@link config} refers to). */
  env?: Record<string, string>;
  /** Extra command-line arguments. */
  args?: string[];
  /**
   * A command prefix the server (with its watchdog) runs under, e.g. `['ip', 'netns', 'exec', ns]`
   * to start it in a network namespace; it must exec the command, keeping its stdin and stderr.
   */
  wrap?: string[];
  startTimeoutMs?: number;
  /** Print the server's log lines to this process's stderr. */
  verbose?: boolean;
}

export interface NatsServer {
  /** `nats://host:port` */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The nats-server process id. */
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and removes a temporary store. */
  stop(): Promise<void>;
}

// The watchdog: starts the server in the background, then waits for end-of-file on its stdin
// (the pipe from the parent) and kills the server. A background list in sh gets /dev/null as
// stdin, so the pipe is kept on fd 3 for the reader; the server gets /dev/null and never
// holds the pipe open. A hangup (a closed terminal sends SIGHUP to the whole process group) is
// ignored here, so that the reader lives to see the pipe close and stops the server: nats-server
// itself takes SIGHUP as "reload its configuration" and would otherwise outlive its parent.
const WATCHDOG = `
trap '' HUP
exec 3<&0
"$@" </dev/null 3<&- &
srv=$!
( while IFS= read -r _line <&3; do :; done; kill -TERM "$srv" 2>/dev/null
  i=0; while kill -0 "$srv" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$srv" 2>/dev/null
  [ -n "$SHOAL_NATS_TMP_STORE" ] && rm -rf "$SHOAL_NATS_TMP_STORE" ) &
exec 3<&-
wait "$srv"
`;

/** Starts a nats-server and resolves once it accepts TCP connections. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer();
  const host = opts.host ?? '127.0.0.1';
  const ownStore = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'shoal-nats-'));
  const pidFile = join(storeDir, 'nats-server.pid');
  const args = ['-a', host, '-p', String(opts.port ?? -1), '-P', pidFile];
  if (opts.jetstream !== false) args.push('-js', '-sd', storeDir);
  if (opts.serverName) args.push('--server_name', opts.serverName);
  if (opts.cluster) {
    args.push('--cluster_name', opts.cluster.name, '--cluster', `nats://${host}:${opts.cluster.port}`);
    if (opts.cluster.routes.length > 0) args.push('--routes', opts.cluster.routes.join(','));
  }
  // nats-server (2.9) has no flags for these: they go in a configuration file (flags still win).
  const conf: string[] = [];
  if (opts.pingIntervalSec !== undefined || opts.pingMax !== undefined) {
    conf.push(`ping_interval: "${opts.pingIntervalSec ?? 120}s"`, `ping_max: ${opts.pingMax ?? 2}`);
  }
  if (opts.maxPayload !== undefined) conf.push(`max_payload: ${opts.maxPayload}`);
  if (opts.tls) conf.push(tlsBlock(opts.tls));
  if (opts.config !== undefined) conf.push(opts.config);
  if (conf.length > 0) {
    const file = join(storeDir, 'shoal-nats.conf');
    writeFileSync(file, `${conf.join('\n')}\n`);
    args.push('-c', file);
  }
  args.push(...(opts.args ?? []));

  const [cmd = '/bin/sh', ...prefix] = [...(opts.wrap ?? []), '/bin/sh'];
  const child = spawn(cmd, [...prefix, '-c', WATCHDOG, 'shoal-nats-watchdog', bin, ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, ...opts.env, SHOAL_NATS_TMP_STORE: ownStore ? storeDir : '' },
  });
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let port: number;
  try {
    port = await waitForListening(child, timeoutMs, opts.verbose ?? false);
    await waitForTcp(host, port, timeoutMs);
  } catch (err) {
    child.stdin?.end();
    child.kill('SIGKILL');
    if (ownStore) rmSync(storeDir, { recursive: true, force: true });
    throw err;
  }
  const pid = readPid(pidFile);
  let stopped: Promise<void> | undefined;
  return {
    url: `nats://${host}:${port}`,
    port,
    storeDir,
    pid,
    stop() {
      stopped ??= stopServer(child, pid).finally(() => {
        if (ownStore) rmSync(storeDir, { recursive: true, force: true });
      });
      return stopped;
    },
  };
}

/** The server's `tls {}` block; paths are quoted, as the configuration format needs for `/` and `.`. */
function tlsBlock(tls: NonNullable<NatsServerOptions['tls']>): string {
  const lines = [`  cert_file: ${JSON.stringify(tls.certFile)}`, `  key_file: ${JSON.stringify(tls.keyFile)}`];
  if (tls.caFile !== undefined) lines.push(`  ca_file: ${JSON.stringify(tls.caFile)}`);
  if (tls.verify) lines.push('  verify: true');
  lines.push('  timeout: 5');
  return `tls {\n${lines.join('\n')}\n}`;
}

function readPid(pidFile: string): number {
  try {
    return Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return -1;
  }
}

const LISTEN_RE = /Listening for client connections on [^\s]*:(\d+)/;

function waitForListening(child: ChildProcess, timeoutMs: number, verbose: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    let log = '';
    let port: number | undefined;
    const timer = setTimeout(() => finish(new Error(`nats-server did not start within ${timeoutMs} ms. Its log:\n${log}`)), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      child.stderr?.removeListener('data', onData);
      child.removeListener('exit', onExit);
      if (!verbose) child.stderr?.resume();
      if (err) reject(err);
      else resolve(port as number);
    };
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString();
      if (verbose) process.stderr.write(text);
      log += text;
      const m = LISTEN_RE.exec(log);
      if (m && port === undefined) port = Number(m[1]);
      if (port !== undefined && log.includes('Server is ready')) finish();
    };
    const onExit = (code: number | null): void => finish(new Error(`nats-server exited with code ${code} before it was ready. Its log:\n${log}`));
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function waitForTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const sock = createConnection({ host, port }, () => {
        sock.end();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nats-server on ${host}:${port} did not accept connections within ${timeoutMs} ms`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

async function stopServer(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // End-of-file on the watchdog's pipe makes it SIGTERM the server; the watchdog exits with it.
  child.stdin?.end();
  const grace = setTimeout(() => {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child.kill('SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(grace);
}
