// Deleting a job (DELETE /v1/jobs/:id, gRPC DeleteJob): one Lua script (scripts/deleteJob-12.lua)
// removes the record, its history, checkpoints, log and start weights, its idempotency key and its
// index entries, so a crash can never leave a job half there (the script runs whole or not at all). The caller cancels a running job first; a
// worker that still writes afterwards is fenced out by every script it uses (they need the record,
// and its lock token in it), so nothing brings the job back.
import { STATES, type Keys } from './redis.js';
import type { ScriptedRedis } from './scripts.js';

/** Removes every key of the job atomically (watchers are woken and end); false when there was no job. */
export async function deleteJob(redis: ScriptedRedis, keys: Keys, id: string): Promise<boolean> {
  // the idempotency key is read first and passed in (scripts name every key they touch: Redis Cluster)
  for (let tries = 0; tries < 5; tries++) {
    const idemKey = (await redis.hget(keys.job(id), 'idemKey')) || keys.job(id);
    const n = Number(
      await redis.lstmDeleteJob(
        keys.job(id),
        keys.events(id),
        keys.ckpt(id),
        keys.log(id),
        keys.init(id),
        keys.all,
        ...STATES.map((s) => keys.byState(s)),
        idemKey,
        id,
        keys.notifyChannel,
      ),
    );
    if (n !== -5) return n === 1;
  }
  throw new Error(`internal error: job ${id}'s idempotency key kept changing while it was deleted`);
}
