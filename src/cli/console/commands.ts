/** The console's command table, in the order `help` lists them. */
import { actorsCmd, askCmd, inspectCmd, tellCmd } from './cmd-actors.js';
import { collectionsCmd, describeCmd, nodesCmd, shardCmd, statusCmd } from './cmd-cluster.js';
import { countCmd, getCmd, searchCmd } from './cmd-data.js';
import { maintenanceCmd, rebalanceCmd, reshardCmd, transferLeaderCmd } from './cmd-ops.js';
import { parseCommandArgs, Registry, type ConsoleCommand } from './registry.js';
import { traceCmd } from './trace.js';
import { watchCmd } from './watch.js';

export function consoleRegistry(): Registry {
  const helpCmd: ConsoleCommand = {
    name: 'help',
    args: '[command]',
    summary: 'this list, or one command\'s arguments and options',
    complete: ['command'],
    run(args) {
      const { positionals } = parseCommandArgs(args, {}, { min: 0, max: 1, what: '' });
      const name = positionals[0];
      if (name === undefined) return Promise.resolve({ text: registry.help(), json: { commands: registry.commands.map((c) => ({ name: c.name, usage: registry.usage(c), summary: c.summary })) } });
      const c = registry.get(name);
      if (!c) return Promise.resolve({ text: `no command '${name}'\n\n${registry.help()}`, json: { error: { code: 'INVALID_ARGUMENT', message: `no command '${name}'` } }, code: 2 });
      return Promise.resolve({ text: registry.helpOf(c), json: { name: c.name, usage: registry.usage(c), summary: c.summary, more: c.more ?? null } });
    },
  };
  const registry = new Registry([
    helpCmd,
    nodesCmd,
    statusCmd,
    collectionsCmd,
    describeCmd,
    shardCmd,
    actorsCmd,
    inspectCmd,
    tellCmd,
    askCmd,
    searchCmd,
    getCmd,
    countCmd,
    transferLeaderCmd,
    maintenanceCmd,
    rebalanceCmd,
    reshardCmd,
    watchCmd,
    traceCmd,
  ]);
  return registry;
}
