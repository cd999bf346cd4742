// A worker that cannot reach Redis for longer than its job lock stops its jobs' training processes
// (the jobs are another worker's by then) instead of training on where nobody sees it. Redis is
// frozen (SIGSTOP: connections stay open, nothing answers), the worker says so and its training
// process is gone; once Redis answers again (SIGCONT) the job is taken up again from its checkpoint
// and succeeds, every epoch once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { TestProcesses, assertSeqs, processAlive, epochNumbers, slowSpec, startTestApi, streamEvents, testEnv, waitFor } from '../support/service.js';
import { RedisServer, freePort } from '../support/faults.js';

let redis: RedisServer | undefined;
const processes = new TestProcesses();
after(async () => {
  await processes.cleanUp();
  redis?.signal('SIGCONT');
  await redis?.destroy();
});

test('Redis unreachable for longer than the lock: the worker stops its job’s training process; when Redis is back the job resumes and succeeds, every epoch once', async () => {
  redis = new RedisServer(await freePort());
  await redis.start();
  const env = testEnv({ REDIS_URL: redis.url, LOCK_DURATION_MS: '3000', STALLED_INTERVAL_MS: '500', HEARTBEAT_MS: '500', JOB_ATTEMPTS: '3' });
  const api = await startTestApi(env);
  try {
    const EPOCHS = 30;
    const { body: job } = await request(api.url).post('/v1/jobs').send(slowSpec(EPOCHS)).expect(201);
    const w = await processes.startWorker(env);
    await streamEvents(api.url, job.id, { until: (e) => e.type === 'epoch' && e.epoch >= 3 });
    const pid = Number(new RegExp(`job ${job.id} running \\(attempt 1; training process (\\d+)\\)`).exec(w.output)?.[1]);
    assert.ok(pid > 0 && processAlive(pid), w.output);

    redis.signal('SIGSTOP');
    const said = await waitFor(
      'the worker to stop the training process',
      async () =>
        new RegExp(
          `Redis unreachable for [0-9.]+ s, longer than the job lock \\(LOCK_DURATION_MS 3000 ms\\): stopping job ${job.id}'s training process \\(pid ${pid}\\)`,
        ).exec(w.output)?.[0],
      30_000,
    );
    assert.ok(said);
    await waitFor('the training process to be gone', async () => !processAlive(pid), 10_000);
    assert.ok(w.alive, 'the worker itself stays up');

    redis.signal('SIGCONT');
    const events = await streamEvents(api.url, job.id, { timeoutMs: 120_000 });
    assertSeqs(events);
    assert.deepEqual(
      epochNumbers(events),
      Array.from({ length: EPOCHS }, (_, i) => i + 1),
    );
    const states = events.filter((e): e is typeof e & { type: 'state' } => e.type === 'state');
    assert.equal(states.at(-1)?.state, 'succeeded');
    assert.ok(states.filter((e) => e.state === 'running').length >= 2, JSON.stringify(states));
    await w.stop();
  } finally {
    redis.signal('SIGCONT'); // a failed assertion above must not leave the api waiting on a frozen Redis
    await api.close();
  }
});
