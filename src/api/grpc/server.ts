// The lstm_trainer.v1.LstmTrainer service over a JobService, plus grpc.health.v1.Health and server
// reflection, on one @grpc/grpc-js server.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import type { JobService } from '../../jobs/types.js';
import { GenerateRequest, ListQuery, ListView, parseJobId, parseMessage } from '../schemas.js';
import { SpecError } from '../../train/spec.js';
import { cleanPrefix, PrefixError } from '../../train/predict.js';
import { ApiKeys, bearerToken, redactGrpcLogs } from './auth.js';
import { clientIdOf, idempotencyScopeOf } from '../client-id.js';
import { AuthThrottle } from '../auth.js';
import { StreamLimiter } from '../streams.js';
import {
  eventToProto,
  generateFromProto,
  jobToProto,
  listQueryFromProto,
  listViewFromProto,
  renameListIssues,
  specFromProto,
} from './convert.js';
import { grpcError, invalidArgument, toGrpcError } from './errors.js';
import { lstmTrainerService, SERVICE_NAME } from './proto.js';
import { reflectionDefinition } from './reflection.js';
import type {
  PGenerateChunk,
  PGenerateRequest,
  PGenerateResponse,
  PGetJobRequest,
  PJob,
  PJobEvent,
  PJobIdRequest,
  PListJobsRequest,
  PListJobsResponse,
  PSubmitJobRequest,
  PSubmitJobResponse,
  PWatchJobRequest,
} from './proto.js';

export interface GrpcServerOptions {
  service: JobService;
  host: string;
  /** 0 = any free port (the bound one is returned). */
  port: number;
  /** When non-empty, every method but health needs `authorization: Bearer <key>`. */
  apiKeys?: string[];
  /**
   * How often health re-checks service.ready() (Redis reachable), so grpc.health.v1 means what
   * /readyz means; default 5000, 0 = never (health then follows setServing alone).
   */
  readinessIntervalMs?: number;
  /** Errors that became INTERNAL (server faults); default: console.error. */
  onInternalError?: (err: unknown, method: string) => void;
  /** Open streams per client (WatchJob, GenerateStream; shared with HTTP SSE in the api process); default 32. */
  streams?: StreamLimiter;
  /** Failed authentications per address (shared with HTTP); default 10 per 60 s. */
  authThrottle?: AuthThrottle;
}

export interface GrpcServer {
  port: number;
  close(): Promise<void>;
  /**
   * Health of the server ('') and of lstm_trainer.v1.LstmTrainer: SERVING when this is true (the
   * default) and the JobService is ready; false (e.g. while shutting down) forces NOT_SERVING.
   */
  setServing(serving: boolean): void;
}

const SHUTDOWN_GRACE_MS = 5000;

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
function tolerantDecoding(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
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
/** job_id: present and a job id by the shared JobId rule (INVALID_ARGUMENT otherwise), before any Redis access. */
function jobId(req: PJobIdRequest): string {
  return parseJobId(req.job_id ?? '', 'jobId');
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
function authBeforeUnimplemented(server: grpc.Server): boolean {
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

/** A GenerateRequest validated as the HTTP API validates it, and the prefix as the model sees it. */
function generateArgs(req: PGenerateRequest): { id: string; g: GenerateRequest; prefix: string } {
  const id = jobId(req);
  const g = parseMessage(GenerateRequest, generateFromProto(req));
  try {
    return { id, g, prefix: cleanPrefix(g.prefix) };
  } catch (e) {
    if (e instanceof PrefixError) throw invalidArgument([{ field: 'prefix', message: e.message }]);
    throw e;
  }
}

/** Races an iterator against an abort, so a stream ends promptly even if the source is slow to notice. */
async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
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

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const { service } = opts;
  const keys = new ApiKeys(opts.apiKeys ?? []);
  redactGrpcLogs(); // grpc-js would log a refused `authorization` value, key and all
  const onInternal = opts.onInternalError ?? ((err, method) => console.error(`gRPC ${method}: internal error`, err));
  const server = new grpc.Server({
    interceptors: keys.enabled ? [keys.interceptor(opts.authThrottle ?? new AuthThrottle(10, 60))] : [],
    // WatchJob streams can idle for minutes between epochs: ping to notice clients that vanished.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });

  // with keys on, an unknown method is UNAUTHENTICATED without a key, UNIMPLEMENTED with one
  if (keys.enabled) authBeforeUnimplemented(server);

  /** Live server streams, aborted on close() so the server can shut down. */
  const streams = new Set<AbortController>();
  const perClient = opts.streams ?? new StreamLimiter(32);

  /** Per-client identity for the jobs layer's quotas: the key's fingerprint, else the peer's address. */
  const clientId = (call: grpc.ServerUnaryCall<unknown, unknown>): string =>
    clientIdOf({ authEnabled: keys.enabled, token: bearerToken(call.metadata), address: call.getPeer() });

  /** A request whose bytes did not decode (see tolerantDecoding): INVALID_ARGUMENT, not INTERNAL. */
  const undecodable = (req: unknown): void => {
    const bad = req && typeof req === 'object' ? (req as Record<symbol, unknown>)[UNDECODABLE] : undefined;
    if (typeof bad === 'string') throw invalidArgument([{ field: 'request', message: `request: not a valid protobuf message of this method (${bad})` }]);
    const notUtf8 = req && typeof req === 'object' ? (req as Record<symbol, unknown>)[NOT_UTF8] : undefined;
    if (Array.isArray(notUtf8)) throw invalidArgument(notUtf8.map((field: string) => ({ field, message: `${field} must be valid UTF-8 (a protobuf string): it holds a byte sequence that is not` })));
  };

  function unary<Req, Res>(
    method: string,
    fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>, signal: AbortSignal) => Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      Promise.resolve()
        .then(() => {
          undecodable(call.request);
          return fn(call.request, call, ac.signal);
        })
        .then(
        (res) => callback(null, res),
        (err) => callback(toGrpcError(err, (e) => onInternal(e, method))),
      );
    };
  }

  function serverStream<Req, Res>(
    method: string,
    fn: (req: Req, signal: AbortSignal) => AsyncIterable<Res>,
  ): grpc.handleServerStreamingCall<Req, Res> {
    return (call) => {
      const ac = new AbortController();
      const onCancel = () => ac.abort();
      call.on('cancelled', onCancel);
      streams.add(ac);
      let release = () => {};
      void (async () => {
        try {
          undecodable(call.request);
          // a place among the client's open streams (RESOURCE_EXHAUSTED beyond MAX_STREAMS_PER_CLIENT)
          release = perClient.acquire(clientId(call as unknown as grpc.ServerUnaryCall<unknown, unknown>));
          for await (const msg of abortable(fn(call.request, ac.signal), ac.signal)) {
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
          if (!call.cancelled) call.emit('error', toGrpcError(err, (e) => onInternal(e, method)));
        } finally {
          release();
          streams.delete(ac);
          call.off('cancelled', onCancel);
        }
      })();
    };
  }

  const handlers: grpc.UntypedServiceImplementation = {
    SubmitJob: unary<PSubmitJobRequest, PSubmitJobResponse>('SubmitJob', async (req, call) => {
      const idempotencyScope = idempotencyScopeOf({ authEnabled: keys.enabled, token: bearerToken(call.metadata) });
      const { job, created } = await service.submit(specFromProto(req.spec), { clientId: clientId(call), idempotencyScope });
      return { job: jobToProto(job), created };
    }),

    // a custom corpus text only with view FULL (the default view carries its size and digest)
    GetJob: unary<PGetJobRequest, PJob>('GetJob', async (req) => {
      const id = jobId(req);
      const view = ListView.safeParse(listViewFromProto(req));
      if (!view.success) throw new SpecError([{ field: 'view', message: view.error.issues[0].message }]);
      const full = view.data === 'full';
      return jobToProto(await service.get(id, { includeCorpus: full }), full);
    }),

    ListJobs: unary<PListJobsRequest, PListJobsResponse>('ListJobs', async (req) => {
      let q: ListQuery;
      const issues: SpecError['issues'] = [];
      try {
        q = parseMessage(ListQuery, listQueryFromProto(req));
      } catch (e) {
        if (!(e instanceof SpecError)) throw e;
        issues.push(...renameListIssues(e).issues);
      }
      const view = ListView.safeParse(listViewFromProto(req));
      if (!view.success) issues.push({ field: 'view', message: view.error.issues[0].message });
      if (issues.length) throw new SpecError(issues);
      const full = view.data === 'full';
      const { jobs, nextCursor } = await service.list(q!, { includeCorpus: full });
      return { jobs: jobs.map((j) => jobToProto(j, full)), next_page_token: nextCursor ?? '' };
    }),

    CancelJob: unary<PJobIdRequest, PJob>('CancelJob', async (req) => jobToProto(await service.cancel(jobId(req)))),

    WatchJob: serverStream<PWatchJobRequest, PJobEvent>('WatchJob', async function* (req, signal) {
      const id = jobId(req);
      const fromSeq = req.from_seq ?? 0;
      if (!Number.isInteger(fromSeq) || fromSeq < 0) {
        throw invalidArgument([{ field: 'fromSeq', message: 'fromSeq must be ≥ 0 (the last seq received; 0 = from the start)' }]);
      }
      for await (const ev of service.watch(id, fromSeq, signal)) yield eventToProto(ev);
    }),

    Generate: unary<PGenerateRequest, PGenerateResponse>('Generate', async (req, _call, signal) => {
      const { id, g, prefix } = generateArgs(req);
      let generated = '';
      for await (const chars of service.generate(id, g, signal)) generated += chars;
      return { prefix, generated, text: prefix + generated };
    }),

    GenerateStream: serverStream<PGenerateRequest, PGenerateChunk>('GenerateStream', async function* (req, signal) {
      const { id, g, prefix } = generateArgs(req);
      const it = service.generate(id, g, signal)[Symbol.asyncIterator]();
      // The first character before anything is sent, so "not found" / "no checkpoint yet" end
      // the call as a bare status rather than after a prefix chunk.
      let r = await it.next();
      try {
        yield { text: prefix };
        for (; !r.done; r = await it.next()) yield { text: r.value };
      } finally {
        // A client that left mid-stream: end the service's generator so it releases its model.
        if (!r.done) await it.return?.(undefined);
      }
    }),
  };

  server.addService(tolerantDecoding(lstmTrainerService()), handlers);

  // Health = the operator's flag (setServing) AND the backend answering (service.ready()).
  let wanted = true;
  let ready = await service.ready().catch(() => false);
  const status = (): ServingStatus => (wanted && ready ? 'SERVING' : 'NOT_SERVING');
  const health = new HealthImplementation({ '': status(), [SERVICE_NAME]: status() });
  const publish = () => {
    health.setStatus('', status());
    health.setStatus(SERVICE_NAME, status());
  };
  health.addToServer(server);
  const interval = opts.readinessIntervalMs ?? 5000;
  let checking = false;
  const readiness =
    interval > 0
      ? setInterval(() => {
          if (checking) return;
          checking = true;
          service
            .ready()
            .catch(() => false)
            .then((r) => {
              checking = false;
              if (r !== ready) {
                ready = r;
                publish();
              }
            });
        }, interval)
      : undefined;
  readiness?.unref();
  new ReflectionService(reflectionDefinition()).addToServer(server);

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  } catch (e) {
    clearInterval(readiness);
    server.forceShutdown();
    throw e;
  }

  const setServing = (serving: boolean) => {
    wanted = serving;
    publish();
  };

  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      clearInterval(readiness);
      setServing(false);
      for (const ac of streams) ac.abort();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    })());

  return { port, close, setServing };
}
