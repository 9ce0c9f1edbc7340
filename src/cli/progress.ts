/**
 * Progress of long work on stderr: a bar redrawn in place on a terminal, a line every few
 * seconds otherwise (logs, CI).
 */

export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private done = 0;
  private readonly tty: boolean;

  constructor(
    private readonly what: string,
    private readonly total: number | undefined,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  advance(n: number): void {
    this.done += n;
    const now = Date.now();
    if (now - this.lastDraw >= (this.tty ? 100 : 5_000)) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  finish(): void {
    this.draw(true);
  }

  line(): string {
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = this.done / secs;
    const count = `${this.done.toLocaleString('en-US')}${this.total !== undefined ? `/${this.total.toLocaleString('en-US')}` : ''} ${this.what}`;
    const speed = `${Math.round(rate).toLocaleString('en-US')}/s`;
    if (this.total === undefined || this.total === 0) return `${count}  ${speed}  ${secs.toFixed(1)}s`;
    const frac = Math.min(1, this.done / this.total);
    const eta = rate > 0 ? Math.max(0, (this.total - this.done) / rate) : NaN;
    return `${bar(frac)} ${Math.floor(frac * 100)}%  ${count}  ${speed}  ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)}s` : '?'}`;
  }

  private draw(final: boolean): void {
    if (this.tty) this.out.write(`\r\x1b[2K${this.line()}${final ? '\n' : ''}`);
    else this.out.write(`${this.line()}\n`);
  }
}

/** `[######..................]`: `frac` (clamped to 0..1) of `width` cells filled. */
export function bar(frac: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, Number.isFinite(frac) ? frac : 0)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
