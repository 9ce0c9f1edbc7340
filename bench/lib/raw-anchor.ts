/** The bench side of bench/lib/scale-anchor-child.ts: one request at a time over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import type { ClusteredSpec } from './clustered-vectors.js';
import type { AnchorReply, AnchorRequest } from './scale-anchor-child.js';

export interface RawAnchorOptions {
  spec: ClusteredSpec;
  maxPoints: number;
  queries: number;
  m: number;
  efConstruction: number;
}

export class RawAnchor {
  private pending: ((r: AnchorReply) => void) | undefined;

  private constructor(private readonly child: ChildProcess, readonly baselineAnon: number) {}

  static async start(opts: RawAnchorOptions): Promise<RawAnchor> {
    const child = fork(new URL('./scale-anchor-child.js', import.meta.url), [JSON.stringify(opts)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const started = await new Promise<AnchorReply>((resolve, reject) => {
      child.once('message', (m) => resolve(m as AnchorReply));
      child.once('exit', (code, sig) => reject(new Error(`the raw anchor exited while starting (${sig ?? code})`)));
    });
    if (started.type !== 'started') throw new Error(`the raw anchor answered ${JSON.stringify(started)} to its start`);
    const a = new RawAnchor(child, started.baselineAnon);
    child.on('message', (m) => {
      const p = a.pending;
      a.pending = undefined;
      p?.(m as AnchorReply);
    });
    return a;
  }

  private ask<T extends AnchorReply['type']>(req: AnchorRequest, want: T): Promise<Extract<AnchorReply, { type: T }>> {
    if (this.pending) throw new Error('the raw anchor is busy');
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, sig: string | null): void => reject(new Error(`the raw anchor exited (${sig ?? code})`));
      this.child.once('exit', onExit);
      this.pending = (r) => {
        this.child.off('exit', onExit);
        if (r.type === want) resolve(r as Extract<AnchorReply, { type: T }>);
        else reject(new Error(`the raw anchor answered ${r.type === 'error' ? r.message : r.type} to ${req.type}`));
      };
      this.child.send(req);
    });
  }

  /** Inserts points up to `to` (exclusive); the rate of this step's inserts and the index's memory. */
  grow(to: number): Promise<Extract<AnchorReply, { type: 'grown' }>> {
    return this.ask({ type: 'grow', to }, 'grown');
  }

  /** The k labels found for each query at `ef`. */
  async search(ef: number, k: number): Promise<number[][]> {
    return (await this.ask({ type: 'search', ef, k }, 'found')).neighbors;
  }

  /** Single-thread searches per second at `ef` over `seconds`. */
  async qps(ef: number, k: number, seconds: number): Promise<number> {
    return (await this.ask({ type: 'qps', ef, k, seconds }, 'qps')).qps;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'exit' } satisfies AnchorRequest);
    await exited;
  }
}
