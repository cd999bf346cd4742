// Worker heartbeats: /readyz and /metrics report the live workers (how many, engine/backend, last
// heartbeat, the jobs they train); a worker that stops leaves the list at once, one that is
// SIGKILLed once its heartbeat expires (three beats).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { TestProcesses, slowSpec, startTestApi, streamEvents, testEnv, waitFor } from '../support/service.js';

const processes = new TestProcesses();
after(() => processes.cleanUp());

test('readyz and metrics list the live workers: count, engine/backend, last heartbeat, jobs; a stopped worker leaves at once, a killed one when its heartbeat expires', async () => {
  const env = processes.own(testEnv({ HEARTBEAT_MS: '300' }));
  const api = await startTestApi(env);
  try {
    const none = (await request(api.url).get('/readyz').expect(200)).body;
    assert.equal(none.workers.live, 0);
    assert.match(none.warning, /no live worker/);

    const [a, b] = await Promise.all([processes.startWorker(env), processes.startWorker(env)]);
    const { body: job } = await request(api.url).post('/v1/jobs').send(slowSpec(400)).expect(201);
    await streamEvents(api.url, job.id, { until: (e) => e.type === 'epoch' });
    const ready = await waitFor('both workers, one with the job', async () => {
      const r = (await request(api.url).get('/readyz').expect(200)).body;
      return r.workers.live === 2 && r.workers.list.some((w: { jobs: number }) => w.jobs === 1) ? r : undefined;
    });
    assert.equal(ready.warning, undefined);
    for (const w of ready.workers.list) {
      assert.match(w.engine, /^(native|tfjs)$/);
      assert.ok(w.backend.length > 0);
      assert.ok(Date.now() - Date.parse(w.lastHeartbeat) < 5000, w.lastHeartbeat);
    }
    const engine = ready.workers.list[0].engine;
    const metrics = (await request(api.url).get('/metrics').expect(200)).text;
    assert.match(metrics, new RegExp(`^lstm_workers\\{engine="${engine}",backend="[^"]+"\\} 2$`, 'm'));
    assert.match(metrics, /^lstm_worker_heartbeat_age_seconds\{worker="[^"]+",engine="[^"]+",backend="[^"]+"\} [0-9.e-]+$/m);
    assert.match(metrics, /^lstm_worker_jobs\{worker="[^"]+"\} 1$/m);

    // SIGTERM: the worker hands its job back and takes itself off the list
    const owner = ready.workers.list.find((w: { jobs: number }) => w.jobs === 1).id as string;
    const [stopping, other] = owner.includes(`-${a.child.pid}-`) ? [a, b] : [b, a];
    await stopping.stop();
    const one = (await request(api.url).get('/readyz').expect(200)).body;
    assert.equal(one.workers.live, 1);
    // SIGKILL: gone once its heartbeat expires (no clean exit to remove it)
    other.kill('SIGKILL');
    await other.exited;
    await waitFor('the killed worker to leave the list', async () => (await request(api.url).get('/readyz').expect(200)).body.workers.live === 0, 10_000);
    assert.doesNotMatch((await request(api.url).get('/metrics').expect(200)).text, /^lstm_workers\{/m);
  } finally {
    await api.close();
  }
});
