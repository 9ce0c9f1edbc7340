/**
 * The router: a stateless actor serving the public API (PROTOCOL.md). Every node runs one; they
 * share a NATS queue group, so NATS spreads clients over them. Requests are handled
 * concurrently (each answered when its shards have answered), counted per endpoint for the NATS
 * micro service protocol (`$SRV.STATS`), and bounded in number.
 */
import { performance } from 'node:perf_hooks';
import { isValidCollectionName } from '../../api/validate.js';
import type { CollectionCache } from '../../cluster/collection-cache.js';
import type { Behavior } from '../../runtime/actor.js';
import { NotFoundError, UnavailableError, toPublicError } from '../../runtime/errors.js';
import type { EndpointStats, MicroService } from '../../runtime/micro-service.js';
import { currentRequestId, withRequestId } from '../../runtime/request-context.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { RouterMetrics } from '../node/node-metrics.js';
import type { AdminRouter } from './router-admin.js';
import type { BackupsRouter } from './router-backups.js';
import type { DataRouter } from './router-data.js';

export const ROUTER_QUEUE_GROUP = 'shoal-routers';
/** Requests one router works on at once; past it, new ones are refused as UNAVAILABLE. */
export const MAX_IN_FLIGHT = 4_096;

export const DATA_OPS = ['upsert', 'delete', 'get', 'search', 'search-batch', 'count'] as const;
export const ADMIN_OPS = [
  ['collections', 'create'],
  ['collections', 'list'],
  ['collections', 'describe'],
  ['collections', 'drop'],
  ['collections', 'reshard'],
  ['cluster', 'status'],
  ['cluster', 'health'],
  ['nodes', 'maintenance'],
  ['nodes', 'remove'],
  ['shards', 'transfer-leader'],
  ['rebalance', 'status'],
  ['rebalance', 'start'],
  ['rebalance', 'pause'],
  ['rebalance', 'resume'],
  ['rebalance', 'configure'],
  ['backups', 'create'],
  ['backups', 'list'],
  ['backups', 'delete'],
  ['backups', 'restore'],
] as const;

type DataOp = (typeof DATA_OPS)[number];

export type RouterMsg =
  | { type: 'data'; op: DataOp; collection: string | undefined; body: unknown }
  | { type: 'admin'; op: string; body: unknown };

export interface RouterDeps {
  metrics?: RouterMetrics | undefined;
  subjects: Subjects;
  data: DataRouter;
  admin: AdminRouter;
  /** Absent: backups.* are UNAVAILABLE (a node without the backups object store). */
  backups?: BackupsRouter | undefined;
  collections: CollectionCache;
  service: MicroService;
}

export function routerBehavior(deps: RouterDeps): Behavior<{ inFlight: number; stats: Map<string, EndpointStats> }, RouterMsg> {
  return {
    init(ctx) {
      const stats = new Map<string, EndpointStats>();
      for (const op of DATA_OPS) {
        const subject = deps.subjects.apiPattern(op);
        stats.set(op, deps.service.endpoint(op, subject, ROUTER_QUEUE_GROUP));
        ctx.subscribe(subject, {
          queue: ROUTER_QUEUE_GROUP,
          codec: 'edge',
          map: (d) => ({ type: 'data', op, collection: deps.subjects.collectionOf(d.subject), body: d.body }),
        });
      }
      for (const [area, op] of ADMIN_OPS) {
        const name = `${area}.${op}`;
        const subject = deps.subjects.admin(area, op);
        stats.set(name, deps.service.endpoint(name, subject, ROUTER_QUEUE_GROUP));
        ctx.subscribe(subject, { queue: ROUTER_QUEUE_GROUP, codec: 'edge', map: (d) => ({ type: 'admin', op: name, body: d.body }) });
      }
      return { inFlight: 0, stats };
    },
    receive(state, msg, ctx) {
      const reply = ctx.deferReply();
      const endpoint = state.stats.get(msg.op);
      if (state.inFlight >= MAX_IN_FLIGHT) {
        const err = new UnavailableError(`router ${ctx.self.system} is at its limit of ${MAX_IN_FLIGHT} requests in flight`);
        endpoint?.record(0, err.message);
        reply.reject(err);
        return state;
      }
      state.inFlight++;
      const t0 = performance.now();
      // The client's requestId names the request in every line logged while it is handled.
      withRequestId(clientRequestId(msg.body) ?? currentRequestId(), () => {
        ctx.log.debug('request', { op: msg.op, ...(msg.type === 'data' ? { collection: msg.collection } : {}) });
        void route(deps, msg).then(
          (value) => {
            state.inFlight--;
            const ms = performance.now() - t0;
            endpoint?.record(ms);
            deps.metrics?.request(msg.op, ms, 'OK');
            reply.resolve(value);
          },
          (err: unknown) => {
            state.inFlight--;
            const e = toPublicError(err);
            const ms = performance.now() - t0;
            endpoint?.record(ms, e.message);
            deps.metrics?.request(msg.op, ms, e.code);
            if (e.code === 'INTERNAL') ctx.log.error('request failed', { op: msg.op, error: e.message });
            reply.reject(e);
          },
        );
      });
      return state;
    },
    describe: (msg) => `${msg.type} ${msg.op}`,
    tracing: {
      name: (msg) => `shoal.${msg.op}`,
      // A client's request starts a trace; a look at the cluster (status, health, listings) does not.
      root: (msg) => msg.type === 'data' || !INTROSPECTION.test(msg.op),
      attributes: (msg) => (msg.type === 'data' && msg.collection !== undefined ? { 'db.operation.name': msg.op, 'db.collection.name': msg.collection, 'shoal.collection': msg.collection } : { 'db.operation.name': msg.op }),
    },
  };
}

/** Admin operations that only look: they start no trace of their own. */
const INTROSPECTION = /(\.status|\.health|\.list|\.describe)$/;

async function route(deps: RouterDeps, msg: RouterMsg): Promise<unknown> {
  if (msg.type === 'admin') {
    switch (msg.op) {
      case 'collections.create':
        return deps.admin.create(msg.body);
      case 'collections.list':
        return deps.admin.list(msg.body);
      case 'collections.describe':
        return deps.admin.describe(msg.body);
      case 'collections.drop':
        return deps.admin.drop(msg.body);
      case 'collections.reshard':
        return deps.admin.reshard(msg.body);
      case 'cluster.status':
        return deps.admin.status(msg.body);
      case 'cluster.health':
        return deps.admin.health(msg.body);
      case 'shards.transfer-leader':
        return deps.admin.transferLeader(msg.body);
      case 'nodes.maintenance':
      case 'nodes.remove':
      case 'rebalance.status':
      case 'rebalance.start':
      case 'rebalance.pause':
      case 'rebalance.resume':
      case 'rebalance.configure':
        return deps.admin.operate(msg.op, msg.body);
      case 'backups.create':
      case 'backups.list':
      case 'backups.delete':
      case 'backups.restore': {
        if (!deps.backups) throw new UnavailableError('this node has no backups object store');
        const b = deps.backups;
        const op = msg.op.slice('backups.'.length) as 'create' | 'list' | 'delete' | 'restore';
        return b[op](msg.body);
      }
      default:
        throw new NotFoundError(`unknown admin operation ${msg.op}`);
    }
  }
  const name = msg.collection;
  if (name === undefined || !isValidCollectionName(name)) throw new NotFoundError(`collection '${name ?? ''}' does not exist`);
  let c = await deps.collections.get(name);
  // a restore clears `restoring` when it is done: a cached record that still says so is read again
  if (c?.record.restoring) c = await deps.collections.refresh(name);
  if (!c) throw new NotFoundError(`collection '${name}' does not exist`);
  if (c.record.restoring) throw new UnavailableError(`collection '${name}' is restoring from backup '${c.record.restoring.backup}'; it serves once every shard is restored`);
  switch (msg.op) {
    case 'upsert':
      return deps.data.upsert(c, msg.body);
    case 'delete':
      return deps.data.delete(c, msg.body);
    case 'get':
      return deps.data.get(c, msg.body);
    case 'search':
      return deps.data.search(c, msg.body);
    case 'search-batch':
      return deps.data.searchBatch(c, msg.body);
    case 'count':
      return deps.data.count(c, msg.body);
  }
}

/** The `requestId` a client gave in its request body, if it gave one (validation comes later). */
function clientRequestId(body: unknown): string | undefined {
  const id = typeof body === 'object' && body !== null ? (body as { requestId?: unknown }).requestId : undefined;
  return typeof id === 'string' && id !== '' ? id : undefined;
}
