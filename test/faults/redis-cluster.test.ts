// The service on a real Redis Cluster: three masters started on loopback ports by the test
// (redis-server --cluster-enabled yes ×3, redis-cli --cluster create), the api and the workers as
// real processes with REDIS_CLUSTER_NODES. The whole lifecycle (submit over HTTP → a worker trains →
// succeeded, each epoch once, text generated), idempotency and retention (the scripts' keys that
// come from a record), and a worker SIGKILLed mid-job whose job another worker finishes from its
// checkpoint. Every key lands under the hash tag {prefix}, in one slot; none on the plain Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { Cluster, Redis } from 'ioredis';
import { Keys } from '../../src/jobs/redis.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { FAST_RECOVERY, REDIS_URL, TINY, WorkerProcess, assertSeqs, epochNumbers, streamEvents, waitFor } from '../support/service.js';
import { ApiProcess, RedisCluster } from '../support/faults.js';

let cluster: RedisCluster;
let client: Cluster;
const procs: (WorkerProcess | ApiProcess)[] = [];

before(async () => {
  cluster = await RedisCluster.start(3);
  client = new Cluster(cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  client?.disconnect();
  await cluster?.destroy();
});

function clusterEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: '', // no single Redis: the cluster only
    REDIS_CLUSTER_NODES: cluster.nodes,
    QUEUE_PREFIX: `c${randomBytes(4).toString('hex')}`,
    CHECKPOINT_EVERY: '3',
    SSE_HEARTBEAT_MS: '200',
    ...extra,
  };
}

async function startApi(env: Record<string, string>): Promise<ApiProcess> {
  const api = new ApiProcess(env);
  procs.push(api);
  await api.ready;
  return api;
}

async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const w = new WorkerProcess(env);
  procs.push(w);
  await w.ready;
  return w;
}

/** Every key of the service's prefix, from every master, with the master it is on. */
async function keysOnCluster(prefix: string): Promise<{ key: string; port: number }[]> {
  const out: { key: string; port: number }[] = [];
  for (const node of client.nodes('master')) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) out.push({ key, port: node.options.port! });
    } while (cursor !== '0');
  }
  return out;
}

const states = (events: JobEvent[]) => events.filter((e): e is JobEvent & { type: 'state' } => e.type === 'state').map((e) => e.state);

test('lifecycle on a 3-master cluster: submit over HTTP, a worker trains it, every epoch once, generate; all keys under {prefix} in one slot', async () => {
  const env = clusterEnv({ JOB_RETENTION_SECONDS: '3600' });
  const api = await startApi(env);
  const w = await startWorker(env);
  const { body: job } = await request(api.httpUrl)
    .post('/v1/jobs')
    .send({ ...TINY, idempotencyKey: 'cluster-1' })
    .expect(201);
  const events = await streamEvents(api.httpUrl, job.id, { timeoutMs: 90_000 });
  assertSeqs(events);
  assert.deepEqual(epochNumbers(events), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(states(events), ['queued', 'running', 'succeeded']);
  const { body: gen } = await request(api.httpUrl).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'time traveller', numChars: 20 }).expect(200);
  assert.equal(gen.generated.length, 20);

  // the same idempotency key and spec names the same job (the create script read its record)
  const again = await request(api.httpUrl)
    .post('/v1/jobs')
    .send({ ...TINY, idempotencyKey: 'cluster-1' })
    .expect(200);
  assert.equal(again.body.id, job.id);
  const other = await request(api.httpUrl)
    .post('/v1/jobs')
    .send({ ...TINY, train: { ...TINY.train, epochs: 2 }, idempotencyKey: 'cluster-1' });
  assert.equal(other.status, 409, JSON.stringify(other.body));

  // where the keys are: the record, its history, its checkpoint and its idempotency key (given an
  // expiry by the final transition) on the cluster, in one slot, under the hash tag
  const keys = new Keys(`{${env.QUEUE_PREFIX}}`);
  const found = await keysOnCluster(env.QUEUE_PREFIX);
  const names = found.map((k) => k.key);
  for (const k of [keys.job(job.id), keys.events(job.id), keys.ckpt(job.id), keys.log(job.id), keys.all, keys.byState('succeeded')])
    assert.ok(names.includes(k), `${k} in ${names.join(' ')}`);
  assert.ok(
    names.some((k) => k.startsWith(`{${env.QUEUE_PREFIX}}:train:`)),
    `BullMQ's keys under the tag too: ${names.join(' ')}`,
  );
  assert.equal(new Set(found.map((k) => k.port)).size, 1, 'every key on one master');
  const slots = new Set(await Promise.all(names.map((k) => client.cluster('KEYSLOT', k))));
  assert.equal(slots.size, 1, 'every key in one slot');
  const idem = names.find((k) => k.startsWith(`{${env.QUEUE_PREFIX}}:idem:`));
  assert.ok(idem, 'the idempotency key is there');
  const ttl = await client.ttl(idem);
  assert.ok(ttl > 3000 && ttl <= 3600, `the idempotency key expires with the job (ttl ${ttl})`);
  assert.ok((await client.ttl(keys.job(job.id))) > 3000, 'the record expires after JOB_RETENTION_SECONDS');

  // and nothing on the plain Redis the other tests use
  const plain = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await plain.connect();
    const [, onPlain] = await plain.scan('0', 'MATCH', `*${env.QUEUE_PREFIX}*`, 'COUNT', 100_000);
    assert.deepEqual(onPlain, []);
  } catch (e) {
    if (!/ECONNREFUSED/.test(String(e))) throw e;
  } finally {
    plain.disconnect();
  }
  await w.stop();
  await api.stop();
});

test('worker SIGKILLed mid-job on the cluster: another worker takes the job over from its checkpoint, every epoch once', async () => {
  const env = clusterEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '3' });
  const api = await startApi(env);
  const EPOCHS = 20;
  const spec = {
    model: { kind: 'scratch', numHiddens: 16 },
    data: { maxTokens: 2000, batchSize: 4, numSteps: 10 },
    train: { epochs: EPOCHS, seed: 3 },
    report: { predictEvery: 5, prefixes: ['time traveller'], numPreds: 10 },
  };
  const { body: job } = await request(api.httpUrl).post('/v1/jobs').send(spec).expect(201);

  // the first worker hangs right after publishing epoch 5 (checkpoint of epoch 3 written): killed there
  const w1 = new WorkerProcess({ ...env, LSTM_TEST_PAUSE_AT: 'epoch', LSTM_TEST_PAUSE_EPOCH: '5' });
  procs.push(w1);
  await w1.ready;
  await waitFor('the worker to pause after epoch 5', async () => /LSTM_TEST_PAUSED at=epoch job=\S+ epoch=5/.test(w1.output), 60_000, 20);
  // a second worker, idle (the job is locked by the first), sees the first one's lock expire
  const w2 = await startWorker(env);
  w1.kill('SIGKILL');
  const killedAt = Date.now();
  await w1.exited;

  const events = await streamEvents(api.httpUrl, job.id, { timeoutMs: 120_000 });
  assertSeqs(events);
  assert.deepEqual(
    epochNumbers(events),
    Array.from({ length: EPOCHS }, (_, i) => i + 1),
  );
  assert.deepEqual(states(events), ['queued', 'running', 'queued', 'running', 'succeeded']);
  const resumed = events.find((e) => e.type === 'state' && e.state === 'running' && e.attempt === 2);
  assert.ok(resumed, JSON.stringify(states(events)));
  const requeued = Date.parse(events.find((e, i) => i > 1 && e.type === 'state' && e.state === 'queued')!.time);
  assert.ok(requeued - killedAt < 10_000, `requeued ${requeued - killedAt} ms after the kill`);
  const { body: view } = await request(api.httpUrl).get(`/v1/jobs/${job.id}`).expect(200);
  assert.equal(view.state, 'succeeded');
  assert.equal(view.checkpointEpoch, EPOCHS);
  const { body: log } = await request(api.httpUrl).get(`/v1/jobs/${job.id}/logs`).expect(200);
  assert.match(JSON.stringify(log), /attempt 2 resumed from the checkpoint at epoch 3/, 'the second attempt resumed from the checkpoint');
  await w2.stop();
  await api.stop();
});
