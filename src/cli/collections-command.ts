import { parseArgs } from 'node:util';
import type { CreateCollectionOptions } from '../client/client.js';
import { UsageError, intOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, printJson, table } from './connection.js';

const USAGE = `shoal collections create <name> --dim <n> [--metric cosine|l2|ip] [--shards <n>] [--replicas <n>]
                   [--sharding consistent-hash|hash|range|custom] [--vnodes <n>] [--boundaries a,b,...]
                   [--m <n>] [--ef-construction <n>] [--ef <n>]
shoal collections list
shoal collections describe <name>
shoal collections drop <name>

${CONNECTION_USAGE}`;

// Ranges are the server's to enforce (it names the field and the limit); here only "an integer".
const int = (v: string | undefined, flag: string): number | undefined => intOption(v, flag, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

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
      },
    });
    const [verb, name, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const needName = (): string => {
      if (!name) throw new UsageError(`collections ${verb} needs a collection name`);
      return name;
    };
    if (!['create', 'list', 'describe', 'drop'].includes(verb ?? '')) throw new UsageError(`collections needs create, list, describe or drop${verb ? `, not '${verb}'` : ''}`);
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
          const c = await client.createCollection(spec);
          if (values.json) printJson(c);
          else process.stdout.write(`created '${c.name}': dim ${c.dim}, ${c.metric}, ${c.shards.length} shards × ${c.replicas} replicas\n`);
          return 0;
        }
        case 'list': {
          const list = await client.listCollections();
          if (values.json) printJson(list);
          else if (list.length === 0) process.stdout.write('no collections\n');
          else process.stdout.write(`${table(list.map((c) => [c.name, c.dim, c.metric, c.shards, c.replicas, c.count]), ['NAME', 'DIM', 'METRIC', 'SHARDS', 'REPLICAS', 'POINTS'])}\n`);
          return 0;
        }
        case 'describe': {
          const c = await client.describeCollection(needName());
          if (values.json) {
            printJson(c);
            return 0;
          }
          process.stdout.write(`${c.name}: dim ${c.dim}, ${c.metric}, ${c.count} points, ${c.replicas} replicas per shard, sharding ${c.sharding.strategy}\n`);
          const rows = c.shards.flatMap((s) => s.replicas.map((r) => [s.shard, r.node, r.role, r.matchIndex, r.lagMs, s.count]));
          process.stdout.write(`${table(rows, ['SHARD', 'NODE', 'ROLE', 'MATCH', 'LAG MS', 'POINTS'])}\n`);
          return 0;
        }
        default: {
          await client.dropCollection(needName());
          process.stdout.write(`dropped '${needName()}'\n`);
          return 0;
        }
      }
    } finally {
      await client.close();
    }
  },
};
