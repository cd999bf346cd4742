// Deleting a job (DELETE /v1/jobs/:id, gRPC DeleteJob): one Lua script removes the record, its
// history, checkpoints and log, its idempotency key and its index entries, so a crash can never leave
// a job half there (the script runs whole or not at all). The caller cancels a running job first; a
// worker that still writes afterwards is fenced out by every script it uses (they need the record,
// and its lock token in it), so nothing brings the job back.
import type { Redis } from 'ioredis';
import { STATES, type Keys } from './redis.js';

/**
 * KEYS: job, events, ckpt, log, all, queued, running, succeeded, failed, cancelled
 * ARGV: id, notifyChannel → 1 deleted | 0 no such job
 */
const DELETE_JOB = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ik = redis.call('HGET', KEYS[1], 'idemKey')
if ik and redis.call('GET', ik) == ARGV[1] then redis.call('DEL', ik) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
for i = 5, 10 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
`;

interface DeletingRedis extends Redis {
  lstmDeleteJob(...args: string[]): Promise<number>;
}

/** Removes every key of the job atomically (watchers are woken and end); false when there was no job. */
export async function deleteJob(redis: Redis, keys: Keys, id: string): Promise<boolean> {
  const r = redis as DeletingRedis;
  if (typeof r.lstmDeleteJob !== 'function') redis.defineCommand('lstmDeleteJob', { numberOfKeys: 10, lua: DELETE_JOB });
  const n = await r.lstmDeleteJob(keys.job(id), keys.events(id), keys.ckpt(id), keys.log(id), keys.all, ...STATES.map((s) => keys.byState(s)), id, keys.notifyChannel);
  return Number(n) === 1;
}
