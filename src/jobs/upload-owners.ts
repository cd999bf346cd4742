// Owners of uploaded objects (corpora, models; docs/service.md, "Owners"). Both are content-addressed:
// the same bytes from two keys are one stored object, so each keeps the set of its owners, a hash
// fingerprint → the time (ms) that key uploaded it. A key sees an object it owns (admins and keys
// off: every object; one uploaded while keys were off has no owner, so admins only), and sees it as
// its own upload: `created` and the upload time are that key's, so nothing tells it that another
// key sent the same bytes before.
import type { RedisClient } from './redis.js';
import type { Caller } from './owners.js';

export class UploadOwners {
  constructor(
    private readonly redis: RedisClient,
    /** The owners hash of one object (a Keys method). */
    private readonly key: (id: string) => string,
  ) {}

  /** Whether `caller` may see the object (the jobs' rule, canAccess, over a set of owners). */
  async sees(id: string, caller: Caller | undefined): Promise<boolean> {
    if (!caller || caller.admin) return true;
    return (await this.redis.hexists(this.key(id), caller.key)) === 1;
  }

  /** Adds `caller` as an owner; whether it is new to it, and the time it (first) uploaded it (ms). */
  async add(id: string, caller: Caller, now: number): Promise<{ added: boolean; at: number }> {
    const res = await this.redis.multi().hsetnx(this.key(id), caller.key, String(now)).hget(this.key(id), caller.key).exec();
    return { added: Number(res?.[0]?.[1]) === 1, at: Number(res?.[1]?.[1] ?? now) };
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

  /** Removes `caller` as an owner; how many owners are left. */
  async remove(id: string, caller: Caller): Promise<number> {
    const res = await this.redis.multi().hdel(this.key(id), caller.key).hlen(this.key(id)).exec();
    return Number(res?.[1]?.[1] ?? 0);
  }

  async count(id: string): Promise<number> {
    return this.redis.hlen(this.key(id));
  }
}
