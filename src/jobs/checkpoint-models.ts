// A job's latest checkpoint as a model, in the api process: text generated from it (the loaded
// models cached per job and checkpoint epoch, at most GENERATE_CONCURRENCY generations at once) and
// its export as a model file (src/train/export.ts). A damaged checkpoint found here is set aside.
import type { EngineFactory, LstmModel } from '../model/engine.js';
import { selectEngine } from '../model/engines.js';
import type { Vocab } from '../text/corpus.js';
import { CheckpointError, DamagedCheckpointError, deserializeCheckpoint, modelFromCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { exportModel, type ExportFormat, type ModelExport } from '../train/export.js';
import { cleanPrefix, generateChars, PrefixError } from '../train/predict.js';
import { SpecError } from '../train/spec.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { ServiceConfig } from './config.js';
import { FailedPreconditionError, ResourceExhaustedError } from './errors.js';
import type { JobRecord } from './job-records.js';
import { guardRedis } from './redis.js';
import type { GenerateRequest, JobSpecView } from './types.js';

const MAX_GENERATE_CHARS = 100_000;

interface LoadedModel {
  model: LstmModel;
  vocab: Vocab;
  users: number;
  evicted: boolean;
}

export interface CheckpointModelsOptions {
  config: ServiceConfig;
  checkpoints: CheckpointStore;
  /** Engine for generation; chosen lazily (selectEngine) on the first generate call. */
  engine?: EngineFactory;
  /** The process's log lines (the engine chosen for generation); default: stderr. */
  log?: (line: string) => void;
}

/**
 * The API layers validate with the GenerateRequest schema (api/schemas.ts); this guards the service
 * itself against a caller that did not.
 */
export function checkNumChars(req: GenerateRequest): void {
  if (!Number.isInteger(req.numChars) || req.numChars < 1 || req.numChars > MAX_GENERATE_CHARS) {
    throw new SpecError([{ field: 'numChars', message: `numChars must be an integer between 1 and ${MAX_GENERATE_CHARS}` }]);
  }
}

export class CheckpointModels {
  private readonly models = new Map<string, Promise<LoadedModel>>();
  private generating = 0;
  private engine?: Promise<EngineFactory>;

  constructor(private readonly opts: CheckpointModelsOptions) {
    if (opts.engine) this.engine = Promise.resolve(opts.engine);
  }

  /** Characters as they are generated from the job's latest checkpoint (`rec`: the job's record, as the caller may read it). */
  async *generate(id: string, rec: JobRecord<JobSpecView>, req: GenerateRequest, signal?: AbortSignal): AsyncGenerator<string> {
    // the prefix is read as the job's tokenizer reads text (older records have none: d2l-chars)
    const tokenizer = rec.spec.data.tokenizer ?? 'd2l-chars';
    try {
      cleanPrefix(req.prefix, tokenizer);
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
      for await (const ch of generateChars(req.prefix, req.numChars, loaded.model, loaded.vocab, {
        temperature: req.temperature,
        topK: req.topK,
        seed: req.seed,
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

  /** The job's latest checkpoint in `format` (src/train/export.ts); the export says which epoch. */
  async export(id: string, rec: JobRecord<JobSpecView>, format: ExportFormat): Promise<ModelExport> {
    const stored = await guardRedis(() => this.opts.checkpoints.get(id));
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

  /** Disposes every cached model. */
  close(): void {
    for (const p of this.models.values()) void p.then((m) => m.model.dispose()).catch(() => undefined);
    this.models.clear();
  }

  /** The model of the job's latest checkpoint, cached per (job, checkpoint epoch). */
  private async model(id: string, rec: JobRecord<JobSpecView>): Promise<LoadedModel> {
    const epoch = await guardRedis(() => this.opts.checkpoints.latestEpoch(id));
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
      p = this.load(id);
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

  private async load(id: string): Promise<LoadedModel> {
    const ckpts = this.opts.checkpoints;
    const stored = await guardRedis(() => ckpts.get(id));
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
      const now = await guardRedis(() => ckpts.discard(id, stored.epoch));
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
}
