/** The LMDB Raft log store over a real node environment on disk. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENTRY_TYPE_CODES, entryIntact, makeEntry, encodeConf } from '../../src/raft/entry.js';
import { bootstrapInit, RaftNode } from '../../src/raft/raft-node.js';
import type { EntryType, LogIndex, NodeId, Term } from '../../src/raft/types.js';
import { decodeEntryValue, encodeEntryValue, LmdbRaftLogStore } from '../../src/storage/lmdb-raft-log-store.js';
import { DB_NAMES, openNodeEnv, type NodeEnv } from '../../src/storage/node-env.js';

const root = mkdtempSync(join(tmpdir(), 'shoal-raft-store-'));
after(() => rmSync(root, { recursive: true, force: true }));

const conf = { voters: ['a', 'b', 'c'] as NodeId[], learners: [] as NodeId[] };
const e = (i: number, t: number, s: string) => makeEntry(i as LogIndex, t as Term, 'normal', new TextEncoder().encode(s));

async function reopen(env: NodeEnv, path: string): Promise<NodeEnv> {
  await env.close();
  return openNodeEnv({ path });
}

describe('raft storage', () => {
  it('raft storage - log, hard state and snapshot point survive closing and reopening the environment', async () => {
    const path = join(root, 'one');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    const init = bootstrapInit(conf);
    store.init('g1', init);
    store.init('g2', init);
    store.save('g1', { hardState: { term: 3 as Term, vote: 'b' as NodeId, commit: 3 as LogIndex, repairing: false }, entries: [e(2, 2, 'x'), e(3, 3, 'y')], snapshot: undefined, truncateFrom: undefined });
    await store.flushed();
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    assert.deepEqual(store.groups().sort(), ['g1', 'g2']);
    const s = store.load('g1');
    assert.ok(s);
    assert.deepEqual(s.hardState, { term: 3, vote: 'b', commit: 3, repairing: false });
    assert.deepEqual(s.entries.map((x) => [x.index, x.term, new TextDecoder().decode(x.data)]), [[1, 1, new TextDecoder().decode(encodeConf(conf))], [2, 2, 'x'], [3, 3, 'y']]);
    assert.equal(store.load('g2')?.entries.length, 1, 'groups do not mix');
    await env.close();
  });

  it('raft storage - a conflicting append replaces the stored suffix, compaction drops the prefix, a snapshot drops the log', async () => {
    const path = join(root, 'two');
    const env = openNodeEnv({ path });
    const store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    const w = (entries: ReturnType<typeof e>[]) => store.save('g', { hardState: undefined, entries, snapshot: undefined, truncateFrom: undefined });
    w([e(2, 1, 'a'), e(3, 1, 'b'), e(4, 1, 'c'), e(5, 1, 'd')]);
    w([e(3, 2, 'B')]);
    await store.flushed(); // lmdb-js makes writes visible at commit
    assert.deepEqual(store.load('g')?.entries.map((x) => x.index), [1, 2, 3]);
    assert.equal(store.load('g')?.entries[2]?.term, 2);
    store.compact('g', { index: 2 as LogIndex, term: 1 as Term, conf });
    await store.flushed();
    const s = store.load('g');
    assert.equal(s?.snapshot.index, 2);
    assert.deepEqual(s?.entries.map((x) => x.index), [3]);
    store.save('g', { hardState: undefined, entries: [], snapshot: { index: 10 as LogIndex, term: 4 as Term, conf }, truncateFrom: undefined });
    await store.flushed();
    assert.deepEqual(store.load('g')?.entries, []);
    assert.equal(store.load('g')?.snapshot.index, 10);
    store.removeGroup('g');
    await store.flushed();
    assert.equal(store.load('g'), undefined);
    await env.close();
  });

  it('raft storage - an entry corrupted on disk is caught by its checksum at restart: the replica drops it and will not vote', async () => {
    const path = join(root, 'three');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    store.save('g', { hardState: { term: 2 as Term, vote: null, commit: 3 as LogIndex, repairing: false }, entries: [e(2, 2, 'good'), e(3, 2, 'soon bad')], snapshot: undefined, truncateFrom: undefined });
    await store.flushed();
    // flip one byte of entry 3's data, behind the store's back
    const raw = env.openDB<Uint8Array, [string, number]>(DB_NAMES.raftLog, { encoding: 'binary' });
    const bytes = Uint8Array.from(raw.get(['g', 3]) as Uint8Array);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    await raw.put(['g', 3], bytes);
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    const s = store.load('g');
    assert.ok(s);
    const core = new RaftNode({ id: 'c' as NodeId }, { ...s, applied: 0 });
    assert.equal(core.damaged, true);
    assert.equal(core.log.lastIndex(), 2);
    const rd = core.ready();
    assert.equal(rd.truncateFrom, 3);
    assert.equal(rd.hardState?.repairing, true);
    store.save('g', rd);
    await store.flushed();
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    const again = store.load('g');
    assert.equal(again?.hardState.repairing, true, 'a restart during the repair remembers it');
    assert.deepEqual(again?.entries.map((x) => x.index), [1, 2]);
    assert.deepEqual(encodeEntryValue(e(2, 2, 'good')), encodeEntryValue(again?.entries[1] as ReturnType<typeof e>));
    await env.close();
  });

  it('raft storage - an entry of each type comes back from LMDB with its type and a valid checksum', async () => {
    const path = join(root, 'types');
    let env = openNodeEnv({ path });
    let store = new LmdbRaftLogStore(env);
    store.init('g', bootstrapInit(conf));
    const types = Object.keys(ENTRY_TYPE_CODES) as EntryType[];
    const data: Record<EntryType, Uint8Array> = { normal: new TextEncoder().encode('cmd'), noop: new Uint8Array(0), config: encodeConf(conf) };
    const written = types.map((type, i) => makeEntry((i + 2) as LogIndex, 2 as Term, type, data[type]));
    for (const x of written) assert.deepEqual(decodeEntryValue(x.index, encodeEntryValue(x)), x, `${x.type}: encode then decode`);
    store.save('g', { hardState: undefined, entries: written, snapshot: undefined, truncateFrom: undefined });
    await store.flushed();
    env = await reopen(env, path);
    store = new LmdbRaftLogStore(env);
    const read = store.load('g')?.entries.slice(1) ?? [];
    assert.deepEqual(read.map((x) => x.type), types);
    for (const x of read) assert.ok(entryIntact(x), `a stored ${x.type} entry keeps a valid checksum`);
    await env.close();
  });

  it('raft storage - the stored bytes of an entry of each type are pinned: a renumbered type code would fail every entry already on disk', () => {
    const hex = (type: EntryType) => Buffer.from(encodeEntryValue(makeEntry(7 as LogIndex, 3 as Term, type, new TextEncoder().encode('x')))).toString('hex');
    // term (f64 LE) | type code (u8) | CRC-32 (u32 LE) | data
    assert.equal(hex('normal'), '0000000000000840' + '01' + 'ee44a03d' + '78');
    assert.equal(hex('noop'), '0000000000000840' + '02' + '2b782d04' + '78');
    assert.equal(hex('config'), '0000000000000840' + '03' + '686c5613' + '78');
  });
});
