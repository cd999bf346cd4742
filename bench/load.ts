// npx tsx bench/load.ts [--sse 500] [--grpc 500] [--epochs 300] [--hidden 16] [--seconds 5] [--json]
// Load figures (a benchmark, not a test): an api process and a worker process on loopback against
// REDIS_URL (default 127.0.0.1:6379, a private key prefix deleted at the end). N watchers (SSE and
// gRPC WatchJob, mixed) follow one running job with many quick epochs; reported: the latency from
// an epoch's publication (the event's `time`, stamped by the worker just before the append) to its
// receipt by each watcher (p50/p99/max), then the throughput of GET /v1/jobs/:id and of submit
// (a bounded loop with fixed concurrency), and the api process's RSS under that load. Bounded in
// count and time: it stops by itself (hard limit 180 s).
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, protoFilePath } from '../src/api/grpc/index.js';
import { SseParser } from '../src/api/dashboard/public/sse.js';
import { connectRedis, deleteKeysWithPrefix } from '../src/jobs/redis.js';

const { values: args } = parseArgs({
  options: {
    sse: { type: 'string', default: '500' },
    grpc: { type: 'string', default: '500' },
    epochs: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '5' },
    hidden: { type: 'string', default: '16' },
    json: { type: 'boolean', default: false },
  },
});
const N_SSE = Math.min(5000, Number(args.sse));
const N_GRPC = Math.min(5000, Number(args.grpc));
const EPOCHS = Math.min(2000, Number(args.epochs));
const SECONDS = Math.min(30, Number(args.seconds));
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `load${randomBytes(3).toString('hex')}`;
const children: ChildProcess[] = [];

const hard = setTimeout(() => {
  console.error('bench/load: hard time limit reached; stopping');
  for (const c of children) c.kill('SIGKILL');
  process.exit(2);
}, 180_000);
hard.unref();

function start(cmd: string, env: Record<string, string>): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', cmd], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL, QUEUE_PREFIX: PREFIX, HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const on = (d: Buffer) => {
      out += d.toString();
      if ((cmd === 'api' && /gRPC on/.test(out)) || (cmd === 'worker' && /worker ready/.test(out))) resolve({ child, out: () => out });
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => reject(new Error(`${cmd} exited (${c}): ${out}`)));
  });
}

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function request(base: string, method: string, p: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      base + p,
      { method, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** `concurrency` loops issuing requests for `seconds`: requests/s, latency p50/p99, statuses. */
async function throughput(fn: () => Promise<number>, concurrency: number, seconds: number) {
  const lat: number[] = [];
  const statuses: Record<number, number> = {};
  const end = Date.now() + seconds * 1000;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        const s = await fn().catch(() => 0);
        lat.push(performance.now() - t);
        statuses[s] = (statuses[s] ?? 0) + 1;
      }
    }),
  );
  const secs = (Date.now() - t0) / 1000;
  return { requests: lat.length, perSecond: Math.round(lat.length / secs), p50Ms: +pct(lat, 50).toFixed(2), p99Ms: +pct(lat, 99).toFixed(2), statuses };
}

async function main() {
  const api = await start('api', {
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_SUBMITS: '0',
    MAX_QUEUED_PER_CLIENT: '0',
    MAX_QUEUED_JOBS: '0',
    SHUTDOWN_DRAIN_MS: '0',
    // the 1,000 watchers are one client here; the per-client stream cap would refuse most of them
    MAX_STREAMS_PER_CLIENT: '0',
  });
  const base = /HTTP on (http:\/\/[0-9.]+:\d+)/.exec(api.out())![1];
  const grpcPort = Number(/gRPC on [0-9.]+:(\d+)/.exec(api.out())![1]);
  const apiPid = api.child.pid!;
  const rssIdle = rssMb(apiPid);

  // the job, queued before any worker runs, so every watcher sees it from its first epoch
  const spec = {
    model: { kind: 'scratch', numHiddens: Math.min(256, Number(args.hidden)) },
    data: { maxTokens: 3000, batchSize: 8, numSteps: 10 },
    train: { epochs: EPOCHS, seed: 1 },
    // no samples: the figures are about delivering epoch events
    report: { predictEvery: Math.min(5000, EPOCHS + 1), prefixes: ['time traveller'], numPreds: 10 },
  };
  const created = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  const jobId = ((await created.json()) as { id: string }).id;

  const latencies: number[] = [];
  let received = 0;
  let finished = 0;
  let failures = 0;
  const record = (timeIso: string) => {
    latencies.push(Date.now() - Date.parse(timeIso));
    received++;
  };

  // SSE watchers: one connection each
  let connected = 0;
  const sseDone = Array.from(
    { length: N_SSE },
    () =>
      new Promise<void>((resolve) => {
        const req = http.get(`${base}/v1/jobs/${jobId}/events`, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
          connected++;
          const parser = new SseParser();
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            for (const ev of parser.push(chunk)) if (ev.event === 'epoch') record((JSON.parse(ev.data) as { time: string }).time);
          });
          res.on('end', () => {
            finished++;
            resolve();
          });
          res.on('error', () => {
            failures++;
            resolve();
          });
        });
        req.on('error', () => {
          failures++;
          resolve();
        });
      }),
  );

  // gRPC watchers: spread over 10 channels (HTTP/2 connections), 50 streams each by default
  const def = protoLoader.loadSync(protoFilePath(), LOADER_OPTIONS);
  // biome-ignore lint/suspicious/noExplicitAny: a package definition loaded at run time has no static type
  const Ctor = (grpc.loadPackageDefinition(def) as any).lstm_trainer.v1.LstmTrainer as typeof grpc.Client;
  const clients = Array.from(
    { length: 10 },
    // biome-ignore lint/suspicious/noExplicitAny: its methods (WatchJob) come from the loaded definition
    () => new Ctor(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as any,
  );
  const grpcDone = Array.from(
    { length: N_GRPC },
    (_, i) =>
      new Promise<void>((resolve) => {
        const s = clients[i % clients.length].WatchJob({ job_id: jobId, from_seq: 0 });
        connected++;
        s.on('data', (ev: { time: string; epoch?: unknown }) => ev.epoch && record(ev.time));
        s.on('end', () => {
          finished++;
          resolve();
        });
        s.on('error', () => {
          failures++;
          resolve();
        });
      }),
  );

  // all watchers attached (they hold the first `queued` event), then the worker starts
  const tAttach = Date.now();
  while (connected < N_SSE + N_GRPC && Date.now() - tAttach < 30_000) await sleep(50);
  await sleep(1000);
  let rssPeak = rssMb(apiPid);
  const rssWatchersIdle = rssPeak;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(apiPid))), 200);
  const tTrain = Date.now();
  const worker = await start('worker', {});
  const all = Promise.all([...sseDone, ...grpcDone]);
  let cap: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((r) => (cap = setTimeout(r, 120_000)))]);
  clearTimeout(cap);
  const trainSecs = (Date.now() - tTrain) / 1000;
  const rssWatchersPeak = rssPeak;
  worker.child.kill('SIGTERM');
  for (const c of clients) c.close();

  // throughput, no watchers
  rssPeak = rssMb(apiPid);
  const get = await throughput(() => request(base, 'GET', `/v1/jobs/${jobId}`), 32, SECONDS);
  const rssGetPeak = rssPeak;
  const tiny = JSON.stringify({ model: { numHiddens: 8 }, data: { maxTokens: 2000, batchSize: 4, numSteps: 5 }, train: { epochs: 1 } });
  rssPeak = rssMb(apiPid);
  const submit = await throughput(() => request(base, 'POST', '/v1/jobs', tiny), 16, SECONDS);
  const rssSubmitPeak = rssPeak;
  clearInterval(sampler);

  const result = {
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    watchers: { sse: N_SSE, grpc: N_GRPC, connected, finishedCleanly: finished, failures },
    job: { epochs: EPOCHS, trainSeconds: +trainSecs.toFixed(1) },
    epochDelivery: {
      deliveries: received,
      expected: (N_SSE + N_GRPC) * EPOCHS,
      p50Ms: pct(latencies, 50),
      p99Ms: pct(latencies, 99),
      maxMs: latencies.reduce((m, x) => Math.max(m, x), 0),
    },
    getJob: get,
    submit,
    apiRssMb: {
      idle: +rssIdle.toFixed(0),
      withWatchersIdle: +rssWatchersIdle.toFixed(0),
      peakWhileStreaming: +rssWatchersPeak.toFixed(0),
      peakGetLoad: +rssGetPeak.toFixed(0),
      peakSubmitLoad: +rssSubmitPeak.toFixed(0),
    },
  };
  if (args.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`machine: ${result.machine}`);
    console.log(`watchers: ${N_SSE} SSE + ${N_GRPC} gRPC; connected ${connected}, ended cleanly ${finished}, failures ${failures}`);
    console.log(
      `job: ${EPOCHS} epochs (H=${spec.model.numHiddens}) in ${result.job.trainSeconds} s = ${(EPOCHS / result.job.trainSeconds).toFixed(1)} epochs/s → ${Math.round(((N_SSE + N_GRPC) * EPOCHS) / result.job.trainSeconds)} deliveries/s`,
    );
    console.log(
      `epoch publication → receipt: p50 ${result.epochDelivery.p50Ms} ms, p99 ${result.epochDelivery.p99Ms} ms, max ${result.epochDelivery.maxMs} ms (${received}/${result.epochDelivery.expected} deliveries)`,
    );
    console.log(
      `GET /v1/jobs/:id (32 concurrent, ${SECONDS} s): ${get.perSecond} req/s, p50 ${get.p50Ms} ms, p99 ${get.p99Ms} ms ${JSON.stringify(get.statuses)}`,
    );
    console.log(
      `POST /v1/jobs (16 concurrent, ${SECONDS} s): ${submit.perSecond} req/s, p50 ${submit.p50Ms} ms, p99 ${submit.p99Ms} ms ${JSON.stringify(submit.statuses)}`,
    );
    console.log(`api RSS MiB: ${JSON.stringify(result.apiRssMb)}`);
  }
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    agent.destroy();
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await sleep(1500);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    const redis = connectRedis(REDIS_URL);
    await deleteKeysWithPrefix(redis, PREFIX).catch(() => undefined);
    redis.disconnect();
    clearTimeout(hard);
  });
