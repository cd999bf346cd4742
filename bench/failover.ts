// Failover time (a figure, not a test): from a worker process being SIGKILLed to its job running
// again on another worker — the `running` state event of the next attempt — and to the next epoch
// published. One long job, two worker processes (the one that runs the job and a standby); each
// round kills the job's worker at a random moment, waits for the standby to take over, and starts a
// new standby. Every third kill lands during a checkpoint write (the worker's test-only pause hook
// holds it there, its lock still renewed, and it is killed after a random further delay).
//
//   npx tsx bench/failover.ts --kills 10                       # this checkout, its defaults
//   npx tsx bench/failover.ts --kills 10 --root /tmp/before    # workers from another checkout
//   npx tsx bench/failover.ts --kills 10 --lock-ms 60000 --stalled-ms 30000
//
// Uses the Redis at REDIS_URL (default 127.0.0.1:6379) under a private key prefix, deleted at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/jobs/config.js';
import { connectRedis, deleteKeysWithPrefix } from '../src/jobs/redis.js';
import { RedisJobService } from '../src/jobs/service.js';
import type { JobEvent } from '../src/jobs/types.js';
import { REDIS_URL, ROOT } from '../test/support/processes.js';

const { values: o } = parseArgs({
  options: {
    kills: { type: 'string', default: '10' },
    root: { type: 'string' },
    'lock-ms': { type: 'string' },
    'stalled-ms': { type: 'string' },
    seed: { type: 'string', default: '7' },
  },
});
const KILLS = Number(o.kills);
let seed = Number(o.seed) >>> 0;
const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const prefix = `bench-failover-${randomBytes(3).toString('hex')}`;
const env: Record<string, string> = {
  REDIS_URL,
  QUEUE_PREFIX: prefix,
  CHECKPOINT_EVERY: '3',
  JOB_ATTEMPTS: '100',
  ...(o['lock-ms'] ? { LOCK_DURATION_MS: o['lock-ms'] } : {}),
  ...(o['stalled-ms'] ? { STALLED_INTERVAL_MS: o['stalled-ms'] } : {}),
  // workers from another checkout use this checkout's native addon
  ...(o.root ? { LSTM_NATIVE_ADDON: `${ROOT}/native/build/Release/lstm_native.node` } : {}),
};

/** `lstm-trainer worker` run from ROOT (this checkout) or --root; `output` holds what it printed. */
class Worker {
  readonly child: ChildProcess;
  output = '';
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  constructor(e: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
      cwd: o.root ?? ROOT,
      env: { ...process.env, ...e },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((r) =>
      this.child.once('exit', (code, signal) => {
        // a worker the bench did not kill: say so, with what it printed last
        if (signal !== 'SIGKILL') console.log(`worker ${this.child.pid} exited by itself (${code ?? signal}):\n${this.output.slice(-2000)}`);
        r();
      }),
    );
    this.ready = new Promise((resolve, reject) => {
      const on = (d: Buffer) => {
        this.output += d.toString();
        if (this.output.includes('worker ready')) resolve();
      };
      this.child.stdout!.on('data', on);
      this.child.stderr!.on('data', on);
      void this.exited.then(() => reject(new Error(`worker exited before it was ready:\n${this.output}`)));
    });
    this.ready.catch(() => undefined);
  }
  kill(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }
}

/** pauseFrom: hang in the first checkpoint write of an epoch ≥ this (after it took the job over and published). */
function startWorker(pauseFrom?: number): Worker {
  return new Worker({ ...env, ...(pauseFrom ? { LSTM_TEST_PAUSE_AT: 'checkpoint', LSTM_TEST_PAUSE_EPOCH: String(pauseFrom) } : {}) });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function main(): Promise<void> {
  const service = new RedisJobService({ config: loadConfig(env) });
  const workers: Worker[] = [];
  let jobId = '';
  const spawnWorker = async (pause: boolean) => {
    // a standby takes the job over at the next kill and is the victim of the one after: it must pause
    // in a checkpoint write only once it has published epochs of its own
    const at = jobId ? ((await service.get(jobId)).progress?.epoch ?? 0) : 0;
    const w = startWorker(pause ? at + 40 : undefined);
    workers.push(w);
    await w.ready;
    return w;
  };
  try {
    const { job } = await service.submit({
      model: { kind: 'scratch', numHiddens: 48 },
      data: { maxTokens: 12000, batchSize: 8, numSteps: 10 },
      train: { epochs: 5000, seed: 1 },
      report: { predictEvery: 5000, prefixes: ['time traveller'], numPreds: 10 },
    });
    jobId = job.id;
    const ac = new AbortController();
    const seen: JobEvent[] = [];
    let wake: (() => void) | undefined;
    void (async () => {
      for await (const ev of service.watch(job.id, 1, ac.signal)) {
        seen.push(ev);
        wake?.();
      }
    })().catch(() => undefined);
    const until = async (pred: (ev: JobEvent) => boolean, from: number, what: string, timeoutMs = 300_000): Promise<JobEvent> => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hit = seen.slice(from).find(pred);
        if (hit) return hit;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await Promise.race([new Promise<void>((r) => (wake = r)), sleep(200)]);
      }
    };
    const isCkptKill = (i: number) => i % 3 === 2;
    let victim = await spawnWorker(isCkptKill(0));
    let standby = await spawnWorker(isCkptKill(1));
    let attempt = 1;
    await until((e) => e.type === 'state' && e.state === 'running', 0, 'the first start');
    let runIdx = seen.findIndex((e) => e.type === 'state' && e.state === 'running');
    const toRunning: number[] = [];
    const toEpoch: number[] = [];
    console.log(
      `failover bench: ${KILLS} kills; lock ${env.LOCK_DURATION_MS ?? 'default'} ms, stalled check ${env.STALLED_INTERVAL_MS ?? 'default'} ms; workers from ${o.root ?? 'this checkout'}`,
    );
    for (let i = 0; i < KILLS; i++) {
      // the victim is the worker that runs attempt `attempt` (the standby never had the job)
      if (!victim.output.includes(`job ${job.id} running (attempt ${attempt}`)) [victim, standby] = [standby, victim];
      let where: string;
      if (isCkptKill(i)) {
        await until(() => /LSTM_TEST_PAUSED at=checkpoint/.test(victim.output), 0, 'the checkpoint pause');
        await sleep(rand() * 1500);
        where = 'during a checkpoint write';
      } else {
        await until((e) => e.type === 'epoch', runIdx + 1, 'an epoch');
        const d = rand() * 3000;
        await sleep(d);
        where = `${Math.round(d)} ms after an epoch`;
      }
      const from = seen.length;
      const t0 = Date.now();
      victim.kill('SIGKILL');
      await victim.exited;
      const run = await until((e) => e.type === 'state' && e.state === 'running', from, 'the job running again');
      runIdx = seen.indexOf(run);
      const ep = await until((e) => e.type === 'epoch', runIdx + 1, 'the next epoch');
      attempt = (run as { attempt?: number }).attempt ?? attempt + 1;
      const a = Date.parse(run.time) - t0;
      const b = Date.parse(ep.time) - t0;
      toRunning.push(a);
      toEpoch.push(b);
      console.log(`kill ${i + 1}: ${where}: running again after ${(a / 1000).toFixed(2)} s, next epoch after ${(b / 1000).toFixed(2)} s (attempt ${attempt})`);
      // the old standby runs the job now (the victim of kill i + 1); a new standby, the victim of kill i + 2
      victim = standby;
      standby = await spawnWorker(isCkptKill(i + 2));
    }
    ac.abort();
    const f = (xs: number[]) => `p50 ${(pct(xs, 50) / 1000).toFixed(2)} s, max ${(Math.max(...xs) / 1000).toFixed(2)} s`;
    console.log(`SIGKILL → running again on another worker: ${f(toRunning)} (${KILLS} kills)`);
    console.log(`SIGKILL → next epoch published:            ${f(toEpoch)}`);
    await service.cancel(job.id).catch(() => undefined);
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await service.close();
    const r = connectRedis(REDIS_URL);
    await deleteKeysWithPrefix(r, prefix);
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
