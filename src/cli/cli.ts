/** The `shoal` command (started by main.ts). */
import { describeError } from '../runtime/errors.js';
import type { Command } from './command.js';
import { EXIT_CODES, EXIT_USAGE, errorLine, exitCodeOf, isUsageError, wireErrorOf } from './exit-codes.js';
import { changesCommand } from './changes-command.js';
import { collectionsCommand } from './collections-command.js';
import { consoleCommand } from './console-command.js';
import { devCommand } from './dev-command.js';
import { natsCommand } from './nats-command.js';
import { nodeCommand } from './node-command.js';
import { nodesCommand, shardsCommand } from './ops-commands.js';
import { rebalanceCommand } from './rebalance-command.js';
import { backupCommand } from './backup-command.js';
import { deleteCommand } from './delete-command.js';
import { countCommand, getCommand, searchBatchCommand, searchCommand, statusCommand } from './read-commands.js';
import { upsertCommand } from './upsert-command.js';
import { shoalVersion } from './version.js';

const versionCommand: Command = {
  name: 'version',
  summary: 'print the version',
  usage: 'shoal version',
  run() {
    process.stdout.write(`shoal ${shoalVersion()} (node ${process.version})\n`);
    return Promise.resolve(0);
  },
};

const COMMANDS: Command[] = [devCommand, nodeCommand, collectionsCommand, upsertCommand, deleteCommand, getCommand, searchCommand, searchBatchCommand, countCommand, changesCommand, statusCommand, nodesCommand, shardsCommand, rebalanceCommand, backupCommand, consoleCommand, natsCommand, versionCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'shoal: a distributed vector database on NATS',
    '',
    'Usage: shoal <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `shoal <command> --help` for a command\'s options.',
    `Exit codes (docs/cli.md): ${EXIT_CODES.map((c) => `${c.code} ${c.name}`).join(', ')}.`,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(`${help()}\n`);
    return verb === undefined ? EXIT_USAGE : 0;
  }
  if (verb === '--version' || verb === '-v') return versionCommand.run([]);
  const cmd = COMMANDS.find((c) => c.name === verb);
  if (!cmd) {
    process.stderr.write(`shoal: unknown command '${verb}'\n\n${help()}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    // With --json a program reads stdout: the error is the protocol's, on one line there.
    if (rest.includes('--json')) process.stdout.write(`${JSON.stringify(wireErrorOf(err))}\n`);
    else process.stderr.write(`${errorLine(err)}\n${isUsageError(err) ? `\n${cmd.usage}\n` : ''}`);
    return exitCodeOf(err);
  }
}

// A reader that goes away (`shoal status | head`) is not an error of ours: stop quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`shoal: ${describeError(err)}\n`);
    process.exit(1);
  },
);
