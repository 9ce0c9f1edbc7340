/**
 * `watch <subject-pattern>`: live messages on any subjects, each with its payload decoded (by its
 * Content-Type when it has one; else JSON when it parses as JSON, else CBOR, else UTF-8 text,
 * else hex). Ends on Ctrl-C (the console stays), after `--count` messages or `--for` ms.
 */
import type { Msg } from '@nats-io/transport-node';
import { decodeCbor, decodeJson } from '../../runtime/codec.js';
import { UsageError, intOption } from '../command.js';
import { parseCommandArgs, typedArrays, type ConsoleCommand } from './registry.js';

/** A payload as the watch shows it. */
export type Decoded = { encoding: 'cbor' | 'json'; value: unknown } | { encoding: 'text'; value: string } | { encoding: 'hex'; value: string } | { encoding: 'empty'; value: null };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a payload; `contentType` (a header) decides when given. Pure. */
export function decodePayload(bytes: Uint8Array, contentType?: string): Decoded {
  if (bytes.length === 0) return { encoding: 'empty', value: null };
  const ct = contentType?.toLowerCase() ?? '';
  const attempts: (() => Decoded)[] = [
    () => ({ encoding: 'json', value: decodeJson(bytes) }),
    () => ({ encoding: 'cbor', value: decodeCbor(bytes) }),
  ];
  if (ct.includes('cbor')) attempts.reverse();
  for (const attempt of attempts) {
    try {
      return attempt();
    } catch {
      // the next encoding
    }
  }
  try {
    return { encoding: 'text', value: utf8.decode(bytes) };
  } catch {
    return { encoding: 'hex', value: Buffer.from(bytes).toString('hex') };
  }
}

/** A subject to subscribe to: tokens of no spaces, `*` for one token, `>` for the rest (last only). */
export function checkPattern(pattern: string): string {
  const tokens = pattern.split('.');
  const ok = tokens.every((t, i) => /^[^\s*>]+$/.test(t) || t === '*' || (t === '>' && i === tokens.length - 1));
  if (!ok) throw new UsageError(`the subject pattern '${pattern}' is not valid: dot-separated tokens without spaces, * for one token, > (last) for the rest`);
  return pattern;
}

function line(m: Msg, d: Decoded, columns: number | undefined): string {
  const at = new Date().toISOString().slice(11, 23);
  const body = d.encoding === 'cbor' || d.encoding === 'json' ? JSON.stringify(d.value, typedArrays) : d.encoding === 'empty' ? '' : d.value;
  const text = `${at} ${m.subject}${m.reply ? ` (reply to ${m.reply})` : ''} ${d.encoding} ${body}`;
  const chars = [...text];
  return columns && chars.length > columns ? `${chars.slice(0, columns - 1).join('')}…` : text;
}

export const watchCmd: ConsoleCommand = {
  name: 'watch',
  args: '<subject-pattern> [--count <n>] [--for <ms>]',
  summary: 'live messages on subjects (e.g. _shoal.actor.n1.>), CBOR and JSON decoded; Ctrl-C ends it',
  more: 'Each message on one line: time, subject, encoding, payload. With --json each is one line\n{"subject", "reply", "encoding", "value"}. Ctrl-C ends the watch, not the console.',
  async run(args, s, signal) {
    const { values, positionals } = parseCommandArgs(args, { count: { type: 'string' }, for: { type: 'string' } }, { min: 1, max: 1, what: 'the subject pattern' });
    const pattern = checkPattern(positionals[0] as string);
    const count = intOption(values['count'] as string | undefined, '--count', 1, Number.MAX_SAFE_INTEGER);
    const forMs = intOption(values['for'] as string | undefined, '--for (ms)', 1, 86_400_000);
    let seen = 0;
    const sub = s.nc.subscribe(pattern);
    const stop = (): void => sub.unsubscribe();
    signal.addEventListener('abort', stop, { once: true });
    const timer = forMs !== undefined ? setTimeout(stop, forMs) : undefined;
    await s.nc.flush();
    if (!s.opts.json) s.print(`watching ${pattern}${count ? ` for ${count} messages` : ''}${forMs ? ` for ${forMs} ms` : ''} (Ctrl-C ends)`);
    try {
      if (!signal.aborted) {
        for await (const m of sub) {
          const d = decodePayload(m.data, m.headers?.get('Content-Type'));
          if (s.opts.json) s.print(JSON.stringify({ subject: m.subject, ...(m.reply ? { reply: m.reply } : {}), encoding: d.encoding, value: d.value }, typedArrays));
          else s.print(line(m, d, s.columns()));
          if (++seen === count) break;
        }
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      sub.unsubscribe();
    }
    return { text: `watch ended: ${seen} message${seen === 1 ? '' : 's'}` };
  },
};
