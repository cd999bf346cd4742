// Owners of uploads, on a real api process (HTTP + gRPC) and a real worker: with API_KEYS=alice:…,
// bob:… and ADMIN_KEYS=root:…, an uploaded corpus or model belongs to every key that uploaded its
// bytes. A key lists and reads its own only (the admin all), another key's answers exactly as a
// missing one, a job spec naming another key's corpus or init.model is refused as a missing id, and
// DELETE of a corpus or model owned by two keys takes one key's ownership away, the bytes only with
// the last (or with an admin's DELETE). The stores themselves, with another request run at the point
// where it could land in between: an upload and a delete never lose an owner's object or leave an
// owners hash behind for one that is gone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { ChainableCommander } from 'ioredis';
import { CorpusStore } from '../../src/jobs/corpora.js';
import { FailedPreconditionError } from '../../src/jobs/errors.js';
import { ModelStore } from '../../src/jobs/models.js';
import type { Caller } from '../../src/jobs/owners.js';
import { Keys, connectRedis, type RedisClient } from '../../src/jobs/redis.js';
import { withScripts } from '../../src/jobs/scripts.js';
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

/** The same weights under other metadata: another file, so a model of the test's own. */
function ownModel(note: string): Buffer {
  const { tensors, metadata } = readSafetensors(modelFile);
  return toSafetensors(tensors, { ...metadata, note });
}

/**
 * `redis`, on which `run` (another client's request) happens once at a chosen point of a store's
 * work: before or after the first transaction that queues one of the commands `at` names, or the
 * first call of a script command it names (e.g. lstmDeleteModel) — where a request of another api
 * could land.
 */
function interleaved(redis: RedisClient, at: string[], when: 'before' | 'after', run: () => Promise<unknown>): RedisClient {
  const base = withScripts(redis);
  let armed = true;
  const step = async <T>(hit: boolean, go: () => Promise<T>): Promise<T> => {
    if (!hit || !armed) return go();
    armed = false;
    if (when === 'before') await run();
    const out = await go();
    if (when === 'after') await run();
    return out;
  };
  const transaction = (tx: ChainableCommander): ChainableCommander => {
    const queued = new Set<string>();
    const proxy: ChainableCommander = new Proxy(tx, {
      get(t, name) {
        const v = Reflect.get(t, name, t);
        if (typeof v !== 'function') return v;
        if (name === 'exec')
          return () =>
            step(
              [...queued].some((c) => at.includes(c)),
              () => v.call(t),
            );
        return (...args: unknown[]) => {
          queued.add(String(name));
          const r = v.apply(t, args);
          return r === t ? proxy : r;
        };
      },
    });
    return proxy;
  };
  return new Proxy(base, {
    get(t, name) {
      const v = Reflect.get(t, name, t);
      if (typeof v !== 'function') return v;
      if (name === 'multi') return (...args: unknown[]) => transaction(v.apply(t, args));
      if (typeof name === 'string' && at.includes(name)) return (...args: unknown[]) => step(true, () => v.apply(t, args));
      return v.bind(t);
    },
  });
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
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  const stored = async (mid: string) => ({
    model: await redis.exists(`${env.QUEUE_PREFIX}:model:${mid}`),
    owners: await redis.exists(keys.modelOwners(mid)),
    listed: (await redis.zscore(`${env.QUEUE_PREFIX}:models`, mid)) !== null,
  });
  try {
    const file = ownModel('two owners');
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
    const shared = ownModel('admin deletes');
    const sid = (await uploadModel(ALICE, shared)).json().id as string;
    assert.equal((await uploadModel(BOB, shared)).status, 201);
    // another key's model is NOT_FOUND as a missing one, and ListModels lists the caller's own
    const mine = ownModel('alice only');
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

const alice: Caller = { key: 'alice-fingerprint', name: 'alice', admin: false };
const bob: Caller = { key: 'bob-fingerprint', name: 'bob', admin: false };

test("models, one step each: an upload by another key just before the last owner's delete keeps the model for it; the last owner's delete just after another key's upload does too", async () => {
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  const models = new ModelStore(redis, keys);
  const stored = async (mid: string) => ({
    data: (await redis.hexists(`${env.QUEUE_PREFIX}:model:${mid}`, 'data')) === 1,
    owners: await redis.hkeys(keys.modelOwners(mid)),
    listed: (await redis.zscore(`${env.QUEUE_PREFIX}:models`, mid)) !== null,
  });
  try {
    // alice, its only owner, deletes; bob's upload lands before the delete removes anything
    const file = ownModel('delete races an upload');
    const { model } = await models.put(file, new Date(), alice);
    let bobs: Awaited<ReturnType<ModelStore['put']>> | undefined;
    const racing = new ModelStore(
      interleaved(redis, ['del', 'lstmDeleteModel'], 'before', async () => {
        bobs = await models.put(file, new Date(), bob);
      }),
      keys,
    );
    assert.deepEqual(await racing.delete(model.id, alice), model, "the delete answers alice's view, as always");
    assert.equal(bobs?.created, true);
    assert.deepEqual(await stored(model.id), { data: true, owners: [bob.key], listed: true }, 'bob was answered 201: the model stays, his');
    assert.deepEqual(await models.get(model.id, bob), bobs?.model);
    assert.equal(await models.get(model.id, alice), null);

    // bob uploads alice's model; alice's delete (its last owner until then) lands right after bob's write
    const other = ownModel('upload races a delete');
    const { model: m2 } = await models.put(other, new Date(), alice);
    const late = new ModelStore(
      interleaved(redis, ['zadd'], 'after', () => models.delete(m2.id, alice)),
      keys,
    );
    const up = await late.put(other, new Date(), bob);
    assert.equal(up.created, true);
    assert.deepEqual(await stored(m2.id), { data: true, owners: [bob.key], listed: true }, 'bob was answered 201: the model stays, his');
    assert.deepEqual(await models.get(m2.id, bob), up.model);

    // bob, now the last owner: nothing of it is left, no owners hash, no list entry
    await models.delete(m2.id, bob);
    assert.deepEqual(await stored(m2.id), { data: false, owners: [], listed: false });
    assert.equal(await redis.exists(`${env.QUEUE_PREFIX}:model:${m2.id}`, keys.modelOwners(m2.id)), 0);
  } finally {
    redis.disconnect();
  }
});

test("corpora, one step each: an upload by another key just before the last owner's delete keeps the corpus; a delete just before an upload's owner add leaves no owners hash; a new corpus's owner is stored with it", async () => {
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  const corpora = new CorpusStore(redis, keys);
  const noJobs = async () => null;
  const P = env.QUEUE_PREFIX;
  const upload = (store: CorpusStore, text: string, as: Caller) => store.upload(Readable.from([Buffer.from(text, 'utf8')]), 1 << 20, as);
  const stored = async (id: string) => ({
    meta: await redis.exists(`${P}:corpus:${id}`),
    text: await redis.exists(`${P}:corpus:${id}:text`),
    owners: await redis.hkeys(keys.corpusOwners(id)),
    listed: (await redis.zscore(`${P}:corpora`, id)) !== null,
  });
  try {
    // alice, its only owner, deletes; bob's upload of the same text lands before anything is removed
    const text = `delete races an upload. ${TEXT}`.repeat(5);
    const { corpus } = await upload(corpora, text, alice);
    let bobs: Awaited<ReturnType<CorpusStore['upload']>> | undefined;
    const racing = new CorpusStore(
      interleaved(redis, ['del', 'lstmDeleteCorpus'], 'before', async () => {
        bobs = await upload(corpora, text, bob);
      }),
      keys,
    );
    assert.deepEqual(await racing.delete(corpus.id, noJobs, alice), corpus, "the delete answers alice's view, as always");
    assert.equal(bobs?.created, true);
    assert.deepEqual(await stored(corpus.id), { meta: 1, text: 1, owners: [bob.key], listed: true }, 'bob was answered 201: the corpus stays, his');
    assert.deepEqual(await corpora.get(corpus.id, bob), bobs?.corpus);
    assert.equal(await corpora.readText(corpus.id), text);

    // bob uploads alice's text (it exists): alice's delete, its last owner, lands before bob is added
    const gone = `upload races a delete. ${TEXT}`.repeat(5);
    const { corpus: c2 } = await upload(corpora, gone, alice);
    const late = new CorpusStore(
      interleaved(redis, ['hsetnx', 'lstmAddOwner'], 'before', () => corpora.delete(c2.id, noJobs, alice)),
      keys,
    );
    await assert.rejects(upload(late, gone, bob), (e) => e instanceof FailedPreconditionError && /deleted while it was uploaded/.test(e.message));
    assert.deepEqual(await stored(c2.id), { meta: 0, text: 0, owners: [], listed: false }, 'no owners hash left for a corpus that is gone');

    // a new text: bob's upload stores it; alice uploads it and deletes it right after bob's commit
    const fresh = `a new corpus races a delete. ${TEXT}`.repeat(5);
    const id = createHash('sha256').update(fresh).digest('hex');
    let aliceLeft = false;
    const first = new CorpusStore(
      interleaved(redis, ['rename'], 'after', async () => {
        assert.equal((await upload(corpora, fresh, alice)).created, true);
        await corpora.delete(id, noJobs, alice);
        aliceLeft = true;
      }),
      keys,
    );
    const up = await upload(first, fresh, bob);
    assert.ok(aliceLeft);
    assert.equal(up.created, true);
    assert.deepEqual(await stored(id), { meta: 1, text: 1, owners: [bob.key], listed: true }, 'bob was answered 201: the corpus stays, his');
    assert.deepEqual(await corpora.get(id, bob), up.corpus);

    // bob, now the last owner: every key of it goes (record, text, jobs set, owners) and its list entry
    await corpora.addJob(id, 'j-finished');
    await corpora.delete(id, noJobs, bob);
    assert.equal(await redis.exists(`${P}:corpus:${id}`, `${P}:corpus:${id}:text`, `${P}:corpus:${id}:jobs`, keys.corpusOwners(id)), 0);
    assert.equal(await redis.zscore(`${P}:corpora`, id), null);
    assert.deepEqual(await redis.keys(`${P}:corpus-upload:*`), []);
  } finally {
    redis.disconnect();
  }
});

test("corpora: the last owner's delete is refused (409) while another key's job uses the text, and changes nothing; the delete after it finishes removes it", async () => {
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  const corpora = new CorpusStore(redis, keys);
  try {
    const text = `used by another key's job. ${TEXT}`.repeat(5);
    const { corpus } = await corpora.upload(Readable.from([Buffer.from(text, 'utf8')]), 1 << 20, alice);
    await corpora.addJob(corpus.id, 'j-of-another-key');
    // the job is not alice's (she reads no state), but it runs
    let running = true;
    const stateOf = async (_job: string, as?: Caller) => (as ? null : running ? 'running' : 'succeeded');
    await assert.rejects(
      corpora.delete(corpus.id, stateOf, alice),
      (e) => e instanceof FailedPreconditionError && /1 queued or running job\(s\) of other keys/.test(e.message),
    );
    assert.deepEqual(await corpora.get(corpus.id, alice), corpus, "still alice's, whole");
    assert.deepEqual(await redis.hkeys(keys.corpusOwners(corpus.id)), [alice.key]);
    running = false;
    assert.deepEqual(await corpora.delete(corpus.id, stateOf, alice), corpus);
    assert.equal(await redis.exists(`${env.QUEUE_PREFIX}:corpus:${corpus.id}`, keys.corpusOwners(corpus.id)), 0);
  } finally {
    redis.disconnect();
  }
});
