/** `shoal dev`'s lines for people (src/cli/log-format.ts), from the JSON lines nodes write. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter, formatLogLine } from '../../src/cli/log-format.js';

const TIME = '2025-03-04T12:05:01.123Z';
const LOCAL = new Date(TIME).toTimeString().slice(0, 8);

describe('log format', () => {
  it('log format - time, level, node, message, then the fields as key=value, trace ids last', () => {
    const line = JSON.stringify({ level: 'info', time: TIME, node: 'n1', actor: 'replicas', trace_id: 'a'.repeat(32), msg: 'replica started', collection: 'docs', shard: 0, why: 'two words' });
    assert.equal(formatLogLine(line), `${LOCAL} INFO  n1 replica started actor=replicas collection=docs shard=0 why="two words" trace_id=${'a'.repeat(32)}`);
  });

  it('log format - an error shows its name and message, then its stack indented', () => {
    const line = JSON.stringify({ level: 'error', time: TIME, node: 'n2', msg: 'flush', error: { name: 'TypeError', message: 'bad', stack: 'TypeError: bad\n    at f (x.js:1:1)' } });
    assert.equal(formatLogLine(line), `${LOCAL} ERROR n2 flush error="TypeError: bad"\n    at f (x.js:1:1)`);
  });

  it('log format - a line that is not a JSON log line is shown as it is, with the node it came from', () => {
    assert.equal(formatLogLine('Error: boom', { fallbackNode: 'n3' }), '[n3] Error: boom');
    assert.equal(formatLogLine('{"a":1}', { fallbackNode: 'n3' }), '[n3] {"a":1}');
  });

  it('log format - on a terminal the level is coloured', () => {
    const line = JSON.stringify({ level: 'warn', time: TIME, node: 'n1', msg: 'm' });
    assert.equal(formatLogLine(line, { color: true }), `${LOCAL} \x1b[33mWARN \x1b[0m n1 m`);
  });

  it('log format - chunks are cut into whole lines, a line split over two chunks made whole', () => {
    const s = new LineSplitter();
    assert.deepEqual(s.push('{"a":1}\n{"b"'), ['{"a":1}']);
    assert.deepEqual(s.push(':2}\n'), ['{"b":2}']);
    assert.deepEqual(s.push('tail'), []);
    assert.deepEqual(s.end(), ['tail']);
  });
});
