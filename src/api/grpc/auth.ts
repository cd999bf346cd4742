// API-key auth for every method but the standard health service (probes and load balancers call
// it without credentials). Server reflection needs the key too (every gRPC method but
// health); grpcurl sends its -H headers on reflection requests as well, so one flag covers both.
import * as grpc from '@grpc/grpc-js';
import { grpcError } from './errors.js';
import { ApiKeyCheck, authThrottledMessage, parseBearer, type AuthThrottle } from '../auth.js';
import { keyFingerprint, normalizeAddress } from '../client-id.js';

export const UNAUTHENTICATED_MESSAGE = 'missing or invalid API key: send metadata "authorization: Bearer <key>"';
const OPEN_PREFIXES = ['/grpc.health.v1.Health/'];

/**
 * grpc-js logs a metadata entry it refuses with its value ("Failed to add metadata entry
 * authorization: Bearer\t<key>. … illegal characters" — a tab, say), which would print an API key
 * to stderr. Its logger (grpc-js' own format: "E …" / "I …" / "D …" on stderr) is replaced once per
 * process by one that redacts any `authorization` value; everything else is printed as before.
 */
let redacting = false;
export function redactGrpcLogs(): void {
  if (redacting) return;
  redacting = true;
  const redact = (m: unknown) => (typeof m === 'string' ? m.replace(/(\bauthorization\b\s*[:=]\s*)[^\r\n]*/gi, '$1<redacted>') : m);
  const to =
    (tag: string) =>
    (message?: unknown, ...rest: unknown[]) =>
      console.error(`${tag} ${redact(message)}`, ...rest.map(redact));
  grpc.setLogger({ error: to('E'), info: to('I'), debug: to('D') });
}

/** The bearer token of `authorization` metadata, by the rule HTTP uses too (src/api/auth.ts parseBearer). */
export function bearerToken(md: grpc.Metadata): string | undefined {
  return parseBearer(md.get('authorization')[0]);
}

export class ApiKeys {
  private readonly check: ApiKeyCheck;

  constructor(keys: readonly string[]) {
    if (keys.some((k) => typeof k !== 'string' || k.trim() === '')) throw new Error('API keys must be non-empty strings');
    this.check = new ApiKeyCheck(keys);
  }

  get enabled(): boolean {
    return this.check.enabled;
  }

  /** The shared constant-time check (SHA-256 digests, every key compared). */
  matches(token: string | undefined): boolean {
    return this.check.check(token);
  }

  /** A short stable name for the key (for per-client accounting), never the key itself. */
  static fingerprint(token: string): string {
    return keyFingerprint(token);
  }

  /** `throttle`: failed authentications per peer address (shared with HTTP in the api process). */
  interceptor(throttle?: AuthThrottle): grpc.ServerInterceptor {
    return (method, call) => {
      const open = OPEN_PREFIXES.some((p) => method.path.startsWith(p));
      const listener = new grpc.ServerListenerBuilder()
        .withOnReceiveMetadata((metadata, next) => {
          if (open) return next(metadata);
          const address = normalizeAddress(call.getPeer());
          const wait = throttle?.blockedFor(address) ?? 0;
          if (wait > 0) {
            const md = new grpc.Metadata();
            md.set('retry-after', String(wait));
            return call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: authThrottledMessage(wait), metadata: md });
          }
          if (this.matches(bearerToken(metadata))) return next(metadata);
          throttle?.fail(address);
          call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE, metadata: new grpc.Metadata() });
        })
        .build();
      const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
      return new grpc.ServerInterceptingCall(call, responder);
    };
  }
}

/**
 * grpc-js answers a method it has no handler for with UNIMPLEMENTED before any interceptor runs, so
 * with API keys on, a caller without a key could still learn which methods exist. This makes an
 * unknown path get a handler that goes through the interceptors — the auth check first — and then
 * answers UNIMPLEMENTED with grpc-js's own message. grpc-js has no public hook for it: its handler
 * table is the private `handlers` Map (grpc-js pinned at 1.14.7), looked up with get(path) per
 * call. If that Map is not there (another grpc-js), nothing changes and unknown methods stay
 * UNIMPLEMENTED before auth; test/faults/auth.test.ts checks the order, so such an upgrade fails there.
 */
export function authBeforeUnimplemented(server: grpc.Server): boolean {
  const handlers = (server as unknown as { handlers?: unknown }).handlers;
  if (!(handlers instanceof Map)) return false;
  const lookup = handlers.get.bind(handlers) as (path: string) => unknown;
  const unknownMethod = (path: string) => ({
    // bidi: the handler runs as soon as the metadata passed the interceptors, whatever the call's shape
    type: 'bidi',
    path,
    serialize: (b: Buffer) => b,
    deserialize: (b: Buffer) => b,
    func: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', () => {});
      call.on('error', () => {});
      call.emit('error', grpcError(grpc.status.UNIMPLEMENTED, `The server does not implement the method ${path}`));
    },
  });
  handlers.get = (path: string) => lookup(path) ?? (typeof path === 'string' && path.startsWith('/') ? unknownMethod(path) : undefined);
  return true;
}
