// The document's share for routes/jobs.ts: submit (JobSpec), list, read, epochs, logs, cancel and
// delete a job.
import { z } from 'zod';
import { JobSpec } from '../../../train/spec.js';
import { ListQuery } from '../../schemas.js';
import { EpochsQuery, JobQuery } from '../schemas.js';
import { EpochEvent, epochExample } from './events.js';
import { cancelledJob, JobList, JobView, queuedJob, runningJob } from './job-view.js';
import { describeFields, jsonSchema, ref } from './json-schema.js';
import { JOB_ID, jobIdParam, queryParams } from './params.js';
import { ok, type OpenApiPart, PROBLEM_TYPE, problem, tooMany, writes } from './responses.js';

/** The job spec's fields, by dotted path (the spec is train/spec.ts's, shared with gRPC and the CLI). */
const JOB_SPEC_DOCS: Record<string, string> = {
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
  'report.prefixes': "prefixes to continue in the samples (d2l-chars: each needs a letter); unset: the book's for the book, else the corpus's own first words",
  'report.numPreds': 'tokens generated per sample: characters, or words for the words tokenizer (d2l: 50)',
  init: 'start from a trained model instead of fresh weights: {fromJob: "<job id>"} (its latest checkpoint) or {model: "<model id>"} (POST /v1/models); model.* must be its architecture, and the job tokenises its corpus with the model\'s vocabulary (characters it lacks become <unk>)',
  'init.fromJob': 'a job with a checkpoint (finished, cancelled or running): its weights at submission time',
  'init.model': 'an uploaded model (POST /v1/models)',
  name: 'a name to show in lists and the dashboard',
  idempotencyKey:
    'resubmitting the same spec under the same key returns the same job (200) instead of a new one; another spec under it is a 409 (keys are per API key when keys are on)',
  tags: 'labels to filter lists by (GET /v1/jobs?tag=); up to 16, each 1-64 of A-Z a-z 0-9 _ . : = @ -',
};

const exampleSpec = {
  model: { kind: 'concise', numHiddens: 128 },
  train: { epochs: 100, seed: 1 },
  report: { prefixes: ['time traveller'] },
  name: 'concise 128',
  idempotencyKey: 'run-1',
};

const Epochs = z.object({
  jobId: z.string().describe('the job'),
  after: z.number().int().describe('the after asked for: epochs > after are listed'),
  epochs: z.array(EpochEvent).describe('up to limit epoch events, oldest first'),
  nextAfter: z.number().int().optional().describe('set when the page is full: ask again with after = nextAfter'),
});
const JobLogs = z.object({
  jobId: z.string().describe('the job'),
  lines: z
    .array(
      z.object({
        time: z.string().describe('when the worker wrote it (ISO 8601)'),
        level: z
          .enum(['debug', 'info', 'warn', 'error'])
          .describe('debug (checkpoints), info, warn (a failed attempt, a timeout, a lost worker) or error (the job failed)'),
        msg: z
          .string()
          .describe(
            'what happened: taken, started or resumed from a checkpoint, checkpoint written, attempt failed (with the reason), handed back, cancelled, timed out, succeeded',
          ),
      }),
    )
    .describe("the worker's lines about the job, oldest first (the last 500 are kept; they expire with the job)"),
});
const Deleted = z.object({ jobId: z.string().describe('the deleted job'), deleted: z.literal(true).describe('always true') });

function jobSpecSchema() {
  const s = jsonSchema(JobSpec, 'input');
  s.description = "A training job: d2l's recipe with every field optional ({} = the book's defaults).";
  s.example = exampleSpec;
  describeFields(s, JOB_SPEC_DOCS);
  return s;
}

export const jobsDoc: OpenApiPart = {
  schemas: () => ({
    JobSpec: jobSpecSchema(),
    JobView: jsonSchema(JobView.describe('A job as the API shows it (never with a custom corpus text unless asked for).')),
    JobList: jsonSchema(JobList),
    Epochs: jsonSchema(Epochs),
    JobLogs: jsonSchema(JobLogs),
    Deleted: jsonSchema(Deleted),
  }),
  paths: (ctx) => ({
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
  }),
};
