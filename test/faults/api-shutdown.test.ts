// SIGTERM to the api process drains it: readiness turns 503 and gRPC health NOT_SERVING first
// (while it still answers requests), then open SSE and gRPC WatchJob streams end cleanly between
// two events (SSE: a final comment and a normal end; gRPC: UNAVAILABLE "call again"), requests in
// flight get their answers, and the process exits 0. A watcher then resumes elsewhere from its
// last seq with nothing missed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SseParser } from '../../src/api/dashboard/public/sse.js';
import { followJob } from '../../src/cli/sse-client.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { REDIS_URL, WorkerProcess, assertSeqs, deletePrefix, testEnv, waitFor } from '../support/service.js';
import { call, healthClient, trainerClient } from '../support/grpc-client.js';
import { ApiProcess } from '../support/faults.js';

const env = testEnv({ REDIS_URL, SHUTDOWN_DRAIN_MS: '1500', LOG_LEVEL: 'warn', CHECKPOINT_EVERY: '1' });
let worker: WorkerProcess;
const apis: ApiProcess[] = [];

before(async () => {
  worker = new WorkerProcess(env);
  await worker.ready;
});
after(async () => {
  for (const a of apis) a.kill('SIGKILL');
  await worker?.stop();
  await deletePrefix(env.QUEUE_PREFIX);
});

test('SIGTERM: not ready first, then streams end cleanly between events, requests in flight are answered, exit 0', async () => {
  const api = await ApiProcess.start(env);
  apis.push(api);
  const order: string[] = [];
  const spec = {
    model: { kind: 'scratch', numHiddens: 16 },
    data: { maxTokens: 4000, batchSize: 8, numSteps: 10 },
    train: { epochs: 1500, seed: 2 },
    report: { predictEvery: 1000, prefixes: ['time traveller'], numPreds: 10 },
  };
  const created = await fetch(`${api.httpUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  const job = (await created.json()) as { id: string };

  // SSE, read raw: every byte kept, to check that nothing is cut mid-event
  let sseText = '';
  const sseEvents: JobEvent[] = [];
  const sseEnd = (async () => {
    const res = await fetch(`${api.httpUrl}/v1/jobs/${job.id}/events`, { headers: { accept: 'text/event-stream' } });
    const parser = new SseParser();
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read(); // a cut connection would reject here
      if (done) break;
      const chunk = dec.decode(value, { stream: true });
      sseText += chunk;
      for (const ev of parser.push(chunk)) if (ev.event === 'epoch' || ev.event === 'state') sseEvents.push(JSON.parse(ev.data));
    }
    order.push('sse-end');
  })();

  const client = trainerClient(api.grpcPort);
  const grpcEvents: { seq: number }[] = [];
  const grpcEnd = new Promise<grpc.ServiceError | null>((resolve) => {
    const s = client.WatchJob({ job_id: job.id, from_seq: 0 });
    s.on('data', (ev: { seq: number }) => grpcEvents.push(ev));
    s.on('error', (e: grpc.ServiceError) => {
      order.push('grpc-end');
      resolve(e);
    });
    s.on('end', () => {
      order.push('grpc-end');
      resolve(null);
    });
  });
  const health = healthClient(api.grpcPort);
  const hw = health.Watch({ service: '' });
  const notServing = new Promise<void>((resolve) =>
    hw.on('data', (m: { status: string }) => {
      if (m.status === 'NOT_SERVING') {
        order.push('health-not-serving');
        hw.cancel();
        resolve();
      }
    }),
  );
  hw.on('error', () => {});

  await waitFor('epochs on both streams', async () => sseEvents.length >= 4 && grpcEvents.length >= 4, 30_000);

  api.kill('SIGTERM');
  order.push('sigterm');
  await waitFor(
    'readyz 503',
    async () => {
      const r = await fetch(`${api.httpUrl}/readyz`);
      if (r.status === 503) order.push('readyz-503');
      return r.status === 503;
    },
    5000,
    10,
  );
  await notServing;

  // draining: still answering, every request in flight gets its answer
  const gen = fetch(`${api.httpUrl}/v1/jobs/${job.id}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ prefix: 'time traveller', numChars: 3000 }),
  }).then(async (r) => ({ status: r.status, text: await r.text() }));
  const gets = Array.from({ length: 20 }, () => fetch(`${api.httpUrl}/v1/jobs/${job.id}`).then((r) => r.status));
  const unary = call(client, 'GetJob', { job_id: job.id });

  assert.deepEqual(await Promise.all(gets), Array(20).fill(200));
  assert.equal((await unary).id, job.id);
  const g = await gen;
  assert.equal(g.status, 200);
  assert.match(g.text, /event: done\n/, 'the generation in flight completed');

  const grpcErr = await grpcEnd;
  await sseEnd;
  const exit = await api.exited;
  assert.equal(exit.code, 0, api.output);

  // health first, then the streams
  const idx = (s: string) => order.indexOf(s);
  assert.ok(idx('readyz-503') > idx('sigterm') && idx('readyz-503') < idx('sse-end') && idx('readyz-503') < idx('grpc-end'), order.join(' '));
  assert.ok(idx('health-not-serving') < idx('sse-end') && idx('health-not-serving') < idx('grpc-end'), order.join(' '));
  // SSE: ended between events, with the shutdown comment, the events complete and in order
  assert.ok(sseText.endsWith('\n\n'), JSON.stringify(sseText.slice(-200)));
  assert.match(sseText, /: server shutting down; reconnect with Last-Event-ID\n\n$/);
  assertSeqs(sseEvents);
  // gRPC: a status that says to call again, every message whole and in order
  assert.ok(grpcErr, 'WatchJob ended with a status');
  assert.equal(grpc.status[grpcErr!.code], 'UNAVAILABLE');
  assert.match(grpcErr!.details, /shutting down; call again/);
  grpcEvents.forEach((e, i) => assert.equal(e.seq, i + 1));
  client.close();
  health.close();

  // another api process takes over: the watcher resumes from its last seq, nothing missed
  const api2 = await ApiProcess.start(env);
  apis.push(api2);
  const lastSeq = sseEvents[sseEvents.length - 1].seq;
  const more: JobEvent[] = [];
  for await (const ev of followJob(job.id, { baseUrl: api2.httpUrl, fromSeq: lastSeq })) {
    more.push(ev);
    if (more.length >= 3) break;
  }
  assertSeqs(more, lastSeq + 1);
  await fetch(`${api2.httpUrl}/v1/jobs/${job.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  await api2.stop();
});
