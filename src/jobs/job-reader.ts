// A job as one caller may read it: its record, with or without the corpus text, and its view (the
// record and its last epochs, job-view.ts). Every read of the api's starts here, so a job another
// key owns reads exactly as a job that does not exist (owners.ts).
import { NotFoundError } from './errors.js';
import type { EventLog } from './events.js';
import { isJobId, type JobRecord, type JobStore } from './job-records.js';
import { toView } from './job-view.js';
import { canAccess, type Caller } from './owners.js';
import type { JobSpecView, JobView } from './types.js';

/** Epoch events a view carries (JobView.lastEpochs). */
const LAST_EPOCHS = 5;

export class JobReader {
  constructor(
    private readonly store: JobStore,
    private readonly events: EventLog,
  ) {}

  /** The record with the corpus text; a job the caller does not own answers as one that does not exist. */
  async record(id: string, as?: Caller): Promise<JobRecord> {
    const rec = await this.store.get(id);
    if (!rec || !canAccess(as, rec.ownerKey)) throw new NotFoundError(`job ${id} not found`);
    return rec;
  }

  /** The record without the corpus text (views never carry it unless asked). */
  async recordView(id: string, as?: Caller): Promise<JobRecord<JobSpecView>> {
    const [rec] = await this.store.getViews([id]);
    if (!rec || !canAccess(as, rec.ownerKey)) throw new NotFoundError(`job ${id} not found`);
    return rec;
  }

  async view(rec: JobRecord<JobSpecView>): Promise<JobView> {
    return toView(rec, await this.events.lastEpochs(rec.id, LAST_EPOCHS));
  }
}

/**
 * The APIs check ids with the JobId schema (400 / INVALID_ARGUMENT); this guards the service itself:
 * anything not shaped like a job id names no job, and never reaches a Redis key (`<id>:events`…).
 */
export function checkJobId(id: string): void {
  if (!isJobId(id)) throw new NotFoundError(`job ${String(id).slice(0, 40)} not found`);
}
