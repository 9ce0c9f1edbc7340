/**
 * Membership: every node publishes a heartbeat on `_<prefix>.hb.<node>` every
 * HEARTBEAT_INTERVAL_MS (with what it hosts), and listens to everyone's, keeping a
 * {@link MembershipView} that routers read for placement, status and health.
 */
import { HEARTBEAT_INTERVAL_MS, type DamagedReplica, type Heartbeat, type MembershipView } from '../../cluster/membership.js';
import type { ActorSystem } from '../../runtime/actor-system.js';
import type { Behavior } from '../../runtime/actor.js';

export interface MembershipDeps {
  system: ActorSystem;
  view: MembershipView;
  /** What this node hosts now, for its heartbeat. */
  hosting(): { replicas: number; leaders: number; damaged?: DamagedReplica[] };
  /** `maintenance` while an operator drains the node. */
  state(): 'up' | 'maintenance';
  intervalMs?: number;
}

type MembershipMsg = { type: 'beat' } | { type: 'heard'; hb: Heartbeat };

export function membershipBehavior(deps: MembershipDeps): Behavior<null, MembershipMsg> {
  const { system } = deps;
  const beat = (): void => {
    const hb: Heartbeat = { node: system.name, state: deps.state(), ...deps.hosting() };
    system.publish(system.subjects.internal('hb', system.name), hb);
  };
  return {
    init(ctx) {
      ctx.subscribe(system.subjects.internalAll('hb'), {
        map: (d) => ({ type: 'heard', hb: d.body as Heartbeat }),
      });
      deps.view.start(ctx.clock.now());
      ctx.every('beat', deps.intervalMs ?? HEARTBEAT_INTERVAL_MS, { type: 'beat' });
      beat();
      return null;
    },
    receive(state, msg, ctx) {
      switch (msg.type) {
        case 'beat':
          beat();
          return state;
        case 'heard':
          if (typeof msg.hb?.node === 'string') deps.view.observe(msg.hb, ctx.clock.now());
          return state;
      }
    },
  };
}
