/** `shoal console`: the interactive actor console (console/), or its commands from --exec or standard input. */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ShoalClient } from '../client/client.js';
import { OpsClient } from '../client/ops.js';
import { UsageError, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, natsUrlOf, prefixOf } from './connection.js';
import { EXIT_SIGINT } from './exit-codes.js';
import { consoleRegistry } from './console/commands.js';
import { historyFile } from './console/history.js';
import { runInteractive } from './console/repl.js';
import { Runner } from './console/runner.js';
import { ConsoleSession } from './console/session.js';

export const consoleCommand: Command = {
  name: 'console',
  summary: 'an interactive console on the whole cluster: nodes, shards\' Raft state, actors, ask/tell, watch, trace',
  usage: `shoal console [--exec "cmd; cmd"] [--json]

On a terminal: a prompt with TAB completion (commands, actor addresses, collections, nodes) and
history kept across sessions ($XDG_STATE_HOME/shoal/console_history, or ~/.shoal_console_history).
Type help for the commands. Ctrl-C ends a watch (not the console); Ctrl-D or exit leaves.
--exec runs the commands given (separated by ;), and without a terminal the commands are read
from standard input, one line at a time; errors go to standard error. --json prints each
command's reply as one JSON line on standard output (an error too, as {"error": {"code",
"message"}}). The exit code is the first failing command's (docs/cli.md), 0 when all succeeded.

${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, exec: { type: 'string', short: 'e' } } });
    if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(' ')} (commands go in --exec "…", or on standard input)`);
    const client = await clientFrom(values);
    // operations are sent once: a copy of a leadership transfer or a rebalance start would act twice
    const once = await ShoalClient.connect({ nc: client.nc, prefix: prefixOf(values), encoding: client.encoding, timeoutMs: client.timeoutMs, hedgeAfterMs: 0 });
    const session = new ConsoleSession(client, new OpsClient(once), { prefix: prefixOf(values), json: Boolean(values.json), timeoutMs: client.timeoutMs, natsUrl: natsUrlOf(values) }, process.stdout, process.stderr);
    const registry = consoleRegistry();
    const runner = new Runner(registry, session);
    try {
      if (values.exec === undefined && process.stdin.isTTY) return await runInteractive(session, registry, runner, historyFile());
      // A script: Ctrl-C (SIGINT) ends a watch and the script goes on; anything else stops.
      const onInterrupt = (): void => {
        if (!runner.interrupt()) process.exit(EXIT_SIGINT);
      };
      process.on('SIGINT', onInterrupt);
      try {
        if (values.exec !== undefined) {
          await runner.runLine(values.exec);
        } else {
          for await (const line of createInterface({ input: process.stdin, terminal: false })) {
            await runner.runLine(line);
            if (runner.ended) break;
          }
        }
      } finally {
        process.off('SIGINT', onInterrupt);
      }
      return runner.firstFailure;
    } finally {
      await once.close();
      await client.close();
    }
  },
};
