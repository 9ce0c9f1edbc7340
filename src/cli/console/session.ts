/**
 * What every console command works with: the cluster's client (one NATS connection for the whole
 * session), the internal subjects (actors, introspection), where output goes, and what TAB
 * completion knows of the cluster (actors, collections, nodes), refreshed when it is stale.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ShoalClient } from '../../client/client.js';
import type { OpsClient } from '../../client/ops.js';
import type { SystemReport } from '../../runtime/actor-system.js';
import { decodeInternalReply } from '../../runtime/wire-replies.js';
import { encodeCbor } from '../../runtime/codec.js';
import { NoRespondersError, TimeoutError, UnavailableError, describeError } from '../../runtime/errors.js';
import { isNoResponders, isRequestTimeout } from '../../runtime/inbox-requester.js';
import { Subjects } from '../../runtime/subjects.js';
import { UsageError } from '../command.js';

/** Where the console writes: standard output, or a test's buffer. */
export interface ConsoleOutput {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
}

/** An actor's address in the console: `<node>/<name>`, e.g. `n1/replica.7f3a.0`. */
export interface ActorAddress {
  system: string;
  name: string;
  subject: string;
}

/** How long an introspection broadcast waits for more answers once they stop coming. */
export const INTROSPECT_STALL_MS = 300;
/** How long completion trusts what it knows of the cluster before asking again. */
export const COMPLETION_STALE_MS = 2_000;

export class ConsoleSession {
  readonly subjects: Subjects;
  private known = { at: 0, actors: [] as string[], collections: [] as { name: string; shards: number }[], nodes: [] as string[] };

  constructor(
    /** Requests that may be sent twice (reads, status): hedged as the CLI's are. */
    readonly client: ShoalClient,
    /** Operations sent once (a copy of a transfer or a rebalance start would act twice). */
    readonly ops: OpsClient,
    readonly opts: { prefix: string; json: boolean; timeoutMs: number; natsUrl: string },
    readonly out: ConsoleOutput,
    /** Where errors go without --json (standard error, as the `shoal` verbs print theirs). */
    readonly err: ConsoleOutput = out,
  ) {
    this.subjects = new Subjects(opts.prefix);
  }

  get nc(): NatsConnection {
    return this.client.nc;
  }

  /** The terminal's width when output goes to one (tables are fitted to it), else undefined. */
  columns(): number | undefined {
    return this.out.isTTY ? this.out.columns : undefined;
  }

  print(text: string): void {
    this.out.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** An error for people (with --json errors are documents on standard output: {@link print}). */
  printError(text: string): void {
    this.err.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Parses `<node>/<name>`; a UsageError names the argument when it is not one. */
  actor(text: string | undefined, what = 'actor'): ActorAddress {
    const slash = text?.indexOf('/') ?? -1;
    if (text === undefined || slash <= 0) throw new UsageError(`${what} must be <node>/<name> (e.g. n1/router; TAB completes them), got ${text === undefined ? 'nothing' : `'${text}'`}`);
    const system = text.slice(0, slash);
    const name = text.slice(slash + 1);
    try {
      return { system, name, subject: this.subjects.actor(system, name) };
    } catch (err) {
      throw new UsageError(`${what} '${text}': ${describeError(err)}`);
    }
  }

  /** Every actor system's report (one per node), or only `system`'s. Sorted by system. */
  async introspect(system?: string): Promise<SystemReport[]> {
    if (system !== undefined) {
      const subject = this.subjects.introspect(system);
      try {
        const res = await this.nc.request(subject, new Uint8Array(0), { timeout: this.opts.timeoutMs });
        return [res.json<SystemReport>()];
      } catch (err) {
        if (isNoResponders(err)) throw new NoRespondersError(`no node '${system}' answers (is it up? nodes: see \`nodes\`)`);
        throw mapError(err, subject, this.opts.timeoutMs);
      }
    }
    const reports: SystemReport[] = [];
    try {
      const replies = await this.nc.requestMany(this.subjects.introspectAll(), new Uint8Array(0), { maxWait: this.opts.timeoutMs, strategy: 'stall', stall: INTROSPECT_STALL_MS });
      for await (const m of replies) reports.push(m.json<SystemReport>());
    } catch (err) {
      if (!isNoResponders(err)) throw mapError(err, this.subjects.introspectAll(), this.opts.timeoutMs);
    }
    if (reports.length === 0) throw new UnavailableError(`no node answers on ${this.subjects.introspectAll()}: is a cluster running with prefix '${this.opts.prefix}'?`);
    const out = reports.sort((a, b) => a.system.localeCompare(b.system));
    this.known.actors = out.flatMap((r) => r.actors.map((a) => `${r.system}/${a.name}`));
    return out;
  }

  /** Asks an actor (internal codec: CBOR both ways); its reply, or its error thrown as its class. */
  async ask(actor: ActorAddress, msg: unknown, timeoutMs = this.opts.timeoutMs): Promise<unknown> {
    let data: Uint8Array;
    try {
      data = (await this.nc.request(actor.subject, encodeCbor(msg), { timeout: timeoutMs })).data;
    } catch (err) {
      if (isNoResponders(err)) throw new NoRespondersError(`no actor ${actor.system}/${actor.name} (nothing listens on ${actor.subject}: see \`actors\`)`);
      throw mapError(err, actor.subject, timeoutMs);
    }
    return decodeInternalReply(data);
  }

  /** Tells an actor (CBOR, nothing comes back). */
  async tell(actor: ActorAddress, msg: unknown): Promise<void> {
    this.nc.publish(actor.subject, encodeCbor(msg));
    await this.nc.flush();
  }

  /** What completion offers, asked again when older than {@link COMPLETION_STALE_MS}; failures leave it as it was. */
  async completions(): Promise<{ actors: string[]; collections: { name: string; shards: number }[]; nodes: string[] }> {
    if (Date.now() - this.known.at > COMPLETION_STALE_MS) {
      this.known.at = Date.now();
      await Promise.allSettled([
        this.introspect(),
        this.client.listCollections(1_000).then((l) => (this.known.collections = l.map((c) => ({ name: c.name, shards: c.shards })))),
        this.client.clusterStatus(1_000).then((s) => (this.known.nodes = s.nodes.map((n) => n.id))),
      ]);
    }
    return this.known;
  }
}

function mapError(err: unknown, subject: string, timeoutMs: number): Error {
  if (isRequestTimeout(err)) return new TimeoutError(`no reply on ${subject} within ${timeoutMs} ms`);
  return new UnavailableError(`request on ${subject} failed: ${describeError(err)}`);
}
