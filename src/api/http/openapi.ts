// GET /docs/openapi.json (and the page at /docs) — OpenAPI 3.1 generated from the same zod schemas
// the routes validate with (z.toJSONSchema); response shapes are described here with zod too. The
// document is complete by rule (test/dashboard/docs.test.ts walks it): every field has a
// description (FIELD_DOCS below, by path), every operation lists every status it can answer and
// has an example request (where it takes one) and an example answer.
import { z } from 'zod';
import { JOB_STATES, ListQuery } from '../schemas.js';
import { JobSpec } from '../../train/spec.js';
import { EpochsQuery, EventsQuery, JobQuery } from './schemas.js';
import { corporaDoc } from './openapi/corpora.js';
import { experimentsDoc } from './openapi/experiments.js';
import { generateDoc } from './openapi/generate.js';
import { describeFields, type JsonObject, jsonSchema, ref } from './openapi/json-schema.js';
import { modelDoc } from './openapi/model.js';
import { modelsDoc } from './openapi/models.js';
import { JOB_ID, jobIdParam, queryParams } from './openapi/params.js';
import { docContext, ok, type OpenApiPart, PROBLEM_TYPE, problem, problemSchemas, tooMany, writes } from './openapi/responses.js';
import { serviceDoc } from './openapi/service.js';

const Sample = z.object({ prefix: z.string(), text: z.string() });
const EpochEvent = z.object({
  epoch: z.number().int(),
  epochs: z.number().int(),
  perplexity: z.number().nullable().describe('null when training diverged (not finite)'),
  tokensPerSec: z.number(),
  elapsedMs: z.number(),
  validPerplexity: z.number().optional(),
  stopReason: z.string().optional(),
  samples: z.array(Sample).optional(),
});
const JobState = z.enum(JOB_STATES);
const JobSummary = z.object({
  finalPerplexity: z.number().nullable(),
  epochs: z.number().int(),
  totalMs: z.number(),
  engine: z.string(),
  backend: z.string(),
  stopReason: z.string().optional(),
  bestEpoch: z.number().int().optional(),
});
const StateEvent = z.object({
  seq: z.number().int(),
  time: z.string(),
  type: z.literal('state'),
  state: JobState,
  summary: JobSummary.optional(),
  error: z.string().optional(),
  attempt: z.number().int().optional(),
  message: z.string().optional(),
});
const EpochJobEvent = EpochEvent.extend({ seq: z.number().int(), time: z.string(), type: z.literal('epoch') });
const JobEvent = z.union([StateEvent, EpochJobEvent]);
const JobView = z.object({
  id: z.string(),
  name: z.string().optional(),
  owner: z.string().optional(),
  experiment: z.string().optional(),
  state: JobState,
  spec: z
    .unknown()
    .describe(
      'the job spec with every default filled in (see JobSpec); a custom corpus text is shown as data.corpus = {bytes, sha256} (its UTF-8 size and SHA-256), the text itself only in GET /v1/jobs/{id}?include=corpus',
    ),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  progress: z.object({ epoch: z.number().int(), epochs: z.number().int() }),
  perplexity: z.number().optional(),
  tokensPerSec: z.number().optional(),
  engine: z.string().optional(),
  backend: z.string().optional(),
  summary: JobSummary.optional(),
  error: z.string().optional(),
  checkpointEpoch: z.number().int().optional(),
  lastSeq: z.number().int().optional(),
  attempt: z.number().int().optional(),
  lastEpochs: z.array(EpochEvent),
  estimate: z
    .object({ params: z.number().int(), tokens: z.number().int(), tokenEpochs: z.number().int(), teraflops: z.number(), memoryMb: z.number() })
    .optional()
    .describe('the cost estimated at submission, which the caps (MAX_JOB_TFLOP, MAX_JOB_MEMORY_MB, MAX_JOB_TOKEN_EPOCHS) judge'),
  data: z
    .object({
      tokenizer: z.string(),
      totalTokens: z.number().int(),
      maxTokens: z.number().int(),
      trainTokens: z.number().int(),
      validTokens: z.number().int(),
      truncated: z.boolean(),
      vocabSize: z.number().int(),
      topTokens: z.array(z.tuple([z.string(), z.number().int()])).optional(),
    })
    .optional()
    .describe("the corpus as measured at submission under the job's tokenizer: the cut that applies and the vocabulary"),
  init: z
    .object({ fromJob: z.string().optional(), model: z.string().optional(), epoch: z.number().int().optional(), perplexity: z.number().optional() })
    .optional()
    .describe("where the job's weights started (spec.init, resolved at submission)"),
});
const JobList = z.object({ jobs: z.array(JobView), nextCursor: z.string().optional() });
const Epochs = z.object({
  jobId: z.string(),
  after: z.number().int(),
  epochs: z.array(EpochEvent),
  nextAfter: z.number().int().optional().describe('set when the page is full: ask again with after = nextAfter'),
});
const JobLogs = z.object({
  jobId: z.string(),
  lines: z.array(z.object({ time: z.string(), level: z.enum(['debug', 'info', 'warn', 'error']), msg: z.string() })),
});

// ---- descriptions of every field, by dotted path (array items and union branches add nothing) ----

const EPOCH_FIELDS: Record<string, string> = {
  epoch: 'the epoch this event reports (1-based)',
  epochs: 'the epochs the job trains in all (train.epochs)',
  perplexity: "exp of the epoch's mean cross-entropy per character; null when training diverged (not finite)",
  tokensPerSec: 'characters trained per second over the epoch',
  elapsedMs: 'wall-clock milliseconds of training so far (all attempts)',
  samples: 'text generated after this epoch, one per report.prefixes entry (every report.predictEvery epochs and after the last)',
  validPerplexity: 'perplexity on the held-out tail of the corpus (data.validFraction > 0), computed without updating the weights',
  stopReason: "on the last epoch of a job that early stopping ended: why (its weights are the best epoch's)",
  'samples.prefix': 'the prefix as given',
  'samples.text': 'the prefix and report.numPreds generated characters (greedy)',
};
const SUMMARY_FIELDS: Record<string, string> = {
  finalPerplexity: 'perplexity of the last epoch (null when not finite)',
  epochs: 'epochs trained',
  totalMs: 'training time in milliseconds',
  engine: 'compute engine that trained it (native, tfjs)',
  backend: 'device or backend of the engine (cpu, cuda, wasm, …)',
  stopReason: 'why the job ended before train.epochs (early stopping)',
  bestEpoch: 'the epoch whose model early stopping kept',
};
const prefixed = (prefix: string, fields: Record<string, string>) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [`${prefix}.${k}`, v]));
const JOB_FIELDS: Record<string, string> = {
  id: 'the job id (20 characters: "j" then 0-9 a-z)',
  name: 'the name given at submission',
  owner: "with API keys on: the submitting key's name (API_KEYS=name:KEY), else its fingerprint (never the key)",
  experiment: 'the experiment the job was made in (POST /v1/experiments)',
  state: 'queued → running → succeeded | failed | cancelled (running → queued again when a worker is lost or an attempt will be retried)',
  spec: 'the job spec with every default filled in (see JobSpec); a custom corpus text is shown as data.corpus = {bytes, sha256} (its UTF-8 size and SHA-256), the text itself only in GET /v1/jobs/{id}?include=corpus',
  createdAt: 'when it was submitted (RFC 3339)',
  startedAt: 'when a worker first started it (RFC 3339)',
  finishedAt: 'when it reached its final state (RFC 3339)',
  progress: 'epochs done out of epochs to do',
  'progress.epoch': 'the last epoch finished (0 before the first)',
  'progress.epochs': 'train.epochs',
  perplexity: 'perplexity of the last epoch finished',
  tokensPerSec: 'characters per second of the last epoch finished',
  engine: 'compute engine of the worker training it',
  backend: 'device or backend of that engine',
  summary: 'set when it succeeded',
  ...prefixed('summary', SUMMARY_FIELDS),
  error: 'why it failed',
  checkpointEpoch: 'epoch of the latest checkpoint (generation reads it; a resumed job continues after it)',
  lastSeq: 'seq of its latest event (GET /v1/jobs/{id}/events?fromSeq=lastSeq follows only new events)',
  attempt: 'the current attempt (1-based; a lost worker or a failed attempt retries up to JOB_ATTEMPTS)',
  lastEpochs: 'the last five epoch events',
  ...prefixed('lastEpochs', EPOCH_FIELDS),
  estimate: 'the cost estimated at submission, which the caps (MAX_JOB_TFLOP, MAX_JOB_MEMORY_MB, MAX_JOB_TOKEN_EPOCHS) judge',
  'estimate.params': 'model parameters',
  'estimate.tokens': 'characters of the corpus used (data.maxTokens or fewer)',
  'estimate.tokenEpochs': 'tokens × epochs',
  data: "the corpus as measured at submission under the job's tokenizer",
  'data.tokenizer': 'data.tokenizer',
  'data.totalTokens': 'tokens of the whole corpus',
  'data.maxTokens': 'the cut that applies (data.maxTokens; for an uploaded corpus the whole of it unless given)',
  'data.trainTokens': 'tokens trained on (after the cut, before the held-out part)',
  'data.validTokens': 'tokens held out for validPerplexity (data.validFraction)',
  'data.truncated': 'whether the cut leaves part of the corpus out',
  'data.vocabSize': 'vocabulary size, <unk> included',
  'data.topTokens': 'the most frequent tokens and their counts',
  'estimate.teraflops': 'training work in 10¹² floating-point operations',
  'estimate.memoryMb': 'peak worker memory in MB',
  init: "where the job's weights started (spec.init, resolved at submission); its epochs count from 1 after that point: epoch e of this job is epoch init.epoch + e of the curve it continues",
  'init.fromJob': 'the job whose latest checkpoint it started from',
  'init.model': 'the uploaded model it started from (POST /v1/models)',
  'init.epoch': 'the epoch that checkpoint or model had reached (a model file says it in its metadata, when it does)',
  'init.perplexity': 'the perplexity it had reached there',
};
const STATE_EVENT_FIELDS: Record<string, string> = {
  seq: 'the sequence number: 1, 2, 3, … per job, no gaps (the SSE id)',
  time: 'when it happened (RFC 3339)',
  type: '"state" or "epoch" (the SSE event name)',
  state: 'the new state (state events)',
  summary: 'on the final succeeded event',
  ...prefixed('summary', SUMMARY_FIELDS),
  error: 'on a failed event, or on a retry: why',
  attempt: 'the attempt that starts or ends',
  message: 'a note (e.g. resumed from the checkpoint of epoch N)',
  ...EPOCH_FIELDS,
};

export const FIELD_DOCS: Record<string, Record<string, string>> = {
  JobSpec: {
    model: 'the model (d2l: the LSTM chapter)',
    'model.kind': "scratch: the chapter's from-scratch LSTM; concise: the framework's LSTM layer (stacked numLayers deep)",
    'model.numHiddens': 'hidden units per layer (d2l: 256)',
    'model.numLayers': 'stacked LSTM layers (concise only; scratch has one)',
    data: 'the corpus and the minibatches',
    'data.corpus':
      '"timemachine" (H. G. Wells, The Time Machine, as d2l), {text} (your own text, ≤ 2,000,000 bytes) or {id} (a corpus uploaded with POST /v1/corpora)',
    'data.corpus.text': 'your own corpus, tokenised by data.tokenizer',
    'data.corpus.id': 'an uploaded corpus: the id POST /v1/corpora answered (64 hex digits)',
    'data.maxTokens': 'tokens of the corpus used (d2l: 10,000 for the book and pasted texts; an uploaded corpus: all of it unless given)',
    'data.tokenizer':
      'd2l-chars: d2l\'s rule (letters a-z lower-cased, anything else one space; the default); chars: every Unicode code point as it is; words: white-space separated words (d2l tokenize(lines, "word"))',
    'data.minFreq': 'tokens seen fewer times become <unk> (d2l Vocab min_freq; default 0)',
    'data.validFraction': 'the corpus tail held out for validation perplexity, 0 … 0.5 (default 0: none, as d2l)',
    'data.batchSize': 'sequences per minibatch (d2l: 32)',
    'data.numSteps': 'time steps per sequence (d2l: 35)',
    'data.sampling': 'sequential partitioning (state carried between minibatches, d2l default) or random sampling (state reset)',
    train: "the training loop (d2l's train_ch8)",
    'train.epochs': 'passes over the corpus (d2l: 500)',
    'train.lr': 'SGD learning rate (d2l: 1)',
    'train.clipTheta': 'gradient clipping threshold on the global norm (d2l: 1)',
    'train.seed': 'seed of the initialisation and the sampler (unset: random)',
    'train.earlyStopping':
      "stop when validation perplexity has not improved for patience epochs (needs data.validFraction > 0); the job succeeds with the best epoch's model",
    'train.earlyStopping.patience': 'epochs without an improvement before stopping',
    'train.earlyStopping.minDelta': 'the least decrease of validation perplexity that counts as an improvement (default 0)',
    'train.timeoutSeconds': 'optional bound on the training time (seconds, across resumes): past it the job is cancelled at its last published epoch',
    report: 'what the job reports while training',
    'report.predictEvery': 'generate samples every this many epochs (and after the last)',
    'report.prefixes':
      "prefixes to continue in the samples (d2l-chars: each needs a letter); unset: the book's for the book, else the corpus's own first words",
    'report.numPreds': 'tokens generated per sample: characters, or words for the words tokenizer (d2l: 50)',
    init: 'start from a trained model instead of fresh weights: {fromJob: "<job id>"} (its latest checkpoint) or {model: "<model id>"} (POST /v1/models); model.* must be its architecture, and the job tokenises its corpus with the model\'s vocabulary (characters it lacks become <unk>)',
    'init.fromJob': 'a job with a checkpoint (finished, cancelled or running): its weights at submission time',
    'init.model': 'an uploaded model (POST /v1/models)',
    name: 'a name to show in lists and the dashboard',
    idempotencyKey:
      'resubmitting the same spec under the same key returns the same job (200) instead of a new one; another spec under it is a 409 (keys are per API key when keys are on)',
    tags: 'labels to filter lists by (GET /v1/jobs?tag=); up to 16, each 1-64 of A-Z a-z 0-9 _ . : = @ -',
  },
  Deleted: { jobId: 'the deleted job', deleted: 'always true' },
  JobView: JOB_FIELDS,
  JobList: { jobs: 'a page of jobs, newest first', ...prefixed('jobs', JOB_FIELDS), nextCursor: 'set when more jobs follow: pass it as cursor' },
  JobEvent: STATE_EVENT_FIELDS,
  EpochEvent: EPOCH_FIELDS,
  Epochs: {
    jobId: 'the job',
    after: 'the after asked for: epochs > after are listed',
    epochs: 'up to limit epoch events, oldest first',
    ...prefixed('epochs', EPOCH_FIELDS),
    nextAfter: 'set when the page is full: ask again with after = nextAfter',
  },
  JobLogs: {
    jobId: 'the job',
    lines: "the worker's lines about the job, oldest first (the last 500 are kept; they expire with the job)",
    'lines.time': 'when the worker wrote it (ISO 8601)',
    'lines.level': 'debug (checkpoints), info, warn (a failed attempt, a timeout, a lost worker) or error (the job failed)',
    'lines.msg':
      'what happened: taken, started or resumed from a checkpoint, checkpoint written, attempt failed (with the reason), handed back, cancelled, timed out, succeeded',
  },
};

// ---- examples (a job of the d2l recipe, smaller) ----

const exampleSpec = {
  model: { kind: 'concise', numHiddens: 128 },
  train: { epochs: 100, seed: 1 },
  report: { prefixes: ['time traveller'] },
  name: 'concise 128',
  idempotencyKey: 'run-1',
};
const resolvedSpec = {
  model: { kind: 'concise', numHiddens: 128, numLayers: 1 },
  data: { corpus: 'timemachine', maxTokens: 10000, batchSize: 32, numSteps: 35, sampling: 'sequential' },
  train: { epochs: 100, lr: 1, clipTheta: 1, seed: 1 },
  report: { predictEvery: 10, prefixes: ['time traveller'], numPreds: 50 },
  name: 'concise 128',
  idempotencyKey: 'run-1',
};
const estimate = { params: 81_692, tokens: 10_000, tokenEpochs: 1_000_000, teraflops: 0.49, memoryMb: 96 };
const epochExample = {
  epoch: 40,
  epochs: 100,
  perplexity: 9.87,
  tokensPerSec: 61_200,
  elapsedMs: 6_480,
  samples: [{ prefix: 'time traveller', text: 'time traveller the the the the the the the the the the t' }],
};
const queuedJob = {
  id: JOB_ID,
  name: 'concise 128',
  state: 'queued',
  spec: resolvedSpec,
  createdAt: '2025-03-05T14:03:11.204Z',
  progress: { epoch: 0, epochs: 100 },
  lastSeq: 1,
  lastEpochs: [],
  estimate,
};
const runningJob = {
  ...queuedJob,
  state: 'running',
  startedAt: '2025-03-05T14:03:11.530Z',
  progress: { epoch: 40, epochs: 100 },
  perplexity: 9.87,
  tokensPerSec: 61_200,
  engine: 'native',
  backend: 'cpu',
  checkpointEpoch: 40,
  lastSeq: 42,
  attempt: 1,
  lastEpochs: [epochExample],
};
const cancelledJob = { ...runningJob, state: 'cancelled', finishedAt: '2025-03-05T14:03:18.002Z', lastSeq: 43 };

const PARTS: OpenApiPart[] = [experimentsDoc, corporaDoc, generateDoc, modelDoc, modelsDoc, serviceDoc];

/** The union of the parts' paths; two parts documenting one method of one path is a mistake. */
function unionOfPaths(parts: ReturnType<OpenApiPart['paths']>[]): Record<string, Record<string, JsonObject>> {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const part of parts) {
    for (const [path, item] of Object.entries(part)) {
      for (const method of Object.keys(item)) if (paths[path]?.[method]) throw new Error(`${method} ${path} is documented twice`);
      paths[path] = { ...paths[path], ...item };
    }
  }
  return paths;
}

export function buildOpenApi(opts: { auth: boolean }): Record<string, unknown> {
  const security = opts.auth ? [{ bearer: [] }] : [];
  const ctx = docContext(opts.auth);
  const schemas: Record<string, Record<string, unknown>> = {
    JobSpec: jsonSchema(JobSpec, 'input'),
    JobView: jsonSchema(JobView),
    JobList: jsonSchema(JobList),
    JobEvent: jsonSchema(JobEvent),
    EpochEvent: jsonSchema(EpochEvent),
    Epochs: jsonSchema(Epochs),
    JobLogs: jsonSchema(JobLogs),
    ...problemSchemas(),
    Deleted: jsonSchema(z.object({ jobId: z.string(), deleted: z.literal(true) })),
    ...Object.assign({}, ...PARTS.map((p) => p.schemas?.() ?? {})),
  };
  schemas.JobSpec.description = "A training job: d2l's recipe with every field optional ({} = the book's defaults).";
  schemas.JobSpec.example = exampleSpec;
  schemas.JobView.description = 'A job as the API shows it (never with a custom corpus text unless asked for).';
  schemas.JobEvent.description = "One event of a job's history: a state change or an epoch.";
  for (const [name, s] of Object.entries(schemas)) describeFields(s, FIELD_DOCS[name] ?? {});

  return {
    openapi: '3.1.0',
    info: {
      title: 'lstm-trainer',
      version: '1',
      description:
        "Train d2l's character-level LSTM as a service: submit jobs, follow them, generate text.\n\n" +
        'Errors are `application/problem+json` (RFC 9457) and name the fields at fault. Writes take JSON only. ' +
        'A method a path does not have answers 405 with an `Allow` header listing those it has. ' +
        'The same operations are offered over gRPC (lstm_trainer.v1.LstmTrainer, with reflection).' +
        (opts.auth ? '\n\nAPI keys are on: every route but health, the docs and the dashboard page needs `Authorization: Bearer <key>`.' : ''),
    },
    components: {
      ...(opts.auth ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of the API_KEYS' } } } : {}),
      schemas,
    },
    security,
    tags: [
      { name: 'jobs', description: 'submit, list, read, cancel and delete training jobs (with API keys on, each key sees only its own; ADMIN_KEYS see all)' },
      { name: 'experiments', description: 'sweeps: one job per point of a grid or list of specs, and their results side by side' },
      { name: 'events', description: "a job's history and live progress" },
      { name: 'generation', description: "text from a job's model" },
      { name: 'corpora', description: 'your own texts, uploaded once and named by jobs (docs/corpora.md)' },
      { name: 'models', description: "a job's model as a file: PyTorch safetensors, ONNX, TensorFlow.js, checkpoint (docs/export.md)" },
      { name: 'service', description: 'health, metrics and this document' },
    ],
    paths: unionOfPaths([
      {
        '/v1/jobs': {
          post: {
            tags: ['jobs'],
            summary: 'Submit a training job',
            description:
              'Validates the spec, judges its estimated cost against the caps, and queues it. A repeated idempotencyKey with the same spec returns the existing job.',
            requestBody: {
              required: true,
              description: 'a JSON object; {} = every default',
              content: { 'application/json': { schema: ref('JobSpec'), example: exampleSpec } },
            },
            responses: {
              '201': ok('queued', 'JobView', queuedJob, { Location: { description: 'the new job: /v1/jobs/{id}', schema: { type: 'string' } } }),
              '200': ok('an existing job with the same idempotencyKey and spec', 'JobView', queuedJob, {
                Location: { description: 'the job: /v1/jobs/{id}', schema: { type: 'string' } },
              }),
              '400': problem(400, 'an invalid spec (every field at fault named in errors[]), or one whose estimated cost is above a cap (MAX_JOB_TFLOP, …)'),
              '409': problem(409, 'the idempotencyKey already names a job of another spec'),
              ...writes,
              '429': tooMany(
                `the submit rate (RATE_LIMIT_SUBMITS per RATE_LIMIT_WINDOW_SECONDS), waiting jobs per client (MAX_QUEUED_PER_CLIENT) or the queue (MAX_QUEUED_JOBS) is full.${ctx.authThrottle}`,
              ),
              ...ctx.api,
            },
          },
          get: {
            tags: ['jobs'],
            summary: 'List jobs, newest first',
            parameters: queryParams(ListQuery),
            responses: {
              '200': ok('a page of jobs; pass nextCursor as cursor for the next', 'JobList', {
                jobs: [runningJob],
                nextCursor: 'MTc0MTE4Mzc5MTIwNDpqMG1hYmMxMmRlM2Y0ZzVoNmk3aw',
              }),
              '400': problem(400, 'an invalid query parameter (named)'),
              ...ctx.authFailures,
              ...ctx.api,
            },
          },
        },
        '/v1/jobs/{id}': {
          get: {
            tags: ['jobs'],
            summary: 'A job',
            description: '?include=corpus adds a custom corpus text (left out by default: it can be 2 MB).',
            parameters: [jobIdParam, ...queryParams(JobQuery)],
            responses: {
              '200': ok('the job', 'JobView', runningJob),
              '400': problem(400, 'a malformed id or query parameter (named)'),
              '404': problem(404, 'no job with this id'),
              ...ctx.authFailures,
              ...ctx.api,
            },
          },
          delete: {
            tags: ['jobs'],
            summary: 'Delete a job',
            description:
              'A queued or running job is cancelled first (its training process stops); then its record, history, checkpoints and log are removed in one step. 404 afterwards.',
            parameters: [jobIdParam],
            responses: {
              '200': ok('deleted', 'Deleted', { jobId: JOB_ID, deleted: true }),
              '400': problem(400, 'a malformed id'),
              '404': problem(404, "no job with this id (or another key's)"),
              ...ctx.authFailures,
              ...ctx.api,
            },
          },
        },
        '/v1/jobs/{id}/epochs': {
          get: {
            tags: ['events'],
            summary: 'Epoch history (for pollers), a page at a time',
            description: 'limit ≤ 1000; nextAfter is set when the page is full and more may follow.',
            parameters: [jobIdParam, ...queryParams(EpochsQuery)],
            responses: {
              '200': ok('epochs > after, oldest first', 'Epochs', { jobId: JOB_ID, after: 39, epochs: [epochExample] }),
              '400': problem(400, 'a malformed id or query parameter (named)'),
              '404': problem(404, 'no job with this id'),
              ...ctx.authFailures,
              ...ctx.api,
            },
          },
        },
        '/v1/jobs/{id}/logs': {
          get: {
            tags: ['jobs'],
            summary: "The job's log: the worker's lines about it",
            description:
              'Taken by a worker, started or resumed from a checkpoint, checkpoints written, failed attempts and crashes (signal or exit code and the last stderr line), handed back, cancelled, timed out, succeeded. The last 500 lines, oldest first.',
            parameters: [jobIdParam],
            responses: {
              '200': ok('the lines, oldest first', 'JobLogs', {
                jobId: JOB_ID,
                lines: [
                  { time: '2025-03-05T14:03:11.530Z', level: 'info', msg: 'taken by worker w1a2b3c on gpu-01 (attempt 1 of 3)' },
                  { time: '2025-03-05T14:03:11.560Z', level: 'info', msg: 'attempt 1 started from epoch 1 (engine native/cuda, training process 4242)' },
                  { time: '2025-03-05T14:03:11.700Z', level: 'debug', msg: 'checkpoint written at epoch 1 (812 345 bytes)' },
                  { time: '2025-03-05T14:03:27.910Z', level: 'info', msg: 'succeeded: 100 epochs, perplexity 1.31, 16.4 s' },
                ],
              }),
              '400': problem(400, 'a malformed id (named)'),
              '404': problem(404, 'no job with this id'),
              ...ctx.authFailures,
              ...ctx.api,
            },
          },
        },
        '/v1/jobs/{id}/events': {
          get: {
            tags: ['events'],
            summary: 'Server-Sent Events: the history, then live events, until the final state',
            description:
              'Each event: `id: <seq>`, `event: state|epoch`, `data: <JobEvent JSON>`. Resume with the Last-Event-ID header or ?fromSeq=N (events with seq > N). ' +
              'Comment lines (`: heartbeat`) keep the connection alive. The stream ends after the final state event; an `event: error` (problem JSON) ends it on a server fault.',
            parameters: [
              jobIdParam,
              ...queryParams(EventsQuery),
              {
                name: 'Last-Event-ID',
                in: 'header',
                required: false,
                description: 'resume after this seq (sent by EventSource on reconnect)',
                schema: { type: 'string', pattern: '^[0-9]+$' },
                example: '12',
              },
            ],
            responses: {
              '200': {
                description: 'the event stream',
                content: {
                  'text/event-stream': {
                    schema: ref('JobEvent'),
                    example: `id: 1\nevent: state\ndata: {"seq":1,"time":"2025-03-05T14:03:11.204Z","type":"state","state":"queued"}\n\nid: 2\nevent: state\ndata: {"seq":2,"time":"2025-03-05T14:03:11.530Z","type":"state","state":"running","attempt":1}\n\nid: 3\nevent: epoch\ndata: {"seq":3,"time":"2025-03-05T14:03:11.690Z","type":"epoch","epoch":1,"epochs":100,"perplexity":25.3,"tokensPerSec":60400,"elapsedMs":160}\n\n`,
                  },
                },
              },
              '204': {
                description:
                  'the job has finished and the client has every event (fromSeq / Last-Event-ID ≥ its last seq): nothing follows, and EventSource stops reconnecting',
              },
              '400': problem(400, 'a malformed id, fromSeq or Last-Event-ID (named)'),
              '404': problem(404, 'no job with this id'),
              '429': tooMany(`the client has MAX_STREAMS_PER_CLIENT event streams open (SSE and gRPC together).${ctx.authThrottle}`),
              ...ctx.api,
            },
          },
        },
        '/v1/jobs/{id}/cancel': {
          post: {
            tags: ['jobs'],
            summary: 'Cancel a job',
            description: 'Queued: removed from the queue. Running: stops within one minibatch; its last checkpoint is the last epoch published.',
            parameters: [jobIdParam],
            requestBody: {
              required: true,
              description: '{} (every write takes a JSON body)',
              content: { 'application/json': { schema: { type: 'object', description: 'no fields', additionalProperties: false }, example: {} } },
            },
            responses: {
              '200': ok('the cancelled job', 'JobView', cancelledJob),
              '400': problem(400, 'a malformed id, or no body'),
              '404': problem(404, 'no job with this id'),
              '409': {
                ...problem(409, 'the job has already finished'),
                content: {
                  [PROBLEM_TYPE]: {
                    schema: ref('Problem'),
                    example: {
                      type: 'urn:lstm-trainer:problem:failed-precondition',
                      title: 'Conflict',
                      status: 409,
                      detail: `job ${JOB_ID} has already finished (succeeded)`,
                    },
                  },
                },
              },
              ...writes,
              ...ctx.authFailures,
              ...ctx.api,
            },
          },
        },
      },
      ...PARTS.map((p) => p.paths(ctx)),
    ]),
  };
}
