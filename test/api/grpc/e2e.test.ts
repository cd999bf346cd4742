// The gRPC API end to end: a real @grpc/grpc-js client -> startGrpcServer -> the Redis-backed
// JobService (RedisJobService) -> BullMQ -> a real `lstm-trainer worker` child process training
// tiny jobs, under a Redis key prefix of its own (deleted afterwards). Experiments: gRPC and HTTP
// on one Redis-backed service with two keys, no worker (their jobs stay queued).
import { KeyRing } from '../../../src/jobs/owners.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { ERRORS_TRAILER, startGrpcServer, type GrpcServer } from '../../../src/api/grpc/index.js';
import { MODEL_CHUNK_BYTES } from '../../../src/api/grpc/handlers.js';
import { buildHttpApp } from '../../../src/api/http/app.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { RedisJobService } from '../../../src/jobs/service.js';
import { REDIS_URL, WorkerProcess, redisReachable, deletePrefix } from '../../support/processes.js';
import { bearer, call, callError, collect, healthClient, ReflectionClient, trainerClient, type Client } from '../../support/grpc-client.js';

const S = grpc.status;
const KEY = 'grpc-e2e-key-91c2';

const skip = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;

function env(prefix: string): Record<string, string | undefined> {
  return { ...process.env, REDIS_URL, QUEUE_PREFIX: prefix, CHECKPOINT_EVERY: '5', API_KEYS: '' };
}

/** A job that trains in well under a second on the native engine, and a longer one to cancel. */
const TINY = {
  model: { kind: 'MODEL_KIND_SCRATCH', num_hiddens: 16 },
  data: { max_tokens: 2000, batch_size: 8, num_steps: 10 },
  train: { epochs: 12, seed: 7 },
  report: { predict_every: 4, prefixes: ['time traveller'], num_preds: 10 },
  name: 'grpc-e2e-tiny',
};

/** Reads a stream until `n` messages arrived, then cancels it (a client that goes away). */
function firstN<T>(stream: grpc.ClientReadableStream<T>, n: number): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    stream.on('data', (m: T) => {
      got.push(m);
      if (got.length === n) {
        stream.cancel();
        resolve(got);
      }
    });
    stream.on('error', (e: grpc.ServiceError) => {
      if (e.code !== S.CANCELLED) reject(e);
    });
    stream.on('end', () => (got.length < n ? reject(new Error(`stream ended after ${got.length} messages`)) : undefined));
  });
}

describe('gRPC end to end (Redis, BullMQ, a worker process)', { skip }, () => {
  const prefix = `grpctest-${process.pid}-${Date.now().toString(36)}`;
  let service: RedisJobService;
  let open: GrpcServer;
  let authed: GrpcServer;
  let worker: WorkerProcess | undefined;
  let c: Client;
  let tinyId = '';

  before(async () => {
    service = new RedisJobService({ config: loadConfig(env(prefix)) });
    [open, authed, worker] = await Promise.all([
      startGrpcServer({ service, host: '127.0.0.1', port: 0 }),
      // an admin key: the jobs here are submitted through the keyless server, so they have no owner,
      // and only admin keys see ownerless jobs (src/jobs/owners.ts)
      startGrpcServer({ service, host: '127.0.0.1', port: 0, apiKeys: [KEY], keyRing: new KeyRing([{ key: KEY, admin: true }]) }),
      WorkerProcess.start(env(prefix), { readyTimeoutMs: 60_000 }),
    ]);
    c = trainerClient(open.port);
  });

  after(async () => {
    c?.close();
    await worker?.stop(10_000);
    await Promise.allSettled([open?.close(), authed?.close()]);
    await service?.close();
    await deletePrefix(prefix);
  });

  test('SubmitJob -> WatchJob streams every epoch to succeeded; a reconnect from a seq has no gap or duplicate', async () => {
    const { job, created } = await call(c, 'SubmitJob', { spec: TINY });
    assert.equal(created, true);
    assert.equal(job.state, 'JOB_STATE_QUEUED');
    assert.equal(job.spec.model.num_hiddens, 16);
    assert.equal(job.spec.train.lr, 1, 'unset fields take the d2l default');
    // the cost estimate the caps judged, in the answer
    assert.ok(
      job.estimate && job.estimate.teraflops > 0 && job.estimate.token_epochs === job.estimate.tokens * job.spec.train.epochs && job.estimate.memory_mb > 64,
      JSON.stringify(job.estimate),
    );
    tinyId = job.id;

    // Watch, drop the connection after 3 events, resume from the last seq seen.
    const head = await firstN<{ seq: number }>(c.WatchJob({ job_id: job.id }), 3);
    const rest = await collect(c.WatchJob({ job_id: job.id, from_seq: head.at(-1)!.seq }));
    assert.equal(rest.error, undefined, String(rest.error?.details));
    const all = [...head, ...rest.messages] as any[];
    assert.deepEqual(
      all.map((m) => m.seq),
      all.map((_, i) => i + 1),
      'seq 1, 2, 3, ... across the reconnect',
    );

    const epochs = all.filter((m) => m.event === 'epoch').map((m) => m.epoch);
    assert.deepEqual(
      epochs.map((e) => e.epoch),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
      'each epoch exactly once',
    );
    for (const e of epochs) {
      assert.equal(e.epochs, 12);
      assert.ok(e.perplexity > 1 && e.perplexity < 40, `perplexity ${e.perplexity}`);
      assert.ok(e.tokens_per_sec > 0);
    }
    assert.ok(epochs[11].perplexity < epochs[0].perplexity, 'training lowers perplexity');
    assert.deepEqual(
      epochs.filter((e) => e.samples).map((e) => e.epoch),
      [4, 8, 12],
      'samples every predict_every epochs',
    );
    assert.match(epochs[3].samples[0].text, /^time traveller.{10}$/);

    const states = all.filter((m) => m.event === 'state').map((m) => m.state.state);
    assert.equal(states[0], 'JOB_STATE_QUEUED');
    assert.ok(states.includes('JOB_STATE_RUNNING'));
    const last = all.at(-1);
    assert.equal(last.state.state, 'JOB_STATE_SUCCEEDED');
    assert.equal(last.state.summary.epochs, 12);
    assert.equal(last.state.summary.final_perplexity, epochs[11].perplexity);

    const view = await call(c, 'GetJob', { job_id: job.id });
    assert.equal(view.state, 'JOB_STATE_SUCCEEDED');
    assert.equal(view.checkpoint_epoch, 12);
    assert.equal(view.last_seq, last.seq);
    assert.ok(view.engine);
    assert.deepEqual(view.last_epochs.at(-1).epoch, 12);
  });

  test('Generate and GenerateStream (greedy) give the same text from the checkpoint', async () => {
    assert.ok(tinyId, 'needs the first test');
    const unary = await call(c, 'Generate', { job_id: tinyId, prefix: 'time traveller', num_chars: 30, temperature: 0 });
    assert.equal(unary.prefix, 'time traveller');
    assert.equal(unary.generated.length, 30);
    assert.equal(unary.text, unary.prefix + unary.generated);
    assert.match(unary.generated, /^[a-z ]+$/);
    const streamed = await collect(c.GenerateStream({ job_id: tinyId, prefix: 'time traveller', num_chars: 30, temperature: 0 }));
    assert.equal(streamed.error, undefined);
    assert.ok(streamed.messages.length > 1, 'streamed in several chunks');
    assert.equal(streamed.messages.map((m) => m.text).join(''), unary.text);
  });

  test("ExportModel streams the HTTP download's bytes in ≤ 64 KiB chunks, every format; errors as NOT_FOUND / INVALID_ARGUMENT", async () => {
    assert.ok(tinyId, 'needs the first test');
    const http: FastifyInstance = await buildHttpApp({ service, logger: false });
    try {
      const url = await http.listen({ host: '127.0.0.1', port: 0 });
      /** The stream reassembled: the info, then each file's header and its bytes. */
      const exported = async (format?: string) => {
        const r = await collect(c.ExportModel(format ? { job_id: tinyId, format } : { job_id: tinyId }));
        assert.equal(r.error, undefined, r.error?.details);
        const [first, ...rest] = r.messages;
        assert.equal(first.part, 'info');
        const files: { header: any; data: Buffer; chunks: number }[] = [];
        for (const m of rest) {
          if (m.part === 'file') files.push({ header: m.file, data: Buffer.alloc(0), chunks: 0 });
          else {
            assert.equal(m.part, 'data');
            assert.ok(m.data.length > 0 && m.data.length <= MODEL_CHUNK_BYTES, `a chunk of ${m.data.length} bytes`);
            files.at(-1)!.data = Buffer.concat([files.at(-1)!.data, m.data]);
            files.at(-1)!.chunks++;
          }
        }
        assert.equal(files.length, first.info.files);
        assert.equal(
          files.reduce((n, f) => n + f.data.length, 0),
          first.info.total_bytes,
        );
        for (const f of files) assert.equal(f.data.length, f.header.size);
        return { info: first.info, files };
      };
      for (const [format, query, ext] of [
        [undefined, '', 'safetensors'],
        ['MODEL_FORMAT_ONNX', '?format=onnx', 'onnx'],
        ['MODEL_FORMAT_CHECKPOINT', '?format=checkpoint', 'ckpt'],
      ] as const) {
        const { info, files } = await exported(format);
        assert.equal(info.format, format ?? 'MODEL_FORMAT_SAFETENSORS');
        assert.equal(info.epoch, 12);
        const res = await fetch(`${url}/v1/jobs/${tinyId}/model${query}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-model-epoch'), '12');
        assert.equal(res.headers.get('content-disposition'), `attachment; filename="${files[0].header.filename}"`);
        assert.equal(files[0].header.filename, `${tinyId}-epoch12.${ext}`);
        assert.ok(files[0].data.equals(Buffer.from(await res.arrayBuffer())), `${ext}: the same bytes as the HTTP download`);
      }
      const tfjs = await exported('MODEL_FORMAT_TFJS');
      assert.deepEqual(
        tfjs.files.map((f) => [f.header.name, f.header.content_type]),
        [
          ['model.json', 'application/json'],
          ['weights.bin', 'application/octet-stream'],
        ],
      );
      for (const f of tfjs.files) {
        const res = await fetch(`${url}/v1/jobs/${tinyId}/model/${f.header.name}`);
        assert.ok(f.data.equals(Buffer.from(await res.arrayBuffer())), `${f.header.name}: the same bytes as the HTTP route`);
      }
    } finally {
      await http.close();
    }
    const missing = await collect(c.ExportModel({ job_id: 'j000000000aaaaaaaaaa' }));
    assert.equal(missing.error?.code, S.NOT_FOUND);
    assert.equal(missing.messages.length, 0);
    const badId = await collect(c.ExportModel({ job_id: `${tinyId}:ckpt` }));
    assert.equal(badId.error?.code, S.INVALID_ARGUMENT);
    assert.match(badId.error!.details, /jobId/);
    const badFormat = await collect(c.ExportModel({ job_id: tinyId, format: 9 }));
    assert.equal(badFormat.error?.code, S.INVALID_ARGUMENT);
    assert.match(badFormat.error!.details, /format must be one of MODEL_FORMAT_SAFETENSORS/);
  });

  test('CancelJob stops a running job; the watch ends with cancelled; a second cancel is FAILED_PRECONDITION', async () => {
    const { job } = await call(c, 'SubmitJob', { spec: { ...TINY, train: { epochs: 5000, seed: 3 }, name: 'grpc-e2e-long' } });
    const stream = c.WatchJob({ job_id: job.id });
    const messages: any[] = [];
    const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
      let err: grpc.ServiceError | undefined;
      stream.on('error', (e: grpc.ServiceError) => (err = e));
      stream.on('status', () => setImmediate(() => resolve(err)));
    });
    await new Promise<void>((resolve) =>
      stream.on('data', (m: { event: string; epoch?: { epoch: number } }) => {
        messages.push(m);
        if (m.event === 'epoch' && m.epoch!.epoch === 2) resolve();
      }),
    );
    const cancelled = await call(c, 'CancelJob', { job_id: job.id });
    assert.equal(cancelled.state, 'JOB_STATE_CANCELLED');
    assert.equal(await ended, undefined, 'the stream ends cleanly');
    const last = messages.at(-1);
    assert.equal(last.state?.state, 'JOB_STATE_CANCELLED');
    assert.ok(last.state.summary.epochs >= 2 && last.state.summary.epochs < 5000);
    assert.equal((await callError(c, 'CancelJob', { job_id: job.id })).code, S.FAILED_PRECONDITION);
  });

  test('errors: an invalid spec names the field; unknown jobs are NOT_FOUND', async () => {
    const bad = await callError(c, 'SubmitJob', { spec: { data: { batch_size: 513 }, model: { kind: 'MODEL_KIND_SCRATCH', num_layers: 2 } } });
    assert.equal(bad.code, S.INVALID_ARGUMENT);
    assert.match(bad.details, /data\.batchSize/);
    assert.match(bad.details, /model\.numLayers/);
    // Too short a corpus for one minibatch is caught at submission, not as a failed job later.
    const short = await callError(c, 'SubmitJob', { spec: { data: { max_tokens: 50 } } });
    assert.equal(short.code, S.INVALID_ARGUMENT);
    assert.match(short.details, /data\.maxTokens/);
    // no MAX_JOB_TFLOP set: the default cap refuses weeks of CPU (≈ 1.5×10⁵ TFLOP)
    const huge = await callError(c, 'SubmitJob', {
      spec: { model: { kind: 'MODEL_KIND_CONCISE', num_hiddens: 1024, num_layers: 4 }, data: { max_tokens: 200000 }, train: { epochs: 5000 } },
    });
    assert.equal(huge.code, S.INVALID_ARGUMENT);
    assert.match(huge.details, /MAX_JOB_TFLOP = 10000/);
    assert.equal((await callError(c, 'GetJob', { job_id: 'j000000000aaaaaaaaaa' })).code, S.NOT_FOUND);
    const w = await collect(c.WatchJob({ job_id: 'j000000000aaaaaaaaaa' }));
    assert.equal(w.error?.code, S.NOT_FOUND);
    assert.equal((await callError(c, 'Generate', { job_id: 'j000000000aaaaaaaaaa', prefix: 'a' })).code, S.NOT_FOUND);
  });

  test('job ids with a Redis key suffix are INVALID_ARGUMENT naming jobId on every method (never INTERNAL, never an empty OK)', async () => {
    for (const id of [`${tinyId}:events`, `${tinyId}:ckpt`, `${tinyId} `, tinyId.toUpperCase(), 'j'.repeat(150)]) {
      for (const m of ['GetJob', 'CancelJob', 'Generate']) {
        const e = await callError(c, m, { job_id: id, prefix: 'time' });
        assert.equal(e.code, S.INVALID_ARGUMENT, `${m} ${id}: ${e.details}`);
        assert.match(e.details, /jobId/);
      }
      for (const m of ['WatchJob', 'GenerateStream']) {
        const w = await collect(c[m]({ job_id: id, prefix: 'time' }));
        assert.equal(w.error?.code, S.INVALID_ARGUMENT, `${m} ${id}: ${w.messages.length} messages, ${w.error?.details}`);
        assert.equal(w.messages.length, 0);
      }
    }
    assert.equal((await call(c, 'GetJob', { job_id: tinyId })).state, 'JOB_STATE_SUCCEEDED');
  });

  test('ListJobs lists the jobs newest first', async () => {
    const { jobs } = await call(c, 'ListJobs', { page_size: 10 });
    assert.deepEqual(
      jobs.map((j: { name: string }) => j.name),
      ['grpc-e2e-long', 'grpc-e2e-tiny'],
    );
    const done = await call(c, 'ListJobs', { state: 'JOB_STATE_SUCCEEDED' });
    assert.deepEqual(
      done.jobs.map((j: { id: string }) => j.id),
      [tinyId],
    );
  });

  test('SubmitJob with spec.init.from_job continues the job; Job.init says from where; mismatches are INVALID_ARGUMENT', async () => {
    assert.ok(tinyId, 'needs the first test');
    const { job } = await call(c, 'SubmitJob', { spec: { ...TINY, train: { epochs: 2, seed: 9 }, init: { from_job: tinyId }, name: 'grpc-e2e-continued' } });
    assert.deepEqual(job.spec.init, { from_job: tinyId, source: 'from_job' });
    assert.equal(job.init.from_job, tinyId);
    assert.equal(job.init.epoch, 12);
    assert.ok(job.init.perplexity > 1);
    const r = await collect(c.WatchJob({ job_id: job.id }));
    assert.equal(r.error, undefined);
    assert.equal(r.messages.at(-1).state?.state, 'JOB_STATE_SUCCEEDED');
    const epochs = r.messages.filter((m: any) => m.event === 'epoch').map((m: any) => m.epoch.perplexity);
    assert.equal(epochs.length, 2);
    assert.ok(Math.abs(epochs[0] - job.init.perplexity) < 0.2 * job.init.perplexity, `first epoch ${epochs[0]} continues from ${job.init.perplexity}`);
    const view = await call(c, 'GetJob', { job_id: job.id });
    assert.equal(view.init.from_job, tinyId);
    const missing = await callError(c, 'SubmitJob', { spec: { ...TINY, init: { from_job: 'j000000000aaaaaaaaaa' } } });
    assert.equal(missing.code, S.INVALID_ARGUMENT);
    assert.match(missing.details, /init\.fromJob: no job j000000000aaaaaaaaaa/);
    const unknownModel = await callError(c, 'SubmitJob', { spec: { ...TINY, init: { model: 'm0000000000000000000' } } });
    assert.equal(unknownModel.code, S.INVALID_ARGUMENT);
    assert.match(unknownModel.details, /init\.model: no model/);
    const empty = await callError(c, 'SubmitJob', { spec: { ...TINY, init: {} } });
    assert.equal(empty.code, S.INVALID_ARGUMENT);
    assert.match(empty.details, /init must be/);
    const mismatch = await callError(c, 'SubmitJob', { spec: { ...TINY, model: { kind: 'MODEL_KIND_SCRATCH', num_hiddens: 32 }, init: { from_job: tinyId } } });
    assert.equal(mismatch.code, S.INVALID_ARGUMENT);
    assert.match(mismatch.details, /model\.numHiddens is 32 but init's job [a-z0-9]+ \(epoch 12\) has numHiddens 16/);
  });

  test('UploadModel / GetModel / ListModels / DeleteModel, and a job that starts from the uploaded model (init.model), also after its deletion', async () => {
    assert.ok(tinyId, 'needs the first test');
    const exported = await collect(c.ExportModel({ job_id: tinyId }));
    const file = Buffer.concat(exported.messages.filter((m: any) => m.part === 'data').map((m: any) => m.data));
    const up = await call(c, 'UploadModel', { data: file });
    assert.equal(up.created, true);
    assert.match(up.model.id, /^m[0-9a-f]{19}$/);
    assert.deepEqual([up.model.kind, up.model.num_hiddens, up.model.num_layers, up.model.vocab_size, up.model.epoch], ['MODEL_KIND_SCRATCH', 16, 1, 28, 12]);
    assert.equal((await call(c, 'UploadModel', { data: file })).created, false, 'the same file: the same model');
    assert.deepEqual(await call(c, 'GetModel', { model_id: up.model.id }), up.model);
    const bad = await callError(c, 'UploadModel', { data: Buffer.from('not a model') });
    assert.equal(bad.code, S.INVALID_ARGUMENT);
    assert.match(bad.details, /model file: not a safetensors file/);
    assert.equal((await callError(c, 'UploadModel', {})).code, S.INVALID_ARGUMENT);
    assert.equal((await callError(c, 'GetModel', { model_id: 'm0000000000000000000' })).code, S.NOT_FOUND);
    const badId = await callError(c, 'GetModel', { model_id: 'nope' });
    assert.equal(badId.code, S.INVALID_ARGUMENT);
    assert.match(badId.details, /modelId/);
    const { job } = await call(c, 'SubmitJob', { spec: { ...TINY, train: { epochs: 1, seed: 2 }, init: { model: up.model.id }, name: 'grpc-e2e-from-model' } });
    assert.deepEqual([job.init.model, job.init.epoch], [up.model.id, 12]);
    assert.ok((await call(c, 'ListModels', {})).models.some((m: any) => m.id === up.model.id));
    // deleted: the job keeps its copy of the weights; a new job cannot name it
    assert.deepEqual(await call(c, 'DeleteModel', { model_id: up.model.id }), up.model);
    assert.ok(!((await call(c, 'ListModels', {})).models ?? []).some((m: any) => m.id === up.model.id));
    assert.equal((await callError(c, 'DeleteModel', { model_id: up.model.id })).code, S.NOT_FOUND);
    const gone = await callError(c, 'SubmitJob', { spec: { ...TINY, init: { model: up.model.id } } });
    assert.equal(gone.code, S.INVALID_ARGUMENT);
    assert.match(gone.details, new RegExp(`init\\.model: no model ${up.model.id}`));
    const r = await collect(c.WatchJob({ job_id: job.id }));
    assert.equal(r.messages.at(-1).state?.state, 'JOB_STATE_SUCCEEDED');
  });

  test('auth: UNAUTHENTICATED without or with a wrong key, OK with the key; health open', async () => {
    const a = trainerClient(authed.port);
    const h = healthClient(authed.port);
    try {
      assert.equal((await callError(a, 'GetJob', { job_id: tinyId })).code, S.UNAUTHENTICATED);
      assert.equal((await callError(a, 'GetJob', { job_id: tinyId }, bearer('nope'))).code, S.UNAUTHENTICATED);
      assert.equal((await call(a, 'GetJob', { job_id: tinyId }, bearer(KEY))).state, 'JOB_STATE_SUCCEEDED');
      assert.equal((await call(h, 'Check', { service: '' })).status, 'SERVING');
      assert.equal((await call(h, 'Check', { service: 'lstm_trainer.v1.LstmTrainer' })).status, 'SERVING');
    } finally {
      a.close();
      h.close();
    }
  });

  test('reflection lists the service, and a client without the .proto reads the job', async () => {
    const r = new ReflectionClient(open.port);
    try {
      assert.ok((await r.listServices()).includes('lstm_trainer.v1.LstmTrainer'));
      const rc = await r.serviceClient('lstm_trainer.v1.LstmTrainer');
      try {
        const got = await call(rc, 'GetJob', { job_id: tinyId });
        assert.equal(got.name, 'grpc-e2e-tiny');
        assert.equal(got.state, 'JOB_STATE_SUCCEEDED');
      } finally {
        rc.close();
      }
    } finally {
      r.close();
    }
  });
});

describe('experiments over gRPC and HTTP on one Redis-backed service, with owners (no worker: the jobs stay queued)', { skip }, () => {
  const prefix = `grpcexp-${process.pid}-${Date.now().toString(36)}`;
  const ALICE = 'grpc-exp-alice-3f1';
  const BOB = 'grpc-exp-bob-77a';
  const keyRing = new KeyRing([
    { key: ALICE, name: 'alice', admin: false },
    { key: BOB, name: 'bob', admin: false },
  ]);
  let service: RedisJobService;
  let server: GrpcServer;
  let http: FastifyInstance;
  let url = '';
  let c: Client;

  before(async () => {
    service = new RedisJobService({ config: loadConfig(env(prefix)) });
    server = await startGrpcServer({ service, host: '127.0.0.1', port: 0, apiKeys: [ALICE, BOB], keyRing });
    http = await buildHttpApp({ service, logger: false, apiKeys: [ALICE, BOB], keyRing });
    url = await http.listen({ host: '127.0.0.1', port: 0 });
    c = trainerClient(server.port);
  });
  after(async () => {
    c?.close();
    await Promise.allSettled([server?.close(), http?.close()]);
    await service?.close();
    await deletePrefix(prefix);
  });

  async function httpCall(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }

  /** A Value as the JSON value it holds. */
  const jsonOf = (v: any): unknown => (v.kind === 'list_value' ? (v.list_value.values ?? []).map(jsonOf) : v[v.kind]);
  /** A gRPC Experiment written as the HTTP API writes the table (camelCase, state names, plain values). */
  function asHttp(x: any): any {
    const jobs = (x.jobs ?? []).map((r: any) => {
      const row: any = {
        id: r.id,
        name: r.name,
        values: Object.fromEntries(Object.entries(r.values ?? {}).map(([k, v]) => [k, jsonOf(v)])),
        state: r.deleted ? 'deleted' : String(r.state).replace('JOB_STATE_', '').toLowerCase(),
        epoch: r.epoch ?? 0,
        epochs: r.epochs ?? 0,
        finalPerplexity: r.final_perplexity,
        bestPerplexity: r.best_perplexity,
        tokensPerSec: r.tokens_per_sec,
        elapsedMs: r.elapsed_ms,
      };
      for (const k of Object.keys(row)) if (row[k] === undefined) delete row[k];
      return row;
    });
    const out: any = { id: x.id, name: x.name, owner: x.owner, createdAt: x.created_at, varied: x.varied ?? [], jobs };
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  }
  /** A table with its ids and time left out: what two experiments made from the same request share. */
  const shape = (x: any) => ({ ...x, id: undefined, createdAt: undefined, jobs: x.jobs.map((r: any) => ({ ...r, id: undefined })) });

  const num = (x: number) => ({ number_value: x });
  const str = (x: string) => ({ string_value: x });

  test('the same request over HTTP and gRPC makes the same jobs, and either API reads either table (a deleted job too)', async () => {
    const viaHttp = await httpCall('POST', '/v1/experiments', ALICE, {
      name: 'parity',
      base: { model: { numHiddens: 8 }, train: { epochs: 2, seed: 3 }, tags: ['parity'] },
      grid: { 'train.lr': [0.5, 2], 'model.kind': ['scratch', 'concise'] },
    });
    assert.equal(viaHttp.status, 201, JSON.stringify(viaHttp.json));
    const viaGrpc = await call(
      c,
      'CreateExperiment',
      {
        name: 'parity',
        base: { model: { num_hiddens: 8 }, train: { epochs: 2, seed: 3 }, tags: ['parity'] },
        grid: [
          { path: 'train.lr', values: [num(0.5), num(2)] },
          { path: 'model.kind', values: [str('scratch'), str('concise')] },
        ],
      },
      bearer(ALICE),
    );
    assert.equal(viaGrpc.owner, 'alice');
    assert.equal(viaGrpc.jobs.length, 4);
    assert.deepEqual(shape(asHttp(viaGrpc)), shape(viaHttp.json));
    const specOf = async (id: string) => (await httpCall('GET', `/v1/jobs/${id}`, ALICE)).json.spec;
    for (let i = 0; i < 4; i++) assert.deepEqual(await specOf(viaGrpc.jobs[i].id), await specOf(viaHttp.json.jobs[i].id), `job ${i + 1}: the same spec`);

    // a job deleted since keeps its row, marked deleted on both
    await call(c, 'DeleteJob', { job_id: viaGrpc.jobs[1].id }, bearer(ALICE));
    for (const id of [viaGrpc.id, viaHttp.json.id]) {
      const got = await call(c, 'GetExperiment', { experiment_id: id }, bearer(ALICE));
      assert.deepEqual(asHttp(got), (await httpCall('GET', `/v1/experiments/${id}`, ALICE)).json);
    }
    const table = await call(c, 'GetExperiment', { experiment_id: viaGrpc.id }, bearer(ALICE));
    assert.deepEqual([table.jobs[1].deleted, table.jobs[1].state, table.jobs[0].deleted], [true, 'JOB_STATE_UNSPECIFIED', false]);
  });

  test('errors agree: the same bad grid names the same fields; another key sees NOT_FOUND as for no experiment', async () => {
    const bad = await httpCall('POST', '/v1/experiments', ALICE, { grid: { 'train.lr': [1, -1], 'model.nope': ['x'] } });
    assert.equal(bad.status, 400);
    const e = await callError(
      c,
      'CreateExperiment',
      {
        grid: [
          { path: 'train.lr', values: [num(1), num(-1)] },
          { path: 'model.nope', values: [str('x')] },
        ],
      },
      bearer(ALICE),
    );
    assert.equal(e.code, S.INVALID_ARGUMENT);
    assert.deepEqual(JSON.parse(Buffer.from(e.metadata.get(ERRORS_TRAILER)[0] as Buffer).toString('utf8')), bad.json.errors);
    assert.deepEqual([...new Set(bad.json.errors.map((i: { field: string }) => i.field))].sort(), ['grid.model.nope', 'grid.train.lr']);

    const mine = await call(c, 'CreateExperiment', { specs: [{ train: { epochs: 1 } }] }, bearer(ALICE));
    assert.equal((await call(c, 'GetExperiment', { experiment_id: mine.id }, bearer(ALICE))).id, mine.id);
    const other = await callError(c, 'GetExperiment', { experiment_id: mine.id }, bearer(BOB));
    const none = await callError(c, 'GetExperiment', { experiment_id: 'x000000000aaaaaaaaaa' }, bearer(BOB));
    assert.equal(other.code, S.NOT_FOUND);
    assert.equal(other.details.replace(mine.id, 'ID'), none.details.replace('x000000000aaaaaaaaaa', 'ID'));
    assert.equal((await callError(c, 'GetExperiment', { experiment_id: mine.id })).code, S.UNAUTHENTICATED);
    assert.equal((await callError(c, 'CreateExperiment', { specs: [{}] })).code, S.UNAUTHENTICATED);
  });
});
