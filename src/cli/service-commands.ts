// Subcommands of the service (docs/architecture.md, "Processes"): serve (api + a worker child process), api, worker,
// submit and watch (clients of a running service).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import { int } from './options.js';
import { EpochProgress } from './progress.js';
import { addSpecFlags, applySpecFlags, readTextFile, setIn, type Obj, type SpecFlags } from './spec-flags.js';
import { startApi } from '../api/app.js';
import { ConfigError, loadConfig, type ServiceConfig } from '../jobs/config.js';
import { ensureLocalRedis, RedisUnavailableError, type LocalRedis } from '../jobs/localRedis.js';
import type { JobEvent, JobView } from '../jobs/types.js';
import { TrainWorker } from '../jobs/worker.js';
import { EngineUnavailableError, selectEngine } from '../model/engines.js';
import { UserError } from './errors.js';
import { authHeaders, followJob, HttpProblemError } from './sse-client.js';

const log = (line: string) => console.error(line);

function config(): ServiceConfig {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) throw new UserError(e.message);
    throw e;
  }
}

/** SIGTERM/SIGINT run `stop` once; a second signal more than a second later forces the exit. */
function onShutdownSignal(stop: (signal: string) => Promise<void>): void {
  let first = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (first) {
      // Ctrl-C reaches the worker child twice (terminal + parent): only a later one forces
      if (Date.now() - first > 1000) {
        log(`lstm-trainer: ${signal} again; exiting now`);
        process.exit(130);
      }
      return;
    }
    first = Date.now();
    stop(signal).then(
      () => process.exit(0),
      (e) => {
        log(`lstm-trainer: shutdown failed: ${(e as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export async function runWorker(cfg: ServiceConfig): Promise<TrainWorker> {
  let engine;
  try {
    engine = await selectEngine(cfg.engine);
  } catch (e) {
    if (e instanceof EngineUnavailableError) throw new UserError(e.message);
    throw e;
  }
  const worker = new TrainWorker({ config: cfg, engine });
  await worker.ready();
  const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (engine.backend === 'cuda' && pool < cfg.workerConcurrency + 1) {
    log(`lstm-trainer worker: UV_THREADPOOL_SIZE ${pool} runs at most ${pool} of the ${cfg.workerConcurrency} GPU jobs at once (each holds a pool thread while it trains); start the worker with UV_THREADPOOL_SIZE=${threadPoolFor(process.env)}`);
  }
  log(
    `lstm-trainer worker ready: engine ${engine.name}/${engine.backend}, queue prefix ${cfg.prefix}, concurrency ${cfg.workerConcurrency}, checkpoint every ${cfg.checkpointEvery} epochs`,
  );
  return worker;
}

async function workerCommand(): Promise<void> {
  const cfg = config();
  const worker = await runWorker(cfg);
  onShutdownSignal(async (signal) => {
    log(`lstm-trainer worker: ${signal}; stopping after the current minibatch and handing running jobs back`);
    await worker.shutdown();
  });
}

/** startApi, with a port already in use as one line naming the port and the variable to change. */
async function startApiOrExplain(cfg: ServiceConfig): Promise<Awaited<ReturnType<typeof startApi>>> {
  try {
    return await startApi(cfg, log);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { port?: number };
    if (err.code === 'EADDRINUSE' && err.syscall === 'listen') {
      throw new UserError(`HTTP port ${err.port ?? cfg.httpPort} on ${cfg.host} is already in use: stop what is listening there or set HTTP_PORT`);
    }
    if (/EADDRINUSE/.test(err.message ?? '')) {
      throw new UserError(`gRPC port ${cfg.grpcPort} on ${cfg.host} is already in use: stop what is listening there or set GRPC_PORT`);
    }
    throw e;
  }
}

async function apiCommand(): Promise<void> {
  const cfg = config();
  const api = await startApiOrExplain(cfg);
  onShutdownSignal(async () => {
    await api.close();
  });
}

/** The worker of `serve`, as a child process (training never blocks the API's event loop). */
function spawnWorkerChild(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, process.argv[1], 'worker'], { env: { ...env, UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? threadPoolFor(env) }, stdio: 'inherit' });
}

/**
 * libuv's pool size for a worker: a GPU job's training call holds one pool thread while its stream
 * runs, so WORKER_CONCURRENCY jobs need that many threads and a few for everything else. Node reads
 * UV_THREADPOOL_SIZE before any code of ours runs, so it is set for the child, not in it.
 */
export function threadPoolFor(env: NodeJS.ProcessEnv): string {
  const jobs = Number(env.WORKER_CONCURRENCY ?? 1);
  return String(Math.min(1024, Math.max(4, (Number.isInteger(jobs) ? jobs : 1) + 2)));
}

async function serveCommand(o: { workers: number }): Promise<void> {
  const cfg0 = config();
  let redis: LocalRedis | undefined;
  if (!cfg0.redisUrl) {
    try {
      redis = await ensureLocalRedis({ log });
    } catch (e) {
      if (e instanceof RedisUnavailableError) throw new UserError(e.message);
      throw e;
    }
  }
  const env = { ...process.env, ...(redis ? { REDIS_URL: redis.url } : {}) };
  const cfg = { ...cfg0, redisUrl: cfg0.redisUrl ?? redis?.url };
  let api;
  try {
    api = await startApiOrExplain(cfg);
  } catch (e) {
    await redis?.stop();
    throw e;
  }

  let stopping = false;
  const children = new Set<ChildProcess>();
  const start = (slot: number, quickFailures = 0) => {
    const startedAt = Date.now();
    const child = spawnWorkerChild(env);
    children.add(child);
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      const quick = Date.now() - startedAt < 10_000 ? quickFailures + 1 : 0;
      if (quick >= 3) {
        // a worker that cannot start (engine, device, Redis settings) would leave jobs queued
        // forever behind a service that looks healthy: stop the whole service instead
        log(`lstm-trainer serve: worker ${slot} exited ${quick} times within seconds of starting (last: code ${code ?? signal}; its reason is above); giving up and stopping the service`);
        stopping = true;
        stopAll().then(
          () => process.exit(1),
          () => process.exit(1),
        );
        return;
      }
      log(`lstm-trainer serve: worker ${slot} exited (code ${code ?? signal}); restarting it`);
      setTimeout(() => !stopping && start(slot, quick), 1000 * (quick + 1));
    });
  };
  for (let i = 0; i < o.workers; i++) start(i + 1);

  onShutdownSignal(async (signal) => {
    stopping = true;
    log(`lstm-trainer serve: ${signal}; stopping (workers hand their jobs back to the queue)`);
    await stopAll();
  });

  async function stopAll(): Promise<void> {
    const exits = [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 60_000).unref();
        }),
    );
    await Promise.all([api!.close(), ...exits]);
    await redis?.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// client side

interface ClientOptions {
  url?: string;
  apiKey?: string;
}

function baseUrl(o: ClientOptions): string {
  const fromEnv = process.env.LSTM_TRAINER_URL;
  const def = `http://${process.env.HOST?.trim() || '127.0.0.1'}:${process.env.HTTP_PORT?.trim() || '8080'}`;
  return (o.url ?? fromEnv ?? def).replace(/\/+$/, '');
}

function apiKey(o: ClientOptions): string | undefined {
  return o.apiKey ?? process.env.LSTM_TRAINER_API_KEY ?? process.env.API_KEYS?.split(',')[0]?.trim() ?? undefined;
}

function problemText(e: HttpProblemError): string {
  const lines = [`HTTP ${e.status}: ${e.problem?.detail ?? e.problem?.title ?? 'request failed'}`];
  for (const i of e.problem?.errors ?? []) if (i.field) lines.push(`  ${i.field}: ${i.message}`);
  return lines.join('\n');
}

async function call<T>(url: string, init: RequestInit): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new UserError(`cannot reach ${new URL(url).origin}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw new UserError(problemText(new HttpProblemError(res.status, body)));
  return { status: res.status, body: body as T };
}

interface SubmitOptions extends ClientOptions, SpecFlags {
  file?: string;
  prefix?: string[];
  numPreds?: number;
  name?: string;
  idempotencyKey?: string;
  watch?: boolean;
  json?: boolean;
}

/** The spec: the JSON file (if any), then the flags on top. The server validates it. */
export function specFromSubmitOptions(o: SubmitOptions): Obj {
  let spec: Obj = {};
  if (o.file) {
    try {
      spec = JSON.parse(readTextFile(o.file, 'spec file', true));
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${o.file} is not valid JSON: ${(e as Error).message}`);
    }
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new UserError(`${o.file} must hold a JSON object (the job spec)`);
  }
  applySpecFlags(spec, o, { corpusDashIsStdin: true });
  setIn(spec, ['report', 'prefixes'], o.prefix);
  setIn(spec, ['report', 'numPreds'], o.numPreds);
  setIn(spec, ['name'], o.name);
  setIn(spec, ['idempotencyKey'], o.idempotencyKey);
  return spec;
}

async function submitCommand(o: SubmitOptions): Promise<void> {
  const base = baseUrl(o);
  const key = apiKey(o);
  const { status, body: job } = await call<JobView>(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(key) },
    body: JSON.stringify(specFromSubmitOptions(o)),
  });
  console.log(o.json ? JSON.stringify(job) : job.id);
  if (!o.json) log(`lstm-trainer: job ${job.id} ${status === 201 ? 'queued' : `already exists (${job.state})`}: ${base}/v1/jobs/${job.id}`);
  if (o.watch) await watchCommand(job.id, { url: o.url, apiKey: o.apiKey, json: o.json });
}

function printEvent(ev: JobEvent, json: boolean, bar?: EpochProgress): void {
  if (json) return console.log(JSON.stringify(ev));
  if (ev.type === 'epoch' && bar) return bar.update(ev);
  bar?.stop();
  if (ev.type === 'epoch') {
    const ppl = ev.perplexity === null || !Number.isFinite(ev.perplexity) ? 'n/a' : ev.perplexity.toFixed(3);
    console.log(`epoch ${ev.epoch}/${ev.epochs} perplexity ${ppl} ${Math.round(ev.tokensPerSec)} tokens/s ${(ev.elapsedMs / 1000).toFixed(1)} s`);
    for (const s of ev.samples ?? []) console.log(`  [epoch ${ev.epoch}] ${s.text}`);
    return;
  }
  let line = `state ${ev.state}`;
  if (ev.attempt) line += ` (attempt ${ev.attempt})`;
  if (ev.message) line += `: ${ev.message}`;
  if (ev.error) line += `: ${ev.error}`;
  if (ev.summary) {
    const s = ev.summary;
    // a job cancelled (or failed) while queued never trained: no epochs, no engine
    if (s.epochs > 0) {
      line += ` — ${s.epochs} epochs, perplexity ${s.finalPerplexity?.toFixed(3) ?? 'n/a'}, ${(s.totalMs / 1000).toFixed(1)} s`;
      if (s.engine) line += ` on ${s.engine}${s.backend ? `/${s.backend}` : ''}`;
    } else {
      line += ' — before any epoch was trained';
    }
  }
  console.log(line);
}

const WATCH_RETRIES = 30;
const WATCH_RETRY_MS = 2000;

async function watchCommand(id: string, o: ClientOptions & { fromSeq?: number; json?: boolean }): Promise<void> {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const base = baseUrl(o);
  let final: string | undefined;
  let told = false;
  const bar = EpochProgress.onTerminal(!o.json);
  // a server that does not answer is said at once (then retried: it may be restarting)
  const onRetry = (reason: string, left: number) => {
    if (told) return;
    told = true;
    log(`lstm-trainer watch: ${base}: ${reason}; retrying every ${WATCH_RETRY_MS / 1000} s for up to ${Math.round(((left + 1) * WATCH_RETRY_MS) / 1000)} s (Ctrl-C to stop)`);
  };
  try {
    for await (const ev of followJob(id, { baseUrl: base, apiKey: apiKey(o), fromSeq: o.fromSeq, signal: ac.signal, retries: WATCH_RETRIES, retryMs: WATCH_RETRY_MS, onRetry })) {
      if (told) {
        told = false;
        bar?.stop();
        log('lstm-trainer watch: connected');
      }
      printEvent(ev, o.json ?? false, bar);
      if (ev.type === 'state') final = ev.state;
    }
  } catch (e) {
    bar?.stop();
    if (ac.signal.aborted) return;
    if (e instanceof HttpProblemError) throw new UserError(problemText(e));
    throw new UserError(`lost the event stream of job ${id} at ${base}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (ac.signal.aborted) return;
  if (!final) {
    // the stream ended with nothing to show (--from-seq past the job's last event): the job's state says how it ended
    const { body: job } = await call<JobView>(`${base}/v1/jobs/${encodeURIComponent(id)}`, { headers: authHeaders(apiKey(o)) });
    final = job.state;
    if (o.json) console.log(JSON.stringify({ type: 'job', id: job.id, state: job.state }));
    else console.log(`job ${id} is ${job.state} (no events after seq ${o.fromSeq ?? 0})`);
  }
  if (final !== 'succeeded') process.exitCode = 1;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerServiceCommands(program: Command): void {
  program
    .command('serve')
    .description('run the service on one machine: the API (HTTP + gRPC + dashboard) and a worker child process; starts redis-server when needed')
    .option('--workers <n>', 'worker processes to run', int('--workers'), 1)
    .action(serveCommand);

  program.command('api').description('run the API process (HTTP, gRPC, dashboard) against REDIS_URL').action(apiCommand);

  program.command('worker').description('run a training worker against REDIS_URL (one per GPU or CPU box)').action(workerCommand);

  addSpecFlags(
    program
      .command('submit')
      .description('submit a training job to a running service; prints the job id')
      .option('--url <url>', 'service URL (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
      .option('--api-key <key>', 'API key (default: LSTM_TRAINER_API_KEY)')
      .option('-f, --file <spec.json>', "job spec as JSON ('-' = stdin); flags override its fields"),
    { corpusHelp: 'train on this text file (sent in the spec) instead of the Time Machine', predictEveryHelp: 'samples every N epochs' },
  )
    .option('--prefix <text>', 'a prefix to sample from (repeatable)', collect)
    .option('--num-preds <n>', 'characters per sample', int('--num-preds'))
    .option('--name <name>', 'job name')
    .option('--idempotency-key <key>', 'submitting again with the same key returns the same job')
    .option('--watch', 'then follow the job until it ends')
    .option('--json', 'print the job (and with --watch, the events) as JSON')
    .action(submitCommand);

  program
    .command('watch <jobId>')
    .description("follow a job's events (epochs, samples, state) until it ends; exit code 0 if it succeeded")
    .option('--url <url>', 'service URL (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
    .option('--api-key <key>', 'API key (default: LSTM_TRAINER_API_KEY)')
    .option('--from-seq <n>', 'only events after this sequence number', int('--from-seq'))
    .option('--json', 'one JSON event per line')
    .action(watchCommand);
}
