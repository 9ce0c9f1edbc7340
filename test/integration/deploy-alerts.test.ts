/**
 * The operator's kit as shipped (issue 19, items 3, 4 and 8): the Prometheus alert rules pass
 * `promtool check rules` and their unit tests (`promtool test rules`); every YAML file in the
 * repository passes yamllint; the Grafana dashboard is valid JSON with unique panel ids, its
 * rows, and queries Prometheus parses; and every metric a panel or an alert uses is served by a
 * real cluster, scraped while a move runs (the per-move metrics exist only then).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ShoalClient } from '../../src/client/client.js';
import { OpsClient } from '../../src/client/ops.js';
import { TestCluster } from '../helpers/cluster.js';
import { freePort, parseMetrics } from '../helpers/prom-text.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const RULES = `${ROOT}deploy/prometheus/alerts.yml`;
const RULE_TESTS = `${ROOT}deploy/prometheus/alerts.test.yml`;
const DASHBOARD = `${ROOT}deploy/grafana/shoal.json`;
const SETUP = 'run scripts/setup.sh (it installs Debian\'s prometheus and yamllint packages)';

/** Runs a tool, failing (never skipping) with what to install when it is missing. */
function run(cmd: string, args: string[], cwd = ROOT): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.error) assert.fail(`${cmd} cannot run (${String(r.error)}): ${SETUP}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string }[];
  panels?: Panel[];
}

interface Dashboard {
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
}

const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const allPanels = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

/** The dashboard's queries with its variables replaced by what Grafana would put there, as plain PromQL. */
function dashboardQueries(): { panel: string; expr: string }[] {
  return allPanels(dashboard()).flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      panel: `${p.id} "${p.title}" ${t.refId}`,
      expr: t.expr.replaceAll('$__rate_interval', '5m').replace(/\$\{?[a-zA-Z_]+\}?/g, '.*'),
    })),
  );
}

/** Every alert's expression, from alerts.yml (`expr:` one line, or a folded block under it). */
function alertExpressions(): { alert: string; expr: string }[] {
  const out: { alert: string; expr: string }[] = [];
  const lines = readFileSync(RULES, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr: ?(.*)$/.exec(lines[i] as string);
    if (!m) continue;
    const alert = /alert: (\S+)/.exec(lines[i - 1] ?? '')?.[1] ?? `line ${i + 1}`;
    if (m[2] !== '>-' && m[2] !== '|') {
      out.push({ alert, expr: m[2] as string });
      continue;
    }
    const body: string[] = [];
    while (i + 1 < lines.length && ((lines[i + 1] as string).length - (lines[i + 1] as string).trimStart().length > (m[1] as string).length || (lines[i + 1] as string).trim() === '')) body.push((lines[++i] as string).trim());
    out.push({ alert, expr: body.join(' ') });
  }
  return out;
}

const FUNCTIONS_AND_KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/** The metric names a PromQL expression reads: identifiers that are not functions, aggregations, keywords or labels. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\[[^\]]*\]/g, ' '); // ranges
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const id = m[0];
    const rest = bare.slice((m.index ?? 0) + id.length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation
    if (/^\d/.test(bare.slice((m.index ?? 1) - 1, m.index ?? 0))) continue; // a unit of a number (1e9)
    if (FUNCTIONS_AND_KEYWORDS.has(id.toLowerCase())) continue;
    names.add(id);
  }
  return [...names];
}

/** Metrics Prometheus makes itself for every target, not served by a node. */
const PROMETHEUS_OWN = new Set(['up']);

describe('deploy - alert rules, dashboard and YAML', () => {
  it('alerts - promtool check rules accepts alerts.yml; every alert has severity, summary and description', () => {
    const r = run('promtool', ['check', 'rules', RULES]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS: \d+ rules found/);
    const text = readFileSync(RULES, 'utf8');
    const alerts = [...text.matchAll(/- alert: (\S+)/g)].map((m) => m[1] as string);
    assert.ok(alerts.length >= 10, `alerts: ${alerts.join(', ')}`);
    for (const chunk of text.split(/\n\s*- alert: /).slice(1)) {
      const name = chunk.split('\n')[0];
      assert.match(chunk, /\n\s+severity: (critical|warning)\n/, `${name}: severity`);
      assert.match(chunk, /\n\s+summary: /, `${name}: summary`);
      assert.match(chunk, /\n\s+description: /, `${name}: description`);
    }
  });

  it('alerts - promtool test rules passes alerts.test.yml, which makes every alert fire and keeps it quiet at least once', () => {
    const r = run('promtool', ['test', 'rules', RULE_TESTS]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS/);
    // each alert: a case where it fires (exp_alerts with labels) and one where it does not (exp_alerts: [])
    const tests = readFileSync(RULE_TESTS, 'utf8');
    const alerts = [...readFileSync(RULES, 'utf8').matchAll(/- alert: (\S+)/g)].map((m) => m[1] as string);
    for (const a of alerts) {
      const cases = [...tests.matchAll(new RegExp(`alertname: ${a}\\n\\s+exp_alerts:( \\[\\])?`, 'g'))];
      assert.ok(cases.some((c) => c[1] === undefined), `${a}: no case where it fires`);
      assert.ok(cases.some((c) => c[1] === ' []'), `${a}: no case where it does not fire`);
    }
  });

  it('yaml - yamllint --strict passes every YAML file in the repository (.yamllint)', () => {
    const files = run('yamllint', ['--list-files', '.']);
    assert.equal(files.status, 0, files.out);
    const listed = files.out.split('\n').filter((l) => l !== '');
    for (const f of ['deploy/prometheus/alerts.yml', 'deploy/prometheus/alerts.test.yml']) assert.ok(listed.some((l) => l.endsWith(f)), `yamllint does not look at ${f}: ${listed.join(', ')}`);
    assert.ok(!listed.some((l) => l.includes('node_modules/')), 'node_modules is not linted');
    const r = run('yamllint', ['--strict', '--format', 'parsable', '.']);
    assert.equal(r.status, 0, `yamllint:\n${r.out}`);
  });

  it('dashboard - shoal.json parses, has its rows, unique panel ids, the Prometheus datasource variable, and queries Prometheus parses', () => {
    const d = dashboard();
    assert.ok(d.schemaVersion >= 39, `schemaVersion ${d.schemaVersion}`);
    const ds = d.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
    assert.ok(ds && ds.type === 'datasource' && ds.query === 'prometheus', 'a datasource variable DS_PROMETHEUS of type prometheus');
    const panels = allPanels(d);
    const ids = panels.map((p) => p.id);
    assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'panel ids are unique');
    assert.ok(ids.every((id) => Number.isInteger(id) && id > 0), 'panel ids are positive integers');
    const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
    assert.deepEqual(rows, ['Cluster', 'Shards', 'Raft', 'Requests', 'Moves']);
    for (const p of panels.filter((x) => x.type !== 'row')) {
      assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `panel ${p.id} "${p.title}" uses the datasource variable`);
      assert.ok((p.targets ?? []).length > 0, `panel ${p.id} "${p.title}" has a query`);
    }
    // Prometheus's own parser on every query: written as recording rules, checked by promtool.
    const dir = mkdtempSync(join(tmpdir(), 'shoal-dash-'));
    try {
      const rules = dashboardQueries().map((q, i) => `      - record: shoal_dashboard_query_${i}\n        expr: ${JSON.stringify(q.expr)}`).join('\n');
      writeFileSync(join(dir, 'dashboard.rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const r = run('promtool', ['check', 'rules', join(dir, 'dashboard.rules.yml')]);
      assert.equal(r.status, 0, `a dashboard query does not parse:\n${r.out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('metric names - are read out of PromQL, leaving functions, keywords, labels and numbers out', () => {
    assert.deepEqual(
      metricNames('(max by (group) (increase(shoal_raft_leader_changes_total[15m])) > 3) * on (group) group_left (collection, shard) max by (group, collection, shard) (shoal_shard_info{collection=~"a|b"}) or vector(0)').sort(),
      ['shoal_raft_leader_changes_total', 'shoal_shard_info'],
    );
    assert.deepEqual(metricNames('time() - shoal_x_seconds > 600 and up{job="shoal"} < 1e9 unless on (a) b_c'), ['shoal_x_seconds', 'up', 'b_c']);
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (op, le) (rate(shoal_request_duration_seconds_bucket{op=~"x"}[5m])))'), ['shoal_request_duration_seconds_bucket']);
  });

  describe('on a running cluster, during a move', () => {
    let cluster: TestCluster;
    let client: ShoalClient;
    const ports: Record<string, number> = {};

    before(async () => {
      for (const id of ['n1', 'n2', 'n3']) ports[id] = await freePort();
      const nodeEnv = Object.fromEntries(Object.entries(ports).map(([id, p]) => [id, { SHOAL_METRICS_PORT: String(p), SHOAL_MAX_MEMORY: '8GiB' }]));
      cluster = await TestCluster.start({ nodes: 3, nodeEnv });
      client = await cluster.client({ timeoutMs: 15_000 });
    });

    after(async () => {
      await cluster?.stop();
    });

    it('metrics - every metric a dashboard panel or an alert uses is served by a node, the per-move ones while a move runs', async (t) => {
      const DIM = 48;
      await client.createCollection({ name: 'kit', dim: DIM, shards: 1, replicas: 2 });
      const coll = client.collection('kit');
      // ~1.5 MB to copy: at 1 kB/s the copy of each 256 KiB chunk waits its most (1.5 s), so the move lasts seconds
      for (let b = 0; b < 8; b++) await coll.upsert(Array.from({ length: 500 }, (_, i) => ({ id: `p${b}-${i}`, vector: Array.from({ length: DIM }, (_, d) => Math.sin((b * 500 + i) * 7 + d)) })));
      await coll.search(Array.from({ length: DIM }, () => 0.5), { k: 3 });
      const ops = new OpsClient(client);
      await ops.configureRebalance({ maxBytesPerSec: 1_000 });
      const holders = (await client.describeCollection('kit')).shards[0]!.replicas.map((r) => r.node);
      const leaving = holders[holders.length - 1]!;
      await ops.removeNode(leaving);

      const used = [
        ...dashboardQueries().map((q) => ({ where: `panel ${q.panel}`, names: metricNames(q.expr) })),
        ...alertExpressions().map((a) => ({ where: `alert ${a.alert}`, names: metricNames(a.expr) })),
      ];
      const wanted = new Set(used.flatMap((u) => u.names).filter((n) => !PROMETHEUS_OWN.has(n)));
      assert.ok(wanted.has('shoal_rebalance_move_last_progress_timestamp_seconds') && wanted.has('shoal_raft_is_leader'), `names read: ${[...wanted].join(', ')}`);
      const served = new Set<string>();
      let moveSeries: { value: number; labels: Record<string, string> }[] = [];
      const t0 = Date.now();
      // Polled until all are seen (or 30 s): the per-move ones appear once the coordinator's tick has seen the move.
      await cluster.waitFor(async () => {
        for (const port of Object.values(ports)) {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
          if (!res || res.status !== 200) continue;
          const m = parseMetrics(await res.text());
          for (const n of m.keys()) served.add(n);
          const progress = m.get('shoal_rebalance_move_last_progress_timestamp_seconds') ?? [];
          if (progress.length > 0) moveSeries = progress;
        }
        return [...wanted].every((n) => served.has(n));
      }, 'every metric used served', 30_000).catch(() => undefined);
      const missing = used.flatMap((u) => u.names.filter((n) => !PROMETHEUS_OWN.has(n) && !served.has(n)).map((n) => `${n} (${u.where})`));
      assert.deepEqual(missing, [], `used but served by no node:\n${missing.join('\n')}`);
      t.diagnostic(`${wanted.size} metrics used, all served; ${Date.now() - t0} ms into the move`);

      // the move's series: named by its collection and shard, its last progress a moment ago
      const s = moveSeries[0]!;
      assert.equal(s.labels['collection'], 'kit');
      assert.equal(s.labels['shard'], '0');
      assert.match(s.labels['move'] ?? '', /^m-/);
      assert.ok(Math.abs(Date.now() / 1000 - s.value) < 60, `last progress ${s.value} is a Unix time within a minute of now (${Date.now() / 1000})`);
    });
  });
});
