/**
 * Large Raft log and index-journal values stored as pieces of one LMDB page (src/storage/pieces.ts),
 * on a real node environment: they come back whole, a damaged piece is caught by the value's own
 * checksum, replacing or dropping a value leaves none of its pieces behind, and values written
 * whole (by a node before pieces) still read: nodes upgrade in place.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { entryIntact, makeEntry } from '../../src/raft/entry.js';
import { bootstrapInit, RaftNode } from '../../src/raft/raft-node.js';
import type { LogIndex, NodeId, Term } from '../../src/raft/types.js';
import { CorruptDataError } from '../../src/runtime/errors.js';
import { ChangeOutbox, type ChangeRecord } from '../../src/storage/change-outbox.js';
import { encodeEntryValue, LmdbRaftLogStore } from '../../src/storage/lmdb-raft-log-store.js';
import { DB_NAMES, openNodeEnv, type NodeEnv } from '../../src/storage/node-env.js';
import { PIECE_BYTES } from '../../src/storage/pieces.js';
import { ShardMetaStore, type JournalEntry } from '../../src/storage/shard-meta-store.js';
import { encodeSealed } from '../../src/storage/store-codec.js';

const root = mkdtempSync(join(tmpdir(), 'shoal-pieces-'));
after(() => rmSync(root, { recursive: true, force: true }));

const conf = { voters: ['a', 'b', 'c'] as NodeId[], learners: [] as NodeId[] };
type Key = (string | number)[];

/** Deterministic bytes, different for every (seed, position). */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
const big = (i: number, t: number, n: number, seed = i) => makeEntry(i as LogIndex, t as Term, 'normal', bytes(n, seed));
const rawLog = (env: NodeEnv) => env.openDB<Buffer, Key>(DB_NAMES.raftLog, { encoding: 'binary' });
const rawMeta = (env: NodeEnv) => env.openDB<Buffer, Key>({ name: DB_NAMES.shardMeta, encoding: 'binary' });
const keysOf = (env: NodeEnv, group: string, index: number) => Array.from(rawLog(env).getKeys({ start: [group, index], end: [group, index + 1] }));

async function reopen(env: NodeEnv, path: string): Promise<NodeEnv> {
  await env.close();
  return openNodeEnv({ path });
}

describe('storage pieces', () => {
  it('storage pieces - a 300 KB log entry is stored as one-page pieces and comes back whole after a reopen', async () => {
    const path = join(root, 'log');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    const entries = [big(2, 1, 300_000), big(3, 1, 100), big(4, 1, PIECE_BYTES * 3)];
    store.save('g', { hardState: undefined, entries, snapshot: undefined, truncateFrom: undefined });
    await store.flushed();
    const value = encodeEntryValue(entries[0] as (typeof entries)[0]);
    const keys = keysOf(env, 'g', 2);
    assert.equal(keys.length, Math.ceil(value.length / PIECE_BYTES), 'one record per page of the entry');
    assert.ok(keys.every((k, n) => k.length === 3 && k[2] === n), 'pieces [group, index, 0..n-1]');
    for (const { value: v } of rawLog(env).getRange({ start: ['g', 2], end: ['g', 3] })) assert.ok(v.length <= PIECE_BYTES, 'each piece fits one overflow page');
    assert.deepEqual(keysOf(env, 'g', 3), [['g', 3]], 'a short entry stays one record');
    const ov = rawLog(env).getStats() as { overflowPages: number };
    assert.ok(ov.overflowPages <= keys.length + 4 + 1, `no value needs more than one overflow page (${ov.overflowPages} for ${keys.length + 4} pieces)`);
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    const s = store.load('g');
    assert.deepEqual(s?.entries.map((x) => x.index), [1, 2, 3, 4]);
    for (const [n, want] of entries.entries()) {
      const got: (typeof entries)[0] | undefined = s?.entries[n + 1];
      assert.ok(got && entryIntact(got), `entry ${want.index} intact`);
      assert.deepEqual(Buffer.from(got.data), Buffer.from(want.data));
    }
    await env.close();
  });

  it('storage pieces - replacing an entry by a shorter one, truncating and compacting leave no piece behind', async () => {
    const path = join(root, 'replace');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    const w = (entries: ReturnType<typeof big>[], truncateFrom?: number) =>
      store.save('g', { hardState: undefined, entries, snapshot: undefined, truncateFrom: truncateFrom as LogIndex | undefined });
    w([big(2, 1, 50_000), big(3, 1, 80_000), big(4, 1, 80_000)]);
    // a new leader's entry at 3 replaces the old suffix (no truncateFrom: the put overwrites)
    w([big(3, 2, 20_000, 99)]);
    await store.flushed();
    assert.equal(keysOf(env, 'g', 3).length, Math.ceil(encodeEntryValue(big(3, 2, 20_000, 99)).length / PIECE_BYTES));
    assert.equal(keysOf(env, 'g', 4).length, 0);
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    let s = store.load('g');
    assert.deepEqual(s?.entries.map((x) => [x.index, x.term, entryIntact(x)]), [[1, 1, true], [2, 1, true], [3, 2, true]]);
    // a short entry in place of a long one, by truncation
    w([big(3, 3, 10)], 3);
    await store.flushed();
    assert.deepEqual(keysOf(env, 'g', 3), [['g', 3]]);
    store.compact('g', { index: 2 as LogIndex, term: 1 as Term, conf });
    await store.flushed();
    assert.equal(keysOf(env, 'g', 2).length, 0, 'compaction drops every piece');
    s = store.load('g');
    assert.deepEqual(s?.entries.map((x) => [x.index, x.term, entryIntact(x)]), [[3, 3, true]]);
    store.removeGroup('g');
    await store.flushed();
    assert.equal(Array.from(rawLog(env).getKeys({ start: ['g'], end: ['g\u0000'] })).length, 0);
    await env.close();
  });

  it('storage pieces - a damaged piece fails the entry checksum at restart: the replica drops the entry and will not vote', async () => {
    const path = join(root, 'damaged');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    store.save('g', { hardState: { term: 2 as Term, vote: null, commit: 3 as LogIndex, repairing: false }, entries: [big(2, 2, 40_000), big(3, 2, 40_000)], snapshot: undefined, truncateFrom: undefined });
    await store.flushed();
    const raw = rawLog(env);
    const piece = Buffer.from(raw.get(['g', 3, 5]) as Buffer);
    piece[100] = (piece[100] as number) ^ 0x01;
    await raw.put(['g', 3, 5], piece);
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    const s = store.load('g');
    assert.ok(s);
    assert.equal(entryIntact(s.entries[2] as (typeof s.entries)[0]), false, 'the joined entry fails its CRC');
    const core = new RaftNode({ id: 'c' as NodeId }, { ...s, applied: 0 });
    assert.equal(core.damaged, true);
    assert.equal(core.log.lastIndex(), 2);
    // a missing piece: the same
    await rawLog(env).remove(['g', 2, 0]);
    assert.equal(entryIntact(store.load('g')?.entries[1] as (typeof s.entries)[0]), false, 'an entry missing a piece fails its CRC');
    await env.close();
  });

  it('storage pieces - log entries written whole (before pieces) still read, and are dropped whole', async () => {
    const path = join(root, 'upgrade');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    await store.flushed();
    // what a node before pieces wrote: each entry one record under [group, index]
    const old = [big(2, 1, 300_000), big(3, 1, 200_000)];
    for (const e of old) await rawLog(env).put(['g', e.index], Buffer.from(encodeEntryValue(e)));
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    const s = store.load('g');
    assert.deepEqual(s?.entries.map((x) => [x.index, entryIntact(x)]), [[1, true], [2, true], [3, true]]);
    assert.deepEqual(Buffer.from(s?.entries[1]?.data as Uint8Array), Buffer.from(old[0]?.data as Uint8Array));
    // a new entry after them is stored as pieces; a conflict rewrites 3 as pieces; compaction drops the old whole record
    store.save('g', { hardState: undefined, entries: [big(3, 2, 100_000), big(4, 2, 100_000)], snapshot: undefined, truncateFrom: 3 as LogIndex });
    store.compact('g', { index: 2 as LogIndex, term: 1 as Term, conf });
    await store.flushed();
    assert.equal(keysOf(env, 'g', 2).length, 0);
    assert.ok(keysOf(env, 'g', 3).every((k) => k.length === 3), 'the whole record of 3 is gone, its pieces replace it');
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    assert.deepEqual(store.load('g')?.entries.map((x) => [x.index, x.term, entryIntact(x)]), [[3, 2, true], [4, 2, true]]);
    await env.close();
  });

  it('storage pieces - index journal entries: pieces joined on every read path, truncated whole, damaged ones named, whole ones from before still read', async () => {
    const path = join(root, 'journal');
    const env = openNodeEnv({ path });
    const meta = new ShardMetaStore(env);
    const vec = (seed: number) => new Float32Array(bytes(784 * 4, seed).buffer);
    const entry = (n: number, seed: number): JournalEntry => ({ upserts: Array.from({ length: n }, (_, k) => [`p${seed}-${k}`, vec(seed * 1000 + k), null]), deletes: [], count: n });
    const big5 = entry(100, 5);
    await env.transaction(() => {
      meta.putJournal('g', 5, big5);
      meta.putJournal('g', 6, entry(1, 6));
      meta.putJournal('g', 7, entry(30, 7));
    });
    // what a node before pieces wrote: one record
    await rawMeta(env).put(['g', 'journal', 8], encodeSealed(entry(50, 8)));
    const r = rawMeta(env);
    assert.ok(Array.from(r.getKeys({ start: ['g', 'journal', 5], end: ['g', 'journal', 6] })).length > 70, 'a 300 KB journal entry is pieces');
    assert.deepEqual(meta.journalIndexes('g', 0), [5, 6, 7, 8], 'one index per entry, not per piece');
    assert.deepEqual(meta.journalIndexes('g', 5), [6, 7, 8], 'after 5: none of its pieces');
    const back = meta.getJournal('g', 5);
    assert.equal(back?.upserts.length, 100);
    assert.deepEqual(back?.upserts[99]?.[1], big5.upserts[99]?.[1]);
    assert.equal(meta.getJournal('g', 8)?.upserts.length, 50, 'a whole entry from before pieces');
    const raws = Array.from(meta.journalRaw('g', 4));
    assert.deepEqual(raws.map(([i]) => i), [5, 6, 7, 8]);
    assert.deepEqual(raws[0]?.[1], encodeSealed(big5), 'journalRaw joins the pieces: the bytes a snapshot ships');
    // a snapshot's raw entry is stored as pieces again, in place of what was there
    await env.transaction(() => meta.putJournalRaw('g', 6, raws[0]?.[1] as Buffer));
    assert.equal(meta.getJournal('g', 6)?.upserts.length, 100);
    await env.transaction(() => meta.putJournal('g', 6, entry(1, 6)));
    assert.equal(Array.from(r.getKeys({ start: ['g', 'journal', 6], end: ['g', 'journal', 7] })).length, 1, 'a shorter entry leaves no piece of the longer one');
    // a damaged piece
    const p = Buffer.from(r.get(['g', 'journal', 7, 3]) as Buffer);
    p[10] = (p[10] as number) ^ 0x20;
    await r.put(['g', 'journal', 7, 3], p);
    assert.throws(() => meta.getJournal('g', 7), (err: unknown) => err instanceof CorruptDataError && /index journal entry 7 of g .* is damaged: its CRC-32/.test(err.message));
    // truncation drops every piece up to and including the index
    await env.transaction(() => meta.truncateJournal('g', 7));
    assert.deepEqual(meta.journalIndexes('g', 0), [8]);
    assert.deepEqual(Array.from(r.getKeys({ start: ['g', 'journal', 0], end: ['g', 'journal', 8] })), []);
    await env.close();
  });

  it('storage pieces - change-stream outbox records: pieces joined, counted and pruned as one record each, damaged ones named', async () => {
    const path = join(root, 'outbox');
    const env = openNodeEnv({ path });
    const outbox = new ChangeOutbox(env);
    const record = (n: number, seed: number): Extract<ChangeRecord, { op: 'upsert' }> => ({ op: 'upsert', time: seed, points: Array.from({ length: n }, (_, k) => ({ id: `p${k}`, vector: new Float32Array(bytes(784 * 4, seed * 1000 + k).buffer) })) });
    await env.transaction(() => {
      outbox.put('g', 3, record(100, 3));
      outbox.put('g', 4, { op: 'delete', time: 4, ids: ['x'] });
      outbox.put('g', 5, record(20, 5));
    });
    await rawMeta(env).put(['g', 'changes', 6], encodeSealed(record(10, 6))); // written whole, before pieces
    assert.ok(Array.from(rawMeta(env).getKeys({ start: ['g', 'changes', 3], end: ['g', 'changes', 4] })).length > 70, 'a 300 KB record is pieces');
    assert.equal(outbox.count('g'), 4, 'one per record, not per piece');
    const read = outbox.read('g', 0, 10);
    assert.deepEqual(read.map(([i]) => i), [3, 4, 5, 6]);
    const first = read[0]?.[1] as Extract<ChangeRecord, { op: 'upsert' }>;
    assert.deepEqual(first.points[99]?.vector, record(100, 3).points[99]?.vector);
    assert.deepEqual(outbox.read('g', 3, 10).map(([i]) => i), [4, 5, 6], 'after 3: none of its pieces');
    const raws = Array.from(outbox.raw('g', 0));
    await env.transaction(() => outbox.putRaw('g', 7, raws[0]?.[1] as Buffer));
    assert.equal((outbox.read('g', 6, 1)[0]?.[1] as Extract<ChangeRecord, { op: 'upsert' }>).points.length, 100, 'a snapshot\'s raw record is stored and read back');
    const p = Buffer.from(rawMeta(env).get(['g', 'changes', 5, 2]) as Buffer);
    p[7] = (p[7] as number) ^ 0x04;
    await rawMeta(env).put(['g', 'changes', 5, 2], p);
    assert.throws(() => outbox.read('g', 4, 1), (err: unknown) => err instanceof CorruptDataError && /change-stream outbox record 5 of g .* is damaged: its CRC-32/.test(err.message));
    let pruned = 0;
    await env.transaction(() => (pruned = outbox.prune('g', 5)));
    assert.equal(pruned, 3, 'records 3, 4, 5');
    assert.equal(outbox.count('g'), 2);
    assert.deepEqual(Array.from(rawMeta(env).getKeys({ start: ['g', 'changes', 0], end: ['g', 'changes', 6] })), []);
    await env.close();
  });

  it('storage pieces - a log of 300 KB entries reuses free space cut into single pages instead of growing the file', async () => {
    // The shape churn leaves (bench:churn): free pages scattered one by one among the points'
    // pages, no run long enough for a 75-page value. Entries stored whole grew this file by 447
    // pages (measured on main before pieces, the same every run); as pieces, by 153.
    const path = join(root, 'fragmented');
    const env = openNodeEnv({ path });
    const points = env.openDB<Buffer, number>({ name: DB_NAMES.points, encoding: 'binary' });
    const store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    const P = 4000;
    let seed = 1;
    const point = (): Buffer => Buffer.from(bytes(3200, seed++)); // one overflow page each
    await env.transaction(() => {
      for (let i = 0; i < P; i++) points.putSync(i, point());
    });
    await env.flushed;
    await env.transaction(() => {
      for (let i = 0; i < P; i += 2) points.removeSync(i);
    });
    await env.flushed;
    await env.transaction(() => undefined); // the removal's pages become reusable once a later transaction is flushed
    await env.flushed;
    const lastPage = () => (env.getStats() as { lastPageNumber: number }).lastPageNumber;
    const before = lastPage();
    const data = bytes(300_000, 5);
    let r = 7;
    for (let k = 2; k < 62; k++) {
      store.save('g', { hardState: undefined, entries: [makeEntry(k as LogIndex, 1 as Term, 'normal', data)], snapshot: undefined, truncateFrom: undefined });
      // the points' churn goes on: one-page values replaced
      await env.transaction(() => {
        for (let j = 0; j < 50; j++) points.putSync(1 + 2 * ((r = (r * 48271) % 2147483647) % (P / 2)), point());
      });
      if (k > 4) store.compact('g', { index: (k - 3) as LogIndex, term: 1 as Term, conf });
      await store.flushed();
    }
    const grown = lastPage() - before;
    assert.ok(grown <= 256, `the file grew by ${grown} pages for a log of at most 3 entries of 74 pages among 2,000 free ones`);
    assert.deepEqual(store.load('g')?.entries.map((x) => [x.index, entryIntact(x)]), [[59, true], [60, true], [61, true]]);
    await env.close();
  });
});
