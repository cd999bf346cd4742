// Types of api.js (the browser module is plain JS; these let TypeScript tests import it).
import type { ExperimentView, JobEvent, JobView } from '../../../jobs/types.js';
import type { EpochEvent } from '../../../train/trainer.js';

export class ApiError extends Error {
  constructor(status: number, problem?: unknown);
  status: number;
  problem: Record<string, unknown>;
  errors: { field: string; message: string }[];
}

export { SseParser, readSse, type SseEvent } from './sse.js';

export interface Api {
  listJobs(q?: { state?: string; limit?: number; cursor?: string }, signal?: AbortSignal): Promise<{ jobs: JobView[]; nextCursor?: string }>;
  getJob(id: string, signal?: AbortSignal): Promise<JobView>;
  jobLogs(id: string, signal?: AbortSignal): Promise<{ jobId: string; lines: { time: string; level: string; msg: string }[] }>;
  submit(spec: unknown): Promise<JobView>;
  downloadModel(
    id: string,
    format: 'safetensors' | 'onnx' | 'tfjs' | 'checkpoint',
    signal?: AbortSignal,
  ): Promise<{ epoch: number; files: { name: string; blob: Blob }[] }>;
  epochs(id: string, after?: number, signal?: AbortSignal): Promise<{ jobId: string; after: number; epochs: EpochEvent[]; nextAfter?: number }>;
  getExperiment(id: string, signal?: AbortSignal): Promise<ExperimentView>;
  cancel(id: string): Promise<JobView>;
  generate(id: string, req: Record<string, unknown>, opts?: { signal?: AbortSignal; onText?: (chunk: string, payload: unknown) => void }): Promise<string>;
  streamEvents(id: string, lastSeq: number, onEvent: (ev: JobEvent) => void, signal?: AbortSignal): Promise<number>;
}

export function createApi(opts: { getKey: () => string; fetch?: typeof fetch; base?: string }): Api;
