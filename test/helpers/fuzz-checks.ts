/**
 * What a hostile request's reply is held to (issue 18, item 3): a PROTOCOL.md reply (a success,
 * or an error with a public code other than INTERNAL and its status header) within a bound;
 * every node stays up; the checked collection's points do not change; an accepted upsert reads
 * back as sent.
 */
import assert from 'node:assert/strict';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { decodeBody, encodingOf } from '../../src/runtime/codec.js';
import { ERROR_STATUS, isErrorCode } from '../../src/runtime/errors.js';
import type { TestCluster } from './cluster.js';
import { FUZZED, SCRATCH, bodyOf, jsonText, subjectOf, type FuzzRequest } from './fuzz-requests.js';

/** A reply later than this is a hang. Requests carry at most the 5 s default deadline unless they ask for more. */
export const REPLY_BOUND_MS = 15_000;

/**
 * Whether the request could change something it must not: an admin request that names the
 * checked or scratch collection or a real node (generated ones name ghosts, but a mutation may
 * put any string in), or a body over the server's max payload. Such requests are not sent.
 */
export function isSafe(req: FuzzRequest, nodes: readonly string[], maxPayload: number): boolean {
  // the NATS client refuses to publish more than the server's max payload (headers need a little)
  if (bodyOf(req).length > maxPayload - 1_024) return false;
  if (req.target.kind !== 'admin' || req.payload.kind !== 'value') return true;
  const text = jsonText(req.payload.value);
  return ![FUZZED, SCRATCH, ...nodes].some((n) => text.includes(JSON.stringify(n)));
}

export interface FuzzStats {
  requests: number;
  errors: Map<string, number>;
  ok: number;
  slowestMs: number;
}

export function newStats(): FuzzStats {
  return { requests: 0, errors: new Map(), ok: 0, slowestMs: 0 };
}

/** Sends `req` as any NATS client would and checks its reply is a PROTOCOL.md reply, which it returns. */
export async function sendAndCheck(nc: NatsConnection, req: FuzzRequest, stats: FuzzStats): Promise<Record<string, unknown>> {
  const h = headers();
  if (req.encoding === 'cbor') h.set('Content-Type', 'application/cbor');
  const t0 = performance.now();
  let res;
  try {
    res = await nc.request(subjectOf(req), bodyOf(req), { timeout: REPLY_BOUND_MS, headers: h });
  } catch (err) {
    throw new Error(`no reply within ${REPLY_BOUND_MS} ms (a hang or a crash): ${(err as Error).message}`);
  }
  const ms = performance.now() - t0;
  stats.requests++;
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  const replyEncoding = encodingOf(res.headers);
  assert.equal(replyEncoding, req.encoding, 'the reply uses the request encoding');
  let body: unknown;
  try {
    body = decodeBody(res.data, replyEncoding);
  } catch (err) {
    throw new Error(`the reply does not decode: ${(err as Error).message}`);
  }
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `the reply is an object, got ${JSON.stringify(body)}`);
  const error = (body as { error?: unknown }).error;
  if (error === undefined) {
    stats.ok++;
    return body as Record<string, unknown>;
  }
  const { code, message } = error as { code?: unknown; message?: unknown };
  assert.ok(isErrorCode(code) && ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'PAYLOAD_TOO_LARGE', 'UNAVAILABLE', 'TIMEOUT'].includes(code), `a public error code other than INTERNAL, got ${String(code)}: ${String(message)}`);
  assert.ok(typeof message === 'string' && message.length > 0, 'the error has a message');
  assert.equal(res.headers?.get('Nats-Service-Error-Code'), String(ERROR_STATUS[code]), 'the status header matches the code');
  stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
  return body as Record<string, unknown>;
}

/**
 * After an accepted upsert (to the scratch collection): each point reads back as it was sent,
 * the last of a repeated id winning — its vector as float32 and its metadata as JSON. A hostile
 * key or string that the cluster stored as something else (renamed, replaced by U+FFFD, or a
 * non-JSON object kept as `{}`) fails here.
 */
export async function checkStored(nc: NatsConnection, req: FuzzRequest): Promise<void> {
  const sent = decodeBody(bodyOf(req), req.encoding) as { points: { id: string; vector: ArrayLike<number>; metadata?: unknown }[]; requestId?: string };
  // a requestId seen before returns the first write's result and applies nothing (PROTOCOL.md)
  if (sent.requestId !== undefined) return;
  const last = new Map(sent.points.map((p) => [p.id, p]));
  const subject = subjectOf(req).replace(/\.upsert$/, '.get');
  const res = await nc.request(subject, new TextEncoder().encode(JSON.stringify({ ids: [...last.keys()], consistency: 'strong' })), { timeout: 10_000 });
  const got = JSON.parse(new TextDecoder().decode(res.data)) as { points?: { id: string; vector: number[]; metadata?: unknown }[] };
  assert.ok(got.points, `get after an accepted upsert answered ${JSON.stringify(got).slice(0, 300)}`);
  assert.deepEqual(got.points.map((p) => p.id), [...last.keys()], 'every accepted point reads back, under the id it was sent with');
  for (const p of got.points) {
    const want = last.get(p.id);
    // + 0: JSON writes -0 as 0
    assert.deepEqual(p.vector.map((x) => x + 0), Array.from(want?.vector ?? [], (x) => Math.fround(x) + 0), `point ${JSON.stringify(p.id)}: its vector as float32`);
    assert.equal(JSON.stringify(p.metadata ?? null), JSON.stringify(want?.metadata ?? null), `point ${JSON.stringify(p.id)}: its metadata as sent`);
  }
}

/** Every node process still runs. */
export function assertNodesUp(cluster: TestCluster): void {
  for (const n of cluster.nodes.values()) {
    assert.ok(n.proc && n.proc.exitCode === null && n.proc.signalCode === null, `node ${n.id} died (exit ${String(n.proc?.exitCode)}, signal ${String(n.proc?.signalCode)}); its log: ${n.log.join('').slice(-2_000)}`);
  }
}

/** What a strong read of the checked collection shows: its count and every seeded point. */
export async function snapshotOf(nc: NatsConnection, ids: string[]): Promise<{ count: number; points: unknown }> {
  const ask = async (op: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await nc.request(`shoal.v1.${FUZZED}.${op}`, new TextEncoder().encode(JSON.stringify(body)), { timeout: 10_000 });
    return JSON.parse(new TextDecoder().decode(res.data)) as Record<string, unknown>;
  };
  const count = await ask('count', { consistency: 'strong' });
  const got = await ask('get', { ids, consistency: 'strong' });
  assert.equal(typeof count['count'], 'number', `count answered ${JSON.stringify(count)}`);
  return { count: count['count'] as number, points: got['points'] };
}
