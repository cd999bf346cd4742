// The training worker: takes jobs from the BullMQ queue, trains each attempt in its own process
// (TrainingProcess: the Trainer runs there), publishes one event per epoch, checkpoints, and stops
// the attempt on cancel (within one minibatch) or shutdown. A crash of that process fails only the
// attempt (retried from the checkpoint; after JOB_ATTEMPTS, failed with the signal / exit code).
//
// Resume semantics (docs/service.md): a checkpoint is written right after its epoch's event is
// published (after epoch 1, every CHECKPOINT_EVERY epochs, at least every CHECKPOINT_SECONDS, at
// the end, on shutdown and on cancel), so the stored checkpoint is never ahead of the history. A
// worker that takes over a job resumes from that checkpoint and re-trains the epochs between it
// and the last published one without publishing them again (the append script only accepts
// lastEpoch+1); from the next epoch on it publishes. So the history never repeats or skips an epoch.
import { hostname } from 'node:os';
import { Worker, WaitingError, UnrecoverableError, type Job } from 'bullmq';
import type { EngineFactory } from '../model/engine.js';
import { CheckpointError, DamagedCheckpointError, deserializeCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { describeExit, TrainingProcess, type TestCrash } from './train-process.js';
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
import { finiteOrUndefined } from './job-view.js';
import type { TrainJobData } from './queue.js';
import { TERMINAL_STATES, type JobState, type JobSummary } from './types.js';

type StopReason = 'cancel' | 'shutdown' | 'lost' | 'timeout';

// TEST-ONLY fault hook (test/faults/worker-faults.test.ts): TrainWorkerOptions.testPause (the CLI
// reads it from LSTM_TEST_PAUSE_AT=epoch|checkpoint|final and LSTM_TEST_PAUSE_EPOCH, testPauseFromEnv)
// makes the worker print a marker line and hang at that point — after publishing an epoch ≥
// its epoch (default 1), just before writing a checkpoint of such an epoch, or just before
// recording `succeeded` — once per worker, so a test can SIGKILL it exactly there.
// Unset (always, outside tests), it costs one comparison.
export type PausePoint = 'epoch' | 'checkpoint' | 'final';
export interface TestPause {
  at: PausePoint;
  /** The first epoch it pauses at (epoch and checkpoint points). */
  epoch: number;
}

/** The test pause hook as the CLI passes it to a worker process: LSTM_TEST_PAUSE_AT / _EPOCH. */
export function testPauseFromEnv(env: NodeJS.ProcessEnv): TestPause | undefined {
  if (!env.LSTM_TEST_PAUSE_AT) return undefined;
  return { at: env.LSTM_TEST_PAUSE_AT as PausePoint, epoch: Number(env.LSTM_TEST_PAUSE_EPOCH ?? 1) };
}

/** How often the worker checkpoints (ServiceConfig's CHECKPOINT_EVERY and CHECKPOINT_SECONDS). */
export interface CheckpointPolicy {
  checkpointEvery: number;
  checkpointSeconds: number;
}

/**
 * Whether the worker checkpoints right after this epoch's event: after epoch 1, every
 * checkpointEvery epochs, at the last epoch, at an early stop (stopReason: the child then holds the
 * best weights), and when checkpointSeconds have passed since the last checkpoint — but never twice
 * for one epoch (a resumed worker re-trains epochs up to the checkpoint it resumed from).
 */
export function checkpointDue(
  ev: { epoch: number; epochs: number; stopReason?: string },
  last: { epoch: number; at: number },
  policy: CheckpointPolicy,
  now: number,
): boolean {
  const due =
    ev.epoch === 1 ||
    ev.epoch % policy.checkpointEvery === 0 ||
    ev.epoch === ev.epochs ||
    ev.stopReason !== undefined ||
    now - last.at >= policy.checkpointSeconds * 1000;
  return due && ev.epoch > last.epoch;
}

interface ActiveJob {
  controller: AbortController;
  token: string;
  proc: TrainingProcess;
}

export interface TrainWorkerOptions {
  config: ServiceConfig;
  engine: EngineFactory;
  /** Defaults to the Redis store on the worker's connection. */
  checkpoints?: CheckpointStore;
  /** Where the worker's lines go (default: the service logger, src/jobs/log.ts). */
  logger?: Logger;
  /** TEST-ONLY: hang once at this point (see TestPause above). */
  testPause?: TestPause;
  /** TEST-ONLY: the training processes crash there (TestCrash, src/jobs/train-process.ts; the CLI reads LSTM_TEST_CRASH*). */
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
  private paused = false;

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
    this.worker = new Worker<TrainJobData, string>(QUEUE_NAME, (job, token) => this.process(job, token), {
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
      if (!job || !job.finishedOn) return; // finishedOn: no retry follows
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

  private async process(job: Job<TrainJobData>, token?: string): Promise<string> {
    const id = job.data.id;
    if (!token) throw new Error('BullMQ gave no lock token');
    if (this.closing) {
      // fetched just as the worker began to shut down: back to the queue untouched
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const run = new JobRun(this.events, id, token);
    let rec = await this.store.get(id);
    if (!rec) return 'gone';
    if (TERMINAL_STATES.includes(rec.state)) return `already ${rec.state}`;
    // tries that used an attempt: failed ones and ones whose worker was lost (a hand-back on
    // shutdown uses none)
    const attempt = job.attemptsMade + (job.stalledCounter ?? 0) + 1;
    await this.note(id, 'info', `taken by worker ${this.workerId} on ${hostname()} (attempt ${attempt} of ${this.opts.config.attempts})`);
    // BullMQ counts failed tries (attempts) and lost workers (maxStalledCount) separately, so a mix
    // of both could exceed JOB_ATTEMPTS; the sum is what the limit means here
    if (attempt > this.opts.config.attempts) {
      const why = `gave up after ${attempt - 1} attempts (${job.attemptsMade} failed, its worker was lost ${job.stalledCounter ?? 0} times)`;
      await run.giveUp({ error: why });
      await this.note(id, 'error', why);
      throw new UnrecoverableError(why);
    }

    // takeover: the previous worker died without handing the job back (the stalled handler may
    // not have run yet)
    if (rec.state === 'running' && rec.owner !== token) {
      const ck = await this.ckpts.latestEpoch(id);
      await run.takeOver({
        previousOwner: rec.owner ?? '',
        message: `worker lost; resuming from ${ck ? `the checkpoint at epoch ${ck}` : 'the start'}`,
      });
    }

    // the checkpoint to resume from: a damaged one (it fails to read) is set aside and the previous
    // one used (two are kept), else the start; the running event says which
    const damaged: string[] = [];
    let resume: Checkpoint | undefined;
    let resumeData: Buffer | undefined;
    for (let stored = await this.ckpts.get(id); stored; stored = await this.ckpts.get(id)) {
      try {
        resume = deserializeCheckpoint(stored.data);
        resumeData = stored.data;
        break;
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        // readable bytes this build cannot use (a newer format, in a rolling upgrade): not damage —
        // kept, and this attempt fails so that a worker that reads it takes the job
        if (!(e instanceof DamagedCheckpointError))
          throw new Error(`the checkpoint at epoch ${stored.epoch} cannot be used by this worker (${e.message}); it is kept`);
        damaged.push(`the checkpoint at epoch ${stored.epoch} is damaged (${e.message})`);
        await this.note(id, 'warn', `${damaged[damaged.length - 1]}; set aside`, `worker: job ${id}: ${damaged[damaged.length - 1]}; set aside`);
        await this.ckpts.discard(id, stored.epoch);
      }
    }
    // an uploaded corpus is read from Redis (workers share nothing else with the api) and handed to
    // the training process with its spec; one deleted meanwhile fails the job, saying so
    const named = (rec.spec as { data?: { corpus?: unknown } }).data?.corpus;
    let corpusText: string | undefined;
    if (typeof named === 'object' && named !== null && 'id' in named) {
      const cid = String((named as { id: unknown }).id);
      corpusText = (await this.corpora.readText(cid)) ?? undefined;
      if (corpusText === undefined) {
        const why = `corpus ${cid} is gone (deleted); upload it again and submit a new job`;
        await run.giveUp({ error: why });
        await this.note(id, 'error', why);
        throw new UnrecoverableError(why);
      }
    }
    const ckptEpoch = resume?.epoch ?? null;
    const resumeText = ckptEpoch !== null ? `resuming from the checkpoint at epoch ${ckptEpoch}` : damaged.length ? 'starting again from epoch 1' : undefined;
    const started = await run.start({
      attempt,
      message: damaged.length ? `${damaged.join('; ')}; ${resumeText}` : resumeText,
      fields: { engine: this.opts.engine.name, backend: this.opts.engine.backend, ...(rec.startedAt ? {} : { startedAt: new Date().toISOString() }) },
    });
    if (!started.ok) {
      await this.note(id, 'info', `not started (${started.current ?? started.reason})`);
      return `not started (${started.current ?? started.reason})`; // cancelled meanwhile
    }
    rec = (await this.store.get(id)) ?? rec;

    const controller = new AbortController();
    // the attempt trains in its own process; this one relays, writes to Redis and supervises
    // spec.init: the weights it starts from, copied to the job at submission (its own checkpoint wins)
    const init = !resumeData && rec.spec?.init ? ((await this.redis.hgetBuffer(this.store.keys.init(id), 'data')) ?? undefined) : undefined;
    const proc = new TrainingProcess({
      spec: rec.spec,
      engine: this.opts.engine.name,
      resume: resumeData,
      init,
      attempt,
      name: rec.spec?.name,
      corpusText,
      testCrash: this.opts.testCrash,
    });
    const initText =
      init && rec.init
        ? ` from ${rec.init.fromJob ? `job ${rec.init.fromJob}` : `model ${rec.init.model}`}${rec.init.epoch !== undefined ? ` (its epoch ${rec.init.epoch})` : ''}`
        : '';
    await this.note(
      id,
      'info',
      `attempt ${attempt} ${ckptEpoch !== null ? `resumed from the checkpoint at epoch ${ckptEpoch}` : `started from epoch 1${initText}`} (engine ${this.opts.engine.name}/${this.opts.engine.backend}, training process ${proc.pid})`,
      `worker: job ${id} running (attempt ${attempt}${ckptEpoch !== null ? `, resuming at epoch ${ckptEpoch}` : ''}; training process ${proc.pid})`,
    );
    const active: ActiveJob = { controller, token, proc };
    this.active.set(id, active);
    const onAbort = () => proc.send({ t: 'stop', reason: String(controller.signal.reason) });
    controller.signal.addEventListener('abort', onAbort, { once: true });
    if (this.closing) controller.abort('shutdown'); // SIGTERM came while the job was starting
    // The checkpoint of the last published epoch while no checkpoint of that epoch is stored is
    // kept by the child (`next {keep}`): a cancel that lands after it finished the next epoch but
    // before that epoch's event was appended (the append is then refused) leaves it one epoch ahead
    // of the history; the stop keeps that copy instead, so the checkpoint is the last published epoch.
    // train.timeoutSeconds bounds the job's training time as elapsedMs counts it (across resumes):
    // the time at the last epoch event plus the time since
    const limitMs = (rec.spec as { train?: { timeoutSeconds?: number } }).train?.timeoutSeconds;
    // the clock runs from the child's `training` message: starting the process and loading the
    // corpus and weights are not training (a busy machine could otherwise time a job out unstarted)
    const trained = { ms: resume?.elapsedMs ?? 0, at: Date.now(), running: false };
    const overTime = () => limitMs !== undefined && trained.ms + (trained.running ? Date.now() - trained.at : 0) > limitMs * 1000;
    const deadline = limitMs === undefined ? undefined : setInterval(() => overTime() && controller.abort('timeout'), 200);
    if (overTime()) controller.abort('timeout');
    try {
      let published = rec.lastEpoch;
      let lastCkpt = { epoch: resume?.epoch ?? 0, at: Date.now() };
      const { checkpointEvery, checkpointSeconds } = this.opts.config;
      for (;;) {
        const m = await proc.next();
        if (m.t === 'training') {
          Object.assign(trained, { at: Date.now(), running: true });
        } else if (m.t === 'epoch') {
          const ev = m.ev;
          Object.assign(trained, { ms: ev.elapsedMs, at: Date.now(), running: true });
          if (controller.signal.aborted) continue; // the child stops and says so next
          if (ev.epoch > published) {
            const r = await run.publishEpoch(ev);
            if (r === 'gap') throw new Error(`internal error: epoch ${ev.epoch} would leave a gap after epoch ${published}`);
            if (r === 'fenced') {
              // cancelled, or another worker owns the job now: stop before the next minibatch
              const state = (await this.store.get(id))?.state;
              controller.abort(state === 'cancelled' ? 'cancel' : 'lost');
              continue;
            }
            published = ev.epoch;
            if (this.opts.testPause) await this.testPause('epoch', id, ev.epoch);
          }
          const due = checkpointDue(ev, lastCkpt, { checkpointEvery, checkpointSeconds }, Date.now());
          if (due) {
            proc.send({ t: 'checkpoint' });
            const c = await proc.next();
            if (c.t !== 'checkpoint') {
              proc.unread(c);
              continue;
            }
            await this.saveCheckpoint(id, c.epoch, Buffer.from(c.data), token);
            lastCkpt = { epoch: ev.epoch, at: Date.now() };
          }
          proc.send({ t: 'next', keep: ev.epoch === published && lastCkpt.epoch !== ev.epoch });
        } else if (m.t === 'done') {
          if (this.opts.testPause) await this.testPause('final', id, m.summary.epochs);
          const done = await run.succeed({
            summary: m.summary,
            ...(m.summary.stopReason ? { message: m.summary.stopReason } : {}),
          });
          await this.note(
            id,
            done.ok ? 'info' : 'warn',
            done.ok
              ? `succeeded: ${m.summary.epochs} epochs, perplexity ${m.summary.finalPerplexity?.toFixed(3) ?? 'not finite'}, ${(m.summary.totalMs / 1000).toFixed(1)} s`
              : `finished but was ${done.current}`,
            `worker: job ${id} ${done.ok ? 'succeeded' : `finished but was ${done.current}`}`,
          );
          return done.ok ? 'succeeded' : String(done.current);
        } else if (m.t === 'stopped') {
          return await this.stopped(job, id, token, m, (controller.signal.reason as StopReason) ?? 'lost');
        } else if (m.t === 'error') {
          throw m.final ? new UnrecoverableError(m.message) : new Error(m.message);
        } else if (m.t === 'exit') {
          // the child died without a word: a crash (native fault, OOM kill, uncaught error)
          if (controller.signal.aborted) {
            // …while stopping: what is stored stays (the checkpoint is never ahead of the history)
            return await this.stopped(job, id, token, { epoch: 0 }, controller.signal.reason as StopReason);
          }
          throw new Error(describeExit(m));
        }
      }
    } catch (e) {
      const err = e as Error;
      // BullMQ retries on errors until attemptsMade reaches attempts
      const final = e instanceof UnrecoverableError || attempt >= this.opts.config.attempts;
      if (final) {
        await run.fail({
          error: err.message,
        });
        await this.note(id, 'error', `failed: ${err.message}`);
        throw new UnrecoverableError(err.message);
      }
      await run.retry({
        message: `attempt ${attempt} failed (${err.message}); retrying`,
      });
      await this.note(id, 'warn', `attempt ${attempt} failed: ${err.message}; retrying`);
      throw err;
    } finally {
      clearInterval(deadline);
      controller.signal.removeEventListener('abort', onAbort);
      this.active.delete(id);
      await proc.end();
    }
  }

  /**
   * The training loop stopped between minibatches; trainer.epoch is the last completed epoch, which
   * may be one past the last published one (its append was refused: cancelled meanwhile).
   */
  private async stopped(
    job: Job<TrainJobData>,
    id: string,
    token: string,
    st: { epoch: number; current?: Uint8Array; atPublished?: Uint8Array },
    reason: StopReason,
  ): Promise<string> {
    const run = new JobRun(this.events, id, token);
    const rec = reason === 'lost' ? undefined : await this.store.get(id);
    // keep what was trained, up to the last published epoch (never an epoch the history lacks, so a
    // resume never skips one and generation after a cancel uses the model of the epoch reported)
    if (rec) {
      if (st.current && st.epoch > 0 && st.epoch <= rec.lastEpoch) await this.saveCheckpoint(id, st.epoch, Buffer.from(st.current), token);
      else if (st.atPublished) {
        const data = Buffer.from(st.atPublished);
        const epoch = deserializeCheckpoint(data).epoch;
        if (epoch === rec.lastEpoch) await this.saveCheckpoint(id, epoch, data, token);
      }
    }
    if (reason === 'shutdown') {
      const ck = await this.ckpts.latestEpoch(id);
      await run.handBack({
        message: `worker shut down; resumes from ${ck ? `the checkpoint at epoch ${ck}` : 'the start'}`,
      });
      // back to the queue without using up an attempt
      await job.moveToWait(token);
      await this.note(
        id,
        'info',
        `handed back to the queue at epoch ${st.epoch} (worker shutting down)`,
        `worker: job ${id} handed back to the queue at epoch ${st.epoch}`,
      );
      throw new WaitingError();
    }
    if (reason === 'timeout' && rec) {
      const limit = (rec.spec as { train?: { timeoutSeconds?: number } }).train?.timeoutSeconds;
      const now = (await this.store.get(id)) ?? rec;
      const r = await run.timeOut({
        summary: {
          finalPerplexity: finiteOrUndefined(now.perplexity) ?? null,
          epochs: now.lastEpoch,
          totalMs: Math.round(now.elapsedMs ?? 0),
          engine: now.engine ?? '',
          backend: now.backend ?? '',
        },
        message: `cancelled: its training time exceeded train.timeoutSeconds (${limit} s) at epoch ${now.lastEpoch} of ${now.spec.train.epochs}`,
      });
      await this.note(
        id,
        r.ok ? 'warn' : 'info',
        r.ok ? `timed out: training time over train.timeoutSeconds (${limit} s) at epoch ${now.lastEpoch}; cancelled` : `timed out but was ${r.current}`,
        `worker: job ${id} ${r.ok ? `cancelled: training time over train.timeoutSeconds (${limit} s)` : `timed out but was ${r.current}`}`,
      );
      return 'cancelled';
    }
    await this.note(
      id,
      'info',
      reason === 'cancel' ? `cancelled; stopped at epoch ${st.epoch}` : `stopped (${reason}): the job is another worker's now`,
      `worker: job ${id} stopped (${reason})`,
    );
    return reason === 'cancel' ? 'cancelled' : 'lost';
  }

  private async saveCheckpoint(id: string, epoch: number, data: Buffer, token: string): Promise<void> {
    if (this.opts.testPause) await this.testPause('checkpoint', id, epoch);
    if (await this.ckpts.put(id, epoch, data, token)) await this.note(id, 'debug', `checkpoint written at epoch ${epoch} (${data.length} bytes)`);
  }

  private async testPause(point: PausePoint, id: string, epoch: number): Promise<void> {
    const p = this.opts.testPause;
    if (p?.at !== point || this.paused || epoch < p.epoch) return;
    this.paused = true;
    this.logger.warn({ jobId: id }, `LSTM_TEST_PAUSED at=${point} job=${id} epoch=${epoch}`);
    await new Promise(() => {}); // until killed (the lock renewal keeps running meanwhile)
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
