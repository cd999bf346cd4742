// Scale-out check (a figure, not a test): 2 api processes and 4 worker processes (`lstm-trainer api`
// / `lstm-trainer worker`, each its own process) on one Redis, N small jobs submitted through both
// api processes and both APIs (HTTP POST /v1/jobs and gRPC SubmitJob, round robin). Checks that
// every job succeeded and that every job's history has epochs 1..E exactly once, and reports the
// submit→done time (p50/p90/max: from just before the submit request to the job's finishedAt) and
// jobs per minute (N over first submit → last finish). Then the same again with one worker (a
// random one) SIGKILLed every --kill-every seconds and a new one started in its place.
//
//   npx tsx bench/scale-out.ts                      # 200 jobs, then 200 more with a kill every 20 s
//   npx tsx bench/scale-out.ts --jobs 50 --kill-every 10
//   REDIS_CLUSTER_NODES=h:p,… npx tsx bench/scale-out.ts   # the same on a Redis Cluster
//
// Uses the Redis at REDIS_URL (default 127.0.0.1:6379) under a private key prefix, deleted at the end.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/jobs/config.js';
import { connectRedis, deleteKeysWithPrefix, Keys } from '../src/jobs/redis.js';
import { REDIS_URL, WorkerProcess } from '../test/support/processes.js';
import { ApiProcess } from '../test/support/faults.js';
import { call, trainerClient, type Client } from '../test/support/grpc-client.js';

const { values: o } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    epochs: { type: 'string', default: '4' },
    'kill-every': { type: 'string', default: '20' },
    'no-kills': { type: 'boolean', default: false },
    seed: { type: 'string', default: '7' },
  },
});
const JOBS = Number(o.jobs);
const EPOCHS = Number(o.epochs);
const KILL_EVERY_MS = Number(o['kill-every']) * 1000;
let seed = Number(o.seed) >>> 0;
const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const prefix = `bench-scale-${randomBytes(3).toString('hex')}`;
const env: Record<string, string> = {
  REDIS_URL: process.env.REDIS_CLUSTER_NODES ? '' : REDIS_URL,
  QUEUE_PREFIX: prefix,
  JOB_ATTEMPTS: '20',
  // N jobs at once from one client: no per-client caps here
  RATE_LIMIT_SUBMITS: '0',
  MAX_QUEUED_PER_CLIENT: '0',
  LOG_LEVEL: 'warn',
};
const config = loadConfig({ ...process.env, ...env });
const keys = new Keys(config.prefix);

/** A tiny job: a few ms of training; the cost is the service's (queue, child process, Redis). */
function spec(i: number, phase: string) {
  return {
    name: `${phase}-${i}`,
    model: { kind: 'scratch', numHiddens: 8 },
    data: { maxTokens: 1000, batchSize: 4, numSteps: 5 },
    train: { epochs: EPOCHS, seed: i + 1 },
    report: { predictEvery: EPOCHS, prefixes: ['time'], numPreds: 5 },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function phase(name: string, apis: ApiProcess[], grpcs: Client[], workers: WorkerProcess[], kills: boolean): Promise<void> {
  const redis = connectRedis(config);
  let killed = 0;
  let stop = false;
  const killer = (async () => {
    if (!kills) return;
    for (;;) {
      const end = Date.now() + KILL_EVERY_MS;
      while (Date.now() < end && !stop) await sleep(200);
      if (stop) return;
      const i = Math.floor(rand() * workers.length);
      workers[i].kill('SIGKILL');
      await workers[i].exited;
      killed++;
      workers[i] = new WorkerProcess(env);
      await workers[i].ready.catch((e) => console.log(`replacement worker: ${e}`));
    }
  })();
  try {
    const submitted: { id: string; at: number }[] = [];
    const t0 = Date.now();
    // submitted 8 at a time (as clients would; all 200 at once would only measure the api's queue)
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next++; i < JOBS; i = next++) {
          const at = Date.now();
          const api = i % 2;
          let id: string;
          if (i % 4 < 2) {
            const res = await fetch(`${apis[api].httpUrl}/v1/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(spec(i, name)),
            });
            if (res.status !== 201) throw new Error(`HTTP submit ${i}: ${res.status} ${await res.text()}`);
            id = ((await res.json()) as { id: string }).id;
          } else {
            id = (
              await call(grpcs[api], 'SubmitJob', {
                spec: {
                  ...spec(i, name),
                  model: { kind: 'MODEL_KIND_SCRATCH', num_hiddens: 8 },
                  data: { max_tokens: 1000, batch_size: 4, num_steps: 5 },
                  report: { predict_every: EPOCHS, prefixes: ['time'], num_preds: 5 },
                },
              })
            ).job.id;
          }
          submitted.push({ id, at });
        }
      }),
    );
    const tSubmitted = Date.now();
    // done: every job in a final state (read from Redis once a second)
    for (;;) {
      const finals = await Promise.all(['succeeded', 'failed', 'cancelled'].map((s) => redis.zcard(keys.byState(s as 'succeeded'))));
      const n = finals.reduce((a, b) => a + b, 0);
      if (n >= submitted.length + doneBefore) break;
      await sleep(1000);
    }
    stop = true;
    await killer;
    let failed = 0;
    let badHistories = 0;
    const times: number[] = [];
    let lastDone = 0;
    for (const s of submitted) {
      const [state, finishedAt] = await redis.hmget(keys.job(s.id), 'state', 'finishedAt');
      if (state !== 'succeeded') failed++;
      const done = Date.parse(finishedAt ?? '');
      times.push(done - s.at);
      lastDone = Math.max(lastDone, done);
      const entries = (await redis.xrange(keys.events(s.id), '-', '+')) as [string, string[]][];
      const epochs = entries
        .map(([, f]) => JSON.parse(f[1]) as { type: string; epoch?: number })
        .filter((e) => e.type === 'epoch')
        .map((e) => e.epoch);
      if (epochs.join(',') !== Array.from({ length: EPOCHS }, (_, k) => k + 1).join(',')) {
        badHistories++;
        console.log(`job ${s.id}: epochs ${epochs.join(',')}`);
      }
    }
    doneBefore += submitted.length;
    const wall = (lastDone - t0) / 1000;
    console.log(
      `${name}: ${submitted.length} jobs (${EPOCHS} epochs each) — succeeded ${submitted.length - failed}, not succeeded ${failed}; ` +
        `histories with every epoch exactly once: ${submitted.length - badHistories}/${submitted.length}; workers SIGKILLed: ${killed}`,
    );
    console.log(
      `${name}: submitting took ${((tSubmitted - t0) / 1000).toFixed(1)} s; submit→done p50 ${(pct(times, 50) / 1000).toFixed(1)} s, p90 ${(pct(times, 90) / 1000).toFixed(1)} s, ` +
        `max ${(Math.max(...times) / 1000).toFixed(1)} s; all done in ${wall.toFixed(1)} s = ${((submitted.length / wall) * 60).toFixed(0)} jobs/min`,
    );
  } finally {
    stop = true;
    await killer;
    redis.disconnect();
  }
}
let doneBefore = 0;

async function main(): Promise<void> {
  const apis: ApiProcess[] = [];
  const workers: WorkerProcess[] = [];
  const grpcs: Client[] = [];
  try {
    for (let i = 0; i < 2; i++) apis.push(new ApiProcess(env));
    for (let i = 0; i < 4; i++) workers.push(new WorkerProcess(env));
    await Promise.all([...apis, ...workers].map((p) => p.ready));
    for (const a of apis) grpcs.push(trainerClient(a.grpcPort));
    console.log(
      `2 api processes, 4 worker processes (WORKER_CONCURRENCY 1), Redis ${config.redisClusterNodes ? `cluster ${process.env.REDIS_CLUSTER_NODES}` : REDIS_URL}, prefix ${config.prefix}`,
    );
    await phase('steady', apis, grpcs, workers, false);
    if (!o['no-kills']) await phase(`kill-every-${KILL_EVERY_MS / 1000}s`, apis, grpcs, workers, true);
  } finally {
    for (const g of grpcs) g.close();
    for (const p of [...apis, ...workers]) p.kill('SIGKILL');
    await Promise.all([...apis, ...workers].map((p) => p.exited));
    const r = connectRedis(config);
    await deleteKeysWithPrefix(r, config.prefix);
    r.disconnect();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
