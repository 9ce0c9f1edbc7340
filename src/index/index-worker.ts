/**
 * The index worker thread: owns the indexes of an {@link IndexHost} and runs every index call
 * (all of which block) here, one message at a time, in arrival order, so the caller's event loop
 * stays free for NATS and Raft timers.
 */
import { mkdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CorruptDataError, InternalError, ShoalError } from '../runtime/errors.js';
import { FlatIndex } from './flat-index.js';
import { HnswIndex } from './hnsw-index.js';
import type { WireErrorBody, WireStep, WorkerReply, WorkerRequest } from './index-protocol.js';
import type { IndexPoint, VectorIndex } from './types.js';

// Index work yields the CPU to the caller's thread (NATS, Raft timers) when both want it: on Linux
// a nice value set with pid 0 applies to the calling thread only, so this lowers this worker
// thread alone (see IndexHostOptions.nice).
const nice = (workerData as { nice?: number } | undefined)?.nice ?? 0;
if (nice !== 0) {
  try {
    setPriority(nice);
  } catch {
    // not permitted here: run at normal priority
  }
}

const indexes = new Map<number, VectorIndex>();

function indexOf(handle: number): VectorIndex {
  const index = indexes.get(handle);
  if (!index) throw new InternalError(`index ${handle} is not open in the index worker`);
  return index;
}

function applyStep(index: VectorIndex, step: WireStep): number | null {
  switch (step.type) {
    case 'upsert': {
      const dim = index.dim;
      const points: IndexPoint[] = step.ids.map((id, i) => ({
        id,
        vector: step.vectors.subarray(i * dim, (i + 1) * dim),
        metadata: step.metadata[i] ?? undefined,
      }));
      index.upsert(points);
      return null;
    }
    case 'delete':
      return index.delete(step.ids);
    case 'hide':
      return index.hide(step.ids);
    case 'unhide':
      return index.unhide(step.ids);
    case 'checkpoint':
      if (!(index instanceof HnswIndex)) throw new InternalError('only an HNSW index can be checkpointed');
      index.checkpoint(step.dir);
      return null;
    case 'save':
      if (!(index instanceof HnswIndex)) throw new InternalError('only an HNSW index can be saved');
      mkdirSync(step.dir, { recursive: true });
      index.save(step.dir);
      return null;
    default: {
      const never: never = step;
      throw new InternalError(`unknown index step ${JSON.stringify(never)}`);
    }
  }
}

function toWire(err: unknown): WireErrorBody {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, ...(err instanceof ShoalError ? { code: err.code } : {}), ...(err instanceof CorruptDataError ? { file: err.file } : {}) };
}

function handle(req: WorkerRequest): unknown {
  switch (req.op) {
    case 'create':
      if (indexes.has(req.handle)) throw new InternalError(`index ${req.handle} exists`);
      indexes.set(req.handle, req.kind === 'hnsw' ? HnswIndex.create(req.options) : new FlatIndex(req.options));
      return null;
    case 'load':
      indexes.set(req.handle, HnswIndex.load(req.dir, req.options));
      return null;
    case 'drop':
      indexes.delete(req.handle);
      return null;
    case 'apply': {
      const index = indexOf(req.handle);
      return req.steps.map((s) => applyStep(index, s));
    }
    case 'search':
      return req.searches.map(({ handle, query }) => {
        try {
          return indexOf(handle).searchExplained(query);
        } catch (err) {
          return { error: toWire(err) };
        }
      });
    case 'get': {
      const index = indexOf(req.handle);
      return req.ids.map((id) => index.get(id) ?? null);
    }
    case 'count':
      return indexOf(req.handle).count();
    case 'plan':
      return indexOf(req.handle).plan(req.query);
    case 'memory': {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
    }
    default: {
      const never: never = req;
      throw new InternalError(`unknown index request ${JSON.stringify(never)}`);
    }
  }
}

const port = parentPort;
if (!port) throw new Error('index-worker.js runs only as a worker thread (see IndexHost)');
port.on('message', (msg: { id: number; req: WorkerRequest }) => {
  let reply: WorkerReply;
  try {
    reply = { id: msg.id, ok: true, value: handle(msg.req) };
  } catch (err) {
    reply = { id: msg.id, ok: false, error: toWire(err) };
  }
  port.postMessage(reply);
});
