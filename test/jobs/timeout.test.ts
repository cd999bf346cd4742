// train.timeoutSeconds: a job whose training time (elapsedMs, across resumes) passes it is cancelled
// by its worker, within a minibatch, with a state message that says why; its checkpoint is the last
// published epoch. The field is bounded (400 naming it).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { Keys, connectRedis } from '../../src/jobs/redis.js';
import { deserializeCheckpoint } from '../../src/train/checkpoint.js';
import { REDIS_URL, TestProcesses, assertSeqs, epochNumbers, slowSpec, startTestApi, streamEvents, testEnv } from '../support/service.js';

const processes = new TestProcesses();
after(() => processes.cleanUp());

test('train.timeoutSeconds: past it the job is cancelled with a message naming the limit; the checkpoint is the last published epoch; out-of-range values are 400', async () => {
  const env = processes.own(testEnv());
  const api = await startTestApi(env);
  try {
    for (const bad of [0, 604_801, 1.5, 'x']) {
      const { body } = await request(api.url)
        .post('/v1/jobs')
        .send({ train: { epochs: 5, timeoutSeconds: bad } })
        .expect(400);
      assert.ok(JSON.stringify(body).includes('train.timeoutSeconds'), JSON.stringify(body));
    }
    const w = await processes.startWorker(env);
    const base = slowSpec(5000);
    const { body: job } = await request(api.url)
      .post('/v1/jobs')
      .send({ ...base, train: { ...base.train, timeoutSeconds: 2 } })
      .expect(201);
    assert.equal(job.spec.train.timeoutSeconds, 2);
    const events = await streamEvents(api.url, job.id, { timeoutMs: 60_000 });
    assertSeqs(events);
    const eps = epochNumbers(events);
    assert.deepEqual(
      eps,
      Array.from({ length: eps.length }, (_, i) => i + 1),
    );
    const last = events.at(-1) as { type: string; state?: string; message?: string; summary?: { epochs: number } };
    assert.equal(last.state, 'cancelled');
    assert.equal(last.message, `cancelled: its training time exceeded train.timeoutSeconds (2 s) at epoch ${eps.length} of 5000`);
    assert.equal(last.summary?.epochs, eps.length);
    // stopped at the limit, not after the 5000 epochs: the last epoch published began before 2 s of training
    const lastEpoch = events.filter((e) => e.type === 'epoch').at(-1) as { elapsedMs: number };
    assert.ok(eps.length < 5000 && lastEpoch.elapsedMs < 2000 + 2000, JSON.stringify(lastEpoch));
    const { body: view } = await request(api.url).get(`/v1/jobs/${job.id}`).expect(200);
    assert.equal(view.state, 'cancelled');
    assert.equal(view.checkpointEpoch, eps.length);
    const redis = connectRedis(REDIS_URL);
    const data = await redis.hgetBuffer(new Keys(env.QUEUE_PREFIX).ckpt(job.id), 'data');
    redis.disconnect();
    assert.equal(deserializeCheckpoint(data!).epoch, eps.length);
    assert.match(w.output, new RegExp(`job ${job.id} cancelled: training time over train.timeoutSeconds \\(2 s\\)`));
    // the worker moves on
    const { body: next } = await request(api.url).post('/v1/jobs').send(slowSpec(2)).expect(201);
    assert.equal((await streamEvents(api.url, next.id, { timeoutMs: 60_000 })).at(-1)?.type, 'state');
    await w.stop();
  } finally {
    await api.close();
  }
});
