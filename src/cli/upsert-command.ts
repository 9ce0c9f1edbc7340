/**
 * `shoal upsert`: loads a JSON-lines file in batches, each line checked against the collection
 * first and named by its number when bad; keeps its progress so that `--resume` goes on after a
 * failure (upsert-progress.ts).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync, realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { WriteConcern } from '../api/types.js';
import type { CollectionClient, UpsertPoint } from '../client/client.js';
import { TimeoutError, UnavailableError, describeError } from '../runtime/errors.js';
import { UsageError, intOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, clientFrom, natsUrlOf, prefixOf, printJson } from './connection.js';
import { EXIT_SKIPPED } from './exit-codes.js';
import { Progress } from './progress.js';
import { LineError, lineErrorOf, parseLine, specOf, withContext } from './upsert-lines.js';
import { LineHash, progressPath, readProgress, stateDirOf, writeProgress } from './upsert-progress.js';

export const DEFAULT_BATCH = 500;

/** `1 point`, `1,200 points`, `2 batches`. */
function plural(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? noun : noun.endsWith('ch') ? `${noun}es` : `${noun}s`}`;
}
/** Keep each request well under NATS's default 1 MiB max payload. */
const RETRIES = 5;

const USAGE = `shoal upsert <collection> --file <points.jsonl | -> [--batch ${DEFAULT_BATCH}] [--write-concern majority|all|leader]
                   [--skip-invalid] [--resume] [--state-dir <dir>]

Reads one point per line: {"id": "...", "vector": [...], "metadata": {...}}. Each line is checked
against the collection (dimension, id, metadata, shard key) before it is sent, and a bad one is
named by its line number. Sends batches of up to --batch points (and at most the NATS server's
max payload of lines), each with its own requestId, so a batch retried after a timeout or a
leader change is applied once. A batch too large for one NATS message is sent in several
requests, each with a requestId derived from the batch's, so a retry applies each of them once
too. Shows
progress on stderr and a summary (with --json, the summary as JSON).

  --skip-invalid     report each bad line on stderr and go on (exit ${EXIT_SKIPPED} when any was skipped)
  --resume           go on after the last line an earlier run of the same file into the same
                     collection had loaded (refused if the file changed before that line)
  --state-dir <dir>  where the progress of each file is kept (default $SHOAL_STATE_DIR,
                     else $XDG_STATE_HOME/shoal, else ~/.local/state/shoal)

${CONNECTION_USAGE}`;

/** One line of the file on its way to the cluster. */
interface Pending {
  point: UpsertPoint;
  line: number;
}

export const upsertCommand: Command = {
  name: 'upsert',
  summary: 'load points from a JSON-lines file, in batches, with progress',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...CONNECTION_OPTIONS,
        file: { type: 'string', short: 'f' }, batch: { type: 'string' }, 'write-concern': { type: 'string' },
        'skip-invalid': { type: 'boolean' }, resume: { type: 'boolean' }, 'state-dir': { type: 'string' },
      },
    });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('upsert needs exactly one collection name');
    if (!values.file) throw new UsageError('upsert needs --file <points.jsonl> (or --file - for standard input)');
    const file = values.file;
    const batchSize = intOption(values.batch, '--batch', 1, 10_000) ?? DEFAULT_BATCH;
    const wc = values['write-concern'];
    if (wc !== undefined && wc !== 'majority' && wc !== 'all' && wc !== 'leader') throw new UsageError(`--write-concern must be majority, all or leader, got ${wc}`);
    if (values.resume && file === '-') throw new UsageError('--resume needs a file: standard input cannot be read again');
    const skipInvalid = Boolean(values['skip-invalid']);

    const total = file === '-' ? undefined : countLines(file);
    // Progress is kept for every file (so a failed run can be resumed), never for standard input.
    const key = file === '-' ? undefined : { file: realpathSync(file), nats: natsUrlOf(values), prefix: prefixOf(values), collection: name };
    const progressFile = key ? progressPath(stateDirOf(values['state-dir'], process.env), key) : undefined;
    const resumeFrom = values.resume && progressFile ? readProgress(progressFile) : undefined;
    if (values.resume && !resumeFrom) process.stderr.write(`no progress recorded for ${file} into '${name}': loading it from line 1\n`);

    const client = await clientFrom(values);
    // The client splits a batch into requests that fit; this bounds what is read ahead of them.
    const maxBatchBytes = client.maxPayload;
    const started = Date.now();
    let sent = 0;
    let batches = 0;
    let retried = 0;
    const skipped: LineError[] = [];
    const hash = new LineHash();
    let progress: Progress | undefined;
    let batch: Pending[] = [];
    let batchBytes = 0;
    // the last line recorded as done (by this run or the one it resumes)
    let doneLine = resumeFrom?.line ?? 0;
    const record = (): void => {
      if (!key || !progressFile) return;
      doneLine = hash.lines;
      writeProgress(progressFile, {
        ...key, line: hash.lines, sha256: hash.digest(), nonBlank: hash.nonBlank,
        upserted: (resumeFrom?.upserted ?? 0) + sent, skipped: (resumeFrom?.skipped ?? 0) + skipped.length, updatedAt: new Date().toISOString(),
      });
    };
    const skip = (e: LineError): void => {
      skipped.push(e);
      process.stderr.write(`skipped ${e.message}\n`);
    };
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const r = await sendBatch(coll, batch, wc, skipInvalid ? skip : undefined);
      retried += r.retries;
      sent += r.upserted;
      batches++;
      progress?.advance(batch.length);
      batch = [];
      batchBytes = 0;
      // every line read so far is done: its point acknowledged, or skipped, or blank
      record();
    };
    const coll = client.collection(name);
    let loading = false;
    try {
      const spec = specOf(await client.describeCollection(name));
      loading = true;
      progress = new Progress('points', total !== undefined ? total - (resumeFrom?.nonBlank ?? 0) : undefined);
      const input = file === '-' ? process.stdin : createReadStream(file);
      let lineNo = 0;
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        lineNo++;
        if (resumeFrom && lineNo <= resumeFrom.line) {
          hash.add(line);
          if (lineNo === resumeFrom.line && hash.digest() !== resumeFrom.sha256) throw changedSince(file, resumeFrom.line, progressFile);
          continue;
        }
        if (line.trim() === '') {
          hash.add(line);
          continue;
        }
        let point: UpsertPoint;
        try {
          point = parseLine(line, lineNo, spec);
        } catch (err) {
          if (!(err instanceof LineError) || !skipInvalid) {
            // what came before the bad line is loaded, so a resume starts exactly at it
            await flush();
            throw err;
          }
          skip(err);
          progress.advance(1);
          hash.add(line);
          continue;
        }
        if (batch.length >= batchSize || batchBytes + line.length > maxBatchBytes) await flush();
        hash.add(line);
        batch.push({ point, line: lineNo });
        batchBytes += line.length;
      }
      if (resumeFrom && lineNo < resumeFrom.line) throw changedSince(file, resumeFrom.line, progressFile);
      await flush();
      record();
    } catch (err) {
      progress?.finish();
      const resume = progressFile && doneLine > 0 ? `; run again with --resume to go on from line ${doneLine + 1}` : '';
      throw err instanceof UsageError || !loading ? err : withContext(err, `; ${plural(sent, 'point')} in ${plural(batches, 'batch')} ${sent === 1 ? 'was' : 'were'} upserted before it${resume}`);
    } finally {
      await client.close();
    }
    progress.finish();
    const secs = (Date.now() - started) / 1000;
    const resumed = resumeFrom ? resumeFrom.line : 0;
    if (values.json) {
      printJson({
        upserted: sent, batches, retries: retried, seconds: Number(secs.toFixed(3)), resumedAfterLine: resumed, lines: hash.lines,
        skipped: skipped.map((e) => ({ line: e.line, message: e.reason })),
      });
    } else {
      process.stdout.write(
        `upserted ${plural(sent, 'point')} into '${name}' in ${plural(batches, 'batch')}, ${secs.toFixed(1)}s (${Math.round(sent / Math.max(secs, 0.001)).toLocaleString('en-US')} points/s)` +
          `${retried ? `, ${retried} retries` : ''}${skipped.length ? `, ${plural(skipped.length, 'invalid line')} skipped` : ''}${resumed ? `, resumed after line ${resumed.toLocaleString('en-US')}` : ''}\n`,
      );
    }
    return skipped.length > 0 ? EXIT_SKIPPED : 0;
  },
};

function changedSince(file: string, line: number, progressFile: string | undefined): UsageError {
  return new UsageError(`${file} is not the file an earlier run loaded up to line ${line} (its lines 1 to ${line} changed); remove ${progressFile} to load it from the start`);
}

/**
 * Sends one batch until the cluster acknowledges it. A timeout or an unavailable shard is retried
 * with the same requestId (applied at most once). A point the cluster rejects is named by its
 * line; with `skip` it is reported there and the batch, without it, is sent again (a rejected
 * batch applied nothing, so the smaller one gets a requestId of its own).
 */
async function sendBatch(coll: CollectionClient, pending: Pending[], writeConcern: WriteConcern | undefined, skip: ((e: LineError) => void) | undefined): Promise<{ upserted: number; retries: number }> {
  let retries = 0;
  let left = pending;
  for (;;) {
    if (left.length === 0) return { upserted: 0, retries };
    const requestId = randomUUID();
    for (let attempt = 0; ; attempt++) {
      try {
        const upserted = await coll.upsert(left.map((p) => p.point), { requestId, ...(writeConcern ? { writeConcern } : {}) });
        return { upserted, retries: retries + attempt };
      } catch (err) {
        if (attempt < RETRIES && (err instanceof TimeoutError || err instanceof UnavailableError)) {
          await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
          continue;
        }
        const bad = lineErrorOf(err, left.map((p) => p.line));
        if (!bad) throw err;
        if (!skip) throw bad;
        skip(bad);
        left = left.filter((p) => p.line !== bad.line);
        retries += attempt;
        break;
      }
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
