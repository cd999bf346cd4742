// The service's processes (docs/architecture.md, "Processes"): serve (api + worker child processes), api, worker.
// The client commands of a running service (submit, watch, export <jobId>) are in client-commands.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import { int } from './options.js';
import type { startApi } from '../api/app.js';
import { ConfigError, loadConfig, type ServiceConfig } from '../jobs/config.js';
import { ensureLocalRedis, RedisUnavailableError, type LocalRedis } from '../jobs/localRedis.js';
import type { TrainWorker } from '../jobs/worker.js';
import { testCrashFromEnv, testPauseFromEnv } from '../jobs/test-hooks.js';
import { createLogger, type Logger } from '../jobs/log.js';
import { EngineUnavailableError, selectEngine } from '../model/engines.js';
import type { EngineFactory } from '../model/engine.js';
import { UserError } from './errors.js';

// the process's logger (src/jobs/log.ts: JSON lines, or text on a terminal), named by the command
let logger: Logger | undefined;
function useLogger(name: string): Logger {
  return (logger ??= createLogger({ name }));
}
const log = (line: string, level: 'info' | 'warn' | 'error' = 'info') => useLogger('lstm-trainer')[level](line);

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
        log(`lstm-trainer: shutdown failed: ${(e as Error).message}`, 'error');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export async function runWorker(cfg: ServiceConfig): Promise<TrainWorker> {
  let engine: EngineFactory;
  try {
    engine = await selectEngine(cfg.engine, (l) => log(l));
  } catch (e) {
    if (e instanceof EngineUnavailableError) throw new UserError(e.message);
    throw e;
  }
  // loaded here, not at import: `api` never needs BullMQ's worker, `worker` never needs fastify
  // and gRPC, and every other command needs neither (process start-up is what this saves)
  const { TrainWorker } = await import('../jobs/worker.js');
  const worker = new TrainWorker({
    config: cfg,
    engine,
    logger: useLogger('worker'),
    testPause: testPauseFromEnv(process.env),
    testCrash: testCrashFromEnv(process.env),
  });
  await worker.ready();
  const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (engine.backend === 'cuda' && pool < cfg.workerConcurrency + 1) {
    log(
      `lstm-trainer worker: UV_THREADPOOL_SIZE ${pool} runs at most ${pool} of the ${cfg.workerConcurrency} GPU jobs at once (each holds a pool thread while it trains); start the worker with UV_THREADPOOL_SIZE=${threadPoolFor(process.env)}`,
      'warn',
    );
  }
  // also the machine-readable readiness line: `ready` and its fields are what tests and scripts read
  if (process.send) {
    process.send({ ready: 'worker' }); // to `serve`, which started this worker (IPC)
    process.channel?.unref(); // the channel must not keep the worker alive after a shutdown
  }
  useLogger('lstm-trainer').info(
    { ready: 'worker', engine: `${engine.name}/${engine.backend}`, prefix: cfg.prefix, concurrency: cfg.workerConcurrency },
    `lstm-trainer worker ready: engine ${engine.name}/${engine.backend}, queue prefix ${cfg.prefix}, concurrency ${cfg.workerConcurrency}, checkpoint every ${cfg.checkpointEvery} epochs`,
  );
  return worker;
}

async function workerCommand(): Promise<void> {
  useLogger('worker');
  const cfg = config();
  const worker = await runWorker(cfg);
  onShutdownSignal(async (signal) => {
    log(`lstm-trainer worker: ${signal}; stopping after the current minibatch and handing running jobs back`);
    await worker.shutdown();
  });
}

/** startApi, with a port already in use as one line naming the port and the variable to change. */
async function startApiOrExplain(cfg: ServiceConfig): Promise<Awaited<ReturnType<typeof startApi>>> {
  const { startApi } = await import('../api/app.js');
  try {
    return await startApi(cfg, log, useLogger('api'));
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
  useLogger('api');
  const cfg = config();
  const api = await startApiOrExplain(cfg);
  onShutdownSignal(async () => {
    await api.close();
  });
}

/** The worker of `serve`, as a child process (training never blocks the API's event loop). */
function spawnWorkerChild(env: NodeJS.ProcessEnv): ChildProcess {
  // an IPC channel besides the inherited output: the worker says there when it is ready
  return spawn(process.execPath, [...process.execArgv, process.argv[1], 'worker'], {
    env: { ...env, UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? threadPoolFor(env) },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
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
  useLogger('serve');
  const cfg0 = config();
  let redis: LocalRedis | undefined;
  if (!cfg0.redisUrl && !cfg0.redisClusterNodes) {
    try {
      redis = await ensureLocalRedis({ log });
    } catch (e) {
      if (e instanceof RedisUnavailableError) throw new UserError(e.message);
      throw e;
    }
  }
  const env = { ...process.env, ...(redis ? { REDIS_URL: redis.url } : {}) };
  const cfg = { ...cfg0, redisUrl: cfg0.redisUrl ?? redis?.url };
  let api: Awaited<ReturnType<typeof startApiOrExplain>>;
  try {
    api = await startApiOrExplain(cfg);
  } catch (e) {
    await redis?.stop();
    throw e;
  }

  let stopping = false;
  const children = new Set<ChildProcess>();
  const start = (slot: number, quickFailures = 0) => {
    const child = spawnWorkerChild(env);
    // a worker that exits before it said it is ready could not start (however slowly the machine
    // starts processes); one that was ready and then exited is restarted with a clean count
    let ready = false;
    child.on('message', (m) => {
      if ((m as { ready?: unknown })?.ready === 'worker') ready = true;
    });
    children.add(child);
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      const quick = ready ? 0 : quickFailures + 1;
      if (quick >= 3) {
        // a worker that cannot start (engine, device, Redis settings) would leave jobs queued
        // forever behind a service that looks healthy: stop the whole service instead
        log(
          `lstm-trainer serve: worker ${slot} exited ${quick} times before it was ready (last: code ${code ?? signal}; its reason is above); giving up and stopping the service`,
          'error',
        );
        stopping = true;
        stopAll().then(
          () => process.exit(1),
          () => process.exit(1),
        );
        return;
      }
      log(`lstm-trainer serve: worker ${slot} exited (code ${code ?? signal}); restarting it`, 'warn');
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

export function registerServiceCommands(program: Command): void {
  program
    .command('serve')
    .description('run the service on one machine: the API (HTTP + gRPC + dashboard) and a worker child process; starts redis-server when needed')
    .option('--workers <n>', 'worker processes to run', int('--workers'), 1)
    .action(serveCommand);

  program.command('api').description('run the API process (HTTP, gRPC, dashboard) against REDIS_URL').action(apiCommand);

  program.command('worker').description('run a training worker against REDIS_URL (one per GPU or CPU box)').action(workerCommand);
}
