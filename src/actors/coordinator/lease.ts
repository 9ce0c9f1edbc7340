/**
 * The coordinator's lease: one key (`coordinator`) in the metadata bucket names the active
 * coordinator and its epoch. The holder renews it every tick by compare-and-set on the key's
 * revision; a standby that sees the revision unchanged for `leaseMs` on its own clock takes it
 * over, again by compare-and-set, with the epoch plus one. Only one of two racing standbys wins.
 * A holder that could not renew for `leaseMs - margin` steps down on its own, before any standby
 * can take over: no wall clocks are compared between nodes.
 */
import type { CoordinatorLease, MetadataStore } from '../../cluster/metadata.js';
import { RevisionConflictError } from '../../cluster/metadata.js';

/** How long a lease lasts without renewal. A standby takes over within this plus one tick. */
export const LEASE_MS = 5_000;
/** How often the holder renews and standbys look. */
export const LEASE_TICK_MS = 1_000;
/** The holder stops acting this long before its lease could have run out. */
const STEP_DOWN_MARGIN_MS = 1_500;

export class LeaseKeeper {
  /** The epoch of the lease this node holds, or 0 while standing by. */
  private heldEpoch = 0;
  private renewedAt = -Infinity;
  private seenRevision = -1;
  private seenAt = 0;
  /** The highest epoch this node has seen (fencing: membership changes from lower epochs are refused). */
  knownEpoch = 0;
  holder: string | null = null;

  constructor(
    private readonly meta: MetadataStore,
    private readonly node: string,
    private readonly now: () => number,
    private readonly leaseMs = LEASE_MS,
    /** Whether this node may coordinate (a node being removed may not: it gives the lease up). */
    private readonly eligible: () => boolean = () => true,
  ) {}

  /** The epoch of the lease held now, or 0 when this node is not (or may no longer be) the active coordinator. */
  epoch(): number {
    if (this.heldEpoch === 0) return 0;
    return this.now() - this.renewedAt < this.leaseMs - STEP_DOWN_MARGIN_MS ? this.heldEpoch : 0;
  }

  /** Gives the lease up (node shutdown): another node takes over at its next tick. */
  async release(): Promise<void> {
    if (this.heldEpoch === 0) return;
    const cur = await this.meta.getControl<CoordinatorLease>('coordinator');
    this.heldEpoch = 0;
    if (!cur || cur.value.node !== this.node) return;
    // An expired lease (renewedAt far back, leaseMs 0) that anyone may take at once.
    await this.meta.putControl('coordinator', { ...cur.value, leaseMs: 0 }, cur.revision).catch(() => undefined);
  }

  /** Renews, or takes over an expired lease. Returns the epoch held afterwards (0: standing by). */
  async tick(): Promise<number> {
    const now = this.now();
    const cur = await this.meta.getControl<CoordinatorLease>('coordinator');
    if (cur) {
      this.knownEpoch = Math.max(this.knownEpoch, cur.value.epoch);
      this.holder = cur.value.node;
      if (cur.revision !== this.seenRevision) {
        this.seenRevision = cur.revision;
        this.seenAt = now;
      }
    }
    const mine = cur && cur.value.node === this.node && cur.value.epoch === this.heldEpoch && this.heldEpoch > 0;
    if (!mine) this.heldEpoch = 0;
    if (!this.eligible()) {
      if (mine) await this.release();
      return 0;
    }
    const expired = !cur || now - this.seenAt >= Math.min(this.leaseMs, cur.value.leaseMs) || (cur.value.node === this.node && !mine);
    if (!mine && !expired) return 0;
    const epoch = mine ? this.heldEpoch : Math.max(this.knownEpoch, cur?.value.epoch ?? 0) + 1;
    const lease: CoordinatorLease = { node: this.node, epoch, leaseMs: this.leaseMs, renewedAt: new Date().toISOString() };
    try {
      const rev = await this.meta.putControl('coordinator', lease, cur ? cur.revision : null);
      this.heldEpoch = epoch;
      this.knownEpoch = Math.max(this.knownEpoch, epoch);
      this.holder = this.node;
      this.renewedAt = now;
      this.seenRevision = rev;
      this.seenAt = now;
      return this.epoch();
    } catch (err) {
      if (!(err instanceof RevisionConflictError)) throw err;
      this.heldEpoch = 0;
      return 0;
    }
  }
}
