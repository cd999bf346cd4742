// Owners of uploads, on a real api process (HTTP + gRPC) and a real worker: with API_KEYS=alice:…,
// bob:… and ADMIN_KEYS=root:…, an uploaded corpus or model belongs to every key that uploaded its
// bytes. A key lists and reads its own only (the admin all), another key's answers exactly as a
// missing one, a job spec naming another key's corpus or init.model is refused as a missing id, and
// DELETE of a corpus or model owned by two keys takes one key's ownership away, the bytes only with
// the last (or with an admin's DELETE).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Keys, connectRedis } from '../../src/jobs/redis.js';
import { readSafetensors } from '../../src/train/import.js';
import { toSafetensors } from '../../src/train/export.js';
import { REDIS_URL, TINY, WorkerProcess, deletePrefix, slowSpec, testEnv, waitFor } from '../support/service.js';
import { bearer, call, trainerClient, type Client } from '../support/grpc-client.js';
import { ApiProcess } from '../support/faults.js';

const ALICE = 'alice-key-0123456789';
const BOB = 'bob-key-9876543210';
const ROOT = 'root-key-admin-000';
const env = testEnv({ REDIS_URL, API_KEYS: `alice:${ALICE},bob:${BOB}`, ADMIN_KEYS: `root:${ROOT}`, SHUTDOWN_DRAIN_MS: '0', AUTH_FAIL_LIMIT: '0' });
const NO_CORPUS = 'f'.repeat(64); // well formed, no such corpus
const NO_MODEL = 'm0000000000000000000';
const TEXT = 'the time traveller for so it will be convenient to speak of him was expounding a recondite matter to us\n';

let api: ApiProcess;
let worker: WorkerProcess;
let grpcClient: Client;
let modelFile: Buffer;

type Res = { status: number; text: string; json: () => any };

async function http(method: string, path: string, key: string, body?: unknown, type = 'application/json'): Promise<Res> {
  const raw = typeof body === 'string' || Buffer.isBuffer(body);
  const res = await fetch(`${api.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': type }) },
    body: body === undefined ? undefined : raw ? new Uint8Array(Buffer.from(body as string | Buffer)) : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

const uploadCorpus = (key: string, text: string) => http('POST', '/v1/corpora', key, text, 'text/plain; charset=utf-8');
const uploadModel = (key: string, file: Buffer) => http('POST', '/v1/models', key, file, 'application/octet-stream');
const corpusIds = async (key: string) => ((await http('GET', '/v1/corpora', key)).json().corpora as { id: string }[]).map((c) => c.id);
const modelIds = async (key: string) => ((await http('GET', '/v1/models', key)).json().models as { id: string }[]).map((m) => m.id);
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Another key's object answers as a missing one: the same status and body, but for the id. */
function sameAsMissing(other: Res, none: Res, id: string, noId: string, status: number): void {
  assert.equal(other.status, status, other.text);
  assert.equal(other.text.replaceAll(id, 'ID'), none.text.replaceAll(noId, 'ID'), "another key's object answers exactly as a missing one");
}

async function rpc(method: string, req: object, key: string): Promise<{ code: number; details: string; res?: any }> {
  try {
    return { code: grpc.status.OK, details: '', res: await call(grpcClient, method, req, bearer(key)) };
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { code: err.code, details: err.details };
  }
}

before(async () => {
  api = await ApiProcess.start(env);
  worker = await WorkerProcess.start(env);
  grpcClient = trainerClient(api.grpcPort);
  // a real model file: a finished job's weights as safetensors
  const r = await http('POST', '/v1/jobs', ALICE, { ...TINY, train: { ...TINY.train, epochs: 1 } });
  assert.equal(r.status, 201, r.text);
  const id = r.json().id as string;
  await waitFor('the source job to succeed', async () => (await http('GET', `/v1/jobs/${id}`, ALICE)).json().state === 'succeeded', 120_000, 200);
  const m = await fetch(`${api.httpUrl}/v1/jobs/${id}/model?format=safetensors`, { headers: { authorization: `Bearer ${ALICE}` } });
  assert.equal(m.status, 200);
  modelFile = Buffer.from(await m.arrayBuffer());
});

after(async () => {
  grpcClient?.close();
  await worker?.stop();
  await api?.stop();
  await deletePrefix(env.QUEUE_PREFIX);
});

test('corpora: the uploader reads and lists it, another key gets 404 as for no corpus, the admin sees all', async () => {
  const text = `alice only. ${TEXT}`.repeat(20);
  const up = await uploadCorpus(ALICE, text);
  assert.equal(up.status, 201, up.text);
  const id = up.json().id as string;
  assert.equal(id, sha256(text));
  assert.equal((await http('GET', `/v1/corpora/${id}`, ALICE)).status, 200);
  assert.equal((await http('GET', `/v1/corpora/${id}`, ROOT)).status, 200);
  sameAsMissing(await http('GET', `/v1/corpora/${id}`, BOB), await http('GET', `/v1/corpora/${NO_CORPUS}`, BOB), id, NO_CORPUS, 404);
  assert.ok((await corpusIds(ALICE)).includes(id));
  assert.ok((await corpusIds(ROOT)).includes(id));
  const bobs = await http('GET', '/v1/corpora', BOB);
  assert.ok(!(await corpusIds(BOB)).includes(id));
  assert.ok(!bobs.text.includes('alice only'), "another key's preview is listed");
  // DELETE of another key's corpus: 404 as for none, and it stays
  sameAsMissing(await http('DELETE', `/v1/corpora/${id}`, BOB), await http('DELETE', `/v1/corpora/${NO_CORPUS}`, BOB), id, NO_CORPUS, 404);
  assert.equal((await http('GET', `/v1/corpora/${id}`, ALICE)).status, 200);
});

test('corpora: the same bytes from two keys are one corpus with two owners; DELETE takes one owner away, the text goes with the last', async () => {
  const text = `shared by two. ${TEXT}`.repeat(20);
  const a = await uploadCorpus(ALICE, text);
  assert.equal(a.status, 201, a.text);
  const id = a.json().id as string;
  // new to bob: 201, created, and bob's own upload time (nothing tells bob that alice sent it first)
  await new Promise((r) => setTimeout(r, 20));
  const b = await uploadCorpus(BOB, text);
  assert.equal(b.status, 201, b.text);
  assert.equal(b.json().id, id);
  assert.equal(b.json().created, true);
  assert.ok(b.json().createdAt > a.json().createdAt, `${b.json().createdAt} vs ${a.json().createdAt}`);
  assert.equal((await uploadCorpus(BOB, text)).status, 200);
  assert.ok((await corpusIds(BOB)).includes(id));
  assert.equal((await http('DELETE', `/v1/corpora/${id}`, ALICE)).status, 200);
  assert.equal((await http('GET', `/v1/corpora/${id}`, ALICE)).status, 404);
  assert.ok(!(await corpusIds(ALICE)).includes(id));
  // still bob's, whole: a job of bob's trains on it
  assert.equal((await http('GET', `/v1/corpora/${id}`, BOB)).status, 200);
  const job = await http('POST', '/v1/jobs', BOB, { ...TINY, data: { ...TINY.data, corpus: { id } }, train: { ...TINY.train, epochs: 1 } });
  assert.equal(job.status, 201, job.text);
  const jobId = job.json().id as string;
  await waitFor("bob's job to finish", async () => ['succeeded', 'failed'].includes((await http('GET', `/v1/jobs/${jobId}`, BOB)).json().state), 60_000, 100);
  assert.equal((await http('GET', `/v1/jobs/${jobId}`, BOB)).json().state, 'succeeded');
  assert.equal((await http('DELETE', `/v1/corpora/${id}`, BOB)).status, 200);
  // the last owner gone: gone for the admin too
  assert.equal((await http('GET', `/v1/corpora/${id}`, ROOT)).status, 404);
  assert.ok(!(await corpusIds(ROOT)).includes(id));
});

test("corpora: DELETE is refused (409) while the caller's own job uses it; another owner still leaves; the text stays for the job", async (t) => {
  const text = `in use. ${TEXT}`.repeat(200);
  const id = (await uploadCorpus(ALICE, text)).json().id as string;
  assert.equal((await uploadCorpus(BOB, text)).status, 201);
  const job = await http('POST', '/v1/jobs', ALICE, slowSpec(5000, { data: { maxTokens: 12000, batchSize: 8, numSteps: 10, corpus: { id } } }));
  assert.equal(job.status, 201, job.text);
  const jobId = job.json().id as string;
  // a failed assertion must not leave the worker busy for the later tests
  t.after(() => http('POST', `/v1/jobs/${jobId}/cancel`, ROOT, {}));
  const refused = await http('DELETE', `/v1/corpora/${id}`, ALICE);
  assert.equal(refused.status, 409, refused.text);
  assert.ok(refused.text.includes(jobId), refused.text);
  // bob's ownership goes; alice's job (and alice) keep the text
  assert.equal((await http('DELETE', `/v1/corpora/${id}`, BOB)).status, 200);
  assert.equal((await http('GET', `/v1/corpora/${id}`, BOB)).status, 404);
  assert.equal((await http('GET', `/v1/corpora/${id}`, ALICE)).status, 200);
  assert.equal((await http('POST', `/v1/jobs/${jobId}/cancel`, ALICE, {})).status, 200);
  await waitFor('the job to stop', async () => (await http('GET', `/v1/jobs/${jobId}`, ALICE)).json().state === 'cancelled', 30_000, 100);
  assert.equal((await http('DELETE', `/v1/corpora/${id}`, ALICE)).status, 200);
  assert.equal((await http('GET', `/v1/corpora/${id}`, ROOT)).status, 404);
});

test("corpora: a spec naming another key's corpus is refused exactly as a missing id; owner and admin submit", async () => {
  const text = `for a job. ${TEXT}`.repeat(20);
  const id = (await uploadCorpus(ALICE, text)).json().id as string;
  const spec = (cid: string) => ({ ...TINY, data: { ...TINY.data, corpus: { id: cid } }, train: { ...TINY.train, epochs: 1 } });
  sameAsMissing(await http('POST', '/v1/jobs', BOB, spec(id)), await http('POST', '/v1/jobs', BOB, spec(NO_CORPUS)), id, NO_CORPUS, 400);
  // in an experiment too (each point is prepared as a submission)
  const exp = await http('POST', '/v1/experiments', BOB, { name: 'x', base: spec(id), grid: { 'train.seed': [1, 2] } });
  assert.equal(exp.status, 400, exp.text);
  assert.equal((await http('POST', '/v1/jobs', ALICE, spec(id))).status, 201);
  assert.equal((await http('POST', '/v1/jobs', ROOT, spec(id))).status, 201);
});

test('models over HTTP: own and admin read and list it, another key 404 as for no model; the same file is new to another key', async () => {
  const up = await uploadModel(ALICE, modelFile);
  assert.ok([200, 201].includes(up.status), up.text);
  const id = up.json().id as string;
  assert.equal((await http('GET', `/v1/models/${id}`, ALICE)).status, 200);
  assert.equal((await http('GET', `/v1/models/${id}`, ROOT)).status, 200);
  sameAsMissing(await http('GET', `/v1/models/${id}`, BOB), await http('GET', `/v1/models/${NO_MODEL}`, BOB), id, NO_MODEL, 404);
  assert.ok((await modelIds(ALICE)).includes(id));
  assert.ok((await modelIds(ROOT)).includes(id));
  assert.ok(!(await modelIds(BOB)).includes(id));

  // init.model of another key's model: 400 as for a missing model
  const spec = (mid: string) => ({ ...TINY, train: { ...TINY.train, epochs: 1 }, init: { model: mid } });
  sameAsMissing(await http('POST', '/v1/jobs', BOB, spec(id)), await http('POST', '/v1/jobs', BOB, spec(NO_MODEL)), id, NO_MODEL, 400);
  assert.equal((await http('POST', '/v1/jobs', ALICE, spec(id))).status, 201);
  assert.equal((await http('POST', '/v1/jobs', ROOT, spec(id))).status, 201);

  // bob uploads the same file: new to bob (201), then his to read and start from
  const b = await uploadModel(BOB, modelFile);
  assert.equal(b.status, 201, b.text);
  assert.equal(b.json().id, id);
  assert.equal((await http('GET', `/v1/models/${id}`, BOB)).status, 200);
  assert.ok((await modelIds(BOB)).includes(id));
  assert.equal((await http('POST', '/v1/jobs', BOB, spec(id))).status, 201);
});

test('models over gRPC: GetModel NOT_FOUND for another key as for no model; UploadModel makes the caller an owner', async () => {
  // a model file of its own: the same weights with other metadata bytes would be another id, so take a fresh job's
  const r = await http('POST', '/v1/jobs', BOB, { ...TINY, train: { ...TINY.train, epochs: 1, seed: 11 } });
  const jobId = r.json().id as string;
  await waitFor('the job to succeed', async () => (await http('GET', `/v1/jobs/${jobId}`, BOB)).json().state === 'succeeded', 60_000, 100);
  const file = Buffer.from(
    await (await fetch(`${api.httpUrl}/v1/jobs/${jobId}/model?format=safetensors`, { headers: { authorization: `Bearer ${BOB}` } })).arrayBuffer(),
  );
  const up = await rpc('UploadModel', { data: file }, BOB);
  assert.equal(up.code, grpc.status.OK, up.details);
  assert.equal(up.res.created, true);
  const id = up.res.model.id as string;
  assert.equal((await rpc('GetModel', { model_id: id }, BOB)).code, grpc.status.OK);
  assert.equal((await rpc('GetModel', { model_id: id }, ROOT)).code, grpc.status.OK);
  const other = await rpc('GetModel', { model_id: id }, ALICE);
  const none = await rpc('GetModel', { model_id: NO_MODEL }, ALICE);
  assert.equal(other.code, grpc.status.NOT_FOUND);
  assert.equal(other.details.replaceAll(id, 'ID'), none.details.replaceAll(NO_MODEL, 'ID'));
  assert.ok(!(await modelIds(ALICE)).includes(id));
  const again = await rpc('UploadModel', { data: file }, ALICE);
  assert.equal(again.code, grpc.status.OK, again.details);
  assert.equal(again.res.created, true);
  assert.equal((await rpc('GetModel', { model_id: id }, ALICE)).code, grpc.status.OK);
  assert.equal((await rpc('UploadModel', { data: file }, ALICE)).res.created, false);
});

test("models: DELETE by one of two owners keeps it for the other; the last owner's DELETE removes the file, its owners and its list entry; an admin's removes it for all", async () => {
  // the same weights under other metadata: another file, so a model of this test's own
  const own = (note: string) => {
    const { tensors, metadata } = readSafetensors(modelFile);
    return toSafetensors(tensors, { ...metadata, note });
  };
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  const stored = async (mid: string) => ({
    model: await redis.exists(`${env.QUEUE_PREFIX}:model:${mid}`),
    owners: await redis.exists(keys.modelOwners(mid)),
    listed: (await redis.zscore(`${env.QUEUE_PREFIX}:models`, mid)) !== null,
  });
  try {
    const file = own('two owners');
    const a = await uploadModel(ALICE, file);
    assert.equal(a.status, 201, a.text);
    const id = a.json().id as string;
    await new Promise((r) => setTimeout(r, 20));
    const b = await uploadModel(BOB, file);
    assert.equal(b.status, 201, b.text);
    // bob's DELETE: bob's view of it (his upload time), and only his ownership goes
    const bobs = await http('DELETE', `/v1/models/${id}`, BOB);
    assert.equal(bobs.status, 200, bobs.text);
    assert.deepEqual(bobs.json(), b.json());
    sameAsMissing(await http('GET', `/v1/models/${id}`, BOB), await http('GET', `/v1/models/${NO_MODEL}`, BOB), id, NO_MODEL, 404);
    sameAsMissing(await http('DELETE', `/v1/models/${id}`, BOB), await http('DELETE', `/v1/models/${NO_MODEL}`, BOB), id, NO_MODEL, 404);
    assert.ok(!(await modelIds(BOB)).includes(id));
    assert.equal((await http('GET', `/v1/models/${id}`, ALICE)).status, 200);
    assert.ok((await modelIds(ALICE)).includes(id));
    assert.deepEqual(await stored(id), { model: 1, owners: 1, listed: true });
    // alice, the last owner: everything of it goes (for the admin too)
    assert.equal((await http('DELETE', `/v1/models/${id}`, ALICE)).status, 200);
    assert.equal((await http('GET', `/v1/models/${id}`, ROOT)).status, 404);
    assert.deepEqual(await stored(id), { model: 0, owners: 0, listed: false });

    // an admin's DELETE, over gRPC: gone for both owners at once
    const shared = own('admin deletes');
    const sid = (await uploadModel(ALICE, shared)).json().id as string;
    assert.equal((await uploadModel(BOB, shared)).status, 201);
    // another key's model is NOT_FOUND as a missing one, and ListModels lists the caller's own
    const mine = own('alice only');
    const aid = (await uploadModel(ALICE, mine)).json().id as string;
    const other = await rpc('DeleteModel', { model_id: aid }, BOB);
    const none = await rpc('DeleteModel', { model_id: NO_MODEL }, BOB);
    assert.equal(other.code, grpc.status.NOT_FOUND);
    assert.equal(other.details.replaceAll(aid, 'ID'), none.details.replaceAll(NO_MODEL, 'ID'));
    const listed = async (key: string) => ((await rpc('ListModels', { limit: 100 }, key)).res.models as { id: string }[]).map((m) => m.id);
    assert.ok((await listed(ALICE)).includes(aid));
    assert.ok(!(await listed(BOB)).includes(aid));
    assert.ok((await listed(ROOT)).includes(aid));
    const admin = await rpc('DeleteModel', { model_id: sid }, ROOT);
    assert.equal(admin.code, grpc.status.OK, admin.details);
    assert.equal(admin.res.id, sid);
    for (const key of [ALICE, BOB, ROOT]) assert.equal((await http('GET', `/v1/models/${sid}`, key)).status, 404);
    assert.deepEqual(await stored(sid), { model: 0, owners: 0, listed: false });
    assert.equal((await rpc('DeleteModel', { model_id: aid }, ALICE)).code, grpc.status.OK);
    assert.ok(!(await listed(ALICE)).includes(aid));
  } finally {
    redis.disconnect();
  }
});
