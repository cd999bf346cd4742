// A user's cancel of a job (HTTP POST /v1/jobs/:id/cancel, gRPC CancelJob, and DELETE of an
// unfinished job): the state changes to cancelled in one atomic step (lifecycle.ts), only if no
// event came in since the record was read, so its summary is the job's last epoch. A queued job
// leaves the queue; a running one's worker hears it on the cancel channel and stops within a minibatch.
import { FailedPreconditionError, NotFoundError, UnavailableError } from './errors.js';
import type { EventLog } from './events.js';
import type { JobReader } from './job-reader.js';
import { summaryOf } from './job-view.js';
import { JobRun } from './lifecycle.js';
import type { Caller } from './owners.js';
import type { TrainQueue } from './queue.js';
import { guardRedis, type Keys, type RedisClient } from './redis.js';
import { TERMINAL_STATES, type JobView } from './types.js';

export interface CancelParts {
  redis: RedisClient;
  keys: Keys;
  events: EventLog;
  queue: TrainQueue;
  reader: JobReader;
}

/** The job cancelled, as the caller sees it then; FailedPreconditionError when it had finished. */
export async function cancelJob(parts: CancelParts, id: string, as?: Caller): Promise<JobView> {
  const { redis, keys, events, queue, reader } = parts;
  return guardRedis(async () => {
    for (let tries = 0; tries < 20; tries++) {
      const rec = await reader.recordView(id, as);
      if (TERMINAL_STATES.includes(rec.state)) throw new FailedPreconditionError(`job ${id} is already ${rec.state}`);
      // the state changes here, atomically, and only if nothing was appended since we read it
      // (so the summary is the job's last epoch); a running worker sees it within one minibatch
      const r = await new JobRun(events, id).cancel({
        seen: { state: rec.state, lastSeq: rec.lastSeq },
        summary: summaryOf(rec),
        message: rec.state === 'queued' ? 'cancelled while queued' : `cancelled at epoch ${rec.lastEpoch}`,
      });
      if (r.ok) {
        if (rec.state === 'queued') await queue.remove(id);
        else await redis.publish(keys.cancelChannel, id);
        return reader.view(await reader.recordView(id));
      }
      if (r.reason === 'missing') throw new NotFoundError(`job ${id} not found`);
      // an epoch or a state change came in between: read again
    }
    throw new UnavailableError(`job ${id} changes too fast to cancel; try again`);
  });
}
