// Submitting a job (POST /v1/jobs, gRPC SubmitJob): the client's rate limit, the spec validated and
// measured (its corpus, the weights it starts from, its cost against the caps), then the record
// created and the job queued. An experiment's jobs (experiment-service.ts) take the same path,
// point by point, with the caps applied to their sum.
import { createHash } from 'node:crypto';
import { minCorpusTokens } from '../text/data.js';
import { parseJobSpec, SpecError, type JobSpec } from '../train/spec.js';
import { corpusForSpec } from '../train/trainer.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { ServiceConfig } from './config.js';
import type { CorpusStore } from './corpora.js';
import { resolveCorpus } from './corpus-info.js';
import { resolveInit, type ResolvedInit } from './job-init.js';
import type { JobReader } from './job-reader.js';
import type { JobStore } from './job-records.js';
import { checkJobCaps, costEstimate, estimateJob, textCorpusFigures, type JobCaps, type JobEstimate } from './limits.js';
import type { ModelStore } from './models.js';
import type { Caller } from './owners.js';
import type { TrainQueue } from './queue.js';
import { guardRedis } from './redis.js';
import type { DataInfo, JobView } from './types.js';

/** A job checked and measured at submission, not yet written (JobSubmission.prepare). */
export interface PreparedJob {
  spec: JobSpec;
  info: DataInfo;
  init?: ResolvedInit;
  estimate: JobEstimate;
}

export interface JobSubmissionParts {
  config: ServiceConfig;
  store: JobStore;
  corpora: CorpusStore;
  models: ModelStore;
  checkpoints: CheckpointStore;
  queue: TrainQueue;
  reader: JobReader;
}

export class JobSubmission {
  /** The per-job cost caps (MAX_JOB_MEMORY_MB, MAX_JOB_TOKEN_EPOCHS, MAX_JOB_TFLOP). */
  readonly caps: JobCaps;
  /** The book's figures by maxTokens/batchSize/numSteps (corpusSize). */
  private readonly bookSizes = new Map<string, { tokens: number; vocabSize: number } | SpecError>();

  constructor(private readonly parts: JobSubmissionParts) {
    const cfg = parts.config;
    this.caps = { maxMemoryMb: cfg.maxJobMemoryMb, maxTokenEpochs: cfg.maxJobTokenEpochs, maxTeraflops: cfg.maxJobTeraflops };
  }

  async submit(input: unknown, opts: { clientId?: string; idempotencyScope?: string; owner?: Caller } = {}): Promise<{ job: JobView; created: boolean }> {
    const { config: cfg, store, queue, reader } = this.parts;
    // every submission counts, valid or not (a client hammering with garbage is limited too)
    await this.countSubmission(opts.clientId);
    const parsed = parseJobSpec(input);
    const submitted = parsed.idempotencyKey ? submittedDigest(parsed) : undefined;
    let prepared: PreparedJob;
    try {
      prepared = await this.prepare(input, parsed, opts.owner);
      checkJobCaps(prepared.spec, prepared.estimate, this.caps);
    } catch (e) {
      // a retry whose corpus, model or source job has gone since the first try (or whose caps
      // changed): the job that first try made is still the answer, as for any retry
      const earlier = e instanceof SpecError && submitted ? await this.earlierSubmission(parsed.idempotencyKey!, opts.idempotencyScope, submitted) : null;
      if (earlier) return { job: earlier, created: false };
      throw e;
    }
    const { spec, info, init, estimate } = prepared;
    return guardRedis(async () => {
      const { id, created } = await store.create(spec, {
        maxQueued: cfg.maxQueued,
        clientId: opts.clientId,
        maxQueuedPerClient: cfg.maxQueuedPerClient,
        idempotencyScope: opts.idempotencyScope,
        estimate: costEstimate(estimate),
        data: info,
        init: init?.record,
        owner: opts.owner && { key: opts.owner.key, name: opts.owner.name },
        submittedDigest: submitted,
      });
      await this.attach(id, { spec, init }, created);
      const rec = await reader.recordView(id);
      // (re-)adding a queued job is a no-op in BullMQ; it repairs a crash between create and add
      if (rec.state === 'queued') await queue.add(id);
      return { job: await reader.view(rec), created };
    });
  }

  /** The job an idempotency key names, if it was made from this very submitted spec (its digest); null otherwise. */
  private async earlierSubmission(idempotencyKey: string, scope: string | undefined, digest: string): Promise<JobView | null> {
    const { store, reader } = this.parts;
    return guardRedis(async () => {
      const earlier = await store.idempotentJob(idempotencyKey, scope);
      if (!earlier || earlier.submittedDigest !== digest) return null;
      return reader.view(await reader.recordView(earlier.id));
    });
  }

  /** The client's submission rate limit (RATE_LIMIT_SUBMITS per RATE_LIMIT_WINDOW_SECONDS); nothing without a client id. */
  async countSubmission(clientId: string | undefined): Promise<void> {
    const cfg = this.parts.config;
    if (clientId) await guardRedis(() => this.parts.store.rateLimit(clientId, cfg.rateLimitSubmits, cfg.rateLimitWindowSeconds));
  }

  /**
   * A job as it will be created, every check that can refuse it done and nothing written: the spec
   * with what its corpus fills in (src/jobs/corpus-info.ts: an uploaded corpus's length, prefixes of
   * a corpus that is not the book; one too short for a minibatch is a SpecError now, not a failed
   * job later), its data figures, the weights it starts from (spec.init, job-init.ts: they exist,
   * the caller may read them and they fit model.*; the vocabulary is then theirs) and its cost
   * estimate. The caps are the caller's to check (one job's, or an experiment's sum).
   */
  async prepare(input: unknown, parsed: JobSpec, owner?: Caller): Promise<PreparedJob> {
    const { corpora, store, checkpoints, models } = this.parts;
    const { spec, info } = await guardRedis(() => resolveCorpus(input, parsed, corpora, owner));
    const corpus = isBookRecipe(spec) ? this.corpusSize(spec) : { tokens: info.trainTokens + info.validTokens, vocabSize: info.vocabSize };
    const init = spec.init ? await resolveInit(spec, owner, { jobs: store, checkpoints, models }) : undefined;
    const estimate = estimateJob(spec, corpus.tokens, init?.vocabSize ?? corpus.vocabSize);
    return { spec, info: init ? { ...info, vocabSize: init.vocabSize } : info, init, estimate };
  }

  /**
   * What a created job needs besides its record, before it is queued: its place in its corpus's job
   * list (DELETE of the corpus is refused while it is used) and the weights it starts from (written
   * again when a retried submission repairs a crash between the two).
   */
  async attach(id: string, p: Pick<PreparedJob, 'spec' | 'init'>, created: boolean): Promise<void> {
    const { corpora, models } = this.parts;
    const c = p.spec.data.corpus;
    if (typeof c === 'object' && 'id' in c) await corpora.addJob(c.id, id);
    if (p.init && (created || !(await models.jobInit(id)))) await models.putJobInit(id, p.init.data);
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
}

/** The d2l recipe's data (the book or a pasted text, d2l-chars, nothing held out): measured as before. */
function isBookRecipe(spec: JobSpec): boolean {
  const c = spec.data.corpus;
  return (c === 'timemachine' || 'text' in c) && spec.data.tokenizer === 'd2l-chars' && spec.data.minFreq === 0 && spec.data.validFraction === 0;
}

/**
 * The digest of a spec as submitted (parsed, before its corpus and init are resolved): what tells a
 * retry of the same submission when those can no longer be resolved. A digest, not the spec: a
 * spec may hold a 2 MB corpus text.
 */
function submittedDigest(parsed: JobSpec): string {
  return createHash('sha256').update(JSON.stringify(parsed)).digest('hex');
}
