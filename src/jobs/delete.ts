// Deleting a job (DELETE /v1/jobs/:id, gRPC DeleteJob): an unfinished job is cancelled first
// (cancel.ts), then one Lua script (scripts/deleteJob-12.lua) removes the record, its history,
// checkpoints, log and start weights, its idempotency key and its index entries, so a crash can
// never leave a job half there (the script runs whole or not at all). A worker that still writes
// afterwards is fenced out by every script it uses (they need the record, and its lock token in
// it), so nothing brings the job back.
import { cancelJob, type CancelParts } from './cancel.js';
import { FailedPreconditionError, NotFoundError } from './errors.js';
import type { Caller } from './owners.js';
import { STATES, guardRedis, type Keys } from './redis.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import { TERMINAL_STATES } from './types.js';

/**
 * Cancels the job when it is not finished and waits (up to 10 s) for its worker to let go, then
 * removes everything of it in one atomic step; NotFoundError afterwards.
 */
export async function deleteJob(parts: CancelParts, id: string, as?: Caller): Promise<void> {
  const { redis, keys, queue, reader } = parts;
  await guardRedis(async () => {
    const rec = await reader.recordView(id, as);
    if (!TERMINAL_STATES.includes(rec.state)) {
      try {
        await cancelJob(parts, id, as);
      } catch (e) {
        if (!(e instanceof FailedPreconditionError)) throw e; // it finished meanwhile
      }
      for (let waited = 0; waited < 10_000 && (await redis.exists(keys.bullLock(id))); waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (!(await removeJobKeys(withScripts(redis), keys, id))) throw new NotFoundError(`job ${id} not found`);
    await queue.remove(id);
  });
}

/** Removes every key of the job atomically (watchers are woken and end); false when there was no job. */
async function removeJobKeys(redis: ScriptedRedis, keys: Keys, id: string): Promise<boolean> {
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
