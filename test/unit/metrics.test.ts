import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry, serveMetrics } from '../../src/runtime/metrics.js';

describe('metrics', () => {
  it('metrics - counters, gauges and histograms render in the Prometheus text format', () => {
    const m = new MetricsRegistry();
    const c = m.counter('shoal_requests_total', 'Requests by op.');
    c.inc({ op: 'search' });
    c.inc({ op: 'search' }, 2);
    c.inc({ op: 'up"sert' });
    m.gauge('shoal_raft_term', 'Term by group.', () => [[{ group: 'g1' }, 7]]);
    const h = m.histogram('shoal_request_ms', 'Latency.', [1, 10]);
    h.observe({ op: 'search' }, 0.5);
    h.observe({ op: 'search' }, 5);
    h.observe({ op: 'search' }, 50);
    const text = m.render();
    assert.match(text, /# TYPE shoal_requests_total counter\nshoal_requests_total\{op="search"\} 3\nshoal_requests_total\{op="up\\"sert"\} 1/);
    assert.match(text, /shoal_raft_term\{group="g1"\} 7/);
    assert.match(text, /shoal_request_ms_bucket\{op="search",le="1"\} 1\nshoal_request_ms_bucket\{op="search",le="10"\} 2\nshoal_request_ms_bucket\{op="search",le="\+Inf"\} 3\nshoal_request_ms_sum\{op="search"\} 55.5\nshoal_request_ms_count\{op="search"\} 3/);
    assert.throws(() => m.counter('shoal_requests_total', 'again'), /registered twice/);
  });

  it('metrics - served over HTTP at /metrics', async () => {
    const m = new MetricsRegistry();
    m.counter('x_total', 'x').inc();
    const srv = await serveMetrics(m, 0, '127.0.0.1');
    try {
      const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^# HELP x_total x\n# TYPE x_total counter\nx_total 1\n$/);
      assert.equal((await fetch(`http://127.0.0.1:${srv.port}/other`)).status, 404);
    } finally {
      await srv.close();
    }
  });
});
