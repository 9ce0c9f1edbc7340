/** The `shoal` command as a test runs it: a child process whose exit code and output come back whether it succeeded or not. */
import { execFile } from 'node:child_process';
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
