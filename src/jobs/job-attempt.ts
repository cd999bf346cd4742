// One attempt of a job in the worker (the BullMQ processor): take it (or give up after its
// attempts), take it over from a lost worker, pick the checkpoint to resume from (a damaged one set
// aside), start its training process and relay it — publish each epoch, checkpoint when due,
// stop on cancel, shutdown, timeout or a lost lock — and record how it ended (succeeded, failed,
// retried, handed back, timed out, cancelled). The worker (worker.ts) owns the connections, the
// cancel channel, the watchdog and shutdown; it reaches the running attempts through `active`.
//
// Resume semantics (docs/service.md): a checkpoint is written right after its epoch's event is
// published (after epoch 1, every CHECKPOINT_EVERY epochs, at least every CHECKPOINT_SECONDS, at
// the end, on shutdown and on cancel), so the stored checkpoint is never ahead of the history. A
// worker that takes over a job resumes from that checkpoint and re-trains the epochs between it
// and the last published one without publishing them again (the append script only accepts
// lastEpoch+1); from the next epoch on it publishes. So the history never repeats or skips an epoch.
import { hostname } from 'node:os';
import { WaitingError, UnrecoverableError, type Job } from 'bullmq';
import type { EngineFactory } from '../model/engine.js';
import { CheckpointError, DamagedCheckpointError, deserializeCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { ServiceConfig } from './config.js';
import type { CorpusStore } from './corpora.js';
import type { EventLog } from './events.js';
import type { LogLevel } from './job-log.js';
import type { JobStore } from './job-records.js';
import { summaryOf } from './job-view.js';
import { JobRun } from './lifecycle.js';
import type { TrainJobData } from './queue.js';
import type { RedisClient } from './redis.js';
import type { TestCrash, TestPauseHook } from './test-hooks.js';
import { checkpointDue } from './checkpoint-policy.js';
import { describeExit, TrainingProcess } from './train-process.js';
import { TERMINAL_STATES } from './types.js';

export type StopReason = 'cancel' | 'shutdown' | 'lost' | 'timeout';

/** A running attempt as the worker stops it: abort its controller (with a StopReason), or kill its process. */
export interface ActiveJob {
  controller: AbortController;
  token: string;
  proc: TrainingProcess;
}

/**
 * A line about one job: to the worker's log at `level` (`line`, by default "worker: job <id> <msg>";
 * null: the job's log only) and to the job's own log in Redis.
 */
export type JobNote = (id: string, level: LogLevel, msg: string, line?: string | null) => Promise<void>;

/** What the attempts use of their worker. */
export interface JobAttemptsParts {
  workerId: string;
  config: ServiceConfig;
  engine: EngineFactory;
  redis: RedisClient;
  store: JobStore;
  events: EventLog;
  checkpoints: CheckpointStore;
  corpora: CorpusStore;
  /** The worker's running attempts by job id (its cancel, watchdog and shutdown stop them there). */
  active: Map<string, ActiveJob>;
  /** Whether the worker is shutting down (a job fetched meanwhile goes back to the queue). */
  closing(): boolean;
  note: JobNote;
  /** TEST-ONLY hooks (test-hooks.ts). */
  testPause?: TestPauseHook;
  testCrash?: TestCrash;
}

export class JobAttempts {
  constructor(private readonly parts: JobAttemptsParts) {}

  /** The BullMQ processor: one attempt of the job, from taking it to its end; the return value is BullMQ's job result. */
  async run(job: Job<TrainJobData>, token?: string): Promise<string> {
    const id = job.data.id;
    if (!token) throw new Error('BullMQ gave no lock token');
    if (this.parts.closing()) {
      // fetched just as the worker began to shut down: back to the queue untouched
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const run = new JobRun(this.parts.events, id, token);
    let rec = await this.parts.store.get(id);
    if (!rec) return 'gone';
    if (TERMINAL_STATES.includes(rec.state)) return `already ${rec.state}`;
    // tries that used an attempt: failed ones and ones whose worker was lost (a hand-back on
    // shutdown uses none)
    const attempt = job.attemptsMade + (job.stalledCounter ?? 0) + 1;
    await this.parts.note(id, 'info', `taken by worker ${this.parts.workerId} on ${hostname()} (attempt ${attempt} of ${this.parts.config.attempts})`);
    // BullMQ counts failed tries (attempts) and lost workers (maxStalledCount) separately, so a mix
    // of both could exceed JOB_ATTEMPTS; the sum is what the limit means here
    if (attempt > this.parts.config.attempts) {
      const why = `gave up after ${attempt - 1} attempts (${job.attemptsMade} failed, its worker was lost ${job.stalledCounter ?? 0} times)`;
      await run.giveUp({ error: why });
      await this.parts.note(id, 'error', why);
      throw new UnrecoverableError(why);
    }

    // takeover: the previous worker died without handing the job back (the stalled handler may
    // not have run yet)
    if (rec.state === 'running' && rec.owner !== token) {
      const ck = await this.parts.checkpoints.latestEpoch(id);
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
    for (let stored = await this.parts.checkpoints.get(id); stored; stored = await this.parts.checkpoints.get(id)) {
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
        await this.parts.note(id, 'warn', `${damaged[damaged.length - 1]}; set aside`, `worker: job ${id}: ${damaged[damaged.length - 1]}; set aside`);
        await this.parts.checkpoints.discard(id, stored.epoch);
      }
    }
    // an uploaded corpus is read from Redis (workers share nothing else with the api) and handed to
    // the training process with its spec; one deleted meanwhile fails the job, saying so
    const named = (rec.spec as { data?: { corpus?: unknown } }).data?.corpus;
    let corpusText: string | undefined;
    if (typeof named === 'object' && named !== null && 'id' in named) {
      const cid = String((named as { id: unknown }).id);
      corpusText = (await this.parts.corpora.readText(cid)) ?? undefined;
      if (corpusText === undefined) {
        const why = `corpus ${cid} is gone (deleted); upload it again and submit a new job`;
        await run.giveUp({ error: why });
        await this.parts.note(id, 'error', why);
        throw new UnrecoverableError(why);
      }
    }
    const ckptEpoch = resume?.epoch ?? null;
    const resumeText = ckptEpoch !== null ? `resuming from the checkpoint at epoch ${ckptEpoch}` : damaged.length ? 'starting again from epoch 1' : undefined;
    const started = await run.start({
      attempt,
      message: damaged.length ? `${damaged.join('; ')}; ${resumeText}` : resumeText,
      fields: { engine: this.parts.engine.name, backend: this.parts.engine.backend, ...(rec.startedAt ? {} : { startedAt: new Date().toISOString() }) },
    });
    if (!started.ok) {
      await this.parts.note(id, 'info', `not started (${started.current ?? started.reason})`);
      return `not started (${started.current ?? started.reason})`; // cancelled meanwhile
    }
    rec = (await this.parts.store.get(id)) ?? rec;

    const controller = new AbortController();
    // the attempt trains in its own process; this one relays, writes to Redis and supervises
    // spec.init: the weights it starts from, copied to the job at submission (its own checkpoint wins)
    const init = !resumeData && rec.spec?.init ? ((await this.parts.redis.hgetBuffer(this.parts.store.keys.init(id), 'data')) ?? undefined) : undefined;
    const proc = new TrainingProcess({
      spec: rec.spec,
      engine: this.parts.engine.name,
      resume: resumeData,
      init,
      attempt,
      name: rec.spec?.name,
      corpusText,
      testCrash: this.parts.testCrash,
    });
    const initText =
      init && rec.init
        ? ` from ${rec.init.fromJob ? `job ${rec.init.fromJob}` : `model ${rec.init.model}`}${rec.init.epoch !== undefined ? ` (its epoch ${rec.init.epoch})` : ''}`
        : '';
    await this.parts.note(
      id,
      'info',
      `attempt ${attempt} ${ckptEpoch !== null ? `resumed from the checkpoint at epoch ${ckptEpoch}` : `started from epoch 1${initText}`} (engine ${this.parts.engine.name}/${this.parts.engine.backend}, training process ${proc.pid})`,
      `worker: job ${id} running (attempt ${attempt}${ckptEpoch !== null ? `, resuming at epoch ${ckptEpoch}` : ''}; training process ${proc.pid})`,
    );
    const active: ActiveJob = { controller, token, proc };
    this.parts.active.set(id, active);
    const onAbort = () => proc.send({ t: 'stop', reason: String(controller.signal.reason) });
    controller.signal.addEventListener('abort', onAbort, { once: true });
    if (this.parts.closing()) controller.abort('shutdown'); // SIGTERM came while the job was starting
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
      const { checkpointEvery, checkpointSeconds } = this.parts.config;
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
              const state = (await this.parts.store.get(id))?.state;
              controller.abort(state === 'cancelled' ? 'cancel' : 'lost');
              continue;
            }
            published = ev.epoch;
            if (this.parts.testPause) await this.parts.testPause.at('epoch', id, ev.epoch);
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
          if (this.parts.testPause) await this.parts.testPause.at('final', id, m.summary.epochs);
          const done = await run.succeed({
            summary: m.summary,
            ...(m.summary.stopReason ? { message: m.summary.stopReason } : {}),
          });
          await this.parts.note(
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
      const final = e instanceof UnrecoverableError || attempt >= this.parts.config.attempts;
      if (final) {
        await run.fail({
          error: err.message,
        });
        await this.parts.note(id, 'error', `failed: ${err.message}`);
        throw new UnrecoverableError(err.message);
      }
      await run.retry({
        message: `attempt ${attempt} failed (${err.message}); retrying`,
      });
      await this.parts.note(id, 'warn', `attempt ${attempt} failed: ${err.message}; retrying`);
      throw err;
    } finally {
      clearInterval(deadline);
      controller.signal.removeEventListener('abort', onAbort);
      this.parts.active.delete(id);
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
    const run = new JobRun(this.parts.events, id, token);
    const rec = reason === 'lost' ? undefined : await this.parts.store.get(id);
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
      const ck = await this.parts.checkpoints.latestEpoch(id);
      await run.handBack({
        message: `worker shut down; resumes from ${ck ? `the checkpoint at epoch ${ck}` : 'the start'}`,
      });
      // back to the queue without using up an attempt
      await job.moveToWait(token);
      await this.parts.note(
        id,
        'info',
        `handed back to the queue at epoch ${st.epoch} (worker shutting down)`,
        `worker: job ${id} handed back to the queue at epoch ${st.epoch}`,
      );
      throw new WaitingError();
    }
    if (reason === 'timeout' && rec) {
      const limit = (rec.spec as { train?: { timeoutSeconds?: number } }).train?.timeoutSeconds;
      const now = (await this.parts.store.get(id)) ?? rec;
      const r = await run.timeOut({
        summary: summaryOf(now),
        message: `cancelled: its training time exceeded train.timeoutSeconds (${limit} s) at epoch ${now.lastEpoch} of ${now.spec.train.epochs}`,
      });
      await this.parts.note(
        id,
        r.ok ? 'warn' : 'info',
        r.ok ? `timed out: training time over train.timeoutSeconds (${limit} s) at epoch ${now.lastEpoch}; cancelled` : `timed out but was ${r.current}`,
        `worker: job ${id} ${r.ok ? `cancelled: training time over train.timeoutSeconds (${limit} s)` : `timed out but was ${r.current}`}`,
      );
      return 'cancelled';
    }
    await this.parts.note(
      id,
      'info',
      reason === 'cancel' ? `cancelled; stopped at epoch ${st.epoch}` : `stopped (${reason}): the job is another worker's now`,
      `worker: job ${id} stopped (${reason})`,
    );
    return reason === 'cancel' ? 'cancelled' : 'lost';
  }

  private async saveCheckpoint(id: string, epoch: number, data: Buffer, token: string): Promise<void> {
    if (this.parts.testPause) await this.parts.testPause.at('checkpoint', id, epoch);
    if (await this.parts.checkpoints.put(id, epoch, data, token))
      await this.parts.note(id, 'debug', `checkpoint written at epoch ${epoch} (${data.length} bytes)`);
  }
}
