import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry, namingProblem, serveMetrics } from '../../src/runtime/metrics.js';

describe('metrics', () => {
  it('metrics - names keep the Prometheus conventions: base units, _total on counters only', () => {
    assert.equal(namingProblem('counter', 'shoal_requests_total', ['op', 'code']), null);
    assert.equal(namingProblem('histogram', 'shoal_request_duration_seconds', ['op']), null);
    assert.equal(namingProblem('gauge', 'shoal_disk_free_bytes'), null);
    assert.match(namingProblem('counter', 'shoal_requests') ?? '', /counter 'shoal_requests' must end in _total/);
    assert.match(namingProblem('gauge', 'shoal_things_total') ?? '', /must not end in _total/);
    assert.match(namingProblem('histogram', 'shoal_request_duration_ms', ['op']) ?? '', /unit 'ms'.*base units/);
    assert.match(namingProblem('gauge', 'shoal_cache_mib') ?? '', /unit 'mib'/);
    assert.match(namingProblem('gauge', 'Shoal-Term') ?? '', /lower snake_case/);
    assert.match(namingProblem('histogram', 'shoal_x_seconds', ['le']) ?? '', /label 'le'/);
    const m = new MetricsRegistry();
    assert.throws(() => m.counter('shoal_requests', 'no suffix'), /must end in _total/);
    assert.throws(() => m.histogram('shoal_request_ms', 'ms', ['op'], [1]), /base units/);
  });

  it('metrics - counters, gauges read at scrape and histograms render in the Prometheus text format', async () => {
    const m = new MetricsRegistry();
    const c = m.counter('shoal_requests_total', 'Requests by op.', ['op']);
    c.inc({ op: 'search' });
    c.inc({ op: 'search' }, 2);
    c.inc({ op: 'up"sert' });
    let term = 7;
    m.gauge('shoal_raft_term', 'Term by group.', ['group'], () => [[{ group: 'g1' }, term]]);
    let changes = 1;
    m.counterFrom('shoal_raft_leader_changes_total', 'Changes.', ['group'], () => [[{ group: 'g1' }, changes]]);
    const h = m.histogram('shoal_request_duration_seconds', 'Latency.', ['op'], [0.001, 0.01]);
    h.observe({ op: 'search' }, 0.0005);
    h.observe({ op: 'search' }, 0.005);
    h.observe({ op: 'search' }, 0.05);
    let text = await m.render();
    assert.match(text, /# TYPE shoal_requests_total counter\nshoal_requests_total\{op="search"\} 3\nshoal_requests_total\{op="up\\"sert"\} 1/);
    assert.match(text, /# TYPE shoal_raft_term gauge\nshoal_raft_term\{group="g1"\} 7\n/);
    assert.match(text, /# TYPE shoal_raft_leader_changes_total counter\nshoal_raft_leader_changes_total\{group="g1"\} 1\n/);
    assert.match(text, /shoal_request_duration_seconds_bucket\{le="0.001",op="search"\} 1\nshoal_request_duration_seconds_bucket\{le="0.01",op="search"\} 2\nshoal_request_duration_seconds_bucket\{le="\+Inf",op="search"\} 3\nshoal_request_duration_seconds_sum\{op="search"\} 0.0555\nshoal_request_duration_seconds_count\{op="search"\} 3/);
    // read again at the next scrape, not remembered
    term = 8;
    changes = 4;
    text = await m.render();
    assert.match(text, /shoal_raft_term\{group="g1"\} 8\n/);
    assert.match(text, /shoal_raft_leader_changes_total\{group="g1"\} 4\n/);
    assert.throws(() => m.counter('shoal_requests_total', 'again'), /already been registered/);
    assert.deepEqual(m.names().sort(), ['shoal_raft_leader_changes_total', 'shoal_raft_term', 'shoal_request_duration_seconds', 'shoal_requests_total']);
  });

  it('metrics - the port serves /metrics, /healthz, and /readyz as 200 or 503 with a JSON body', async () => {
    const m = new MetricsRegistry();
    m.counter('x_total', 'x').inc();
    let ready: { ready: boolean; [k: string]: unknown } | Error = { ready: false, notReady: [{ group: 'g1', reason: 'catching up' }] };
    const srv = await serveMetrics(m, 0, {
      host: '127.0.0.1',
      ready: () => (ready instanceof Error ? Promise.reject(ready) : Promise.resolve(ready)),
    });
    const base = `http://127.0.0.1:${srv.port}`;
    try {
      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(await res.text(), /^# HELP x_total x\n# TYPE x_total counter\nx_total 1\n$/);
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'ok\n');
      let r = await fetch(`${base}/readyz`);
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), { ready: false, notReady: [{ group: 'g1', reason: 'catching up' }] });
      ready = { ready: true, notReady: [] };
      r = await fetch(`${base}/readyz`);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { ready: true, notReady: [] });
      ready = new Error('boom');
      r = await fetch(`${base}/readyz`);
      assert.equal(r.status, 503);
      assert.match(((await r.json()) as { error: string }).error, /readiness could not be decided: boom/);
      assert.equal((await fetch(`${base}/readyz`, { method: 'HEAD' })).status, 503);
      assert.equal((await fetch(`${base}/other`)).status, 404);
      assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await srv.close();
    }
  });
});
