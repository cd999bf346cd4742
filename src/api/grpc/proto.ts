// Loads the service's .proto (and the standard health service's, so that reflection describes
// both) and declares the plain-object shapes that @grpc/proto-loader produces with LOADER_OPTIONS.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

export const PACKAGE = 'lstm_trainer.v1';
export const SERVICE_NAME = `${PACKAGE}.LstmTrainer`;
export const PROTO_FILE = 'lstm_trainer/v1/lstm_trainer.proto';

/**
 * snake_case keys as in the .proto; enums as their names; unset fields left out (defaults: false)
 * so that proto3 `optional` presence survives decoding and an unset field takes the zod default.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: false,
  oneofs: true,
};

/** The repository's proto/ directory: src/api/grpc and dist/api/grpc are both three levels down. */
export function protoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here, i = 0; i < 6; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, PROTO_FILE))) return candidate;
  }
  throw new Error(`cannot find proto/${PROTO_FILE} above ${here}`);
}

export function protoFilePath(): string {
  return path.join(protoRoot(), PROTO_FILE);
}

let cached: protoLoader.PackageDefinition | undefined;

/** lstm_trainer.v1 plus grpc.health.v1 in one definition (reflection lists what it is given). */
export function packageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync([PROTO_FILE, healthProtoPath], { ...LOADER_OPTIONS, includeDirs: [protoRoot()] });
  return cached;
}

export function lstmTrainerService(): grpc.ServiceDefinition {
  return packageDefinition()[SERVICE_NAME] as grpc.ServiceDefinition;
}

// ---- message shapes (snake_case, as decoded/encoded with LOADER_OPTIONS) ----

export type ModelKindName = 'MODEL_KIND_UNSPECIFIED' | 'MODEL_KIND_SCRATCH' | 'MODEL_KIND_CONCISE';
export type SamplingName = 'SAMPLING_UNSPECIFIED' | 'SAMPLING_SEQUENTIAL' | 'SAMPLING_RANDOM';
export type JobStateName =
  | 'JOB_STATE_UNSPECIFIED'
  | 'JOB_STATE_QUEUED'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_SUCCEEDED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLED';
export type JobViewName = 'JOB_VIEW_UNSPECIFIED' | 'JOB_VIEW_BASIC' | 'JOB_VIEW_FULL';

/** An enum as decoded: its name, or the bare number when this server does not know the value. */
type Enum<T extends string> = T | number;

export interface PModelSpec {
  kind?: Enum<ModelKindName>;
  num_hiddens?: number;
  num_layers?: number;
}
export interface PCorpus {
  timemachine?: boolean;
  text?: string;
  id?: string;
  source?: 'timemachine' | 'text' | 'id';
}
export interface PDataSpec {
  corpus?: PCorpus;
  max_tokens?: number;
  batch_size?: number;
  num_steps?: number;
  sampling?: Enum<SamplingName>;
  tokenizer?: string;
  min_freq?: number;
  valid_fraction?: number;
}
export interface PTrainSpec {
  epochs?: number;
  lr?: number;
  clip_theta?: number;
  seed?: number;
  timeout_seconds?: number;
  early_stopping?: { patience?: number; min_delta?: number };
}
export interface PReportSpec {
  predict_every?: number;
  prefixes?: string[];
  num_preds?: number;
}
export interface PJobSpec {
  model?: PModelSpec;
  data?: PDataSpec;
  train?: PTrainSpec;
  report?: PReportSpec;
  name?: string;
  idempotency_key?: string;
  init?: PInitSpec;
  tags?: string[];
}
export interface PInitSpec {
  from_job?: string;
  model?: string;
  source?: 'from_job' | 'model';
}
export interface PJobInit {
  from_job?: string;
  model?: string;
  epoch?: number;
  perplexity?: number;
}
export interface PJobSummary {
  final_perplexity?: number;
  epochs: number;
  total_ms: number;
  engine: string;
  backend: string;
  stop_reason?: string;
  best_epoch?: number;
}
export interface PSample {
  prefix: string;
  text: string;
}
export interface PEpochEvent {
  epoch: number;
  epochs: number;
  perplexity: number;
  tokens_per_sec: number;
  elapsed_ms: number;
  samples?: PSample[];
  valid_perplexity?: number;
}
export interface PStateEvent {
  state: JobStateName;
  summary?: PJobSummary;
  error?: string;
  attempt?: number;
  message?: string;
}
export interface PJobEvent {
  seq: number;
  time: string;
  state?: PStateEvent;
  epoch?: PEpochEvent;
}
export interface PJob {
  id: string;
  name?: string;
  state: JobStateName;
  spec: PJobSpec;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  progress: { epoch: number; epochs: number };
  perplexity?: number;
  tokens_per_sec?: number;
  engine?: string;
  backend?: string;
  summary?: PJobSummary;
  error?: string;
  checkpoint_epoch?: number;
  last_epochs?: PEpochEvent[];
  corpus_text_bytes?: number;
  corpus_text_sha256?: string;
  last_seq?: number;
  attempt?: number;
  estimate?: PJobEstimate;
  init?: PJobInit;
  owner?: string;
  experiment?: string;
}
export interface PJobEstimate {
  params: number;
  tokens: number;
  token_epochs: number;
  teraflops: number;
  memory_mb: number;
}
export interface PSubmitJobRequest {
  spec?: PJobSpec;
}
export interface PSubmitJobResponse {
  job: PJob;
  created: boolean;
}
export interface PJobIdRequest {
  job_id?: string;
}
export interface PGetJobRequest extends PJobIdRequest {
  view?: Enum<JobViewName>;
}
export interface PListJobsRequest {
  state?: Enum<JobStateName>;
  page_size?: number;
  page_token?: string;
  view?: Enum<JobViewName>;
  tag?: string;
  experiment?: string;
  name?: string;
}
export interface PDeleteJobResponse {
  job_id: string;
}
export interface PListJobsResponse {
  jobs: PJob[];
  next_page_token: string;
}
export interface PWatchJobRequest {
  job_id?: string;
  from_seq?: number;
}
export interface PGenerateRequest {
  job_id?: string;
  prefix?: string;
  num_chars?: number;
  temperature?: number;
  top_k?: number;
  seed?: number;
}
export interface PGenerateResponse {
  prefix: string;
  generated: string;
  text: string;
}
export interface PGenerateChunk {
  text: string;
}

export type ModelFormatName = 'MODEL_FORMAT_UNSPECIFIED' | 'MODEL_FORMAT_SAFETENSORS' | 'MODEL_FORMAT_ONNX' | 'MODEL_FORMAT_TFJS' | 'MODEL_FORMAT_CHECKPOINT';
export interface PExportModelRequest {
  job_id?: string;
  format?: Enum<ModelFormatName>;
}
export interface PModelChunk {
  info?: { format: ModelFormatName; epoch: number; files: number; total_bytes: number };
  file?: { name: string; content_type: string; size: number; filename: string };
  data?: Buffer;
}
export interface PUploadModelRequest {
  data?: Buffer;
}
export interface PModel {
  id: string;
  kind: ModelKindName;
  num_hiddens: number;
  num_layers: number;
  vocab_size: number;
  vocab: string[];
  bytes: number;
  sha256: string;
  uploaded_at: string;
  epoch?: number;
  perplexity?: number;
}
export interface PUploadModelResponse {
  model: PModel;
  created: boolean;
}
export interface PGetModelRequest {
  model_id?: string;
}
export type PDeleteModelRequest = PGetModelRequest;
export interface PListModelsRequest {
  limit?: number;
}
export interface PListModelsResponse {
  models: PModel[];
}

export interface PUploadCorpusRequest {
  data?: Buffer;
  last?: boolean;
}
export interface PStoredCorpus {
  id: string;
  bytes: number;
  characters: number;
  preview: string;
  created_at: string;
}
export interface PUploadCorpusResponse {
  corpus: PStoredCorpus;
  created: boolean;
}
export type PListCorporaRequest = Record<string, never>;
export interface PListCorporaResponse {
  corpora: PStoredCorpus[];
}
export interface PGetCorpusRequest {
  corpus_id?: string;
}
export type PDeleteCorpusRequest = PGetCorpusRequest;

/** A JSON value (google.protobuf.Value's shape less null and objects); `kind` names the one set (oneofs: true). */
export interface PValue {
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  list_value?: { values?: PValue[] };
  kind?: 'number_value' | 'string_value' | 'bool_value' | 'list_value';
}
export interface PGridAxis {
  path?: string;
  values?: PValue[];
}
export interface PCreateExperimentRequest {
  name?: string;
  base?: PJobSpec;
  grid?: PGridAxis[];
  specs?: PJobSpec[];
}
export interface PGetExperimentRequest {
  experiment_id?: string;
}
export interface PExperimentRow {
  id: string;
  name?: string;
  values: Record<string, PValue>;
  state: JobStateName;
  deleted: boolean;
  epoch: number;
  epochs: number;
  final_perplexity?: number;
  best_perplexity?: number;
  tokens_per_sec?: number;
  elapsed_ms?: number;
}
export interface PExperiment {
  id: string;
  name?: string;
  owner?: string;
  created_at: string;
  varied: string[];
  jobs: PExperimentRow[];
}
