// Errors as RFC 9457 problem details (application/problem+json): user errors name the offending
// fields; anything unexpected is a bare 500 (logged, never a stack trace to the client).
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { SpecError, type SpecIssue } from '../../train/spec.js';
import { jobIdMessage } from '../schemas.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  PayloadTooLargeError,
  ResourceExhaustedError,
  UnavailableError,
} from '../../jobs/errors.js';

export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: SpecIssue[];
}

export class UnauthorizedError extends Error {}

/** 403: a request this server refuses whoever sends it (a foreign Host or Origin with auth off). */
export class ForbiddenError extends Error {
  constructor(
    message: string,
    /** The header at fault (problem errors[].field). */
    readonly field: string,
  ) {
    super(message);
  }
}

const typeUri = (slug: string) => `urn:lstm-trainer:problem:${slug}`;

function problem(status: number, slug: string, detail?: string, errors?: SpecIssue[]): Problem {
  const p: Problem = { type: typeUri(slug), title: STATUS_CODES[status] ?? 'Error', status };
  if (detail) p.detail = detail;
  if (errors) p.errors = errors;
  return p;
}

/** The problem for an error, and whether it is a server fault (to be logged). */
export function problemFor(err: unknown, bodyLimit?: number): { problem: Problem; fault: boolean; headers?: Record<string, string> } {
  if (err instanceof SpecError) {
    // the messages mostly name their field already; prefix those that do not
    const detail = err.issues.map((i) => (!i.field || i.message.includes(i.field) ? i.message : `${i.field}: ${i.message}`)).join('; ');
    // an issue with the whole body (malformed JSON, not an object) names the field "body"
    const issues = err.issues.map((i) => (i.field ? i : { ...i, field: 'body' }));
    return { problem: problem(400, 'invalid-request', detail, issues), fault: false };
  }
  if (err instanceof NotFoundError) return { problem: problem(404, 'not-found', err.message), fault: false };
  if (err instanceof PayloadTooLargeError) {
    return {
      problem: problem(413, 'payload-too-large', err.message, [{ field: 'body', message: `body must be at most ${err.limitBytes} bytes` }]),
      fault: false,
    };
  }
  if (err instanceof FailedPreconditionError) return { problem: problem(409, 'failed-precondition', err.message), fault: false };
  if (err instanceof AlreadyExistsError) {
    return { problem: problem(409, 'conflict', err.message, [{ field: err.field, message: err.message }]), fault: false };
  }
  if (err instanceof ResourceExhaustedError) {
    return { problem: problem(429, 'resource-exhausted', err.message), fault: false, headers: { 'retry-after': String(err.retryAfterSeconds) } };
  }
  if (err instanceof UnavailableError) return { problem: problem(503, 'unavailable', err.message), fault: false, headers: { 'retry-after': '5' } };
  if (err instanceof UnauthorizedError) {
    return { problem: problem(401, 'unauthorized', err.message), fault: false, headers: { 'www-authenticate': 'Bearer realm="lstm-trainer"' } };
  }
  if (err instanceof ForbiddenError) return { problem: problem(403, 'forbidden', err.message, [{ field: err.field, message: err.message }]), fault: false };
  const fe = err as FastifyError;
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return {
          problem: problem(413, 'payload-too-large', `the request body is larger than ${bodyLimit ?? 'the limit of'} bytes`, [
            { field: 'body', message: `request body must be at most ${bodyLimit ?? '?'} bytes` },
          ]),
          fault: false,
        };
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
        const octet = /octet-stream/.test(fe.message); // POST /v1/models takes the file's bytes
        return {
          problem: problem(415, 'unsupported-media-type', octet ? fe.message : 'send the body as application/json', [
            { field: 'content-type', message: `content-type must be application/${octet ? 'octet-stream' : 'json'}` },
          ]),
          fault: false,
        };
      }
      default:
        return { problem: problem(status, 'bad-request', fe.message, status === 400 ? [{ field: 'body', message: fe.message }] : undefined), fault: false };
    }
  }
  return { problem: problem(500, 'internal', 'an internal error occurred; it has been logged'), fault: true };
}

export function sendProblem(reply: FastifyReply, p: Problem, headers?: Record<string, string>): FastifyReply {
  if (headers) reply.headers(headers);
  return reply.code(p.status).type(PROBLEM_TYPE).send(p);
}

export function errorHandler(bodyLimit: number) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { problem: p, fault, headers } = problemFor(err, req.routeOptions?.bodyLimit ?? bodyLimit);
    if (fault) req.log.error({ err }, 'request failed');
    return sendProblem(reply, p, headers);
  };
}

/** The router's parameter limit (fastify's default): longer path parameters never reach a route. */
export const MAX_PARAM_LENGTH = 100;

/**
 * Errors fastify's router raises before any route runs (its `frameworkErrors`), as problems: a path
 * parameter over MAX_PARAM_LENGTH characters (fastify: a bare 414) and a path that is not valid
 * percent-encoded UTF-8 such as `%ff` (fastify: a plain 400). Under /v1/jobs/ the parameter is a job
 * id, so both answer exactly what the JobId rule answers for any other malformed id: 400 naming `id`.
 */
export function routerErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const path = (req.raw.url ?? '').split('?')[0];
  const jobSegment = /^\/v1\/jobs\/([^/]*)/.exec(path)?.[1];
  const idIsBad = jobSegment !== undefined && (err.code === 'FST_ERR_MAX_PARAM_LENGTH' || !decodes(jobSegment));
  if (idIsBad) {
    const message = jobIdMessage('id');
    return sendProblem(reply, problem(400, 'invalid-request', message, [{ field: 'id', message }]));
  }
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return sendProblem(
      reply,
      problem(414, 'uri-too-long', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`, [
        { field: 'path', message: `path segments must be at most ${MAX_PARAM_LENGTH} characters` },
      ]),
    );
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    const message = 'path must be valid percent-encoded UTF-8';
    return sendProblem(reply, problem(400, 'invalid-request', message, [{ field: 'path', message }]));
  }
  req.log.error({ err }, 'router error');
  return sendProblem(reply, problem(500, 'internal', 'an internal error occurred; it has been logged'));
}

function decodes(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}

/** A route's URL as a RegExp over request paths (`:param` one segment, `*` the rest). */
function routePattern(url: string): RegExp {
  const body = url
    .split('/')
    .map((seg) => (seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}/?$`);
}

/**
 * 404 for a path no route has; 405 with `Allow` (the methods the path has) for a known path asked
 * with another method (DELETE /v1/jobs/:id, PUT /v1/jobs, …). `routes`: the app's route table,
 * read at request time (routes are added while the app starts).
 */
export function notFoundHandler(routes: readonly { method: string; url: string }[]) {
  const patterns = new Map<string, RegExp>();
  return (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0];
    const allow = new Set<string>();
    for (const r of routes) {
      let re = patterns.get(r.url);
      if (!re) patterns.set(r.url, (re = routePattern(r.url)));
      if (re.test(path)) allow.add(r.method);
    }
    if (allow.size > 0 && !allow.has(req.method)) {
      const methods = [...allow].sort().join(', ');
      return sendProblem(reply, problem(405, 'method-not-allowed', `${req.method} is not allowed on ${path}: ${methods}`), { allow: methods });
    }
    return sendProblem(reply, problem(404, 'not-found', `no route ${req.method} ${path}`));
  };
}
