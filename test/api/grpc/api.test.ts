// The gRPC API against the in-memory JobService double (every state, error and stream edge,
// quickly); e2e.test.ts runs it against the real Redis-backed service and a worker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer, ERRORS_TRAILER, STATUS_DETAILS_TRAILER, type GrpcServer } from '../../../src/api/grpc/index.js';
import { InMemoryJobService, memExperimentId, memId } from '../../support/in-memory-job-service.js';
import { tinyModelFile } from '../../support/model-file.js';
import { bearer, call, callError, collect, healthClient, ReflectionClient, trainerClient, until, type Client } from '../../support/grpc-client.js';

const S = grpc.status;

describe('LstmTrainer over the in-memory service', () => {
  let svc: InMemoryJobService;
  let server: GrpcServer;
  let c: Client;
  const internal: unknown[] = [];

  before(async () => {
    svc = new InMemoryJobService();
    server = await startGrpcServer({ service: svc, host: '127.0.0.1', port: 0, onInternalError: (e) => internal.push(e) });
    c = trainerClient(server.port);
  });
  after(async () => {
    c.close();
    await server.close();
  });

  test('an empty SubmitJob queues the d2l recipe, every default filled in', async () => {
    const res = await call(c, 'SubmitJob', {});
    assert.equal(res.created, true);
    const j = res.job;
    assert.match(j.id, /^j[0-9a-z]{9}0{10}$/);
    assert.equal(j.state, 'JOB_STATE_QUEUED');
    assert.deepEqual(j.progress, { epoch: 0, epochs: 500 });
    assert.equal(j.spec.model.kind, 'MODEL_KIND_SCRATCH');
    assert.equal(j.spec.model.num_hiddens, 256);
    assert.equal(j.spec.data.corpus.timemachine, true);
    assert.equal(j.spec.data.batch_size, 32);
    assert.equal(j.spec.data.num_steps, 35);
    assert.equal(j.spec.data.sampling, 'SAMPLING_SEQUENTIAL');
    assert.equal(j.spec.train.lr, 1);
    assert.equal(j.spec.train.seed, undefined, 'no seed unless given');
    assert.deepEqual(j.spec.report.prefixes, ['time traveller', 'traveller']);
    assert.ok(!Number.isNaN(Date.parse(j.created_at)), 'created_at is RFC 3339');
  });

  test('set fields reach the schema: explicit zeros count (proto3 optional), enums map, custom corpus', async () => {
    const spec = {
      model: { kind: 'MODEL_KIND_CONCISE', num_hiddens: 32, num_layers: 2 },
      data: { corpus: { text: 'the time machine by h g wells '.repeat(20) }, batch_size: 2, num_steps: 5, sampling: 'SAMPLING_RANDOM' },
      train: { epochs: 3, lr: 0.5, seed: 4_000_000_000 },
      report: { num_preds: 0, prefixes: ['the'] },
      name: 'tiny',
    };
    const { job } = await call(c, 'SubmitJob', { spec });
    assert.equal(job.name, 'tiny');
    assert.equal(job.spec.model.kind, 'MODEL_KIND_CONCISE');
    assert.equal(job.spec.model.num_layers, 2);
    assert.equal(job.spec.data.sampling, 'SAMPLING_RANDOM');
    // the submit answer never echoes the corpus text: its size and SHA-256 instead
    const bytes = Buffer.byteLength(spec.data.corpus.text);
    const sha256 = createHash('sha256').update(spec.data.corpus.text).digest('hex');
    assert.equal(job.spec.data.corpus.text, undefined);
    assert.equal(job.corpus_text_bytes, bytes);
    assert.equal(job.corpus_text_sha256, sha256);
    assert.equal(job.spec.train.seed, 4_000_000_000, 'uint32 seed above 2^31 survives');
    assert.equal(job.spec.train.lr, 0.5);
    assert.equal(job.spec.report.num_preds, 0, 'an explicit 0 is not the default 50');
    assert.equal(job.spec.report.predict_every, 10);
    assert.deepEqual(job.spec.report.prefixes, ['the']);

    // GetJob and ListJobs leave the text out by default (BASIC: its size and digest); FULL has it
    for (const view of [undefined, 'JOB_VIEW_BASIC']) {
      const got = await call(c, 'GetJob', view ? { job_id: job.id, view } : { job_id: job.id });
      assert.equal(got.spec.data.corpus.text, undefined);
      assert.deepEqual([got.corpus_text_bytes, got.corpus_text_sha256], [bytes, sha256]);
      const basic = (await call(c, 'ListJobs', view ? { view } : {})).jobs.find((j: { id: string }) => j.id === job.id);
      assert.equal(basic.spec.data.corpus.text, undefined);
      assert.deepEqual([basic.corpus_text_bytes, basic.corpus_text_sha256], [bytes, sha256]);
    }
    const gotFull = await call(c, 'GetJob', { job_id: job.id, view: 'JOB_VIEW_FULL' });
    assert.equal(gotFull.spec.data.corpus.text, spec.data.corpus.text);
    assert.equal(gotFull.corpus_text_bytes, undefined);
    const full = (await call(c, 'ListJobs', { view: 'JOB_VIEW_FULL' })).jobs.find((j: { id: string }) => j.id === job.id);
    assert.equal(full.spec.data.corpus.text, spec.data.corpus.text);
    assert.equal(full.corpus_text_bytes, undefined);
    assert.equal((await callError(c, 'GetJob', { job_id: job.id, view: 7 })).code, grpc.status.INVALID_ARGUMENT);
  });

  test('train.timeout_seconds reaches the spec and comes back; out of range is INVALID_ARGUMENT naming train.timeoutSeconds', async () => {
    const { job } = await call(c, 'SubmitJob', { spec: { train: { epochs: 2, timeout_seconds: 90 } } });
    assert.equal(job.spec.train.timeout_seconds, 90);
    assert.equal((await call(c, 'GetJob', { job_id: job.id })).spec.train.timeout_seconds, 90);
    const { job: plain } = await call(c, 'SubmitJob', { spec: { train: { epochs: 2 } } });
    assert.equal(plain.spec.train.timeout_seconds, undefined, 'no timeout unless given');
    for (const bad of [0, 604_801]) {
      const e = await callError(c, 'SubmitJob', { spec: { train: { timeout_seconds: bad } } });
      assert.equal(e.code, S.INVALID_ARGUMENT);
      assert.match(e.details, /train\.timeoutSeconds/);
    }
  });

  test('the same idempotency key returns the same job, created = false', async () => {
    const a = await call(c, 'SubmitJob', { spec: { idempotency_key: 'k-1', train: { epochs: 2 } } });
    const b = await call(c, 'SubmitJob', { spec: { idempotency_key: 'k-1', train: { epochs: 2 } } });
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(b.job.id, a.job.id);
  });

  test('the same idempotency key with another spec is ALREADY_EXISTS naming idempotencyKey; the first job is untouched', async () => {
    const a = await call(c, 'SubmitJob', { spec: { idempotency_key: 'k-conflict', train: { epochs: 2 } } });
    const e = await callError(c, 'SubmitJob', { spec: { idempotency_key: 'k-conflict', train: { epochs: 3 } } });
    assert.equal(e.code, S.ALREADY_EXISTS);
    assert.match(e.details, /idempotencyKey/);
    assert.equal((await call(c, 'GetJob', { job_id: a.job.id })).spec.train.epochs, 2);
    const again = await call(c, 'SubmitJob', { spec: { idempotency_key: 'k-conflict', train: { epochs: 2 } } });
    assert.equal(again.job.id, a.job.id);
    assert.equal(again.created, false);
  });

  test('an invalid spec is INVALID_ARGUMENT naming every field, with the issues in trailers', async () => {
    const err = await callError(c, 'SubmitJob', {
      spec: { model: { num_hiddens: 5000, num_layers: 2 }, train: { epochs: 0 }, data: { corpus: { text: '' } } },
    });
    assert.equal(err.code, S.INVALID_ARGUMENT);
    for (const f of ['model.numHiddens', 'model.numLayers', 'train.epochs', 'data.corpus.text']) assert.match(err.details, new RegExp(f.replace('.', '\\.')));
    assert.match(err.details, /≤ 1024/, 'names the bound');
    const issues = JSON.parse(Buffer.from(err.metadata.get(ERRORS_TRAILER)[0] as Buffer).toString('utf8'));
    assert.deepEqual(issues.map((i: { field: string }) => i.field).sort(), ['data.corpus.text', 'model.numHiddens', 'model.numLayers', 'train.epochs']);
    const details = err.metadata.get(STATUS_DETAILS_TRAILER)[0] as Buffer;
    assert.equal(details[0], 0x08, 'google.rpc.Status.code');
    assert.equal(details[1], S.INVALID_ARGUMENT);
    assert.ok(details.includes('type.googleapis.com/google.rpc.BadRequest'));
    assert.ok(details.includes('model.numHiddens'));
  });

  test('an enum value this server does not know is INVALID_ARGUMENT, not a silent default', async () => {
    const err = await callError(c, 'SubmitJob', { spec: { model: { kind: 7 } } });
    assert.equal(err.code, S.INVALID_ARGUMENT);
    assert.match(err.details, /model\.kind/);
  });

  test('ListJobs: an unknown view is INVALID_ARGUMENT naming view; BASIC, FULL and unset are accepted', async () => {
    for (const view of [7, 99, -1]) {
      const e = await callError(c, 'ListJobs', { view });
      assert.equal(e.code, S.INVALID_ARGUMENT, `view ${view}`);
      assert.match(e.details, /view/);
    }
    // together with another bad field: both named
    const both = await callError(c, 'ListJobs', { view: 5, page_size: 101 });
    assert.match(both.details, /view/);
    assert.match(both.details, /pageSize/);
    for (const view of [undefined, 'JOB_VIEW_UNSPECIFIED', 'JOB_VIEW_BASIC', 'JOB_VIEW_FULL']) await call(c, 'ListJobs', view === undefined ? {} : { view });
    // FULL pages are 10 jobs at most (each may carry a 2 MB corpus text): unset page_size → 10, more refused
    await assert.rejects(
      call(c, 'ListJobs', { view: 'JOB_VIEW_FULL', page_size: 11 }),
      (e: { code: number; details: string }) => e.code === grpc.status.INVALID_ARGUMENT && /pageSize must be ≤ 10 with view JOB_VIEW_FULL/.test(e.details),
    );
    await call(c, 'ListJobs', { view: 'JOB_VIEW_FULL', page_size: 10 });
  });

  test('GetJob: unknown id NOT_FOUND; missing or malformed id INVALID_ARGUMENT', async () => {
    assert.equal((await callError(c, 'GetJob', { job_id: memId(999) })).code, S.NOT_FOUND);
    const missing = await callError(c, 'GetJob', {});
    assert.equal(missing.code, S.INVALID_ARGUMENT);
    assert.match(missing.details, /jobId/);
    assert.equal((await callError(c, 'GetJob', { job_id: 'a b/../c' })).code, S.INVALID_ARGUMENT);
    assert.equal((await callError(c, 'CancelJob', { job_id: 'x'.repeat(300) })).code, S.INVALID_ARGUMENT);
  });

  test('CancelJob cancels; cancelling again is FAILED_PRECONDITION', async () => {
    const { job } = await call(c, 'SubmitJob', { spec: { train: { epochs: 4 } } });
    const cancelled = await call(c, 'CancelJob', { job_id: job.id });
    assert.equal(cancelled.state, 'JOB_STATE_CANCELLED');
    assert.ok(cancelled.finished_at);
    const again = await callError(c, 'CancelJob', { job_id: job.id });
    assert.equal(again.code, S.FAILED_PRECONDITION);
    assert.equal((await callError(c, 'CancelJob', { job_id: memId(404) })).code, S.NOT_FOUND);
  });

  test('ListJobs: newest first, filter by state, pages; a bad page_size names pageSize', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(c, 'SubmitJob', { spec: { name: `page-${i}` } })).job.id);
    const first = await call(c, 'ListJobs', { page_size: 2 });
    assert.deepEqual(
      first.jobs.map((j: { id: string }) => j.id),
      [ids[2], ids[1]],
    );
    assert.ok(first.next_page_token);
    const second = await call(c, 'ListJobs', { page_size: 2, page_token: first.next_page_token });
    assert.equal(second.jobs[0].id, ids[0]);
    const cancelled = await call(c, 'ListJobs', { state: 'JOB_STATE_CANCELLED', page_size: 100 });
    assert.ok(cancelled.jobs.length >= 1);
    assert.ok(cancelled.jobs.every((j: { state: string }) => j.state === 'JOB_STATE_CANCELLED'));
    const bad = await callError(c, 'ListJobs', { page_size: 101 });
    assert.equal(bad.code, S.INVALID_ARGUMENT);
    assert.match(bad.details, /pageSize must be ≤ 100/);
    assert.equal((await callError(c, 'ListJobs', { page_size: -1 })).code, S.INVALID_ARGUMENT);
  });

  test('WatchJob streams history then live events and ends after the terminal state', async () => {
    const { job } = await call(c, 'SubmitJob', { spec: { train: { epochs: 3 }, report: { predict_every: 2 } } });
    svc.start(job.id);
    svc.epoch(job.id, 9.5);
    const stream = c.WatchJob({ job_id: job.id });
    const done = collect(stream);
    await until(() => svc.openStreams > 0, 5000, 'watch to open');
    svc.epoch(job.id, 5.25, true);
    svc.epoch(job.id, 3.5);
    svc.finish(job.id, 'succeeded');
    const { messages, error } = await done;
    assert.equal(error, undefined);
    assert.deepEqual(
      messages.map((m) => m.seq),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      messages.map((m) => m.event),
      ['state', 'state', 'epoch', 'epoch', 'epoch', 'state'],
    );
    assert.equal(messages[1].state.state, 'JOB_STATE_RUNNING');
    assert.equal(messages[1].state.attempt, 1);
    assert.equal(messages[1].state.message, 'taken by worker w1');
    assert.deepEqual(
      { epoch: messages[3].epoch.epoch, epochs: messages[3].epoch.epochs, perplexity: messages[3].epoch.perplexity },
      { epoch: 2, epochs: 3, perplexity: 5.25 },
    );
    assert.equal(messages[3].epoch.samples[0].prefix, 'time traveller');
    assert.equal(messages[2].epoch.samples, undefined);
    const last = messages[5].state;
    assert.equal(last.state, 'JOB_STATE_SUCCEEDED');
    assert.equal(last.summary.final_perplexity, 3.5);
    assert.equal(last.summary.epochs, 3);
    assert.ok(!Number.isNaN(Date.parse(messages[0].time)));

    const view = await call(c, 'GetJob', { job_id: job.id });
    assert.equal(view.last_seq, 6);
    assert.equal(view.attempt, 1);
    assert.equal(view.checkpoint_epoch, 3);
    assert.deepEqual(
      view.last_epochs.map((e: { epoch: number }) => e.epoch),
      [1, 2, 3],
    );
    assert.equal(view.summary.final_perplexity, 3.5);
    assert.ok(view.started_at && view.finished_at);

    // Reconnect after seq 3: exactly 4, 5, 6 — no gap, no duplicate.
    const again = await collect(c.WatchJob({ job_id: job.id, from_seq: 3 }));
    assert.deepEqual(
      again.messages.map((m) => m.seq),
      [4, 5, 6],
    );
    // From the last seq of a finished job: nothing more, a clean end.
    const none = await collect(c.WatchJob({ job_id: job.id, from_seq: 6 }));
    assert.equal(none.error, undefined);
  });

  test('WatchJob errors: negative from_seq INVALID_ARGUMENT, unknown job NOT_FOUND', async () => {
    const { job } = await call(c, 'SubmitJob', {});
    const neg = await collect(c.WatchJob({ job_id: job.id, from_seq: -1 }));
    assert.equal(neg.error?.code, S.INVALID_ARGUMENT);
    assert.match(neg.error!.details, /fromSeq/);
    const missing = await collect(c.WatchJob({ job_id: memId(31337) }));
    assert.equal(missing.error?.code, S.NOT_FOUND);
    const noId = await collect(c.WatchJob({}));
    assert.equal(noId.error?.code, S.INVALID_ARGUMENT);
  });

  test('a client cancelling WatchJob aborts the service-side watch', async () => {
    const { job } = await call(c, 'SubmitJob', {});
    const stream = c.WatchJob({ job_id: job.id });
    const first = new Promise((resolve) => stream.once('data', resolve));
    stream.on('error', () => {});
    await first;
    assert.equal(svc.openStreams, 1);
    stream.cancel();
    await until(() => svc.openStreams === 0, 5000, 'the service watch to end');
    // The server is fine afterwards.
    assert.equal((await call(c, 'GetJob', { job_id: job.id })).state, 'JOB_STATE_QUEUED');
  });

  test('Generate and GenerateStream agree; generation needs a checkpoint', async () => {
    const { job } = await call(c, 'SubmitJob', {});
    const early = await callError(c, 'Generate', { job_id: job.id, prefix: 'time' });
    assert.equal(early.code, S.FAILED_PRECONDITION);
    svc.start(job.id);
    svc.epoch(job.id, 4);
    const unary = await call(c, 'Generate', { job_id: job.id, prefix: 'Time, ', num_chars: 12, seed: 1 });
    assert.equal(unary.prefix, 'time', 'cleaned as the corpus is');
    assert.equal(unary.generated, 'imetimetimet');
    assert.equal(unary.text, 'timeimetimetimet');
    const streamed = await collect(c.GenerateStream({ job_id: job.id, prefix: 'Time, ', num_chars: 12, seed: 1 }));
    assert.equal(streamed.error, undefined);
    assert.equal(streamed.messages.length, 13, 'the prefix, then one chunk per character');
    assert.equal(streamed.messages[0].text, 'time');
    assert.equal(streamed.messages.map((m) => m.text).join(''), unary.text);
    const dflt = await call(c, 'Generate', { job_id: job.id, prefix: 'time' });
    assert.equal(dflt.generated.length, 50, 'num_chars defaults to 50');
    // A stream that cannot start ends with a bare status, no prefix chunk first.
    const missing = await collect(c.GenerateStream({ job_id: memId(4040), prefix: 'time' }));
    assert.equal(missing.error?.code, S.NOT_FOUND);
    assert.equal(missing.messages.length, 0);
  });

  test("ExportModel: info, then each file's header and its bytes in ≤ 64 KiB chunks; FAILED_PRECONDITION before a checkpoint", async () => {
    const { job } = await call(c, 'SubmitJob', {});
    const early = await collect(c.ExportModel({ job_id: job.id }));
    assert.equal(early.error?.code, S.FAILED_PRECONDITION);
    assert.match(early.error!.details, /has no checkpoint yet/);
    assert.equal(early.messages.length, 0, 'a bare status, nothing sent first');
    svc.start(job.id);
    svc.epoch(job.id, 4);
    svc.epoch(job.id, 3);
    const want = await svc.exportModel(job.id, 'safetensors');
    const r = await collect(c.ExportModel({ job_id: job.id }));
    assert.equal(r.error, undefined);
    assert.deepEqual(
      r.messages.map((m) => m.part),
      ['info', 'file', 'data', 'data', 'data'],
    );
    assert.deepEqual(r.messages[0].info, { format: 'MODEL_FORMAT_SAFETENSORS', epoch: 2, files: 1, total_bytes: 150_000 });
    assert.deepEqual(r.messages[1].file, {
      name: 'model.safetensors',
      content_type: 'application/octet-stream',
      size: 150_000,
      filename: `${job.id}-epoch2.safetensors`,
    });
    assert.deepEqual(
      r.messages.slice(2).map((m) => m.data.length),
      [65536, 65536, 150_000 - 2 * 65536],
    );
    assert.ok(Buffer.concat(r.messages.slice(2).map((m) => m.data)).equals(want.files[0].data));
    const tfjs = await collect(c.ExportModel({ job_id: job.id, format: 'MODEL_FORMAT_TFJS' }));
    assert.deepEqual(
      tfjs.messages.map((m) => m.part),
      ['info', 'file', 'data', 'file', 'data', 'data'],
    );
    assert.deepEqual([tfjs.messages[1].file.filename, tfjs.messages[3].file.filename], ['model.json', 'weights.bin']);
    assert.equal(tfjs.messages[1].file.content_type, 'application/json');
    const bad = await collect(c.ExportModel({ job_id: job.id, format: 9 }));
    assert.equal(bad.error?.code, S.INVALID_ARGUMENT);
    const missing = await collect(c.ExportModel({ job_id: memId(4041) }));
    assert.equal(missing.error?.code, S.NOT_FOUND);
  });

  test('ListModels newest first (limit); DeleteModel answers the model, then NOT_FOUND; bad ids and limits INVALID_ARGUMENT naming the field', async () => {
    const a = (await call(c, 'UploadModel', { data: tinyModelFile(0.1) })).model;
    const b = (await call(c, 'UploadModel', { data: tinyModelFile(0.2) })).model;
    assert.notEqual(a.id, b.id);
    const ids = async (req: object) => ((await call(c, 'ListModels', req)).models ?? []).map((m: { id: string }) => m.id);
    assert.deepEqual(await ids({}), [b.id, a.id]);
    assert.deepEqual(await ids({ limit: 1 }), [b.id]);
    assert.deepEqual((await call(c, 'ListModels', {})).models[1], a, 'the GetModel / UploadModel message');

    assert.deepEqual(await call(c, 'DeleteModel', { model_id: a.id }), a);
    assert.equal((await callError(c, 'GetModel', { model_id: a.id })).code, S.NOT_FOUND);
    const again = await callError(c, 'DeleteModel', { model_id: a.id });
    assert.equal(again.code, S.NOT_FOUND);
    assert.match(again.details, new RegExp(`model ${a.id} not found`));
    assert.deepEqual(await ids({}), [b.id]);

    for (const [req, why] of [
      [{ model_id: 'nope' }, /modelId must be a model id/],
      [{ model_id: `${a.id}0` }, /modelId must be a model id/],
      [{}, /modelId is required/],
    ] as const) {
      const err = await callError(c, 'DeleteModel', req);
      assert.equal(err.code, S.INVALID_ARGUMENT, JSON.stringify(req));
      assert.match(err.details, why);
      assert.deepEqual(JSON.parse(Buffer.from(err.metadata.get(ERRORS_TRAILER)[0] as Buffer).toString('utf8'))[0].field, 'modelId');
    }
    for (const [limit, why] of [
      [101, /limit must be ≤ 100/],
      [-1, /limit must be ≥ 1/],
    ] as const) {
      const err = await callError(c, 'ListModels', { limit });
      assert.equal(err.code, S.INVALID_ARGUMENT);
      assert.match(err.details, why);
    }
    assert.deepEqual(await ids({ limit: 100 }), [b.id]);
  });

  test('Generate validation: prefix needs a letter, an explicit num_chars 0 is rejected, unknown job NOT_FOUND', async () => {
    const { job } = await call(c, 'SubmitJob', {});
    const noPrefix = await callError(c, 'Generate', { job_id: job.id });
    assert.equal(noPrefix.code, S.INVALID_ARGUMENT);
    assert.match(noPrefix.details, /prefix/);
    const zero = await callError(c, 'Generate', { job_id: job.id, prefix: 'a', num_chars: 0 });
    assert.equal(zero.code, S.INVALID_ARGUMENT);
    assert.match(zero.details, /numChars/);
    const streamBad = await collect(c.GenerateStream({ job_id: job.id, prefix: 'a', top_k: 0 }));
    assert.equal(streamBad.error?.code, S.INVALID_ARGUMENT);
    assert.match(streamBad.error!.details, /topK/);
    assert.equal((await callError(c, 'Generate', { job_id: memId(777), prefix: 'a' })).code, S.NOT_FOUND);
  });

  test('a client cancelling GenerateStream stops generation', async () => {
    const { job } = await call(c, 'SubmitJob', {});
    svc.epoch(job.id, 4);
    const stream = c.GenerateStream({ job_id: job.id, prefix: 'abc', num_chars: 5000 });
    stream.on('error', () => {});
    let n = 0;
    await new Promise<void>((resolve) =>
      stream.on('data', () => {
        if (++n === 3) resolve();
      }),
    );
    stream.cancel();
    await until(() => svc.openStreams === 0, 5000, 'generation to stop');
    assert.ok(n < 5000);

    // Leaving right after the first (prefix) chunk ends the service's generator as well.
    for (let i = 0; i < 5; i++) {
      const s2 = c.GenerateStream({ job_id: job.id, prefix: 'abc', num_chars: 5000 });
      s2.on('error', () => {});
      await new Promise((resolve) => s2.once('data', resolve));
      s2.cancel();
      await until(() => svc.openStreams === 0, 5000, 'generation to stop after the prefix chunk');
    }
  });

  test('backend errors: UNAVAILABLE, RESOURCE_EXHAUSTED; a server fault is INTERNAL without leaking it', async () => {
    svc.down = true;
    try {
      assert.equal((await callError(c, 'GetJob', { job_id: memId(1) })).code, S.UNAVAILABLE);
      assert.equal((await callError(c, 'SubmitJob', {})).code, S.UNAVAILABLE);
      const w = await collect(c.WatchJob({ job_id: memId(1) }));
      assert.equal(w.error?.code, S.UNAVAILABLE);
    } finally {
      svc.down = false;
    }
    // An ioredis error that escaped the jobs layer unwrapped is still UNAVAILABLE.
    svc.failNext = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    assert.equal((await callError(c, 'GetJob', { job_id: memId(1) })).code, S.UNAVAILABLE);

    svc.maxQueued = 0;
    try {
      assert.equal((await callError(c, 'SubmitJob', {})).code, S.RESOURCE_EXHAUSTED);
    } finally {
      svc.maxQueued = Infinity;
    }
    svc.failNext = new TypeError("Cannot read properties of undefined (reading 'secret')");
    const e = await callError(c, 'GetJob', { job_id: memId(1) });
    assert.equal(e.code, S.INTERNAL);
    assert.doesNotMatch(e.details, /secret/);
    assert.equal(internal.length, 1, 'the fault is reported to the server log');
  });

  test('SubmitJob passes a per-client id (the peer address, as HTTP computes it) to the service', async () => {
    await call(c, 'SubmitJob', {});
    assert.match(String(svc.clientIds.at(-1)), /^ip:127\.0\.0\.1$/);
  });

  /** A Value per JSON value, as a client writes the grid. */
  const v = (x: number | string | boolean) => (typeof x === 'number' ? { number_value: x } : typeof x === 'string' ? { string_value: x } : { bool_value: x });
  const issuesOf = (e: grpc.ServiceError): { field: string; message: string }[] =>
    JSON.parse(Buffer.from(e.metadata.get(ERRORS_TRAILER)[0] as Buffer).toString('utf8'));
  const newestJob = async () => (await call(c, 'ListJobs', { page_size: 1 })).jobs?.[0]?.id;

  test('CreateExperiment with a grid: one job per combination (first path slowest) carrying its values; GetExperiment is the table', async () => {
    const exp = await call(c, 'CreateExperiment', {
      name: 'lr-kind',
      base: { model: { num_hiddens: 8 }, train: { epochs: 3 }, tags: ['exp'] },
      grid: [
        { path: 'train.lr', values: [v(0.5), v(2)] },
        { path: 'model.kind', values: [v('scratch'), v('concise')] },
        { path: 'train.seed', values: [v(7)] }, // one value: not varied
      ],
    });
    assert.match(exp.id, /^x[0-9a-z]{19}$/);
    assert.equal(exp.name, 'lr-kind');
    assert.deepEqual(exp.varied, ['train.lr', 'model.kind']);
    assert.match(String(svc.clientIds.at(-1)), /^ip:127\.0\.0\.1$/, "the caller's client id, as SubmitJob's");
    assert.deepEqual(
      exp.jobs.map((r: any) => [r.values['train.lr'].number_value, r.values['model.kind'].string_value, r.name, r.state, r.epoch, r.epochs]),
      [
        [0.5, 'scratch', 'lr-kind lr=0.5 kind=scratch', 'JOB_STATE_QUEUED', 0, 3],
        [0.5, 'concise', 'lr-kind lr=0.5 kind=concise', 'JOB_STATE_QUEUED', 0, 3],
        [2, 'scratch', 'lr-kind lr=2 kind=scratch', 'JOB_STATE_QUEUED', 0, 3],
        [2, 'concise', 'lr-kind lr=2 kind=concise', 'JOB_STATE_QUEUED', 0, 3],
      ],
    );
    for (const row of exp.jobs) {
      const job = await call(c, 'GetJob', { job_id: row.id });
      assert.equal(job.experiment, exp.id);
      assert.equal(job.spec.train.lr, row.values['train.lr'].number_value);
      assert.equal(job.spec.model.kind, row.values['model.kind'].string_value === 'scratch' ? 'MODEL_KIND_SCRATCH' : 'MODEL_KIND_CONCISE');
      assert.deepEqual([job.spec.model.num_hiddens, job.spec.train.seed, job.spec.tags], [8, 7, ['exp']], 'the base and the one-value path apply');
    }
    const listed = (await call(c, 'ListJobs', { experiment: exp.id })).jobs.map((j: any) => j.id);
    assert.deepEqual(listed.sort(), exp.jobs.map((r: any) => r.id).sort());

    // the table follows the jobs: epochs, the last and the best perplexity
    const first = exp.jobs[0].id;
    svc.start(first);
    svc.epoch(first, 5);
    svc.epoch(first, 3);
    svc.epoch(first, 4);
    const table = await call(c, 'GetExperiment', { experiment_id: exp.id });
    assert.deepEqual({ ...table, jobs: undefined }, { ...exp, jobs: undefined });
    const row = table.jobs[0];
    assert.deepEqual(
      [row.state, row.epoch, row.final_perplexity, row.best_perplexity, row.tokens_per_sec, row.elapsed_ms],
      ['JOB_STATE_RUNNING', 3, 4, 3, 1003, 30],
    );
    assert.deepEqual(table.jobs.slice(1), exp.jobs.slice(1), 'the other rows as created');
  });

  test('CreateExperiment with a list of specs: each laid over the base; the varied paths are the leaves that differ', async () => {
    const text = 'the time machine by h g wells '.repeat(20);
    const exp = await call(c, 'CreateExperiment', {
      base: { model: { num_hiddens: 8 }, data: { corpus: { text }, batch_size: 2, num_steps: 5 }, train: { epochs: 2 } },
      specs: [{ train: { lr: 0.5 } }, { train: { lr: 2 }, model: { kind: 'MODEL_KIND_CONCISE' } }, { data: { corpus: { timemachine: true } } }],
    });
    assert.equal(exp.name, undefined);
    assert.deepEqual([...exp.varied].sort(), ['model.kind', 'train.lr']);
    assert.deepEqual(
      exp.jobs.map((r: any) => [r.values['train.lr'].number_value, r.values['model.kind'].string_value]),
      [
        [0.5, 'scratch'],
        [2, 'concise'],
        [1, 'scratch'],
      ],
    );
    const jobs = await Promise.all(exp.jobs.map((r: any) => call(c, 'GetJob', { job_id: r.id })));
    assert.deepEqual(
      jobs.map((j) => [j.spec.model.num_hiddens, j.spec.data.batch_size, j.spec.train.epochs]),
      [
        [8, 2, 2],
        [8, 2, 2],
        [8, 2, 2],
      ],
      'the base under every spec',
    );
    assert.equal(jobs[0].corpus_text_bytes, Buffer.byteLength(text), "the base's corpus");
    assert.equal(jobs[2].spec.data.corpus.timemachine, true, 'a spec choosing the book over the base text');
  });

  test('CreateExperiment: a bad point is INVALID_ARGUMENT naming it (grid path, value, specs[i], base) and queues nothing', async () => {
    const before = await newestJob();
    const cases: [object, string, RegExp][] = [
      [{ grid: [{ path: 'train.clip_theta', values: [v(1)] }] }, 'grid.train.clip_theta', /dotted job spec paths/],
      [{ grid: [{ path: 'model.nope', values: [v(1)] }] }, 'grid.model.nope', /unknown field model\.nope/],
      [{ grid: [{ path: 'train.lr', values: [v(1), v(-1)] }] }, 'grid.train.lr', /at lr=-1: .*train\.lr must be > 0/],
      [{ grid: [{ path: 'train.lr', values: [{}] }] }, 'grid.train.lr.0', /numbers, strings or booleans/],
      [{ grid: [{ path: 'train.lr', values: [{ list_value: { values: [v(1)] } }] }] }, 'grid.train.lr.0', /numbers, strings or booleans/],
      [{ grid: [{ path: 'train.lr', values: [] }] }, 'grid.train.lr', /at least one value/],
      [
        {
          grid: [
            { path: 'train.lr', values: [v(1)] },
            { path: 'train.lr', values: [v(2)] },
          ],
        },
        'grid.train.lr',
        /more than once/,
      ],
      [{ specs: [{}, { model: { num_layers: 2 } }] }, 'specs[1].model.numLayers', /concise/],
      [{ base: { idempotency_key: 'k' }, grid: [{ path: 'train.lr', values: [v(1)] }] }, 'base.idempotencyKey', /idempotency keys/],
      [{ base: { train: { epochs: 2 } } }, 'grid', /exactly one of grid and specs/],
      [{ grid: [{ path: 'train.lr', values: [v(1)] }], specs: [{}] }, 'grid', /exactly one of grid and specs/],
      [{ name: '', specs: [{}] }, 'name', /must not be empty/],
    ];
    for (const [req, field, message] of cases) {
      const e = await callError(c, 'CreateExperiment', req);
      assert.equal(e.code, S.INVALID_ARGUMENT, JSON.stringify(req));
      const issue = issuesOf(e).find((i) => i.field === field);
      assert.ok(issue, `${JSON.stringify(req)}: ${field} in ${JSON.stringify(issuesOf(e))}`);
      assert.match(issue.message, message);
      assert.match(e.details, new RegExp(field.replace(/[.[\]]/g, '\\$&')));
    }
    assert.equal(await newestJob(), before, 'no job was queued');
  });

  test('GetExperiment: unknown id NOT_FOUND; missing or malformed id INVALID_ARGUMENT naming experimentId', async () => {
    const none = await callError(c, 'GetExperiment', { experiment_id: memExperimentId(999) });
    assert.equal(none.code, S.NOT_FOUND);
    assert.match(none.details, /experiment x\w+ not found/);
    for (const id of [undefined, '', 'x123', memId(1), `${memExperimentId(1)}:jobs`]) {
      const e = await callError(c, 'GetExperiment', id === undefined ? {} : { experiment_id: id });
      assert.equal(e.code, S.INVALID_ARGUMENT, String(id));
      assert.deepEqual(
        issuesOf(e).map((i) => i.field),
        ['experimentId'],
      );
      assert.match(e.details, id ? /experimentId must be an experiment id/ : /experimentId is required/);
    }
  });

  test('a service without experiments answers FAILED_PRECONDITION to both calls', async () => {
    const bare = Object.assign(new InMemoryJobService(), { createExperiment: undefined, getExperiment: undefined });
    const s2 = await startGrpcServer({ service: bare, host: '127.0.0.1', port: 0 });
    const c2 = trainerClient(s2.port);
    try {
      for (const [m, req] of [
        ['CreateExperiment', { specs: [{}] }],
        ['GetExperiment', { experiment_id: memExperimentId(1) }],
      ] as const) {
        const e = await callError(c2, m, req);
        assert.equal(e.code, S.FAILED_PRECONDITION, m);
        assert.match(e.details, /this service has no experiments/);
      }
    } finally {
      c2.close();
      await s2.close();
    }
  });

  test('health: SERVING overall and for the service; setServing(false) flips both', async () => {
    const h = healthClient(server.port);
    try {
      assert.equal((await call(h, 'Check', { service: '' })).status, 'SERVING');
      assert.equal((await call(h, 'Check', { service: 'lstm_trainer.v1.LstmTrainer' })).status, 'SERVING');
      assert.equal((await callError(h, 'Check', { service: 'no.such.Service' })).code, S.NOT_FOUND);
      server.setServing(false);
      assert.equal((await call(h, 'Check', { service: '' })).status, 'NOT_SERVING');
      assert.equal((await call(h, 'Check', { service: 'lstm_trainer.v1.LstmTrainer' })).status, 'NOT_SERVING');
      server.setServing(true);
      assert.equal((await call(h, 'Check', { service: '' })).status, 'SERVING');
    } finally {
      h.close();
    }
  });

  test('health follows the backend: NOT_SERVING while the JobService is not ready, back when it is', async () => {
    const svc2 = new InMemoryJobService();
    const s2 = await startGrpcServer({ service: svc2, host: '127.0.0.1', port: 0, readinessIntervalMs: 20 });
    const h = healthClient(s2.port);
    const statusOf = async () => (await call(h, 'Check', { service: 'lstm_trainer.v1.LstmTrainer' })).status;
    const becomes = async (want: string) => {
      for (let i = 0; i < 100 && (await statusOf()) !== want; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await statusOf(), want);
    };
    try {
      assert.equal(await statusOf(), 'SERVING');
      svc2.down = true;
      await becomes('NOT_SERVING');
      assert.equal((await call(h, 'Check', { service: '' })).status, 'NOT_SERVING');
      svc2.down = false;
      await becomes('SERVING');
      s2.setServing(false);
      assert.equal(await statusOf(), 'NOT_SERVING', 'the operator flag wins over a ready backend');
    } finally {
      h.close();
      await s2.close();
    }
  });

  test('reflection: lists the services, and a client with no .proto can call them', async () => {
    const r = new ReflectionClient(server.port);
    try {
      const services = await r.listServices();
      assert.ok(services.includes('lstm_trainer.v1.LstmTrainer'), services.join());
      assert.ok(services.includes('grpc.health.v1.Health'));

      // The service's file must be self-contained: @grpc/reflection drops `import`s
      // (grpc-node#3034), so an imported type would be unresolvable for grpcurl.
      const files = await r.fileDescriptors('lstm_trainer.v1.LstmTrainer');
      const own = files.filter((f) => f.includes('lstm_trainer.v1'));
      assert.equal(own.length, 1);
      assert.ok(!own[0].includes('google.protobuf'), 'no well-known-type references');

      const { job } = await call(c, 'SubmitJob', { spec: { name: 'via-reflection' } });
      const rc = await r.serviceClient('lstm_trainer.v1.LstmTrainer');
      try {
        const got = await call(rc, 'GetJob', { job_id: job.id });
        assert.equal(got.name, 'via-reflection');
        assert.equal(got.spec.model.num_hiddens, 256);
        const sub = await call(rc, 'SubmitJob', { spec: { model: { num_hiddens: 8 } } });
        assert.equal(sub.job.spec.model.num_hiddens, 8, 'optional fields encode through the reflected descriptor');
        const bad = await callError(rc, 'SubmitJob', { spec: { model: { num_hiddens: 0 } } });
        assert.equal(bad.code, S.INVALID_ARGUMENT, 'an explicit 0 stays present through reflection');
        // the experiment messages (a oneof Value, a map of them) through the reflected descriptors
        // (protobufjs builds no map field from a descriptor: this client reads ExperimentRow.values
        // as the map's wire form, its key/value entries; clients from the .proto read an object)
        const exp = await call(rc, 'CreateExperiment', { grid: [{ path: 'train.seed', values: [{ number_value: 0 }, { number_value: 5 }] }] });
        assert.deepEqual(
          exp.jobs.map((r: any) => r.values),
          [
            [{ key: 'train.seed', value: { number_value: 0, kind: 'number_value' } }],
            [{ key: 'train.seed', value: { number_value: 5, kind: 'number_value' } }],
          ],
          'a 0 in a oneof stays present',
        );
        const zeroLr = await callError(rc, 'CreateExperiment', { grid: [{ path: 'train.lr', values: [{ number_value: 0 }] }] });
        assert.match(zeroLr.details, /grid\.train\.lr: at lr=0/);
      } finally {
        rc.close();
      }
    } finally {
      r.close();
    }
  });
});

describe('auth with API keys', () => {
  let svc: InMemoryJobService;
  let server: GrpcServer;
  let c: Client;

  before(async () => {
    svc = new InMemoryJobService();
    server = await startGrpcServer({ service: svc, host: '127.0.0.1', port: 0, apiKeys: ['k-alpha', 'k-beta'] });
    c = trainerClient(server.port);
  });
  after(async () => {
    c.close();
    await server.close();
  });

  test('no key or a wrong key is UNAUTHENTICATED; either configured key works', async () => {
    const none = await callError(c, 'ListJobs', {});
    assert.equal(none.code, S.UNAUTHENTICATED);
    assert.match(none.details, /authorization: Bearer/);
    assert.equal((await callError(c, 'ListJobs', {}, bearer('k-alph'))).code, S.UNAUTHENTICATED);
    assert.equal((await callError(c, 'ListJobs', {}, bearer('k-alpha-x'))).code, S.UNAUTHENTICATED);
    const md = new grpc.Metadata();
    md.set('authorization', 'k-alpha'); // no Bearer scheme
    assert.equal((await callError(c, 'ListJobs', {}, md)).code, S.UNAUTHENTICATED);
    assert.deepEqual((await call(c, 'ListJobs', {}, bearer('k-alpha'))).jobs ?? [], []);
    const sub = await call(c, 'SubmitJob', {}, bearer('k-beta'));
    assert.equal(sub.created, true);
    assert.match(String(svc.clientIds.at(-1)), /^key:[0-9a-f]{12}$/, 'the key fingerprint, never the key');
  });

  test('streams need the key too', async () => {
    const { job } = await call(c, 'SubmitJob', {}, bearer('k-alpha'));
    const denied = await collect(c.WatchJob({ job_id: job.id }));
    assert.equal(denied.error?.code, S.UNAUTHENTICATED);
    assert.equal(svc.openStreams, 0, 'the handler never ran');
    const s = c.WatchJob({ job_id: job.id }, bearer('k-alpha'));
    const first = await new Promise<{ seq: number }>((resolve, reject) => {
      s.once('data', resolve);
      s.once('error', reject);
    });
    assert.equal(first.seq, 1);
    s.on('error', () => {});
    s.cancel();
  });

  test('health needs no key; reflection does', async () => {
    const h = healthClient(server.port);
    try {
      assert.equal((await call(h, 'Check', { service: 'lstm_trainer.v1.LstmTrainer' })).status, 'SERVING');
    } finally {
      h.close();
    }
    const anon = new ReflectionClient(server.port);
    await assert.rejects(anon.listServices(), (e: grpc.ServiceError) => e.code === S.UNAUTHENTICATED);
    anon.close();
    const keyed = new ReflectionClient(server.port, bearer('k-beta'));
    try {
      assert.ok((await keyed.listServices()).includes('lstm_trainer.v1.LstmTrainer'));
    } finally {
      keyed.close();
    }
  });

  test('empty keys are a configuration error', async () => {
    await assert.rejects(startGrpcServer({ service: svc, host: '127.0.0.1', port: 0, apiKeys: [''] }), /non-empty/);
  });
});

describe('shutdown', () => {
  test('close() ends open WatchJob streams with UNAVAILABLE (so clients resume) and returns promptly', async () => {
    const svc = new InMemoryJobService();
    const server = await startGrpcServer({ service: svc, host: '127.0.0.1', port: 0 });
    const c = trainerClient(server.port);
    try {
      const { job } = await call(c, 'SubmitJob', {});
      const done = collect(c.WatchJob({ job_id: job.id }));
      await until(() => svc.openStreams === 1, 5000, 'watch to open');
      const t0 = Date.now();
      await server.close();
      assert.ok(Date.now() - t0 < 3000, `close took ${Date.now() - t0} ms`);
      const { messages, error } = await done;
      assert.equal(messages.length, 1);
      assert.equal(error?.code, S.UNAVAILABLE);
      assert.equal(svc.openStreams, 0);
    } finally {
      c.close();
    }
  });
});
