/**
 * The id of the request being handled, for log lines: the public request's `requestId` (or the
 * id the router gave a write without one). It is kept in an AsyncLocalStorage, so it follows the
 * handling of one request through its awaits, and the runtime carries it with every message sent
 * while it is set, as it does the trace context: in-process in the envelope, over NATS in the
 * {@link REQUEST_ID_HEADER} header. A message handler runs with the id its message came with, or
 * none, never with an id left over from another message.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

/** The NATS header that carries the request id between nodes (internal messages only). */
export const REQUEST_ID_HEADER = 'Shoal-Request-Id';

const store = new AsyncLocalStorage<string | undefined>();

/** Runs `fn` with `id` as the current request id (undefined: with none). */
export function withRequestId<T>(id: string | undefined, fn: () => T): T {
  return store.run(id, fn);
}

/** The id of the request being handled, if any. */
export function currentRequestId(): string | undefined {
  return store.getStore();
}

/** `base` with the current request id added as a header (made when needed); `base` itself when there is none. */
export function injectRequestId(base: MsgHdrs | undefined): MsgHdrs | undefined {
  const id = store.getStore();
  if (id === undefined) return base;
  const h = base ?? natsHeaders();
  h.set(REQUEST_ID_HEADER, id);
  return h;
}

/** The request id a received message carries in its headers, if any. */
export function extractRequestId(headers: MsgHdrs | undefined): string | undefined {
  if (!headers) return undefined;
  const v = headers.get(REQUEST_ID_HEADER);
  return v === '' ? undefined : v;
}
