// JobService (types.ts) over Redis + BullMQ, for the API process (HTTP, gRPC, dashboard).
import type { EngineFactory, LstmModel } from '../model/engine.js';
import { selectEngine } from '../model/engines.js';
import type { Vocab } from '../text/corpus.js';
import { CheckpointError, DamagedCheckpointError, deserializeCheckpoint, modelFromCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { exportModel, type ExportFormat, type ModelExport } from '../train/export.js';
import { cleanPrefix, generateChars, PrefixError } from '../train/predict.js';
import { parseJobSpec, SpecError, type JobSpec } from '../train/spec.js';
import { minCorpusTokens } from '../text/data.js';
import { corpusForSpec, type EpochEvent } from '../train/trainer.js';
import type { ServiceConfig } from './config.js';
import { FailedPreconditionError, NotFoundError, ResourceExhaustedError, UnavailableError } from './errors.js';
import { JobLog, type JobLogLine } from './job-log.js';
import { EventLog, Notifier } from './events.js';
import { checkJobCaps, costEstimate, estimateJob, textCorpusFigures } from './limits.js';
import { liveWorkers } from './heartbeat.js';
import { TrainQueue } from './queue.js';
import { Keys, connectRedis, isRedisDown, type RedisClient } from './redis.js';
import { JobStore, RedisCheckpointStore, finiteOrUndefined, isJobId, toView, type CheckpointStore, type JobRecord } from './store.js';
import {
  TERMINAL_STATES,
  type GenerateRequest,
  type JobEvent,
  type JobService,
  type JobSpecView,
  type JobState,
  type JobView,
  type LiveWorker,
  type ServiceStats,
} from './types.js';

const LAST_EPOCHS = 5;
const MAX_GENERATE_CHARS = 100_000;
/** The most epoch events one epochs() page holds (GET /v1/jobs/:id/epochs?limit=). */
const EPOCHS_PAGE_MAX = 1000;

interface LoadedModel {
  model: LstmModel;
  vocab: Vocab;
  users: number;
  evicted: boolean;
}

export interface RedisJobServiceOptions {
  config: ServiceConfig;
  /** Engine for generation; chosen lazily (selectEngine) on the first generate call. */
  engine?: EngineFactory;
  checkpoints?: CheckpointStore;
  /** The process's log lines (the engine chosen for generation); default: stderr. */
  log?: (line: string) => void;
}

export class RedisJobService implements JobService {
  readonly keys: Keys;
  readonly redis: RedisClient;
  private readonly sub: RedisClient;
  private readonly store: JobStore;
  private readonly events: EventLog;
  private readonly jobLog: JobLog;
  private readonly ckpts: CheckpointStore;
  private readonly queue: TrainQueue;
  private readonly notifier: Notifier;
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private generating = 0;
  private readonly bookSizes = new Map<string, { tokens: number; vocabSize: number } | SpecError>();
  private engine?: Promise<EngineFactory>;

  constructor(private readonly opts: RedisJobServiceOptions) {
    const { config } = opts;
    this.keys = new Keys(config.prefix);
    this.redis = connectRedis(config, { failFast: true, name: 'lstm-api' });
    this.sub = connectRedis(config, { name: 'lstm-api-sub' });
    this.store = new JobStore(this.redis, this.keys);
    this.events = new EventLog(this.redis, this.keys, config.retentionSeconds);
    this.jobLog = new JobLog(this.redis, this.keys);
    this.ckpts = opts.checkpoints ?? new RedisCheckpointStore(this.redis, this.keys);
    this.queue = new TrainQueue(config, config.prefix, config.attempts);
    this.notifier = new Notifier(this.sub, this.keys.notifyChannel);
    if (opts.engine) this.engine = Promise.resolve(opts.engine);
  }

  async submit(input: unknown, opts: { clientId?: string; idempotencyScope?: string } = {}): Promise<{ job: JobView; created: boolean }> {
    const cfg = this.opts.config;
    // every submission counts, valid or not (a client hammering with garbage is limited too)
    if (opts.clientId) await this.guard(() => this.store.rateLimit(opts.clientId!, cfg.rateLimitSubmits, cfg.rateLimitWindowSeconds));
    const spec = parseJobSpec(input);
    const corpus = this.corpusSize(spec); // a corpus too short for one minibatch is a SpecError now, not a failed job later
    const estimate = estimateJob(spec, corpus.tokens, corpus.vocabSize);
    checkJobCaps(spec, estimate, {
      maxMemoryMb: cfg.maxJobMemoryMb,
      maxTokenEpochs: cfg.maxJobTokenEpochs,
      maxTeraflops: cfg.maxJobTeraflops,
    });
    return this.guard(async () => {
      const { id, created } = await this.store.create(spec, {
        maxQueued: cfg.maxQueued,
        clientId: opts.clientId,
        maxQueuedPerClient: cfg.maxQueuedPerClient,
        idempotencyScope: opts.idempotencyScope,
        estimate: costEstimate(estimate),
      });
      const rec = await this.mustGetView(id);
      // (re-)adding a queued job is a no-op in BullMQ; it repairs a crash between create and add
      if (rec.state === 'queued') await this.queue.add(id);
      return { job: await this.view(rec), created };
    });
  }

  /**
   * Tokens and vocabulary size of a spec's corpus (validated: SpecError when too short), without
   * tokenising on the event loop. A pasted text is measured by one allocation-free scan
   * (textCorpusFigures: the same figures as the d2l pipeline the worker runs); the book's figures
   * depend only on maxTokens/batchSize/numSteps, so they are computed once and remembered.
   */
  private corpusSize(spec: JobSpec): { tokens: number; vocabSize: number } {
    if (spec.data.corpus !== 'timemachine') {
      const c = textCorpusFigures(spec.data.corpus.text, spec.data.maxTokens);
      const need = minCorpusTokens(spec.data.batchSize, spec.data.numSteps);
      if (c.tokens < need) {
        const field = c.tokens === spec.data.maxTokens ? 'data.maxTokens' : 'data.corpus.text';
        throw new SpecError([
          { field, message: `corpus has ${c.tokens} tokens; batchSize ${spec.data.batchSize} × numSteps ${spec.data.numSteps} needs at least ${need} for one minibatch` },
        ]);
      }
      return c;
    }
    const key = `${spec.data.maxTokens}/${spec.data.batchSize}/${spec.data.numSteps}`;
    let hit = this.bookSizes.get(key);
    if (!hit) {
      try {
        const c = corpusForSpec(spec);
        hit = { tokens: c.tokens.length, vocabSize: c.vocab.size };
      } catch (e) {
        if (!(e instanceof SpecError)) throw e;
        hit = e;
      }
      if (this.bookSizes.size >= 256) this.bookSizes.delete(this.bookSizes.keys().next().value as string);
      this.bookSizes.set(key, hit);
    }
    if (hit instanceof SpecError) throw hit;
    return hit;
  }

  async get(id: string, opts: { includeCorpus?: boolean } = {}): Promise<JobView> {
    checkId(id);
    return this.guard(async () => this.view(opts.includeCorpus ? await this.mustGet(id) : await this.mustGetView(id)));
  }

  async list(q: { state?: JobState; limit: number; cursor?: string }, opts: { includeCorpus?: boolean } = {}): Promise<{ jobs: JobView[]; nextCursor?: string }> {
    return this.guard(async () => {
      const { records, nextCursor } = await this.store.list(q, opts.includeCorpus);
      const jobs = await Promise.all(records.map((r) => this.view(r)));
      return nextCursor ? { jobs, nextCursor } : { jobs };
    });
  }

  async cancel(id: string): Promise<JobView> {
    checkId(id);
    return this.guard(async () => {
      for (let tries = 0; tries < 20; tries++) {
        const rec = await this.mustGetView(id);
        if (TERMINAL_STATES.includes(rec.state)) throw new FailedPreconditionError(`job ${id} is already ${rec.state}`);
        // the state changes here, atomically, and only if nothing was appended since we read it
        // (so the summary is the job's last epoch); a running worker sees it within one minibatch
        const r = await this.events.transition(id, 'cancelled', {
          from: [rec.state],
          ifLastSeq: rec.lastSeq,
          summary: {
            finalPerplexity: finiteOrUndefined(rec.perplexity) ?? null,
            epochs: rec.lastEpoch,
            totalMs: Math.round(rec.elapsedMs ?? 0),
            engine: rec.engine ?? '',
            backend: rec.backend ?? '',
          },
          message: rec.state === 'queued' ? 'cancelled while queued' : `cancelled at epoch ${rec.lastEpoch}`,
        });
        if (r.ok) {
          if (rec.state === 'queued') await this.queue.remove(id);
          else await this.redis.publish(this.keys.cancelChannel, id);
          return this.view(await this.mustGetView(id));
        }
        if (r.reason === 'missing') throw new NotFoundError(`job ${id} not found`);
        // an epoch or a state change came in between: read again
      }
      throw new UnavailableError(`job ${id} changes too fast to cancel; try again`);
    });
  }

  async *watch(id: string, fromSeq: number, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    checkId(id);
    try {
      yield* this.events.watch(id, fromSeq, this.notifier, signal);
    } catch (e) {
      throw mapRedisError(e);
    }
  }

  async epochs(id: string, after: number, limit = EPOCHS_PAGE_MAX): Promise<EpochEvent[]> {
    checkId(id);
    return this.guard(async () => {
      await this.mustGetView(id);
      return this.events.epochs(id, after, Math.max(1, Math.min(limit, EPOCHS_PAGE_MAX)));
    });
  }

  /** The job's own log (the worker's lines about it), oldest first. */
  async logs(id: string): Promise<JobLogLine[]> {
    checkId(id);
    return this.guard(async () => {
      await this.mustGetView(id);
      return this.jobLog.lines(id);
    });
  }

  async *generate(id: string, req: GenerateRequest, signal?: AbortSignal): AsyncGenerator<string> {
    // the API layers validate with the GenerateRequest schema (api/schemas.ts); this guards the
    // service itself against a caller that did not
    checkId(id);
    const r = req;
    if (!Number.isInteger(r.numChars) || r.numChars < 1 || r.numChars > MAX_GENERATE_CHARS) {
      throw new SpecError([{ field: 'numChars', message: `numChars must be an integer between 1 and ${MAX_GENERATE_CHARS}` }]);
    }
    try {
      cleanPrefix(r.prefix);
    } catch (e) {
      if (e instanceof PrefixError) throw new SpecError([{ field: 'prefix', message: e.message }]);
      throw e;
    }
    const rec = await this.guard(() => this.mustGetView(id));
    if (this.generating >= this.opts.config.generateConcurrency) {
      throw new ResourceExhaustedError(`${this.generating} generations are running; try again shortly`);
    }
    this.generating++;
    let loaded: LoadedModel | undefined;
    try {
      loaded = await this.model(id, rec);
      for await (const ch of generateChars(r.prefix, r.numChars, loaded.model, loaded.vocab, {
        temperature: r.temperature,
        topK: r.topK,
        seed: r.seed,
      })) {
        if (signal?.aborted) return;
        yield ch;
      }
    } finally {
      this.generating--;
      if (loaded) this.release(loaded);
    }
  }

  /** The model of the job's latest checkpoint, cached per (job, checkpoint epoch). */
  private async model(id: string, rec: JobRecord<JobSpecView>): Promise<LoadedModel> {
    const epoch = await this.guard(() => this.ckpts.latestEpoch(id));
    if (epoch === null) {
      throw new FailedPreconditionError(
        rec.state === 'queued' || rec.state === 'running'
          ? `job ${id} has no checkpoint yet (the first is written after epoch 1)`
          : `job ${id} (${rec.state}) has no checkpoint`,
      );
    }
    const key = `${id}@${epoch}`;
    let p = this.models.get(key);
    if (!p) {
      p = this.loadModel(id);
      this.models.set(key, p);
      p.catch(() => this.models.delete(key));
      this.evict();
    } else {
      // most recently used last
      this.models.delete(key);
      this.models.set(key, p);
    }
    const m = await p;
    m.users++;
    return m;
  }

  private async loadModel(id: string): Promise<LoadedModel> {
    const stored = await this.guard(() => this.ckpts.get(id));
    if (!stored) throw new FailedPreconditionError(`job ${id} has no checkpoint`);
    let ckpt: Checkpoint;
    try {
      ckpt = deserializeCheckpoint(stored.data);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      // a checkpoint this build cannot use but whose bytes are fine (a newer format version, during
      // a rolling upgrade) is left alone: it is not damage
      if (!(e instanceof DamagedCheckpointError)) {
        throw new FailedPreconditionError(`checkpoint of job ${id} at epoch ${stored.epoch} cannot be used by this api process (${e.message})`);
      }
      // a damaged checkpoint is set aside (the previous one becomes the latest, for generation and
      // for the worker that resumes the job), and the caller is told what happened — not a 500
      const now = await this.guard(() => this.ckpts.discard(id, stored.epoch));
      throw new FailedPreconditionError(
        `checkpoint of job ${id} at epoch ${stored.epoch} is damaged (${e.message}); it was set aside: ` +
          (now === null ? 'the job has no other checkpoint' : `the previous checkpoint (epoch ${now}) is the job's latest now; generate again to use it, and a resumed job continues from it`),
      );
    }
    this.engine ??= selectEngine(this.opts.config.engine, this.opts.log);
    const { model, vocab } = await modelFromCheckpoint(ckpt, await this.engine);
    return { model, vocab, users: 0, evicted: false };
  }

  private evict(): void {
    while (this.models.size > this.opts.config.modelCacheSize) {
      const [key, p] = this.models.entries().next().value as [string, Promise<LoadedModel>];
      this.models.delete(key);
      void p
        .then((m) => {
          m.evicted = true;
          if (m.users === 0) m.model.dispose();
        })
        .catch(() => undefined);
    }
  }

  private release(m: LoadedModel): void {
    m.users--;
    if (m.evicted && m.users === 0) m.model.dispose();
  }

  async ready(): Promise<boolean> {
    try {
      const pong = await Promise.race([this.redis.ping(), new Promise<string>((r) => setTimeout(() => r('timeout'), 1000).unref())]);
      return pong === 'PONG';
    } catch {
      return false;
    }
  }

  async workers(): Promise<LiveWorker[]> {
    const now = Date.now();
    return (await liveWorkers(this.redis, this.keys)).map((w) => ({
      id: w.id,
      host: w.host,
      engine: w.engine,
      backend: w.backend,
      concurrency: w.concurrency,
      jobs: w.jobs,
      lastHeartbeat: w.heartbeatAt,
      heartbeatAgeSeconds: Math.max(0, (now - Date.parse(w.heartbeatAt)) / 1000),
    }));
  }

  async stats(): Promise<ServiceStats> {
    return this.guard(async () => {
      const [jobsByState, epochsTrained, runningIds, workers] = await Promise.all([
        this.store.countByState(),
        this.store.epochsTrained(),
        this.store.idsInState('running', 100),
        this.workers(),
      ]);
      const recs = await this.store.fieldsOf(runningIds, ['state', 'tokensPerSec', 'engine'] as const);
      const running: ServiceStats['running'] = [];
      recs.forEach((r, i) => {
        if (r?.state !== 'running') return;
        running.push({ id: runningIds[i], tokensPerSec: finiteOrUndefined(Number(r.tokensPerSec ?? NaN)) ?? 0, engine: r.engine ?? undefined });
      });
      return { jobsByState, epochsTrained, running, workers };
    });
  }

  async close(): Promise<void> {
    await this.notifier.close();
    await this.queue.close().catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
    for (const p of this.models.values()) void p.then((m) => m.model.dispose()).catch(() => undefined);
    this.models.clear();
  }

  /** The job's latest checkpoint in `format` (src/train/export.ts); the export says which epoch. */
  async exportModel(id: string, format: ExportFormat): Promise<ModelExport> {
    checkId(id);
    const rec = await this.guard(() => this.mustGetView(id));
    const stored = await this.guard(() => this.ckpts.get(id));
    if (!stored) {
      throw new FailedPreconditionError(
        rec.state === 'queued' || rec.state === 'running' ? `job ${id} has no checkpoint yet (the first is written after epoch 1)` : `job ${id} (${rec.state}) has no checkpoint`,
      );
    }
    let ckpt: Checkpoint;
    try {
      ckpt = deserializeCheckpoint(stored.data);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      throw new FailedPreconditionError(`checkpoint of job ${id} at epoch ${stored.epoch} cannot be read (${e.message}); generate sets a damaged one aside`);
    }
    return exportModel(ckpt, format);
  }

  private async mustGet(id: string): Promise<JobRecord> {
    const rec = await this.store.get(id);
    if (!rec) throw new NotFoundError(`job ${id} not found`);
    return rec;
  }

  /** The record without the corpus text (views never carry it unless asked). */
  private async mustGetView(id: string): Promise<JobRecord<JobSpecView>> {
    const [rec] = await this.store.getViews([id]);
    if (!rec) throw new NotFoundError(`job ${id} not found`);
    return rec;
  }

  private async view(rec: JobRecord<JobSpecView>): Promise<JobView> {
    return toView(rec, await this.events.lastEpochs(rec.id, LAST_EPOCHS));
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapRedisError(e);
    }
  }
}

/**
 * The APIs check ids with the JobId schema (400 / INVALID_ARGUMENT); this guards the service itself:
 * anything not shaped like a job id names no job, and never reaches a Redis key (`<id>:events`…).
 */
function checkId(id: string): void {
  if (!isJobId(id)) throw new NotFoundError(`job ${String(id).slice(0, 40)} not found`);
}

function mapRedisError(e: unknown): unknown {
  return isRedisDown(e) ? new UnavailableError('the job store (Redis) is unreachable; try again shortly') : e;
}
