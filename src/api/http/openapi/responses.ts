// The answers every operation shares: RFC 9457 problems (the Problem schema, one example per
// status, the statuses every route can answer), JSON answers with an example, and what each
// concept's module gives the document (OpenApiPart).
import { z } from 'zod';
import { type JsonObject, jsonSchema, ref } from './json-schema.js';
import { JOB_ID } from './params.js';

export const PROBLEM_TYPE = 'application/problem+json';

const Problem = z
  .object({
    type: z.string().describe('a URN naming the kind of problem (urn:lstm-trainer:problem:…)'),
    title: z.string().describe('the HTTP status text'),
    status: z.number().int().describe('the HTTP status code'),
    detail: z.string().optional().describe('what went wrong, in words'),
    errors: z
      .array(
        z.object({
          field: z.string().describe('dotted path of the field (model.numHiddens, body, content-type, id, …)'),
          message: z.string().describe('what is wrong with it'),
        }),
      )
      .optional()
      .describe('the fields at fault (invalid requests, conflicts, refused headers)'),
  })
  .describe('An error as RFC 9457 problem details (application/problem+json).');

export const problemSchemas = (): Record<string, JsonObject> => ({ Problem: jsonSchema(Problem) });

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

/** A problem answer of `status`, with its example (and Retry-After / WWW-Authenticate where the status sends them). */
export const problem = (status: ProblemStatus, description: string) => ({
  description,
  ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
  ...(status === 401 ? { headers: { 'WWW-Authenticate': { description: 'Bearer realm="lstm-trainer"', schema: { type: 'string' } } } } : {}),
  content: { [PROBLEM_TYPE]: { schema: ref('Problem'), example: problems[status] } },
});

/** A JSON answer: the component schema `name`, an example, and headers if any. */
export const ok = (description: string, name: string, example: unknown, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: ref(name), example } },
});

/** What every route can answer besides its own statuses. */
export function common(o: { auth: boolean; store: boolean }): JsonObject {
  return {
    ...(o.auth ? { '401': problem(401, 'no valid API key (API_KEYS is set): Authorization: Bearer <key>') } : {}),
    '403': problem(403, 'with API keys off: a Host or Origin this server does not answer to (another site, DNS rebinding); the header is named in errors[]'),
    '408': problem(408, 'the request did not arrive whole within REQUEST_TIMEOUT_MS (the connection is closed)'),
    ...(o.store ? { '503': problem(503, 'the job store (Redis) is unreachable, or the api process is shutting down; retry after Retry-After') } : {}),
    '500': problem(500, 'a server fault (logged; no details are given)'),
  };
}

/** What every JSON write can answer about its body. */
export const writes = {
  '413': problem(413, 'the body is larger than the limit (BODY_LIMIT_BYTES, 4 MiB by default)'),
  '415': problem(415, 'the body is not application/json (every write takes JSON, {} for no fields)'),
};

export const tooMany = (what: string) => problem(429, `${what}; retry after Retry-After seconds`);

/** What the operations of a document depend on: whether API keys are on. */
export interface DocContext {
  auth: boolean;
  /** What every route behind the job store answers besides its own statuses (401 with keys on). */
  api: JsonObject;
  /** With keys on, a 429 for too many failed authentications from the address; else nothing. */
  authFailures: JsonObject;
  /** Appended to a route's own 429 description: with keys on, failed authentications count too. */
  authThrottle: string;
}

export function docContext(auth: boolean): DocContext {
  return {
    auth,
    api: common({ auth, store: true }),
    authFailures: auth ? { '429': tooMany('too many failed authentications from the address (AUTH_FAIL_LIMIT)') } : {},
    authThrottle: auth ? ' With API keys on, also after AUTH_FAIL_LIMIT failed authentications from the address.' : '',
  };
}

/** One concept's share of the document: its component schemas and its paths (as the route plugin answers them). */
export interface OpenApiPart {
  schemas?: () => Record<string, JsonObject>;
  paths: (ctx: DocContext) => Record<string, Record<string, JsonObject>>;
}
