/**
 * `shoal dev`: a whole local cluster in one command — a nats-server with JetStream and N node
 * processes, their data under one directory, a live one-line status, and a clean stop on Ctrl-C.
 * Run again with the same directory, it finds its collections and points.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ShoalClient } from '../client/client.js';
import { DEV_MAX_PAYLOAD, startNatsServer, type NatsServer } from '../runtime/nats-server.js';
import { describeError } from '../runtime/errors.js';
import { parseLogLevel } from '../runtime/logger.js';
import { UsageError, intOption, untilSignal, type Command } from './command.js';
import { EXIT_IN_USE, EXIT_USAGE } from './exit-codes.js';
import { lockFile } from './lock.js';
import { nodeSettingsFrom, zonesFrom } from './ops-options.js';
import { portFree, DEFAULT_DEV_NATS_PORT } from './nats-command.js';
import { makeDevCertificates, type DevCertificates } from './dev-certs.js';
import { NATS_SECURITY_ENV, natsSecurityFrom } from './nats-security.js';
import { LineSplitter, formatLogLine } from './log-format.js';
import { NODE_PROCESS_FLAGS } from './node-flags.js';

export const DEFAULT_DEV_NODES = 3;
export const DEFAULT_DEV_DATA = './.shoal';

const CLI_MAIN = new URL('./main.js', import.meta.url).pathname;

export const devCommand: Command = {
  name: 'dev',
  summary: 'run a local cluster: nats-server and N nodes, with a live status line',
  usage: `shoal dev [--nodes ${DEFAULT_DEV_NODES}] [--data ${DEFAULT_DEV_DATA}] [--port ${DEFAULT_DEV_NATS_PORT}] [--prefix shoal] [--no-restart]
          [--zones a,b,c] [--down-after-ms N] [--replace-after-ms N] [--tls] [--json-logs]

Starts nats-server with JetStream (its store in <data>/nats) and a max payload of 8 MiB, and N
node processes n1..nN (their data in <data>/n1 ...), prints the NATS URL, and shows nodes up, collections and leaders until
Ctrl-C, which stops everything. Run again with the same --data, it finds its data; a second
shoal dev on data in use refuses at once, naming the running one.

A node that dies is started again after a second (so that you can kill one and watch the cluster
heal); --no-restart leaves it down. A node that exits because of a usage error or because its
data directory is in use is not restarted.

--zones hands the zones out to the nodes in turn (n1 a, n2 b, n3 c, n4 a, ...); --down-after-ms
and --replace-after-ms are passed to every node (see shoal node --help): a short
--replace-after-ms with --no-restart shows a dead node's replicas rebuilt elsewhere.

--tls makes a throwaway CA and certificates with openssl (in <data>/tls, made anew on each
start) and runs everything over mutual TLS: the server requires a client certificate, the nodes
use one, and standard error shows the SHOAL_NATS_TLS_* variables that give a client one.

The nodes' logs come on standard error as lines for people ("12:05:01 INFO  n1 replica started
collection=docs shard=0"), at SHOAL_LOG_LEVEL (default info); --json-logs shows them as the
nodes write them, one JSON object per line (docs/operations.md, Logs).`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        nodes: { type: 'string' }, data: { type: 'string' }, port: { type: 'string' }, prefix: { type: 'string' }, 'no-restart': { type: 'boolean' },
        zones: { type: 'string' }, 'down-after-ms': { type: 'string' }, 'replace-after-ms': { type: 'string' }, tls: { type: 'boolean' },
        'json-logs': { type: 'boolean' },
      },
    });
    const restart = !values['no-restart'];
    const jsonLogs = values['json-logs'] === true;
    const logLevel = process.env['SHOAL_LOG_LEVEL'] || 'info';
    try {
      parseLogLevel(logLevel, 'SHOAL_LOG_LEVEL');
    } catch (err) {
      throw new UsageError(describeError(err));
    }
    const n = intOption(values.nodes, '--nodes', 1, 16) ?? DEFAULT_DEV_NODES;
    const zones = zonesFrom(values.zones);
    // Checked here, so that a bad value is one usage error and not N nodes failing to start.
    const settings = nodeSettingsFrom({ 'down-after-ms': values['down-after-ms'], 'replace-after-ms': values['replace-after-ms'] }, {});
    const nodeFlags = (i: number): string[] => [
      ...(zones ? ['--zone', zones[(i - 1) % zones.length] as string] : []),
      ...(settings.downAfterMs !== undefined ? ['--down-after-ms', String(settings.downAfterMs)] : []),
      ...(settings.replaceAfterMs !== undefined ? ['--replace-after-ms', String(settings.replaceAfterMs)] : []),
    ];
    const dataDir = resolve(values.data ?? DEFAULT_DEV_DATA);
    const prefix = values.prefix ?? 'shoal';
    mkdirSync(join(dataDir, 'nats'), { recursive: true });
    const releaseLock = lockFile(join(dataDir, 'dev.lock'), 'another shoal dev');
    let port = intOption(values.port, '--port', 0, 65535) ?? DEFAULT_DEV_NATS_PORT;
    if (values.port === undefined && !(await portFree(port))) {
      process.stderr.write(`port ${port} is in use (a system nats-server?); using a free port instead\n`);
      port = 0;
    }
    const certs = values.tls ? makeDevCertificates(join(dataDir, 'tls'), ['node', 'client']) : undefined;
    // A hung node is dropped by the server after ~10 s instead of its default 4 minutes; requests
    // and replies up to 8 MiB (vectors are large), not the default 1 MiB.
    const nats = await startNatsServer({
      ...(certs ? { tls: { certFile: certs.server.cert, keyFile: certs.server.key, caFile: certs.ca, verify: true } } : {}),
      port: port === 0 ? -1 : port,
      storeDir: join(dataDir, 'nats'),
      serverName: 'shoal-dev',
      pingIntervalSec: 5,
      pingMax: 2,
      maxPayload: DEV_MAX_PAYLOAD,
    });
    process.stdout.write(`${nats.url}\n`);
    process.stderr.write(`shoal dev: nats-server at ${nats.url}, ${n} nodes, data in ${dataDir}; Ctrl-C stops everything\n`);
    if (certs) process.stderr.write(`shoal dev: TLS with client certificates required; for a client:\n${tlsExports(certs, 'client')}\n`);
    const nodeEnv = certs ? tlsEnv(certs, 'node') : {};

    const children = new Map<string, ChildProcess>();
    let stopping = false;
    const startNode = (i: number): void => {
      const id = `n${i}`;
      const child = spawn(
        process.execPath,
        [...NODE_PROCESS_FLAGS, CLI_MAIN, 'node', '--id', id, '--nats', nats.url, '--data', join(dataDir, id), '--prefix', prefix, ...nodeFlags(i)],
        // stdin is a pipe the node watches: if this process dies, even by SIGKILL, the pipe
        // closes and the node stops instead of lingering.
        { stdio: ['pipe', 'ignore', 'pipe'], env: { ...withoutNatsSecurity(process.env), SHOAL_LOG_LEVEL: logLevel, SHOAL_EXIT_ON_STDIN_EOF: '1', ...nodeEnv } },
      );
      const lines = new LineSplitter();
      const show = (ls: string[]): void => {
        if (ls.length === 0) return;
        const color = process.stderr.isTTY === true;
        const text = jsonLogs ? ls.join('\n') : ls.map((l) => formatLogLine(l, { color, fallbackNode: id })).join('\n');
        // (on a terminal, over the status line)
        process.stderr.write(`${color ? '\r\x1b[2K' : ''}${text}\n`);
      };
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => show(lines.push(d)));
      child.stderr?.once('end', () => show(lines.end()));
      child.once('exit', (code, sig) => {
        children.delete(id);
        if (stopping) return;
        // A usage error or a data directory in use: starting it again would fail the same way.
        const again = restart && code !== EXIT_USAGE && code !== EXIT_IN_USE;
        process.stderr.write(`\r\x1b[2Kshoal dev: node ${id} exited (${sig ?? code}); ${again ? 'restarting it' : 'leaving it down'}\n`);
        if (again) setTimeout(() => !stopping && startNode(i), 1_000);
      });
      children.set(id, child);
    };
    for (let i = 1; i <= n; i++) startNode(i);

    const client = await ShoalClient.connect({ servers: nats.url, prefix, timeoutMs: 2_000, security: natsSecurityFrom({}, tlsEnv(certs, 'client')) });
    const status = setInterval(() => void showStatus(client, n), 1_000);
    status.unref();
    await untilSignal();
    stopping = true;
    clearInterval(status);
    process.stderr.write('\r\x1b[2Kshoal dev: stopping nodes\n');
    await client.close().catch(() => undefined);
    await stopAll([...children.values()]);
    await nats.stop();
    releaseLock();
    process.stderr.write('shoal dev: stopped\n');
    return 0;
  },
};

/** The SHOAL_NATS_TLS_* variables that give certificate `name` of `certs` (none without TLS). */
function tlsEnv(certs: DevCertificates | undefined, name: string): Record<string, string> {
  const pair = certs?.clients[name];
  if (!certs || !pair) return {};
  return { SHOAL_NATS_TLS_CA: certs.ca, SHOAL_NATS_TLS_CERT: pair.cert, SHOAL_NATS_TLS_KEY: pair.key };
}

/** `env` without SHOAL_NATS_TLS_*, _CREDS, _USER, _PASSWORD: dev's nodes log in to dev's own server as dev says, not as a shell set up for another cluster would. */
function withoutNatsSecurity(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of Object.values(NATS_SECURITY_ENV)) delete out[name];
  return out;
}

function tlsExports(certs: DevCertificates, name: string): string {
  return Object.entries(tlsEnv(certs, name)).map(([k, v]) => `  export ${k}=${v}`).join('\n');
}

let lastLine = '';

async function showStatus(client: ShoalClient, expected: number): Promise<void> {
  let line: string;
  try {
    const [status, health, collections] = await Promise.all([client.clusterStatus(), client.clusterHealth(), client.listCollections()]);
    const up = status.nodes.filter((x) => x.state === 'up').length;
    const leaders = health.shards.filter((s) => s.leader).length;
    line = `nodes up ${up}/${expected} · collections ${collections.length} · shards with a leader ${leaders}/${health.shards.length} · ${health.healthy ? 'healthy' : 'degraded'} · epoch ${status.epoch}`;
  } catch (err) {
    line = `waiting for the cluster: ${describeError(err)}`;
  }
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line}`);
  else if (line !== lastLine) process.stderr.write(`${line}\n`);
  lastLine = line;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolveExit) => {
          if (c.exitCode !== null) return resolveExit();
          const kill = setTimeout(() => c.kill('SIGKILL'), 10_000);
          c.once('exit', () => {
            clearTimeout(kill);
            resolveExit();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}

export type { NatsServer };
