/** `shoal rebalance`: the coordinator's status and moves, start (or plan), pause, resume, throttles. */
import { parseArgs } from 'node:util';
import { OpsClient, type RebalanceStatus } from '../client/ops.js';
import { UsageError, untilSignal, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, printJson } from './connection.js';
import { formatDryRun, formatStatus } from './ops-format.js';
import { MAX_CONCURRENT_MOVES_MAX, MAX_CONCURRENT_MOVES_MIN, rebalanceSettingsFrom } from './ops-options.js';
import { watchRebalance } from './rebalance-watch.js';

const VERBS = ['status', 'start', 'pause', 'resume', 'configure'] as const;
type Verb = (typeof VERBS)[number];

const USAGE = `shoal rebalance status [--watch]
shoal rebalance start [--dry-run]
shoal rebalance pause
shoal rebalance resume
shoal rebalance configure [--max-concurrent-moves N] [--max-bytes-per-sec N] [--auto true|false] [--replace-after-ms N]

status shows the coordinator, its state and throttles, and every move in flight with its phase
(prepare, copy, catch-up, switch, cleanup) and the bytes copied. --watch redraws it every second
until no move is in flight or pending (exit 0; Ctrl-C exits 130); when standard output is not a
terminal it prints a line per change instead (with --json, each changed reply as a JSON line).
start plans and runs the moves that even out the cluster; --dry-run prints the plan and applies
nothing. pause stops starting moves (those in flight go on); resume starts them again.
configure changes only what it is given:
  --max-concurrent-moves N    moves at once, cluster-wide: ${MAX_CONCURRENT_MOVES_MIN} to ${MAX_CONCURRENT_MOVES_MAX} (default 2)
  --max-bytes-per-sec N       the cluster-wide copy rate, ≥ 0 (0: unthrottled; default 50MiB);
                              units: kB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024)
  --auto true|false           repair and even out by itself (default true); false: repair only
  --replace-after-ms N        how long a node is down before its replicas are rebuilt elsewhere (default 60000)

${CONNECTION_USAGE}`;

export const rebalanceCommand: Command = {
  name: 'rebalance',
  summary: 'the rebalance coordinator: status (--watch), start, pause, resume, configure',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...CONNECTION_OPTIONS,
        watch: { type: 'boolean' }, 'dry-run': { type: 'boolean' },
        'max-concurrent-moves': { type: 'string' }, 'max-bytes-per-sec': { type: 'string' }, auto: { type: 'string' }, 'replace-after-ms': { type: 'string' },
      },
    });
    const [verbArg, ...extra] = positionals;
    if (!VERBS.includes(verbArg as Verb)) throw new UsageError(`rebalance needs status, start, pause, resume or configure${verbArg ? `, not '${verbArg}'` : ''}`);
    const verb = verbArg as Verb;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const configureFlags = ['max-concurrent-moves', 'max-bytes-per-sec', 'auto', 'replace-after-ms'] as const;
    const misplaced = [
      ...(verb !== 'status' && values.watch ? ['--watch'] : []),
      ...(verb !== 'start' && values['dry-run'] ? ['--dry-run'] : []),
      ...(verb !== 'configure' ? configureFlags.filter((f) => values[f] !== undefined).map((f) => `--${f}`) : []),
    ];
    if (misplaced.length > 0) throw new UsageError(`${misplaced.join(', ')} ${misplaced.length === 1 ? 'is' : 'are'} not an option of rebalance ${verb}`);
    const settings = verb === 'configure' ? rebalanceSettingsFrom(values) : undefined;

    // start, pause, resume and configure are sent once: a copy of a start could plan twice.
    const client = await clientFrom(values, { hedge: verb === 'status' });
    try {
      const ops = new OpsClient(client);
      if (verb === 'status' && values.watch) {
        return await watchRebalance({ poll: () => ops.rebalanceStatus(), out: process.stdout, json: values.json, stopped: untilSignal() });
      }
      let s: RebalanceStatus;
      switch (verb) {
        case 'status':
          s = await ops.rebalanceStatus();
          break;
        case 'start':
          s = await ops.startRebalance({ dryRun: Boolean(values['dry-run']) });
          break;
        case 'pause':
          s = await ops.pauseRebalance();
          break;
        case 'resume':
          s = await ops.resumeRebalance();
          break;
        case 'configure':
          s = await ops.configureRebalance(settings ?? {});
          break;
        default: {
          const never: never = verb;
          throw new Error(`unhandled verb ${String(never)}`);
        }
      }
      if (values.json) printJson(s);
      else if (verb === 'start' && values['dry-run']) process.stdout.write(`${formatDryRun(s)}\n`);
      else process.stdout.write(`${formatStatus(s, Date.now())}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
