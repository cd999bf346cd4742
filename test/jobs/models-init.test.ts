// Models in, over HTTP with a real worker and Redis: POST /v1/models (validated in full, stored in
// Redis), GET /v1/models[/:id], and jobs that start from a model — spec init {fromJob} (continuing
// a finished job's curve) and {model} (fine-tuning on another text) — with every mismatch a 400;
// DELETE /v1/models/:id leaves the jobs submitted from the model their own copy of its weights.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readSafetensors } from '../../src/train/import.js';
import { toSafetensors } from '../../src/train/export.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { Keys, connectRedis } from '../../src/jobs/redis.js';
import { redisReachable, REDIS_URL } from '../support/processes.js';
import { WorkerProcess, deletePrefix, slowSpec, startTestApi, streamEvents, testEnv, TINY, waitFor, type TestApi } from '../support/service.js';

const skip = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;
type Json = any;

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const upload = (url: string, bytes: Buffer, type = 'application/octet-stream') =>
  fetch(`${url}/v1/models`, { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(bytes) });
const perplexities = (events: JobEvent[]) => events.flatMap((e) => (e.type === 'epoch' ? [e.perplexity] : []));

/** A safetensors file rebuilt from another with its tensors and metadata changed. */
function edited(file: Buffer, f: (t: Record<string, { shape: number[]; data: Float32Array }>, m: Record<string, string>) => void): Buffer {
  const { tensors, metadata } = readSafetensors(file);
  f(tensors, metadata);
  return toSafetensors(tensors, metadata);
}

describe('models in: POST /v1/models and spec.init', { skip }, () => {
  const env = testEnv();
  let api: TestApi;
  let worker: WorkerProcess;
  let first: { id: string; events: JobEvent[] };
  let file: Buffer;
  let modelId = '';

  before(async () => {
    [api, worker] = await Promise.all([startTestApi(env), WorkerProcess.start(env, { readyTimeoutMs: 60_000 })]);
    const res = await post(`${api.url}/v1/jobs`, { ...TINY, name: 'source' });
    const id = ((await res.json()) as { id: string }).id;
    first = { id, events: await streamEvents(api.url, id, { timeoutMs: 60_000 }) };
    assert.equal(first.events.at(-1)?.type === 'state' && first.events.at(-1)!.type, 'state');
    file = Buffer.from(await (await fetch(`${api.url}/v1/jobs/${id}/model`)).arrayBuffer());
  });
  after(async () => {
    await worker?.stop();
    await api?.close();
    await deletePrefix(env.QUEUE_PREFIX);
  });

  test('upload: 201 with what the file is; the same file again is 200 with the same id; GET one and the list', async () => {
    const res = await upload(api.url, file);
    assert.equal(res.status, 201);
    const m = (await res.json()) as Json;
    assert.match(m.id, /^m[0-9a-f]{19}$/);
    assert.equal(res.headers.get('location'), `/v1/models/${m.id}`);
    assert.deepEqual(
      { kind: m.kind, numHiddens: m.numHiddens, numLayers: m.numLayers, vocabSize: m.vocabSize, bytes: m.bytes, epoch: m.epoch },
      { kind: 'scratch', numHiddens: TINY.model.numHiddens, numLayers: 1, vocabSize: 28, bytes: file.length, epoch: TINY.train.epochs },
    );
    assert.equal(m.vocab[0], '<unk>');
    modelId = m.id;
    const again = await upload(api.url, file);
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as Json).id, modelId);
    assert.deepEqual(await (await fetch(`${api.url}/v1/models/${modelId}`)).json(), m);
    const list = (await (await fetch(`${api.url}/v1/models`)).json()) as Json;
    assert.deepEqual(
      list.models.map((x: Json) => x.id),
      [modelId],
    );
    assert.equal((await fetch(`${api.url}/v1/models/m0000000000000000000`)).status, 404);
    const bad = await fetch(`${api.url}/v1/models/nope`);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as Json).detail, /id must be a model id/);
  });

  test('upload errors: a clear 400 naming what is wrong, 415 for JSON, nothing stored', async () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('not a model at all'), /not a safetensors file/],
      [edited(file, (_t, m) => delete m.vocab), /__metadata__ has no vocab/],
      [edited(file, (_t, m) => (m.vocab = JSON.stringify(['a', 'b']))), /vocabulary must start with "<unk>"/],
      [edited(file, (t) => (t.W_xi.data[5] = NaN)), /tensor W_xi holds NaN at index 5/],
      [edited(file, (t) => delete t.b_q), /the file has no tensor b_q/],
      [edited(file, (t) => (t.extra = { shape: [1], data: new Float32Array(1) })), /tensors a scratch model does not have: extra/],
      [edited(file, (t) => (t.W_hf = { shape: [8, 9], data: new Float32Array(72) })), /W_hf has shape \[8,9\] in the file, the job's model needs \[8,8\]/],
      [
        edited(file, (t) => {
          for (const k of Object.keys(t)) delete t[k];
          t.foo = { shape: [1], data: new Float32Array(1) };
        }),
        /neither a concise model's tensors/,
      ],
    ];
    for (const [bytes, why] of cases) {
      const res = await upload(api.url, bytes);
      const body = (await res.json()) as Json;
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(body.detail, why);
      assert.equal(body.errors[0].field, 'body');
    }
    const json = await upload(api.url, Buffer.from('{}'), 'application/json');
    assert.equal(json.status, 415);
    assert.equal(((await json.json()) as Json).errors[0].message, 'content-type must be application/octet-stream');
    assert.equal((await upload(api.url, Buffer.alloc(0))).status, 400);
    assert.equal(((await (await fetch(`${api.url}/v1/models`)).json()) as Json).models.length, 1, 'only the good one');
  });

  test('submit with init: unknown sources and architecture mismatches are 400s naming the field', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ fromJob: 'j0000000000000000000' }, 'init.fromJob', /no job j0000000000000000000/],
      [{ model: 'm0000000000000000000' }, 'init.model', /no model m0000000000000000000 \(upload one with POST \/v1\/models\)/],
      [{ fromJob: 'J!' }, 'init.fromJob', /must be an id/],
      [{ fromJob: first.id, model: modelId }, 'init', /init must be \{fromJob/],
    ];
    for (const [init, field, why] of cases) {
      const res = await post(`${api.url}/v1/jobs`, { ...TINY, init });
      const body = (await res.json()) as Json;
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.errors[0].field, field);
      assert.match(body.detail, why);
    }
    const res = await post(`${api.url}/v1/jobs`, { ...TINY, model: { kind: 'concise', numHiddens: 16 }, init: { model: modelId } });
    const body = (await res.json()) as Json;
    assert.equal(res.status, 400);
    assert.deepEqual(
      body.errors.map((e: Json) => e.field),
      ['model.kind', 'model.numHiddens'],
    );
    assert.match(body.detail, /model\.numHiddens is 16 but init's model m[0-9a-f]+ has numHiddens 8/);
  });

  test('init.fromJob continues a finished job: the record says where it started, its first epoch continues the curve', async () => {
    const res = await post(`${api.url}/v1/jobs`, { ...TINY, train: { epochs: 3, seed: 11 }, init: { fromJob: first.id }, name: 'continued' });
    assert.equal(res.status, 201);
    const job = (await res.json()) as Json;
    const before = perplexities(first.events);
    assert.equal(job.init.fromJob, first.id);
    assert.equal(job.init.epoch, TINY.train.epochs);
    assert.equal(job.init.perplexity, before.at(-1));
    assert.deepEqual(job.spec.init, { fromJob: first.id });
    const events = await streamEvents(api.url, job.id, { timeoutMs: 60_000 });
    assert.equal((events.at(-1) as Json).state, 'succeeded');
    const after = perplexities(events);
    assert.equal(after.length, 3, "epochs 1..3 of the new job (the curve's epochs 7..9)");
    // fresh weights start near the vocabulary size (28); the continued job starts where the first ended
    assert.ok(after[0] < before[0] * 0.9, `first epoch ${after[0]} vs the source's first ${before[0]}`);
    assert.ok(Math.abs(after[0] - before.at(-1)!) < 0.15 * before.at(-1)!, `first epoch ${after[0]} vs the source's last ${before.at(-1)}`);
    const log = (await (await fetch(`${api.url}/v1/jobs/${job.id}/logs`)).json()) as Json;
    assert.ok(
      log.lines.some((l: Json) => new RegExp(`started from epoch 1 from job ${first.id} \\(its epoch 6\\)`).test(l.msg)),
      JSON.stringify(log.lines),
    );
  });

  test("init.model fine-tunes on another text: the model's vocabulary, and it generates", async () => {
    const text =
      'the time traveller smiled round at us then still smiling faintly and with his hands deep in his trouser pockets he walked slowly out of the room '.repeat(
        4,
      );
    const res = await post(`${api.url}/v1/jobs`, {
      ...TINY,
      data: { ...TINY.data, corpus: { text } },
      train: { epochs: 2, seed: 3 },
      init: { model: modelId },
      name: 'fine-tune',
    });
    assert.equal(res.status, 201, JSON.stringify(await res.clone().json()));
    const job = (await res.json()) as Json;
    assert.deepEqual(job.init, { model: modelId, epoch: TINY.train.epochs, perplexity: job.init.perplexity });
    const events = await streamEvents(api.url, job.id, { timeoutMs: 60_000 });
    assert.equal((events.at(-1) as Json).state, 'succeeded', JSON.stringify(events.at(-1)));
    // its model has the uploaded model's 28-token vocabulary, not the text's own (fewer letters)
    const out = Buffer.from(await (await fetch(`${api.url}/v1/jobs/${job.id}/model`)).arrayBuffer());
    assert.deepEqual(JSON.parse(readSafetensors(out).metadata.vocab), JSON.parse(readSafetensors(file).metadata.vocab));
    const gen = (await (await post(`${api.url}/v1/jobs/${job.id}/generate`, { prefix: 'time', numChars: 20 })).json()) as Json;
    assert.equal(gen.generated.length, 20);
  });

  test('DELETE of the model: a job submitted from it keeps its copy and trains from it; a submission after is a 400 naming the model, a retry of the first gets its job', async () => {
    // a long job ahead holds the worker (one job at a time): the job from the model starts after the delete
    const blocker = ((await (await post(`${api.url}/v1/jobs`, slowSpec(5000))).json()) as Json).id as string;
    await waitFor('the blocker to run', async () => ((await (await fetch(`${api.url}/v1/jobs/${blocker}`)).json()) as Json).state === 'running', 30_000, 50);
    const spec = { ...TINY, train: { epochs: 2, seed: 5 }, init: { model: modelId }, name: 'from-a-deleted-model', idempotencyKey: 'from-a-deleted-model' };
    const res = await post(`${api.url}/v1/jobs`, spec);
    assert.equal(res.status, 201);
    const job = (await res.json()) as Json;
    const model = (await (await fetch(`${api.url}/v1/models/${modelId}`)).json()) as Json;
    const del = await fetch(`${api.url}/v1/models/${modelId}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), model);
    assert.equal(((await (await fetch(`${api.url}/v1/jobs/${job.id}`)).json()) as Json).state, 'queued', 'not started before the delete');
    const keys = new Keys(env.QUEUE_PREFIX);
    const redis = connectRedis(REDIS_URL);
    try {
      assert.equal(await redis.exists(`${env.QUEUE_PREFIX}:model:${modelId}`), 0, 'the model is gone');
      assert.equal(await redis.exists(keys.init(job.id)), 1, "the job's copy of its weights is not");
    } finally {
      redis.disconnect();
    }
    assert.equal((await fetch(`${api.url}/v1/models/${modelId}`)).status, 404);
    const refused = await post(`${api.url}/v1/jobs`, { ...TINY, init: { model: modelId } });
    const body = (await refused.json()) as Json;
    assert.equal(refused.status, 400, JSON.stringify(body));
    assert.equal(body.errors[0].field, 'init.model');
    assert.match(body.detail, new RegExp(`init\\.model: no model ${modelId}`));
    // a retry of the first submission (same idempotency key, same spec) is still answered by its job;
    // the same key with another spec is refused for the model, as any new submission
    const retry = await post(`${api.url}/v1/jobs`, spec);
    assert.equal(retry.status, 200, await retry.clone().text());
    assert.equal(((await retry.json()) as Json).id, job.id);
    const other = await post(`${api.url}/v1/jobs`, { ...spec, name: 'another spec' });
    assert.equal(other.status, 400);
    assert.equal(((await other.json()) as Json).errors[0].field, 'init.model');

    assert.equal((await post(`${api.url}/v1/jobs/${blocker}/cancel`, {})).status, 200);
    const events = await streamEvents(api.url, job.id, { timeoutMs: 60_000 });
    assert.equal((events.at(-1) as Json).state, 'succeeded', JSON.stringify(events.at(-1)));
    const log = (await (await fetch(`${api.url}/v1/jobs/${job.id}/logs`)).json()) as Json;
    assert.ok(
      log.lines.some((l: Json) => l.msg.includes(`started from epoch 1 from model ${modelId} (its epoch ${TINY.train.epochs})`)),
      JSON.stringify(log.lines),
    );
  });
});
