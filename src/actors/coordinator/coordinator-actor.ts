/**
 * The coordinator actor of a node: ticks the {@link Coordinator} (lease, planning, moves) and,
 * while it is the active one, answers the operations routers forward to it on
 * {@link coordinatorSubject}. On standby it only watches the lease.
 */
import { validateConfigure, validateMaintenance, validateRebalanceStart, validateRemove, validateReshard } from '../../api/ops.js';
import * as f from '../../api/fields.js';
import type { Behavior, Subscription } from '../../runtime/actor.js';
import { InvalidArgumentError, describeError } from '../../runtime/errors.js';
import type { Subjects } from '../../runtime/subjects.js';
import type { Coordinator } from './coordinator.js';
import { LEASE_TICK_MS } from './lease.js';

/** Where routers send operations for the active coordinator (only it subscribes). */
export function coordinatorSubject(s: Subjects): string {
  return s.internal('coordinator');
}

/** The operations a router forwards to the coordinator. */
export const COORDINATOR_OPS = ['nodes.maintenance', 'nodes.remove', 'rebalance.status', 'rebalance.start', 'rebalance.pause', 'rebalance.resume', 'rebalance.configure', 'collections.reshard'] as const;
export type CoordinatorOp = (typeof COORDINATOR_OPS)[number];

export interface CoordinatorRequest {
  op: CoordinatorOp;
  body: unknown;
  /** When the router's caller stops waiting (ms from now). */
  timeoutMs: number;
}

type Msg = { type: 'tick' } | { type: 'renewed' } | { type: 'worked' } | ({ type: 'op' } & CoordinatorRequest);

interface State {
  renewing: boolean;
  working: boolean;
  sub: Subscription | undefined;
}

export function coordinatorBehavior(coord: Coordinator, subjects: Subjects): Behavior<State, Msg> {
  return {
    init(ctx) {
      ctx.every('tick', LEASE_TICK_MS, { type: 'tick' });
      ctx.post({ type: 'tick' });
      return { renewing: false, working: false, sub: undefined };
    },
    receive(state, msg, ctx) {
      switch (msg.type) {
        case 'tick': {
          // The lease is renewed on its own, every tick: planning and moves that take long never hold it up.
          const post = ctx.poster();
          if (!state.renewing) {
            state.renewing = true;
            coord.renew().then(
              () => post({ type: 'renewed' }),
              (err: unknown) => {
                ctx.log.warn('coordinator lease renewal failed', { error: describeError(err) });
                post({ type: 'renewed' });
              },
            );
          }
          if (!state.working && coord.active) {
            state.working = true;
            coord.tick().then(
              () => post({ type: 'worked' }),
              (err: unknown) => {
                ctx.log.warn('coordinator tick failed', { error: describeError(err) });
                post({ type: 'worked' });
              },
            );
          }
          return state;
        }
        case 'worked':
          state.working = false;
          return state;
        case 'renewed':
          state.renewing = false;
          if (coord.active && !state.sub) {
            state.sub = ctx.subscribe(coordinatorSubject(subjects), { map: (d) => ({ type: 'op', ...(d.body as CoordinatorRequest) }) });
            ctx.log.info('coordinator active', { epoch: coord.lease.epoch() });
          } else if (!coord.active && state.sub) {
            state.sub.unsubscribe();
            state.sub = undefined;
            ctx.log.info('coordinator on standby');
          }
          return state;
        case 'op': {
          const reply = ctx.deferReply();
          handle(coord, msg, ctx.clock.now()).then(
            (v) => reply.resolve(v),
            (e: unknown) => reply.reject(e),
          );
          return state;
        }
      }
    },
    async cleanup() {
      await coord.stop();
    },
    describe: (msg) => (msg.type === 'op' ? `op ${msg.op}` : msg.type),
    // one coordinator is active (holds the lease) per cluster; the others stand by
    summary: () => ({ active: coord.active, epoch: coord.lease.epoch() }),
  };
}

async function handle(coord: Coordinator, req: CoordinatorRequest, now: number): Promise<unknown> {
  const deadline = now + Math.max(1, Number(req.timeoutMs) || 5_000);
  switch (req.op) {
    case 'nodes.maintenance': {
      const r = validateMaintenance(req.body);
      return coord.maintenance(r.node, r.on, deadline);
    }
    case 'nodes.remove':
      return coord.remove(validateRemove(req.body).node);
    case 'rebalance.status':
      f.body(req.body, 'rebalance.status', ['timeoutMs']);
      return coord.status();
    case 'rebalance.start':
      return coord.start(validateRebalanceStart(req.body).dryRun);
    case 'rebalance.pause':
      f.body(req.body, 'rebalance.pause', ['timeoutMs']);
      return coord.configure({ paused: true });
    case 'rebalance.resume':
      f.body(req.body, 'rebalance.resume', ['timeoutMs']);
      return coord.configure({ paused: false });
    case 'rebalance.configure': {
      const { timeoutMs: _t, ...settings } = validateConfigure(req.body);
      return coord.configure(settings);
    }
    case 'collections.reshard': {
      const r = validateReshard(req.body);
      return coord.reshards.start(r.name, r.shards, r.boundaries);
    }
    default:
      throw new InvalidArgumentError(`unknown coordinator operation ${String(req.op)}`);
  }
}
