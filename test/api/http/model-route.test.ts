// A job's model over HTTP (GET /v1/jobs/:id/model, …/model/model.json, …/model/weights.bin),
// trained by a real worker over Redis, read back by the tools users read it with: our importer
// (the safetensors state dict), ONNX Runtime, and tf.loadLayersModel over HTTP.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { readInitModel } from '../../../src/train/import.js';
import { Keys, connectRedis } from '../../../src/jobs/redis.js';
import { redisReachable, REDIS_URL, ROOT } from '../../support/processes.js';
import { WorkerProcess, deletePrefix, startTestApi, streamEvents, testEnv, TINY, type TestApi } from '../../support/service.js';

const skip = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;
const env = testEnv();
let api: TestApi;
let worker: WorkerProcess;
let id: string;

before(async () => {
  if (skip) return;
  [api, worker] = await Promise.all([startTestApi(env), WorkerProcess.start(env, { readyTimeoutMs: 60_000 })]);
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(TINY) });
  id = ((await res.json()) as { id: string }).id;
  await streamEvents(api.url, id, { until: (ev) => ev.type === 'state' && ev.state === 'succeeded', timeoutMs: 60_000 });
});
after(async () => {
  if (skip) return;
  await worker?.stop();
  await api?.close();
  await deletePrefix(env.QUEUE_PREFIX);
});

test("safetensors (the default): a download of the latest checkpoint, with the epoch; it loads as the job's model", { skip }, async () => {
  const res = await fetch(`${api.url}/v1/jobs/${id}/model`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-model-epoch'), String(TINY.train.epochs));
  assert.equal(res.headers.get('content-disposition'), `attachment; filename="${id}-epoch${TINY.train.epochs}.safetensors"`);
  const buf = Buffer.from(await res.arrayBuffer());
  const job = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as { spec: { model: { kind: 'scratch'; numHiddens: number; numLayers: number } } };
  const vocab = JSON.parse((await import('../../../src/train/import.js')).readSafetensors(buf).metadata.vocab);
  const init = readInitModel(buf, {
    kind: job.spec.model.kind,
    numHiddens: job.spec.model.numHiddens,
    numLayers: job.spec.model.numLayers,
    vocabSize: vocab.length,
  });
  assert.deepEqual(init.vocab, vocab);
  assert.equal(init.weights.W_xi.shape[1], TINY.model.numHiddens);
});

test('onnx: ONNX Runtime runs it', { skip }, async () => {
  const res = await fetch(`${api.url}/v1/jobs/${id}/model?format=onnx`);
  assert.equal(res.status, 200);
  const session = await ort.InferenceSession.create(Buffer.from(await res.arrayBuffer()));
  const H = TINY.model.numHiddens;
  const zeros = () => new ort.Tensor('float32', new Float32Array(H), [1, 1, H]);
  const out = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.of(3n, 1n, 4n), [3, 1]), h0_l0: zeros(), c0_l0: zeros() });
  assert.equal(out.logits.dims[0], 3);
  assert.ok([...(out.logits.data as Float32Array)].every(Number.isFinite));
  await session.release();
});

test('tfjs: tf.loadLayersModel loads …/model/model.json over HTTP (weights.bin beside it)', { skip }, async () => {
  const model = await tf.loadLayersModel(`${api.url}/v1/jobs/${id}/model/model.json`);
  const V = (model.inputs[0].shape as number[])[2];
  const x = tf.oneHot(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), V).toFloat();
  const y = model.predict(x) as tf.Tensor;
  assert.deepEqual(y.shape, [1, 3, V]);
  tf.dispose([x, y]);
  model.dispose();
});

test('errors: an unknown format (400 naming it), a job without a checkpoint (409), an unknown job (404)', { skip }, async () => {
  const bad = await fetch(`${api.url}/v1/jobs/${id}/model?format=pt`);
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(await bad.json()), /format must be 'safetensors', 'onnx' or 'checkpoint'/);
  // a job that cannot start (epochs beyond what this worker will reach quickly): cancel it first, then no checkpoint
  const sub = await fetch(`${api.url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...TINY, train: { epochs: 3, seed: 2 }, name: 'never-trained' }),
  });
  const queued = ((await sub.json()) as { id: string }).id;
  await fetch(`${api.url}/v1/jobs/${queued}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const none = await fetch(`${api.url}/v1/jobs/${queued}/model`);
  if (none.status !== 200) {
    // cancelled before the worker trained its first epoch (usually): no checkpoint
    assert.equal(none.status, 409);
    assert.match(((await none.json()) as { detail: string }).detail, /has no checkpoint/);
  }
  assert.equal((await fetch(`${api.url}/v1/jobs/j0000000000000000000/model`)).status, 404);
});

test('a checkpoint of a format version this build does not read is not damage: 409 saying so, and it is kept', { skip }, async () => {
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  let original: Buffer;
  try {
    original = (await redis.hgetBuffer(keys.ckpt(id), 'data'))!;
    const newer = Buffer.from(original);
    newer.writeUInt32LE(99, 8); // a version from the future
    await redis.hset(keys.ckpt(id), 'data', newer);
    // a fresh api process (the other one has the model cached)
    const fresh = await startTestApi(env);
    try {
      const res = await fetch(`${fresh.url}/v1/jobs/${id}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prefix: 'time', numChars: 5 }),
      });
      assert.equal(res.status, 409);
      assert.match(((await res.json()) as { detail: string }).detail, /cannot be used by this api process \(unsupported checkpoint version 99/);
    } finally {
      await fresh.close();
    }
    // still there: the same epoch, the same bytes
    assert.deepEqual(await redis.hget(keys.ckpt(id), 'epoch'), String(TINY.train.epochs));
    assert.equal((await redis.hgetBuffer(keys.ckpt(id), 'data'))!.readUInt32LE(8), 99);
  } finally {
    await redis.hset(keys.ckpt(id), 'data', original!);
    redis.disconnect();
  }
});

test('lstm-trainer export <jobId>: the same files from the CLI (safetensors, tfjs into a directory); a job id and --checkpoint are exclusive', {
  skip,
}, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-export-cli-'));
  // (not spawnSync: the api answering it runs in this process)
  const cli = (args: string[]) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'export', ...args], {
        cwd: ROOT,
        env: { ...process.env, API_KEYS: '' },
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (status) => resolve({ status, stderr }));
    });
  try {
    const file = path.join(dir, 'm.safetensors');
    const r = await cli([id, '--url', api.url, '-o', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`exported job ${id} at epoch ${TINY.train.epochs} as safetensors`));
    const direct = Buffer.from(await (await fetch(`${api.url}/v1/jobs/${id}/model`)).arrayBuffer());
    assert.ok(readFileSync(file).equals(direct), 'the same bytes as the route');
    const t = await cli([id, '--url', api.url, '--format', 'tfjs', '-o', path.join(dir, 'tfjs')]);
    assert.equal(t.status, 0, t.stderr);
    assert.ok(existsSync(path.join(dir, 'tfjs', 'model.json')) && existsSync(path.join(dir, 'tfjs', 'weights.bin')));
    const both = await cli([id, '--checkpoint', 'x.ckpt', '-o', path.join(dir, 'x')]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /export takes a job id or --checkpoint FILE \(one of them\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the dashboard's Download menu (api.downloadModel): the route's bytes under the server's file names; tfjs as its two files", { skip }, async () => {
  const { createApi } = await import('../../../src/api/dashboard/public/api.js');
  const client = createApi({ getKey: () => '', base: `${api.url}/` });
  const st = await client.downloadModel(id, 'safetensors');
  assert.equal(st.epoch, TINY.train.epochs);
  assert.deepEqual(
    st.files.map((f) => f.name),
    [`${id}-epoch${TINY.train.epochs}.safetensors`],
  );
  const direct = Buffer.from(await (await fetch(`${api.url}/v1/jobs/${id}/model`)).arrayBuffer());
  assert.ok(Buffer.from(await st.files[0].blob.arrayBuffer()).equals(direct));
  const onnx = await client.downloadModel(id, 'onnx');
  assert.deepEqual(
    onnx.files.map((f) => f.name),
    [`${id}-epoch${TINY.train.epochs}.onnx`],
  );
  const tfjs = await client.downloadModel(id, 'tfjs');
  assert.deepEqual(
    tfjs.files.map((f) => f.name),
    ['model.json', 'weights.bin'],
  );
  assert.equal(JSON.parse(await tfjs.files[0].blob.text()).weightsManifest[0].paths[0], 'weights.bin');
  const missing = await client.downloadModel('j0000000000000000000', 'checkpoint').catch((e: unknown) => e);
  assert.equal((missing as { status: number }).status, 404);
});
