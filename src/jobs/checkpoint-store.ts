// Checkpoints of running jobs, behind the CheckpointStore interface (Redis by default, binary
// Buffers) so a file system or object store can replace it — nothing here assumes the API and the
// workers share a host. Two are kept per job (the latest and the one before it).
import type { Keys, RedisClient } from './redis.js';
import { withScripts, type ScriptedRedis } from './scripts.js';

export interface StoredCheckpoint {
  epoch: number;
  data: Buffer;
}

export interface CheckpointStore {
  /**
   * Stores the checkpoint if it is newer than the stored one. With `ownerToken`, only while that
   * token owns the job (a worker that lost its job cannot overwrite its successor's checkpoint).
   * Returns whether it was stored.
   */
  put(jobId: string, epoch: number, data: Buffer, ownerToken?: string): Promise<boolean>;
  /** The latest checkpoint. */
  get(jobId: string): Promise<StoredCheckpoint | null>;
  /** The one before it (two are kept, so a damaged latest one never leaves a job without a model). */
  previous(jobId: string): Promise<StoredCheckpoint | null>;
  /** The stored epoch, without reading the weights. */
  latestEpoch(jobId: string): Promise<number | null>;
  /**
   * Sets aside the latest checkpoint if it is still the one of `epoch` (found damaged): the previous
   * one becomes the latest. Returns the latest epoch afterwards (null: none left).
   */
  discard(jobId: string, epoch: number): Promise<number | null>;
  delete(jobId: string): Promise<void>;
}

export class RedisCheckpointStore implements CheckpointStore {
  private readonly redis: ScriptedRedis;
  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
  }

  async put(jobId: string, epoch: number, data: Buffer, ownerToken = ''): Promise<boolean> {
    const r = await this.redis.lstmPutCheckpoint(this.keys.ckpt(jobId), this.keys.job(jobId), epoch, data, ownerToken);
    return Number(r) === 1;
  }

  async get(jobId: string): Promise<StoredCheckpoint | null> {
    const [epoch, data] = await this.redis.hmgetBuffer(this.keys.ckpt(jobId), 'epoch', 'data');
    if (!epoch || !data) return null;
    return { epoch: Number(epoch.toString()), data };
  }

  async previous(jobId: string): Promise<StoredCheckpoint | null> {
    const [epoch, data] = await this.redis.hmgetBuffer(this.keys.ckpt(jobId), 'prevEpoch', 'prevData');
    if (!epoch || !data) return null;
    return { epoch: Number(epoch.toString()), data };
  }

  async latestEpoch(jobId: string): Promise<number | null> {
    const e = await this.redis.hget(this.keys.ckpt(jobId), 'epoch');
    return e === null ? null : Number(e);
  }

  async discard(jobId: string, epoch: number): Promise<number | null> {
    const r = await this.redis.lstmDiscardCheckpoint(this.keys.ckpt(jobId), this.keys.job(jobId), epoch);
    return r === null || r === undefined || Number(r) < 0 ? null : Number(r);
  }

  async delete(jobId: string): Promise<void> {
    await this.redis.del(this.keys.ckpt(jobId));
  }
}
