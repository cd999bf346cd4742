// The document's share for routes/events.ts (GET /v1/jobs/{id}/events) and the events every job
// view repeats: an epoch (EpochEvent), the summary of a finished job (JobSummary), and one event
// of a job's history (JobEvent: a state change or an epoch).
import { z } from 'zod';
import { JOB_STATES } from '../../schemas.js';
import { EventsQuery } from '../schemas.js';
import { jsonSchema, ref } from './json-schema.js';
import { jobIdParam, queryParams } from './params.js';
import { type OpenApiPart, problem, tooMany } from './responses.js';

export const JobState = z.enum(JOB_STATES);

export const EpochEvent = z.object({
  epoch: z.number().int().describe('the epoch this event reports (1-based)'),
  epochs: z.number().int().describe('the epochs the job trains in all (train.epochs)'),
  perplexity: z.number().nullable().describe('null when training diverged (not finite)'),
  tokensPerSec: z.number().describe('characters trained per second over the epoch'),
  elapsedMs: z.number().describe('wall-clock milliseconds of training so far (all attempts)'),
  validPerplexity: z
    .number()
    .optional()
    .describe('perplexity on the held-out tail of the corpus (data.validFraction > 0), computed without updating the weights'),
  stopReason: z.string().optional().describe("on the last epoch of a job that early stopping ended: why (its weights are the best epoch's)"),
  samples: z
    .array(
      z.object({
        prefix: z.string().describe('the prefix as given'),
        text: z.string().describe('the prefix and report.numPreds generated characters (greedy)'),
      }),
    )
    .optional()
    .describe('text generated after this epoch, one per report.prefixes entry (every report.predictEvery epochs and after the last)'),
});

export const JobSummary = z.object({
  finalPerplexity: z.number().nullable().describe('perplexity of the last epoch (null when not finite)'),
  epochs: z.number().int().describe('epochs trained'),
  totalMs: z.number().describe('training time in milliseconds'),
  engine: z.string().describe('compute engine that trained it (native, tfjs)'),
  backend: z.string().describe('device or backend of the engine (cpu, cuda, wasm, …)'),
  stopReason: z.string().optional().describe('why the job ended before train.epochs (early stopping)'),
  bestEpoch: z.number().int().optional().describe('the epoch whose model early stopping kept'),
});

// the fields both kinds of event carry
const seq = z.number().int().describe('the sequence number: 1, 2, 3, … per job, no gaps (the SSE id)');
const time = z.string().describe('when it happened (RFC 3339)');
const type = (t: 'state' | 'epoch') => z.literal(t).describe('"state" or "epoch" (the SSE event name)');

const StateEvent = z.object({
  seq,
  time,
  type: type('state'),
  state: JobState.describe('the new state (state events)'),
  summary: JobSummary.optional().describe('on the final succeeded event'),
  error: z.string().optional().describe('on a failed event, or on a retry: why'),
  attempt: z.number().int().optional().describe('the attempt that starts or ends'),
  message: z.string().optional().describe('a note (e.g. resumed from the checkpoint of epoch N)'),
});
const EpochJobEvent = EpochEvent.extend({ seq, time, type: type('epoch') });
const JobEvent = z.union([StateEvent, EpochJobEvent]).describe("One event of a job's history: a state change or an epoch.");

/** An epoch event of the example job (as its view, its epochs page and its stream show it). */
export const epochExample = {
  epoch: 40,
  epochs: 100,
  perplexity: 9.87,
  tokensPerSec: 61_200,
  elapsedMs: 6_480,
  samples: [{ prefix: 'time traveller', text: 'time traveller the the the the the the the the the the t' }],
};

const lastEventIdParam = {
  name: 'Last-Event-ID',
  in: 'header',
  required: false,
  description: 'resume after this seq (sent by EventSource on reconnect)',
  schema: { type: 'string', pattern: '^[0-9]+$' },
  example: '12',
};

export const eventsDoc: OpenApiPart = {
  schemas: () => ({ JobEvent: jsonSchema(JobEvent), EpochEvent: jsonSchema(EpochEvent) }),
  paths: (ctx) => ({
    '/v1/jobs/{id}/events': {
      get: {
        tags: ['events'],
        summary: 'Server-Sent Events: the history, then live events, until the final state',
        description:
          'Each event: `id: <seq>`, `event: state|epoch`, `data: <JobEvent JSON>`. Resume with the Last-Event-ID header or ?fromSeq=N (events with seq > N). ' +
          'Comment lines (`: heartbeat`) keep the connection alive. The stream ends after the final state event; an `event: error` (problem JSON) ends it on a server fault.',
        parameters: [jobIdParam, ...queryParams(EventsQuery), lastEventIdParam],
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
  }),
};
