// How a gRPC call reaches a handler (grpc-js's call objects → a request, a signal, a result): the
// request decoding that tells the client's undecodable bytes from a server fault, and the two
// adapters every method goes through — unary, server stream and client stream — with cancellation, flow control,
// per-client stream places and error mapping in one place.
import type { Caller } from '../../jobs/owners.js';
import * as grpc from '@grpc/grpc-js';
import type { StreamLimiter } from '../streams.js';
import { grpcError, invalidArgument, toGrpcError } from './errors.js';

const UNDECODABLE = Symbol('undecodable request');
const NOT_UTF8 = Symbol('string fields that are not UTF-8');
const REPLACEMENT_UTF8 = Buffer.from('\uFFFD', 'utf8');

/** The JSON names (lowerCamelCase, without the request's `spec.`) of the string fields holding U+FFFD. */
function replacedStrings(v: unknown, path: string[] = [], out: string[] = []): string[] {
  if (typeof v === 'string') {
    if (v.includes('\uFFFD')) out.push(path.filter((p, i) => !(i === 0 && p === 'spec') && !/^\d+$/.test(p)).join('.') || 'request');
  } else if (Array.isArray(v)) v.forEach((x, i) => replacedStrings(x, [...path, String(i)], out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) replacedStrings(x, [...path, k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())], out);
  }
  return out;
}

/**
 * grpc-js answers INTERNAL when a request's bytes do not decode; that is the client's fault, so the
 * methods' decoders hand the handler a marker instead, which it answers with INVALID_ARGUMENT.
 * Strings that are not UTF-8 (proto3 requires it) decode with U+FFFD in place of the bad bytes; a
 * request whose decoded strings hold U+FFFD that its bytes do not (no EF BF BD in them) had such
 * a string, and is refused the same way, naming the fields (as the HTTP API refuses such a body).
 */
export function tolerantDecoding(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        let msg: unknown;
        try {
          msg = m.requestDeserialize(buf);
        } catch (e) {
          return { [UNDECODABLE]: (e as Error).message.slice(0, 200) };
        }
        if (!buf.includes(REPLACEMENT_UTF8)) {
          const fields = replacedStrings(msg);
          if (fields.length) return { [NOT_UTF8]: [...new Set(fields)] };
        }
        return msg;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
/** A request whose bytes did not decode (see tolerantDecoding): INVALID_ARGUMENT, not INTERNAL. */
export function rejectUndecodable(req: unknown): void {
  const bad = req && typeof req === 'object' ? (req as Record<symbol, unknown>)[UNDECODABLE] : undefined;
  if (typeof bad === 'string') throw invalidArgument([{ field: 'request', message: `request: not a valid protobuf message of this method (${bad})` }]);
  const notUtf8 = req && typeof req === 'object' ? (req as Record<symbol, unknown>)[NOT_UTF8] : undefined;
  if (Array.isArray(notUtf8))
    throw invalidArgument(
      notUtf8.map((field: string) => ({ field, message: `${field} must be valid UTF-8 (a protobuf string): it holds a byte sequence that is not` })),
    );
}

/** Races an iterator against an abort, so a stream ends promptly even if the source is slow to notice. */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const aborted = new Promise<'aborted'>((resolve) => {
    if (signal.aborted) resolve('aborted');
    else signal.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
  let finished = false;
  try {
    for (;;) {
      const next = it.next();
      next.catch(() => {}); // a rejection after we stopped listening must not go unhandled
      const r = await Promise.race([next, aborted]);
      if (r === 'aborted') return;
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) it.return?.()?.catch(() => {});
  }
}

function drained(call: grpc.ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** What the adapters need from the server: its live streams, the per-client places, fault reporting. */
export interface CallContext {
  /** Live server streams, aborted on close() so the server can shut down. */
  streams: Set<AbortController>;
  /** Open streams per client (RESOURCE_EXHAUSTED beyond the limit). */
  perClient: StreamLimiter;
  /** The client a call comes from (its key's fingerprint, else its address). */
  clientId(call: grpc.ServerUnaryCall<unknown, unknown>): string;
  /** Who the call is from (owners: src/jobs/owners.ts); undefined with API keys off. */
  caller?(call: grpc.ServerUnaryCall<unknown, unknown>): Caller | undefined;
  /** Errors that became INTERNAL. */
  onInternal(err: unknown, method: string): void;
}

/** A unary method: fn's result is the response; a thrown error becomes its gRPC status. */
export function unary<Req, Res>(
  ctx: CallContext,
  method: string,
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>, signal: AbortSignal) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    Promise.resolve()
      .then(() => {
        rejectUndecodable(call.request);
        return fn(call.request, call, ac.signal);
      })
      .then(
        (res) => callback(null, res),
        (err) => callback(toGrpcError(err, (e) => ctx.onInternal(e, method))),
      );
  };
}

/**
 * A server-streaming method: each value fn yields is one message, written with flow control; the
 * stream takes one of the client's stream places; close() of the server ends it with UNAVAILABLE
 * (come back), a client that left ends it silently.
 */
export function serverStream<Req, Res>(
  ctx: CallContext,
  method: string,
  fn: (req: Req, signal: AbortSignal, call: grpc.ServerUnaryCall<unknown, unknown>) => AsyncIterable<Res>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const ac = new AbortController();
    const onCancel = () => ac.abort();
    call.on('cancelled', onCancel);
    ctx.streams.add(ac);
    let release = () => {};
    void (async () => {
      try {
        rejectUndecodable(call.request);
        release = ctx.perClient.acquire(ctx.clientId(call as unknown as grpc.ServerUnaryCall<unknown, unknown>));
        for await (const msg of abortable(fn(call.request, ac.signal, call as unknown as grpc.ServerUnaryCall<unknown, unknown>), ac.signal)) {
          if (!call.write(msg)) await drained(call as grpc.ServerWritableStream<unknown, unknown>, ac.signal);
          if (ac.signal.aborted) break;
        }
        if (call.cancelled) return; // the client left: there is no one to send a status to
        if (ac.signal.aborted) {
          // close(): tell the client to come back (WatchJob resumes from the last seq it saw).
          call.emit('error', grpcError(grpc.status.UNAVAILABLE, 'server is shutting down; call again (WatchJob: from_seq = the last seq received)'));
          return;
        }
        call.end();
      } catch (err) {
        if (!call.cancelled)
          call.emit(
            'error',
            toGrpcError(err, (e) => ctx.onInternal(e, method)),
          );
      } finally {
        release();
        ctx.streams.delete(ac);
        call.off('cancelled', onCancel);
      }
    })();
  };
}

/**
 * A client-streaming method: fn reads the request messages (each checked as unary requests are:
 * an undecodable one ends the call with INVALID_ARGUMENT) and returns the response. A call that
 * fn answers before the client finished sending (an error, a limit) ends there; the rest of the
 * stream is dropped.
 */
export function clientStream<Req, Res>(
  ctx: CallContext,
  method: string,
  fn: (requests: AsyncIterable<Req>, call: grpc.ServerReadableStream<Req, Res>, signal: AbortSignal) => Promise<Res>,
): grpc.handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    const cancelled = () => grpcError(grpc.status.CANCELLED, 'the client cancelled the call');
    async function* requests(): AsyncGenerator<Req> {
      for await (const req of call as AsyncIterable<Req>) {
        if (ac.signal.aborted) throw cancelled();
        rejectUndecodable(req);
        yield req;
      }
      // grpc-js may end the request stream of a call the client cancelled before it reports the
      // cancel: a method that must tell a cut stream from a whole one needs its own end marker
      // (UploadCorpus: `last`)
      if (ac.signal.aborted || call.cancelled) throw cancelled();
    }
    Promise.resolve()
      .then(() => fn(requests(), call, ac.signal))
      .then(
        (res) => callback(null, res),
        (err) => {
          if (!call.cancelled) callback(toGrpcError(err, (e) => ctx.onInternal(e, method)));
        },
      );
  };
}
