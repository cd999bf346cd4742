// A job's life through the HTTP API with a real worker process: SSE streaming and resuming,
// polling, generation (finished and running jobs), cancelling a running job, the CLI client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import request from 'supertest';
import type { JobEvent } from '../../src/jobs/types.js';
import { Keys, connectRedis } from '../../src/jobs/redis.js';
import {
  REDIS_URL,
  ROOT,
  TINY,
  WorkerProcess,
  assertSeqs,
  deletePrefix,
  epochNumbers,
  slowSpec,
  startTestApi,
  streamEvents,
  testEnv,
  waitFor,
  type TestApi,
} from '../support/service.js';

const env = testEnv();
let api: TestApi;
let worker: WorkerProcess;

before(async () => {
  [api, worker] = await Promise.all([startTestApi(env), WorkerProcess.start(env)]);
});
after(async () => {
  await worker?.stop();
  await api?.close();
  await deletePrefix(env.QUEUE_PREFIX);
});

const strip = (e: JobEvent) => {
  const { seq: _seq, time: _time, type: _type, ...rest } = e as JobEvent & { type: 'epoch' };
  return rest;
};
const states = (events: JobEvent[]) => events.filter((e) => e.type === 'state').map((e) => (e as { state: string }).state);

/** Submits a TINY job and waits for it to succeed: each test that reads a finished job has its own. */
async function finishedJob(): Promise<string> {
  const { body: job } = await request(api.url).post('/v1/jobs').send(TINY).expect(201);
  const events = await streamEvents(api.url, job.id);
  assert.equal(states(events).at(-1), 'succeeded');
  return job.id as string;
}

test('submit → epochs stream over SSE → succeeded; the poll API and the job view agree with the stream', async () => {
  const { body: job } = await request(api.url).post('/v1/jobs').send(TINY).expect(201);
  const events = await streamEvents(api.url, job.id);
  assertSeqs(events);
  assert.deepEqual(states(events), ['queued', 'running', 'succeeded']);
  assert.deepEqual(epochNumbers(events), [1, 2, 3, 4, 5, 6]);
  const epochs = events.filter((e) => e.type === 'epoch') as (JobEvent & { type: 'epoch' })[];
  assert.ok(epochs.every((e) => e.perplexity > 1 && e.tokensPerSec > 0 && e.epochs === 6));
  assert.deepEqual(
    epochs.filter((e) => e.samples).map((e) => e.epoch),
    [3, 6],
  );
  assert.ok(epochs[5].samples![0].text.startsWith('time traveller'));
  const final = events[events.length - 1] as JobEvent & { type: 'state' };
  assert.equal(final.summary!.epochs, 6);
  assert.equal(final.summary!.finalPerplexity, epochs[5].perplexity);

  const polled = await request(api.url).get(`/v1/jobs/${job.id}/epochs`).expect(200);
  assert.deepEqual(polled.body.epochs, epochs.map(strip));
  const later = await request(api.url).get(`/v1/jobs/${job.id}/epochs?after=4`).expect(200);
  assert.deepEqual(
    later.body.epochs.map((e: { epoch: number }) => e.epoch),
    [5, 6],
  );
  // paged: a full page says where the next starts (nextAfter); the pages add up to the history
  const pages: number[][] = [];
  for (let after: number | undefined = 0; after !== undefined; ) {
    const page: { body: { epochs: { epoch: number }[]; nextAfter?: number } } = await request(api.url)
      .get(`/v1/jobs/${job.id}/epochs?after=${after}&limit=4`)
      .expect(200);
    pages.push(page.body.epochs.map((e: { epoch: number }) => e.epoch));
    assert.ok(page.body.epochs.length <= 4);
    after = page.body.nextAfter;
  }
  assert.deepEqual(pages, [
    [1, 2, 3, 4],
    [5, 6],
  ]);
  const full = await request(api.url).get(`/v1/jobs/${job.id}/epochs?after=2&limit=4`).expect(200);
  assert.deepEqual([full.body.epochs.map((e: { epoch: number }) => e.epoch), full.body.nextAfter], [[3, 4, 5, 6], 6]);
  for (const bad of ['limit=0', 'limit=1001', 'limit=x']) {
    const res = await request(api.url).get(`/v1/jobs/${job.id}/epochs?${bad}`).expect(400);
    assert.equal(res.body.errors[0].field, 'limit');
  }

  const { body: view } = await request(api.url).get(`/v1/jobs/${job.id}`).expect(200);
  assert.equal(view.state, 'succeeded');
  assert.deepEqual(view.progress, { epoch: 6, epochs: 6 });
  assert.equal(view.checkpointEpoch, 6);
  assert.equal(view.lastSeq, events.length);
  assert.deepEqual(
    view.lastEpochs.map((e: { epoch: number }) => e.epoch),
    [2, 3, 4, 5, 6],
  );
  assert.ok(view.engine && view.backend && view.startedAt && view.finishedAt);

  // a finished job's stream replays the history and ends; from its last seq it ends at once
  const replay = await streamEvents(api.url, job.id);
  assert.deepEqual(replay, events);
  assert.deepEqual(await streamEvents(api.url, job.id, { fromSeq: events.length, timeoutMs: 5000 }), []);
});

test('reconnecting with Last-Event-ID mid-job gets the rest with no gap and no duplicate', async () => {
  const { body: job } = await request(api.url).post('/v1/jobs').send(slowSpec(25)).expect(201);
  const first = await streamEvents(api.url, job.id, { until: (e) => e.type === 'epoch' && e.epoch >= 3 });
  const lastSeen = first[first.length - 1].seq;
  await new Promise((r) => setTimeout(r, 300)); // events keep coming while disconnected
  const rest = await streamEvents(api.url, job.id, { fromSeq: lastSeen });
  assert.equal(rest[0].seq, lastSeen + 1);
  const all = [...first, ...rest];
  assertSeqs(all);
  assert.deepEqual(
    epochNumbers(all),
    Array.from({ length: 25 }, (_, i) => i + 1),
  );
  assert.deepEqual(states(all), ['queued', 'running', 'succeeded']);

  // ?fromSeq= (for clients that cannot set headers) starts after the given seq too
  const res = await fetch(`${api.url}/v1/jobs/${job.id}/events?fromSeq=${all.length - 2}`, { headers: { accept: 'text/event-stream' } });
  const text = await res.text();
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  assert.deepEqual(ids, [all.length - 1, all.length]);
  assert.match(text, /^event: state$/m);
});

test('generate from a finished job: JSON and streamed text agree; sampling is seeded', async () => {
  const finishedId = await finishedJob();
  const req = { prefix: 'Time Traveller!', numChars: 12 };
  const a = await request(api.url).post(`/v1/jobs/${finishedId}/generate`).send(req).expect(200);
  assert.equal(a.body.prefix, 'time traveller'); // cleaned as the corpus is
  assert.equal(a.body.generated.length, 12);
  assert.equal(a.body.text, a.body.prefix + a.body.generated);
  const b = await request(api.url).post(`/v1/jobs/${finishedId}/generate`).send(req).expect(200);
  assert.equal(b.body.text, a.body.text); // greedy by default

  const res = await fetch(`${api.url}/v1/jobs/${finishedId}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(req),
  });
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const body = await res.text();
  const chunks = [...body.matchAll(/^event: chunk\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]).text as string);
  assert.equal(chunks.length, 1 + 12);
  assert.equal(chunks.join(''), a.body.text);
  const done = JSON.parse(/^event: done\ndata: (.*)$/m.exec(body)![1]);
  assert.equal(done.text, a.body.text);

  const s1 = { prefix: 'the', numChars: 30, temperature: 1, seed: 5 };
  const x = await request(api.url).post(`/v1/jobs/${finishedId}/generate`).send(s1).expect(200);
  const y = await request(api.url).post(`/v1/jobs/${finishedId}/generate`).send(s1).expect(200);
  assert.equal(x.body.text, y.body.text);
});

test('generate from a running job, then cancel it: it stops within a minibatch and the worker moves on', async () => {
  const { body: job } = await request(api.url).post('/v1/jobs').send(slowSpec(2000)).expect(201);
  await waitFor('a checkpoint of the running job', async () => {
    const { body } = await request(api.url).get(`/v1/jobs/${job.id}`);
    return body.state === 'running' && body.checkpointEpoch >= 1;
  });
  const gen = await request(api.url).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'time', numChars: 8 }).expect(200);
  assert.equal(gen.body.generated.length, 8);
  const { body: running } = await request(api.url).get(`/v1/jobs/${job.id}`).expect(200);
  assert.equal(running.state, 'running');

  const cancelled = await request(api.url).post(`/v1/jobs/${job.id}/cancel`).send({}).expect(200);
  assert.equal(cancelled.body.state, 'cancelled');
  const atCancel = cancelled.body.progress.epoch;
  assert.ok(atCancel < 2000);

  const events = await streamEvents(api.url, job.id);
  assertSeqs(events);
  const final = events[events.length - 1] as JobEvent & { type: 'state' };
  assert.equal(final.state, 'cancelled');
  assert.equal(final.summary!.epochs, atCancel);
  assert.deepEqual(
    epochNumbers(events),
    Array.from({ length: atCancel }, (_, i) => i + 1),
  );

  // the worker is free again (it stopped training): a new job runs to the end promptly
  const t0 = Date.now();
  const { body: next } = await request(api.url).post('/v1/jobs').send(TINY).expect(201);
  const nextEvents = await streamEvents(api.url, next.id, { timeoutMs: 20_000 });
  assert.equal(states(nextEvents).pop(), 'succeeded');
  assert.ok(Date.now() - t0 < 15_000);
  assert.match(worker.output, new RegExp(`job ${job.id} stopped \\(cancel\\)`));
  const { body: after } = await request(api.url).get(`/v1/jobs/${job.id}`).expect(200);
  assert.equal(after.progress.epoch, atCancel); // nothing was appended after the cancel
  // what was trained is kept: generation still works from the cancelled job's checkpoint
  await request(api.url).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'time', numChars: 3 }).expect(200);
});

test('a damaged checkpoint: generate answers 409 naming the job, the epoch and the damage (never 500), then serves the previous checkpoint (two are kept)', async () => {
  const finishedId = await finishedJob();
  const keys = new Keys(env.QUEUE_PREFIX);
  const redis = connectRedis(REDIS_URL);
  try {
    // CHECKPOINT_EVERY 3, 6 epochs: the latest is epoch 6, the one before epoch 3
    assert.deepEqual(await redis.hmget(keys.ckpt(finishedId), 'epoch', 'prevEpoch'), ['6', '3']);
    // one flipped byte in the weights (the last byte of the stored checkpoint)
    const data = (await redis.hgetBuffer(keys.ckpt(finishedId), 'data'))!;
    data[data.length - 1] ^= 0x10;
    await redis.hset(keys.ckpt(finishedId), 'data', data);
  } finally {
    redis.disconnect();
  }
  // a fresh api process has no model cached (the one above still holds the good epoch-6 model)
  const fresh = await startTestApi(env);
  try {
    const req = { prefix: 'time traveller', numChars: 10 };
    const damaged = await request(fresh.url).post(`/v1/jobs/${finishedId}/generate`).send(req);
    assert.equal(damaged.status, 409, damaged.text);
    assert.match(damaged.headers['content-type'], /^application\/problem\+json/);
    assert.match(
      damaged.body.detail,
      new RegExp(
        `checkpoint of job ${finishedId} at epoch 6 is damaged \\(damaged checkpoint: (its bytes|the weights) do not match their SHA-256 digest\\).*previous checkpoint \\(epoch 3\\)`,
      ),
    );
    // the view says which checkpoint serves now, and generation works from it
    assert.equal((await request(fresh.url).get(`/v1/jobs/${finishedId}`).expect(200)).body.checkpointEpoch, 3);
    const again = await request(fresh.url).post(`/v1/jobs/${finishedId}/generate`).send(req).expect(200);
    assert.equal(again.body.generated.length, 10);
  } finally {
    await fresh.close();
  }
});

test('metrics count the epochs trained', async () => {
  const res = await request(api.url).get('/metrics').expect(200);
  const m = /^lstm_epochs_trained_total (\d+)$/m.exec(res.text);
  assert.ok(m && Number(m[1]) >= 6 + 25, res.text.slice(0, 300));
  assert.match(res.text, /lstm_jobs\{state="succeeded"\} [1-9]/);
});

test('CLI: submit --watch prints the id, the epochs and the final state, exit code 0', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'submit',
      '--url',
      api.url,
      '--epochs',
      '3',
      '--hidden',
      '8',
      '--max-tokens',
      '2000',
      '--batch-size',
      '4',
      '--num-steps',
      '5',
      '--predict-every',
      '3',
      '--watch',
    ],
    { cwd: ROOT, env: { ...process.env, API_KEYS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, err);
  const lines = out.trim().split('\n');
  assert.match(lines[0], /^j[0-9a-z]{19}$/);
  assert.match(out, /^epoch 3\/3 perplexity \d+\.\d+/m);
  assert.match(out, /^state succeeded — 3 epochs/m);
});
