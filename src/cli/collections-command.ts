import { parseArgs } from 'node:util';
import type { CollectionDescription, CollectionSummary, CreateCollectionOptions, ShoalClient } from '../client/client.js';
import { NotFoundError } from '../runtime/errors.js';
import { UsageError, intOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, adminRequest, clientFrom, printJson, table } from './connection.js';

const USAGE = `shoal collections create <name> --dim <n> [--metric cosine|l2|ip] [--shards <n>] [--replicas <n>]
                   [--sharding consistent-hash|hash|range|custom] [--vnodes <n>] [--boundaries a,b,...]
                   [--m <n>] [--ef-construction <n>] [--ef <n>] [--change-stream]
                   [--index <field>=keyword|integer|float|bool ...]
shoal collections list
shoal collections describe <name>
shoal collections drop <name>
shoal collections reshard <name> --shards <n> [--boundaries a,b,...] [--watch]

reshard changes the shard count online (1 to 256; for range sharding, with the new boundaries):
requests go on while points move. --watch shows its phase and progress until it is done.

--index declares a metadata index (repeat it for several fields): an integer or float field's
ranges ($gt, $gte, $lt, $lte) are then found and counted without reading every point
(docs/protocol.md, collections.create indexes).

--change-stream publishes every committed write to the JetStream stream SHOAL_CHANGES_<name>
(shoal changes <name> prints it; docs/changes.md).

create of a collection that exists with the same settings changes nothing and says so (exit 0);
with other settings it is ALREADY_EXISTS.

${CONNECTION_USAGE}`;

/** `collections list` for people. */
export function formatCollectionList(list: CollectionSummary[], columns?: number): string {
  if (list.length === 0) return 'no collections';
  return table(list.map((c) => [c.name, c.dim, c.metric, c.shards, c.replicas, c.count]), ['NAME', 'DIM', 'METRIC', 'SHARDS', 'REPLICAS', 'POINTS'], columns);
}

/** `collections describe` for people: the settings, then a row per replica of each shard. */
export function formatDescription(c: CollectionDescription, columns?: number): string {
  const rows = c.shards.flatMap((s) => s.replicas.map((r) => [s.shard, r.node, r.role, r.matchIndex, r.lagMs, s.count]));
  const indexes = Object.entries(c.indexes ?? {});
  const indexed = indexes.length > 0 ? `, indexes ${indexes.map(([f, t]) => `${f}:${t}`).join(' ')}` : '';
  return `${c.name}: dim ${c.dim}, ${c.metric}, ${c.count} points, ${c.replicas} replicas per shard, sharding ${c.sharding.strategy}${indexed}\n${table(rows, ['SHARD', 'NODE', 'ROLE', 'MATCH', 'LAG MS', 'POINTS'], columns)}`;
}

// Ranges are the server's to enforce (it names the field and the limit); here only "an integer".
const int = (v: string | undefined, flag: string): number | undefined => intOption(v, flag, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

/** `--index year=integer --index lang=keyword` → `{year: 'integer', lang: 'keyword'}`; the types are the server's to check. */
export function indexOptions(flags: readonly string[]): NonNullable<CreateCollectionOptions['indexes']> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.lastIndexOf('=');
    if (eq <= 0 || eq === flag.length - 1) throw new UsageError(`--index takes <field>=<type> (keyword, integer, float or bool), got '${flag}'`);
    out[flag.slice(0, eq)] = flag.slice(eq + 1);
  }
  return out as NonNullable<CreateCollectionOptions['indexes']>;
}

export const collectionsCommand: Command = {
  name: 'collections',
  summary: 'create, list, describe and drop collections',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...CONNECTION_OPTIONS,
        dim: { type: 'string' }, metric: { type: 'string' }, shards: { type: 'string' }, replicas: { type: 'string' },
        sharding: { type: 'string' }, vnodes: { type: 'string' }, boundaries: { type: 'string' },
        m: { type: 'string' }, 'ef-construction': { type: 'string' }, ef: { type: 'string' },
        watch: { type: 'boolean' }, 'change-stream': { type: 'boolean' }, index: { type: 'string', multiple: true },
      },
    });
    const [verb, name, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const needName = (): string => {
      if (!name) throw new UsageError(`collections ${verb} needs a collection name`);
      return name;
    };
    if (!['create', 'list', 'describe', 'drop', 'reshard'].includes(verb ?? '')) throw new UsageError(`collections needs create, list, describe, drop or reshard${verb ? `, not '${verb}'` : ''}`);
    if (verb === 'reshard' && values.shards === undefined) throw new UsageError('collections reshard needs --shards <n>');
    const client = await clientFrom(values);
    try {
      switch (verb) {
        case 'create': {
          const spec: CreateCollectionOptions = { name: needName(), dim: int(values.dim, '--dim') ?? NaN };
          if (values.dim === undefined) throw new UsageError('collections create needs --dim');
          if (values.metric) spec.metric = values.metric as CreateCollectionOptions['metric'] & string;
          const shards = int(values.shards, '--shards');
          if (shards !== undefined) spec.shards = shards;
          const replicas = int(values.replicas, '--replicas');
          if (replicas !== undefined) spec.replicas = replicas;
          if (values.sharding || values.vnodes || values.boundaries) {
            const sharding: Record<string, unknown> = { strategy: values.sharding ?? 'consistent-hash' };
            if (values.vnodes) sharding['vnodes'] = int(values.vnodes, '--vnodes');
            if (values.boundaries) sharding['boundaries'] = values.boundaries.split(',');
            spec.sharding = sharding as CreateCollectionOptions['sharding'] & object;
          }
          const hnsw: Record<string, number> = {};
          for (const [flag, key] of [['m', 'm'], ['ef-construction', 'efConstruction'], ['ef', 'ef']] as const) {
            const n = int(values[flag], `--${flag}`);
            if (n !== undefined) hnsw[key] = n;
          }
          if (Object.keys(hnsw).length > 0) spec.hnsw = hnsw;
          if (values['change-stream']) spec.changeStream = true;
          if (values.index) spec.indexes = indexOptions(values.index);
          // The reply is the describe either way (create is idempotent); asking first tells which it was.
          const existed = await exists(client, spec.name);
          const reply = await adminRequest<{ collection: CollectionDescription }>(client, 'collections', 'create', { ...spec });
          const c = reply.collection;
          if (values.json) printJson(reply);
          else if (existed) process.stdout.write(`'${c.name}' already exists with the same settings (dim ${c.dim}, ${c.metric}, ${c.shards.length} shards × ${c.replicas} replicas): nothing changed\n`);
          else process.stdout.write(`created '${c.name}': dim ${c.dim}, ${c.metric}, ${c.shards.length} shards × ${c.replicas} replicas${c.changeStream ? ', with a change stream' : ''}\n`);
          return 0;
        }
        case 'list': {
          const reply = await adminRequest<{ collections: CollectionSummary[] }>(client, 'collections', 'list', {});
          const list = reply.collections;
          if (values.json) printJson(reply);
          else process.stdout.write(`${formatCollectionList(list)}\n`);
          return 0;
        }
        case 'describe': {
          const reply = await adminRequest<{ collection: CollectionDescription }>(client, 'collections', 'describe', { name: needName() });
          const c = reply.collection;
          if (values.json) {
            printJson(reply);
            return 0;
          }
          process.stdout.write(`${formatDescription(c)}\n`);
          return 0;
        }
        case 'reshard': {
          const body: Record<string, unknown> = { name: needName(), shards: int(values.shards, '--shards') };
          if (values.boundaries) body['boundaries'] = values.boundaries.split(',');
          const reply = await adminRequest<{ collection: CollectionDescription }>(client, 'collections', 'reshard', body);
          const rs = reply.collection.resharding;
          if (values.json && !values.watch) printJson(reply);
          else if (!values.json) process.stdout.write(`resharding '${reply.collection.name}' from ${rs?.from ?? '?'} to ${rs?.to ?? body['shards']} shards${values.watch ? '' : `; follow it with: shoal collections reshard ${reply.collection.name} --shards ${String(body['shards'])} --watch, or describe`}\n`);
          if (values.watch) return await watchReshard(client, needName(), Boolean(values.json));
          return 0;
        }
        default: {
          const reply = await adminRequest<{ dropped: boolean }>(client, 'collections', 'drop', { name: needName() });
          if (values.json) printJson(reply);
          else process.stdout.write(`dropped '${needName()}'\n`);
          return 0;
        }
      }
    } finally {
      await client.close();
    }
  },
};

/** Whether collection `name` exists (NOT_FOUND is an answer here, not a failure). */
async function exists(client: ShoalClient, name: string): Promise<boolean> {
  try {
    await client.describeCollection(name);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

/** Follows a reshard until describe says none runs: one line per change of phase or progress (JSON lines with --json). */
async function watchReshard(client: ShoalClient, name: string, json: boolean): Promise<number> {
  let last = '';
  for (;;) {
    const c = await client.describeCollection(name);
    const rs = c.resharding ?? null;
    const line = rs ? `${rs.from} -> ${rs.to} shards: ${rs.phase}, ${Math.round(rs.progress * 100)}%` : `done: ${c.shards.length} shards, ${c.count} points`;
    if (line !== last) {
      process.stdout.write(json ? `${JSON.stringify({ resharding: rs, shards: c.shards.length, count: c.count })}\n` : `${line}\n`);
      last = line;
    }
    if (!rs) return 0;
    await new Promise((r) => setTimeout(r, 500));
  }
}
