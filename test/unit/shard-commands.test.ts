import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCbor } from '../../src/runtime/codec.js';
import { DecodeError } from '../../src/runtime/errors.js';
import { decodeCommand, encodeCommand, type LoggedCommand } from '../../src/shard/commands.js';

const upsert: LoggedCommand = { type: 'upsert', points: [{ id: 'a', vector: new Float32Array([0.5, -1]), metadata: { tag: 'x' } }, { id: 'b', vector: new Float32Array([2, 3]) }], requestId: 'r1', at: 1_700_000_000_000 };
const del: LoggedCommand = { type: 'delete', ids: ['a', 'zz'], requestId: 'r2', at: 1_700_000_000_001 };

describe('shard commands', () => {
  it('shard commands - the log format is unchanged: encodeCommand writes the bytes the runtime codec wrote into existing logs', () => {
    for (const c of [upsert, del]) assert.deepEqual(encodeCommand(c), encodeCbor(c));
  });

  it('shard commands - a command decodes as it was encoded, vectors as Float32Array', () => {
    for (const c of [upsert, del]) assert.deepEqual(decodeCommand(encodeCommand(c)), c);
    const out = decodeCommand(encodeCbor(upsert));
    assert.ok(out.type === 'upsert' && out.points[0]?.vector instanceof Float32Array);
  });

  it('shard commands - data that is not one CBOR value is a DecodeError', () => {
    assert.throws(() => decodeCommand(new Uint8Array(0)), DecodeError);
    assert.throws(() => decodeCommand(Uint8Array.of(0x5f)), DecodeError);
  });
});
