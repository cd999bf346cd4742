// The gRPC server, built as grpc-node's route_guide builds one: getServer() makes the server with
// its services — lstm_trainer.v1.LstmTrainer (handlers.ts, one function per RPC), grpc.health.v1
// (health.ts) and server reflection (reflection.ts) — and startGrpcServer() binds it and returns
// how to stop it.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { JobService } from '../../jobs/types.js';
import { clientIdOf, idempotencyScopeOf } from '../client-id.js';
import { AuthThrottle } from '../auth.js';
import { StreamLimiter } from '../streams.js';
import { ApiKeys, authBeforeUnimplemented, bearerToken, redactGrpcLogs } from './auth.js';
import { tolerantDecoding, type CallContext } from './calls.js';
import { lstmTrainerHandlers } from './handlers.js';
import { KeyRing } from '../../jobs/owners.js';
import { DEFAULT_CORPUS_MAX_BYTES, type CorpusStore } from '../../jobs/corpora.js';
import { ServiceHealth } from './health.js';
import { lstmTrainerService } from './proto.js';
import { reflectionDefinition } from './reflection.js';

export interface GrpcServerOptions {
  service: JobService;
  host: string;
  /** 0 = any free port (the bound one is returned). */
  port: number;
  /** When non-empty, every method but health needs `authorization: Bearer <key>`. */
  apiKeys?: string[];
  /** The keys' names and admin flags (owners: src/jobs/owners.ts); default: apiKeys, unnamed, no admin. */
  keyRing?: KeyRing;
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
  /** The largest corpus UploadCorpus takes (CORPUS_MAX_BYTES); default 64 MiB, as HTTP's. */
  corpusMaxBytes?: number;
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

/** The server with every service added, not yet bound; `streams` holds its live server streams. */
export async function getServer(opts: GrpcServerOptions): Promise<{ server: grpc.Server; health: ServiceHealth; streams: Set<AbortController> }> {
  const { service } = opts;
  const keys = new ApiKeys(opts.apiKeys ?? []);
  const ring = opts.keyRing ?? KeyRing.of(opts.apiKeys ?? []);
  redactGrpcLogs(); // grpc-js would log a refused `authorization` value, key and all
  const server = new grpc.Server({
    interceptors: keys.enabled ? [keys.interceptor(opts.authThrottle ?? new AuthThrottle(10, 60))] : [],
    // WatchJob streams can idle for minutes between epochs: ping to notice clients that vanished.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  // with keys on, an unknown method is UNAUTHENTICATED without a key, UNIMPLEMENTED with one
  if (keys.enabled) authBeforeUnimplemented(server);

  const streams = new Set<AbortController>();
  const ctx: CallContext = {
    streams,
    perClient: opts.streams ?? new StreamLimiter(32),
    // per-client identity for the jobs layer's quotas: the key's fingerprint, else the peer's address
    clientId: (call) => clientIdOf({ authEnabled: keys.enabled, token: bearerToken(call.metadata), address: call.getPeer() }),
    // the interceptor let only configured keys through
    caller: (call) => (keys.enabled ? ring.callerOf(bearerToken(call.metadata)) : undefined),
    onInternal: opts.onInternalError ?? ((err, method) => console.error(`gRPC ${method}: internal error`, err)),
  };
  const submitter = (call: grpc.ServerUnaryCall<unknown, unknown>) => ({
    clientId: ctx.clientId(call),
    idempotencyScope: idempotencyScopeOf({ authEnabled: keys.enabled, token: bearerToken(call.metadata) }),
    owner: ctx.caller?.(call),
  });
  // the corpus store of a Redis-backed service (as the HTTP app finds it); others have none
  const store = (service as { corpora?: CorpusStore }).corpora;
  const corpora = store ? { store, maxBytes: opts.corpusMaxBytes ?? DEFAULT_CORPUS_MAX_BYTES } : undefined;
  server.addService(tolerantDecoding(lstmTrainerService()), lstmTrainerHandlers(service, ctx, submitter, corpora));
  const health = await ServiceHealth.addTo(server, service, opts.readinessIntervalMs ?? 5000);
  new ReflectionService(reflectionDefinition()).addToServer(server);
  return { server, health, streams };
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const { server, health, streams } = await getServer(opts);
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  } catch (e) {
    health.stop();
    server.forceShutdown();
    throw e;
  }

  const setServing = (serving: boolean) => health.setServing(serving);
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      health.stop();
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
