// The jobs layer's public contract: what HTTP, gRPC, the dashboard and the CLI client see.
import type { EpochEvent } from '../train/trainer.js';
import type { JobSpec } from '../train/spec.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const TERMINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export interface JobSummary {
  finalPerplexity: number | null;
  epochs: number;
  totalMs: number;
  engine: string;
  backend: string;
}

/** Events of a job's history (design §4); seq starts at 1 and increases by 1. */
export type JobEvent =
  | { seq: number; time: string; type: 'state'; state: JobState; summary?: JobSummary; error?: string; attempt?: number }
  | ({ seq: number; time: string; type: 'epoch' } & EpochEvent);

export interface JobView {
  id: string;
  name?: string;
  state: JobState;
  spec: JobSpec;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  progress: { epoch: number; epochs: number };
  perplexity?: number;
  tokensPerSec?: number;
  engine?: string;
  backend?: string;
  summary?: JobSummary;
  error?: string;
  /** Epoch of the latest stored checkpoint (generation is possible when set). */
  checkpointEpoch?: number;
  /** The last few epoch events, newest last. */
  lastEpochs: EpochEvent[];
}

export interface GenerateRequest {
  prefix: string;
  numChars: number;
  temperature?: number;
  topK?: number;
  seed?: number;
}

export interface JobService {
  /** Validates (SpecError), then queues; the same idempotencyKey returns the same job with created=false. */
  submit(spec: unknown, opts?: { clientId?: string }): Promise<{ job: JobView; created: boolean }>;
  get(id: string): Promise<JobView>; // NotFoundError
  list(q: { state?: JobState; limit: number; cursor?: string }): Promise<{ jobs: JobView[]; nextCursor?: string }>;
  /** queued → removed from the queue, state cancelled; running → stops within one minibatch. */
  cancel(id: string): Promise<JobView>; // NotFoundError, FailedPreconditionError when already terminal
  /** History after fromSeq, then live events; ends after the terminal state event or when signal aborts. */
  watch(id: string, fromSeq: number, signal?: AbortSignal): AsyncIterable<JobEvent>; // NotFoundError
  epochs(id: string, after: number): Promise<EpochEvent[]>;
  /** Characters as they are generated, from the job's latest checkpoint. */
  generate(id: string, req: GenerateRequest, signal?: AbortSignal): AsyncIterable<string>; // NotFound, FailedPrecondition (no checkpoint yet)
  ready(): Promise<boolean>;
  close(): Promise<void>;
}
