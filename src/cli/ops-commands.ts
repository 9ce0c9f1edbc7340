/** `shoal nodes` and `shoal shards`: an operator drains, removes and hands leadership over. */
import { parseArgs } from 'node:util';
import { LIMITS } from '../api/limits.js';
import { OpsClient } from '../client/ops.js';
import { UsageError, intOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, printJson } from './connection.js';
import { formatMaintenance, formatRemove, formatTransfer } from './ops-format.js';

/**
 * The deadline of a request that waits for leaderships to move (`--timeout` overrides it):
 * longer than a plain request's, because the cluster answers only once they have.
 */
export const LEADERSHIP_TIMEOUT_MS = 30_000;

export const nodesCommand: Command = {
  name: 'nodes',
  summary: 'put a node in maintenance or take it out; remove (decommission) a node',
  usage: `shoal nodes maintenance <node> on|off
shoal nodes remove <node>

maintenance on answers once the node leads no shard (every leadership handed to an up replica);
it then takes no new replicas, and its absence does not make it dead. off makes it up again.
remove drains a node, live or dead: its replicas move elsewhere (see shoal rebalance status),
then it leaves the cluster.
Requests are sent once (never hedged); maintenance waits up to ${LEADERSHIP_TIMEOUT_MS / 1000} s unless --timeout says otherwise.

${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS } });
    const [verb, node, ...rest] = positionals;
    if (verb !== 'maintenance' && verb !== 'remove') throw new UsageError(`nodes needs maintenance or remove${verb ? `, not '${verb}'` : ''}`);
    if (!node) throw new UsageError(`nodes ${verb} needs a node id`);
    let on: boolean | undefined;
    if (verb === 'maintenance') {
      const [onOff, ...extra] = rest;
      if (onOff !== 'on' && onOff !== 'off') throw new UsageError(`nodes maintenance needs on or off after the node id${onOff ? `, not '${onOff}'` : ''}`);
      if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
      on = onOff === 'on';
    } else if (rest.length > 0) {
      throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
    }
    const client = await clientFrom(values, { hedge: false, ...(on !== undefined ? { defaultTimeoutMs: LEADERSHIP_TIMEOUT_MS } : {}) });
    try {
      const ops = new OpsClient(client);
      if (on !== undefined) {
        const r = await ops.maintenance(node, on);
        if (values.json) printJson(r);
        else process.stdout.write(`${formatMaintenance(r)}\n`);
      } else {
        const r = await ops.removeNode(node);
        if (values.json) printJson(r);
        else process.stdout.write(`${formatRemove(r)}\n`);
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};

export const shardsCommand: Command = {
  name: 'shards',
  summary: 'hand a shard\'s leadership over to another replica',
  usage: `shoal shards transfer-leader <collection> <shard> [--to <node>]

Answers once the new leader leads. Without --to, the most caught-up other voter takes over; --to
must name a voter of that shard. No acknowledged write is lost and no request fails because of it.
The request is sent once (never hedged) and waits up to ${LEADERSHIP_TIMEOUT_MS / 1000} s unless --timeout says otherwise.

${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, to: { type: 'string' } } });
    const [verb, collection, shardArg, ...extra] = positionals;
    if (verb !== 'transfer-leader') throw new UsageError(`shards needs transfer-leader${verb ? `, not '${verb}'` : ''}`);
    if (!collection || shardArg === undefined) throw new UsageError('shards transfer-leader needs a collection and a shard number');
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const shard = intOption(shardArg, 'shard', 0, LIMITS.shardsMax - 1);
    if (shard === undefined) throw new UsageError('shards transfer-leader needs a shard number');
    if (values.to === '') throw new UsageError('--to needs a node id');
    const client = await clientFrom(values, { hedge: false, defaultTimeoutMs: LEADERSHIP_TIMEOUT_MS });
    try {
      const r = await new OpsClient(client).transferLeader(collection, shard, values.to);
      if (values.json) printJson(r);
      else process.stdout.write(`${formatTransfer(r)}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
