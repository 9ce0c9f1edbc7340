/**
 * `shoal node`: one node process. Everything it owns lives under `--data`: the LMDB environment
 * (Raft logs, points, dedup table) and the index checkpoints. Restarted with the same data, it
 * rejoins with it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createReplicaFactory } from '../actors/replica/replica-factory.js';
import { jetstream } from '@nats-io/jetstream';
import { runNode } from '../actors/node/node.js';
import { RaftHost } from '../replication/raft-host.js';
import { registerNodeMetrics, searchPlanCounts } from '../actors/node/node-metrics.js';
import { ActorSystem } from '../runtime/actor-system.js';
import { describeError } from '../runtime/errors.js';
import { createLogger, parseLogLevel, type Logger } from '../runtime/logger.js';
import { MetricsRegistry, serveMetrics } from '../runtime/metrics.js';
import { DEFAULT_MIN_FREE_DISK_BYTES, ResourceGuard } from '../runtime/resource-guard.js';
import { DEFAULT_MAX_PENDING_REQUESTS } from '../actors/replica/request-bound.js';
import { assertToken } from '../runtime/subjects.js';
import { openNodeEnv } from '../storage/node-env.js';
import { UsageError, intOption, type Command } from './command.js';
import { lockFile } from './lock.js';
import { DOWN_AFTER_MS_MAX, DOWN_AFTER_MS_MIN, nodeSettingsFrom, parseBytes } from './ops-options.js';
import { DEFAULT_NATS_URL } from './connection.js';
import { NATS_SECURITY_OPTIONS, NATS_SECURITY_USAGE, describeSecurity, natsSecurityFrom } from './nats-security.js';
import { EXIT_FLUSH_FAILED } from './exit-codes.js';
import { setupTelemetry } from './telemetry.js';
import { shoalVersion } from './version.js';
import { missingNodeFlags } from './node-flags.js';
import { imagesOf, lazyBackupStore } from '../cluster/backup-store.js';

export const DEFAULT_INDEX_WORKERS = 1;
/** The least --max-memory taken: a node needs about this much to start. */
export const MIN_MAX_MEMORY_BYTES = 16 * 2 ** 20;

const USAGE = `shoal node --id <id> --nats <url> --data <dir> [--prefix shoal] [--metrics-port <port>] [--index-workers ${DEFAULT_INDEX_WORKERS}]
           [--zone <label>] [--down-after-ms 5000] [--replace-after-ms 60000]
           [--max-memory <bytes>] [--min-free-disk 256MiB] [--max-pending-requests ${DEFAULT_MAX_PENDING_REQUESTS}]
           [--tls-ca <file>] [--tls-cert <file> --tls-key <file>] [--creds <file> | --user <name> --password <pw>]

Runs one node: its replicas, a router for the public API, and membership heartbeats.
--zone labels the node's failure domain (a rack, a data centre): a shard's replicas go to distinct
zones first, then distinct nodes. A node not heard from for --down-after-ms (${DOWN_AFTER_MS_MIN} to ${DOWN_AFTER_MS_MAX}) is
down; one down for longer than --replace-after-ms is dead, and its replicas are rebuilt elsewhere
(shoal rebalance configure --replace-after-ms changes it for the whole cluster).
Resource limits (docs/operations.md): writes are refused with UNAVAILABLE, naming the node and the
limit, while the data directory's filesystem has --min-free-disk or less free, or while the
process's memory is at 90% of --max-memory or more (none by default; bytes, or with a unit: 4GiB);
reads go on, and writes resume by themselves once the limit is clear. Past --max-pending-requests
client requests in flight on this node, new ones are refused with UNAVAILABLE at once.
Every flag may come from the environment instead: SHOAL_ID, SHOAL_NATS_URL (comma-separated
URLs), SHOAL_DATA, SHOAL_PREFIX, SHOAL_METRICS_PORT, SHOAL_INDEX_WORKERS, SHOAL_ZONE,
SHOAL_DOWN_AFTER_MS, SHOAL_REPLACE_AFTER_MS, SHOAL_MAX_MEMORY, SHOAL_MIN_FREE_DISK,
SHOAL_MAX_PENDING_REQUESTS, and SHOAL_KV_REPLICAS (replicas of the metadata
bucket on a clustered NATS, default 1). SHOAL_RAFT_READ_PIPELINE=1 holds a node's read
confirmations to a peer while one exchange with it is out (docs/protocol.md; default 0), and
SHOAL_RAFT_PUBLISH_ANSWERS=0 sends frames of Raft answers as requests (default 1); both for measuring.
SHOAL_RAFT_COMPACT_BYTES and SHOAL_RAFT_COMPACT_KEEP_BYTES
size the Raft log's compaction (default 8MiB and 4MiB; docs/operations.md, What the data directory holds).

Logs: JSON lines on standard error, each with level, time, node and msg (and trace_id, span_id
and request_id while a request is handled); SHOAL_LOG_LEVEL is debug, info (default), warn,
error or silent (docs/operations.md, Logs).

Connecting to a NATS server that requires TLS or authentication (docs/security.md; the user
needs the node permissions of deploy/nats/permissions.conf):
${NATS_SECURITY_USAGE}

Prints "ready" on standard output once it serves; SIGTERM or Ctrl-C stops it cleanly.`;

export const nodeCommand: Command = {
  name: 'node',
  summary: 'run one node of a cluster (replicas, a router, heartbeats)',
  usage: USAGE,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        id: { type: 'string' }, nats: { type: 'string' }, data: { type: 'string' }, prefix: { type: 'string' },
        'metrics-port': { type: 'string' }, 'index-workers': { type: 'string' },
        zone: { type: 'string' }, 'down-after-ms': { type: 'string' }, 'replace-after-ms': { type: 'string' },
        'max-memory': { type: 'string' }, 'min-free-disk': { type: 'string' }, 'max-pending-requests': { type: 'string' },
        ...NATS_SECURITY_OPTIONS,
      },
    });
    const env = process.env;
    const id = values.id ?? env['SHOAL_ID'];
    if (!id) throw new UsageError('node needs --id (or SHOAL_ID)');
    try {
      assertToken(id, 'node id');
    } catch (err) {
      throw new UsageError(describeError(err));
    }
    const dataArg = values.data ?? env['SHOAL_DATA'];
    if (!dataArg) throw new UsageError('node needs --data <dir> (or SHOAL_DATA)');
    const natsUrl = values.nats ?? env['SHOAL_NATS_URL'] ?? DEFAULT_NATS_URL;
    const prefix = values.prefix ?? env['SHOAL_PREFIX'] ?? 'shoal';
    const metricsPort = intOption(values['metrics-port'] ?? env['SHOAL_METRICS_PORT'], '--metrics-port', 0, 65535);
    const indexWorkers = intOption(values['index-workers'] ?? env['SHOAL_INDEX_WORKERS'], '--index-workers', 1, 64) ?? DEFAULT_INDEX_WORKERS;
    const kvReplicas = intOption(env['SHOAL_KV_REPLICAS'], 'SHOAL_KV_REPLICAS', 1, 5);
    const settings = nodeSettingsFrom(values, env);
    const maxMemoryText = values['max-memory'] ?? env['SHOAL_MAX_MEMORY'];
    const maxMemoryBytes = maxMemoryText ? parseBytes(maxMemoryText, '--max-memory') : undefined;
    if (maxMemoryBytes !== undefined && maxMemoryBytes < MIN_MAX_MEMORY_BYTES) throw new UsageError(`--max-memory must be at least ${MIN_MAX_MEMORY_BYTES / 2 ** 20} MiB, got '${maxMemoryText}'`);
    const minFreeText = values['min-free-disk'] ?? env['SHOAL_MIN_FREE_DISK'];
    const minFreeDiskBytes = minFreeText ? parseBytes(minFreeText, '--min-free-disk') : DEFAULT_MIN_FREE_DISK_BYTES;
    const maxPendingRequests = intOption(values['max-pending-requests'] ?? env['SHOAL_MAX_PENDING_REQUESTS'], '--max-pending-requests', 1, 1_000_000) ?? DEFAULT_MAX_PENDING_REQUESTS;
    // the Raft log's compaction by bytes (raft-options.ts, DEFAULT_COMPACT_BYTES; docs/operations.md)
    const compactText = env['SHOAL_RAFT_COMPACT_BYTES'];
    const compactKeepText = env['SHOAL_RAFT_COMPACT_KEEP_BYTES'];
    const raftOptions: { compactBytes?: number; compactKeepBytes?: number; readPipeline?: boolean; publishAnswers?: boolean } = {
      ...(compactText ? { compactBytes: parseBytes(compactText, 'SHOAL_RAFT_COMPACT_BYTES') } : {}),
      ...(compactKeepText ? { compactKeepBytes: parseBytes(compactKeepText, 'SHOAL_RAFT_COMPACT_KEEP_BYTES') } : {}),
    };
    const security = natsSecurityFrom(values, env);
    for (const [name, key] of [['SHOAL_RAFT_READ_PIPELINE', 'readPipeline'], ['SHOAL_RAFT_PUBLISH_ANSWERS', 'publishAnswers']] as const) {
      const text = env[name];
      if (text === undefined) continue;
      if (text !== '0' && text !== '1') throw new UsageError(`${name} must be 0 or 1, got '${text}'`);
      raftOptions[key] = text === '1';
    }
    const logLevelText = env['SHOAL_LOG_LEVEL'];
    let log: Logger;
    try {
      // Every line this node logs carries its id (docs/operations.md, Logs).
      log = createLogger({ node: id }, logLevelText ? parseLogLevel(logLevelText, 'SHOAL_LOG_LEVEL') : undefined);
    } catch (err) {
      throw new UsageError(describeError(err));
    }
    const data = resolve(dataArg);
    mkdirSync(data, { recursive: true });
    const releaseLock = lockDataDir(data, id);

    const telemetry = setupTelemetry({ serviceName: `shoal-node-${id}` });
    const system = await ActorSystem.connect(natsUrl.split(','), { name: id, prefix, security, log });
    const lmdb = openNodeEnv({ path: join(data, 'lmdb') });
    const guard = await ResourceGuard.start({ nodeId: id, dataDir: data, minFreeDiskBytes, maxMemoryBytes, clock: system.clock, log: system.log });
    const raft = await RaftHost.start({
      writeGate: () => guard.writeError(),
      system,
      env: lmdb,
      nodeId: id,
      options: raftOptions,
      // Fail-stop: a node that cannot flush its Raft log exits at once (without writing anything
      // more) and recovers from what is on disk when it is started again.
      onFatal: (err) => {
        // Written synchronously: the line is out before the exit.
        log.error('the raft log could not be flushed; exiting so that a restart recovers from disk', { error: describeError(err) });
        process.exit(EXIT_FLUSH_FAILED);
      },
    });
    const changes = { js: jetstream(system.nc), subjects: system.subjects };
    const backups = lazyBackupStore(system.nc, prefix, kvReplicas ?? 1);
    const factory = createReplicaFactory({ raft, env: lmdb, dataDir: data, indexWorkers, log: system.log, maxPendingRequests, changes, images: imagesOf(backups) });
    const metrics = new MetricsRegistry().withProcessMetrics();
    const version = shoalVersion();
    const node = await runNode({ system, factory, raft, version, metrics, backups, ...(kvReplicas ? { kvReplicas } : {}), ...settings });
    const bound = factory.requestBound;
    registerNodeMetrics(metrics, {
      raft,
      node,
      version,
      points: () => factory.pointCounts(),
      leaderChanges: () => factory.leaderChanges(),
      checkpoints: () => factory.checkpointCounts(),
      searchPlans: () => searchPlanCounts(factory.indexHosts),
      postfilterFallbacks: () => factory.indexHosts.reduce((n, h) => n + h.postfilterFallbacks, 0),
      changeOutbox: () => factory.changeOutboxSizes(),
      changesPublished: () => factory.changesPublished(),
      resources: { sample: () => guard.sample(), minFreeDiskBytes: guard.minFreeDiskBytes, maxMemoryBytes: guard.maxMemoryBytes, pending: () => bound.pending, maxPending: bound.limit, refusedPending: () => bound.refused },
      storageBytes: () => dirBytes(join(data, 'lmdb')),
    });
    const metricsServer = metricsPort !== undefined ? await serveMetrics(metrics, metricsPort, { ready: async () => ({ ...(await node.readiness.check()) }) }) : undefined;
    const missing = missingNodeFlags(process.execArgv);
    if (missing.length > 0) system.log.info('node started without the Node.js flags it runs best with: bulk loads spend more CPU collecting garbage (docs/deploy.md, Node.js flags)', { missing: missing.join(' ') });
    system.log.info('node ready', { nats: natsUrl, natsSecurity: describeSecurity(security), data, prefix, metricsPort: metricsServer?.port, minFreeDiskBytes, maxMemoryBytes, maxPendingRequests, ...settings });
    process.stdout.write(`ready ${id}\n`);

    await stopSignal();
    system.log.info('node stopping');
    const hardStop = setTimeout(() => {
      log.error('clean stop took over 15 s; exiting');
      process.exit(1);
    }, 15_000);
    hardStop.unref();
    // Order: stop serving (router, replicas), then Raft, then the state machines and LMDB.
    guard.stop();
    await node.stop().catch((e: unknown) => system.log.warn('node stop', { error: describeError(e) }));
    await raft.stop().catch((e: unknown) => system.log.warn('raft stop', { error: describeError(e) }));
    await factory.closeAll().catch((e: unknown) => system.log.warn('replicas close', { error: describeError(e) }));
    await lmdb.close();
    await metricsServer?.close();
    await telemetry.shutdown().catch(() => undefined);
    releaseLock();
    return 0;
  },
};

/** Bytes of the files directly in `dir` (0 when it cannot be read). */
function dirBytes(dir: string): number {
  try {
    return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

/** SIGTERM, SIGINT, or (when started by `shoal dev` or a test) the end of standard input. */
function stopSignal(): Promise<void> {
  return new Promise((resolveStop) => {
    const done = (): void => resolveStop();
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
    if (process.env['SHOAL_EXIT_ON_STDIN_EOF'] === '1') {
      process.stdin.on('data', () => undefined);
      process.stdin.once('end', done);
      process.stdin.once('close', done);
    }
  });
}

/**
 * One process per data directory: a lock file holding the pid (a stale one, whose process is
 * gone, is taken over), and the node id the directory belongs to.
 */
function lockDataDir(dir: string, id: string): () => void {
  const idFile = join(dir, 'node-id');
  if (existsSync(idFile)) {
    const owner = readFileSync(idFile, 'utf8').trim();
    if (owner !== id) throw new UsageError(`${dir} holds the data of node '${owner}', not '${id}'`);
  } else {
    writeFileSync(idFile, `${id}\n`);
  }
  return lockFile(join(dir, 'node.lock'), 'another node process');
}
