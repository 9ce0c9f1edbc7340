/** The console's actors: `actors`, `inspect`, and `tell` and `ask` to any of them. */
import type { ActorStats } from '../../runtime/actor.js';
import { NotFoundError, describeError } from '../../runtime/errors.js';
import { intOption } from '../command.js';
import { table } from '../connection.js';
import { jsonArg } from './parse.js';
import { parseCommandArgs, pretty, type ConsoleCommand } from './registry.js';

/** An actor's state summary on one line: `collection=docs shard=0 role=leader`. */
export function stateLine(state: ActorStats['state']): string | null {
  if (!state) return null;
  return Object.entries(state).map(([k, v]) => `${k}=${v === null ? '-' : String(v)}`).join(' ');
}

export const actorsCmd: ConsoleCommand = {
  name: 'actors',
  args: '[--node <node>]',
  summary: 'every actor of every node: address, kind, mailbox, handled, restarts, state',
  more: 'MAILBOX is depth/capacity; HANDLED the messages it processed; STATUS its lifecycle\n(starting, running, restarting, stopped); STATE what the actor says of itself.',
  async run(args, s) {
    const { values } = parseCommandArgs(args, { node: { type: 'string' } }, { min: 0, max: 0, what: '' });
    const reports = await s.introspect(values['node'] as string | undefined);
    const rows = reports.flatMap((r) =>
      r.actors.sort((a, b) => a.name.localeCompare(b.name)).map((a) => [`${r.system}/${a.name}`, a.kind, a.status, `${a.mailboxDepth}/${a.mailboxCapacity}`, a.processed, a.restarts, stateLine(a.state)]),
    );
    return { text: table(rows, ['ACTOR', 'KIND', 'STATUS', 'MAILBOX', 'HANDLED', 'RESTARTS', 'STATE'], s.columns()), json: { systems: reports } };
  },
};

export const inspectCmd: ConsoleCommand = {
  name: 'inspect',
  args: '<actor>',
  summary: 'one actor in full: its stats and state (a replica\'s Raft status too)',
  complete: ['actor'],
  async run(args, s) {
    const { positionals } = parseCommandArgs(args, {}, { min: 1, max: 1, what: 'the actor (<node>/<name>)' });
    const a = s.actor(positionals[0]);
    const [report] = await s.introspect(a.system);
    const stats = report?.actors.find((x) => x.name === a.name);
    if (!report || !stats) throw new NotFoundError(`no actor ${a.name} on ${a.system} (see \`actors --node ${a.system}\`)`);
    // A replica's Raft state is more than its summary: ask it, as `shard` does.
    const raft = stats.kind === 'replica' ? await s.ask(a, { type: 'status' }).catch((err: unknown) => ({ error: describeError(err) })) : undefined;
    const doc = { address: `${a.system}/${a.name}`, subject: a.subject, uptimeMs: report.uptimeMs, ...stats, ...(raft !== undefined ? { raft } : {}) };
    const lines = [
      `${doc.address} (${stats.kind}, ${stats.status})`,
      `  subject    ${a.subject}`,
      `  mailbox    ${stats.mailboxDepth}/${stats.mailboxCapacity} (refused ${stats.refused})`,
      `  handled    ${stats.processed} (failures ${stats.failures}, restarts ${stats.restarts})`,
      `  parent     ${stats.parent ?? '-'}`,
      `  last error ${stats.lastError ?? '-'}`,
      `  state      ${stateLine(stats.state) ?? '-'}`,
      ...(raft !== undefined ? [`  raft       ${pretty(raft).split('\n').join('\n  ')}`] : []),
    ];
    return { text: lines.join('\n'), json: doc };
  },
};

export const tellCmd: ConsoleCommand = {
  name: 'tell',
  args: '<actor> <json>',
  summary: 'send a message to an actor (CBOR on its subject); nothing comes back',
  more: 'Example: tell n1/replicas {"type": "collect-all"}',
  complete: ['actor'],
  async run(args, s) {
    const { positionals } = parseCommandArgs(args, {}, { min: 2, max: 2, what: 'the actor and the message (JSON)' });
    const a = s.actor(positionals[0]);
    const msg = jsonArg(positionals[1], 'the message');
    await s.tell(a, msg);
    return { text: `sent to ${a.system}/${a.name}`, json: { sent: true, actor: `${a.system}/${a.name}`, subject: a.subject } };
  },
};

export const askCmd: ConsoleCommand = {
  name: 'ask',
  args: '<actor> <json> [--timeout <ms>]',
  summary: 'ask an actor and show its reply (or the error it answered)',
  more: 'Example: ask n1/replica.<uid>.0 {"type": "status"}',
  complete: ['actor'],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(args, { timeout: { type: 'string' } }, { min: 2, max: 2, what: 'the actor and the message (JSON)' });
    const a = s.actor(positionals[0]);
    const msg = jsonArg(positionals[1], 'the message');
    const timeout = intOption(values['timeout'] as string | undefined, '--timeout (ms)', 1, 600_000);
    const reply = (await s.ask(a, msg, timeout)) ?? null;
    return { text: reply === null ? '(the actor answered with no value)' : pretty(reply), json: { reply } };
  },
};
