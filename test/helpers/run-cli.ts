/** The `shoal` command as a test runs it: a child process whose exit code and output come back whether it succeeded or not. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

export const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const run = promisify(execFile);

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `shoal <args>` with `env` on top of this process's environment. */
export async function runShoal(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A long-running `shoal` (dev, nats) started as a child process. */
export interface StartedShoal {
  proc: ChildProcess;
  /** The first line of its standard output: the NATS URL. */
  url: string;
  /** Its standard error so far. */
  stderr: () => string;
}

/** Starts `shoal <args>` (with `env` as its whole environment, default this process's); resolves with the URL it prints first. */
export function startShoal(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<StartedShoal> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ proc, url: out.split('\n')[0] as string, stderr: () => err });
    });
    proc.once('exit', (c) => reject(new Error(`shoal ${args[0] ?? ''} exited with ${c}: ${err}`)));
  });
}
