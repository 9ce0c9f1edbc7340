/**
 * What `shoal upsert --file` has loaded, so that `--resume` goes on where a failed or stopped run
 * left off. One small JSON file per (input file, cluster, collection) in the state directory
 * (`--state-dir`, else $SHOAL_STATE_DIR, else $XDG_STATE_HOME/shoal, else ~/.local/state/shoal),
 * under `upsert/`. It records the last line of the file that is done (every point up to it
 * acknowledged by the cluster, or skipped as invalid) and a SHA-256 of the lines up to it, so a
 * resume over a file that changed before that line is refused instead of skipping the wrong lines.
 *
 * Ordering rule: the record is written only after the cluster acknowledged the batch that ends at
 * its line, and replaced atomically (write then rename), so it never claims a line that was not
 * loaded. A crash between the acknowledgement and the write makes a resume send that batch
 * again, which only replaces the same points with themselves.
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface ProgressRecord {
  /** The input file, as an absolute real path. */
  file: string;
  nats: string;
  prefix: string;
  collection: string;
  /** Lines 1 to `line` are done. */
  line: number;
  /** SHA-256 (hex) of lines 1 to `line`, each with a `\n`. */
  sha256: string;
  /** Non-blank lines among them (for the progress bar's total). */
  nonBlank: number;
  /** Points upserted and lines skipped as invalid, over every run that led to this record. */
  upserted: number;
  skipped: number;
  updatedAt: string;
}

/** The state directory: `--state-dir`, $SHOAL_STATE_DIR, $XDG_STATE_HOME/shoal or ~/.local/state/shoal. */
export function stateDirOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return flag;
  if (env['SHOAL_STATE_DIR']) return env['SHOAL_STATE_DIR'];
  return join(env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state'), 'shoal');
}

/** The progress file of loading `file` into `collection` of the cluster at `nats` with `prefix`. */
export function progressPath(stateDir: string, key: Pick<ProgressRecord, 'file' | 'nats' | 'prefix' | 'collection'>): string {
  const id = createHash('sha256').update(JSON.stringify([key.file, key.nats, key.prefix, key.collection])).digest('hex').slice(0, 20);
  return join(stateDir, 'upsert', `${key.collection}-${id}.json`);
}

export function readProgress(path: string): ProgressRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const r = JSON.parse(text) as ProgressRecord;
  if (!Number.isInteger(r.line) || r.line < 0 || typeof r.sha256 !== 'string') throw new Error(`${path} is not a progress record of shoal upsert; remove it to start again`);
  return r;
}

export function writeProgress(path: string, r: ProgressRecord): void {
  mkdirSync(join(path, '..'), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(r)}\n`);
  renameSync(tmp, path);
}

/** The running SHA-256 over the lines read so far, and how many there were. */
export class LineHash {
  private readonly hash: Hash = createHash('sha256');
  lines = 0;
  nonBlank = 0;

  add(text: string): void {
    this.hash.update(`${text}\n`);
    this.lines++;
    if (text.trim() !== '') this.nonBlank++;
  }

  /** The digest so far; the hash goes on. */
  digest(): string {
    return this.hash.copy().digest('hex');
  }
}
