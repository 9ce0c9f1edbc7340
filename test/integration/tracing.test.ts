import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SpanRecord } from '../../src/cli/telemetry.js';
import { ActorSystem } from '../../src/runtime/actor-system.js';
import type { NatsServer } from '../../src/runtime/nats-server.js';
import { startTestNats } from '../helpers/nats.js';

const exporter = new InMemorySpanExporter();
let server: NatsServer;
let sys: ActorSystem;
let dir: string;

before(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  server = await startTestNats();
  sys = await ActorSystem.connect(server.url, { name: 'home' });
  dir = mkdtempSync(join(tmpdir(), 'shoal-trace-'));
});

after(async () => {
  await sys.shutdown();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tracing', () => {
  it('tracing - one trace spans processes: a child span in another process has its parent in this one, and back', async () => {
    const sink = sys.spawn('sink', {
      init: () => null,
      receive: (s, _m: { type: 'hop' }, ctx) => {
        ctx.reply('sunk');
        return s;
      },
    });
    await sys.flush();
    const traceFile = join(dir, 'peer-spans.jsonl');
    const peer = spawn(process.execPath, [new URL('../fixtures/traced-peer.js', import.meta.url).pathname, server.url, traceFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let peerErr = '';
    peer.stderr.on('data', (d: Buffer) => (peerErr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      peer.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      peer.once('exit', (code) => reject(new Error(`peer exited early with ${code}`)));
    });

    const tracer = trace.getTracer('test');
    let clientTraceId = '';
    let clientSpanId = '';
    const answer = await tracer.startActiveSpan('client-op', async (span) => {
      clientTraceId = span.spanContext().traceId;
      clientSpanId = span.spanContext().spanId;
      try {
        return await sys.ask(sys.ref('peer', 'relay'), { type: 'relay', target: sink });
      } finally {
        span.end();
      }
    });
    assert.equal(answer, 'sunk');
    const exited = new Promise<string>((r) => peer.once('exit', (code, sig) => r(String(sig ?? code))));
    peer.kill('SIGTERM');
    const how = await exited;
    assert.ok(existsSync(traceFile), `the peer wrote no spans; it exited with ${how}; its stderr: ${peerErr || '(nothing)'}`);

    const peerSpans = readFileSync(traceFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SpanRecord);
    const relay = peerSpans.find((s) => s.name === 'relay.relay');
    assert.ok(relay, `peer wrote spans: ${peerSpans.map((s) => s.name).join(', ')}`);
    assert.notEqual(relay.pid, process.pid, 'the child span was made in another process');
    assert.equal(relay.traceId, clientTraceId, 'same trace');
    assert.equal(relay.parentSpanId, clientSpanId, "the peer's span is a child of this process's span");
    assert.equal(relay.attributes['shoal.actor'], 'relay');

    const hop = exporter.getFinishedSpans().find((s) => s.name === 'sink.hop');
    assert.ok(hop, 'the hop back was traced here');
    assert.equal(hop.spanContext().traceId, clientTraceId);
    assert.equal(hop.parentSpanContext?.spanId, relay.spanId, "this process's span is a child of the peer's");
  });

  it('tracing - a message outside any trace makes no span unless its actor names it a root; a deferred reply ends its span', async () => {
    exporter.reset();
    let answer: (v: string) => void = () => undefined;
    const ref = sys.spawn('door.42', {
      init: () => null,
      receive: (s, m: { type: 'tick' | 'open' | 'slow' }, ctx) => {
        if (m.type === 'slow') {
          const reply = ctx.deferReply();
          answer = (v) => reply.resolve(v);
        } else ctx.reply(m.type);
        return s;
      },
      tracing: { root: (m) => m.type === 'open', name: (m) => `door.${m.type}`, attributes: () => ({ 'shoal.door': 42 }) },
    });
    await sys.flush();
    assert.equal(await sys.ask(ref, { type: 'tick' }), 'tick');
    assert.equal(exporter.getFinishedSpans().length, 0, 'a tick with no trace made no span');
    assert.equal(await sys.ask(ref, { type: 'open' }), 'open');
    const open = exporter.getFinishedSpans().find((s) => s.name === 'door.open');
    assert.ok(open, `a root message started a trace: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
    assert.equal(open.parentSpanContext, undefined);
    assert.equal(open.attributes['shoal.door'], 42);
    assert.equal(open.attributes['shoal.actor'], 'door.42');
    assert.equal(open.attributes['messaging.system'], 'nats');

    const tracer = trace.getTracer('test');
    const slow = tracer.startActiveSpan('client', async (span) => {
      try {
        return await sys.ask(ref, { type: 'slow' });
      } finally {
        span.end();
      }
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(exporter.getFinishedSpans().filter((s) => s.name === 'door.slow').length, 0, 'the span of a deferred reply is still open while the work goes on');
    answer('done');
    assert.equal(await slow, 'done');
    const ended = exporter.getFinishedSpans().find((s) => s.name === 'door.slow');
    assert.ok(ended, 'it ended with the reply');
    assert.ok(ended.duration[0] * 1e3 + ended.duration[1] / 1e6 >= 40, 'and covers the wait');
  });
});
