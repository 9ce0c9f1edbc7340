/**
 * The coordinator's leadership work (DESIGN.md, Moves): which node leads each shard, and the
 * transfers that hand leaderships away from maintenance and draining nodes and, when balancing,
 * even them out over the up nodes, as the planner says (src/cluster/planner.ts).
 */
import type { CollectionRecord } from '../../cluster/metadata.js';
import { planLeaderTransfers, type PlanInput } from '../../cluster/planner.js';
import { describeError } from '../../runtime/errors.js';
import { leaderSubject, type ShardStatus } from '../shard-protocol.js';
import type { CoordinatorDeps } from './coordinator.js';

/** How long a shard status request may take. */
const STATUS_MS = 1_000;

export class Leaderships {
  /** Shards with a transfer in flight (`uid/shard`). */
  private readonly transfers = new Set<string>();

  constructor(private readonly deps: Pick<CoordinatorDeps, 'requester' | 'subjects' | 'log' | 'membership' | 'clock'>) {}

  /** Each shard's status from its leader (undefined without one). */
  private async statuses(records: CollectionRecord[]): Promise<{ collection: string; uid: string; shard: number; st: ShardStatus | undefined }[]> {
    const d = this.deps;
    return Promise.all(
      records.flatMap((r) =>
        r.placement.map(async (p) => ({
          collection: r.name,
          uid: r.uid,
          shard: p.shard,
          st: await d.requester.request<ShardStatus>(leaderSubject(d.subjects, r.uid, p.shard), { type: 'status' }, { timeoutMs: STATUS_MS }).catch(() => undefined),
        })),
      ),
    );
  }

  /** The shards `node` leads now. */
  async on(records: CollectionRecord[], node: string): Promise<{ collection: string; shard: number }[]> {
    return (await this.statuses(records)).filter((s) => s.st?.node === node);
  }

  /**
   * Hands leaderships away from maintenance and draining nodes, and (with `balance`) evens them
   * out over the up nodes, as the planner says of `input` (the cluster without leaders: filled in here).
   */
  async even(records: CollectionRecord[], input: PlanInput, balance: boolean): Promise<void> {
    const statuses = await this.statuses(records);
    for (const s of input.shards) {
      const st = statuses.find((x) => x.uid === s.uid && x.shard === s.shard)?.st;
      s.leader = st?.node ?? null;
      if (st) s.voters = [...st.voters];
    }
    const now = this.deps.clock.now();
    const transfers = planLeaderTransfers(input).filter((t) => balance || this.deps.membership.stateOf(t.from, now) !== 'up');
    await Promise.all(
      transfers.slice(0, 8).map(async (t) => {
        const key = `${t.uid}/${t.shard}`;
        if (this.transfers.has(key)) return;
        this.transfers.add(key);
        try {
          await this.deps.requester.request(leaderSubject(this.deps.subjects, t.uid, t.shard), { type: 'transfer', to: t.to, timeoutMs: 3_000 }, { timeoutMs: 3_000 });
        } catch (err) {
          this.deps.log.info('leadership transfer failed', { shard: `${t.collection}/${t.shard}`, to: t.to, error: describeError(err) });
        } finally {
          this.transfers.delete(key);
        }
      }),
    );
  }
}
