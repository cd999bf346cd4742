// A job's own log (GET /v1/jobs/:id/logs): the worker's lines about one job, kept in Redis beside
// the job (P:job:<id>:log) — a real worker process, real Redis, the API in-process.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { connectRedis } from '../../src/jobs/redis.js';
import { FAST_RECOVERY, REDIS_URL, TINY, TestProcesses, startTestApi, streamEvents, testEnv, waitFor } from '../support/service.js';

const processes = new TestProcesses();
after(() => processes.cleanUp());

interface Line {
  time: string;
  level: string;
  msg: string;
}

async function logs(url: string, id: string, apiKey?: string): Promise<Line[]> {
  const r = request(url).get(`/v1/jobs/${id}/logs`);
  if (apiKey) r.set('authorization', `Bearer ${apiKey}`);
  const { body } = await r.expect(200).expect('content-type', /json/);
  assert.equal(body.jobId, id);
  for (const l of body.lines as Line[]) {
    assert.ok(!Number.isNaN(Date.parse(l.time)), JSON.stringify(l));
    assert.match(l.level, /^(debug|info|warn|error)$/);
    assert.equal(typeof l.msg, 'string');
  }
  return body.lines;
}

const msgs = (lines: Line[]) => lines.map((l) => l.msg);

test("a job's log: taken, started, checkpoints, succeeded — in order; it expires with the job (retention); unknown job 404, malformed id 400", async () => {
  const env = processes.own(testEnv({ JOB_RETENTION_SECONDS: '3600' }));
  const api = await startTestApi(env);
  const w = await processes.startWorker(env);
  try {
    const { body: job } = await request(api.url).post('/v1/jobs').send(TINY).expect(201);
    const events = await streamEvents(api.url, job.id);
    const lastEv = events.at(-1);
    assert.equal(lastEv?.type === 'state' ? lastEv.state : lastEv?.type, 'succeeded');

    // the worker notes "succeeded" just after the state change that ended the stream: wait for it
    const lines = await waitFor('the succeeded line in the log', async () => {
      const l = await logs(api.url, job.id);
      return msgs(l).at(-1)?.startsWith('succeeded') ? l : undefined;
    });
    const m = msgs(lines);
    assert.match(m[0], /^taken by worker \S+ on \S+ \(attempt 1 of \d+\)$/);
    assert.match(m[1], /^attempt 1 started from epoch 1 \(engine \S+, training process \d+\)$/);
    // TINY: 6 epochs, CHECKPOINT_EVERY 3 → after epochs 1, 3 and 6
    assert.deepEqual(
      lines.filter((l) => l.msg.startsWith('checkpoint written')).map((l) => [l.level, Number(/at epoch (\d+)/.exec(l.msg)![1])]),
      [
        ['debug', 1],
        ['debug', 3],
        ['debug', 6],
      ],
    );
    assert.match(m.at(-1)!, /^succeeded: 6 epochs, perplexity [\d.]+, [\d.]+ s$/);
    assert.equal(lines.at(-1)!.level, 'info');
    const times = lines.map((l) => Date.parse(l.time));
    assert.deepEqual(
      [...times].sort((a, b) => a - b),
      times,
    );

    // the worker's own log says the same lines (the process's log, not only Redis)
    assert.match(w.output, new RegExp(`job ${job.id} succeeded`));

    // kept beside the job and expiring with it: same TTL as the record
    const redis = connectRedis(REDIS_URL);
    try {
      const logKey = `${env.QUEUE_PREFIX}:job:${job.id}:log`;
      assert.equal(await redis.llen(logKey), lines.length);
      const [ttlLog, ttlJob] = await Promise.all([redis.ttl(logKey), redis.ttl(`${env.QUEUE_PREFIX}:job:${job.id}`)]);
      assert.ok(ttlJob > 3500 && ttlLog > 3500 && Math.abs(ttlLog - ttlJob) <= 1, `ttl log ${ttlLog}, job ${ttlJob}`);
    } finally {
      redis.disconnect();
    }

    const { body: nf } = await request(api.url)
      .get('/v1/jobs/j0000000000000000000/logs')
      .expect(404)
      .expect('content-type', /problem\+json/);
    assert.match(nf.detail, /not found/);
    const { body: bad } = await request(api.url).get('/v1/jobs/nope/logs').expect(400);
    assert.equal(bad.errors[0].field, 'id');
  } finally {
    await w.stop();
    await api.close();
  }
});

test("a crashed attempt is in the job's log: the signal and the last stderr line, then the resume from the checkpoint", async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '3' }));
  const api = await startTestApi(env);
  const w = await processes.startWorker({ ...env, LSTM_TEST_CRASH: 'abort', LSTM_TEST_CRASH_EPOCH: '5', LSTM_TEST_CRASH_ATTEMPTS: '1' });
  try {
    const spec = { ...TINY, train: { epochs: 8, seed: 3 } };
    const { body: job } = await request(api.url).post('/v1/jobs').send(spec).expect(201);
    await streamEvents(api.url, job.id, { timeoutMs: 90_000 });
    // the worker notes "succeeded" just after the state change that ended the stream: wait for it
    const lines = await waitFor('the succeeded line in the log', async () => {
      const l = await logs(api.url, job.id);
      return msgs(l).at(-1)?.startsWith('succeeded') ? l : undefined;
    });
    const m = msgs(lines);
    const crash = lines.find((l) => l.msg.startsWith('attempt 1 failed'));
    assert.ok(crash, m.join('\n'));
    assert.equal(crash.level, 'warn');
    assert.equal(
      crash.msg,
      'attempt 1 failed: the training process was killed by SIGABRT (a native fault); its last stderr line: LSTM_TEST_CRASH abort in epoch 5 (attempt 1); retrying',
    );
    // then taken again and resumed from the checkpoint of epoch 3, and succeeded
    const after = m.slice(m.indexOf(crash.msg) + 1);
    assert.match(after[0], /^taken by worker \S+ on \S+ \(attempt 2 of 3\)$/);
    assert.match(after[1], /^attempt 2 resumed from the checkpoint at epoch 3 /);
    assert.match(m.at(-1)!, /^succeeded: 8 epochs/);
  } finally {
    await w.stop();
    await api.close();
  }
});

test("the job's log needs an API key when keys are on", async () => {
  const env = processes.own(testEnv());
  const api = await startTestApi(env, { apiKeys: ['k-logs-1'] });
  try {
    const { body: job } = await request(api.url).post('/v1/jobs').set('authorization', 'Bearer k-logs-1').send(TINY).expect(201);
    await request(api.url).get(`/v1/jobs/${job.id}/logs`).expect(401);
    assert.deepEqual(await logs(api.url, job.id, 'k-logs-1'), []); // no worker: nothing yet
  } finally {
    await api.close();
  }
});
