/**
 * Writers through the public API, as an outside client would write (plain NATS requests with
 * JSON bodies, a `requestId` per write, `timeoutMs` on every request), each writing to the ids of
 * one shard, recording every write's outcome: what the failover test and bench:failover measure
 * around faults.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { createSharder } from '../../src/cluster/sharding.js';
import type { CollectionRecord } from '../../src/cluster/metadata.js';

export type Outcome = 'ok' | 'TIMEOUT' | 'UNAVAILABLE' | 'noReply' | string;

export interface WriteRecord {
  /** A write, or a `strong` get of one of the shard's points. */
  kind: 'write' | 'read';
  shard: number;
  writer: number;
  start: number;
  end: number;
  outcome: Outcome;
}

export interface FaultRecord {
  shard: number;
  node: string;
  kind: string;
  at: number;
}

export interface FaultFigures {
  /** Per fault: ms from the fault to the acknowledgement of the first write on its shard sent after it (null: none before the run ended). */
  toFirstWrite: (number | null)[];
  /** The longest stretch, over the whole run and each shard, without an acknowledged write. */
  longestGapMs: number;
  /** Where it began (ms, the run's clock) and on which shard. */
  longestGapAt: { shard: number; at: number };
  counts: Record<string, number>;
}

/** Ids that the collection's sharding places on each shard: `perShard` of each. */
export function idsByShard(record: CollectionRecord, perShard: number): string[][] {
  const sharder = createSharder(record.sharding, record.shards);
  const out: string[][] = Array.from({ length: record.shards }, () => []);
  for (let i = 0; out.some((ids) => ids.length < perShard); i++) {
    const id = `fo-${i}`;
    const s = sharder.shardOf(id);
    const ids = out[s] as string[];
    if (ids.length < perShard) ids.push(id);
  }
  return out;
}

export class FailoverLoad {
  readonly records: WriteRecord[] = [];
  /** Every reply of every copy of a write (a write's outcome is the first success, or else its best reply). */
  readonly replies: Record<string, number> = {};
  readonly faults: FaultRecord[] = [];
  private running = true;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(
    private readonly nc: NatsConnection,
    /** The collection's subjects' prefix, `<prefix>.v1.<collection>`. */
    private readonly api: string,
    private readonly ids: string[][],
    private readonly dim: number,
    private readonly o: {
      writersPerShard: number;
      /** Readers per shard: `strong` gets of one point of the shard (default none). */
      readersPerShard?: number;
      timeoutMs: number;
      /** How long past `timeoutMs` the client waits for a reply (default 1 s). */
      clientSlackMs?: number;
      /**
       * Send the same request (same requestId) again after this long without a reply, and again
       * every such interval while the deadline lasts, taking the first success: what
       * docs/protocol.md advises clients (a router on a paused or killed node never answers what
       * it was given, and a copy goes to another router). Off when undefined.
       */
      resendAfterMs?: number;
    },
  ) {}

  start(): void {
    let w = 0;
    for (let shard = 0; shard < this.ids.length; shard++) {
      for (let k = 0; k < this.o.writersPerShard; k++) this.loops.push(this.loop('write', shard, w++));
      for (let k = 0; k < (this.o.readersPerShard ?? 0); k++) this.loops.push(this.loop('read', shard, w++));
    }
  }

  fault(f: FaultRecord): void {
    this.faults.push(f);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(kind: 'write' | 'read', shard: number, writer: number): Promise<void> {
    const ids = this.ids[shard] as string[];
    const enc = new TextEncoder();
    while (this.running) {
      const n = this.seq++;
      const id = ids[n % ids.length] as string;
      const body =
        kind === 'write'
          ? { points: [{ id, vector: Array.from({ length: this.dim }, (_, i) => (n + i) % 97) }], requestId: `w${writer}-${n}`, timeoutMs: this.o.timeoutMs }
          : { ids: [id], consistency: 'strong', timeoutMs: this.o.timeoutMs };
      const start = performance.now();
      const outcome = await this.send(`${this.api}.${kind === 'write' ? 'upsert' : 'get'}`, enc.encode(JSON.stringify(body)));
      this.records.push({ kind, shard, writer, start, end: performance.now(), outcome });
      if (outcome !== 'ok') await new Promise((r) => setTimeout(r, 20));
    }
  }

  private count(o: Outcome): Outcome {
    this.replies[o] = (this.replies[o] ?? 0) + 1;
    return o;
  }

  /** One write: its reply's outcome, with the resends the options ask for. */
  private send(subject: string, data: Uint8Array): Promise<Outcome> {
    const dec = new TextDecoder();
    const wait = this.o.timeoutMs + (this.o.clientSlackMs ?? 1_000);
    const once = async (): Promise<Outcome> => {
      try {
        const res = await this.nc.request(subject, data, { timeout: wait });
        const reply = JSON.parse(dec.decode(res.data)) as { error?: { code: string } };
        return this.count(reply.error ? reply.error.code : 'ok');
      } catch {
        return this.count('noReply');
      }
    };
    const resend = this.o.resendAfterMs;
    if (resend === undefined) return once();
    return new Promise<Outcome>((resolve) => {
      const outcomes: Outcome[] = [];
      let copies = 1;
      let done = false;
      const finish = (out: Outcome): void => {
        if (done) return;
        done = true;
        clearInterval(timer);
        resolve(out);
      };
      const onReply = (out: Outcome): void => {
        outcomes.push(out);
        // A success wins; an error reply before the copy went out is the answer; otherwise wait
        // for every copy, and prefer a reply to none.
        if (out === 'ok' || (copies === 1 && out !== 'noReply')) finish(out);
        else if (outcomes.length === copies) finish(outcomes.find((x) => x !== 'noReply') ?? 'noReply');
      };
      // Another copy every `resend` ms until one answers, while the deadline lasts.
      const timer = setInterval(() => {
        if (done || copies * resend >= this.o.timeoutMs) return;
        copies++;
        void once().then(onReply);
      }, resend);
      void once().then(onReply);
    });
  }

  /** The figures of the writes (or of the reads). */
  figures(kind: 'write' | 'read' = 'write'): FaultFigures {
    const records = this.records.filter((w) => w.kind === kind);
    const counts: Record<string, number> = {};
    for (const w of records) counts[w.outcome] = (counts[w.outcome] ?? 0) + 1;
    const toFirstWrite = this.faults.map((f) => {
      let first: number | null = null;
      // Only requests sent after the fault: a reply in flight when it struck says nothing of recovery.
      for (const w of records) if (w.shard === f.shard && w.outcome === 'ok' && w.start > f.at && (first === null || w.end < first)) first = w.end;
      return first === null ? null : first - f.at;
    });
    let longestGapMs = 0;
    let longestGapAt = { shard: -1, at: 0 };
    const shards = new Set(records.map((w) => w.shard));
    for (const s of shards) {
      const acks = records.filter((w) => w.shard === s && w.outcome === 'ok').map((w) => w.end).sort((a, b) => a - b);
      for (let i = 1; i < acks.length; i++) {
        const gap = (acks[i] as number) - (acks[i - 1] as number);
        if (gap > longestGapMs) {
          longestGapMs = gap;
          longestGapAt = { shard: s, at: acks[i - 1] as number };
        }
      }
    }
    return { toFirstWrite, longestGapMs, longestGapAt, counts };
  }
}

/** The p-th percentile (0..100) of `xs`, nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
