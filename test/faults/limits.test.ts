// Resource limits with two real api processes on one Redis prefix (as behind a load balancer):
// (a) a job's estimated memory / token-epochs / TFLOP over the configured caps is refused at
// submission naming the fields that drive it; (b) the per-client submission rate limit is one
// counter across both processes and both APIs (429 / RESOURCE_EXHAUSTED with Retry-After);
// (c) a body over BODY_LIMIT_BYTES is 413; (d) a client's waiting jobs are bounded (429).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ERRORS_TRAILER } from '../../src/api/grpc/index.js';
import { estimateJob } from '../../src/jobs/limits.js';
import { parseJobSpec } from '../../src/train/spec.js';
import { REDIS_URL, TINY, deletePrefix, testEnv } from '../support/service.js';
import { bearer, callError, call, trainerClient, type Client } from '../support/grpc-client.js';
import { ApiProcess } from '../support/faults.js';

const K_RATE = 'key-rate-aaaaaaaaaaaa';
const K_QUEUE = 'key-queue-bbbbbbbbbbb';
const K_CAPS = 'key-caps-cccccccccccc';
const RATE = 8;
const env = testEnv({
  REDIS_URL,
  API_KEYS: [K_RATE, K_QUEUE, K_CAPS].join(','),
  RATE_LIMIT_SUBMITS: String(RATE),
  RATE_LIMIT_WINDOW_SECONDS: '300', // no window ends during the test
  MAX_QUEUED_PER_CLIENT: '3',
  MAX_JOB_MEMORY_MB: '256',
  MAX_JOB_TOKEN_EPOCHS: '2000000',
  MAX_JOB_TFLOP: '10',
  BODY_LIMIT_BYTES: '65536',
  LOG_LEVEL: 'warn',
  SHUTDOWN_DRAIN_MS: '0',
});
let a: ApiProcess;
let b: ApiProcess;
let ga: Client;
let gb: Client;

before(async () => {
  [a, b] = await Promise.all([ApiProcess.start(env), ApiProcess.start(env)]);
  ga = trainerClient(a.grpcPort);
  gb = trainerClient(b.grpcPort);
});
after(async () => {
  ga?.close();
  gb?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await deletePrefix(env.QUEUE_PREFIX);
});

async function post(api: ApiProcess, key: string, body: unknown): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${api.httpUrl}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json().catch(() => undefined) };
}

const fieldsOf = (p: { errors?: { field: string }[] }) => (p.errors ?? []).map((e) => e.field).sort();
const trailerFields = (e: grpc.ServiceError) => (JSON.parse(e.metadata.get(ERRORS_TRAILER)[0].toString()) as { field: string }[]).map((x) => x.field).sort();

test('the estimates grow with what drives them', () => {
  const small = parseJobSpec(TINY);
  const est = estimateJob(small, 2000, 28);
  assert.equal(est.tokenEpochs, 2000 * 6);
  assert.equal(est.params, 4 * 8 * (28 + 8 + 1) + 8 * 28 + 28);
  const wide = estimateJob(parseJobSpec({ ...TINY, model: { kind: 'scratch', numHiddens: 512 } }), 2000, 28);
  assert.ok(wide.memoryMb > est.memoryMb && wide.teraflops > est.teraflops * 100);
  const batch = estimateJob(parseJobSpec({ ...TINY, data: { ...TINY.data, batchSize: 512, numSteps: 512 } }), 2000, 28);
  assert.ok(batch.memoryMb > est.memoryMb * 2);
});

test('(a) a job over the caps is refused at submission, naming the fields that drive the estimate (HTTP 400 and gRPC INVALID_ARGUMENT)', async () => {
  const memory = { model: { numHiddens: 1024 }, data: { maxTokens: 40000, batchSize: 64, numSteps: 512 }, train: { epochs: 1 } };
  const r1 = await post(a, K_CAPS, memory);
  assert.equal(r1.status, 400, JSON.stringify(r1.body));
  assert.deepEqual(fieldsOf(r1.body), ['data.batchSize', 'data.numSteps', 'model.numHiddens']);
  assert.match(r1.body.detail, /MiB of worker memory \(MAX_JOB_MEMORY_MB = 256\)/);

  const tokenEpochs = {}; // the d2l default: 10,000 tokens × 500 epochs
  const r2 = await post(b, K_CAPS, tokenEpochs);
  assert.equal(r2.status, 400, JSON.stringify(r2.body));
  assert.deepEqual(fieldsOf(r2.body), ['data.maxTokens', 'train.epochs']);
  assert.match(r2.body.detail, /10000 tokens × 500 epochs = 5,000,000 exceeds MAX_JOB_TOKEN_EPOCHS = 2,000,000/);

  const flops = { model: { numHiddens: 1024 }, data: { maxTokens: 1000, batchSize: 4, numSteps: 5 }, train: { epochs: 1000 } };
  const e3 = await callError(
    ga,
    'SubmitJob',
    { spec: { model: { num_hiddens: 1024 }, data: { max_tokens: 1000, batch_size: 4, num_steps: 5 }, train: { epochs: 1000 } } },
    bearer(K_CAPS),
  );
  assert.equal(grpc.status[e3.code], 'INVALID_ARGUMENT', e3.details);
  assert.deepEqual(trailerFields(e3), ['data.maxTokens', 'model.numHiddens', 'train.epochs']);
  assert.match(e3.details, /TFLOP \(MAX_JOB_TFLOP = 10\)/);
  const r3 = await post(a, K_CAPS, flops);
  assert.equal(r3.status, 400);
  assert.deepEqual(fieldsOf(r3.body), ['data.maxTokens', 'model.numHiddens', 'train.epochs']);

  // a custom corpus: its text is the field that drives the token count
  const text = 'the time machine '.repeat(200);
  const r4 = await post(b, K_CAPS, { data: { corpus: { text }, batchSize: 4, numSteps: 5 }, train: { epochs: 1000 } });
  assert.equal(r4.status, 400);
  assert.deepEqual(fieldsOf(r4.body), ['data.corpus.text', 'train.epochs']);

  // under the caps: accepted
  assert.equal((await post(a, K_CAPS, TINY)).status, 201);
});

test('(b) the submission rate limit is one counter per client across both api processes and both APIs', async () => {
  // every submission counts, valid or not: invalid specs (400) use up the budget as well
  const invalid = { model: { numHiddens: -1 } };
  for (let i = 0; i < RATE; i++) {
    if (i % 4 === 0) assert.equal((await post(a, K_RATE, invalid)).status, 400);
    if (i % 4 === 1) assert.equal((await post(b, K_RATE, invalid)).status, 400);
    if (i % 4 === 2)
      assert.equal(grpc.status[(await callError(ga, 'SubmitJob', { spec: { model: { num_hiddens: -1 } } }, bearer(K_RATE))).code], 'INVALID_ARGUMENT');
    if (i % 4 === 3)
      assert.equal(grpc.status[(await callError(gb, 'SubmitJob', { spec: { model: { num_hiddens: -1 } } }, bearer(K_RATE))).code], 'INVALID_ARGUMENT');
  }
  for (const api of [a, b]) {
    const r = await post(api, K_RATE, TINY);
    assert.equal(r.status, 429, JSON.stringify(r.body));
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 300, `Retry-After ${r.headers.get('retry-after')}`);
    assert.match(r.body.detail, new RegExp(`at most ${RATE} submissions per 300 s`));
  }
  for (const g of [ga, gb]) {
    const e = await callError(g, 'SubmitJob', { spec: {} }, bearer(K_RATE));
    assert.equal(grpc.status[e.code], 'RESOURCE_EXHAUSTED', e.details);
    const retry = Number(e.metadata.get('retry-after')[0]);
    assert.ok(retry >= 1 && retry <= 300, `retry-after trailer ${e.metadata.get('retry-after')}`);
  }
  // another client is not affected
  assert.equal((await post(b, K_CAPS, TINY)).status, 201);
});

test('(c) a body over BODY_LIMIT_BYTES is 413 with a problem', async () => {
  const r = await post(a, K_CAPS, JSON.stringify({ data: { corpus: { text: 'a'.repeat(70_000) } } }));
  assert.equal(r.status, 413);
  assert.equal(r.body.status, 413);
  assert.match(r.body.detail, /larger than 65536 bytes/);
});

test('(d) a client may have at most MAX_QUEUED_PER_CLIENT jobs waiting (429 / RESOURCE_EXHAUSTED); a started or cancelled one frees a place', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await post(i % 2 ? b : a, K_QUEUE, { ...TINY, idempotencyKey: `q${i}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    ids.push(r.body.id);
  }
  const full = await post(b, K_QUEUE, TINY);
  assert.equal(full.status, 429, JSON.stringify(full.body));
  assert.ok(Number(full.headers.get('retry-after')) >= 1);
  assert.match(full.body.detail, /already has 3 jobs waiting/);
  const e = await callError(ga, 'SubmitJob', { spec: { train: { epochs: 3 } } }, bearer(K_QUEUE));
  assert.equal(grpc.status[e.code], 'RESOURCE_EXHAUSTED');
  // the same idempotency key is the same job, not a new one
  const again = await post(a, K_QUEUE, { ...TINY, idempotencyKey: 'q1' });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, ids[1]);
  // cancelling one frees a place
  const c = await fetch(`${b.httpUrl}/v1/jobs/${ids[0]}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${K_QUEUE}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(c.status, 200);
  const res = await call(
    gb,
    'SubmitJob',
    { spec: { train: { epochs: 3 }, model: { num_hiddens: 8 }, data: { max_tokens: 2000, batch_size: 4, num_steps: 5 } } },
    bearer(K_QUEUE),
  );
  assert.equal(res.created, true);
});

test('without API keys the client is its address: HTTP and gRPC from one host share the limit', async () => {
  const open = { ...env, API_KEYS: '', RATE_LIMIT_SUBMITS: '3', QUEUE_PREFIX: `${env.QUEUE_PREFIX}ip` };
  const c = await ApiProcess.start(open);
  const g = trainerClient(c.grpcPort);
  try {
    const bad = { model: { numHiddens: 0 } };
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${c.httpUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bad) });
      assert.equal(res.status, 400);
    }
    assert.equal(grpc.status[(await callError(g, 'SubmitJob', { spec: { model: { num_hiddens: 0 } } })).code], 'INVALID_ARGUMENT');
    const e = await callError(g, 'SubmitJob', { spec: {} });
    assert.equal(grpc.status[e.code], 'RESOURCE_EXHAUSTED', e.details);
    const res = await fetch(`${c.httpUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
  } finally {
    g.close();
    await c.stop();
    await deletePrefix(open.QUEUE_PREFIX);
  }
});
