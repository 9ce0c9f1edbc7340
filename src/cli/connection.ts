/** Options every client verb takes, and the client they build. */
import { ShoalClient } from '../client/client.js';
import { intOption } from './command.js';
import { NATS_SECURITY_OPTIONS, NATS_SECURITY_USAGE, natsSecurityFrom, type NatsSecurityValues } from './nats-security.js';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
/** How long a client verb waits for its NATS connection (longer when --timeout is longer). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export const CONNECTION_OPTIONS = {
  nats: { type: 'string' },
  prefix: { type: 'string' },
  cbor: { type: 'boolean' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  ...NATS_SECURITY_OPTIONS,
} as const;

export const CONNECTION_USAGE = `  --nats <url>      NATS server (default $SHOAL_NATS_URL or ${DEFAULT_NATS_URL})
  --prefix <p>      the cluster's subject prefix (default $SHOAL_PREFIX or shoal)
  --cbor            speak CBOR instead of JSON
  --timeout <ms>    request deadline (default 5000)
  --json            print the protocol's reply as JSON on stdout (an error too: {"error": {"code", "message"}})
${NATS_SECURITY_USAGE}`;

export interface ConnectionValues extends NatsSecurityValues {
  nats?: string | undefined;
  prefix?: string | undefined;
  cbor?: boolean | undefined;
  timeout?: string | undefined;
  json?: boolean | undefined;
}

/** The NATS URL(s) a verb connects to: --nats, else $SHOAL_NATS_URL, else the default. */
export function natsUrlOf(v: ConnectionValues): string {
  return v.nats ?? process.env['SHOAL_NATS_URL'] ?? DEFAULT_NATS_URL;
}

/** The cluster's subject prefix: --prefix, else $SHOAL_PREFIX, else `shoal`. */
export function prefixOf(v: ConnectionValues): string {
  return v.prefix ?? process.env['SHOAL_PREFIX'] ?? 'shoal';
}

export function timeoutOf(v: ConnectionValues): number | undefined {
  return intOption(v.timeout, '--timeout (ms)', 1, 60_000);
}

/**
 * The client of a verb. `hedge: false` for requests that must not be sent twice (a copy of a
 * leadership transfer would move the leadership again); `defaultTimeoutMs` when the verb waits
 * longer than a plain request by nature and `--timeout` is not given.
 */
export async function clientFrom(v: ConnectionValues, opts: { hedge?: boolean; defaultTimeoutMs?: number } = {}): Promise<ShoalClient> {
  const timeoutMs = timeoutOf(v) ?? opts.defaultTimeoutMs;
  const security = natsSecurityFrom(v);
  return ShoalClient.connect({
    servers: natsUrlOf(v),
    security,
    // A one-shot command does not wait nats.js's 20 s for a connection that will not come (a
    // server that wants a client certificate only lets it time out); a short --timeout is for
    // the request, not the connection.
    connectTimeoutMs: Math.max(timeoutMs ?? 0, DEFAULT_CONNECT_TIMEOUT_MS),
    prefix: prefixOf(v),
    encoding: v.cbor ? 'cbor' : 'json',
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(opts.hedge === false ? { hedgeAfterMs: 0 } : {}),
  });
}

/**
 * A data request on `collection`, its reply as the protocol gives it (what --json prints; the
 * client's methods unwrap it).
 */
export function dataRequest<T>(client: ShoalClient, collection: string, op: string, body: Record<string, unknown>): Promise<T> {
  return client.request<T>(client.apiSubject(collection, op), body);
}

/** An admin request (`<prefix>.v1.admin.<area>.<op>`), its reply as the protocol gives it. */
export function adminRequest<T>(client: ShoalClient, area: string, op: string, body: Record<string, unknown>): Promise<T> {
  return client.request<T>(client.adminSubject(area, op), body);
}

/** Prints `value` as JSON (for --json) with typed arrays as arrays. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, x: unknown) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x), 2)}\n`);
}

/** Narrowest a column is cut to when a table must fit the terminal. */
const MIN_COLUMN_WIDTH = 6;

/**
 * A plain text table. With `columns` (the terminal's width) the widest columns are narrowed, their
 * cells cut with `…`, until a row fits (down to a few characters a column).
 */
export function table(rows: (string | number | null)[][], header: string[], columns?: number): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => [...(r[i] ?? '')].length)));
  if (columns !== undefined && columns > 0) {
    const total = (): number => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
    while (total() > columns) {
      const widest = widths.indexOf(Math.max(...widths));
      if ((widths[widest] ?? 0) <= MIN_COLUMN_WIDTH) break;
      widths[widest] = (widths[widest] ?? 0) - 1;
    }
  }
  const fit = (c: string, w: number): string => {
    const chars = [...c];
    return chars.length > w ? `${chars.slice(0, Math.max(0, w - 1)).join('')}…` : c + ' '.repeat(w - chars.length);
  };
  return cells.map((r) => r.map((c, i) => fit(c ?? '', widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
