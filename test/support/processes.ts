// Shared by the tests that run the service for real: the repository root, the Redis they use (and
// whether it answers), and `lstm-trainer <command>` as a child process (`node --import tsx
// src/cli/main.ts <command>`) whose output is captured and whose readiness is read from it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '../../src/jobs/redis.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether a Redis server answers PING at `url` (one try, within about a second). */
export async function redisReachable(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Deletes every key under a test's private prefix (its cleanup). */
export async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/**
 * The readiness line a service process logs once it serves (`{"ready":"api","http":…,"grpc":…}` or
 * `{"ready":"worker",…}`, one JSON line on stderr), or undefined while there is none in `output`.
 */
export function readyLine(output: string, role: 'api' | 'worker'): Record<string, unknown> | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes('"ready"')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.ready === role) return o;
    } catch {
      // a line cut by the chunk boundary: read again with the next chunk
    }
  }
  return undefined;
}

export interface CliProcessOptions {
  /** Laid over process.env. */
  env: Record<string, string | undefined>;
  /** Reject `ready` when the process has not said it is ready by then (default: wait as long as it runs). */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before it sends SIGKILL. */
  killAfterMs: number;
}

/** `lstm-trainer <command>` as a child process; `output` holds everything it printed. */
export abstract class CliProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once isReady() accepts the output; rejects if the process exits (or times out) first. */
  readonly ready: Promise<void>;
  private readonly killAfterMs: number;

  constructor(command: string, o: CliProcessOptions) {
    this.killAfterMs = o.killAfterMs;
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', command], {
      cwd: ROOT,
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.ready = new Promise((resolve, reject) => {
      const timer =
        o.readyTimeoutMs === undefined
          ? undefined
          : setTimeout(() => reject(new Error(`${command} not ready after ${o.readyTimeoutMs! / 1000} s:\n${this.output}`)), o.readyTimeoutMs);
      const onData = (d: Buffer) => {
        this.output += d.toString();
        if (this.isReady(this.output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.child.stdout!.on('data', onData);
      this.child.stderr!.on('data', onData);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${this.output}`));
      });
    });
    this.ready.catch(() => undefined);
  }

  /** Whether the output so far says the process is ready (called on each chunk of output). */
  protected abstract isReady(output: string): boolean;

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it is still running after `killAfterMs`; resolves once it exited. */
  async stop(killAfterMs = this.killAfterMs): Promise<void> {
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), killAfterMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** A real worker process: `lstm-trainer worker`, ready once it logs its readiness line. */
export class WorkerProcess extends CliProcess {
  constructor(env: Record<string, string | undefined>, o: { readyTimeoutMs?: number } = {}) {
    super('worker', { env, readyTimeoutMs: o.readyTimeoutMs, killAfterMs: 15_000 });
  }

  protected isReady(output: string): boolean {
    return readyLine(output, 'worker') !== undefined;
  }

  static async start(env: Record<string, string | undefined>, o: { readyTimeoutMs?: number } = {}): Promise<WorkerProcess> {
    const w = new WorkerProcess(env, o);
    await w.ready;
    return w;
  }
}

/** `lstm-trainer api` as a child process (ports chosen by the OS); `output` holds everything it printed. */
export class ApiProcess extends CliProcess {
  httpUrl = '';
  grpcPort = 0;

  constructor(env: Record<string, string>) {
    super('api', { env: { HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', ...env }, killAfterMs: 20_000 });
  }

  /** Ready once it logged its readiness line (its addresses kept in httpUrl and grpcPort). */
  protected isReady(output: string): boolean {
    if (this.httpUrl) return true;
    const ready = readyLine(output, 'api');
    if (!ready) return false;
    this.httpUrl = String(ready.http);
    this.grpcPort = Number(String(ready.grpc).split(':').pop());
    return true;
  }

  static async start(env: Record<string, string>): Promise<ApiProcess> {
    const a = new ApiProcess(env);
    await a.ready;
    return a;
  }
}

/** An api process and a worker process on one env, both ready; stop() stops them and deletes the env's keys. */
export interface Service {
  api: ApiProcess;
  worker: WorkerProcess;
  stop(): Promise<void>;
}

export async function startService(env: Record<string, string>): Promise<Service> {
  const api = await ApiProcess.start(env);
  let worker: WorkerProcess;
  try {
    worker = await WorkerProcess.start(env);
  } catch (e) {
    await api.stop();
    throw e;
  }
  return {
    api,
    worker,
    async stop() {
      await worker.stop();
      await api.stop();
      await deletePrefix(env.QUEUE_PREFIX);
    },
  };
}

/**
 * The worker processes and Redis key prefixes one test file starts, so that its `after` can end
 * them all whatever failed: cleanUp() SIGKILLs the workers and deletes the prefixes' keys.
 */
export class TestProcesses {
  readonly workers: WorkerProcess[] = [];
  private readonly prefixes: string[] = [];

  /** Notes env's QUEUE_PREFIX for deletion at cleanUp; returns env. */
  own(env: Record<string, string>): Record<string, string> {
    this.prefixes.push(env.QUEUE_PREFIX);
    return env;
  }

  /** A new worker process on env, once it is ready. */
  async startWorker(env: Record<string, string | undefined>): Promise<WorkerProcess> {
    const w = new WorkerProcess(env);
    this.workers.push(w);
    await w.ready;
    return w;
  }

  async cleanUp(): Promise<void> {
    for (const w of this.workers) w.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exited));
    for (const p of this.prefixes) await deletePrefix(p);
  }
}

/** Whether a process with this pid is running (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What one `lstm-trainer …` run printed, how it exited, and how long it took. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `lstm-trainer <args>` to its end (API_KEYS cleared, `env` laid over); with killAfterMs, sends
 * `signal` (default SIGINT: an interrupt the CLI handles) then.
 */
export function runCli(args: string[], o: { killAfterMs?: number; signal?: NodeJS.Signals; env?: Record<string, string> } = {}): Promise<CliRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, API_KEYS: '', ...o.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = o.killAfterMs ? setTimeout(() => child.kill(o.signal ?? 'SIGINT'), o.killAfterMs) : undefined;
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}
