/**
 * Benchmark reports: the machine they ran on, and a section of bench/RESULTS.md replaced by
 * each run of the same benchmark (older figures stay in git history).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export function machine(): string {
  const cpu = cpus();
  let nats = 'nats-server not found';
  try {
    nats = execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as not found
  }
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${nats}`;
}

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

const RESULTS = new URL('../../../bench/RESULTS.md', import.meta.url);

/** Replaces (or appends) the section `name` of bench/RESULTS.md with `body`. */
export function writeSection(name: string, body: string): void {
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${begin}\n${body.trim()}\n${end}`;
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n\nEach section is replaced by the latest run of its benchmark; git history keeps the earlier ones.\n';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, text);
}
