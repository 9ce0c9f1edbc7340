/**
 * The logger (src/runtime/logger.ts, on pino): JSON lines with a level label, an ISO time, the
 * base and child fields, errors with name, message and stack, and, while a request is handled,
 * the active span's trace and span ids and the request id. Lines are caught by a destination
 * that keeps them; one test runs a real process that logs and then dies, reading its stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { createLogger, levelFromEnv, parseLogLevel, type LogLevel, type Logger } from '../../src/runtime/logger.js';
import { withRequestId } from '../../src/runtime/request-context.js';

const LOGGER = new URL('../../src/runtime/logger.js', import.meta.url).pathname;

let manager: AsyncLocalStorageContextManager;
const tracer = new BasicTracerProvider().getTracer('logger-test');

before(() => {
  manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
});

after(() => {
  context.disable();
});

function capture(base: Record<string, unknown> = {}, level: LogLevel = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(base, level, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('logger', () => {
  it('logger - a line is JSON with the level as a label, an ISO time, the message and the fields', () => {
    const { log, lines } = capture({ node: 'n1' });
    const before = Date.now();
    log.info('replica started', { collection: 'docs', shard: 0 });
    assert.equal(lines.length, 1);
    const l = lines[0] as Record<string, unknown>;
    assert.equal(l['level'], 'info');
    assert.equal(l['msg'], 'replica started');
    assert.equal(l['node'], 'n1');
    assert.equal(l['collection'], 'docs');
    assert.equal(l['shard'], 0);
    assert.match(String(l['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(String(l['time'])) - before) < 5_000);
    assert.equal('trace_id' in l, false, 'no trace id outside a span');
    assert.equal('request_id' in l, false, 'no request id outside a request');
  });

  it('logger - lines below the level are dropped; silent writes nothing', () => {
    const { log, lines } = capture({}, 'warn');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    assert.deepEqual(lines.map((l) => [l['level'], l['msg']]), [['warn', 'w'], ['error', 'e']]);
    const quiet = capture({}, 'silent');
    quiet.log.error('nothing');
    assert.equal(quiet.lines.length, 0);
    const all = capture({}, 'debug');
    all.log.debug('d');
    assert.deepEqual(all.lines.map((l) => l['level']), ['debug']);
  });

  it('logger - a child carries its parent\'s fields and its own, and so does its child', () => {
    const { log, lines } = capture({ node: 'n2' });
    const replica = log.child({ actor: 'replica.docs.0' }).child({ shard: 0 });
    replica.warn('slow', { ms: 12 });
    log.info('parent');
    assert.deepEqual({ ...lines[0], time: undefined }, { level: 'warn', time: undefined, node: 'n2', actor: 'replica.docs.0', shard: 0, ms: 12, msg: 'slow' });
    assert.equal('actor' in (lines[1] as object), false, 'the parent does not take the child\'s fields');
  });

  it('logger - an error is written with its name, message, stack, code and cause, under any field', () => {
    const { log, lines } = capture();
    const cause = new RangeError('disk full');
    const err = Object.assign(new TypeError('flush failed', { cause }), { code: 'EIO' });
    log.error('flush', { error: err, other: new Error('second') });
    const e = (lines[0] as Record<string, Record<string, unknown>>)['error'] as Record<string, unknown>;
    assert.equal(e['name'], 'TypeError');
    assert.equal(e['message'], 'flush failed');
    assert.equal(e['code'], 'EIO');
    assert.match(String(e['stack']), /^TypeError: flush failed\n\s+at /);
    assert.deepEqual({ ...(e['cause'] as object), stack: undefined }, { name: 'RangeError', message: 'disk full', stack: undefined });
    assert.equal(((lines[0] as Record<string, Record<string, unknown>>)['other'] as Record<string, unknown>)['message'], 'second');
  });

  it('logger - inside an active span a line carries its trace and span ids; outside, none', async () => {
    const { log, lines } = capture({ node: 'n1' });
    let ids = { traceId: '', spanId: '' };
    await tracer.startActiveSpan('handle', async (span) => {
      ids = span.spanContext();
      log.info('in the span');
      await new Promise((r) => setTimeout(r, 1));
      log.info('after an await, still in it');
      span.end();
    });
    log.info('outside');
    assert.equal(lines[0]?.['trace_id'], ids.traceId);
    assert.equal(lines[0]?.['span_id'], ids.spanId);
    assert.match(String(lines[0]?.['trace_id']), /^[0-9a-f]{32}$/);
    assert.equal(lines[1]?.['trace_id'], ids.traceId);
    assert.equal('trace_id' in (lines[2] as object), false);
    assert.equal('span_id' in (lines[2] as object), false);
  });

  it('logger - while a request is handled its id is on every line, through awaits; outside, none', async () => {
    const { log, lines } = capture();
    await withRequestId('req-42', async () => {
      log.info('one');
      await new Promise((r) => setTimeout(r, 1));
      log.child({ actor: 'router' }).info('two');
      await withRequestId(undefined, async () => log.info('another message, no request'));
    });
    log.info('outside');
    assert.deepEqual(lines.map((l) => l['request_id'] ?? null), ['req-42', 'req-42', null, null]);
  });

  it('logger - a level is checked by name: a bad SHOAL_LOG_LEVEL is named, and the default is info', () => {
    assert.equal(parseLogLevel('debug', 'SHOAL_LOG_LEVEL'), 'debug');
    assert.throws(() => parseLogLevel('verbose', 'SHOAL_LOG_LEVEL'), /SHOAL_LOG_LEVEL must be one of debug, info, warn, error, silent; got 'verbose'/);
    assert.equal(levelFromEnv({}), 'info');
    assert.equal(levelFromEnv({ SHOAL_LOG_LEVEL: 'error' }), 'error');
  });

  it('logger - a process that dies right after logging loses none of its lines (synchronous writes)', () => {
    const script = `
      import { createLogger } from ${JSON.stringify(LOGGER)};
      const log = createLogger({ node: 'n9' }, 'info');
      for (let i = 0; i < 2000; i++) log.info('line', { i, pad: 'x'.repeat(200) });
      process.kill(process.pid, 'SIGKILL');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    assert.equal(r.signal, 'SIGKILL', `the process died by SIGKILL: ${r.stderr.slice(-300)}`);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2000);
    assert.equal(lines.at(-1)?.['i'], 1999);
    assert.equal(lines.at(-1)?.['node'], 'n9');
  });
});
