/**
 * A synchronous writer on a file descriptor, for log lines: when `write` returns, the line is in
 * the kernel (a file, a pipe, a terminal), so a process that crashes, exits or is killed right
 * after loses none of the lines it wrote.
 *
 * Not Node's `process.stderr`: into a pipe it queues in memory when the pipe is full (measured: a
 * process that wrote 2,000 lines and was killed lost 780 of them). Not pino's
 * `pino.destination({ sync: true })`: Node leaves standard error non-blocking, and on each EAGAIN
 * (the reader a little behind, as `shoal dev` or a test reading a node) it sleeps 100 ms, which
 * made logging into a pipe 10x slower. This one waits 1 ms and tries again.
 */
import { writeSync } from 'node:fs';

const RETRY_WAIT_MS = 1;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

export class SyncFdWriter {
  constructor(private readonly fd: number) {}

  write(line: string): void {
    let buf = Buffer.from(line, 'utf8');
    while (buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(this.fd, buf));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Whoever reads is gone (EPIPE) or the descriptor is bad: a log line has nowhere to go.
        if (code !== 'EAGAIN' && code !== 'EINTR') return;
        Atomics.wait(waitCell, 0, 0, RETRY_WAIT_MS);
      }
    }
  }
}
