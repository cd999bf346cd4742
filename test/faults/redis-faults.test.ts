// Redis restarts under a running job: a private redis-server (own port and data dir, AOF on), an
// api process and a worker process against it, an SSE watcher and a gRPC WatchJob watcher. Redis
// is shut down (or SIGKILLed, with appendfsync always) and started again on the same port and dir. /readyz answers 503 during the outage
// and 200 after; api and worker reconnect; the job finishes; both watchers resume from the last
// sequence number they saw and end up with the whole history, with no gap and no duplicate.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { followJob } from '../../src/cli/sse-client.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { WorkerProcess, assertSeqs, epochNumbers, testEnv, waitFor } from '../support/service.js';
import { trainerClient, type Client } from '../support/grpc-client.js';
import { ApiProcess, RedisServer, freePort } from '../support/faults.js';

let redis: RedisServer;
let api: ApiProcess;
let worker: WorkerProcess;
let client: Client;
let env: Record<string, string>;

async function setUp(extraRedisArgs: string[] = []): Promise<void> {
  redis = new RedisServer(await freePort(), extraRedisArgs);
  await redis.start();
  env = testEnv({ REDIS_URL: redis.url, CHECKPOINT_EVERY: '5', LOG_LEVEL: 'warn', SHUTDOWN_DRAIN_MS: '0', LOCK_DURATION_MS: '30000' });
  api = await ApiProcess.start(env);
  worker = new WorkerProcess(env);
  await worker.ready;
  client = trainerClient(api.grpcPort);
}

async function tearDown(): Promise<void> {
  client?.close();
  worker?.kill('SIGKILL');
  await api?.stop();
  await redis?.destroy();
}
afterEach(tearDown);

/** WatchJob, called again from the last seq after every UNAVAILABLE, until the final state. */
async function grpcFollow(jobId: string, out: { seq: number; kind: string; epoch?: number; state?: string }[], reconnects: { n: number }): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    const from = out.length ? out[out.length - 1].seq : 0;
    const end = await new Promise<'done' | 'again'>((resolve) => {
      const s = client.WatchJob({ job_id: jobId, from_seq: from });
      let done = false;
      s.on('data', (ev: { seq: number; state?: { state: string }; epoch?: { epoch: number } }) => {
        out.push({ seq: ev.seq, kind: ev.state ? 'state' : 'epoch', epoch: ev.epoch?.epoch, state: ev.state?.state });
        if (ev.state && ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(ev.state.state)) done = true;
      });
      s.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.UNAVAILABLE) throw new Error(`WatchJob: ${grpc.status[e.code]} ${e.details}`);
        resolve('again');
      });
      s.on('end', () => resolve(done ? 'done' : 'again'));
    });
    if (end === 'done') return;
    reconnects.n++;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('WatchJob did not finish');
}

test('Redis restart mid-job (SHUTDOWN): readyz 503 then 200, the job finishes, SSE and gRPC watchers resume with no gap or duplicate', async () => {
  await setUp();
  await outage(() => redis.stop());
});

test('Redis killed mid-job (SIGKILL, appendfsync always): the same', async () => {
  await setUp(['--appendfsync', 'always']);
  await outage(() => redis.kill());
});

async function outage(down: () => Promise<void>): Promise<void> {
  const EPOCHS = 40;
  const spec = {
    model: { kind: 'scratch', numHiddens: 32 },
    data: { maxTokens: 6000, batchSize: 8, numSteps: 10 },
    train: { epochs: EPOCHS, seed: 5 },
    report: { predictEvery: 10, prefixes: ['time traveller'], numPreds: 10 },
  };
  const res = await fetch(`${api.httpUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  assert.equal(res.status, 201);
  const job = (await res.json()) as { id: string };

  const sse: JobEvent[] = [];
  const sseDone = (async () => {
    for await (const ev of followJob(job.id, { baseUrl: api.httpUrl, retries: 200, retryMs: 200 })) sse.push(ev);
  })();
  const grpcEvents: { seq: number; kind: string; epoch?: number; state?: string }[] = [];
  const grpcReconnects = { n: 0 };
  const grpcDone = grpcFollow(job.id, grpcEvents, grpcReconnects);

  // both watchers are following a running job
  await waitFor(
    'epoch 3 on both watchers',
    async () => sse.some((e) => e.type === 'epoch' && e.epoch >= 3) && grpcEvents.some((e) => (e.epoch ?? 0) >= 3),
    60_000,
  );

  // the outage, then the same port and dir again
  await down();
  await waitFor('readyz 503', async () => (await fetch(`${api.httpUrl}/readyz`)).status === 503, 10_000);
  const during = await fetch(`${api.httpUrl}/v1/jobs/${job.id}`);
  assert.equal(during.status, 503);
  assert.ok(Number(during.headers.get('retry-after')) > 0);
  const seenDuring = { sse: sse.length, grpc: grpcEvents.length };
  await redis.start();
  await waitFor('readyz 200', async () => (await fetch(`${api.httpUrl}/readyz`)).status === 200, 20_000);

  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all([sseDone, grpcDone]),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`watchers did not finish; sse ${sse.length}, grpc ${grpcEvents.length}\n${worker.output.slice(-2000)}`)),
        120_000,
      );
    }),
  ]);
  clearTimeout(timer);

  // SSE: the whole history, once
  assertSeqs(sse);
  assert.deepEqual(
    epochNumbers(sse),
    Array.from({ length: EPOCHS }, (_, i) => i + 1),
  );
  const last = sse[sse.length - 1];
  assert.ok(last.type === 'state' && last.state === 'succeeded', JSON.stringify(last));
  // gRPC: the same sequence
  assert.deepEqual(
    grpcEvents.map((e) => e.seq),
    sse.map((e) => e.seq),
  );
  assert.deepEqual(
    grpcEvents.filter((e) => e.kind === 'epoch').map((e) => e.epoch),
    epochNumbers(sse),
  );
  assert.ok(seenDuring.sse < sse.length && seenDuring.grpc < grpcEvents.length, 'events kept coming after the restart');
  // the gRPC watcher was actually cut off and resumed (the SSE one may have been waiting quietly)
  assert.ok(grpcReconnects.n >= 1 || sse.length === grpcEvents.length);
  const final = await (await fetch(`${api.httpUrl}/v1/jobs/${job.id}`)).json();
  assert.equal(final.state, 'succeeded');
  assert.equal(final.progress.epoch, EPOCHS);
  if (process.env.DEBUG_FAULTS) console.log(worker.output, JSON.stringify(sse.filter((e) => e.type === 'state')));
}
