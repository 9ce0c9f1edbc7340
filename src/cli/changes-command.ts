/**
 * `shoal changes <collection> [--from-start] [--limit n]`: a collection's change stream
 * (docs/changes.md) as JSON lines on stdout, one message a line as Shoal published it, through an
 * ordered JetStream consumer: only new entries by default, the whole stream with --from-start.
 * Runs until Ctrl-C (or --limit lines).
 */
import { parseArgs } from 'node:util';
import { DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { changeStreamName } from '../cluster/change-streams.js';
import { NotFoundError, describeError, UnavailableError } from '../runtime/errors.js';
import { UsageError, intOption, untilSignal, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom } from './connection.js';

export const changesCommand: Command = {
  name: 'changes',
  summary: 'print a collection\'s change stream as JSON lines',
  usage: `shoal changes <collection> [--from-start] [--limit <n>]

  Prints each committed write of a collection created with "changeStream": true, one JSON
  message a line, until Ctrl-C: only writes from now on, or --from-start the whole stream.
  --limit <n>  stop after n lines

${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CONNECTION_OPTIONS, 'from-start': { type: 'boolean' }, limit: { type: 'string' } },
    });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('changes needs exactly one collection name');
    const limit = intOption(values.limit, '--limit', 1, Number.MAX_SAFE_INTEGER);
    const stream = changeStreamName(name);
    const client = await clientFrom(values);
    try {
      const jsm = await jetstreamManager(client.nc);
      try {
        await jsm.streams.info(stream);
      } catch (err) {
        if (err instanceof JetStreamApiError && /not found/i.test(err.message)) throw new NotFoundError(`collection '${name}' has no change stream (${stream}): create it with "changeStream": true`);
        throw new UnavailableError(`cannot read ${stream}: ${describeError(err)}`, { cause: err });
      }
      const consumer = await jetstream(client.nc).consumers.get(stream, { deliver_policy: values['from-start'] ? DeliverPolicy.All : DeliverPolicy.New });
      const messages = await consumer.consume();
      // the consumer exists from here on: said on stderr, so that a script (and the test) knows when
      // a write is sure to be shown without --from-start
      process.stderr.write(`shoal changes: following ${stream}${values['from-start'] ? ' from its start' : ' (new entries only)'}; Ctrl-C stops\n`);
      let printed = 0;
      void untilSignal().then(() => messages.stop());
      for await (const m of messages) {
        process.stdout.write(`${m.string()}\n`);
        if (limit !== undefined && ++printed >= limit) {
          messages.stop();
          break;
        }
      }
      return 0;
    } finally {
      await client.close().catch(() => undefined);
    }
  },
};
