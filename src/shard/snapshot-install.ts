/**
 * Installs a snapshot stream into a group: wipes the group and marks it `restoring` (so a crash
 * midway leaves a group that reopens empty, never a mix), writes the checkpoint files (flushed,
 * renamed into place), the points, dedup entries, journal, reshard moves and change-stream
 * outbox, and last the meta record that
 * clears `restoring`.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { NodeEnv } from '../storage/node-env.js';
import type { ApplyContext } from './apply-command.js';
import { freshMeta, META_FORMAT, type ShardMeta } from './shard-meta.js';
import { FrameReader, SNAPSHOT_FORMAT, type SnapshotFrame } from './snapshot-codec.js';

export interface InstallOptions {
  env: NodeEnv;
  group: string;
  dir: string;
  ctx: ApplyContext;
  /** The index the image must be at; null: any (a backup image, rebased by the caller). */
  appliedIndex: number | null;
  /** Leave the meta record marked `restoring` (the caller finishes the restore and clears it). */
  keepRestoring?: boolean;
  chunks: AsyncIterable<Uint8Array>;
  checkpointDirName: (index: number) => string;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function installSnapshot(o: InstallOptions): Promise<ShardMeta> {
  const { env, group, ctx } = o;
  const restoring: ShardMeta = { ...freshMeta(ctx.dim, ctx.metric), restoring: true };
  await env.transaction(() => {
    ctx.points.clear(group);
    ctx.dedup.clear(group);
    ctx.meta.clear(group);
    ctx.meta.putMeta(group, restoring);
  });
  const tmp = join(o.dir, 'restore.tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const fds = new Map<string, number>();
  const reader = new FrameReader();
  let header: Extract<SnapshotFrame, { t: 'header' }> | undefined;
  let end: Extract<SnapshotFrame, { t: 'end' }> | undefined;
  const seen = { points: 0, dedup: 0, journal: 0, fileBytes: 0, moves: 0, changes: 0 };
  const need = (): Extract<SnapshotFrame, { t: 'header' }> => {
    if (!header) throw new InvalidArgumentError('snapshot stream does not start with a header frame');
    if (end) throw new InvalidArgumentError('snapshot stream has frames after its end frame');
    return header;
  };
  try {
    for await (const chunk of o.chunks) {
      for (const frame of reader.push(chunk)) {
        switch (frame.t) {
          case 'header':
            if (header) throw new InvalidArgumentError('snapshot stream has two header frames');
            if (frame.format !== SNAPSHOT_FORMAT) throw new InvalidArgumentError(`snapshot format ${frame.format} is not ${SNAPSHOT_FORMAT}`);
            if (frame.dim !== ctx.dim || frame.metric !== ctx.metric) throw new InvalidArgumentError(`snapshot holds dim ${frame.dim} ${frame.metric}; this group is dim ${ctx.dim} ${ctx.metric}`);
            if (o.appliedIndex !== null && frame.appliedIndex !== o.appliedIndex) throw new InvalidArgumentError(`snapshot is at index ${frame.appliedIndex}, restore was asked for ${o.appliedIndex}`);
            header = frame;
            break;
          case 'file': {
            need();
            const name = basename(frame.name);
            let fd = fds.get(name);
            if (fd === undefined) fds.set(name, (fd = openSync(join(tmp, name), 'w')));
            writeSync(fd, frame.data);
            seen.fileBytes += frame.data.length;
            break;
          }
          case 'points':
            need();
            await env.transaction(() => {
              for (const [id, value] of frame.entries) {
                ctx.points.check(group, id, value);
                ctx.points.putRaw(group, id, value);
              }
            });
            seen.points += frame.entries.length;
            break;
          case 'dedup':
            need();
            await env.transaction(() => {
              for (const [requestId, entry] of frame.entries) ctx.dedup.put(group, requestId, entry);
            });
            seen.dedup += frame.entries.length;
            break;
          case 'journal':
            need();
            await env.transaction(() => {
              for (const [index, value] of frame.entries) ctx.meta.putJournalRaw(group, index, value);
            });
            seen.journal += frame.entries.length;
            break;
          case 'moves':
            need();
            await env.transaction(() => {
              for (const [index, value] of frame.entries) ctx.meta.putMoves(group, index, value);
            });
            seen.moves += frame.entries.length;
            break;
          case 'changes':
            need();
            await env.transaction(() => {
              for (const [index, value] of frame.entries) ctx.outbox.putRaw(group, index, value);
            });
            seen.changes += frame.entries.length;
            break;
          case 'end':
            need();
            end = frame;
            break;
          default: {
            const never: never = frame;
            throw new InvalidArgumentError(`unknown snapshot frame ${JSON.stringify((never as { t: unknown }).t)}`);
          }
        }
      }
    }
    reader.finish();
    if (!header || !end) throw new InvalidArgumentError('snapshot stream ended before its end frame');
    if (end.points !== seen.points || end.dedup !== seen.dedup || end.journal !== seen.journal || end.fileBytes !== seen.fileBytes || (end.moves ?? 0) !== seen.moves || (end.changes ?? 0) !== seen.changes) {
      throw new InvalidArgumentError(`snapshot stream is incomplete: got ${JSON.stringify(seen)}, its end frame says ${JSON.stringify(end)}`);
    }
    if (seen.points !== header.count) throw new InvalidArgumentError(`snapshot has ${seen.points} points; its header says ${header.count}`);
  } finally {
    for (const fd of fds.values()) {
      fsyncSync(fd);
      closeSync(fd);
    }
  }
  if (header.checkpointIndex > 0) {
    const final = join(o.dir, o.checkpointDirName(header.checkpointIndex));
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } else {
    rmSync(tmp, { recursive: true, force: true });
  }
  fsyncPath(o.dir);
  const meta: ShardMeta = {
    format: META_FORMAT,
    dim: ctx.dim,
    metric: ctx.metric,
    appliedIndex: header.appliedIndex,
    count: header.count,
    maxAt: header.maxAt,
    checkpointIndex: header.checkpointIndex,
    restoring: o.keepRestoring === true,
    reshard: header.reshard ?? null,
    hidden: header.hidden ?? 0,
  };
  await env.transaction(() => ctx.meta.putMeta(group, meta));
  return meta;
}
