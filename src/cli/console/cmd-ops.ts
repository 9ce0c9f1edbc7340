/**
 * The operator's verbs in the console, as the `shoal` command has them (the same requests, sent
 * once, and the same words): `transfer-leader`, `maintenance`, `rebalance …`, `reshard`.
 */
import type { RebalanceStatus } from '../../client/ops.js';
import { UsageError, intOption } from '../command.js';
import { LEADERSHIP_TIMEOUT_MS } from '../ops-commands.js';
import { formatDryRun, formatMaintenance, formatStatus, formatTransfer } from '../ops-format.js';
import { rebalanceSettingsFrom } from '../ops-options.js';
import { shardArg } from './cmd-cluster.js';
import { parseCommandArgs, type ConsoleCommand } from './registry.js';

export const transferLeaderCmd: ConsoleCommand = {
  name: 'transfer-leader',
  args: '<collection>/<n> [--to <node>]',
  summary: 'hand a shard\'s leadership to another voter (the most caught-up one without --to)',
  complete: ['shard'],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(args, { to: { type: 'string' } }, { min: 1, max: 1, what: 'the shard (<collection>/<n>)' });
    const { collection, shard } = shardArg(positionals[0]);
    const to = values['to'] as string | undefined;
    if (to === '') throw new UsageError('--to needs a node id');
    const r = await s.ops.transferLeader(collection, shard, to, LEADERSHIP_TIMEOUT_MS);
    return { text: formatTransfer(r), json: r };
  },
};

export const maintenanceCmd: ConsoleCommand = {
  name: 'maintenance',
  args: '<node> on|off',
  summary: 'take a node\'s leaderships away for maintenance (on), or give it back (off)',
  complete: ['node', { words: ['on', 'off'] }],
  async run(args, s) {
    const { positionals } = parseCommandArgs(args, {}, { min: 2, max: 2, what: 'the node and on or off' });
    const [node, onOff] = positionals as [string, string];
    if (onOff !== 'on' && onOff !== 'off') throw new UsageError(`maintenance needs on or off after the node, not '${onOff}'`);
    const r = await s.ops.maintenance(node, onOff === 'on', LEADERSHIP_TIMEOUT_MS);
    return { text: formatMaintenance(r), json: r };
  },
};

const REBALANCE_VERBS = ['status', 'start', 'pause', 'resume', 'configure'] as const;

export const rebalanceCmd: ConsoleCommand = {
  name: 'rebalance',
  args: '[status | start [--dry-run] | pause | resume | configure <flags>]',
  summary: 'the rebalance coordinator: its moves and throttles; start (or plan), pause, resume',
  more: 'configure takes --max-concurrent-moves N, --max-bytes-per-sec 50MiB, --auto true|false,\n--replace-after-ms N (as `shoal rebalance configure`).',
  complete: [{ words: REBALANCE_VERBS }],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(
      args,
      { 'dry-run': { type: 'boolean' }, 'max-concurrent-moves': { type: 'string' }, 'max-bytes-per-sec': { type: 'string' }, auto: { type: 'string' }, 'replace-after-ms': { type: 'string' } },
      { min: 0, max: 1, what: '' },
    );
    const verb = positionals[0] ?? 'status';
    if (!(REBALANCE_VERBS as readonly string[]).includes(verb)) throw new UsageError(`rebalance takes ${REBALANCE_VERBS.join(', ')}, not '${verb}'`);
    if (verb !== 'start' && values['dry-run']) throw new UsageError(`--dry-run is not an option of rebalance ${verb}`);
    let r: RebalanceStatus;
    if (verb === 'status') r = await s.ops.rebalanceStatus();
    else if (verb === 'start') r = await s.ops.startRebalance({ dryRun: Boolean(values['dry-run']) });
    else if (verb === 'pause') r = await s.ops.pauseRebalance();
    else if (verb === 'resume') r = await s.ops.resumeRebalance();
    else r = await s.ops.configureRebalance(rebalanceSettingsFrom(values as Parameters<typeof rebalanceSettingsFrom>[0]));
    return { text: verb === 'start' && values['dry-run'] ? formatDryRun(r) : formatStatus(r, Date.now()), json: r };
  },
};

export const reshardCmd: ConsoleCommand = {
  name: 'reshard',
  args: '<collection> <shards> [--boundaries a,b,...]',
  summary: 'change a collection\'s shard count online (follow it with describe)',
  complete: ['collection'],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(args, { boundaries: { type: 'string' } }, { min: 2, max: 2, what: 'the collection and the new shard count' });
    const [name, shardsArg] = positionals as [string, string];
    const shards = intOption(shardsArg, 'shards', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) as number;
    const boundaries = (values['boundaries'] as string | undefined)?.split(',');
    const c = await s.ops.reshard(name, shards, boundaries ? { boundaries } : {});
    const rs = c.resharding;
    return { text: `resharding '${c.name}' from ${rs?.from ?? '?'} to ${rs?.to ?? shards} shards; follow it with: describe ${c.name}`, json: { collection: c } };
  },
};
