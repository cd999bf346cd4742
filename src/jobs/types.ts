// The jobs layer's public contract: what HTTP, gRPC, the dashboard and the CLI client see.
import type { ExportFormat, ModelExport } from '../train/export.js';
import type { EpochEvent } from '../train/trainer.js';
import type { JobSpec } from '../train/spec.js';
import type { Caller } from './owners.js';

/** Who asks (src/jobs/owners.ts): a job it does not own is NotFound to it. Absent: keys off, all visible. */
export interface Access {
  as?: Caller;
}

/** List filters (ANDed): state, a tag the job carries, its experiment, its name (exact). */
export interface ListFilter {
  state?: JobState;
  limit: number;
  cursor?: string;
  tag?: string;
  experiment?: string;
  name?: string;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const TERMINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export interface JobSummary {
  finalPerplexity: number | null;
  epochs: number;
  totalMs: number;
  engine: string;
  backend: string;
  /** Why the job ended before train.epochs (early stopping), and the epoch whose model it kept. */
  stopReason?: string;
  bestEpoch?: number;
}

/** Events of a job's history (docs/architecture.md, "Events"); seq starts at 1 and increases by 1. */
export type JobEvent =
  | {
      seq: number;
      time: string;
      type: 'state';
      state: JobState;
      summary?: JobSummary;
      error?: string;
      attempt?: number;
      /** Why the state changed when it is not obvious, e.g. 'worker shut down; resumes from epoch 7'. */
      message?: string;
    }
  | ({ seq: number; time: string; type: 'epoch' } & EpochEvent);

/**
 * A custom corpus as views show it: by default its size and SHA-256 digest (a text can be 2 MB,
 * and lists, the dashboard's polling and submit answers must not carry it); the text itself only
 * where a caller asks for it (HTTP `GET /v1/jobs/:id?include=corpus`, gRPC `view: JOB_VIEW_FULL`).
 */
export type CorpusView = JobSpec['data']['corpus'] | { bytes: number; sha256: string };

/** The resolved spec as views show it (the corpus text left out unless asked for). */
export type JobSpecView = Omit<JobSpec, 'data'> & { data: Omit<JobSpec['data'], 'corpus'> & { corpus: CorpusView } };

export interface JobView {
  id: string;
  name?: string;
  /** The submitting key's name (API_KEYS=name:KEY), else its fingerprint; absent with keys off. */
  owner?: string;
  /** The experiment the job was created in (POST /v1/experiments). */
  experiment?: string;
  state: JobState;
  spec: JobSpecView;
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
  /** Sequence number of the job's latest event (watch from here for only what comes next). */
  lastSeq?: number;
  /** Which try this is (1-based) while running or after; see JOB_ATTEMPTS. */
  attempt?: number;
  /** The last few epoch events, newest last. */
  lastEpochs: EpochEvent[];
  /** What the job was estimated to cost at submission (src/jobs/limits.ts; the caps judge these). */
  estimate?: CostEstimate;
  /** The data the job trains on, as measured at submission (src/jobs/corpus-info.ts). */
  data?: DataInfo;
  /** Where the job's weights started (spec.init, resolved at submission); its epochs count from 1 after it. */
  init?: JobInit;
}

/**
 * spec.init as resolved at submission: the job (fromJob) or uploaded model (model) the weights came
 * from, and the epoch and perplexity they had reached there (the new job's epoch e is the
 * source's epoch + e: a continued curve).
 */
export interface JobInit {
  fromJob?: string;
  model?: string;
  epoch?: number;
  perplexity?: number;
}

/** An uploaded model (POST /v1/models), as the API describes it. */
export interface ModelView {
  id: string;
  kind: 'scratch' | 'concise';
  numHiddens: number;
  numLayers: number;
  vocabSize: number;
  /** index → token; index 0 is `<unk>`. */
  vocab: string[];
  /** The file's size and SHA-256 (hex); the id is derived from the digest, so the same file has the same id. */
  bytes: number;
  sha256: string;
  uploadedAt: string;
  /** What the file's metadata says of its training, when it says it. */
  epoch?: number;
  perplexity?: number;
}

/** What a job's corpus gives under its tokenizer: the limits that apply and the vocabulary. */
export interface DataInfo {
  tokenizer: string;
  /** Tokens of the whole corpus. */
  totalTokens: number;
  /** The cut that applies (data.maxTokens). */
  maxTokens: number;
  /** Tokens trained on (after the cut, before the held-out part). */
  trainTokens: number;
  /** Tokens held out for validation perplexity. */
  validTokens: number;
  /** Whether the cut leaves part of the corpus out. */
  truncated: boolean;
  vocabSize: number;
  /** The most frequent tokens and their counts in the whole corpus (absent for a pasted d2l-chars text). */
  topTokens?: [string, number][];
}

export interface CostEstimate {
  /** Trainable parameters. */
  params: number;
  /** Corpus tokens after the maxTokens cut. */
  tokens: number;
  /** tokens × epochs. */
  tokenEpochs: number;
  /** Training work, TFLOP (3 significant digits). */
  teraflops: number;
  /** Peak worker memory, MiB (rounded up). */
  memoryMb: number;
}

/** One job of an experiment (POST /v1/experiments, src/jobs/experiments.ts): its varied values and results. */
export interface ExperimentRow {
  id: string;
  name?: string;
  /** The varied values of this job. */
  values: Record<string, unknown>;
  state: JobState | 'deleted';
  epoch: number;
  epochs: number;
  finalPerplexity?: number;
  bestPerplexity?: number;
  tokensPerSec?: number;
  /** Training time so far (ms). */
  elapsedMs?: number;
}

/** An experiment's table: each job's varied values, state and results, in creation order. */
export interface ExperimentView {
  id: string;
  name?: string;
  owner?: string;
  createdAt: string;
  varied: string[];
  jobs: ExperimentRow[];
}

export interface GenerateRequest {
  prefix: string;
  numChars: number;
  temperature?: number;
  topK?: number;
  seed?: number;
}

export interface JobService {
  /**
   * Validates (SpecError), then queues. The same idempotencyKey (within `idempotencyScope`: the
   * submitting API key's fingerprint when auth is on; none = global) with the same spec returns
   * the same job with created=false; with another spec, AlreadyExistsError (field idempotencyKey).
   */
  submit(spec: unknown, opts?: { clientId?: string; idempotencyScope?: string; owner?: Caller }): Promise<{ job: JobView; created: boolean }>;
  /** The corpus text is in the view only with includeCorpus (else its size and digest). */
  get(id: string, opts?: { includeCorpus?: boolean } & Access): Promise<JobView>; // NotFoundError
  /** Newest first; with filters a page may hold fewer than `limit` jobs and still have a nextCursor. */
  list(q: ListFilter, opts?: { includeCorpus?: boolean } & Access): Promise<{ jobs: JobView[]; nextCursor?: string }>;
  /** queued → removed from the queue, state cancelled; running → stops within one minibatch. */
  cancel(id: string, opts?: Access): Promise<JobView>; // NotFoundError, FailedPreconditionError when already terminal
  /** History after fromSeq, then live events; ends after the terminal state event or when signal aborts. */
  watch(id: string, fromSeq: number, signal?: AbortSignal, opts?: Access): AsyncIterable<JobEvent>; // NotFoundError
  /** Up to `limit` epoch events with epoch > after, oldest first (a page; the caller asks again after the last). */
  epochs(id: string, after: number, limit?: number, opts?: Access): Promise<EpochEvent[]>;
  /** Characters as they are generated, from the job's latest checkpoint. */
  generate(id: string, req: GenerateRequest, signal?: AbortSignal, opts?: Access): AsyncIterable<string>; // NotFound, FailedPrecondition (no checkpoint yet)
  /** The job's own log: the worker's lines about it, oldest first (optional for other JobServices). */
  logs?(id: string, opts?: Access): Promise<{ time: string; level: string; msg: string }[]>; // NotFound
  /** The job's latest checkpoint as a model file (optional for other JobServices). */
  exportModel?(id: string, format: ExportFormat, opts?: Access): Promise<ModelExport>; // NotFound, FailedPrecondition (no checkpoint)
  /** Stores a model file (safetensors) jobs can start from (spec.init.model); ModelFileError → 400 naming what is wrong. */
  /** Uploaded models follow owners as jobs do: `as` owns what it uploads and sees only its own. */
  uploadModel?(data: Buffer, opts?: Access): Promise<{ model: ModelView; created: boolean }>;
  getModel?(id: string, opts?: Access): Promise<ModelView>; // NotFound (also another key's)
  listModels?(limit: number, opts?: Access): Promise<ModelView[]>;
  /** The caller's ownership goes, the file with its last owner; jobs keep their copies of its weights. */
  deleteModel?(id: string, opts?: Access): Promise<ModelView>; // NotFound (also another key's)
  /**
   * Cancels the job if it is not finished (and waits briefly for its worker to stop), then removes
   * its record, history, checkpoints and log in one step (optional for other JobServices).
   */
  delete?(id: string, opts?: Access): Promise<void>; // NotFound
  /** Validates every point, then queues one job per point under a new experiment (src/jobs/experiments.ts). */
  createExperiment?(input: unknown, opts?: { clientId?: string; owner?: Caller }): Promise<ExperimentView>;
  /** The experiment's table: each job's varied values, state and results. */
  getExperiment?(id: string, opts?: Access): Promise<ExperimentView>; // NotFound
  ready(): Promise<boolean>;
  /** Workers whose heartbeat is live (for /readyz; optional for other JobServices). */
  workers?(): Promise<LiveWorker[]>;
  close(): Promise<void>;
}

/** A live worker as its last heartbeat describes it (src/jobs/heartbeat.ts). */
export interface LiveWorker {
  id: string;
  host: string;
  engine: string;
  backend: string;
  concurrency: number;
  /** Jobs it trains now. */
  jobs: string[];
  /** ISO time of its last heartbeat, and its age in seconds when read. */
  lastHeartbeat: string;
  heartbeatAgeSeconds: number;
}

/** Aggregate figures for /metrics (implemented by the Redis service; optional for other JobServices). */
export interface ServiceStats {
  jobsByState: Record<JobState, number>;
  /** Epochs trained by all workers since the store began (a counter). */
  epochsTrained: number;
  /** Latest tokens/s of each running job. */
  running: { id: string; tokensPerSec: number; engine?: string }[];
  /** Workers with a live heartbeat. */
  workers?: LiveWorker[];
}
