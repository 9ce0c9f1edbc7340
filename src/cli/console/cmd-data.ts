/** The console's reads: `search` (by a vector or by a stored point's), `get`, `count`. */
import type { Point, SearchReply } from '../../api/types.js';
import { LIMITS } from '../../api/limits.js';
import { NotFoundError } from '../../runtime/errors.js';
import { UsageError, intOption } from '../command.js';
import { dataRequest } from '../connection.js';
import { EXIT_PARTIAL } from '../exit-codes.js';
import { consistencyOf, formatSearch, pointLine } from '../read-commands.js';
import { jsonArg } from './parse.js';
import { parseCommandArgs, type ConsoleCommand } from './registry.js';

const CONSISTENCY = { consistency: { type: 'string' } } as const;

export const searchCmd: ConsoleCommand = {
  name: 'search',
  args: '<collection> <vector | @point-id> [k] [--filter <json>] [--ef <n>] [--consistency <c>] [--with-vector]',
  summary: 'k nearest neighbours (default 10) of a vector, or of a stored point\'s vector',
  more: 'Examples: search docs [0.1, 0.2, 0.3] 5\n          search docs @p17 3 --filter {"lang": "en"}',
  complete: ['collection'],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(
      args,
      { filter: { type: 'string' }, ef: { type: 'string' }, 'with-vector': { type: 'boolean' }, ...CONSISTENCY },
      { min: 2, max: 3, what: 'the collection and a vector (or @point-id)' },
    );
    const [collection, target, kArg] = positionals as [string, string, string | undefined];
    const body: Record<string, unknown> = {};
    const k = intOption(kArg, 'k', LIMITS.kMin, LIMITS.kMax);
    if (k !== undefined) body['k'] = k;
    const ef = intOption(values['ef'] as string | undefined, '--ef', 1, LIMITS.efMax);
    if (ef !== undefined) body['ef'] = ef;
    if (values['filter'] !== undefined) body['filter'] = jsonArg(values['filter'] as string, '--filter');
    const consistency = consistencyOf(values['consistency'] as string | undefined);
    if (consistency) body['consistency'] = consistency;
    if (values['with-vector']) body['withVector'] = true;
    if (target.startsWith('@')) {
      const id = target.slice(1);
      const got = await dataRequest<{ points: Point[] }>(s.client, collection, 'get', { ids: [id], withVector: true, ...(consistency ? { consistency } : {}) });
      const v = got.points[0]?.vector;
      if (!v) throw new NotFoundError(`no point '${id}' in collection '${collection}' to search by`);
      body['vector'] = Array.from(v as ArrayLike<number>);
    } else {
      const v = jsonArg(target, 'the vector');
      if (!Array.isArray(v)) throw new UsageError('the vector must be a JSON array of numbers, or @<point id>');
      body['vector'] = v;
    }
    const r = await dataRequest<SearchReply>(s.client, collection, 'search', body);
    const f = formatSearch(r, Boolean(values['with-vector']), s.columns());
    return { text: `${f.table}\n${f.summary}`, json: r, code: r.partial ? EXIT_PARTIAL : 0 };
  },
};

export const getCmd: ConsoleCommand = {
  name: 'get',
  args: '<collection> <id>... [--no-vector] [--consistency <c>]',
  summary: 'points by id, one JSON line each',
  complete: ['collection'],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(args, { 'no-vector': { type: 'boolean' }, ...CONSISTENCY }, { min: 2, max: LIMITS.idsPerRequest + 1, what: 'the collection and at least one id' });
    const [collection, ...ids] = positionals as [string, ...string[]];
    const consistency = consistencyOf(values['consistency'] as string | undefined);
    const reply = await dataRequest<{ points: Point[] }>(s.client, collection, 'get', { ids, withVector: !values['no-vector'], ...(consistency ? { consistency } : {}) });
    const missing = ids.filter((id) => !reply.points.some((p) => p.id === id));
    const lines = [...reply.points.map(pointLine), ...(missing.length > 0 ? [`not found: ${missing.join(', ')}`] : [])];
    return { text: lines.join('\n'), json: reply };
  },
};

export const countCmd: ConsoleCommand = {
  name: 'count',
  args: '<collection> [--consistency <c>]',
  summary: 'how many points a collection holds',
  complete: ['collection'],
  async run(args, s) {
    const { values, positionals } = parseCommandArgs(args, { ...CONSISTENCY }, { min: 1, max: 1, what: 'the collection' });
    const consistency = consistencyOf(values['consistency'] as string | undefined);
    const reply = await dataRequest<{ count: number }>(s.client, positionals[0] as string, 'count', consistency ? { consistency } : {});
    return { text: String(reply.count), json: reply };
  },
};
