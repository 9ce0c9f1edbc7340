import { randomUUID } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { CollectionClient, UpsertPoint } from '../client/client.js';
import { ShoalError, TimeoutError, UnavailableError, describeError } from '../runtime/errors.js';
import { UsageError, intOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom } from './connection.js';
import { Progress } from './progress.js';

export const DEFAULT_BATCH = 500;

/** `1 point`, `1,200 points`, `2 batches`. */
function plural(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? noun : noun.endsWith('ch') ? `${noun}es` : `${noun}s`}`;
}
const RETRIES = 5;

const USAGE = `shoal upsert <collection> --file <points.jsonl | -> [--batch ${DEFAULT_BATCH}] [--write-concern majority|all|leader]

Reads one point per line: {"id": "...", "vector": [...], "metadata": {...}}. Sends batches of up
to --batch points (and at most the NATS server's max payload of lines), each with its own
requestId, so a batch retried after a timeout or a leader change is applied once. A batch too
large for one NATS message is sent in several requests, each with a requestId derived from the
batch's, so a retry applies each of them once too. Shows progress on stderr and a summary.

${CONNECTION_USAGE}`;

export const upsertCommand: Command = {
  name: 'upsert',
  summary: 'load points from a JSON-lines file, in batches, with progress',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...CONNECTION_OPTIONS, file: { type: 'string', short: 'f' }, batch: { type: 'string' }, 'write-concern': { type: 'string' } },
    });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('upsert needs exactly one collection name');
    if (!values.file) throw new UsageError('upsert needs --file <points.jsonl> (or --file - for standard input)');
    const batchSize = intOption(values.batch, '--batch', 1, 10_000) ?? DEFAULT_BATCH;
    const wc = values['write-concern'];
    if (wc !== undefined && !['majority', 'all', 'leader'].includes(wc)) throw new UsageError(`--write-concern must be majority, all or leader, got ${wc}`);

    const total = values.file === '-' ? undefined : countLines(values.file);
    const client = await clientFrom(values);
    // The client splits a batch into requests that fit; this bounds what is read ahead of them.
    const maxBatchBytes = client.maxPayload;
    const coll = client.collection(name);
    const progress = new Progress('points', total);
    const started = Date.now();
    let sent = 0;
    let batches = 0;
    let retried = 0;
    let batch: UpsertPoint[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const r = await sendBatch(coll, batch, wc as never);
      retried += r.retries;
      sent += r.upserted;
      batches++;
      progress.advance(batch.length);
      batch = [];
      batchBytes = 0;
    };
    try {
      const input = values.file === '-' ? process.stdin : createReadStream(values.file);
      let lineNo = 0;
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        lineNo++;
        if (line.trim() === '') continue;
        let p: UpsertPoint;
        try {
          p = JSON.parse(line) as UpsertPoint;
        } catch (err) {
          throw new UsageError(`${values.file}:${lineNo} is not valid JSON (${describeError(err)}); ${plural(sent, 'point')} ${sent === 1 ? 'was' : 'were'} upserted before it`);
        }
        if (batch.length >= batchSize || batchBytes + line.length > maxBatchBytes) await flush();
        batch.push(p);
        batchBytes += line.length;
      }
      await flush();
    } catch (err) {
      progress.finish();
      if (err instanceof ShoalError) {
        throw new Error(`${describeError(err)} (${err.code}); ${plural(sent, 'point')} in ${plural(batches, 'batch')} ${sent === 1 ? 'was' : 'were'} upserted before it`, { cause: err });
      }
      throw err;
    } finally {
      await client.close();
    }
    progress.finish();
    const secs = (Date.now() - started) / 1000;
    process.stdout.write(
      `upserted ${plural(sent, 'point')} into '${name}' in ${plural(batches, 'batch')}, ${secs.toFixed(1)}s (${Math.round(sent / Math.max(secs, 0.001)).toLocaleString('en-US')} points/s)${retried ? `, ${retried} retries` : ''}\n`,
    );
    return 0;
  },
};

async function sendBatch(coll: CollectionClient, points: UpsertPoint[], writeConcern: 'majority' | 'all' | 'leader' | undefined): Promise<{ upserted: number; retries: number }> {
  // One requestId for every attempt of this batch: the cluster applies it at most once.
  const requestId = randomUUID();
  for (let attempt = 0; ; attempt++) {
    try {
      const upserted = await coll.upsert(points, { requestId, ...(writeConcern ? { writeConcern } : {}) });
      return { upserted, retries: attempt };
    } catch (err) {
      if (attempt < RETRIES && (err instanceof TimeoutError || err instanceof UnavailableError)) {
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
        continue;
      }
      throw err;
    }
  }
}

/** Non-empty lines of a file, read in chunks (the file may be larger than memory allows). */
function countLines(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${describeError(err)}`);
  }
  const buf = Buffer.allocUnsafe(1 << 20);
  let n = 0;
  let lineHasChars = false;
  try {
    for (let read = readSync(fd, buf); read > 0; read = readSync(fd, buf)) {
      for (let i = 0; i < read; i++) {
        if (buf[i] === 10) {
          if (lineHasChars) n++;
          lineHasChars = false;
        } else if (buf[i] !== 13) {
          lineHasChars = true;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return lineHasChars ? n + 1 : n;
}
