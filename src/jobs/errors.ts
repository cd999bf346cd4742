// Errors the jobs layer raises; each API maps them to its own status codes
// (HTTP 404/409/429/503, gRPC NOT_FOUND/FAILED_PRECONDITION/ALREADY_EXISTS/RESOURCE_EXHAUSTED/UNAVAILABLE).
export class NotFoundError extends Error {
  readonly code = 'NOT_FOUND';
}
export class FailedPreconditionError extends Error {
  readonly code = 'FAILED_PRECONDITION';
}
/** A create that conflicts with an existing job: the idempotency key names a job of another spec. */
export class AlreadyExistsError extends Error {
  readonly code = 'ALREADY_EXISTS';
  constructor(
    message: string,
    /** The request field the conflict is about (HTTP problem errors[].field). */
    readonly field: string,
    readonly existingId?: string,
  ) {
    super(message);
  }
}
export class ResourceExhaustedError extends Error {
  readonly code = 'RESOURCE_EXHAUSTED';
  /** Seconds after which a retry may succeed (HTTP Retry-After, gRPC `retry-after` trailer). */
  constructor(
    message: string,
    readonly retryAfterSeconds = 5,
  ) {
    super(message);
  }
}
export class UnavailableError extends Error {
  readonly code = 'UNAVAILABLE';
}
/** A request body over a configured size (an uploaded corpus over CORPUS_MAX_BYTES): HTTP 413. */
export class PayloadTooLargeError extends Error {
  readonly code = 'PAYLOAD_TOO_LARGE';
  constructor(
    message: string,
    readonly limitBytes: number,
  ) {
    super(message);
  }
}
