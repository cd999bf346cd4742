// JobView: a job as the API shows it (src/jobs/job-view.ts makes it), its list page, and the
// example job of the document at three moments (queued, running, cancelled).
import { z } from 'zod';
import { EpochEvent, epochExample, JobState, JobSummary } from './events.js';
import { JOB_ID } from './params.js';

const int = () => z.number().int();

export const JobView = z.object({
  id: z.string().describe('the job id (20 characters: "j" then 0-9 a-z)'),
  name: z.string().optional().describe('the name given at submission'),
  owner: z.string().optional().describe("with API keys on: the submitting key's name (API_KEYS=name:KEY), else its fingerprint (never the key)"),
  experiment: z.string().optional().describe('the experiment the job was made in (POST /v1/experiments)'),
  state: JobState.describe('queued → running → succeeded | failed | cancelled (running → queued again when a worker is lost or an attempt will be retried)'),
  spec: z
    .unknown()
    .describe(
      'the job spec with every default filled in (see JobSpec); a custom corpus text is shown as data.corpus = {bytes, sha256} (its UTF-8 size and SHA-256), the text itself only in GET /v1/jobs/{id}?include=corpus',
    ),
  createdAt: z.string().describe('when it was submitted (RFC 3339)'),
  startedAt: z.string().optional().describe('when a worker first started it (RFC 3339)'),
  finishedAt: z.string().optional().describe('when it reached its final state (RFC 3339)'),
  progress: z
    .object({ epoch: int().describe('the last epoch finished (0 before the first)'), epochs: int().describe('train.epochs') })
    .describe('epochs done out of epochs to do'),
  perplexity: z.number().optional().describe('perplexity of the last epoch finished'),
  tokensPerSec: z.number().optional().describe('characters per second of the last epoch finished'),
  engine: z.string().optional().describe('compute engine of the worker training it'),
  backend: z.string().optional().describe('device or backend of that engine'),
  summary: JobSummary.optional().describe('set when it succeeded'),
  error: z.string().optional().describe('why it failed'),
  checkpointEpoch: int().optional().describe('epoch of the latest checkpoint (generation reads it; a resumed job continues after it)'),
  lastSeq: int().optional().describe('seq of its latest event (GET /v1/jobs/{id}/events?fromSeq=lastSeq follows only new events)'),
  attempt: int().optional().describe('the current attempt (1-based; a lost worker or a failed attempt retries up to JOB_ATTEMPTS)'),
  lastEpochs: z.array(EpochEvent).describe('the last five epoch events'),
  estimate: z
    .object({
      params: int().describe('model parameters'),
      tokens: int().describe('characters of the corpus used (data.maxTokens or fewer)'),
      tokenEpochs: int().describe('tokens × epochs'),
      teraflops: z.number().describe('training work in 10¹² floating-point operations'),
      memoryMb: z.number().describe('peak worker memory in MB'),
    })
    .optional()
    .describe('the cost estimated at submission, which the caps (MAX_JOB_TFLOP, MAX_JOB_MEMORY_MB, MAX_JOB_TOKEN_EPOCHS) judge'),
  data: z
    .object({
      tokenizer: z.string().describe('data.tokenizer'),
      totalTokens: int().describe('tokens of the whole corpus'),
      maxTokens: int().describe('the cut that applies (data.maxTokens; for an uploaded corpus the whole of it unless given)'),
      trainTokens: int().describe('tokens trained on (after the cut, before the held-out part)'),
      validTokens: int().describe('tokens held out for validPerplexity (data.validFraction)'),
      truncated: z.boolean().describe('whether the cut leaves part of the corpus out'),
      vocabSize: int().describe('vocabulary size, <unk> included'),
      topTokens: z
        .array(z.tuple([z.string(), int()]))
        .optional()
        .describe('the most frequent tokens and their counts'),
    })
    .optional()
    .describe("the corpus as measured at submission under the job's tokenizer: the cut that applies and the vocabulary"),
  init: z
    .object({
      fromJob: z.string().optional().describe('the job whose latest checkpoint it started from'),
      model: z.string().optional().describe('the uploaded model it started from (POST /v1/models)'),
      epoch: int().optional().describe('the epoch that checkpoint or model had reached (a model file says it in its metadata, when it does)'),
      perplexity: z.number().optional().describe('the perplexity it had reached there'),
    })
    .optional()
    .describe("where the job's weights started (spec.init, resolved at submission)"),
});

export const JobList = z.object({
  jobs: z.array(JobView).describe('a page of jobs, newest first'),
  nextCursor: z.string().optional().describe('set when more jobs follow: pass it as cursor'),
});

/** The example job's spec as its view shows it: every default filled in. */
const resolvedSpec = {
  model: { kind: 'concise', numHiddens: 128, numLayers: 1 },
  data: { corpus: 'timemachine', maxTokens: 10000, batchSize: 32, numSteps: 35, sampling: 'sequential' },
  train: { epochs: 100, lr: 1, clipTheta: 1, seed: 1 },
  report: { predictEvery: 10, prefixes: ['time traveller'], numPreds: 50 },
  name: 'concise 128',
  idempotencyKey: 'run-1',
};
const estimate = { params: 81_692, tokens: 10_000, tokenEpochs: 1_000_000, teraflops: 0.49, memoryMb: 96 };

export const queuedJob = {
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
export const runningJob = {
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
export const cancelledJob = { ...runningJob, state: 'cancelled', finishedAt: '2025-03-05T14:03:18.002Z', lastSeq: 43 };
