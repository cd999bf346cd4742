// Owners of uploaded objects (corpora, models; docs/service.md, "Owners"). Both are content-addressed:
// the same bytes from two keys are one stored object, so each keeps the set of its owners, a hash
// fingerprint → the time (ms) that key uploaded it. A key sees an object it owns (admins and keys
// off: every object; one uploaded while keys were off has no owner, so admins only), and sees it as
// its own upload: `created` and the upload time are that key's, so nothing tells it that another
// key sent the same bytes before.
//
// An owner is added in the same step that stores the object, or checks that it is still stored, and
// the last owner's delete removes the object with its owners hash in one script (the stores' delete):
// so an upload answered 201 never loses the object to a delete in between, and no owners hash is
// left behind for an object that is gone.
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './redis.js';
import type { Caller } from './owners.js';
import { withScripts, type ScriptedRedis } from './scripts.js';

/** An owner added: whether it is new to the object, and the time it (first) uploaded it (ms). */
export interface OwnerAdded {
  added: boolean;
  at: number;
}

export class UploadOwners {
  private readonly redis: ScriptedRedis;
  constructor(
    redis: RedisClient,
    /** The owners hash of one object (a Keys method). */
    private readonly key: (id: string) => string,
  ) {
    this.redis = withScripts(redis);
  }

  /** Whether `caller` may see the object (the jobs' rule, canAccess, over a set of owners). */
  async sees(id: string, caller: Caller | undefined): Promise<boolean> {
    if (!caller || caller.admin) return true;
    return (await this.redis.hexists(this.key(id), caller.key)) === 1;
  }

  /**
   * Queues adding `caller` as an owner on `tx`, the transaction that writes the object, so the object
   * and its owner are stored together: two replies, read by ownerAdded.
   */
  queueAdd(tx: ChainableCommander, id: string, caller: Caller, now: number): ChainableCommander {
    return tx.hsetnx(this.key(id), caller.key, String(now)).hget(this.key(id), caller.key);
  }

  /** Adds `caller` as an owner of the object stored at `objectKey` while it is there; null (nothing added) when it is gone. */
  async addIfStored(objectKey: string, id: string, caller: Caller, now: number): Promise<OwnerAdded | null> {
    const res = await this.redis.lstmAddOwner(objectKey, this.key(id), caller.key, now);
    return res ? { added: Number(res[0]) === 1, at: Number(res[1]) } : null;
  }

  /** The time `caller` uploaded it (ms); undefined for admins and keys off (the object's own time). */
  async uploadedAt(id: string, caller: Caller | undefined): Promise<number | undefined> {
    if (!caller || caller.admin) return undefined;
    const at = await this.redis.hget(this.key(id), caller.key);
    return at === null ? undefined : Number(at);
  }

  /** Of `ids`, those `caller` sees, each with the time it uploaded it (the object's own for admins). */
  async visible(ids: string[], caller: Caller | undefined): Promise<{ id: string; at?: number }[]> {
    if (!caller || caller.admin) return ids.map((id) => ({ id }));
    if (!ids.length) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hget(this.key(id), caller.key);
    const res = (await p.exec()) ?? [];
    return ids.flatMap((id, i) => {
      const at = res[i]?.[1];
      return typeof at === 'string' ? [{ id, at: Number(at) }] : [];
    });
  }
}

/** What the two replies UploadOwners.queueAdd queued say, the first being reply `i` of the transaction. */
export function ownerAdded(res: [Error | null, unknown][], i: number, now: number): OwnerAdded {
  return { added: Number(res[i]?.[1]) === 1, at: Number(res[i + 1]?.[1] ?? now) };
}
