// Worker faults: SIGKILL a worker at chosen points of a job — after publishing an epoch, while
// writing a checkpoint, just before recording the final state — several times in a row. The job
// still succeeds with every epoch exactly once and a loadable final checkpoint. A job whose worker
// keeps dying fails after JOB_ATTEMPTS with the reason; it is never retried forever.
//
// The kill points come from the worker's test-only hook (LSTM_TEST_PAUSE_AT, src/jobs/test-hooks.ts):
// the worker prints a marker and hangs there, and the test kills it then — no timing involved.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { deserializeCheckpoint } from '../../src/train/checkpoint.js';
import { Keys, connectRedis } from '../../src/jobs/redis.js';
import type { JobEvent } from '../../src/jobs/types.js';
import {
  FAST_RECOVERY,
  REDIS_URL,
  TestProcesses,
  type WorkerProcess,
  assertSeqs,
  epochNumbers,
  slowSpec,
  startTestApi,
  streamEvents,
  testEnv,
  waitFor,
} from '../support/service.js';
import { rng } from '../support/faults.js';

const SEED = Number(process.env.FAULT_SEED ?? 4242);
const r = rng(SEED);
const processes = new TestProcesses();
after(() => processes.cleanUp());

function spec(epochs: number) {
  return {
    model: { kind: 'scratch', numHiddens: 16 },
    data: { maxTokens: 2000, batchSize: 4, numSteps: 10 },
    train: { epochs, seed: 3 },
    report: { predictEvery: 5, prefixes: ['time traveller'], numPreds: 10 },
  };
}

/** A worker that hangs at `at` (epoch ≥ `epoch`) — resolved with the marker once it is there. */
async function pausedWorker(env: Record<string, string>, at: string, epoch: number): Promise<{ w: WorkerProcess; marker: string }> {
  const w = await processes.startWorker({ ...env, LSTM_TEST_PAUSE_AT: at, LSTM_TEST_PAUSE_EPOCH: String(epoch) });
  const marker = await waitFor(`the worker to pause at ${at}`, async () => /LSTM_TEST_PAUSED at=\S+ job=\S+ epoch=\d+/.exec(w.output)?.[0], 60_000, 20);
  return { w, marker };
}

async function kill(w: WorkerProcess): Promise<void> {
  w.kill('SIGKILL');
  await w.exited;
}

const states = (events: JobEvent[]) => events.filter((e): e is JobEvent & { type: 'state' } => e.type === 'state');

test('SIGKILL at a random moment, after an epoch, during a checkpoint write and before the final state write: the job succeeds, every epoch once, loadable checkpoint', async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '5' }));
  const api = await startTestApi(env);
  try {
    const EPOCHS = 30;
    const { body: job } = await request(api.url).post('/v1/jobs').send(spec(EPOCHS)).expect(201);

    // 0. at a random moment while it trains (no hook: wherever the worker happens to be)
    const w0 = await processes.startWorker(env);
    await streamEvents(api.url, job.id, { until: (e) => e.type === 'epoch' && e.epoch >= 1 });
    await new Promise((res) => setTimeout(res, Math.floor(r() * 40)));
    await kill(w0);
    const after0 = (await request(api.url).get(`/v1/jobs/${job.id}`).expect(200)).body;
    assert.ok(after0.progress.epoch < EPOCHS - 6, JSON.stringify(after0.progress));

    // 1. after publishing a random later epoch (usually between two checkpoints)
    const e1 = after0.progress.epoch + 1 + Math.floor(r() * 4);
    const k1 = await pausedWorker(env, 'epoch', e1);
    assert.match(k1.marker, new RegExp(`at=epoch job=${job.id} epoch=${e1}$`));
    await kill(k1.w);
    const after1 = (await request(api.url).get(`/v1/jobs/${job.id}`).expect(200)).body;
    assert.equal(after1.progress.epoch, e1);

    // 2. while writing a checkpoint of a later epoch (the next one a resumed worker writes)
    const k2 = await pausedWorker(env, 'checkpoint', e1 + 1);
    const ck2 = Number(/epoch=(\d+)/.exec(k2.marker)![1]);
    assert.ok(ck2 > e1 && ck2 % 3 === 0, k2.marker);
    const before2 = (await request(api.url).get(`/v1/jobs/${job.id}`).expect(200)).body;
    assert.equal(before2.progress.epoch, ck2); // published, but its checkpoint not yet written
    assert.ok(before2.checkpointEpoch < ck2);
    await kill(k2.w);

    // 3. after the last epoch and its checkpoint, just before `succeeded` is recorded
    const k3 = await pausedWorker(env, 'final', EPOCHS);
    const before3 = (await request(api.url).get(`/v1/jobs/${job.id}`).expect(200)).body;
    assert.equal(before3.state, 'running');
    assert.equal(before3.progress.epoch, EPOCHS);
    assert.equal(before3.checkpointEpoch, EPOCHS);
    await kill(k3.w);

    // 4. a worker that is left alone finishes it
    const w4 = await processes.startWorker(env);
    const events = await streamEvents(api.url, job.id, { timeoutMs: 90_000 });
    assertSeqs(events);
    assert.deepEqual(
      epochNumbers(events),
      Array.from({ length: EPOCHS }, (_, i) => i + 1),
    );
    const st = states(events);
    assert.deepEqual(
      st.map((e) => e.state),
      ['queued', 'running', 'queued', 'running', 'queued', 'running', 'queued', 'running', 'queued', 'running', 'succeeded'],
    );
    assert.deepEqual(
      st.filter((e) => e.state === 'running').map((e) => e.attempt),
      [1, 2, 3, 4, 5],
    );
    const last = st[st.length - 1];
    assert.equal(last.summary?.epochs, EPOCHS);
    assert.ok(typeof last.summary?.finalPerplexity === 'number' && last.summary.finalPerplexity > 1, JSON.stringify(last));

    // the final checkpoint loads, and is the last epoch's
    const redis = connectRedis(REDIS_URL);
    const [epoch, data] = await redis.hmgetBuffer(new Keys(env.QUEUE_PREFIX).ckpt(job.id), 'epoch', 'data');
    redis.disconnect();
    const ckpt = deserializeCheckpoint(data!);
    assert.equal(Number(epoch!.toString()), EPOCHS);
    assert.equal(ckpt.epoch, EPOCHS);
    const { body: gen } = await request(api.url).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'time traveller', numChars: 20 }).expect(200);
    assert.equal(gen.generated.length, 20);
    await w4.stop();
  } finally {
    await api.close();
  }
});

test('a job whose worker keeps dying fails after JOB_ATTEMPTS (stalled count) with the reason, and is not retried again', async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '2' }));
  const api = await startTestApi(env);
  try {
    const { body: job } = await request(api.url).post('/v1/jobs').send(spec(30)).expect(201);
    for (let i = 0; i < 2; i++) {
      const k = await pausedWorker(env, 'epoch', 1 + i * 2);
      await kill(k.w);
    }
    // a healthy worker notices the second loss (stalled check) and must not take the job again
    const w = await processes.startWorker(env);
    const events = await streamEvents(api.url, job.id, { timeoutMs: 60_000 });
    assertSeqs(events);
    const st = states(events);
    assert.deepEqual(
      st.map((e) => e.state),
      ['queued', 'running', 'queued', 'running', 'failed'],
    );
    assert.match(st[4].error ?? '', /its worker was lost 2 times/);
    const { body: failed } = await request(api.url).get(`/v1/jobs/${job.id}`).expect(200);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error, /worker was lost/);
    // epochs published before the losses stay, each once
    const eps = epochNumbers(events);
    assert.deepEqual(
      eps,
      Array.from({ length: eps.length }, (_, i) => i + 1),
    );
    // the healthy worker is still idle: the job is not delivered again (queue holds nothing to run)
    const { body: again } = await request(api.url).post('/v1/jobs').send(spec(2)).expect(201);
    const done = await streamEvents(api.url, again.id, { timeoutMs: 60_000 });
    assert.equal(states(done).at(-1)?.state, 'succeeded');
    assert.ok(!w.output.includes(`job ${job.id} running`), w.output);
    await w.stop();
  } finally {
    await api.close();
  }
});

test('a damaged checkpoint: the next worker sets it aside, resumes from the previous one (two are kept) and the job succeeds, every epoch once', async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '3' }));
  const api = await startTestApi(env);
  const redis = connectRedis(REDIS_URL);
  const keys = new Keys(env.QUEUE_PREFIX);
  try {
    const EPOCHS = 12;
    const { body: job } = await request(api.url).post('/v1/jobs').send(spec(EPOCHS)).expect(201);
    // killed after publishing epoch 7: checkpoints 6 (latest) and 3 (the one before)
    const k = await pausedWorker(env, 'epoch', 7);
    await kill(k.w);
    assert.deepEqual(await redis.hmget(keys.ckpt(job.id), 'epoch', 'prevEpoch'), ['6', '3']);
    const data = (await redis.hgetBuffer(keys.ckpt(job.id), 'data'))!;
    data[data.length - 100] ^= 0x01;
    await redis.hset(keys.ckpt(job.id), 'data', data);

    const w = await processes.startWorker(env);
    const events = await streamEvents(api.url, job.id, { timeoutMs: 120_000 });
    assertSeqs(events);
    assert.deepEqual(
      epochNumbers(events),
      Array.from({ length: EPOCHS }, (_, i) => i + 1),
    );
    const st = states(events);
    assert.equal(st[st.length - 1].state, 'succeeded');
    const resumed = st.filter((e) => e.state === 'running').pop()!;
    assert.match(resumed.message ?? '', /the checkpoint at epoch 6 is damaged \(damaged checkpoint: .*SHA-256.*\); resuming from the checkpoint at epoch 3/);
    assert.match(w.output, /checkpoint at epoch 6 is damaged/);
    // the final checkpoint is good and generation works
    const final = await redis.hgetBuffer(keys.ckpt(job.id), 'data');
    assert.equal(deserializeCheckpoint(final!).epoch, EPOCHS);
    await request(api.url).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'time', numChars: 5 }).expect(200);
  } finally {
    redis.disconnect();
    await api.close();
  }
});

test('a frozen worker (SIGSTOP) loses its job to another worker; when it comes back (SIGCONT) it is fenced out: no epoch twice, its training process stops', async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '3' }));
  const api = await startTestApi(env);
  try {
    const EPOCHS = 150; // tens of ms each: the job is still running when the frozen worker thaws
    const { body: job } = await request(api.url).post('/v1/jobs').send(slowSpec(EPOCHS)).expect(201);
    const frozen = await processes.startWorker(env);
    await streamEvents(api.url, job.id, { until: (e) => e.type === 'epoch' && e.epoch >= 2 });
    frozen.kill('SIGSTOP');
    const w = await processes.startWorker(env);
    // the other worker takes the job over once the frozen one's lock expired
    await streamEvents(api.url, job.id, { until: (e) => e.type === 'state' && e.state === 'running' && e.attempt === 2, timeoutMs: 60_000 });
    frozen.kill('SIGCONT');
    await waitFor('the thawed worker to stop its job', async () => new RegExp(`job ${job.id} stopped \\(lost\\)`).test(frozen.output), 30_000);
    // …at once, while the other worker still trains it (not only when the job has ended)
    assert.equal((await request(api.url).get(`/v1/jobs/${job.id}`).expect(200)).body.state, 'running');
    const events = await streamEvents(api.url, job.id, { timeoutMs: 120_000 });
    assertSeqs(events);
    assert.deepEqual(
      epochNumbers(events),
      Array.from({ length: EPOCHS }, (_, i) => i + 1),
    );
    assert.deepEqual(
      states(events).map((e) => e.state),
      ['queued', 'running', 'queued', 'running', 'succeeded'],
    );
    assert.ok(frozen.alive, 'the thawed worker keeps running (it only lost the job)');
    assert.doesNotMatch(frozen.output, new RegExp(`job ${job.id} succeeded`));
    await Promise.all([frozen.stop(), w.stop()]);
  } finally {
    await api.close();
  }
});
