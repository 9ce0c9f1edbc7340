#!/usr/bin/env node
// Runs the compiled tests with node:test. `node scripts/run-tests.mjs [kind...]` picks kinds
// (unit, sim, integration, chaos, partition); default all. A test that skips itself or is left
// as a todo fails the run: tests never skip silently. `partition` builds network namespaces: as
// any user but root (or one with CAP_NET_ADMIN and CAP_SYS_ADMIN) it fails and says why.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const KINDS = ['unit', 'sim', 'integration', 'chaos', 'partition'];
const kinds = process.argv.slice(2).length > 0 ? process.argv.slice(2) : KINDS;
for (const k of kinds) if (!KINDS.includes(k)) { console.error(`unknown test kind ${k}; use ${KINDS.join(', ')}`); process.exit(2); }

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

const files = kinds.flatMap((k) => find(join('dist', 'test', k))).sort();
if (files.length === 0) { console.error('no compiled tests found under dist/test: run `npm run build` first'); process.exit(1); }

const tap = join(tmpdir(), `shoal-tests-${process.pid}.tap`);
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// Chaos and partition tests run real clusters of up to six node processes under load on a
// two-core machine, and hold them to times (leases, a heal): they run one file at a time, after
// the rest, so that none starves another (or a timing test).
const chaos = files.filter((f) => f.includes(join('test', 'chaos')) || f.includes(join('test', 'partition')));
const rest = files.filter((f) => !chaos.includes(f));
const run = (list, n, i) => list.length === 0 ? 0 : (spawnSync(process.execPath, [
  '--test', `--test-concurrency=${n}`, `--test-timeout=${process.env.TEST_TIMEOUT_MS ?? 300000}`,
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}.${i}`,
  ...list,
], { stdio: 'inherit' }).status ?? 1);
const status = [run(rest, concurrency, 0), run(chaos, '1', 1)].find((s) => s !== 0) ?? 0;
const res = { status };

let skipped = 0, todo = 0;
for (const f of [`${tap}.0`, `${tap}.1`]) {
  if (!existsSync(f)) continue;
  const text = readFileSync(f, 'utf8');
  skipped += Number(/^# skipped (\d+)/m.exec(text)?.[1] ?? 0);
  todo += Number(/^# todo (\d+)/m.exec(text)?.[1] ?? 0);
  rmSync(f, { force: true });
}
if (skipped + todo > 0) {
  console.error(`\n${skipped} skipped and ${todo} todo tests: tests never skip silently. Make them run, or fail saying why.`);
  process.exit(1);
}
process.exit(res.status ?? 1);
