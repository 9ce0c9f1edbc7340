/**
 * Leader SIGKILL → first commit under its successor, on a RaftProcessCluster: the successor's own
 * clock reading of when its first entry of the term committed (same machine, same clock). Used by
 * bench:raft, and by bench:failover as the anchor of what clients see.
 */
import type { RaftProcessCluster } from '../../test/helpers/raft-cluster.js';
import { sleep } from '../../test/helpers/raft-cluster.js';

/** Kills the leader `kills` times (restarting it after each), and returns each kill-to-first-commit, ms. */
export async function leaderKillToCommit(cluster: RaftProcessCluster, kills: number, write: (leader: string) => Promise<unknown>): Promise<number[]> {
  const failovers: number[] = [];
  for (let k = 0; k < kills; k++) {
    const leader = await cluster.waitForLeader();
    await write(leader);
    const killedAt = Date.now();
    await cluster.kill(leader);
    const deadline = killedAt + 20_000;
    let next: string | undefined;
    let readyAt: number | null | undefined;
    while (Date.now() < deadline) {
      next = await cluster.leader();
      readyAt = next ? (await cluster.status(next))?.readyAt : undefined;
      if (next && readyAt && readyAt > killedAt) break;
      await sleep(5);
    }
    if (!next || !readyAt || readyAt <= killedAt) throw new Error(`no new leader within 20 s after kill ${k + 1}`);
    failovers.push(readyAt - killedAt);
    await cluster.startNode(leader);
    await sleep(1_000);
    process.stderr.write(`kill ${k + 1}/${kills}: ${failovers[k]} ms\n`);
  }
  return failovers;
}
