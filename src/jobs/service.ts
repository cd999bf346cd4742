// JobService (types.ts) over Redis + BullMQ, for the API process (HTTP, gRPC, dashboard).
import type { EngineFactory, LstmModel } from '../model/engine.js';
import { selectEngine } from '../model/engines.js';
import type { Vocab } from '../text/corpus.js';
import { CheckpointError, DamagedCheckpointError, deserializeCheckpoint, modelFromCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { exportModel, type ExportFormat, type ModelExport } from '../train/export.js';
import { cleanPrefix, generateChars, PrefixError } from '../train/predict.js';
import { parseJobSpec, SpecError, type JobSpec } from '../train/spec.js';
import { ModelFileError } from '../train/import.js';
import { ModelStore } from './models.js';
import { minCorpusTokens } from '../text/data.js';
import { corpusForSpec, type EpochEvent } from '../train/trainer.js';
import type { ServiceConfig } from './config.js';
import { FailedPreconditionError, NotFoundError, ResourceExhaustedError, UnavailableError } from './errors.js';
import { JobLog, type JobLogLine } from './job-log.js';
import { EventLog, Notifier } from './events.js';
import { CorpusStore } from './corpora.js';
import { resolveCorpus } from './corpus-info.js';
import { checkJobCaps, costEstimate, estimateJob, textCorpusFigures } from './limits.js';
import { liveWorkers } from './heartbeat.js';
import { JobRun } from './lifecycle.js';
import { TrainQueue } from './queue.js';
import { Keys, connectRedis, isRedisDown, type RedisClient } from './redis.js';
import { canAccess, type Caller } from './owners.js';
import { isFiltered, listMatching } from './list-filter.js';
import { deleteJob } from './delete.js';
import { EXPERIMENT_ID_RE, checkExperimentCaps, experimentTable, newExperimentId, planExperiment, type ExperimentRecord } from './experiments.js';
import { JobStore, isJobId, newJobId, type JobRecord } from './job-records.js';
import { RedisCheckpointStore, type CheckpointStore } from './checkpoint-store.js';
import { finiteOrUndefined, toView } from './job-view.js';
import {
  TERMINAL_STATES,
  type Access,
  type DataInfo,
  type ExperimentView,
  type ListFilter,
  type GenerateRequest,
  type JobEvent,
  type JobInit,
  type JobService,
  type JobSpecView,
  type JobState,
  type JobView,
  type LiveWorker,
  type ModelView,
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

/** A job checked and measured at submission, not yet written (RedisJobService.prepare). */
interface PreparedJob {
  spec: JobSpec;
  info: DataInfo;
  init?: { data: Buffer; vocabSize: number; record: JobInit };
  estimate: ReturnType<typeof estimateJob>;
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
  private readonly modelFiles: ModelStore;
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private generating = 0;
  private readonly bookSizes = new Map<string, { tokens: number; vocabSize: number } | SpecError>();
  private engine?: Promise<EngineFactory>;

  /** Uploaded corpora (POST /v1/corpora). */
  readonly corpora: CorpusStore;

  constructor(private readonly opts: RedisJobServiceOptions) {
    const { config } = opts;
    this.keys = new Keys(config.prefix);
    this.redis = connectRedis(config, { failFast: true, name: 'lstm-api' });
    this.sub = connectRedis(config, { name: 'lstm-api-sub' });
    this.store = new JobStore(this.redis, this.keys);
    this.corpora = new CorpusStore(this.redis, this.keys);
    this.events = new EventLog(this.redis, this.keys, config.retentionSeconds);
    this.jobLog = new JobLog(this.redis, this.keys);
    this.ckpts = opts.checkpoints ?? new RedisCheckpointStore(this.redis, this.keys);
    this.queue = new TrainQueue(config, config.prefix, config.attempts);
    this.notifier = new Notifier(this.sub, this.keys.notifyChannel);
    this.modelFiles = new ModelStore(this.redis, this.keys);
    if (opts.engine) this.engine = Promise.resolve(opts.engine);
  }

  async submit(input: unknown, opts: { clientId?: string; idempotencyScope?: string; owner?: Caller } = {}): Promise<{ job: JobView; created: boolean }> {
    const cfg = this.opts.config;
    // every submission counts, valid or not (a client hammering with garbage is limited too)
    if (opts.clientId) await this.guard(() => this.store.rateLimit(opts.clientId!, cfg.rateLimitSubmits, cfg.rateLimitWindowSeconds));
    const { spec, info, init, estimate } = await this.prepare(input, parseJobSpec(input), opts.owner);
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
        data: info,
        init: init?.record,
        owner: opts.owner && { key: opts.owner.key, name: opts.owner.name },
      });
      await this.attach(id, { spec, init }, created);
      const rec = await this.mustGetView(id);
      // (re-)adding a queued job is a no-op in BullMQ; it repairs a crash between create and add
      if (rec.state === 'queued') await this.queue.add(id);
      return { job: await this.view(rec), created };
    });
  }

  /**
   * A job as it will be created, every check that can refuse it done and nothing written: the spec
   * with what its corpus fills in (src/jobs/corpus-info.ts: an uploaded corpus's length, prefixes of
   * a corpus that is not the book; one too short for a minibatch is a SpecError now, not a failed
   * job later), its data figures, the weights it starts from (spec.init: they exist, the caller may
   * read them and they fit model.*; the vocabulary is then theirs) and its cost estimate.
   */
  private async prepare(input: unknown, parsed: JobSpec, owner?: Caller): Promise<PreparedJob> {
    const { spec, info } = await this.guard(() => resolveCorpus(input, parsed, this.corpora, owner));
    const corpus = isBookRecipe(spec) ? this.corpusSize(spec) : { tokens: info.trainTokens + info.validTokens, vocabSize: info.vocabSize };
    const init = spec.init ? await this.resolveInit(spec, owner) : undefined;
    const estimate = estimateJob(spec, corpus.tokens, init?.vocabSize ?? corpus.vocabSize);
    return { spec, info: init ? { ...info, vocabSize: init.vocabSize } : info, init, estimate };
  }

  /**
   * What a created job needs besides its record, before it is queued: its place in its corpus's job
   * list (DELETE of the corpus is refused while it is used) and the weights it starts from (written
   * again when a retried submission repairs a crash between the two).
   */
  private async attach(id: string, p: Pick<PreparedJob, 'spec' | 'init'>, created: boolean): Promise<void> {
    const c = p.spec.data.corpus;
    if (typeof c === 'object' && 'id' in c) await this.corpora.addJob(c.id, id);
    if (p.init && (created || !(await this.modelFiles.jobInit(id)))) await this.modelFiles.putJobInit(id, p.init.data);
  }

  /**
   * spec.init at submission: the source exists (a 400 naming init.fromJob / init.model otherwise)
   * and its architecture is the job's model.* (a 400 naming each field that differs). Its bytes are
   * copied to the job (the worker reads them from there), with the epoch it had reached.
   */
  private async resolveInit(spec: JobSpec, owner?: Caller): Promise<{ data: Buffer; vocabSize: number; record: JobInit }> {
    const init = spec.init!;
    let data: Buffer;
    let source: string;
    let have: { kind: string; numHiddens: number; numLayers: number; vocabSize: number };
    let record: JobInit;
    if ('fromJob' in init) {
      const from = init.fromJob;
      const field = 'init.fromJob';
      if (!isJobId(from)) throw new SpecError([{ field, message: `${field}: no job ${from}` }]);
      const rec = await this.guard(() => this.store.getViews([from]));
      // another key's job is no job (owners): its weights are not the caller's to start from
      if (!rec[0] || !canAccess(owner, rec[0].ownerKey)) throw new SpecError([{ field, message: `${field}: no job ${from}` }]);
      const stored = await this.guard(() => this.ckpts.get(from));
      if (!stored)
        throw new SpecError([
          {
            field,
            message: `${field}: job ${from} (${rec[0].state}) has no checkpoint to start from${rec[0].state === 'queued' || rec[0].state === 'running' ? ' yet (the first is written after epoch 1)' : ''}`,
          },
        ]);
      let ckpt: Checkpoint;
      try {
        ckpt = deserializeCheckpoint(stored.data);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        throw new SpecError([{ field, message: `${field}: the checkpoint of job ${from} at epoch ${stored.epoch} cannot be read (${e.message})` }]);
      }
      data = stored.data;
      source = `job ${from} (epoch ${ckpt.epoch})`;
      have = ckpt.config;
      record = { fromJob: from, epoch: ckpt.epoch };
      if (Number.isFinite(ckpt.perplexity)) record.perplexity = ckpt.perplexity;
    } else {
      const field = 'init.model';
      // another key's model is no model (owners), as another key's job above
      const model = await this.guard(() => this.modelFiles.get(init.model, owner));
      const bytes = model ? await this.guard(() => this.modelFiles.data(init.model)) : null;
      if (!model || !bytes) throw new SpecError([{ field, message: `${field}: no model ${init.model} (upload one with POST /v1/models)` }]);
      data = bytes;
      source = `model ${model.id}`;
      have = model;
      record = { model: model.id };
      if (model.epoch !== undefined) record.epoch = model.epoch;
      if (model.perplexity !== undefined) record.perplexity = model.perplexity;
    }
    const issues = (['kind', 'numHiddens', 'numLayers'] as const)
      .filter((k) => have[k] !== spec.model[k])
      .map((k) => ({
        field: `model.${k}`,
        message: `model.${k} is ${spec.model[k]} but init's ${source} has ${k} ${have[k]}; a job continues a model of its own architecture (set model.kind, numHiddens and numLayers as the model's)`,
      }));
    if (issues.length) throw new SpecError(issues);
    return { data, vocabSize: have.vocabSize, record };
  }

  /** POST /v1/models: a safetensors state dict, validated in full (a 400 naming what is wrong), stored in Redis. */
  async uploadModel(data: Buffer, opts: Access = {}): Promise<{ model: ModelView; created: boolean }> {
    try {
      return await this.guard(() => this.modelFiles.put(data, new Date(), opts.as));
    } catch (e) {
      if (e instanceof ModelFileError) throw new SpecError([{ field: 'body', message: `model file: ${e.message}` }]);
      throw e;
    }
  }

  async getModel(id: string, opts: Access = {}): Promise<ModelView> {
    const m = await this.guard(() => this.modelFiles.get(id, opts.as));
    if (!m) throw new NotFoundError(`model ${String(id).slice(0, 40)} not found`);
    return m;
  }

  async listModels(limit: number, opts: Access = {}): Promise<ModelView[]> {
    return this.guard(() => this.modelFiles.list(limit, opts.as));
  }

  /**
   * Tokens and vocabulary size of a spec's corpus (validated: SpecError when too short), without
   * tokenising on the event loop. A pasted text is measured by one allocation-free scan
   * (textCorpusFigures: the same figures as the d2l pipeline the worker runs); the book's figures
   * depend only on maxTokens/batchSize/numSteps, so they are computed once and remembered.
   */
  private corpusSize(spec: JobSpec): { tokens: number; vocabSize: number } {
    if (spec.data.corpus !== 'timemachine' && 'text' in spec.data.corpus) {
      const c = textCorpusFigures(spec.data.corpus.text, spec.data.maxTokens ?? 0);
      const need = minCorpusTokens(spec.data.batchSize, spec.data.numSteps);
      if (c.tokens < need) {
        const field = c.tokens === spec.data.maxTokens ? 'data.maxTokens' : 'data.corpus.text';
        throw new SpecError([
          {
            field,
            message: `corpus has ${c.tokens} tokens; batchSize ${spec.data.batchSize} × numSteps ${spec.data.numSteps} needs at least ${need} for one minibatch`,
          },
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

  async get(id: string, opts: { includeCorpus?: boolean } & Access = {}): Promise<JobView> {
    checkId(id);
    return this.guard(async () => this.view(opts.includeCorpus ? await this.mustGet(id, opts.as) : await this.mustGetView(id, opts.as)));
  }

  async list(q: ListFilter, opts: { includeCorpus?: boolean } & Access = {}): Promise<{ jobs: JobView[]; nextCursor?: string }> {
    return this.guard(async () => {
      // a caller that is not an admin lists its own jobs only
      const match = { state: q.state, tag: q.tag, experiment: q.experiment, name: q.name, ownerKey: opts.as && !opts.as.admin ? opts.as.key : undefined };
      const { records, nextCursor } = isFiltered(match)
        ? await listMatching(this.store, q, match, opts.includeCorpus)
        : await this.store.list(q, opts.includeCorpus);
      const jobs = await Promise.all(records.map((r) => this.view(r)));
      return nextCursor ? { jobs, nextCursor } : { jobs };
    });
  }

  async cancel(id: string, opts: Access = {}): Promise<JobView> {
    checkId(id);
    return this.guard(async () => {
      for (let tries = 0; tries < 20; tries++) {
        const rec = await this.mustGetView(id, opts.as);
        if (TERMINAL_STATES.includes(rec.state)) throw new FailedPreconditionError(`job ${id} is already ${rec.state}`);
        // the state changes here, atomically, and only if nothing was appended since we read it
        // (so the summary is the job's last epoch); a running worker sees it within one minibatch
        const r = await new JobRun(this.events, id).cancel({
          seen: { state: rec.state, lastSeq: rec.lastSeq },
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

  async *watch(id: string, fromSeq: number, signal?: AbortSignal, opts: Access = {}): AsyncGenerator<JobEvent> {
    checkId(id);
    if (opts.as) await this.guard(() => this.mustGetView(id, opts.as));
    try {
      yield* this.events.watch(id, fromSeq, this.notifier, signal);
    } catch (e) {
      throw mapRedisError(e);
    }
  }

  async epochs(id: string, after: number, limit = EPOCHS_PAGE_MAX, opts: Access = {}): Promise<EpochEvent[]> {
    checkId(id);
    return this.guard(async () => {
      await this.mustGetView(id, opts.as);
      return this.events.epochs(id, after, Math.max(1, Math.min(limit, EPOCHS_PAGE_MAX)));
    });
  }

  /** The job's own log (the worker's lines about it), oldest first. */
  async logs(id: string, opts: Access = {}): Promise<JobLogLine[]> {
    checkId(id);
    return this.guard(async () => {
      await this.mustGetView(id, opts.as);
      return this.jobLog.lines(id);
    });
  }

  async *generate(id: string, req: GenerateRequest, signal?: AbortSignal, opts: Access = {}): AsyncGenerator<string> {
    // the API layers validate with the GenerateRequest schema (api/schemas.ts); this guards the
    // service itself against a caller that did not
    checkId(id);
    const r = req;
    if (!Number.isInteger(r.numChars) || r.numChars < 1 || r.numChars > MAX_GENERATE_CHARS) {
      throw new SpecError([{ field: 'numChars', message: `numChars must be an integer between 1 and ${MAX_GENERATE_CHARS}` }]);
    }
    const rec = await this.guard(() => this.mustGetView(id, opts.as));
    // the prefix is read as the job's tokenizer reads text (older records have none: d2l-chars)
    const tokenizer = rec.spec.data.tokenizer ?? 'd2l-chars';
    try {
      cleanPrefix(r.prefix, tokenizer);
    } catch (e) {
      if (e instanceof PrefixError) throw new SpecError([{ field: 'prefix', message: e.message }]);
      throw e;
    }
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
        tokenizer,
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
          (now === null
            ? 'the job has no other checkpoint'
            : `the previous checkpoint (epoch ${now}) is the job's latest now; generate again to use it, and a resumed job continues from it`),
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
  async exportModel(id: string, format: ExportFormat, opts: Access = {}): Promise<ModelExport> {
    checkId(id);
    const rec = await this.guard(() => this.mustGetView(id, opts.as));
    const stored = await this.guard(() => this.ckpts.get(id));
    if (!stored) {
      throw new FailedPreconditionError(
        rec.state === 'queued' || rec.state === 'running'
          ? `job ${id} has no checkpoint yet (the first is written after epoch 1)`
          : `job ${id} (${rec.state}) has no checkpoint`,
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

  async createExperiment(input: unknown, opts: { clientId?: string; owner?: Caller } = {}): Promise<ExperimentView> {
    const cfg = this.opts.config;
    if (opts.clientId) await this.guard(() => this.store.rateLimit(opts.clientId!, cfg.rateLimitSubmits, cfg.rateLimitWindowSeconds));
    const plan = planExperiment(input);
    const caps = { maxMemoryMb: cfg.maxJobMemoryMb, maxTokenEpochs: cfg.maxJobTokenEpochs, maxTeraflops: cfg.maxJobTeraflops };
    // every point is checked (corpus, each job's caps, then the sum) before anything is queued
    // as each job's submission would (corpus, init, caps), then the sum
    const prepared: PreparedJob[] = [];
    for (const [i, p] of plan.points.entries()) {
      try {
        const job = await this.prepare(p.input, p.spec, opts.owner);
        checkJobCaps(job.spec, job.estimate, { ...caps, maxTokenEpochs: 0, maxTeraflops: 0 });
        prepared.push(job);
      } catch (err) {
        if (err instanceof SpecError)
          throw new SpecError(err.issues.map((iss) => ({ field: iss.field, message: `job ${i + 1} (${p.spec.name}): ${iss.message}` })));
        throw err;
      }
    }
    const estimates = prepared.map((j) => j.estimate);
    checkExperimentCaps(estimates, caps);
    const n = plan.points.length;
    if (cfg.maxQueuedPerClient > 0 && opts.clientId && n > cfg.maxQueuedPerClient) {
      throw new ResourceExhaustedError(
        `the experiment makes ${n} jobs; a client may have at most ${cfg.maxQueuedPerClient} waiting (MAX_QUEUED_PER_CLIENT)`,
        60,
      );
    }
    return this.guard(async () => {
      if (cfg.maxQueued > 0 && (await this.store.countByState()).queued + n > cfg.maxQueued) {
        throw new ResourceExhaustedError(`the queue cannot take ${n} more jobs (MAX_QUEUED_JOBS = ${cfg.maxQueued}); try again later`);
      }
      const now = new Date();
      const rec: ExperimentRecord = {
        id: newExperimentId(now.getTime()),
        name: plan.name,
        createdAt: now.toISOString(),
        ownerKey: opts.owner?.key,
        ownerName: opts.owner?.name,
        varied: plan.varied,
        jobs: plan.points.map((p) => ({ id: newJobId(now.getTime()), values: p.values })),
      };
      // the record first (its jobs are listed before they exist; the table shows a missing one as deleted)
      await this.redis.hset(this.keys.experiment(rec.id), 'record', JSON.stringify(rec), ...(rec.ownerKey ? ['ownerKey', rec.ownerKey] : []));
      for (let i = 0; i < n; i++) {
        const p = prepared[i];
        const { id, created } = await this.store.create(p.spec, {
          id: rec.jobs[i].id,
          maxQueued: 0, // checked for the whole experiment above
          clientId: opts.clientId,
          maxQueuedPerClient: cfg.maxQueuedPerClient,
          estimate: costEstimate(p.estimate),
          data: p.info,
          init: p.init?.record,
          owner: opts.owner && { key: opts.owner.key, name: opts.owner.name },
          experiment: rec.id,
        });
        await this.attach(id, p, created);
        await this.queue.add(id);
      }
      return this.experimentView(rec);
    });
  }

  async getExperiment(id: string, opts: Access = {}): Promise<ExperimentView> {
    if (!EXPERIMENT_ID_RE.test(id)) throw new NotFoundError(`experiment ${String(id).slice(0, 40)} not found`);
    return this.guard(async () => {
      const raw = await this.redis.hget(this.keys.experiment(id), 'record');
      const rec = raw ? (JSON.parse(raw) as ExperimentRecord) : undefined;
      if (!rec || !canAccess(opts.as, rec.ownerKey)) throw new NotFoundError(`experiment ${id} not found`);
      return this.experimentView(rec);
    });
  }

  private async experimentView(rec: ExperimentRecord): Promise<ExperimentView> {
    const recs = await this.store.getViews(rec.jobs.map((j) => j.id));
    const views = await Promise.all(recs.map((r) => (r ? this.view(r) : null)));
    // the best perplexity over every published epoch (the history holds them all)
    const best = await Promise.all(
      recs.map(async (r) => {
        if (!r || r.lastEpoch === 0) return undefined;
        const eps = await this.events.epochs(r.id, 0, 5000);
        const ppl = eps.map((e) => e.perplexity).filter((x) => Number.isFinite(x));
        return ppl.length ? Math.min(...ppl) : undefined;
      }),
    );
    return experimentTable(
      rec,
      views,
      best,
      recs.map((r) => r?.elapsedMs),
    );
  }

  /** The record; a job the caller does not own answers exactly as a job that does not exist. */
  private async mustGet(id: string, as?: Caller): Promise<JobRecord> {
    const rec = await this.store.get(id);
    if (!rec || !canAccess(as, rec.ownerKey)) throw new NotFoundError(`job ${id} not found`);
    return rec;
  }

  /** The record without the corpus text (views never carry it unless asked). */
  private async mustGetView(id: string, as?: Caller): Promise<JobRecord<JobSpecView>> {
    const [rec] = await this.store.getViews([id]);
    if (!rec || !canAccess(as, rec.ownerKey)) throw new NotFoundError(`job ${id} not found`);
    return rec;
  }

  /**
   * Cancels the job when it is not finished and waits (up to 10 s) for its worker to let go, then
   * removes everything of it in one atomic step (src/jobs/delete.ts); 404 afterwards.
   */
  async delete(id: string, opts: Access = {}): Promise<void> {
    checkId(id);
    await this.guard(async () => {
      const rec = await this.mustGetView(id, opts.as);
      if (!TERMINAL_STATES.includes(rec.state)) {
        try {
          await this.cancel(id, opts);
        } catch (e) {
          if (!(e instanceof FailedPreconditionError)) throw e; // it finished meanwhile
        }
        for (let waited = 0; waited < 10_000 && (await this.redis.exists(this.keys.bullLock(id))); waited += 100) {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (!(await deleteJob(this.events.redis, this.keys, id))) throw new NotFoundError(`job ${id} not found`);
      await this.queue.remove(id);
    });
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

/** The d2l recipe's data (the book or a pasted text, d2l-chars, nothing held out): measured as before. */
function isBookRecipe(spec: JobSpec): boolean {
  const c = spec.data.corpus;
  return (c === 'timemachine' || 'text' in c) && spec.data.tokenizer === 'd2l-chars' && spec.data.minFreq === 0 && spec.data.validFraction === 0;
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
