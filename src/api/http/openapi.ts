// GET /docs/openapi.json — OpenAPI 3.1 generated from the same zod schemas the routes validate
// with (z.toJSONSchema); response shapes are described here with zod too.
import { z } from 'zod';
import { GenerateRequest, JOB_STATES, ListQuery } from '../schemas.js';
import { JobSpec } from '../../train/spec.js';
import { EpochsQuery, EventsQuery, JobQuery } from './schemas.js';

const Sample = z.object({ prefix: z.string(), text: z.string() });
const EpochEvent = z.object({
  epoch: z.number().int(),
  epochs: z.number().int(),
  perplexity: z.number().nullable().describe('null when training diverged (not finite)'),
  tokensPerSec: z.number(),
  elapsedMs: z.number(),
  samples: z.array(Sample).optional(),
});
const JobState = z.enum(JOB_STATES);
const JobSummary = z.object({
  finalPerplexity: z.number().nullable(),
  epochs: z.number().int(),
  totalMs: z.number(),
  engine: z.string(),
  backend: z.string(),
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
});
const JobList = z.object({ jobs: z.array(JobView), nextCursor: z.string().optional() });
const Epochs = z.object({
  jobId: z.string(),
  after: z.number().int(),
  epochs: z.array(EpochEvent),
  nextAfter: z.number().int().optional().describe('set when the page is full: ask again with after = nextAfter'),
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

/** Query parameters of an object schema, as OpenAPI parameter objects. */
function queryParams(s: z.ZodObject): unknown[] {
  const js = schema(s, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, sch]) => ({ name, in: 'query', required: js.required?.includes(name) ?? false, schema: sch }));
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const errors = {
  '400': problem('invalid request (the fields are named in errors[])'),
  '401': problem('missing or wrong API key (when API_KEYS is set)'),
  '403': problem('with API keys off: a Host or Origin this server does not answer to (another site, DNS rebinding)'),
  '503': problem('the job store (Redis) is unreachable'),
};

export function buildOpenApi(opts: { auth: boolean }): Record<string, unknown> {
  const security = opts.auth ? [{ bearer: [] }] : [];
  return {
    openapi: '3.1.0',
    info: {
      title: 'lstm-trainer',
      version: '1',
      description: "Train d2l's character-level LSTM as a service: submit jobs, follow them, generate text.",
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        JobSpec: schema(JobSpec, 'input'),
        GenerateRequest: schema(GenerateRequest, 'input'),
        JobView: schema(JobView),
        JobList: schema(JobList),
        JobEvent: schema(JobEvent),
        EpochEvent: schema(EpochEvent),
        Epochs: schema(Epochs),
        GenerateResponse: schema(GenerateResponse),
        Problem: schema(Problem),
      },
    },
    security,
    paths: {
      '/v1/jobs': {
        post: {
          summary: 'Submit a training job',
          requestBody: { required: true, description: 'a JSON object; {} = every default', content: json('JobSpec') },
          responses: {
            '201': { description: 'queued', content: json('JobView') },
            '200': { description: 'an existing job with the same idempotencyKey', content: json('JobView') },
            ...errors,
            '413': problem('body larger than the limit'),
            '415': problem('the body is not application/json'),
            '429': problem('the queue is full'),
          },
        },
        get: {
          summary: 'List jobs, newest first',
          parameters: queryParams(ListQuery),
          responses: { '200': { description: 'a page of jobs; pass nextCursor as cursor for the next', content: json('JobList') }, ...errors },
        },
      },
      '/v1/jobs/{id}': {
        get: { summary: 'A job (?include=corpus adds a custom corpus text)', parameters: [idParam, ...queryParams(JobQuery)], responses: { '200': { description: 'the job', content: json('JobView') }, '404': problem('no such job'), ...errors } },
      },
      '/v1/jobs/{id}/epochs': {
        get: {
          summary: 'Epoch history (for pollers), a page at a time (limit ≤ 1000; nextAfter when more may follow)',
          parameters: [idParam, ...queryParams(EpochsQuery)],
          responses: { '200': { description: 'epochs > after', content: json('Epochs') }, '404': problem('no such job'), ...errors },
        },
      },
      '/v1/jobs/{id}/events': {
        get: {
          summary: 'Server-Sent Events: the history, then live events, until the final state',
          description:
            'Each event: `id: <seq>`, `event: state|epoch`, `data: <JobEvent JSON>`. Resume with the Last-Event-ID header or ?fromSeq=N (events with seq > N). Comment lines (`: heartbeat`) keep the connection alive.',
          parameters: [idParam, ...queryParams(EventsQuery), { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
          responses: { '200': { description: 'event stream', content: { 'text/event-stream': { schema: ref('JobEvent') } } }, '404': problem('no such job'), ...errors },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: {
          summary: 'Cancel (queued: removed; running: stops within one minibatch)',
          parameters: [idParam],
          requestBody: { required: true, description: '{} (every write takes a JSON body)', content: { 'application/json': { schema: { type: 'object' } } } },
          responses: { '200': { description: 'the cancelled job', content: json('JobView') }, '404': problem('no such job'), '409': problem('already finished'), ...errors },
        },
      },
      '/v1/jobs/{id}/generate': {
        post: {
          summary: "Generate text from the job's latest checkpoint",
          description: 'With Accept: text/event-stream the text streams as `chunk` events ({text}) and ends with a `done` event (GenerateResponse).',
          parameters: [idParam],
          requestBody: { required: true, content: json('GenerateRequest') },
          responses: {
            '200': { description: 'the text (prefix + generated)', content: { ...json('GenerateResponse'), 'text/event-stream': { schema: { type: 'string' } } } },
            '404': problem('no such job'),
            '409': problem('no checkpoint yet'),
            '429': problem('too many generations at once'),
            ...errors,
          },
        },
      },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'alive' } } } },
      '/readyz': { get: { summary: 'Readiness (Redis reachable)', security: [], responses: { '200': { description: 'ready' }, '503': problem('Redis unreachable') } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    },
  };
}
