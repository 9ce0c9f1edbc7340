import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/runtime/errors.js';
import { Subjects } from '../../src/runtime/subjects.js';

describe('subjects', () => {
  const s = new Subjects();

  it('subjects - public API subjects follow PROTOCOL.md', () => {
    assert.equal(s.api('docs', 'search'), 'shoal.v1.docs.search');
    assert.equal(s.api('docs', 'search-batch'), 'shoal.v1.docs.search-batch');
    assert.equal(s.admin('collections', 'create'), 'shoal.v1.admin.collections.create');
    assert.equal(new Subjects('acme').api('x', 'get'), 'acme.v1.x.get');
  });

  it('subjects - internal traffic lives outside the public prefix', () => {
    const actor = s.actor('n1', 'replica.docs.0');
    assert.equal(actor, '_shoal.actor.n1.replica.docs.0');
    assert.ok(!actor.startsWith('shoal.'));
    assert.equal(s.internal('raft', 'docs', '0'), '_shoal.raft.docs.0');
    assert.equal(s.introspect('n1'), '_shoal.sys.n1.introspect');
  });

  it('subjects - tokens with dots, spaces, wildcards or nothing are refused, naming the part', () => {
    for (const bad of ['', 'a.b', 'a b', '*', '>', 'a>', 'x'.repeat(129), 'tab\t']) {
      assert.throws(() => s.api(bad, 'get'), InvalidArgumentError, JSON.stringify(bad));
    }
    assert.throws(() => s.actor('n1', 'a..b'), /actor name "a..b"/);
    assert.throws(() => s.actor('n.1', 'a'), /actor system "n.1"/);
    assert.throws(() => new Subjects('_x'), /prefix/);
    assert.throws(() => new Subjects('a.b'), /prefix/);
  });
});
