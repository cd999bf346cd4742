// GET /docs/openapi.json (and the page at /docs) — OpenAPI 3.1 generated from the same zod schemas
// the routes validate with (z.toJSONSchema); response shapes are described here with zod too. The
// document is complete by rule (test/api/dashboard/docs.test.ts walks it): every field has a
// description (FIELD_DOCS below, by path), every operation lists every status it can answer and
// has an example request (where it takes one) and an example answer.
import { z } from 'zod';
import { GenerateRequest, JOB_STATES, ListQuery } from '../schemas.js';
import { JobSpec } from '../../train/spec.js';
import { EpochsQuery, ModelQuery, EventsQuery, JobQuery } from './schemas.js';
import { MODEL_UPLOAD_MAX_BYTES } from '../../jobs/models.js';
import { ExperimentRequest } from '../../jobs/experiments.js';

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
const ModelView = z.object({
  id: z.string(),
  kind: z.enum(['scratch', 'concise']),
  numHiddens: z.number().int(),
  numLayers: z.number().int(),
  vocabSize: z.number().int(),
  vocab: z.array(z.string()),
  bytes: z.number().int(),
  sha256: z.string(),
  uploadedAt: z.string(),
  epoch: z.number().int().optional(),
  perplexity: z.number().optional(),
});
const ModelList = z.object({ models: z.array(ModelView) });
const JobList = z.object({ jobs: z.array(JobView), nextCursor: z.string().optional() });
const ExperimentView = z.object({
  id: z.string(),
  name: z.string().optional(),
  owner: z.string().optional(),
  createdAt: z.string(),
  varied: z.array(z.string()),
  jobs: z.array(
    z.object({
      id: z.string(),
      name: z.string().optional(),
      values: z.record(z.string(), z.unknown()),
      state: z.enum([...JOB_STATES, 'deleted']),
      epoch: z.number().int(),
      epochs: z.number().int(),
      finalPerplexity: z.number().optional(),
      bestPerplexity: z.number().optional(),
      tokensPerSec: z.number().optional(),
      elapsedMs: z.number().optional(),
    }),
  ),
});
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
const GenerateResponse = z.object({ jobId: z.string(), prefix: z.string(), generated: z.string(), text: z.string() });
const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

function schema(s: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  void $schema;
  return rest;
}

// ---- descriptions of every field, by dotted path (array items and union branches add nothing) ----

const CorpusView = z.object({
  id: z.string(),
  bytes: z.number().int(),
  characters: z.number().int(),
  preview: z.string(),
  createdAt: z.string(),
  created: z.boolean().optional(),
});
const CorpusList = z.object({ corpora: z.array(CorpusView) });
const CORPUS_FIELDS: Record<string, string> = {
  id: 'the corpus id: SHA-256 (hex) of its bytes; jobs name it as data.corpus = {id}',
  bytes: 'size in bytes (UTF-8)',
  characters: 'Unicode code points',
  preview: 'its first 200 characters',
  createdAt: 'when it was first uploaded (RFC 3339)',
  created: 'on upload: false when the same bytes were already stored (the same corpus)',
};
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

const MODEL_FIELDS: Record<string, string> = {
  id: 'the model id ("m" then 19 hex digits of the file\'s SHA-256: the same file, the same id); a job starts from it with init: {model: id}',
  kind: 'scratch (the 14 seed tensors) or concise (rnn.* and linear.*), from the tensor names',
  numHiddens: 'hidden units, from the tensor shapes',
  numLayers: 'LSTM layers (rnn.weight_ih_l0, _l1, …)',
  vocabSize: "tokens of its vocabulary (the output layer's rows)",
  vocab: 'index → token, from __metadata__.vocab; index 0 is <unk>',
  bytes: "the file's size",
  sha256: "the file's SHA-256 (hex)",
  uploadedAt: 'when it was first uploaded (RFC 3339)',
  epoch: 'the epoch its __metadata__ says it was trained to, when it says',
  perplexity: 'the perplexity its __metadata__ gives, when it does',
};

export const FIELD_DOCS: Record<string, Record<string, string>> = {
  ModelView: MODEL_FIELDS,
  ModelList: { models: 'uploaded models, newest first', ...prefixed('models', MODEL_FIELDS) },
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
  ExperimentRequest: {
    name: 'the experiment\'s name; each job without a name of its own is named "<name> <varied values>"',
    base: 'the job spec every point starts from (see JobSpec)',
    grid: 'dotted spec paths → the values each takes ({"train.lr": [0.5, 1, 2], "model.kind": ["scratch", "concise"]}): one job per combination, at most 100',
    specs: 'instead of a grid: job specs, each laid over the base (objects merge field by field), at most 100',
  },
  Deleted: { jobId: 'the deleted job', deleted: 'always true' },
  ExperimentView: {
    id: 'the experiment id (20 characters: "x" then 0-9 a-z)',
    name: 'the name given',
    owner: "with API keys on: the creating key's name, else its fingerprint",
    createdAt: 'when it was created (RFC 3339)',
    varied: 'the dotted spec paths whose values differ between the jobs',
    jobs: 'one row per job, in the order of the points',
    'jobs.id': 'the job id',
    'jobs.name': 'the job name',
    'jobs.values': "this job's values of the varied paths",
    'jobs.state': "the job's state; deleted when it has been deleted since",
    'jobs.epoch': 'epochs published so far',
    'jobs.epochs': 'epochs in all',
    'jobs.finalPerplexity': 'the final perplexity (or the latest while running)',
    'jobs.bestPerplexity': 'the lowest perplexity of any epoch',
    'jobs.tokensPerSec': 'training speed of the latest epoch',
    'jobs.elapsedMs': 'training time (ms)',
  },
  GenerateRequest: {
    prefix: "text to continue, read as the job's tokenizer reads its corpus (d2l-chars: needs a letter, cleaned as the corpus is)",
    numChars: 'characters to generate',
    temperature: 'sampling temperature; 0 or unset = greedy (d2l predict_ch8)',
    topK: 'sample among the k most likely characters only',
    seed: 'seed of the sampling (same seed, same text)',
  },
  JobView: JOB_FIELDS,
  CorpusView: CORPUS_FIELDS,
  CorpusList: { corpora: 'the uploaded corpora, newest first', ...prefixed('corpora', CORPUS_FIELDS) },
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
  GenerateResponse: {
    jobId: 'the job whose checkpoint generated it',
    prefix: 'the prefix as the model read it (cleaned as the corpus is)',
    generated: 'the generated characters (numChars of them)',
    text: 'prefix + generated',
  },
  Problem: {
    type: 'a URN naming the kind of problem (urn:lstm-trainer:problem:…)',
    title: 'the HTTP status text',
    status: 'the HTTP status code',
    detail: 'what went wrong, in words',
    errors: 'the fields at fault (invalid requests, conflicts, refused headers)',
    'errors.field': 'dotted path of the field (model.numHiddens, body, content-type, id, …)',
    'errors.message': 'what is wrong with it',
  },
  Health: { status: '"ok" (healthz) or "ready" (readyz)' },
};

const PARAM_DOCS: Record<string, string> = {
  id: 'the job id, as POST /v1/jobs answered it',
  state: 'only jobs in this state',
  limit: 'page size',
  cursor: "the previous page's nextCursor",
  include: '"corpus": include a custom corpus text in spec.data.corpus',
  after: 'epochs > after (0: from the first)',
  fromSeq: 'events with seq > fromSeq (as Last-Event-ID; the larger of the two wins)',
  'Last-Event-ID': 'resume after this seq (sent by EventSource on reconnect)',
  Accept: 'text/event-stream: stream the text as it is generated',
  format: "safetensors (the PyTorch state dict, default), onnx, or checkpoint (this service's own file); for tfjs use /model/model.json",
  tag: 'only jobs carrying this tag (spec.tags)',
  experiment: 'only the jobs of this experiment',
  name: 'only jobs of exactly this name',
};

/** Sets `description` on every property of a JSON schema from `docs` (by dotted path), recursively. */
function describeFields(s: unknown, docs: Record<string, string>, path = ''): void {
  if (!s || typeof s !== 'object') return;
  const o = s as Record<string, unknown>;
  const props = o.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [name, sub] of Object.entries(props ?? {})) {
    const p = path ? `${path}.${name}` : name;
    if (docs[p] && !sub.description) sub.description = docs[p];
    describeFields(sub, docs, p);
  }
  if (o.items) describeFields(o.items, docs, path);
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) for (const b of (o[k] as unknown[] | undefined) ?? []) describeFields(b, docs, path);
}

/** Query parameters of an object schema, as OpenAPI parameter objects. */
function queryParams(s: z.ZodObject): Record<string, unknown>[] {
  const js = schema(s, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, sch]) => ({
    name,
    in: 'query',
    required: js.required?.includes(name) ?? false,
    description: PARAM_DOCS[name],
    schema: sch,
  }));
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const problemType = 'application/problem+json';

// ---- examples (a job of the d2l recipe, smaller) ----

const JOB_ID = 'j0mabc12de3f4g5h6i7k';
const exampleModel = {
  id: 'm3f1c2a9b8d7e6f5a4b3',
  kind: 'concise',
  numHiddens: 256,
  numLayers: 1,
  vocabSize: 28,
  vocab: ['<unk>', ' ', 'e', 't', 'a', 'i', 'n', 'o', 's', 'h', 'r', 'd', 'l', 'm', 'u', 'c', 'f', 'w', 'g', 'y', 'p', 'b', 'v', 'k', 'x', 'z', 'j', 'q'],
  bytes: 1_222_000,
  sha256: '3f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a',
  uploadedAt: '2025-03-05T15:20:00.000Z',
  epoch: 5,
  perplexity: 9.8,
};
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
const corpusExample = {
  id: '3f1c2a9e5b7d4c6f8a0e1d2c3b4a59687766554433221100ffeeddccbbaa9988',
  bytes: 52_431_872,
  characters: 42_837_076,
  preview: 'Однажды вечером, в 1895 году, Путешественник во Времени рассказал нам о своей машине.',
  createdAt: '2025-03-05T14:01:02.117Z',
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
const exampleExperimentRequest = {
  name: 'lr-sweep',
  base: { model: { numHiddens: 64 }, train: { epochs: 50 }, tags: ['lr'] },
  grid: { 'train.lr': [0.5, 1, 2], 'model.kind': ['scratch', 'concise'] },
};
const exampleExperiment = {
  id: 'x0mabc12de3f4a5b6c7d',
  name: 'lr-sweep',
  createdAt: '2025-03-05T14:03:11.204Z',
  varied: ['train.lr', 'model.kind'],
  jobs: [
    {
      id: JOB_ID,
      name: 'lr-sweep lr=0.5 kind=scratch',
      values: { 'train.lr': 0.5, 'model.kind': 'scratch' },
      state: 'succeeded',
      epoch: 50,
      epochs: 50,
      finalPerplexity: 7.91,
      bestPerplexity: 7.91,
      tokensPerSec: 61200,
      elapsedMs: 8120,
    },
    {
      id: 'j0mabc12de3f4g5h6i7m',
      name: 'lr-sweep lr=0.5 kind=concise',
      values: { 'train.lr': 0.5, 'model.kind': 'concise' },
      state: 'running',
      epoch: 12,
      epochs: 50,
      finalPerplexity: 11.2,
      bestPerplexity: 11.2,
      tokensPerSec: 88100,
      elapsedMs: 1904,
    },
  ],
};
const cancelledJob = { ...runningJob, state: 'cancelled', finishedAt: '2025-03-05T14:03:18.002Z', lastSeq: 43 };
const problems = {
  400: {
    type: 'urn:lstm-trainer:problem:invalid-request',
    title: 'Bad Request',
    status: 400,
    detail: 'model.numHiddens must be ≤ 1024',
    errors: [{ field: 'model.numHiddens', message: 'model.numHiddens must be ≤ 1024' }],
  },
  401: {
    type: 'urn:lstm-trainer:problem:unauthorized',
    title: 'Unauthorized',
    status: 401,
    detail: 'this route needs an API key: Authorization: Bearer <key>',
  },
  403: {
    type: 'urn:lstm-trainer:problem:forbidden',
    title: 'Forbidden',
    status: 403,
    detail: 'requests from origin "https://evil.example" are refused (this server\'s own pages, or ALLOWED_ORIGINS)',
    errors: [{ field: 'origin', message: 'requests from origin "https://evil.example" are refused (this server\'s own pages, or ALLOWED_ORIGINS)' }],
  },
  404: { type: 'urn:lstm-trainer:problem:not-found', title: 'Not Found', status: 404, detail: `job ${JOB_ID} not found` },
  405: {
    type: 'urn:lstm-trainer:problem:method-not-allowed',
    title: 'Method Not Allowed',
    status: 405,
    detail: 'PUT is not allowed on /v1/jobs/{id}: DELETE, GET, HEAD',
  },
  408: {
    type: 'urn:lstm-trainer:problem:request-timeout',
    title: 'Request Timeout',
    status: 408,
    detail: 'the request did not arrive within REQUEST_TIMEOUT_MS',
  },
  409: {
    type: 'urn:lstm-trainer:problem:failed-precondition',
    title: 'Conflict',
    status: 409,
    detail: `job ${JOB_ID} has no checkpoint yet (the first is written after epoch 1)`,
  },
  413: {
    type: 'urn:lstm-trainer:problem:payload-too-large',
    title: 'Payload Too Large',
    status: 413,
    detail: 'the request body is larger than 4194304 bytes',
    errors: [{ field: 'body', message: 'request body must be at most 4194304 bytes' }],
  },
  415: {
    type: 'urn:lstm-trainer:problem:unsupported-media-type',
    title: 'Unsupported Media Type',
    status: 415,
    detail: 'send the body as application/json',
    errors: [{ field: 'content-type', message: 'content-type must be application/json' }],
  },
  429: {
    type: 'urn:lstm-trainer:problem:resource-exhausted',
    title: 'Too Many Requests',
    status: 429,
    detail: 'too many submissions: 60 per 60 s per client (RATE_LIMIT_SUBMITS); retry after 12 s',
  },
  500: { type: 'urn:lstm-trainer:problem:internal', title: 'Internal Server Error', status: 500, detail: 'an internal error occurred; it has been logged' },
  503: { type: 'urn:lstm-trainer:problem:unavailable', title: 'Service Unavailable', status: 503, detail: 'the job store (Redis) is not reachable' },
} as const;
type ProblemStatus = keyof typeof problems;

const retryAfter = { 'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer' } } };
const problem = (status: ProblemStatus, description: string) => ({
  description,
  ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
  ...(status === 401 ? { headers: { 'WWW-Authenticate': { description: 'Bearer realm="lstm-trainer"', schema: { type: 'string' } } } } : {}),
  content: { [problemType]: { schema: ref('Problem'), example: problems[status] } },
});
const ok = (description: string, name: string, example: unknown, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: ref(name), example } },
});

/** What every route can answer besides its own statuses. */
function common(o: { auth: boolean; store: boolean }): Record<string, unknown> {
  return {
    ...(o.auth ? { '401': problem(401, 'no valid API key (API_KEYS is set): Authorization: Bearer <key>') } : {}),
    '403': problem(403, 'with API keys off: a Host or Origin this server does not answer to (another site, DNS rebinding); the header is named in errors[]'),
    '408': problem(408, 'the request did not arrive whole within REQUEST_TIMEOUT_MS (the connection is closed)'),
    ...(o.store ? { '503': problem(503, 'the job store (Redis) is unreachable, or the api process is shutting down; retry after Retry-After') } : {}),
    '500': problem(500, 'a server fault (logged; no details are given)'),
  };
}
const writes = {
  '413': problem(413, 'the body is larger than the limit (BODY_LIMIT_BYTES, 4 MiB by default)'),
  '415': problem(415, 'the body is not application/json (every write takes JSON, {} for no fields)'),
};
const tooMany = (what: string) => problem(429, `${what}; retry after Retry-After seconds`);

export function buildOpenApi(opts: { auth: boolean }): Record<string, unknown> {
  const security = opts.auth ? [{ bearer: [] }] : [];
  const authThrottle = opts.auth ? ' With API keys on, also after AUTH_FAIL_LIMIT failed authentications from the address.' : '';
  const api = common({ auth: opts.auth, store: true });
  const corpusIdParam = {
    name: 'id',
    in: 'path',
    required: true,
    description: 'a corpus id (64 hex digits: the SHA-256 of its bytes)',
    schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    example: corpusExample.id,
  };
  const idParam = {
    name: 'id',
    in: 'path',
    required: true,
    description: PARAM_DOCS.id,
    schema: { type: 'string', pattern: '^j[0-9a-z]{19}$' },
    example: JOB_ID,
  };
  const schemas: Record<string, Record<string, unknown>> = {
    JobSpec: schema(JobSpec, 'input'),
    GenerateRequest: schema(GenerateRequest, 'input'),
    JobView: schema(JobView),
    JobList: schema(JobList),
    JobEvent: schema(JobEvent),
    EpochEvent: schema(EpochEvent),
    Epochs: schema(Epochs),
    JobLogs: schema(JobLogs),
    CorpusView: schema(CorpusView),
    CorpusList: schema(CorpusList),
    GenerateResponse: schema(GenerateResponse),
    ModelView: schema(ModelView),
    ModelList: schema(ModelList),
    Problem: schema(Problem),
    ExperimentRequest: schema(ExperimentRequest, 'input'),
    ExperimentView: schema(ExperimentView),
    Deleted: schema(z.object({ jobId: z.string(), deleted: z.literal(true) })),
    Health: schema(z.object({ status: z.enum(['ok', 'ready']) })),
  };
  schemas.JobSpec.description = "A training job: d2l's recipe with every field optional ({} = the book's defaults).";
  schemas.JobSpec.example = exampleSpec;
  schemas.JobView.description = 'A job as the API shows it (never with a custom corpus text unless asked for).';
  schemas.JobEvent.description = "One event of a job's history: a state change or an epoch.";
  schemas.Problem.description = 'An error as RFC 9457 problem details (application/problem+json).';
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
    paths: {
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
              `the submit rate (RATE_LIMIT_SUBMITS per RATE_LIMIT_WINDOW_SECONDS), waiting jobs per client (MAX_QUEUED_PER_CLIENT) or the queue (MAX_QUEUED_JOBS) is full.${authThrottle}`,
            ),
            ...api,
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
            ...(opts.auth ? { '429': tooMany(`too many failed authentications from the address (AUTH_FAIL_LIMIT)`) } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          tags: ['jobs'],
          summary: 'A job',
          description: '?include=corpus adds a custom corpus text (left out by default: it can be 2 MB).',
          parameters: [idParam, ...queryParams(JobQuery)],
          responses: {
            '200': ok('the job', 'JobView', runningJob),
            '400': problem(400, 'a malformed id or query parameter (named)'),
            '404': problem(404, 'no job with this id'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
        delete: {
          tags: ['jobs'],
          summary: 'Delete a job',
          description:
            'A queued or running job is cancelled first (its training process stops); then its record, history, checkpoints and log are removed in one step. 404 afterwards.',
          parameters: [idParam],
          responses: {
            '200': ok('deleted', 'Deleted', { jobId: JOB_ID, deleted: true }),
            '400': problem(400, 'a malformed id'),
            '404': problem(404, "no job with this id (or another key's)"),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/experiments': {
        post: {
          tags: ['experiments'],
          summary: 'Create an experiment (a sweep)',
          description:
            'One job per point: every combination of the grid, or each of specs laid over base. Every point is validated as a full job spec, and MAX_JOB_TOKEN_EPOCHS and MAX_JOB_TFLOP apply to the sum, before any job is queued. Jobs cannot carry idempotency keys here.',
          requestBody: { required: true, content: { 'application/json': { schema: ref('ExperimentRequest'), example: exampleExperimentRequest } } },
          responses: {
            '201': ok('the experiment and its queued jobs', 'ExperimentView', exampleExperiment, {
              Location: { description: 'the experiment: /v1/experiments/{id}', schema: { type: 'string' } },
            }),
            '400': problem(
              400,
              "an invalid request or point (named: grid.<path> with the point's values, specs[i].<field>, base.<field>), or a sum of estimates above a cap",
            ),
            ...writes,
            '429': tooMany(
              `the submit rate, waiting jobs per client (MAX_QUEUED_PER_CLIENT) or the queue (MAX_QUEUED_JOBS) cannot take the experiment.${authThrottle}`,
            ),
            ...api,
          },
        },
      },
      '/v1/experiments/{id}': {
        get: {
          tags: ['experiments'],
          summary: "An experiment's table: each job's varied values, state and results",
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              description: 'the experiment id, as POST /v1/experiments answered it',
              schema: { type: 'string', pattern: '^x[0-9a-z]{19}$' },
              example: exampleExperiment.id,
            },
          ],
          responses: {
            '200': ok('the experiment', 'ExperimentView', exampleExperiment),
            '400': problem(400, 'a malformed id'),
            '404': problem(404, "no experiment with this id (or another key's)"),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/epochs': {
        get: {
          tags: ['events'],
          summary: 'Epoch history (for pollers), a page at a time',
          description: 'limit ≤ 1000; nextAfter is set when the page is full and more may follow.',
          parameters: [idParam, ...queryParams(EpochsQuery)],
          responses: {
            '200': ok('epochs > after, oldest first', 'Epochs', { jobId: JOB_ID, after: 39, epochs: [epochExample] }),
            '400': problem(400, 'a malformed id or query parameter (named)'),
            '404': problem(404, 'no job with this id'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/logs': {
        get: {
          tags: ['jobs'],
          summary: "The job's log: the worker's lines about it",
          description:
            'Taken by a worker, started or resumed from a checkpoint, checkpoints written, failed attempts and crashes (signal or exit code and the last stderr line), handed back, cancelled, timed out, succeeded. The last 500 lines, oldest first.',
          parameters: [idParam],
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
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
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
            idParam,
            ...queryParams(EventsQuery),
            {
              name: 'Last-Event-ID',
              in: 'header',
              required: false,
              description: PARAM_DOCS['Last-Event-ID'],
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
            '429': tooMany(`the client has MAX_STREAMS_PER_CLIENT event streams open (SSE and gRPC together).${authThrottle}`),
            ...api,
          },
        },
      },
      '/v1/corpora': {
        post: {
          tags: ['corpora'],
          summary: 'Upload a corpus (a UTF-8 text file)',
          description:
            'The body is the text itself, `Content-Type: text/plain` (charset utf-8 or none), streamed into the store: up to CORPUS_MAX_BYTES (64 MiB by default). ' +
            'Content-addressed: the id is the SHA-256 of the bytes, so the same text uploaded twice is one corpus (201 the first time, 200 after). Train on it with data.corpus = {id}.',
          requestBody: {
            required: true,
            description: 'the text (UTF-8)',
            content: { 'text/plain': { schema: { type: 'string', description: 'UTF-8 text' }, example: 'Однажды вечером…' } },
          },
          responses: {
            '201': ok('stored', 'CorpusView', corpusExample, { Location: { description: '/v1/corpora/{id}', schema: { type: 'string' } } }),
            '200': ok('the same bytes were already stored', 'CorpusView', { ...corpusExample, created: false }),
            '400': problem(400, 'not valid UTF-8, empty, or a charset other than UTF-8'),
            '413': problem(413, 'larger than CORPUS_MAX_BYTES (nothing is stored)'),
            '415': problem(415, 'not text/plain'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
        get: {
          tags: ['corpora'],
          summary: 'The uploaded corpora, newest first (never their texts)',
          responses: {
            '200': ok('the corpora', 'CorpusList', { corpora: [corpusExample] }),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/corpora/{id}': {
        get: {
          tags: ['corpora'],
          summary: 'One corpus (its size, character count and preview)',
          parameters: [corpusIdParam],
          responses: {
            '200': ok('the corpus', 'CorpusView', corpusExample),
            '400': problem(400, 'a malformed id (named)'),
            '404': problem(404, 'no corpus with this id'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
        delete: {
          tags: ['corpora'],
          summary: 'Delete a corpus',
          description: 'Refused (409) while a queued or running job names it; finished jobs keep their models (checkpoints hold the vocabulary).',
          parameters: [corpusIdParam],
          responses: {
            '200': ok('deleted: the corpus as it was', 'CorpusView', corpusExample),
            '400': problem(400, 'a malformed id (named)'),
            '404': problem(404, 'no corpus with this id'),
            '409': problem(409, 'a queued or running job uses it (their ids are named)'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: {
          tags: ['jobs'],
          summary: 'Cancel a job',
          description: 'Queued: removed from the queue. Running: stops within one minibatch; its last checkpoint is the last epoch published.',
          parameters: [idParam],
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
                [problemType]: {
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
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/generate': {
        post: {
          tags: ['generation'],
          summary: "Generate text from the job's latest checkpoint",
          description:
            'Running jobs too. With Accept: text/event-stream the text streams as `chunk` events ({text}: first the cleaned prefix, then one per character) and ends with a `done` event (GenerateResponse).',
          parameters: [
            idParam,
            { name: 'Accept', in: 'header', required: false, description: PARAM_DOCS.Accept, schema: { type: 'string' }, example: 'text/event-stream' },
          ],
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: ref('GenerateRequest'), example: { prefix: 'time traveller', numChars: 30, temperature: 0.8, topK: 5, seed: 42 } },
            },
          },
          responses: {
            '200': {
              description: 'the text (prefix + generated)',
              content: {
                'application/json': {
                  schema: ref('GenerateResponse'),
                  example: {
                    jobId: JOB_ID,
                    prefix: 'time traveller',
                    generated: ' for so it will be convenient',
                    text: 'time traveller for so it will be convenient',
                  },
                },
                'text/event-stream': {
                  schema: { type: 'string', description: 'chunk events, then one done event' },
                  example:
                    'event: chunk\ndata: {"text":"time traveller"}\n\nevent: chunk\ndata: {"text":" "}\n\nevent: done\ndata: {"jobId":"j0mabc12de3f4g5h6i7k","prefix":"time traveller","generated":" f","text":"time traveller f"}\n\n',
                },
              },
            },
            '400': problem(400, 'an invalid request (fields named), or a prefix without a letter'),
            '404': problem(404, 'no job with this id'),
            '409': problem(409, 'no checkpoint yet (the first is written after epoch 1), or the latest checkpoint is damaged (named with its epoch)'),
            ...writes,
            '429': tooMany(`GENERATE_CONCURRENCY generations are running, or (streamed) the client has MAX_STREAMS_PER_CLIENT streams open.${authThrottle}`),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/model': {
        get: {
          tags: ['models'],
          summary: "The job's model as a file, from its latest checkpoint",
          description:
            'Finished, cancelled or running jobs. The x-model-epoch header says which epoch; the file carries the vocabulary, kind and sizes as metadata.',
          parameters: [idParam, ...queryParams(ModelQuery)],
          responses: {
            '200': {
              description: 'the file (Content-Disposition: attachment; filename=<id>-epoch<N>.<ext>)',
              content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'the model file' }, example: '<binary>' } },
            },
            '400': problem(400, 'a malformed id, or an unknown format (named)'),
            '404': problem(404, 'no job with this id'),
            '409': problem(409, 'no checkpoint yet (the first is written after epoch 1), or it cannot be read'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/model/model.json': {
        get: {
          tags: ['models'],
          summary: 'The model as a TensorFlow.js LayersModel (model.json)',
          description:
            "tf.loadLayersModel('<base>/v1/jobs/<id>/model/model.json') loads it; its weights are the sibling weights.bin. Both read the latest checkpoint: on a running job, read them together.",
          parameters: [idParam],
          responses: {
            '200': {
              description: 'the LayersModel JSON (weightsManifest paths: weights.bin)',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    description:
                      "a TensorFlow.js LayersModel: modelTopology, weightsManifest, userDefinedMetadata (the model's vocabulary, kind, sizes, epoch)",
                  },
                  example: { format: 'layers-model', generatedBy: 'lstm-trainer', weightsManifest: [{ paths: ['weights.bin'], weights: [] }] },
                },
              },
            },
            '400': problem(400, 'a malformed id'),
            '404': problem(404, 'no job with this id'),
            '409': problem(409, 'no checkpoint yet, or it cannot be read'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/jobs/{id}/model/weights.bin': {
        get: {
          tags: ['models'],
          summary: "The TensorFlow.js model's weights (weights.bin)",
          parameters: [idParam],
          responses: {
            '200': {
              description: "the float32 weights, in model.json's order",
              content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'the weights' }, example: '<binary>' } },
            },
            '400': problem(400, 'a malformed id'),
            '404': problem(404, 'no job with this id'),
            '409': problem(409, 'no checkpoint yet, or it cannot be read'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/models': {
        post: {
          tags: ['models'],
          summary: 'Upload a model a job can start from (a safetensors state dict)',
          description:
            "The file as the safetensors export writes it: a concise model's rnn.*/linear.* tensors (d2l's RNNModel) or a scratch model's 14 seed tensors, float32, with the vocabulary as __metadata__.vocab (a JSON list, <unk> first). It is validated in full (kind and sizes from the tensors, every shape, finite values, the vocabulary's length) and stored in Redis; a job starts from it with init: {model: id}.",
          requestBody: {
            required: true,
            description: `the file's bytes (application/octet-stream), at most ${MODEL_UPLOAD_MAX_BYTES} bytes`,
            content: {
              'application/octet-stream': {
                schema: { type: 'string', format: 'binary', description: 'a safetensors file' },
                example: '<binary safetensors file>',
              },
            },
          },
          responses: {
            '201': ok('stored', 'ModelView', exampleModel, { Location: { description: 'the model: /v1/models/{id}', schema: { type: 'string' } } }),
            '200': ok('the same file was uploaded before: the same model', 'ModelView', exampleModel, {
              Location: { description: 'the model: /v1/models/{id}', schema: { type: 'string' } },
            }),
            '400': problem(
              400,
              'not a model file this service can use: the problem names what is wrong (not safetensors, no __metadata__.vocab, a missing tensor, a shape, a value that is not finite, …)',
            ),
            '413': problem(413, `the file is larger than ${MODEL_UPLOAD_MAX_BYTES} bytes`),
            '415': problem(415, 'the body is not application/octet-stream'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
        get: {
          tags: ['models'],
          summary: 'Uploaded models, newest first',
          parameters: [
            {
              name: 'limit',
              in: 'query',
              required: false,
              description: 'at most this many (1–100, default 20)',
              schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            },
          ],
          responses: {
            '200': ok('the models', 'ModelList', { models: [exampleModel] }),
            '400': problem(400, 'an invalid limit'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/v1/models/{id}': {
        get: {
          tags: ['models'],
          summary: 'An uploaded model',
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              description: 'the model id POST /v1/models returned',
              schema: { type: 'string', pattern: '^m[0-9a-f]{19}$' },
              example: exampleModel.id,
            },
          ],
          responses: {
            '200': ok('the model', 'ModelView', exampleModel),
            '400': problem(400, 'a malformed id'),
            '404': problem(404, 'no model with this id'),
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...api,
          },
        },
      },
      '/healthz': {
        get: {
          tags: ['service'],
          summary: 'Liveness: the process answers',
          security: [],
          responses: { '200': ok('alive', 'Health', { status: 'ok' }), ...common({ auth: false, store: false }) },
        },
      },
      '/readyz': {
        get: {
          tags: ['service'],
          summary: 'Readiness: the job store (Redis) answers and the process is not shutting down',
          security: [],
          responses: { '200': ok('ready', 'Health', { status: 'ready' }), ...common({ auth: false, store: true }) },
        },
      },
      '/metrics': {
        get: {
          tags: ['service'],
          summary: 'Prometheus metrics (jobs by state, epochs, tokens/s, request latencies)',
          responses: {
            '200': {
              description: 'the text exposition format',
              content: {
                'text/plain': {
                  schema: { type: 'string', description: 'Prometheus text format 0.0.4' },
                  example: '# TYPE lstm_jobs gauge\nlstm_jobs{state="queued"} 2\nlstm_jobs{state="running"} 1\n',
                },
              },
            },
            ...(opts.auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {}),
            ...common({ auth: opts.auth, store: false }),
          },
        },
      },
      '/docs/openapi.json': {
        get: {
          tags: ['service'],
          summary: 'This document',
          security: [],
          responses: {
            '200': {
              description: 'OpenAPI 3.1',
              content: {
                'application/json': {
                  schema: { type: 'object', description: 'an OpenAPI 3.1 document' },
                  example: { openapi: '3.1.0', info: { title: 'lstm-trainer', version: '1' } },
                },
              },
            },
            ...common({ auth: false, store: false }),
          },
        },
      },
      '/docs': {
        get: {
          tags: ['service'],
          summary: 'This document, for people (Swagger UI, served by this server)',
          security: [],
          responses: {
            '200': {
              description: 'an HTML page',
              content: { 'text/html': { schema: { type: 'string', description: 'the page' }, example: '<!DOCTYPE html>…' } },
            },
            ...common({ auth: false, store: false }),
          },
        },
      },
    },
  };
}
