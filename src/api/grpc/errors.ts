// The jobs layer's errors as gRPC statuses. User errors never become INTERNAL: a bad field is
// INVALID_ARGUMENT naming it, with the issues machine-readable in two trailers:
//   lstm-trainer-errors-bin   UTF-8 JSON [{field, message}] (the HTTP API's problem+json "errors")
//   grpc-status-details-bin   google.rpc.Status carrying a google.rpc.BadRequest (the standard
//                             rich error model that grpcurl and Google client libraries decode)
import { status as Status, Metadata, type ServerErrorResponse } from '@grpc/grpc-js';
import { SpecError, type SpecIssue } from '../../train/spec.js';

export const ERRORS_TRAILER = 'lstm-trainer-errors-bin';
export const STATUS_DETAILS_TRAILER = 'grpc-status-details-bin';

/** The grpc-js error shape handlers pass to callbacks / emit on streams. */
export type GrpcError = ServerErrorResponse & { code: Status; details: string; metadata?: Metadata };

export function grpcError(code: Status, details: string, metadata?: Metadata): GrpcError {
  const e = new Error(details) as GrpcError;
  e.code = code;
  e.details = details;
  if (metadata) e.metadata = metadata;
  return e;
}

export function isGrpcError(e: unknown): e is GrpcError {
  return e instanceof Error && typeof (e as GrpcError).code === 'number' && typeof (e as GrpcError).details === 'string';
}

/** The jobs layer's error classes carry a string `code` (errors.ts); matched by it, not by class identity. */
const BY_CODE: Record<string, Status> = {
  NOT_FOUND: Status.NOT_FOUND,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  // a body over a size limit (a corpus over CORPUS_MAX_BYTES): gRPC's status for a message too large
  PAYLOAD_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: Status.UNAVAILABLE,
};

/** Redis / network failures that escaped the jobs layer unwrapped: the backend is down, retry later. */
function looksUnavailable(e: Error): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(code)) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return /Connection is closed|Stream isn't writeable|ECONNREFUSED|ETIMEDOUT/.test(e.message);
}

export function invalidArgument(issues: SpecIssue[]): GrpcError {
  const err = new SpecError(issues);
  return toGrpcError(err);
}

/** Maps any thrown value to a status; onInternal sees the errors that are the server's fault. */
export function toGrpcError(e: unknown, onInternal?: (e: unknown) => void): GrpcError {
  if (isGrpcError(e)) return e;
  if (e instanceof SpecError || (e instanceof Error && e.name === 'SpecError' && Array.isArray((e as SpecError).issues))) {
    const issues = (e as SpecError).issues;
    const md = new Metadata();
    md.set(ERRORS_TRAILER, Buffer.from(JSON.stringify(issues), 'utf8'));
    md.set(STATUS_DETAILS_TRAILER, encodeBadRequestStatus(Status.INVALID_ARGUMENT, e.message, issues));
    return grpcError(Status.INVALID_ARGUMENT, e.message, md);
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in BY_CODE) {
      const retry = (e as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      if (code === 'RESOURCE_EXHAUSTED' && typeof retry === 'number') {
        const md = new Metadata();
        md.set('retry-after', String(retry)); // seconds, as HTTP's Retry-After
        return grpcError(BY_CODE[code], e.message, md);
      }
      return grpcError(BY_CODE[code], e.message);
    }
    if (looksUnavailable(e)) return grpcError(Status.UNAVAILABLE, `backend unavailable: ${e.message}`);
  }
  onInternal?.(e);
  return grpcError(Status.INTERNAL, 'internal error (logged on the server)');
}

// ---- google.rpc.Status { code, message, details: [Any(google.rpc.BadRequest)] }, hand-encoded ----
// (a dozen bytes of wire format; not worth a second proto toolchain)

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function lenField(fieldNo: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((fieldNo << 3) | 2), varint(payload.length), payload]);
}

const str = (s: string) => Buffer.from(s, 'utf8');

export function encodeBadRequestStatus(code: number, message: string, issues: SpecIssue[]): Buffer {
  // google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }
  // FieldViolation { string field = 1; string description = 2; }
  const badRequest = Buffer.concat(issues.map((i) => lenField(1, Buffer.concat([lenField(1, str(i.field)), lenField(2, str(i.message))]))));
  // google.protobuf.Any { string type_url = 1; bytes value = 2; }
  const any = Buffer.concat([lenField(1, str('type.googleapis.com/google.rpc.BadRequest')), lenField(2, badRequest)]);
  // google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  return Buffer.concat([varint((1 << 3) | 0), varint(code), lenField(2, str(message)), lenField(3, any)]);
}
