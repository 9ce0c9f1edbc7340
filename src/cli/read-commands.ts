/** `shoal get`, `shoal search`, `shoal status`: reads, printed for people or as JSON. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Consistency, Point, SearchReply } from '../api/types.js';
import type { ClusterHealth, ClusterStatus } from '../client/client.js';
import { describeError } from '../runtime/errors.js';
import { LIMITS } from '../api/limits.js';
import { UsageError, intOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, dataRequest, printJson, table } from './connection.js';
import { EXIT_DEGRADED, EXIT_PARTIAL } from './exit-codes.js';

export function consistencyOf(v: string | undefined): Consistency | undefined {
  if (v === undefined) return undefined;
  if (v !== 'strong' && v !== 'leased' && v !== 'eventual') throw new UsageError(`--consistency must be strong, leased or eventual, got ${v}`);
  return v;
}

/**
 * A distance for people: six significant digits without trailing zeros, and float32 noise
 * around zero (1.11022e-16, 5.96046e-7) shown as 0.
 */
export function formatDistance(d: number): string {
  if (Math.abs(d) < 1e-5) return '0';
  return String(Number(d.toPrecision(6)));
}

/**
 * A vector for a table: its first `shown` components (four significant digits) and, when there
 * are more, `…(784)` with the dimension: `[0.1235, -2, 0, …(784)]`.
 */
export function formatVector(v: ArrayLike<number>, shown = 3): string {
  const head = Array.from({ length: Math.min(shown, v.length) }, (_, i) => String(Number((v[i] ?? NaN).toPrecision(4))));
  return `[${head.join(', ')}${v.length > shown ? `, …(${v.length})` : ''}]`;
}

/** A point on one line of JSON (its vector as an array of numbers): what `get` prints per point. */
export function pointLine(p: Point): string {
  return JSON.stringify(p, (_k, x: unknown) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x));
}

/** A search reply for people: the table of hits, and the line of how many shards answered. */
export function formatSearch(r: SearchReply, withVector: boolean, columns?: number): { table: string; summary: string } {
  const rows = r.hits.map((h, i) => [i + 1, h.id, formatDistance(h.distance), ...(withVector ? [h.vector ? formatVector(h.vector) : null] : []), h.metadata ? JSON.stringify(h.metadata) : null]);
  const cov = r.coverage;
  return {
    table: table(rows, ['#', 'ID', 'DISTANCE', ...(withVector ? ['VECTOR'] : []), 'METADATA'], columns),
    summary: `${r.hits.length} hits from ${cov.answered}/${cov.shards} shards${r.partial ? ` (PARTIAL: ${cov.failed.map((f) => `shard ${f.shard} ${f.reason}`).join(', ')})` : ''}${r.explain ? explainLines(r.explain) : ''}`,
  };
}

/** `--explain`: a line per shard, of the plan its index chose and how many of its points matched. */
function explainLines(explain: NonNullable<SearchReply['explain']>): string {
  return explain.map((e) => `\nshard ${e.shard}: ${e.plan}, ${e.matches} of ${e.points} points match${e.indexed ? '' : ' (counted by reading every point)'}${e.fellBack ? ' (after hnsw-postfilter found too few matches)' : ''}`).join('');
}

/** The replicas the nodes found damaged, each with its node. */
export function damagedReplicas(status: ClusterStatus): (NonNullable<ClusterStatus['nodes'][number]['damaged']>[number] & { node: string })[] {
  return status.nodes.flatMap((n) => (n.damaged ?? []).map((d) => ({ node: n.id, ...d })));
}

/** The nodes of `cluster.status` as a table. */
export function nodesTable(status: ClusterStatus, columns?: number): string {
  return table(status.nodes.map((n) => [n.id, n.state, n.lastHeartbeatMs, n.replicas, n.leaders]), ['NODE', 'STATE', 'LAST HEARTBEAT MS', 'REPLICAS', 'LEADERS'], columns);
}

/** `shoal status` for people: the nodes, then shard health and damaged replicas. */
export function formatClusterStatus(status: ClusterStatus, health: ClusterHealth, columns?: number): string {
  const damaged = damagedReplicas(status);
  const lines = [nodesTable(status, columns)];
  const unhealthy = health.shards.filter((s) => !s.leader || s.healthyFollowers < s.totalFollowers);
  lines.push(`epoch ${status.epoch}; ${health.healthy ? 'healthy' : 'NOT healthy'}: ${health.shards.length} shards, ${unhealthy.length} degraded`);
  for (const s of unhealthy) lines.push(`  ${s.collection}/${s.shard}: leader ${s.leader ?? 'none'}, ${s.healthyFollowers}/${s.totalFollowers} followers healthy`);
  if (damaged.length > 0) lines.push(`${damaged.length} damaged replica${damaged.length === 1 ? '' : 's'} (serving nothing until rebuilt):`);
  for (const d of damaged) lines.push(`  ${d.collection}/${d.shard} on ${d.node}: ${d.health}, ${d.file}: ${d.problem}`);
  return lines.join('\n');
}

function parseJsonFlag(text: string, flag: string): unknown {
  const source = text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text;
  try {
    return JSON.parse(source);
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON: ${describeError(err)}`);
  }
}

export const getCommand: Command = {
  name: 'get',
  summary: 'read points by id',
  usage: `shoal get <collection> <id>... [--consistency strong|leased|eventual] [--no-vector]\n\n${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CONNECTION_OPTIONS, consistency: { type: 'string' }, 'no-vector': { type: 'boolean' } },
    });
    const [name, ...ids] = positionals;
    if (!name || ids.length === 0) throw new UsageError('get needs a collection name and at least one id');
    const consistency = consistencyOf(values.consistency);
    const client = await clientFrom(values);
    try {
      const reply = await dataRequest<{ points: Point[] }>(client, name, 'get', { ids, withVector: !values['no-vector'], ...(consistency ? { consistency } : {}) });
      const points = reply.points;
      if (values.json) printJson(reply);
      else for (const p of points) process.stdout.write(`${pointLine(p)}\n`);
      const missing = ids.filter((id) => !points.some((p) => p.id === id));
      if (missing.length > 0) process.stderr.write(`not found: ${missing.join(', ')}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};

export const searchCommand: Command = {
  name: 'search',
  summary: 'k nearest neighbours of a vector',
  usage: `shoal search <collection> --vector '[0.1, 0.2, ...]' [--k 10] [--filter '{"region": "eu"}'] [--ef <n>]
                   [--consistency strong|leased|eventual] [--with-vector] [--shard-keys a,b] [--explain]

--vector and --filter take JSON, or @file to read it from a file. --explain prints, per shard, the
plan its index chose (exact, hnsw, hnsw-postfilter, hnsw-filtered) and how many of its points match. --shard-keys searches only the
shards of those keys (collections sharded by a custom key). A partial result (some shards did not
answer) is printed, and the exit code is ${EXIT_PARTIAL}.

${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CONNECTION_OPTIONS, vector: { type: 'string' }, k: { type: 'string' }, filter: { type: 'string' }, ef: { type: 'string' }, consistency: { type: 'string' }, 'with-vector': { type: 'boolean' }, 'shard-keys': { type: 'string' }, explain: { type: 'boolean' } },
    });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('search needs exactly one collection name');
    if (!values.vector) throw new UsageError('search needs --vector');
    const vector = parseJsonFlag(values.vector, '--vector');
    if (!Array.isArray(vector)) throw new UsageError('--vector must be a JSON array of numbers');
    const opts: Record<string, unknown> = {};
    const k = intOption(values.k, '--k', LIMITS.kMin, LIMITS.kMax);
    if (k !== undefined) opts['k'] = k;
    const ef = intOption(values.ef, '--ef', 1, LIMITS.efMax);
    if (ef !== undefined) opts['ef'] = ef;
    if (values.filter !== undefined) opts['filter'] = parseJsonFlag(values.filter, '--filter');
    const consistency = consistencyOf(values.consistency);
    if (consistency) opts['consistency'] = consistency;
    if (values['with-vector']) opts['withVector'] = true;
    if (values.explain) opts['explain'] = true;
    if (values['shard-keys'] !== undefined) opts['shardKeys'] = values['shard-keys'].split(',').filter((k) => k.length > 0);
    const client = await clientFrom(values);
    try {
      const r = await dataRequest<SearchReply>(client, name, 'search', { vector, ...opts });
      if (values.json) {
        printJson(r);
        return r.partial ? EXIT_PARTIAL : 0;
      }
      const f = formatSearch(r, Boolean(values['with-vector']));
      process.stdout.write(`${f.table}\n`);
      process.stderr.write(`${f.summary}\n`);
      return r.partial ? EXIT_PARTIAL : 0;
    } finally {
      await client.close();
    }
  },
};

export const countCommand: Command = {
  name: 'count',
  summary: 'how many points a collection holds',
  usage: `shoal count <collection> [--consistency strong|leased|eventual]\n\n${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, consistency: { type: 'string' } } });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('count needs exactly one collection name');
    const consistency = consistencyOf(values.consistency);
    const client = await clientFrom(values);
    try {
      const reply = await dataRequest<{ count: number }>(client, name, 'count', consistency ? { consistency } : {});
      if (values.json) printJson(reply);
      else process.stdout.write(`${reply.count}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};

export const searchBatchCommand: Command = {
  name: 'search-batch',
  summary: 'many searches in one request, from a JSON-lines file of queries',
  usage: `shoal search-batch <collection> --file <queries.jsonl | ->

Reads one search body per line ({"vector": [...], "k": 10, "filter": {...}, ...}; at most 100) and
prints one result per query: its hits, and whether it was partial (exit ${EXIT_PARTIAL} when any was).

${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, file: { type: 'string', short: 'f' } } });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('search-batch needs exactly one collection name');
    if (!values.file) throw new UsageError('search-batch needs --file <queries.jsonl> (or --file - for standard input)');
    const file = values.file;
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${describeError(err)}`);
    }
    const queries = text.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      try {
        return [JSON.parse(line) as { vector: number[] }];
      } catch (err) {
        throw new UsageError(`${file}:${i + 1} is not valid JSON: ${describeError(err)}`);
      }
    });
    if (queries.length === 0) throw new UsageError(`${file} holds no queries`);
    const client = await clientFrom(values);
    try {
      const reply = await dataRequest<{ results: SearchReply[] }>(client, name, 'search-batch', { queries });
      const partial = reply.results.some((r) => r.partial);
      if (values.json) {
        printJson(reply);
        return partial ? EXIT_PARTIAL : 0;
      }
      reply.results.forEach((r, q) => {
        process.stdout.write(`query ${q + 1}: ${r.hits.map((h) => `${h.id} (${formatDistance(h.distance)})`).join(', ') || 'no hits'}${r.partial ? ' PARTIAL' : ''}\n`);
      });
      return partial ? EXIT_PARTIAL : 0;
    } finally {
      await client.close();
    }
  },
};

export const statusCommand: Command = {
  name: 'status',
  summary: 'nodes, their liveness and what they host; shard health',
  usage: `shoal status\n\nExits ${EXIT_DEGRADED} when the cluster is not healthy (a shard without a leader or with unhealthy followers, or a replica whose data is damaged).\n\n${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS } });
    if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
    const client = await clientFrom(values);
    try {
      const [status, health] = await Promise.all([client.clusterStatus(), client.clusterHealth()]);
      const ok = health.healthy && damagedReplicas(status).length === 0;
      if (values.json) {
        // the cluster.status reply, with the cluster.health reply as its `health`
        printJson({ ...status, health });
        return ok ? 0 : EXIT_DEGRADED;
      }
      process.stdout.write(`${formatClusterStatus(status, health)}\n`);
      return ok ? 0 : EXIT_DEGRADED;
    } finally {
      await client.close();
    }
  },
};
