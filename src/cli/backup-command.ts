/** `shoal backup create|list|delete|restore` (docs/backups.md, docs/cli.md). */
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { BackupsClient, type BackupInfo } from '../client/backups.js';
import type { ShoalClient } from '../client/client.js';
import { BackupStore } from '../cluster/backup-store.js';
import { UsageError, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, prefixOf, printJson, table } from './connection.js';
import { Progress } from './progress.js';

const VERBS = ['create', 'list', 'delete', 'restore'] as const;
type Verb = (typeof VERBS)[number];
const POLL_MS = 500;

const USAGE = `shoal backup create <collection> [--name <backup>]
shoal backup list [<collection>]
shoal backup delete <backup>
shoal backup restore <backup> [--as <collection>] [--until <RFC 3339 time>]

create writes every shard's image (each consistent at one Raft index of its shard) to the
JetStream object store bucket <prefix>-backups, while the collection keeps serving; the default
name is <collection>-<UTC time>, e.g. docs-20261201T214000Z. Progress (stderr): the bytes the
bucket has grown by, as the shards' leaders write into it.
restore creates the collection (the backup's settings; --as: another name) and loads each shard's
image on every replica; it serves once every shard is loaded. Progress: the points of the shards
loaded so far, of the backup's total. --until (a collection with a change stream, restored under
a new name with --as while the original's stream exists): also replays the writes the stream holds
after each shard's backup index up to that time (point-in-time restore). It first waits (up to 30 s)
for the original's shards to publish writes at or before that time still waiting in their outboxes;
if JetStream does not accept them it fails UNAVAILABLE naming the shard: fix JetStream, then retry.
Both wait up to --timeout (default 600000 ms). See docs/backups.md.

${CONNECTION_USAGE}`;

export const backupCommand: Command = {
  name: 'backup',
  summary: 'backups in the JetStream object store: create, list, delete, restore',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, name: { type: 'string' }, as: { type: 'string' }, until: { type: 'string' } } });
    const [verbArg, arg, ...extra] = positionals;
    if (!VERBS.includes(verbArg as Verb)) throw new UsageError(`backup needs create, list, delete or restore${verbArg ? `, not '${verbArg}'` : ''}`);
    const verb = verbArg as Verb;
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    if (verb !== 'list' && arg === undefined) throw new UsageError(`backup ${verb} needs a ${verb === 'create' ? 'collection' : 'backup'} name`);
    if (values.name !== undefined && verb !== 'create') throw new UsageError(`--name is not an option of backup ${verb}`);
    if (values.as !== undefined && verb !== 'restore') throw new UsageError(`--as is not an option of backup ${verb}`);
    if (values.until !== undefined && verb !== 'restore') throw new UsageError(`--until is not an option of backup ${verb}`);
    // sent once (never hedged): a second copy would do the work twice
    const client = await clientFrom(values, { hedge: false, defaultTimeoutMs: 600_000 });
    try {
      const backups = new BackupsClient(client);
      const timeoutMs = client.timeoutMs;
      switch (verb) {
        case 'create': {
          const watch = values.json ? undefined : watchBucket(client, prefixOf(values));
          let b: BackupInfo;
          try {
            b = await backups.create(arg as string, { ...(values.name !== undefined ? { name: values.name } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
          } finally {
            await watch?.stop();
          }
          if (values.json) printJson({ backup: b });
          else process.stdout.write(`${describe(b)}\n`);
          return 0;
        }
        case 'list': {
          const all = await backups.list(arg !== undefined ? { collection: arg } : {});
          if (values.json) printJson({ backups: all });
          else process.stdout.write(`${table(all.map((b) => [b.name, b.collection, b.createdAt, b.points, mib(b.bytes), b.shards.map((s) => s.index).join(',')]), ['NAME', 'COLLECTION', 'CREATED', 'POINTS', 'MIB', 'INDEXES'])}\n`);
          return 0;
        }
        case 'delete': {
          const deleted = await backups.delete(arg as string);
          if (values.json) printJson({ deleted });
          else process.stdout.write(`deleted backup ${arg as string}\n`);
          return 0;
        }
        case 'restore': {
          const target = values.as;
          const all = values.json ? [] : await backups.list().catch(() => []);
          const m = all.find((x) => x.name === arg);
          const watch = m && !values.json ? watchRestore(client, target ?? m.collection, m.points) : undefined;
          let c: unknown;
          try {
            c = await backups.restore(arg as string, { ...(target !== undefined ? { as: target } : {}), ...(values.until !== undefined ? { until: values.until } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
          } finally {
            await watch?.stop();
          }
          if (values.json) printJson({ collection: c });
          else process.stdout.write(`restored backup ${arg as string} as collection ${(c as { name: string }).name} (${(c as { count: number }).count} points)\n`);
          return 0;
        }
      }
    } finally {
      await client.close();
    }
  },
};

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function describe(b: BackupInfo): string {
  const shards = b.shards.map((s) => `  shard ${s.shard}: index ${s.index}, ${s.points} points, ${mib(s.bytes)} MiB`).join('\n');
  return `backup ${b.name} of ${b.collection}: ${b.points} points, ${mib(b.bytes)} MiB, ${b.createdAt}\n${shards}`;
}

interface Watch {
  stop(): Promise<void>;
}

/** Polls `fn` every {@link POLL_MS} until stopped; a failing poll is skipped (the progress is only a view). */
function poll(fn: () => Promise<void>, done: () => void): Watch {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await fn().catch(() => undefined);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      done();
    },
  };
}

/** The bytes the backups bucket's stream grows by while a create runs (all writers into it count). */
function watchBucket(client: ShoalClient, prefix: string): Watch {
  const progress = new Progress('KiB written', undefined);
  const stream = `OBJ_${BackupStore.bucketName(prefix)}`;
  let base: number | undefined;
  let shown = 0;
  return poll(async () => {
    const jsm = await jetstreamManager(client.nc);
    const bytes = (await jsm.streams.info(stream)).state.bytes;
    base ??= bytes;
    const kib = Math.max(0, Math.floor((bytes - base) / 1024));
    if (kib > shown) progress.advance(kib - shown);
    shown = Math.max(shown, kib);
  }, () => progress.finish());
}

/** The points of the target collection's shards loaded so far (a shard counts once its image is loaded). */
function watchRestore(client: ShoalClient, collection: string, total: number): Watch {
  const progress = new Progress('points restored', total);
  let shown = 0;
  return poll(async () => {
    const d = await client.describeCollection(collection, 2_000);
    if (d.count > shown) progress.advance(d.count - shown);
    shown = Math.max(shown, d.count);
  }, () => progress.finish());
}
