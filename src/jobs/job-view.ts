// The API view of a job: its record (job-records.ts) and last epochs mapped to the JobView that
// HTTP, gRPC and the dashboard show, with numbers JSON can carry.
import type { EpochEvent } from '../train/trainer.js';
import type { JobRecord } from './job-records.js';
import type { JobSpecView, JobSummary, JobView } from './types.js';

/** JSON has no NaN/Infinity: a diverged perplexity is reported as null. */
export function finiteOrUndefined(x: number | undefined): number | undefined {
  return x !== undefined && Number.isFinite(x) ? x : undefined;
}

/** The summary of a job ended from outside its training (cancelled, timed out): what its record says so far. */
export function summaryOf(rec: JobRecord<JobSpecView>): JobSummary {
  return {
    finalPerplexity: finiteOrUndefined(rec.perplexity) ?? null,
    epochs: rec.lastEpoch,
    totalMs: Math.round(rec.elapsedMs ?? 0),
    engine: rec.engine ?? '',
    backend: rec.backend ?? '',
  };
}

export function toView(rec: JobRecord<JobSpecView>, lastEpochs: EpochEvent[]): JobView {
  const view: JobView = {
    id: rec.id,
    name: rec.name,
    owner: rec.ownerName,
    experiment: rec.experiment,
    state: rec.state,
    spec: rec.spec,
    createdAt: rec.createdAt,
    startedAt: rec.startedAt,
    finishedAt: rec.finishedAt,
    progress: { epoch: rec.lastEpoch, epochs: rec.epochs },
    perplexity: finiteOrUndefined(rec.perplexity),
    tokensPerSec: finiteOrUndefined(rec.tokensPerSec),
    engine: rec.engine,
    backend: rec.backend,
    summary: rec.summary,
    error: rec.error,
    checkpointEpoch: rec.checkpointEpoch,
    lastSeq: rec.lastSeq,
    attempt: rec.attempt,
    lastEpochs,
    estimate: rec.estimate,
    data: rec.data,
    init: rec.init,
  };
  for (const k of Object.keys(view) as (keyof JobView)[]) if (view[k] === undefined) delete view[k];
  return view;
}
