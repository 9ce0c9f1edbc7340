/** The console's view of the cluster: `nodes`, `collections`, `describe`, `shard`, `status`. */
import type { ShardStatus } from '../../actors/shard-protocol.js';
import { LIMITS } from '../../api/limits.js';
import { NotFoundError, describeError } from '../../runtime/errors.js';
import { UsageError, intOption } from '../command.js';
import { formatCollectionList, formatDescription } from '../collections-command.js';
import { table } from '../connection.js';
import { EXIT_DEGRADED } from '../exit-codes.js';
import { damagedReplicas, formatClusterStatus, nodesTable } from '../read-commands.js';
import { parseCommandArgs, type ConsoleCommand } from './registry.js';
import type { ConsoleSession } from './session.js';

const none = { min: 0, max: 0, what: '' };

export const nodesCmd: ConsoleCommand = {
  name: 'nodes',
  args: '',
  summary: 'the nodes: state (up, down, dead, maintenance, draining), replicas, leaderships',
  async run(args, s) {
    parseCommandArgs(args, {}, none);
    const status = await s.client.clusterStatus();
    return { text: nodesTable(status, s.columns()), json: status };
  },
};

export const statusCmd: ConsoleCommand = {
  name: 'status',
  summary: 'nodes and shard health, as `shoal status` (exit 3 in scripts when not healthy)',
  args: '',
  async run(args, s) {
    parseCommandArgs(args, {}, none);
    const [status, health] = await Promise.all([s.client.clusterStatus(), s.client.clusterHealth()]);
    const ok = health.healthy && damagedReplicas(status).length === 0;
    return { text: formatClusterStatus(status, health, s.columns()), json: { ...status, health }, code: ok ? 0 : EXIT_DEGRADED };
  },
};

export const collectionsCmd: ConsoleCommand = {
  name: 'collections',
  args: '',
  summary: 'the collections: dimension, metric, shards, replicas, points',
  async run(args, s) {
    parseCommandArgs(args, {}, none);
    const reply = await s.client.request<{ collections: Parameters<typeof formatCollectionList>[0] }>(s.client.adminSubject('collections', 'list'), {});
    return { text: formatCollectionList(reply.collections, s.columns()), json: reply };
  },
};

export const describeCmd: ConsoleCommand = {
  name: 'describe',
  args: '<collection>',
  summary: 'a collection\'s settings, and each shard\'s leader and replicas',
  complete: ['collection'],
  async run(args, s) {
    const { positionals } = parseCommandArgs(args, {}, { min: 1, max: 1, what: 'the collection' });
    const reply = await s.client.request<{ collection: Parameters<typeof formatDescription>[0] }>(s.client.adminSubject('collections', 'describe'), { name: positionals[0] });
    return { text: formatDescription(reply.collection, s.columns()), json: reply };
  },
};

/** `docs/0` → the collection and the shard number; a UsageError names the argument otherwise. */
export function shardArg(text: string | undefined): { collection: string; shard: number } {
  const m = /^([^/]+)\/(\d+)$/.exec(text ?? '');
  if (!m) throw new UsageError(`the shard must be <collection>/<n> (e.g. docs/0), got ${text === undefined ? 'nothing' : `'${text}'`}`);
  return { collection: m[1] as string, shard: intOption(m[2], 'shard number', 0, LIMITS.shardsMax - 1) as number };
}

/** One replica's row of `shard`: its node, its actor, and its Raft state (or why it did not answer). */
export interface ReplicaRaft {
  node: string;
  /** `<node>/<name>`; null for a replica whose node did not answer. */
  actor: string | null;
  status: ShardStatus | null;
  error: string | null;
}

/**
 * Every replica of a shard, found by introspection (each replica actor reports its collection and
 * shard), each asked for its status on its own actor subject: a follower's Raft state comes from
 * itself, not from its leader's view of it. A replica the collection's describe places on a node
 * that did not answer introspection (down, paused) is a row without status.
 */
export async function shardReplicas(s: ConsoleSession, collection: string, shard: number): Promise<ReplicaRaft[]> {
  const [reports, described] = await Promise.all([
    s.introspect(),
    s.client.describeCollection(collection).catch((err: unknown) => {
      if (err instanceof NotFoundError) throw err;
      return undefined; // the introspection still tells what answers
    }),
  ]);
  const found = reports.flatMap((r) => r.actors.filter((a) => a.kind === 'replica' && a.state?.['collection'] === collection && a.state['shard'] === shard).map((a) => s.actor(`${r.system}/${a.name}`)));
  const placed = described?.shards.find((x) => x.shard === shard)?.replicas.map((r) => r.node) ?? [];
  if (described && !described.shards.some((x) => x.shard === shard)) throw new NotFoundError(`collection '${collection}' has shards 0 to ${described.shards.length - 1}, not ${shard}`);
  if (found.length === 0 && placed.length === 0) throw new NotFoundError(`no replica of ${collection}/${shard} on any of the ${reports.length} nodes that answered (see \`collections\`)`);
  const silent = placed.filter((n) => !found.some((a) => a.system === n)).map((node) => ({ node, actor: null, status: null, error: 'its node did not answer introspection (down?)' }));
  const asked = await Promise.all(
    found.map(async (a) => {
      try {
        return { node: a.system, actor: `${a.system}/${a.name}`, status: (await s.ask(a, { type: 'status' })) as ShardStatus, error: null };
      } catch (err) {
        return { node: a.system, actor: `${a.system}/${a.name}`, status: null, error: describeError(err) };
      }
    }),
  );
  return [...asked, ...silent];
}

/**
 * The table of `shard`. MATCH is the leader's match index for the replica (its own last index for
 * itself); LAG the entries the replica's log lacks of the leader's; LEASES, on the leader, the
 * followers holding a read lease (on a follower, 1 while it holds one); READS the reads it
 * served (as leader: read indexes it gave; as follower: reads it served).
 */
export function formatShard(replicas: ReplicaRaft[], columns?: number): string {
  const leader = replicas.map((r) => r.status).filter((st): st is ShardStatus => st?.role === 'leader').sort((a, b) => b.term - a.term)[0];
  const rows = replicas.map((r) => {
    const st = r.status;
    if (!st) return [r.node, 'no answer', null, null, null, null, null, null, null, r.error];
    const match = leader ? (st.node === leader.node ? leader.lastIndex : (leader.progress.find((p) => p.node === st.node)?.matchIndex ?? null)) : null;
    const reads = st.role === 'leader' ? st.reads.leaseHits + st.reads.others : st.followerReads.reads + st.followerReads.leased;
    return [r.node, st.role, st.term, st.commitIndex, st.appliedIndex, match, leader && match !== null ? leader.lastIndex - match : null, st.reads.leases, reads, st.health];
  });
  return table(rows, ['NODE', 'ROLE', 'TERM', 'COMMIT', 'APPLIED', 'MATCH', 'LAG', 'LEASES', 'READS', 'HEALTH'], columns);
}

export const shardCmd: ConsoleCommand = {
  name: 'shard',
  args: '<collection>/<n>',
  summary: 'every replica\'s Raft state: role, term, commit, applied, match, lag, leases, reads',
  more: 'Each replica answers for itself (on its actor subject); MATCH and LAG are the leader\'s view:\nLAG is how many entries of the leader\'s log the replica lacks.',
  complete: ['shard'],
  async run(args, s) {
    const { positionals } = parseCommandArgs(args, {}, { min: 1, max: 1, what: 'the shard (<collection>/<n>)' });
    const { collection, shard } = shardArg(positionals[0]);
    const replicas = (await shardReplicas(s, collection, shard)).sort((a, b) => a.node.localeCompare(b.node));
    return { text: `${collection}/${shard}\n${formatShard(replicas, s.columns())}`, json: { collection, shard, replicas } };
  },
};
