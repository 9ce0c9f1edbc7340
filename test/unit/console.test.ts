/** The console's pure parts: reading a line, TAB completion, decoding watched payloads, trace trees, fitted tables, history. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { complete, type Known } from '../../src/cli/console/complete.js';
import { consoleRegistry } from '../../src/cli/console/commands.js';
import { appendHistory, historyFile, HISTORY_SIZE, loadHistory } from '../../src/cli/console/history.js';
import { parseLine } from '../../src/cli/console/parse.js';
import { formatTree, traceTree } from '../../src/cli/console/trace.js';
import { checkPattern, decodePayload } from '../../src/cli/console/watch.js';
import { table } from '../../src/cli/connection.js';
import { encodeCbor, encodeJson } from '../../src/runtime/codec.js';

describe('console line', () => {
  it('console - words split on spaces, quotes and JSON brackets keep theirs, ; separates commands', () => {
    assert.deepEqual(parseLine(`ask n1/router {"type": "a; b", "x": [1, {"y": 2}]}; count 'my docs' ;; search d [0.5, -1] 3`).map((c) => c.words), [
      ['ask', 'n1/router', '{"type": "a; b", "x": [1, {"y": 2}]}'],
      ['count', 'my docs'],
      ['search', 'd', '[0.5, -1]', '3'],
    ]);
    assert.deepEqual(parseLine('   '), []);
    assert.throws(() => parseLine('ask n1/x {"a": 1'), /unclosed \{ at column 10/);
    assert.throws(() => parseLine('ask n1/x [1}'), /unbalanced \} at column 12/);
    assert.throws(() => parseLine(`count 'docs`), /unclosed ' at column 7/);
  });
});

describe('console completion', () => {
  const registry = consoleRegistry();
  const known: Known = { actors: ['n1/router', 'n1/replica.ab.0', 'n2/router'], collections: [{ name: 'docs', shards: 2 }, { name: 'dogs', shards: 1 }], nodes: ['n1', 'n2'] };
  const asked = { n: 0 };
  const k = (): Promise<Known> => {
    asked.n++;
    return Promise.resolve(known);
  };

  it('console - TAB completes commands, actors, collections, shards, nodes and fixed words', async () => {
    assert.deepEqual(await complete('ins', registry, k), [['inspect '], 'ins']);
    assert.equal(asked.n, 0, 'commands need no request');
    assert.deepEqual(await complete('inspect n1/r', registry, k), [['n1/replica.ab.0', 'n1/router'], 'n1/r']);
    assert.deepEqual(await complete('ask n1/rou', registry, k), [['n1/router '], 'n1/rou']);
    assert.deepEqual(await complete('describe do', registry, k), [['docs', 'dogs'], 'do']);
    assert.deepEqual(await complete('shard docs/', registry, k), [['docs/0', 'docs/1'], 'docs/']);
    assert.deepEqual(await complete('count docs; actors --node n', registry, k), [['n1', 'n2'], 'n']);
    assert.deepEqual(await complete('maintenance n2 o', registry, k), [['off', 'on'], 'o']);
    assert.deepEqual(await complete('help wa', registry, k), [['watch '], 'wa']);
    assert.deepEqual(await complete('tell n1/router {', registry, k), [[], '{'], 'the message is not completed');
  });
});

describe('console watch', () => {
  it('console - payloads decode by Content-Type, else JSON, CBOR, text, hex', () => {
    assert.deepEqual(decodePayload(encodeCbor({ type: 'status', v: new Float32Array([1, 2]) })), { encoding: 'cbor', value: { type: 'status', v: new Float32Array([1, 2]) } });
    assert.deepEqual(decodePayload(encodeJson({ a: 1 })), { encoding: 'json', value: { a: 1 } });
    assert.deepEqual(decodePayload(encodeCbor('x'), 'application/cbor'), { encoding: 'cbor', value: 'x' });
    assert.deepEqual(decodePayload(new TextEncoder().encode('hello')), { encoding: 'text', value: 'hello' });
    assert.deepEqual(decodePayload(new Uint8Array([0xff, 0xfe, 0x00])), { encoding: 'hex', value: 'fffe00' });
    assert.deepEqual(decodePayload(new Uint8Array(0)), { encoding: 'empty', value: null });
  });

  it('console - subject patterns: * for a token, > last only', () => {
    assert.equal(checkPattern('_shoal.actor.*.router'), '_shoal.actor.*.router');
    assert.equal(checkPattern('_shoal.>'), '_shoal.>');
    assert.throws(() => checkPattern('_shoal.>.x'), /not valid/);
    assert.throws(() => checkPattern('a..b'), /not valid/);
    assert.throws(() => checkPattern('a b'), /not valid/);
  });
});

describe('console trace', () => {
  it('console - spans become a tree under their parents, in start order; orphans are roots', () => {
    const T = 'a'.repeat(32);
    const span = (spanId: string, parentSpanId: string | null, name: string, startMs: number): string =>
      JSON.stringify({ service: 'shoal-node-n1', name, traceId: T, spanId, parentSpanId, kind: 0, startMs, durationMs: 2, status: 0, attributes: {}, pid: 7 });
    const text = [span('r', null, 'router upsert', 0), span('w2', 'r', 'write b', 3), span('w1', 'r', 'write a', 1), span('c', 'w1', 'commit', 2), span('o', 'gone', 'orphan', 5), '{"cut', JSON.stringify({ traceId: 'b'.repeat(32), spanId: 'x' })].join('\n');
    const roots = traceTree(text, T);
    assert.deepEqual(roots.map((r) => r.span.name), ['router upsert', 'orphan']);
    assert.deepEqual(roots[0]?.children.map((c) => c.span.name), ['write a', 'write b']);
    const lines = formatTree(roots).split('\n');
    assert.match(lines[0] as string, /^router upsert  \(shoal-node-n1 pid 7, \+0\.0 ms, 2\.0 ms\)$/);
    assert.match(lines[1] as string, /^├─ write a /);
    assert.match(lines[2] as string, /^│  └─ commit /);
    assert.match(lines[3] as string, /^└─ write b /);
    assert.match(lines[4] as string, /^orphan /);
  });
});

describe('console tables and history', () => {
  it('console - a table fits the terminal by narrowing its widest columns', () => {
    const t = table([['n1/replica.0123456789abcdef.0', 'replica', 'collection=docs shard=0 role=leader term=3']], ['ACTOR', 'KIND', 'STATE'], 40);
    for (const l of t.split('\n')) assert.ok([...l].length <= 40, l);
    assert.match(t, /…/);
    assert.equal(table([['a', 'b']], ['X', 'Y']), 'X  Y\na  b', 'no width: as before');
  });

  it('console - history is kept in XDG_STATE_HOME, newest first, cut to its size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-history-'));
    try {
      assert.equal(historyFile({ XDG_STATE_HOME: dir }), join(dir, 'shoal', 'console_history'));
      assert.match(historyFile({}), /\.shoal_console_history$/);
      const file = historyFile({ XDG_STATE_HOME: dir });
      assert.deepEqual(loadHistory(file), []);
      appendHistory(file, 'nodes');
      appendHistory(file, 'count docs');
      assert.deepEqual(loadHistory(file), ['count docs', 'nodes']);
      writeFileSync(file, Array.from({ length: HISTORY_SIZE + 5 }, (_, i) => `c${i}`).join('\n'));
      assert.equal(loadHistory(file).length, HISTORY_SIZE);
      assert.equal(readFileSync(file, 'utf8').split('\n')[0], 'c5', 'the oldest lines went');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
