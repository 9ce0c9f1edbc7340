/**
 * One process per directory: a lock file holding the owner's pid. A stale lock, whose process is
 * gone, is taken over; a live one is refused with {@link InUseError}, naming its pid.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/** The directory is held by another live process: running again will not help until it stops. */
export class InUseError extends Error {
  constructor(
    message: string,
    readonly pid: number,
  ) {
    super(message);
    this.name = 'InUseError';
  }
}

/** Takes the lock file `path` for this process (`what` names the holder in the refusal); returns the release function. */
export function lockFile(path: string, what: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) throw new InUseError(`${path.replace(/\/[^/]*$/, '')} is in use by ${what} (pid ${pid}); stop it first`, pid);
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${path}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
