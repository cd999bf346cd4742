// DELETE /v1/jobs/:id on a real api and a real worker: a running job is cancelled first (its
// training process ends), then every key of the job goes, it is 404 afterwards, and the worker —
// which still finishes its attempt — brings nothing back. A queued job goes from the queue too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { REDIS_URL, WorkerProcess, deletePrefix, processAlive, slowSpec, startTestApi, testEnv, waitFor, type TestApi } from '../support/service.js';

const env = testEnv({ REDIS_URL, CHECKPOINT_EVERY: '1' });
let api: TestApi;
let worker: WorkerProcess;
let redis: Redis;

before(async () => {
  api = await startTestApi(env);
  worker = await WorkerProcess.start(env);
  redis = new Redis(REDIS_URL);
});

after(async () => {
  await worker?.stop();
  await api?.close();
  await deletePrefix(env.QUEUE_PREFIX);
  redis?.disconnect();
});

async function post(spec: object): Promise<string> {
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
}

const get = (id: string) =>
  fetch(`${api.url}/v1/jobs/${id}`).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as { state: string; checkpointEpoch?: number; progress: { epoch: number } },
  }));

/** Every key of ours or BullMQ's that names the job. */
async function keysOf(id: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.QUEUE_PREFIX}:*${id}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  const indexed = await Promise.all(['jobs', 'jobs:queued', 'jobs:running', 'jobs:cancelled'].map((k) => redis.zscore(`${env.QUEUE_PREFIX}:${k}`, id)));
  indexed.forEach((s, i) => s !== null && out.push(`index ${i}`));
  for (const list of ['wait', 'active', 'paused', 'prioritized']) {
    const members = await redis.lrange(`${env.QUEUE_PREFIX}:train:${list}`, 0, -1).catch(() => [] as string[]);
    if (members.includes(id)) out.push(`queue ${list}`);
  }
  return out;
}

test('deleting a running job stops its training process, removes every key, and stays deleted', async () => {
  const id = await post(slowSpec(400));
  await waitFor(
    'running with a checkpoint',
    async () => {
      const { body } = await get(id);
      return body.state === 'running' && (body.checkpointEpoch ?? 0) >= 1;
    },
    60_000,
    100,
  );
  const m = new RegExp(`job ${id} running \\(attempt 1; training process (\\d+)\\)`).exec(worker.output);
  assert.ok(m, 'the worker names the training process');
  const pid = Number(m[1]);
  assert.ok(processAlive(pid));
  assert.ok((await keysOf(id)).length > 0);

  const del = await fetch(`${api.url}/v1/jobs/${id}`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  assert.deepEqual(await del.json(), { jobId: id, deleted: true });
  assert.equal((await get(id)).status, 404);
  await waitFor('training process ended', async () => !processAlive(pid), 15_000, 50);
  // the worker finishes its attempt after the delete: nothing of the job may come back
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual(await keysOf(id), []);
  assert.equal((await get(id)).status, 404);
  const again = await fetch(`${api.url}/v1/jobs/${id}`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  const list = (await (await fetch(`${api.url}/v1/jobs`)).json()) as { jobs: { id: string }[] };
  assert.ok(!list.jobs.some((j) => j.id === id));
});

test('deleting a queued job removes it from the queue; a malformed id is 400', async () => {
  const busy = await post(slowSpec(400));
  await waitFor('busy running', async () => (await get(busy)).body.state === 'running', 60_000, 100);
  const id = await post(slowSpec(5));
  assert.equal((await get(id)).body.state, 'queued');
  assert.equal((await fetch(`${api.url}/v1/jobs/${id}`, { method: 'DELETE' })).status, 200);
  assert.deepEqual(await keysOf(id), []);
  assert.equal((await fetch(`${api.url}/v1/jobs/not-an-id`, { method: 'DELETE' })).status, 400);
  assert.equal((await fetch(`${api.url}/v1/jobs/${busy}`, { method: 'DELETE' })).status, 200);
});
