/** What bench:scale asks of one node from outside: its readiness over HTTP, its checkpoints on disk. */
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

/** The status `/readyz` on the metrics port answers with, or 0 when nothing answered. */
function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end();
  });
}

/** Resolves once the node's `/readyz` answers 200 (polled every 50 ms); throws after `timeoutMs`. */
export async function readyzWithin(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await readyz(port)) === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`/readyz on port ${port} did not answer 200 within ${timeoutMs} ms`);
}

/** Index checkpoint directories (`shards/<group>/ckpt-*`) under a node's data directory. */
export function checkpointDirs(dataDir: string): number {
  const shards = join(dataDir, 'shards');
  if (!existsSync(shards)) return 0;
  let n = 0;
  for (const g of readdirSync(shards)) {
    try {
      n += readdirSync(join(shards, g)).filter((f) => f.startsWith('ckpt-')).length;
    } catch {
      // not a directory
    }
  }
  return n;
}
