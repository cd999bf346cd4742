// The training worker: takes jobs from the BullMQ queue, trains each attempt in its own process
// (TrainingProcess: the Trainer runs there), publishes one event per epoch, checkpoints, and stops
// the attempt on cancel (within one minibatch) or shutdown. A crash of that process fails only the
// attempt (retried from the checkpoint; after JOB_ATTEMPTS, failed with the signal / exit code).
// An attempt, and how a resumed one keeps the history exact, is job-attempt.ts; this module holds
// the connections, the BullMQ worker and its events, the cancel channel, the Redis watchdog, the
// heartbeat and shutdown.
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { EngineFactory } from '../model/engine.js';
import { JobAttempts, type ActiveJob } from './job-attempt.js';
import { TestPauseHook, type TestCrash, type TestPause } from './test-hooks.js';
import { newWorkerId, WorkerHeartbeat } from './heartbeat.js';
import type { ServiceConfig } from './config.js';
import { EventLog } from './events.js';
import { JobLog, type LogLevel } from './job-log.js';
import { JobRun } from './lifecycle.js';
import { createLogger, type Logger } from './log.js';
import { QUEUE_NAME, Keys, bullConnectionFor, connectRedis, isRedisDown, type RedisClient } from './redis.js';
import { CorpusStore } from './corpora.js';
import { JobStore } from './job-records.js';
import { RedisCheckpointStore, type CheckpointStore } from './checkpoint-store.js';
import type { TrainJobData } from './queue.js';
import { TERMINAL_STATES, type JobState } from './types.js';

export interface TrainWorkerOptions {
  config: ServiceConfig;
  engine: EngineFactory;
  /** Defaults to the Redis store on the worker's connection. */
  checkpoints?: CheckpointStore;
  /** Where the worker's lines go (default: the service logger, src/jobs/log.ts). */
  logger?: Logger;
  /** TEST-ONLY: hang once at this point (test-hooks.ts; the CLI reads LSTM_TEST_PAUSE_*). */
  testPause?: TestPause;
  /** TEST-ONLY: the training processes crash there (test-hooks.ts; the CLI reads LSTM_TEST_CRASH*). */
  testCrash?: TestCrash;
}

export class TrainWorker {
  readonly worker: Worker<TrainJobData, string>;
  private readonly bull: ReturnType<typeof bullConnectionFor>;
  private readonly redis: RedisClient;
  private readonly sub: RedisClient;
  private readonly store: JobStore;
  private readonly events: EventLog;
  private readonly jobLog: JobLog;
  private readonly ckpts: CheckpointStore;
  private readonly corpora: CorpusStore;
  private readonly active = new Map<string, ActiveJob>();
  private readonly poll: NodeJS.Timeout;
  private readonly watchdog: NodeJS.Timeout;
  readonly heartbeat: WorkerHeartbeat;
  private unreachableSaid = false;
  private readonly logger: Logger;
  private closing?: Promise<void>;
  private readonly workerId = newWorkerId();
  private readonly attempts: JobAttempts;

  constructor(private readonly opts: TrainWorkerOptions) {
    const { config } = opts;
    const keys = new Keys(config.prefix);
    this.logger = opts.logger ?? createLogger({ name: 'worker' });
    this.redis = connectRedis(config, { name: 'lstm-worker' });
    this.sub = connectRedis(config, { name: 'lstm-worker-sub' });
    this.store = new JobStore(this.redis, keys);
    this.events = new EventLog(this.redis, keys, config.retentionSeconds);
    this.jobLog = new JobLog(this.redis, keys);
    this.ckpts = opts.checkpoints ?? new RedisCheckpointStore(this.redis, keys);
    this.corpora = new CorpusStore(this.redis, keys);
    this.attempts = new JobAttempts({
      workerId: this.workerId,
      config,
      engine: opts.engine,
      redis: this.redis,
      store: this.store,
      events: this.events,
      checkpoints: this.ckpts,
      corpora: this.corpora,
      active: this.active,
      closing: () => this.closing !== undefined,
      note: (id, level, msg, line) => this.note(id, level, msg, line),
      testPause: opts.testPause && new TestPauseHook(opts.testPause, this.logger),
      testCrash: opts.testCrash,
    });

    // cancellation reaches the training loop between two minibatches: the API publishes the id,
    // and (in case a message is lost while reconnecting) the record's state is polled every second
    this.sub.on('message', (_ch: string, id: string) => this.active.get(id)?.controller.abort('cancel'));
    void this.sub.subscribe(keys.cancelChannel).catch(() => undefined);
    this.poll = setInterval(() => void this.pollCancelled(), 1000);
    this.poll.unref();
    this.heartbeat = new WorkerHeartbeat(
      this.redis,
      keys,
      this.workerId,
      () => ({
        host: hostname(),
        pid: process.pid,
        engine: opts.engine.name,
        backend: opts.engine.backend,
        concurrency: config.workerConcurrency,
        jobs: [...this.active.keys()],
      }),
      config.heartbeatMs,
    );
    // Redis unreachable for longer than the lock: the jobs are another worker's by now (or will be
    // the moment Redis is back), so their processes stop here instead of training on unseen
    this.watchdog = setInterval(() => this.checkReachable(), Math.min(500, config.heartbeatMs));
    this.watchdog.unref();

    this.bull = bullConnectionFor(config);
    this.worker = new Worker<TrainJobData, string>(QUEUE_NAME, (job, token) => this.attempts.run(job, token), {
      connection: this.bull.connection,
      prefix: config.prefix,
      concurrency: config.workerConcurrency,
      lockDuration: config.lockDurationMs,
      // four renewals per lock: one late or lost renewal does not cost the job
      lockRenewTime: Math.max(250, Math.floor(config.lockDurationMs / 4)),
      stalledInterval: config.stalledIntervalMs,
      // a job whose worker dies is given to another one up to attempts-1 times, then fails
      maxStalledCount: Math.max(0, config.attempts - 1),
    });
    // Redis unreachable: said once, then how long every 30 s, and once when it answers again
    // (BullMQ reports every reconnect attempt, once a second)
    const url = config.redisClusterNodes
      ? `the cluster at ${config.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
      : redactedRedisUrl(config.redisUrl);
    let downSince = 0;
    let lastSaid = 0;
    this.worker.on('error', (e) => {
      if (!isRedisDown(e)) return this.log(`worker: ${e.message}`, 'error');
      const now = Date.now();
      if (!downSince) {
        downSince = lastSaid = now;
        this.log(`worker: waiting for Redis at ${url} (${e.message})`, 'warn');
      } else if (now - lastSaid >= 30_000) {
        lastSaid = now;
        this.log(`worker: still waiting for Redis at ${url} (${Math.round((now - downSince) / 1000)} s)`, 'warn');
      }
    });
    this.redis.on('ready', () => {
      if (!downSince) return;
      this.log(`worker: Redis at ${url} answers again (after ${Math.round((Date.now() - downSince) / 1000)} s)`);
      downSince = 0;
    });
    this.worker.on('lockRenewalFailed', (ids: string[]) => {
      for (const id of ids) this.active.get(id)?.controller.abort('lost');
    });
    // the stalled checker (any worker) found a job whose worker is gone: show it as queued again,
    // unless another worker already holds it
    this.worker.on('stalled', (id: string) => {
      void new JobRun(this.events, id)
        .markLost({ message: 'worker lost; waiting for another worker' })
        .then((r) => void (r.ok && this.note(id, 'warn', 'stalled (its worker is gone); queued again')))
        .catch(() => undefined);
    });
    // final failures the processor did not record itself: a job stalled more than allowed (it
    // never reaches the processor), or an error before training started (e.g. Redis hiccup)
    this.worker.on('failed', (job, err) => {
      if (!job?.finishedOn) return; // finishedOn: no retry follows
      const error = failureText(err.message, config.attempts);
      void new JobRun(this.events, job.data.id)
        .giveUp({ error })
        .then((r) => void (r.ok && this.note(job.data.id, 'error', `failed: ${error}`)))
        .catch(() => undefined);
    });
  }

  async ready(): Promise<void> {
    await this.worker.waitUntilReady();
    await this.redis.ping();
    this.heartbeat.start();
  }

  private checkReachable(): void {
    const silent = Date.now() - this.heartbeat.lastOkAt;
    if (silent <= this.opts.config.lockDurationMs) {
      this.unreachableSaid = false;
      return;
    }
    for (const [id, a] of this.active) {
      if (a.proc.exited) continue;
      if (!this.unreachableSaid) {
        void this.note(
          id,
          'warn',
          `Redis unreachable for ${(silent / 1000).toFixed(1)} s, longer than the job lock: its training process (pid ${a.proc.pid}) is stopped; another worker takes the job over from its checkpoint`,
          `worker: Redis unreachable for ${(silent / 1000).toFixed(1)} s, longer than the job lock (LOCK_DURATION_MS ${this.opts.config.lockDurationMs} ms): stopping job ${id}'s training process (pid ${a.proc.pid}); another worker takes the job over from its checkpoint`,
        );
      }
      a.controller.abort('lost');
      a.proc.kill();
    }
    if (this.active.size) this.unreachableSaid = true;
  }

  private async pollCancelled(): Promise<void> {
    if (this.active.size === 0) return;
    const ids = [...this.active.keys()];
    try {
      const recs = await this.store.fieldsOf(ids, ['state'] as const);
      recs.forEach((r, i) => {
        if (!r || TERMINAL_STATES.includes(r.state as JobState)) this.active.get(ids[i])?.controller.abort('cancel');
      });
    } catch {
      // Redis unreachable: the next poll tries again
    }
  }

  /** A line of this process's log (not about one job). */
  private log(line: string, level: LogLevel = 'info'): void {
    this.logger[level](line);
  }

  /**
   * A line about one job: to this process's log at `level` with its jobId (`line`, by default
   * "worker: job <id> <msg>"; null: the job's log only) and appended to the job's own log in Redis (GET /v1/jobs/:id/logs). A failed
   * append (Redis unreachable) loses only that line.
   */
  private async note(id: string, level: LogLevel, msg: string, line: string | null = `worker: job ${id} ${msg}`): Promise<void> {
    if (line !== null) this.logger[level]({ jobId: id }, line);
    await this.jobLog.append(id, level, msg).catch(() => undefined);
  }

  /**
   * SIGTERM: running jobs stop at the end of their current minibatch, are checkpointed and handed
   * back to the queue; then the worker closes.
   */
  shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        for (const a of this.active.values()) a.controller.abort('shutdown');
        await this.worker.close();
        await this.bull.close();
        clearInterval(this.poll);
        clearInterval(this.watchdog);
        await this.heartbeat.stop();
        this.sub.disconnect();
        await this.redis.quit().catch(() => this.redis.disconnect());
      })();
    }
    return this.closing;
  }
}

function failureText(reason: string, attempts: number): string {
  return reason === 'job stalled more than allowable limit' ? `its worker was lost ${attempts} times (${reason})` : reason;
}

/** The Redis URL for logs: the password, if any, replaced. */
function redactedRedisUrl(url: string | undefined): string {
  if (!url) return 'redis://127.0.0.1:6379';
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
