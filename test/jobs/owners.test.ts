// Owners, both ways, on a real api process (HTTP + gRPC) and a real worker: with API_KEYS=alice:…,
// bob:… and ADMIN_KEYS=root:…, every per-job HTTP route and every per-job RPC answers the owner and
// the admin, and answers another key exactly as it answers a job that does not exist. The routes
// and RPCs are taken from the app's route table and the proto, so one added later without an entry
// here fails this file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { buildHttpApp } from '../../src/api/http/app.js';
import { lstmTrainerService } from '../../src/api/grpc/proto.js';
import { loadConfig } from '../../src/jobs/config.js';
import { RedisJobService } from '../../src/jobs/service.js';
import { REDIS_URL, TINY, WorkerProcess, deletePrefix, testEnv, waitFor } from '../support/service.js';
import { bearer, call, collect, trainerClient, type Client } from '../support/grpc-client.js';
import { ApiProcess } from '../support/faults.js';

const ALICE = 'alice-key-0123456789';
const BOB = 'bob-key-9876543210';
const ROOT = 'root-key-admin-000';
const BARE = 'bare-key-without-a-name';
const env = testEnv({ REDIS_URL, API_KEYS: `alice:${ALICE},bob:${BOB},${BARE}`, ADMIN_KEYS: `root:${ROOT}`, SHUTDOWN_DRAIN_MS: '0', AUTH_FAIL_LIMIT: '0' });
const NOBODY_ID = 'j000000000aaaaaaaaaa'; // well formed, no such job

let api: ApiProcess;
let worker: WorkerProcess;
let grpcClient: Client;
let routes: { method: string; url: string }[];
let aliceJob: string;
let bobJob: string;

async function http(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; text: string; json: () => unknown }> {
  const res = await fetch(`${api.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function stateOf(id: string): Promise<string> {
  return ((await http('GET', `/v1/jobs/${id}`, ROOT)).json() as { state: string }).state;
}

async function submit(key: string, spec: object): Promise<string> {
  const r = await http('POST', '/v1/jobs', key, spec);
  assert.equal(r.status, 201, r.text);
  return (r.json() as { id: string }).id;
}

before(async () => {
  const config = loadConfig(env);
  const service = new RedisJobService({ config });
  const app = await buildHttpApp({ service, apiKeys: config.apiKeys });
  await app.ready();
  routes = app.routeList.filter((r) => !r.public);
  await app.close();
  await service.close();

  api = await ApiProcess.start(env);
  worker = await WorkerProcess.start(env);
  grpcClient = trainerClient(api.grpcPort);
  aliceJob = await submit(ALICE, { ...TINY, name: 'alice-run' });
  bobJob = await submit(BOB, { ...TINY, name: 'bob-run' });
  for (const id of [aliceJob, bobJob]) await waitFor(`job ${id} to succeed`, async () => (await stateOf(id)) === 'succeeded', 120_000, 200);
});

after(async () => {
  grpcClient?.close();
  await worker?.stop();
  await api?.stop();
  await deletePrefix(env.QUEUE_PREFIX);
});

/** Every per-job HTTP route, with what the owner gets. */
const HTTP_CASES: { method: string; url: string; path: (id: string) => string; body?: unknown; own: number }[] = [
  { method: 'GET', url: '/v1/jobs/:id', path: (id) => `/v1/jobs/${id}`, own: 200 },
  { method: 'GET', url: '/v1/jobs/:id/epochs', path: (id) => `/v1/jobs/${id}/epochs`, own: 200 },
  { method: 'GET', url: '/v1/jobs/:id/logs', path: (id) => `/v1/jobs/${id}/logs`, own: 200 },
  { method: 'GET', url: '/v1/jobs/:id/events', path: (id) => `/v1/jobs/${id}/events`, own: 200 },
  { method: 'POST', url: '/v1/jobs/:id/generate', path: (id) => `/v1/jobs/${id}/generate`, body: { prefix: 'time ', numChars: 5 }, own: 200 },
  { method: 'GET', url: '/v1/jobs/:id/model', path: (id) => `/v1/jobs/${id}/model?format=safetensors`, own: 200 },
  { method: 'GET', url: '/v1/jobs/:id/model/model.json', path: (id) => `/v1/jobs/${id}/model/model.json`, own: 200 },
  { method: 'GET', url: '/v1/jobs/:id/model/weights.bin', path: (id) => `/v1/jobs/${id}/model/weights.bin`, own: 200 },
  // a finished job cannot be cancelled (409): it exists for its owner, it does not for anyone else
  { method: 'POST', url: '/v1/jobs/:id/cancel', path: (id) => `/v1/jobs/${id}/cancel`, body: {}, own: 409 },
];
/** Per-job routes tested in their own tests below (they change the job). */
const ELSEWHERE = ['DELETE /v1/jobs/:id'];

test('every per-job HTTP route is in the table', () => {
  const perJob = routes.filter((r) => r.url.startsWith('/v1/jobs/:id') && r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`);
  const covered = [...HTTP_CASES.map((c) => `${c.method} ${c.url}`), ...ELSEWHERE];
  assert.deepEqual(
    perJob.filter((r) => !covered.includes(r)),
    [],
    'per-job routes without an owners case',
  );
});

for (const c of HTTP_CASES) {
  test(`${c.method} ${c.url}: own ${c.own}, other key 404 as for no job, admin ${c.own}`, async () => {
    const own = await http(c.method, c.path(aliceJob), ALICE, c.body);
    assert.equal(own.status, c.own, own.text.slice(0, 300));
    const admin = await http(c.method, c.path(aliceJob), ROOT, c.body);
    assert.equal(admin.status, c.own, admin.text.slice(0, 300));
    const other = await http(c.method, c.path(aliceJob), BOB, c.body);
    const none = await http(c.method, c.path(NOBODY_ID), BOB, c.body);
    assert.equal(other.status, 404);
    assert.equal(other.text.replaceAll(aliceJob, 'ID'), none.text.replaceAll(NOBODY_ID, 'ID'), "another key's job answers exactly as no job");
    // and the other way round
    assert.equal((await http(c.method, c.path(bobJob), ALICE, c.body)).status, 404);
    assert.equal((await http(c.method, c.path(bobJob), BOB, c.body)).status, c.own);
  });
}

test("GET /v1/jobs lists the caller's own jobs; the admin sees all; records show the owner name, never the key", async () => {
  const ids = async (key: string, q = '') => ((await http('GET', `/v1/jobs${q}`, key)).json() as { jobs: { id: string; owner?: string }[] }).jobs;
  const a = await ids(ALICE);
  assert.deepEqual(
    a.map((j) => j.id),
    [aliceJob],
  );
  assert.equal(a[0].owner, 'alice');
  assert.deepEqual(
    (await ids(BOB)).map((j) => j.id),
    [bobJob],
  );
  assert.deepEqual((await ids(ROOT)).map((j) => j.id).sort(), [aliceJob, bobJob].sort());
  assert.deepEqual(
    (await ids(ROOT, '?name=bob-run')).map((j) => j.id),
    [bobJob],
  );
  assert.deepEqual(
    (await ids(ALICE, '?name=bob-run')).map((j) => j.id),
    [],
  );
  assert.deepEqual(
    (await ids(BARE)).map((j) => j.id),
    [],
  );
  const whole = (await http('GET', `/v1/jobs/${aliceJob}`, ROOT)).text + (await http('GET', '/v1/jobs', ROOT)).text;
  for (const k of [ALICE, BOB, ROOT]) assert.ok(!whole.includes(k), 'a key appears in a record');
  // an unnamed key is shown by its fingerprint
  const bare = await submit(BARE, { ...TINY, train: { ...TINY.train, epochs: 1 } });
  const view = (await http('GET', `/v1/jobs/${bare}`, BARE)).json() as { owner: string };
  assert.match(view.owner, /^own:[0-9a-f]{12}$/);
});

test("idempotency keys are the owner's: the same key from two owners makes two jobs; another spec is a conflict", async () => {
  const spec = { ...TINY, train: { ...TINY.train, epochs: 1 }, idempotencyKey: 'same-key' };
  const a1 = await http('POST', '/v1/jobs', ALICE, spec);
  const a2 = await http('POST', '/v1/jobs', ALICE, spec);
  const b1 = await http('POST', '/v1/jobs', BOB, spec);
  assert.deepEqual([a1.status, a2.status, b1.status], [201, 200, 201]);
  const [ja, ja2, jb] = [a1, a2, b1].map((r) => (r.json() as { id: string }).id);
  assert.equal(ja, ja2);
  assert.notEqual(ja, jb);
  const conflict = await http('POST', '/v1/jobs', ALICE, { ...spec, train: { ...spec.train, seed: 99 } });
  assert.equal(conflict.status, 409);
  assert.match(conflict.text, /idempotencyKey/);
});

test('DELETE /v1/jobs/:id: another key gets 404 and the job stays; the owner deletes it; then 404 for all', async () => {
  const id = await submit(ALICE, { ...TINY, train: { ...TINY.train, epochs: 1 } });
  await waitFor('done', async () => (await stateOf(id)) === 'succeeded', 60_000, 100);
  const other = await http('DELETE', `/v1/jobs/${id}`, BOB);
  const none = await http('DELETE', `/v1/jobs/${NOBODY_ID}`, BOB);
  assert.equal(other.status, 404);
  assert.equal(other.text.replaceAll(id, 'ID'), none.text.replaceAll(NOBODY_ID, 'ID'));
  assert.equal((await http('GET', `/v1/jobs/${id}`, ALICE)).status, 200);
  assert.equal((await http('DELETE', `/v1/jobs/${id}`, ALICE)).status, 200);
  for (const k of [ALICE, ROOT]) assert.equal((await http('GET', `/v1/jobs/${id}`, k)).status, 404);
  assert.equal((await http('DELETE', `/v1/jobs/${id}`, ALICE)).status, 404);
  // the admin deletes anyone's
  const b = await submit(BOB, { ...TINY, train: { ...TINY.train, epochs: 1 } });
  assert.equal((await http('DELETE', `/v1/jobs/${b}`, ROOT)).status, 200);
  assert.equal((await http('GET', `/v1/jobs/${b}`, BOB)).status, 404);
});

test("init.fromJob: another key's job cannot be started from; the answer is the one for no such job", async () => {
  const spec = (from: string) => ({ ...TINY, train: { ...TINY.train, epochs: 1 }, init: { fromJob: from } });
  const other = await http('POST', '/v1/jobs', BOB, spec(aliceJob));
  const none = await http('POST', '/v1/jobs', BOB, spec(NOBODY_ID));
  assert.equal(other.status, 400, other.text);
  assert.equal(other.text.replaceAll(aliceJob, 'ID'), none.text.replaceAll(NOBODY_ID, 'ID'));
  const own = await http('POST', '/v1/jobs', ALICE, spec(aliceJob));
  assert.equal(own.status, 201, own.text);
  assert.equal((await http('POST', '/v1/jobs', ROOT, spec(bobJob))).status, 201);
});

test('/metrics: per-job series only for admin keys', async () => {
  const r = await http('GET', '/metrics', BOB);
  assert.equal(r.status, 200);
  assert.ok(!/^lstm_job_tokens_per_second\{/m.test(r.text));
});

// ---- gRPC -------------------------------------------------------------------------------------

type Outcome = { code: number; details: string };
const OK = 0;

async function rpc(method: string, req: object, key: string): Promise<Outcome> {
  const stream = ['WatchJob', 'GenerateStream', 'ExportModel'].includes(method);
  if (stream) {
    const r = await collect(grpcClient[method](req, bearer(key)) as grpc.ClientReadableStream<unknown>);
    return r.error ? { code: r.error.code, details: r.error.details } : { code: OK, details: '' };
  }
  try {
    await call(grpcClient, method, req, bearer(key));
    return { code: OK, details: '' };
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: err.code, details: err.details };
  }
}

const RPC_CASES: { method: string; req: (id: string) => object; own: number }[] = [
  { method: 'GetJob', req: (id) => ({ job_id: id }), own: OK },
  { method: 'WatchJob', req: (id) => ({ job_id: id }), own: OK },
  { method: 'Generate', req: (id) => ({ job_id: id, prefix: 'time ', num_chars: 5 }), own: OK },
  { method: 'GenerateStream', req: (id) => ({ job_id: id, prefix: 'time ', num_chars: 5 }), own: OK },
  { method: 'CancelJob', req: (id) => ({ job_id: id }), own: grpc.status.FAILED_PRECONDITION },
  { method: 'ExportModel', req: (id) => ({ job_id: id, format: 'MODEL_FORMAT_SAFETENSORS' }), own: OK },
];
/**
 * Not per-job (SubmitJob, ListJobs; the model RPCs: test/jobs/owners-uploads.test.ts) or changing
 * the job (DeleteJob): their own tests.
 */
const RPC_ELSEWHERE = [
  'SubmitJob',
  'ListJobs',
  'DeleteJob',
  'UploadModel',
  'GetModel',
  'DeleteModel',
  'ListModels',
  // corpora are not jobs: their RPCs are tested in test/api/grpc/corpora.test.ts and owners-uploads.test.ts
  'UploadCorpus',
  'ListCorpora',
  'GetCorpus',
  'DeleteCorpus',
  // experiments are not jobs: another key's is NOT_FOUND in test/api/grpc/e2e.test.ts
  'CreateExperiment',
  'GetExperiment',
];

test('every RPC is in the table', () => {
  const methods = Object.values(lstmTrainerService()).map((m) => (m as { originalName?: string; path: string }).path.split('/').pop()!);
  assert.deepEqual(
    methods.filter((m) => !RPC_CASES.some((c) => c.method === m) && !RPC_ELSEWHERE.includes(m)),
    [],
  );
});

for (const c of RPC_CASES) {
  test(`gRPC ${c.method}: own ${grpc.status[c.own] ?? 'OK'}, other key NOT_FOUND as for no job, admin as owner`, async () => {
    assert.equal((await rpc(c.method, c.req(aliceJob), ALICE)).code, c.own);
    assert.equal((await rpc(c.method, c.req(aliceJob), ROOT)).code, c.own);
    const other = await rpc(c.method, c.req(aliceJob), BOB);
    const none = await rpc(c.method, c.req(NOBODY_ID), BOB);
    assert.equal(other.code, grpc.status.NOT_FOUND);
    assert.equal(other.details.replaceAll(aliceJob, 'ID'), none.details.replaceAll(NOBODY_ID, 'ID'));
    assert.equal((await rpc(c.method, c.req(bobJob), ALICE)).code, grpc.status.NOT_FOUND);
    assert.equal((await rpc(c.method, c.req(bobJob), BOB)).code, c.own);
  });
}

test('gRPC ListJobs: own jobs only, admin all; SubmitJob records the owner', async () => {
  const list = async (key: string, req: object = {}) =>
    ((await call(grpcClient, 'ListJobs', req, bearer(key))) as { jobs: { id: string; owner?: string }[] }).jobs;
  const mine = await list(BOB);
  assert.ok(mine.every((j) => j.owner === 'bob'));
  assert.ok(mine.some((j) => j.id === bobJob));
  assert.ok(!mine.some((j) => j.id === aliceJob));
  const all = (await list(ROOT)).map((j) => j.id);
  assert.ok(all.includes(aliceJob) && all.includes(bobJob));
  assert.deepEqual(
    (await list(ROOT, { name: 'alice-run' })).map((j) => j.id),
    [aliceJob],
  );
  const sub = (await call(
    grpcClient,
    'SubmitJob',
    { spec: { name: 'grpc-bob', train: { epochs: 1 }, model: { num_hiddens: 8 }, data: { max_tokens: 2000, batch_size: 4, num_steps: 5 } } },
    bearer(BOB),
  )) as { job: { id: string; owner: string } };
  assert.equal(sub.job.owner, 'bob');
  assert.equal((await rpc('GetJob', { job_id: sub.job.id }, ALICE)).code, grpc.status.NOT_FOUND);
});

test('gRPC DeleteJob: another key NOT_FOUND and the job stays; the owner deletes it', async () => {
  const id = await submit(BOB, { ...TINY, train: { ...TINY.train, epochs: 1 } });
  assert.equal((await rpc('DeleteJob', { job_id: id }, ALICE)).code, grpc.status.NOT_FOUND);
  assert.equal((await rpc('GetJob', { job_id: id }, BOB)).code, OK);
  const r = (await call(grpcClient, 'DeleteJob', { job_id: id }, bearer(BOB))) as { job_id: string };
  assert.equal(r.job_id, id);
  assert.equal((await rpc('GetJob', { job_id: id }, ROOT)).code, grpc.status.NOT_FOUND);
});
