// spec.init at submission: the weights a job starts from, a job's latest checkpoint (init.fromJob:
// continuing it) or an uploaded model (init.model: POST /v1/models). The source must exist for the
// caller (another key's job or model is none: owners.ts) and have the job's architecture; its bytes
// are copied to the job (the worker reads them from there), with the epoch it had reached.
import { CheckpointError, deserializeCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { SpecError, type JobSpec } from '../train/spec.js';
import type { CheckpointStore } from './checkpoint-store.js';
import { isJobId, type JobStore } from './job-records.js';
import type { ModelStore } from './models.js';
import { canAccess, type Caller } from './owners.js';
import { guardRedis } from './redis.js';
import type { JobInit } from './types.js';

/** spec.init resolved: the bytes the job starts from, their vocabulary size, and the job record's `init`. */
export interface ResolvedInit {
  data: Buffer;
  vocabSize: number;
  record: JobInit;
}

/** Where init's weights are read from. */
export interface InitSources {
  jobs: JobStore;
  checkpoints: CheckpointStore;
  models: ModelStore;
}

/**
 * spec.init checked and read: the source exists (a 400 naming init.fromJob / init.model otherwise)
 * and its architecture is the job's model.* (a 400 naming each field that differs).
 */
export async function resolveInit(spec: JobSpec, owner: Caller | undefined, from: InitSources): Promise<ResolvedInit> {
  const init = spec.init!;
  let data: Buffer;
  let source: string;
  let have: { kind: string; numHiddens: number; numLayers: number; vocabSize: number };
  let record: JobInit;
  if ('fromJob' in init) {
    const job = init.fromJob;
    const field = 'init.fromJob';
    if (!isJobId(job)) throw new SpecError([{ field, message: `${field}: no job ${job}` }]);
    const rec = await guardRedis(() => from.jobs.getViews([job]));
    // another key's job is no job (owners): its weights are not the caller's to start from
    if (!rec[0] || !canAccess(owner, rec[0].ownerKey)) throw new SpecError([{ field, message: `${field}: no job ${job}` }]);
    const stored = await guardRedis(() => from.checkpoints.get(job));
    if (!stored)
      throw new SpecError([
        {
          field,
          message: `${field}: job ${job} (${rec[0].state}) has no checkpoint to start from${rec[0].state === 'queued' || rec[0].state === 'running' ? ' yet (the first is written after epoch 1)' : ''}`,
        },
      ]);
    let ckpt: Checkpoint;
    try {
      ckpt = deserializeCheckpoint(stored.data);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      throw new SpecError([{ field, message: `${field}: the checkpoint of job ${job} at epoch ${stored.epoch} cannot be read (${e.message})` }]);
    }
    data = stored.data;
    source = `job ${job} (epoch ${ckpt.epoch})`;
    have = ckpt.config;
    record = { fromJob: job, epoch: ckpt.epoch };
    if (Number.isFinite(ckpt.perplexity)) record.perplexity = ckpt.perplexity;
  } else {
    const field = 'init.model';
    // another key's model is no model (owners), as another key's job above
    const model = await guardRedis(() => from.models.get(init.model, owner));
    const bytes = model ? await guardRedis(() => from.models.data(init.model)) : null;
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
