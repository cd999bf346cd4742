// The JobService (types.ts) over Redis + BullMQ, for the api process (HTTP, gRPC, dashboard): the
// connections and stores, composed. Each concept is its own module — submission.ts (submit, with
// job-init.ts for spec.init), experiment-service.ts, cancel.ts, delete.ts, checkpoint-models.ts
// (generate, export), job-reader.ts (every read: another key's job is none) — and the uploaded
// corpora and models are their stores (corpora.ts, models.ts).
import type { EngineFactory } from '../model/engine.js';
import type { ExportFormat, ModelExport } from '../train/export.js';
import { ModelFileError } from '../train/import.js';
import { SpecError } from '../train/spec.js';
import type { EpochEvent } from '../train/trainer.js';
import { cancelJob, type CancelParts } from './cancel.js';
import { RedisCheckpointStore, type CheckpointStore } from './checkpoint-store.js';
import { CheckpointModels, checkNumChars } from './checkpoint-models.js';
import type { ServiceConfig } from './config.js';
import { CorpusStore } from './corpora.js';
import { deleteJob } from './delete.js';
import { EventLog, Notifier } from './events.js';
import { ExperimentService } from './experiment-service.js';
import { liveWorkers } from './heartbeat.js';
import { JobLog, type JobLogLine } from './job-log.js';
import { checkJobId, JobReader } from './job-reader.js';
import { JobStore } from './job-records.js';
import { finiteOrUndefined } from './job-view.js';
import { isFiltered, listMatching } from './list-filter.js';
import { ModelStore } from './models.js';
import type { Caller } from './owners.js';
import { TrainQueue } from './queue.js';
import { Keys, connectRedis, guardRedis, redisDownAsUnavailable, type RedisClient } from './redis.js';
import { JobSubmission } from './submission.js';
import type { Access, ExperimentView, GenerateRequest, JobEvent, JobService, JobView, ListFilter, LiveWorker, ModelView, ServiceStats } from './types.js';

/** The most epoch events one epochs() page holds (GET /v1/jobs/:id/epochs?limit=). */
const EPOCHS_PAGE_MAX = 1000;

export interface RedisJobServiceOptions {
  config: ServiceConfig;
  /** Engine for generation; chosen lazily (selectEngine) on the first generate call. */
  engine?: EngineFactory;
  checkpoints?: CheckpointStore;
  /** The process's log lines (the engine chosen for generation); default: stderr. */
  log?: (line: string) => void;
}

export class RedisJobService implements JobService {
  private readonly keys: Keys;
  private readonly redis: RedisClient;
  private readonly store: JobStore;
  private readonly events: EventLog;
  private readonly jobLog: JobLog;
  private readonly queue: TrainQueue;
  private readonly notifier: Notifier;
  private readonly modelFiles: ModelStore;
  private readonly reader: JobReader;
  private readonly submission: JobSubmission;
  private readonly experiments: ExperimentService;
  private readonly checkpointModels: CheckpointModels;
  private readonly cancelParts: CancelParts;

  /** Uploaded corpora (POST /v1/corpora). */
  readonly corpora: CorpusStore;

  constructor(opts: RedisJobServiceOptions) {
    const { config } = opts;
    const keys = new Keys(config.prefix);
    this.keys = keys;
    this.redis = connectRedis(config, { failFast: true, name: 'lstm-api' });
    this.store = new JobStore(this.redis, keys);
    this.corpora = new CorpusStore(this.redis, keys);
    this.events = new EventLog(this.redis, keys, config.retentionSeconds);
    this.jobLog = new JobLog(this.redis, keys);
    const checkpoints = opts.checkpoints ?? new RedisCheckpointStore(this.redis, keys);
    this.queue = new TrainQueue(config, config.prefix, config.attempts);
    this.notifier = new Notifier(connectRedis(config, { name: 'lstm-api-sub' }), keys.notifyChannel);
    this.modelFiles = new ModelStore(this.redis, keys);
    this.reader = new JobReader(this.store, this.events);
    const { redis, store, events, queue, reader } = this;
    this.submission = new JobSubmission({ config, store, corpora: this.corpora, models: this.modelFiles, checkpoints, queue, reader });
    this.experiments = new ExperimentService({ config, redis, keys, store, events, queue, reader, submission: this.submission });
    this.checkpointModels = new CheckpointModels({ config, checkpoints, engine: opts.engine, log: opts.log });
    this.cancelParts = { redis, keys, events, queue, reader };
  }

  submit(input: unknown, opts: { clientId?: string; idempotencyScope?: string; owner?: Caller } = {}): Promise<{ job: JobView; created: boolean }> {
    return this.submission.submit(input, opts);
  }

  async get(id: string, opts: { includeCorpus?: boolean } & Access = {}): Promise<JobView> {
    checkJobId(id);
    return guardRedis(async () => this.reader.view(opts.includeCorpus ? await this.reader.record(id, opts.as) : await this.reader.recordView(id, opts.as)));
  }

  async list(q: ListFilter, opts: { includeCorpus?: boolean } & Access = {}): Promise<{ jobs: JobView[]; nextCursor?: string }> {
    return guardRedis(async () => {
      // a caller that is not an admin lists its own jobs only
      const match = { state: q.state, tag: q.tag, experiment: q.experiment, name: q.name, ownerKey: opts.as && !opts.as.admin ? opts.as.key : undefined };
      const { records, nextCursor } = isFiltered(match)
        ? await listMatching(this.store, q, match, opts.includeCorpus)
        : await this.store.list(q, opts.includeCorpus);
      const jobs = await Promise.all(records.map((r) => this.reader.view(r)));
      return nextCursor ? { jobs, nextCursor } : { jobs };
    });
  }

  async cancel(id: string, opts: Access = {}): Promise<JobView> {
    checkJobId(id);
    return cancelJob(this.cancelParts, id, opts.as);
  }

  /** Cancels the job when it is not finished, then removes everything of it (delete.ts); 404 afterwards. */
  async delete(id: string, opts: Access = {}): Promise<void> {
    checkJobId(id);
    await deleteJob(this.cancelParts, id, opts.as);
  }

  async *watch(id: string, fromSeq: number, signal?: AbortSignal, opts: Access = {}): AsyncGenerator<JobEvent> {
    checkJobId(id);
    if (opts.as) await guardRedis(() => this.reader.recordView(id, opts.as));
    try {
      yield* this.events.watch(id, fromSeq, this.notifier, signal);
    } catch (e) {
      throw redisDownAsUnavailable(e);
    }
  }

  async epochs(id: string, after: number, limit = EPOCHS_PAGE_MAX, opts: Access = {}): Promise<EpochEvent[]> {
    checkJobId(id);
    return guardRedis(async () => {
      await this.reader.recordView(id, opts.as);
      return this.events.epochs(id, after, Math.max(1, Math.min(limit, EPOCHS_PAGE_MAX)));
    });
  }

  /** The job's own log (the worker's lines about it), oldest first. */
  async logs(id: string, opts: Access = {}): Promise<JobLogLine[]> {
    checkJobId(id);
    return guardRedis(async () => {
      await this.reader.recordView(id, opts.as);
      return this.jobLog.lines(id);
    });
  }

  async *generate(id: string, req: GenerateRequest, signal?: AbortSignal, opts: Access = {}): AsyncGenerator<string> {
    checkJobId(id);
    checkNumChars(req);
    const rec = await guardRedis(() => this.reader.recordView(id, opts.as));
    yield* this.checkpointModels.generate(id, rec, req, signal);
  }

  /** The job's latest checkpoint in `format` (src/train/export.ts); the export says which epoch. */
  async exportModel(id: string, format: ExportFormat, opts: Access = {}): Promise<ModelExport> {
    checkJobId(id);
    const rec = await guardRedis(() => this.reader.recordView(id, opts.as));
    return this.checkpointModels.export(id, rec, format);
  }

  /** POST /v1/models: a safetensors state dict, validated in full (a 400 naming what is wrong), stored in Redis. */
  async uploadModel(data: Buffer, opts: Access = {}): Promise<{ model: ModelView; created: boolean }> {
    try {
      return await guardRedis(() => this.modelFiles.put(data, new Date(), opts.as));
    } catch (e) {
      if (e instanceof ModelFileError) throw new SpecError([{ field: 'body', message: `model file: ${e.message}` }]);
      throw e;
    }
  }

  async getModel(id: string, opts: Access = {}): Promise<ModelView> {
    return guardRedis(() => this.modelFiles.mustGet(id, opts.as));
  }

  async listModels(limit: number, opts: Access = {}): Promise<ModelView[]> {
    return guardRedis(() => this.modelFiles.list(limit, opts.as));
  }

  /** DELETE /v1/models/:id: the caller's ownership, and the file with its last owner (ModelStore.delete). */
  async deleteModel(id: string, opts: Access = {}): Promise<ModelView> {
    return guardRedis(() => this.modelFiles.delete(id, opts.as));
  }

  createExperiment(input: unknown, opts: { clientId?: string; owner?: Caller } = {}): Promise<ExperimentView> {
    return this.experiments.create(input, opts);
  }

  getExperiment(id: string, opts: Access = {}): Promise<ExperimentView> {
    return this.experiments.get(id, opts.as);
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
    return guardRedis(async () => {
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
    this.checkpointModels.close();
  }
}
