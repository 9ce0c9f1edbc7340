import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { placeReplicas } from '../../src/cluster/placement.js';
import {
  isEven, planLeaderTransfers, planMoves, underReplicated,
  type MoveInFlight, type PlanInput, type PlannedMove, type PlannedTransfer, type PlannerNode,
  type PlannerNodeState, type PlannerShard,
} from '../../src/cluster/planner.js';

const LIVE = ['up', 'maintenance', 'draining'];

function node(id: string, state: PlannerNodeState = 'up', zone: string | null = null): PlannerNode {
  return { id, state, zone };
}

/** Collections placed as a fresh cluster places them: even replicas, even preferred leaders. */
function placed(nodes: PlannerNode[], collections: string[], shards: number, replicas: number): PlannerShard[] {
  const existing = new Map<string, { replicas: number; leaders: number }>();
  return collections.flatMap((collection) => placeReplicas(shards, replicas, nodes.map((n) => n.id), existing).map((p) => {
    for (const [i, n] of p.replicas.entries()) {
      const e = existing.get(n) ?? { replicas: 0, leaders: 0 };
      existing.set(n, { replicas: e.replicas + 1, leaders: e.leaders + (i === 0 ? 1 : 0) });
    }
    return { collection, uid: `${collection}-uid`, shard: p.shard, replicas, voters: p.replicas, learners: [], leader: p.replicas[0] ?? null };
  }));
}

function input(nodes: PlannerNode[], shards: PlannerShard[], rebalance = false, inFlight: MoveInFlight[] = []): PlanInput {
  return { nodes, shards, inFlight, rebalance };
}

const stateOf = (inp: PlanInput, id: string): PlannerNodeState => inp.nodes.find((n) => n.id === id)?.state ?? 'down';
const zoneOf = (inp: PlanInput, id: string): string => inp.nodes.find((n) => n.id === id)?.zone ?? `own:${id}`;
const sameShard = (a: { uid: string; shard: number }, b: { uid: string; shard: number }): boolean => a.uid === b.uid && a.shard === b.shard;

/** The moves done, as the executor would finish them (a leaving leader hands over to an up voter first). */
function applyMoves(inp: PlanInput, moves: PlannedMove[]): PlanInput {
  return { ...inp, shards: inp.shards.map((s) => {
    const m = moves.find((x) => sameShard(x, s));
    if (!m) return s;
    const voters = [...s.voters.filter((v) => v !== m.from), m.to];
    const leader = s.leader !== null && s.leader === m.from ? (voters.find((v) => stateOf(inp, v) === 'up') ?? null) : s.leader;
    return { ...s, voters, leader };
  }) };
}

function applyTransfers(inp: PlanInput, transfers: PlannedTransfer[]): PlanInput {
  return { ...inp, shards: inp.shards.map((s) => ({ ...s, leader: transfers.find((t) => sameShard(t, s))?.to ?? s.leader })) };
}

/** Checks what a user cares about in any plan: nothing lands on the wrong node, one move per shard, urgency order. */
function checkMoves(inp: PlanInput, moves: PlannedMove[], limit: number): void {
  assert.ok(moves.length <= limit, `${moves.length} moves over the limit ${limit}`);
  const rank = { repair: 0, decommission: 1, rebalance: 2 };
  // replicas per node as the batch goes: voters, plus the targets of moves in flight and planned before, minus their sources
  const load = replicaCounts(inp);
  const shift = (m: { from: string | null; to: string }): void => {
    if (m.from !== null) load.set(m.from, (load.get(m.from) ?? 0) - 1);
    load.set(m.to, (load.get(m.to) ?? 0) + 1);
  };
  for (const f of inp.inFlight) if (inp.shards.some((s) => sameShard(s, f))) shift(f);
  for (const [i, m] of moves.entries()) {
    const s = inp.shards.find((x) => sameShard(x, m));
    assert.ok(s, `move of an unknown shard ${m.uid}/${m.shard}`);
    assert.equal(stateOf(inp, m.to), 'up', `${m.to} is ${stateOf(inp, m.to)}, not up`);
    assert.ok(!s.voters.includes(m.to) && !s.learners.includes(m.to), `${m.to} already holds ${m.collection}/${m.shard}`);
    assert.ok(m.from === null || s.voters.includes(m.from), `${m.from} is no voter of ${m.collection}/${m.shard}`);
    assert.equal(moves.filter((x) => sameShard(x, m)).length, 1, `two moves of ${m.collection}/${m.shard}`);
    assert.ok(!inp.inFlight.some((f) => sameShard(f, m)), `${m.collection}/${m.shard} already has a move in flight`);
    const live = s.voters.filter((v) => LIVE.includes(stateOf(inp, v))).length;
    assert.ok(live >= Math.floor(s.voters.length / 2) + 1, `${m.collection}/${m.shard} has no quorum`);
    if (m.from !== null && stateOf(inp, m.from) === 'dead') assert.equal(m.reason, 'repair');
    if (m.from !== null && stateOf(inp, m.from) === 'draining') assert.equal(m.reason, 'decommission');
    if (m.reason === 'rebalance') {
      assert.ok(inp.rebalance, 'a rebalance move though rebalance is off');
      const after = [...s.voters.filter((v) => v !== m.from), m.to];
      assert.ok(new Set(after.map((v) => zoneOf(inp, v))).size >= new Set(s.voters.map((v) => zoneOf(inp, v))).size, 'a rebalance move lost a zone');
      assert.ok(m.from !== null && load.get(m.to)! <= load.get(m.from)! - 2, `rebalance ${m.from} (${load.get(m.from!)}) -> ${m.to} (${load.get(m.to)})`);
    }
    shift(m);
    if (i > 0) assert.ok(rank[moves[i - 1]!.reason] <= rank[m.reason], 'moves not most urgent first');
  }
}

function checkTransfers(inp: PlanInput, transfers: PlannedTransfer[]): void {
  for (const t of transfers) {
    const s = inp.shards.find((x) => sameShard(x, t));
    assert.ok(s, 'transfer of an unknown shard');
    assert.equal(s.leader, t.from);
    assert.ok(s.voters.includes(t.to), `${t.to} is no voter of ${t.collection}/${t.shard}`);
    assert.equal(stateOf(inp, t.to), 'up', `leadership to ${t.to}, which is ${stateOf(inp, t.to)}`);
    assert.equal(transfers.filter((x) => sameShard(x, t)).length, 1);
    assert.ok(!inp.inFlight.some((f) => sameShard(f, t)), 'transfer of a shard with a move in flight');
  }
}

/** Plans and applies moves, then transfers, until neither plans anything; returns the end state and the rounds it took. */
function settle(start: PlanInput, limit: number, maxRounds = 100): { end: PlanInput; rounds: number } {
  let inp = start;
  for (let rounds = 0; rounds < maxRounds; rounds++) {
    const moves = planMoves(inp, limit);
    checkMoves(inp, moves, limit);
    inp = applyMoves(inp, moves);
    const transfers = planLeaderTransfers(inp);
    checkTransfers(inp, transfers);
    inp = applyTransfers(inp, transfers);
    if (moves.length === 0 && transfers.length === 0) return { end: inp, rounds };
  }
  assert.fail(`no convergence in ${maxRounds} rounds`);
}

function replicaCounts(inp: PlanInput): Map<string, number> {
  const counts = new Map(inp.nodes.map((n) => [n.id, 0]));
  for (const s of inp.shards) for (const v of s.voters) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

const leaderCount = (inp: PlanInput, id: string): number => inp.shards.filter((s) => s.leader === id).length;
const zonesOf = (inp: PlanInput, s: PlannerShard): number => new Set(s.voters.map((v) => zoneOf(inp, v))).size;
const ids = (n: number, prefix = 'n'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

/** A small seeded generator (mulberry32), so the randomized cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCluster(rand: () => number): PlanInput {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const states: PlannerNodeState[] = ['up', 'up', 'up', 'up', 'down', 'dead', 'maintenance', 'draining'];
  const nodes = ids(3 + Math.floor(rand() * 6)).map((id) => node(id, pick(states), pick(['a', 'b', 'c', null])));
  const shards: PlannerShard[] = [];
  for (const collection of ['c1', 'c2', 'c3'].slice(0, 1 + Math.floor(rand() * 3))) {
    const replicas = 1 + Math.floor(rand() * 3);
    for (let shard = 0; shard < 1 + Math.floor(rand() * 4); shard++) {
      const order = [...nodes].sort(() => rand() - 0.5).map((n) => n.id);
      const size = Math.max(1, Math.min(nodes.length, replicas - (rand() < 0.2 ? 1 : 0)));
      const voters = order.slice(0, size);
      const learners = rand() < 0.2 ? order.slice(size, size + 1) : [];
      shards.push({ collection, uid: `${collection}-u`, shard, replicas, voters, learners, leader: rand() < 0.8 ? pick(voters) : null });
    }
  }
  const inFlight: MoveInFlight[] = shards.filter(() => rand() < 0.15).flatMap((s) => {
    const to = nodes.find((n) => n.state === 'up' && !s.voters.includes(n.id) && !s.learners.includes(n.id));
    return to ? [{ uid: s.uid, shard: s.shard, from: rand() < 0.5 ? (s.voters[0] ?? null) : null, to: to.id }] : [];
  });
  return { nodes, shards, inFlight, rebalance: rand() < 0.7 };
}

describe('planner', () => {
  it('planner - a dead node\'s replicas are rebuilt on the least loaded nodes that lack them; a down node is left alone', () => {
    const nodes = ids(6).map((id) => node(id));
    const shards = placed(nodes, ['docs'], 8, 3);
    const dead = input(nodes.map((n) => (n.id === 'n1' ? node('n1', 'dead') : n)), shards);
    const lost = shards.filter((s) => s.voters.includes('n1')).length;
    const moves = planMoves(dead, 100);
    checkMoves(dead, moves, 100);
    assert.equal(moves.length, lost);
    assert.ok(moves.every((m) => m.reason === 'repair' && m.from === 'n1'));
    const after = applyMoves(dead, moves);
    assert.ok(after.shards.every((s) => s.voters.length === 3 && !s.voters.includes('n1')));
    // spread as far as the shards allow: no node got a second replica while one that could take it got none
    const got = (n: string): number => moves.filter((m) => m.to === n).length;
    for (const m of moves) {
      const s = dead.shards.find((x) => sameShard(x, m))!;
      for (const n of ids(6).slice(1).filter((id) => !s.voters.includes(id))) assert.ok(got(n) >= got(m.to) - 1, `${m.to} got ${got(m.to)}, ${n} ${got(n)}`);
    }
    assert.equal(isEven(settle({ ...after, rebalance: true }, 100).end), true);

    const down = input(nodes.map((n) => (n.id === 'n1' ? node('n1', 'down') : n)), shards);
    assert.deepEqual(planMoves(down, 100), []);
    assert.deepEqual(underReplicated(down).map((s) => s.shard), shards.filter((s) => s.voters.includes('n1')).map((s) => s.shard));
  });

  it('planner - with three zones, replicas land in distinct zones, and rebalancing never loses one', () => {
    const nodes = ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'].map((id) => node(id, 'up', id[0] as string));
    const shards: PlannerShard[] = Array.from({ length: 6 }, (_, i) => {
      const voters = [`a${1 + (i % 2)}`, `b${1 + (Math.floor(i / 2) % 2)}`, `c${1 + (Math.floor(i / 3) % 2)}`];
      return { collection: 'docs', uid: 'u', shard: i, replicas: 3, voters, learners: [], leader: voters[i % 3] ?? null };
    });
    // b1 dies: its replicas can only keep three zones on b2, though a and c nodes are as loaded
    const dead = input(nodes.map((n) => (n.id === 'b1' ? node('b1', 'dead', 'b') : n)), shards);
    const repaired = settle(dead, 2).end;
    assert.ok(repaired.shards.every((s) => zonesOf(repaired, s) === 3 && !s.voters.includes('b1')));
    // a shard with one replica left grows back into the two missing zones
    const thin = input(nodes, [{ collection: 'logs', uid: 'v', shard: 0, replicas: 3, voters: ['a1'], learners: [], leader: 'a1' }]);
    const grown = settle(thin, 1).end;
    assert.equal(grown.shards[0]!.voters.length, 3);
    assert.equal(zonesOf(grown, grown.shards[0]!), 3);
    // a new node in zone a takes replicas only from zone a
    const joined = input([...nodes, node('a3', 'up', 'a')], shards, true);
    const { end } = settle(joined, 2);
    assert.ok(end.shards.every((s) => zonesOf(end, s) === 3));
    assert.ok(replicaCounts(end).get('a3')! >= 1);
    assert.equal(isEven(end), true);
  });

  it('planner - a draining node is emptied of replicas and leaderships', () => {
    const nodes = ids(5).map((id) => node(id));
    const draining = input(nodes.map((n) => (n.id === 'n3' ? node('n3', 'draining') : n)), placed(nodes, ['a', 'b'], 4, 3));
    const first = planMoves(draining, 100);
    assert.ok(first.length > 0 && first.every((m) => m.reason === 'decommission' && m.from === 'n3'));
    const { end } = settle(draining, 2);
    assert.equal(replicaCounts(end).get('n3'), 0);
    assert.equal(leaderCount(end, 'n3'), 0);
    assert.ok(end.shards.every((s) => s.voters.length === 3));
    assert.equal(isEven(end), true);
  });

  it('planner - a 5th node joining an even 4-node cluster is filled until even, in few rounds', () => {
    const four = ids(4).map((id) => node(id));
    const shards = placed(four, ['a', 'b'], 4, 3);
    const nodes = [...four, node('n5')];
    assert.equal(isEven(input(four, shards)), true);
    assert.equal(isEven(input(nodes, shards)), false);
    assert.deepEqual(planMoves(input(nodes, shards, false), 10), [], 'auto off: nothing but repair and decommission');
    const { end, rounds } = settle(input(nodes, shards, true), 2);
    assert.ok(rounds <= 3, `${rounds} rounds`); // 24 replicas over 5 nodes: 4 moves onto n5, 2 per round
    assert.equal(isEven(end), true);
    assert.deepEqual([...replicaCounts(end).values()].sort(), [4, 5, 5, 5, 5]);
    assert.ok(end.shards.every((s) => new Set(s.voters).size === 3));
    assert.ok(leaderCount(end, 'n5') >= 1);
  });

  it('planner - maintenance nodes take no replicas and give up their leaderships', () => {
    const nodes = ids(5).map((id) => node(id));
    const shards = placed(nodes, ['a', 'b'], 4, 3);
    const states = new Map<string, PlannerNodeState>([['n1', 'dead'], ['n2', 'maintenance']]);
    const inp = input([...nodes.map((n) => node(n.id, states.get(n.id) ?? 'up')), node('n6', 'maintenance')], shards, true);
    assert.ok(leaderCount(inp, 'n2') > 0);
    const { end } = settle(inp, 3);
    assert.equal(replicaCounts(end).get('n6'), 0, 'an empty maintenance node got replicas');
    assert.equal(replicaCounts(end).get('n2'), shards.filter((s) => s.voters.includes('n2')).length, 'a maintenance node gained or lost replicas');
    assert.equal(leaderCount(end, 'n2'), 0);
    assert.equal(isEven(end), true);
  });

  it('planner - a shard without a quorum of live voters gets no move; the others are repaired', () => {
    const nodes = [node('n1', 'dead'), node('n2', 'dead'), node('n3'), node('n4'), node('n5')];
    const shards: PlannerShard[] = [
      { collection: 'docs', uid: 'u', shard: 0, replicas: 3, voters: ['n1', 'n2', 'n3'], learners: [], leader: null },
      { collection: 'docs', uid: 'u', shard: 1, replicas: 3, voters: ['n1', 'n3', 'n4'], learners: [], leader: 'n3' },
    ];
    const inp = input(nodes, shards, true);
    assert.deepEqual(planMoves(inp, 10).map((m) => [m.shard, m.from, m.to]), [[1, 'n1', 'n5']]);
    assert.deepEqual(underReplicated(inp).map((s) => s.shard), [0, 1]);
    assert.equal(isEven(inp), false);
  });

  it('planner - at most `limit` moves, repair before decommission before rebalance', () => {
    const nodes = ids(6).map((id) => node(id));
    const shards = placed(nodes, ['a', 'b'], 4, 3);
    const states = new Map<string, PlannerNodeState>([['n1', 'dead'], ['n4', 'draining']]);
    const inp = input([...nodes.map((n) => node(n.id, states.get(n.id) ?? 'up')), node('n7')], shards, true);
    assert.deepEqual(planMoves(inp, 0), []);
    const one = planMoves(inp, 1);
    assert.equal(one.length, 1);
    assert.equal(one[0]!.reason, 'repair');
    const all = planMoves(inp, 1000);
    checkMoves(inp, all, 1000);
    const repairs = all.filter((m) => m.reason === 'repair').length;
    assert.deepEqual(planMoves(inp, repairs + 1).map((m) => m.reason).slice(-2), ['repair', 'decommission']);
    // the shard missing two replicas is repaired before those missing one
    const thin: PlannerShard = { collection: 'z', uid: 'z', shard: 0, replicas: 3, voters: ['n3'], learners: [], leader: 'n3' };
    assert.equal(planMoves({ ...inp, shards: [...shards, thin] }, 1)[0]!.collection, 'z');
  });

  it('planner - moves in flight: their shards get no other move, their targets count as loaded', () => {
    const four = ids(4).map((id) => node(id));
    const shards = placed(four, ['a', 'b'], 4, 3);
    const nodes = [...four, node('n5')];
    // three replicas already moving to n5, from n1, n2, n3: the fourth must come from n4
    const inFlight: MoveInFlight[] = [];
    for (const from of ['n1', 'n2', 'n3']) {
      const s = shards.find((x) => x.voters.includes(from) && !inFlight.some((f) => sameShard(f, x)))!;
      inFlight.push({ uid: s.uid, shard: s.shard, from, to: 'n5' });
    }
    const inp = input(nodes, shards, true, inFlight);
    const moves = planMoves(inp, 10);
    checkMoves(inp, moves, 10);
    assert.deepEqual(moves.map((m) => [m.from, m.to]), [['n4', 'n5']]);
    const done = applyMoves({ ...inp, inFlight: [] }, [...inFlight.map((f) => ({ ...f, collection: '', reason: 'rebalance' as const })), ...moves]);
    assert.deepEqual([...replicaCounts(done).values()].sort(), [4, 5, 5, 5, 5]);
    // a shard repaired in flight is not repaired twice
    const dead = input(nodes.map((n) => (n.id === 'n1' ? node('n1', 'dead') : n)), shards, false, [inFlight[0]!]);
    const repairs = planMoves(dead, 10);
    checkMoves(dead, repairs, 10);
    assert.equal(repairs.length, shards.filter((s) => s.voters.includes('n1')).length - 1);
    // nor does its leadership move, though its leader goes into maintenance
    const moving = shards.find((s) => sameShard(s, inFlight[0]!))!;
    const paused = input(nodes.map((n) => (n.id === moving.leader ? node(n.id, 'maintenance') : n)), shards, false, [inFlight[0]!]);
    const transfers = planLeaderTransfers(paused);
    checkTransfers(paused, transfers);
    assert.ok(transfers.length > 0 && transfers.every((t) => t.from === moving.leader && !sameShard(t, moving)));
  });

  it('planner - leadership evens out in one plan and only moves to up voters', () => {
    const nodes = [...ids(4).map((id) => node(id)), node('n5', 'maintenance')];
    const shards = placed(nodes.slice(0, 4), ['a', 'b'], 4, 3).map((s) => ({ ...s, leader: s.voters[0]! }));
    // everything led by whichever voter has the lowest id: n1 leads most
    const skewed = input(nodes, shards.map((s) => ({ ...s, leader: [...s.voters].sort()[0]! })));
    assert.ok(leaderCount(skewed, 'n1') >= 4);
    const transfers = planLeaderTransfers(skewed);
    checkTransfers(skewed, transfers);
    const after = applyTransfers(skewed, transfers);
    const leads = ids(4).map((id) => leaderCount(after, id));
    assert.ok(leads.every((l) => Math.abs(l - shards.length / 4) <= 1), `leaders ${leads.join(',')}`); // PROTOCOL.md's even
    assert.deepEqual(planLeaderTransfers(after), [], 'a second plan moves nothing: no oscillation');
    assert.equal(isEven(after), true);
    // a maintenance node's leadership goes to an up voter; with none, it stays rather than go wrong
    const m = input([node('n1'), node('n2'), node('n3'), node('n4', 'maintenance'), node('n5', 'maintenance')], [
      { collection: 'x', uid: 'x', shard: 0, replicas: 3, voters: ['n5', 'n1', 'n2'], learners: ['n3'], leader: 'n5' },
      { collection: 'x', uid: 'x', shard: 1, replicas: 2, voters: ['n5', 'n4'], learners: ['n3'], leader: 'n5' },
    ]);
    const mt = planLeaderTransfers(m);
    checkTransfers(m, mt);
    assert.deepEqual(mt.map((t) => [t.shard, t.to]), [[0, 'n1']]);
  });

  it('planner - the same input gives the same plan, whatever the order of its lists', () => {
    const rand = prng(7);
    for (let i = 0; i < 50; i++) {
      const inp = randomCluster(rand);
      const shuffled: PlanInput = { ...inp, nodes: [...inp.nodes].reverse(), shards: [...inp.shards].reverse(), inFlight: [...inp.inFlight].reverse() };
      assert.deepEqual(planMoves(shuffled, 5), planMoves(inp, 5));
      assert.deepEqual(planLeaderTransfers(shuffled), planLeaderTransfers(inp));
      assert.deepEqual(underReplicated(shuffled), underReplicated(inp));
      assert.equal(isEven(shuffled), isEven(inp));
    }
  });

  it('planner - on random clusters every plan is safe, even clusters plan nothing, and repeated plans converge', () => {
    const rand = prng(2026);
    for (let i = 0; i < 300; i++) {
      const inp = randomCluster(rand);
      const limit = 1 + Math.floor(rand() * 4);
      checkMoves(inp, planMoves(inp, limit), limit);
      checkTransfers(inp, planLeaderTransfers(inp));
      if (isEven(inp)) {
        assert.deepEqual(planMoves({ ...inp, rebalance: true }, 100), []);
        assert.deepEqual(planLeaderTransfers(inp), []);
      }
      settle({ ...inp, inFlight: [] }, limit, 200);
    }
  });
});
