// lstm_trainer.v1.LstmTrainer: one named function per RPC, over a JobService. Each takes the
// decoded request (and what it needs of the call) and returns the response, or yields the stream's
// messages; calls.ts adapts them to grpc-js, errors.ts maps what they throw to gRPC statuses.
import { parseGenerateRequest, tokenizerOf } from '../generate-request.js';
import type * as grpc from '@grpc/grpc-js';
import type { JobService } from '../../jobs/types.js';
import { SpecError } from '../../train/spec.js';
import { FailedPreconditionError } from '../../jobs/errors.js';
import { jobModelExport } from '../model-export.js';
import {
  ExportModelRequest,
  type GenerateRequest,
  ListQuery,
  ListView,
  ModelsQuery,
  parseExperimentId,
  parseJobId,
  parseMessage,
  parseModelId,
} from '../schemas.js';
import { clientStream, serverStream, unary, type CallContext } from './calls.js';
import { deleteCorpus, getCorpus, listCorpora, uploadCorpus, type CorpusAccess } from './corpora.js';
import {
  eventToProto,
  experimentRequestFromProto,
  experimentToProto,
  exportModelFromProto,
  modelToProto,
  generateFromProto,
  jobToProto,
  listQueryFromProto,
  listViewFromProto,
  renameListIssues,
  specFromProto,
} from './convert.js';
import { invalidArgument } from './errors.js';
import type { Caller } from '../../jobs/owners.js';
import type {
  ModelFormatName,
  PDeleteModelRequest,
  PExportModelRequest,
  PGetModelRequest,
  PListModelsRequest,
  PListModelsResponse,
  PModel,
  PUploadModelRequest,
  PUploadModelResponse,
  PGenerateChunk,
  PModelChunk,
  PGenerateRequest,
  PGenerateResponse,
  PGetJobRequest,
  PDeleteJobResponse,
  PJob,
  PJobEvent,
  PJobIdRequest,
  PListJobsRequest,
  PListJobsResponse,
  PSubmitJobRequest,
  PSubmitJobResponse,
  PWatchJobRequest,
  PUploadCorpusRequest,
  PUploadCorpusResponse,
  PListCorporaRequest,
  PListCorporaResponse,
  PDeleteCorpusRequest,
  PGetCorpusRequest,
  PStoredCorpus,
  PCreateExperimentRequest,
  PExperiment,
  PGetExperimentRequest,
} from './proto.js';

/** job_id: present and a job id by the shared JobId rule (INVALID_ARGUMENT otherwise), before any Redis access. */
function jobId(req: PJobIdRequest): string {
  return parseJobId(req.job_id ?? '', 'jobId');
}

/** A GenerateRequest validated as the HTTP API validates it, and the prefix as the model sees it. */
async function generateArgs(service: JobService, req: PGenerateRequest, as?: Caller): Promise<{ id: string; g: GenerateRequest; prefix: string }> {
  const id = jobId(req);
  // the prefix as the job's tokenizer reads it
  return { id, ...parseGenerateRequest(generateFromProto(req), await tokenizerOf(service, id, as)) };
}

/** Who submits: the client (quotas) and the idempotency keys' scope. */
export interface Submitter {
  clientId: string;
  idempotencyScope?: string;
  /** The owner of what it submits (keys on). */
  owner?: Caller;
}

export async function submitJob(service: JobService, req: PSubmitJobRequest, by: Submitter): Promise<PSubmitJobResponse> {
  const { job, created } = await service.submit(specFromProto(req.spec), by);
  return { job: jobToProto(job), created };
}

/** A custom corpus text only with view FULL (the default view carries its size and digest). */
export async function getJob(service: JobService, req: PGetJobRequest, as?: Caller): Promise<PJob> {
  const id = jobId(req);
  const view = ListView.safeParse(listViewFromProto(req));
  if (!view.success) throw new SpecError([{ field: 'view', message: view.error.issues[0].message }]);
  const full = view.data === 'full';
  return jobToProto(await service.get(id, { includeCorpus: full, as }), full);
}

/** Jobs per ListJobs page with view FULL. */
export const FULL_PAGE_MAX = 10;

export async function listJobs(service: JobService, req: PListJobsRequest, as?: Caller): Promise<PListJobsResponse> {
  let q: ListQuery;
  const issues: SpecError['issues'] = [];
  try {
    q = parseMessage(ListQuery, listQueryFromProto(req));
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    issues.push(...renameListIssues(e).issues);
  }
  const view = ListView.safeParse(listViewFromProto(req));
  if (!view.success) issues.push({ field: 'view', message: view.error.issues[0].message });
  // view FULL carries each job's corpus text (up to 2 MB): its pages are FULL_PAGE_MAX jobs at most
  if (view.success && view.data === 'full' && !issues.length) {
    if (req.page_size && q!.limit > FULL_PAGE_MAX) {
      issues.push({ field: 'pageSize', message: `pageSize must be ≤ ${FULL_PAGE_MAX} with view JOB_VIEW_FULL (each job may carry a 2 MB corpus text)` });
    } else {
      q!.limit = Math.min(q!.limit, FULL_PAGE_MAX);
    }
  }
  if (issues.length) throw new SpecError(issues);
  const full = view.data === 'full';
  const { jobs, nextCursor } = await service.list(q!, { includeCorpus: full, as });
  return { jobs: jobs.map((j) => jobToProto(j, full)), next_page_token: nextCursor ?? '' };
}

export async function cancelJob(service: JobService, req: PJobIdRequest, as?: Caller): Promise<PJob> {
  return jobToProto(await service.cancel(jobId(req), { as }));
}

export async function deleteJob(service: JobService, req: PJobIdRequest, as?: Caller): Promise<PDeleteJobResponse> {
  const id = jobId(req);
  if (!service.delete) throw new FailedPreconditionError('this service cannot delete jobs');
  await service.delete(id, { as });
  return { job_id: id };
}

/** The job's events from from_seq on, then live until its final state. */
export async function* watchJob(service: JobService, req: PWatchJobRequest, signal: AbortSignal, as?: Caller): AsyncGenerator<PJobEvent> {
  const id = jobId(req);
  const fromSeq = req.from_seq ?? 0;
  if (!Number.isInteger(fromSeq) || fromSeq < 0) {
    throw invalidArgument([{ field: 'fromSeq', message: 'fromSeq must be ≥ 0 (the last seq received; 0 = from the start)' }]);
  }
  for await (const ev of service.watch(id, fromSeq, signal, { as })) yield eventToProto(ev);
}

export async function generate(service: JobService, req: PGenerateRequest, signal: AbortSignal, as?: Caller): Promise<PGenerateResponse> {
  const { id, g, prefix } = await generateArgs(service, req, as);
  let generated = '';
  for await (const chars of service.generate(id, g, signal, { as })) generated += chars;
  return { prefix, generated, text: prefix + generated };
}

export async function* generateStream(service: JobService, req: PGenerateRequest, signal: AbortSignal, as?: Caller): AsyncGenerator<PGenerateChunk> {
  const { id, g, prefix } = await generateArgs(service, req, as);
  const it = service.generate(id, g, signal, { as })[Symbol.asyncIterator]();
  // The first character before anything is sent, so "not found" / "no checkpoint yet" end
  // the call as a bare status rather than after a prefix chunk.
  let r = await it.next();
  try {
    yield { text: prefix };
    for (; !r.done; r = await it.next()) yield { text: r.value };
  } finally {
    // A client that left mid-stream: end the service's generator so it releases its model.
    if (!r.done) await it.return?.(undefined);
  }
}

/** ExportModel's data chunks: at most this many bytes each (well under grpc-js's 4 MiB message limit). */
export const MODEL_CHUNK_BYTES = 64 * 1024;

/**
 * The job's model as the HTTP download has it (the same function builds both): an info message,
 * then each file's header and its bytes in chunks. The export is built before anything is sent,
 * so "not found" / "no checkpoint" end the call as a bare status.
 */
export async function* exportModel(service: JobService, req: PExportModelRequest, as?: Caller): AsyncGenerator<PModelChunk> {
  const id = jobId(req);
  const { format } = parseMessage(ExportModelRequest, exportModelFromProto(req));
  const out = await jobModelExport(service, id, format, as);
  const formatName = `MODEL_FORMAT_${format.toUpperCase()}` as ModelFormatName;
  yield { info: { format: formatName, epoch: out.epoch, files: out.files.length, total_bytes: out.files.reduce((n, f) => n + f.data.length, 0) } };
  for (const f of out.files) {
    yield { file: { name: f.name, content_type: f.contentType, size: f.data.length, filename: f.filename } };
    for (let at = 0; at < f.data.length; at += MODEL_CHUNK_BYTES) yield { data: f.data.subarray(at, at + MODEL_CHUNK_BYTES) };
  }
}

export async function uploadModel(service: JobService, req: PUploadModelRequest, as?: Caller): Promise<PUploadModelResponse> {
  if (!service.uploadModel) throw new FailedPreconditionError('this service does not store models');
  const data = req.data ?? Buffer.alloc(0);
  if (data.length === 0) throw invalidArgument([{ field: 'data', message: 'data is required: the model file (safetensors)' }]);
  const { model, created } = await service.uploadModel(Buffer.from(data), { as });
  return { model: modelToProto(model), created };
}

export async function getModel(service: JobService, req: PGetModelRequest, as?: Caller): Promise<PModel> {
  const id = parseModelId(req.model_id ?? '', 'modelId');
  if (!service.getModel) throw new FailedPreconditionError('this service does not store models');
  return modelToProto(await service.getModel(id, { as }));
}

/** The answer of a service that does not keep experiments (as HTTP's). */
const noExperiments = () => new FailedPreconditionError('this service has no experiments');

/** POST /v1/experiments over gRPC: the same body, the same client id and owner as SubmitJob's. */
export async function createExperiment(service: JobService, req: PCreateExperimentRequest, by: Submitter): Promise<PExperiment> {
  if (!service.createExperiment) throw noExperiments();
  return experimentToProto(await service.createExperiment(experimentRequestFromProto(req), { clientId: by.clientId, owner: by.owner }));
}

export async function getExperiment(service: JobService, req: PGetExperimentRequest, as?: Caller): Promise<PExperiment> {
  if (!service.getExperiment) throw noExperiments();
  return experimentToProto(await service.getExperiment(parseExperimentId(req.experiment_id ?? '', 'experimentId'), { as }));
}

/** DELETE /v1/models/:id over gRPC: the same service call (the caller's ownership, the file with its last owner). */
export async function deleteModel(service: JobService, req: PDeleteModelRequest, as?: Caller): Promise<PModel> {
  const id = parseModelId(req.model_id ?? '', 'modelId');
  if (!service.deleteModel) throw new FailedPreconditionError('this service does not store models');
  return modelToProto(await service.deleteModel(id, { as }));
}

/** GET /v1/models over gRPC: the same schema for `limit` (0, proto3's unset, is the default 20). */
export async function listModels(service: JobService, req: PListModelsRequest, as?: Caller): Promise<PListModelsResponse> {
  const { limit } = parseMessage(ModelsQuery, req.limit ? { limit: req.limit } : {});
  if (!service.listModels) throw new FailedPreconditionError('this service does not store models');
  return { models: (await service.listModels(limit, { as })).map(modelToProto) };
}

/** The service implementation grpc-js takes: every RPC through its adapter. */
export function lstmTrainerHandlers(
  service: JobService,
  ctx: CallContext,
  submitter: (call: grpc.ServerUnaryCall<unknown, unknown>) => Submitter,
  corpora?: CorpusAccess,
): grpc.UntypedServiceImplementation {
  const corpusStore = (): CorpusAccess => {
    if (!corpora) throw new FailedPreconditionError('this service does not store corpora');
    return corpora;
  };
  // who asks: every job, model and corpus RPC acts as that key (another key's is NOT_FOUND)
  const as = (call: unknown) => ctx.caller?.(call as grpc.ServerUnaryCall<unknown, unknown>);
  return {
    SubmitJob: unary<PSubmitJobRequest, PSubmitJobResponse>(ctx, 'SubmitJob', (req, call) =>
      submitJob(service, req, submitter(call as grpc.ServerUnaryCall<unknown, unknown>)),
    ),
    GetJob: unary<PGetJobRequest, PJob>(ctx, 'GetJob', (req, call) => getJob(service, req, as(call))),
    ListJobs: unary<PListJobsRequest, PListJobsResponse>(ctx, 'ListJobs', (req, call) => listJobs(service, req, as(call))),
    CancelJob: unary<PJobIdRequest, PJob>(ctx, 'CancelJob', (req, call) => cancelJob(service, req, as(call))),
    DeleteJob: unary<PJobIdRequest, PDeleteJobResponse>(ctx, 'DeleteJob', (req, call) => deleteJob(service, req, as(call))),
    WatchJob: serverStream<PWatchJobRequest, PJobEvent>(ctx, 'WatchJob', (req, signal, call) => watchJob(service, req, signal, as(call))),
    Generate: unary<PGenerateRequest, PGenerateResponse>(ctx, 'Generate', (req, call, signal) => generate(service, req, signal, as(call))),
    GenerateStream: serverStream<PGenerateRequest, PGenerateChunk>(ctx, 'GenerateStream', (req, signal, call) =>
      generateStream(service, req, signal, as(call)),
    ),
    ExportModel: serverStream<PExportModelRequest, PModelChunk>(ctx, 'ExportModel', (req, _signal, call) => exportModel(service, req, as(call))),
    UploadModel: unary<PUploadModelRequest, PUploadModelResponse>(ctx, 'UploadModel', (req, call) => uploadModel(service, req, as(call))),
    GetModel: unary<PGetModelRequest, PModel>(ctx, 'GetModel', (req, call) => getModel(service, req, as(call))),
    DeleteModel: unary<PDeleteModelRequest, PModel>(ctx, 'DeleteModel', (req, call) => deleteModel(service, req, as(call))),
    ListModels: unary<PListModelsRequest, PListModelsResponse>(ctx, 'ListModels', (req, call) => listModels(service, req, as(call))),
    UploadCorpus: clientStream<PUploadCorpusRequest, PUploadCorpusResponse>(ctx, 'UploadCorpus', (reqs, call) => uploadCorpus(corpusStore(), reqs, as(call))),
    ListCorpora: unary<PListCorporaRequest, PListCorporaResponse>(ctx, 'ListCorpora', (_req, call) => listCorpora(corpusStore(), as(call))),
    GetCorpus: unary<PGetCorpusRequest, PStoredCorpus>(ctx, 'GetCorpus', (req, call) => getCorpus(corpusStore(), req, as(call))),
    DeleteCorpus: unary<PDeleteCorpusRequest, PStoredCorpus>(ctx, 'DeleteCorpus', (req, call) => deleteCorpus(corpusStore(), service, req, as(call))),
    CreateExperiment: unary<PCreateExperimentRequest, PExperiment>(ctx, 'CreateExperiment', (req, call) =>
      createExperiment(service, req, submitter(call as grpc.ServerUnaryCall<unknown, unknown>)),
    ),
    GetExperiment: unary<PGetExperimentRequest, PExperiment>(ctx, 'GetExperiment', (req, call) => getExperiment(service, req, as(call))),
  };
}
