/** `shoal delete`: removes points by id, applied at most once however often it is retried. */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { WriteConcern } from '../api/types.js';
import { UsageError, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, dataRequest, printJson } from './connection.js';

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'delete points by id',
  usage: `shoal delete <collection> <id>... [--write-concern majority|all|leader]\n\n${CONNECTION_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, 'write-concern': { type: 'string' } } });
    const [name, ...ids] = positionals;
    if (!name || ids.length === 0) throw new UsageError('delete needs a collection name and at least one id');
    const wc = values['write-concern'];
    if (wc !== undefined && wc !== 'majority' && wc !== 'all' && wc !== 'leader') throw new UsageError(`--write-concern must be majority, all or leader, got ${wc}`);
    const client = await clientFrom(values);
    try {
      // One requestId for the request: the client's own resend of it is applied once.
      const reply = await dataRequest<{ deleted: number }>(client, name, 'delete', { ids, requestId: randomUUID(), ...(wc ? { writeConcern: wc as WriteConcern } : {}) });
      const deleted = reply.deleted;
      if (values.json) printJson(reply);
      else process.stdout.write(`deleted ${deleted} of ${ids.length} ${ids.length === 1 ? 'id' : 'ids'} from '${name}'\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
