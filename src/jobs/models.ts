// Models in (docs/export.md, "Models in"): uploaded model files, and the weights a job starts from.
//   P:model:<mid>    hash {meta (JSON ModelView), data (the file)} — an uploaded safetensors state dict
//   P:model:<mid>:owners  hash: owner fingerprint → that key's upload time (ms); with API keys on a
//                    key sees only models it uploaded (src/jobs/upload-owners.ts, docs/service.md "Owners")
//   P:models         zset: model ids by upload time (ms), for listing newest first
//   P:job:<id>:init  hash {data}: the weights a job with spec.init starts from, copied at submission
//                    (so a worker on any machine reads them from Redis, and the source may change or
//                    go afterwards); it expires with the job's record (the state-change script).
//                    So deleting a model (delete below) never touches a job: none needs it any more
// The id is derived from the file's SHA-256: uploading the same file again gives the same model.
import { createHash } from 'node:crypto';
import type { RedisClient } from './redis.js';
import { LIMITS } from '../train/spec.js';
import { describeModelFile, ModelFileError, type ModelFileInfo } from '../train/import.js';
import { NotFoundError } from './errors.js';
import type { Caller } from './owners.js';
import type { Keys } from './redis.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import { ownerAdded, UploadOwners } from './upload-owners.js';
import type { ModelView } from './types.js';

/** The largest model file POST /v1/models takes (a 1024-hidden, 2-layer concise model is about 50 MB). */
export const MODEL_UPLOAD_MAX_BYTES = 64 * 1024 * 1024;

/** "m" and 19 hex digits of the file's SHA-256: 20 characters, as job ids. */
export const MODEL_ID_RE = /^m[0-9a-f]{19}$/;

export function isModelId(id: unknown): id is string {
  return typeof id === 'string' && MODEL_ID_RE.test(id);
}

/** A file's model, validated for use by a job: a safetensors state dict (ModelFileError otherwise). */
export function describeUpload(data: Buffer): ModelFileInfo {
  if (data.subarray(0, 8).toString('latin1') === 'LSTMCKPT') {
    throw new ModelFileError(
      'this is a checkpoint file; upload the model as safetensors (lstm-trainer export --checkpoint FILE --format safetensors), or start a job from its job with init.fromJob',
    );
  }
  const info = describeModelFile(data);
  const { kind, numHiddens, numLayers } = info.config;
  if (numHiddens > LIMITS.numHiddens) throw new ModelFileError(`the model has ${numHiddens} hidden units; jobs allow at most ${LIMITS.numHiddens}`);
  if (numLayers > LIMITS.numLayers) throw new ModelFileError(`the model has ${numLayers} layers; jobs allow at most ${LIMITS.numLayers}`);
  if (kind === 'scratch' && numLayers !== 1) throw new ModelFileError('a scratch model has one layer');
  return info;
}

export class ModelStore {
  private readonly redis: ScriptedRedis;
  private readonly owners: UploadOwners;
  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
    this.owners = new UploadOwners(redis, (id) => keys.modelOwners(id));
  }

  private key(id: string): string {
    return `${this.keys.prefix}:model:${id}`;
  }

  private get index(): string {
    return `${this.keys.prefix}:models`;
  }

  /**
   * Validates (ModelFileError) and stores; the same bytes again are the same model (created false).
   * `owner` (keys on) becomes one of its owners; `created` then says whether it is new to that key.
   */
  async put(data: Buffer, now = new Date(), owner?: Caller): Promise<{ model: ModelView; created: boolean }> {
    const info = describeUpload(data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const id = `m${sha256.slice(0, 19)}`;
    const model: ModelView = {
      id,
      kind: info.config.kind,
      numHiddens: info.config.numHiddens,
      numLayers: info.config.numLayers,
      vocabSize: info.vocab.length,
      vocab: info.vocab,
      bytes: data.length,
      sha256,
      uploadedAt: now.toISOString(),
    };
    if (info.epoch !== undefined) model.epoch = info.epoch;
    if (info.perplexity !== undefined) model.perplexity = info.perplexity;
    // one transaction, so a model is never listed without its bytes, nor stored apart from its
    // uploader's ownership (a delete between the two would take it from a key answered 201, and leave
    // that key's owner entry behind); the same id means the same bytes, so writing them again is
    // harmless, and the first upload's meta (its time) stays
    const tx = this.redis
      .multi()
      .hset(this.key(id), 'data', data)
      .hsetnx(this.key(id), 'meta', JSON.stringify(model))
      .zadd(this.index, 'NX', now.getTime(), id)
      .hget(this.key(id), 'meta');
    if (owner) this.owners.queueAdd(tx, id, owner, now.getTime());
    const res = await tx.exec();
    const failed = res?.find(([e]) => e);
    if (!res || failed) throw failed?.[0] ?? new Error('the model was not stored (transaction aborted)');
    const created = Number(res[1][1]) === 1;
    const stored = JSON.parse(String(res[3][1])) as ModelView;
    // admins (and keys off) see the model as stored: its first upload's time, created when new
    if (!owner || owner.admin) return { model: stored, created };
    const mine = ownerAdded(res, 4, now.getTime());
    return { model: seenAt(stored, mine.at), created: mine.added };
  }

  /** The model as `as` sees it: null when there is none or it is not theirs (keys on: owners). */
  async get(id: string, as?: Caller): Promise<ModelView | null> {
    if (!isModelId(id)) return null;
    return this.read(id, as ? await this.owners.uploadedAt(id, as) : undefined, as);
  }

  /** As get, but NotFoundError when there is none (or it is not the caller's: the same message). */
  async mustGet(id: string, as?: Caller): Promise<ModelView> {
    const m = await this.get(id, as);
    if (!m) throw new NotFoundError(`model ${String(id).slice(0, 40)} not found`);
    return m;
  }

  private async read(id: string, at: number | undefined, as?: Caller): Promise<ModelView | null> {
    if (as && !as.admin && at === undefined) return null;
    const meta = await this.redis.hget(this.key(id), 'meta');
    if (!meta) return null;
    return seenAt(JSON.parse(meta) as ModelView, at);
  }

  async data(id: string): Promise<Buffer | null> {
    if (!isModelId(id)) return null;
    return this.redis.hgetBuffer(this.key(id), 'data');
  }

  /** Newest first; with keys on, the caller's own (by its upload time; admins: all). */
  async list(limit: number, as?: Caller): Promise<ModelView[]> {
    if (!as || as.admin) {
      const ids = await this.redis.zrevrange(this.index, 0, Math.max(0, limit - 1));
      const models = await Promise.all(ids.map((id) => this.get(id)));
      return models.filter((m): m is ModelView => m !== null);
    }
    const mine = (await this.owners.visible(await this.redis.zrevrange(this.index, 0, -1), as)).sort((a, b) => b.at! - a.at!).slice(0, Math.max(0, limit));
    const models = await Promise.all(mine.map((m) => this.read(m.id, m.at, as)));
    return models.filter((m): m is ModelView => m !== null);
  }

  /**
   * Deletes the model as `as` sees it (NotFoundError as mustGet) and answers it. With keys on, a
   * key's delete takes away its ownership, and the stored file goes only with its last owner (an
   * admin's, or any with keys off, removes it for every owner). No job holds it back: each job's
   * weights were copied at submission (P:job:<id>:init); a later submission naming it is refused.
   */
  async delete(id: string, as?: Caller): Promise<ModelView> {
    const model = await this.mustGet(id, as);
    const owner = as && !as.admin ? as : undefined;
    // one script: the caller's ownership goes, and the model with it when no owner is left, so an
    // upload by another key in between keeps it (or stores it anew), never loses it
    await this.redis.lstmDeleteModel(this.key(id), this.keys.modelOwners(id), this.index, owner?.key ?? '', id);
    return model;
  }

  /** The weights a job starts from (written at submission, read by the worker). */
  async putJobInit(jobId: string, data: Buffer): Promise<void> {
    await this.redis.hset(this.keys.init(jobId), 'data', data);
  }

  async jobInit(jobId: string): Promise<Buffer | null> {
    return this.redis.hgetBuffer(this.keys.init(jobId), 'data');
  }
}

/** The model as a key sees it: with its own upload time (the first upload's would tell it another key sent the bytes). */
function seenAt(model: ModelView, at: number | undefined): ModelView {
  return at === undefined ? model : { ...model, uploadedAt: new Date(at).toISOString() };
}
