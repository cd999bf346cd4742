// Experiments over Redis (POST /v1/experiments, GET /v1/experiments/:id): an experiment's plan
// (experiments.ts) submitted as its jobs — every point prepared as a submission would be and the
// caps checked on the sum before anything is written — and its table read back from the jobs'
// records and histories. The record is the hash P:experiment:<id>.
import { SpecError } from '../train/spec.js';
import { ResourceExhaustedError, NotFoundError } from './errors.js';
import type { EventLog } from './events.js';
import { EXPERIMENT_ID_RE, checkExperimentCaps, experimentTable, newExperimentId, planExperiment, type ExperimentRecord } from './experiments.js';
import type { JobReader } from './job-reader.js';
import { newJobId, type JobStore } from './job-records.js';
import { checkJobCaps, costEstimate } from './limits.js';
import { canAccess, type Caller } from './owners.js';
import type { TrainQueue } from './queue.js';
import { guardRedis, type Keys, type RedisClient } from './redis.js';
import type { JobSubmission, PreparedJob } from './submission.js';
import type { ExperimentView } from './types.js';
import type { ServiceConfig } from './config.js';

export interface ExperimentServiceParts {
  config: ServiceConfig;
  redis: RedisClient;
  keys: Keys;
  store: JobStore;
  events: EventLog;
  queue: TrainQueue;
  reader: JobReader;
  submission: JobSubmission;
}

export class ExperimentService {
  constructor(private readonly parts: ExperimentServiceParts) {}

  async create(input: unknown, opts: { clientId?: string; owner?: Caller } = {}): Promise<ExperimentView> {
    const { config: cfg, redis, keys, store, queue, submission } = this.parts;
    await submission.countSubmission(opts.clientId);
    const plan = planExperiment(input);
    const caps = submission.caps;
    // every point is checked as its job's submission would be (corpus, init, the memory cap: jobs
    // run apart), then the sum against the other caps, before anything is queued
    const prepared: PreparedJob[] = [];
    for (const [i, p] of plan.points.entries()) {
      try {
        const job = await submission.prepare(p.input, p.spec, opts.owner);
        checkJobCaps(job.spec, job.estimate, { ...caps, maxTokenEpochs: 0, maxTeraflops: 0 });
        prepared.push(job);
      } catch (err) {
        if (err instanceof SpecError)
          throw new SpecError(err.issues.map((iss) => ({ field: iss.field, message: `job ${i + 1} (${p.spec.name}): ${iss.message}` })));
        throw err;
      }
    }
    checkExperimentCaps(
      prepared.map((j) => j.estimate),
      caps,
    );
    const n = plan.points.length;
    if (cfg.maxQueuedPerClient > 0 && opts.clientId && n > cfg.maxQueuedPerClient) {
      throw new ResourceExhaustedError(
        `the experiment makes ${n} jobs; a client may have at most ${cfg.maxQueuedPerClient} waiting (MAX_QUEUED_PER_CLIENT)`,
        60,
      );
    }
    return guardRedis(async () => {
      if (cfg.maxQueued > 0 && (await store.countByState()).queued + n > cfg.maxQueued) {
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
      await redis.hset(keys.experiment(rec.id), 'record', JSON.stringify(rec), ...(rec.ownerKey ? ['ownerKey', rec.ownerKey] : []));
      for (let i = 0; i < n; i++) {
        const p = prepared[i];
        const { id, created } = await store.create(p.spec, {
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
        await submission.attach(id, p, created);
        await queue.add(id);
      }
      return this.view(rec);
    });
  }

  /** The experiment's table; one the caller does not own answers as one that does not exist. */
  async get(id: string, as?: Caller): Promise<ExperimentView> {
    if (!EXPERIMENT_ID_RE.test(id)) throw new NotFoundError(`experiment ${String(id).slice(0, 40)} not found`);
    return guardRedis(async () => {
      const raw = await this.parts.redis.hget(this.parts.keys.experiment(id), 'record');
      const rec = raw ? (JSON.parse(raw) as ExperimentRecord) : undefined;
      if (!rec || !canAccess(as, rec.ownerKey)) throw new NotFoundError(`experiment ${id} not found`);
      return this.view(rec);
    });
  }

  private async view(rec: ExperimentRecord): Promise<ExperimentView> {
    const { store, events, reader } = this.parts;
    const recs = await store.getViews(rec.jobs.map((j) => j.id));
    const views = await Promise.all(recs.map((r) => (r ? reader.view(r) : null)));
    // the best perplexity over every published epoch (the history holds them all)
    const best = await Promise.all(
      recs.map(async (r) => {
        if (!r || r.lastEpoch === 0) return undefined;
        const eps = await events.epochs(r.id, 0, 5000);
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
}
