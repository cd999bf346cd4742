// The HTTP API (docs/service.md) as a fastify app: routes as small plugins, problem+json errors,
// bearer auth, Prometheus metrics, the OpenAPI document, and (when given) the dashboard.
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { JobService } from '../../jobs/types.js';
import { registerAuth } from './auth.js';
import { registerGuards } from './guards.js';
import { AuthThrottle } from '../auth.js';
import { StreamLimiter } from '../streams.js';
import { registerMetrics, type StatsSource } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { DOCS_PREFIX, docsRoutes } from './docs.js';
import { errorHandler, MAX_PARAM_LENGTH, notFoundHandler, routerErrorHandler } from './problem.js';
import { eventRoutes } from './routes/events.js';
import { generateRoutes } from './routes/generate.js';
import { modelRoutes } from './routes/model.js';
import { modelUploadRoutes } from './routes/models.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { corpusRoutes } from './routes/corpora.js';
import { DEFAULT_CORPUS_MAX_BYTES, type CorpusStore } from '../../jobs/corpora.js';
import { experimentRoutes } from './routes/experiments.js';
import { SpecError } from '../../train/spec.js';
import type { KeyRing } from '../../jobs/owners.js';

export interface HttpAppOptions {
  service: JobService & Partial<StatsSource>;
  /** Non-empty: every route but the public ones needs `Authorization: Bearer <key>`. */
  apiKeys?: readonly string[];
  /** The keys' names and admin flags (owners: src/jobs/owners.ts); default: apiKeys, unnamed, no admin. */
  keyRing?: KeyRing;
  /** fastify's logger option (pino); false for none. Headers (and so keys) are never logged. */
  logger?: FastifyServerOptions['logger'];
  /** A pino logger to use instead (the service logger, src/jobs/log.ts); wins over `logger`. */
  loggerInstance?: FastifyServerOptions['loggerInstance'];
  bodyLimit?: number;
  /** The largest corpus upload (POST /v1/corpora), bytes; default 64 MiB. */
  corpusMaxBytes?: number;
  sseHeartbeatMs?: number;
  /** The dashboard's fastify plugin (src/api/dashboard), registered at `/`. */
  dashboard?: FastifyPluginAsync;
  /** With API keys off: Host names and Origins accepted besides the defaults (src/api/http/guards.ts). */
  allowedHosts?: readonly string[];
  allowedOrigins?: readonly string[];
  /** The listen host (HOST), accepted as a Host name. */
  listenHost?: string;
  /** The whole request must arrive within this many ms (408 otherwise; default 30 s; 0 = none). */
  requestTimeoutMs?: number;
  /** Close a connection idle this long (default 120 s, never below 4 SSE heartbeats; 0 = never). */
  idleTimeoutMs?: number;
  /** Open event streams per client (shared with gRPC in the api process); default: 32 per app. */
  streams?: StreamLimiter;
  /** Failed authentications per address (shared with gRPC); default: 10 per 60 s per app. */
  authThrottle?: AuthThrottle;
}

/** Every route the app registered (method, url, and whether it is public), in registration order. */
export interface RouteInfo {
  method: string;
  url: string;
  public: boolean;
}

/**
 * Shutdown in two steps: `drain()` turns /readyz to 503 and makes every response close its
 * connection (load balancers stop sending), then `endStreams()` ends open event streams between
 * two events (clients resume with Last-Event-ID); fastify's close() then waits for requests in flight.
 */
export interface HttpLifecycle {
  readonly draining: boolean;
  /** Aborted by endStreams(): event streams stop at the next event boundary. */
  readonly streamsSignal: AbortSignal;
  drain(): void;
  endStreams(): void;
}

export function createLifecycle(): HttpLifecycle {
  const ac = new AbortController();
  let draining = false;
  return {
    get draining() {
      return draining;
    },
    streamsSignal: ac.signal,
    drain() {
      draining = true;
    },
    endStreams() {
      draining = true;
      ac.abort('server shutting down');
    },
  };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Callable without an API key (health, the API document and its page, the dashboard's files). */
    public?: boolean;
  }
  interface FastifyInstance {
    lifecycle: HttpLifecycle;
    routeList: RouteInfo[];
  }
}

/** Probes, answered every few seconds: their request logs are noise at the default level. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
/** The header the dashboard sends on the reads it repeats every few seconds (the jobs list, the open job). */
export const POLL_HEADER = 'x-dashboard-poll';

/**
 * The level of a request's two log lines ('incoming request', 'request completed'): debug for the
 * probes and the dashboard's polling reads, info for everything else.
 */
export function requestLogLevel(req: FastifyRequest): 'debug' | 'info' {
  if (QUIET_ROUTES.has(req.routeOptions.url ?? '')) return 'debug';
  if ((req.method === 'GET' || req.method === 'HEAD') && req.headers[POLL_HEADER] === '1') return 'debug';
  return 'info';
}

/** fastify's two request lines at requestLogLevel (a failed response is still logged as an error). */
class RequestLogController extends LogController {
  override incomingRequest(req: FastifyRequest): void {
    req.log[requestLogLevel(req)]({ req }, 'incoming request');
  }
  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log[requestLogLevel(req)]({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

export async function buildHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? 4 * 1024 * 1024;
  const heartbeatMs = opts.sseHeartbeatMs ?? 15_000;
  // 'idle': close() closes idle keep-alive connections and waits for requests in flight; event
  // streams are ended beforehand by lifecycle.endStreams()
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const idle = opts.idleTimeoutMs ?? 120_000;
  const app = Fastify({
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: opts.logger ?? false }),
    bodyLimit,
    // a body trickled byte by byte must not hold a connection (and its buffered body) for ever: the
    // whole request within requestTimeout (Node answers 408 and closes), checked every second
    requestTimeout,
    http: { connectionsCheckingInterval: requestTimeout > 0 ? Math.min(1000, requestTimeout) : 30_000 },
    // no traffic either way this long: closed (event streams send heartbeats well within it)
    connectionTimeout: idle > 0 ? Math.max(idle, 4 * heartbeatMs) : 0,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // the router's own errors (a too-long parameter, a path that does not decode) as problems too
    frameworkErrors: routerErrorHandler,
    // request logs at a level that depends on the request (probes and polling: debug)
    logController: new RequestLogController(),
  });
  // Node checks requestTimeout only when headersTimeout (60 s) is not above it
  if (requestTimeout > 0) app.server.headersTimeout = Math.min(app.server.headersTimeout, requestTimeout);
  const lifecycle = createLifecycle();
  app.decorate('lifecycle', lifecycle);
  const routes: RouteInfo[] = [];
  app.decorate('routeList', routes);
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    // the API document and its page (Swagger UI's routes) hold no data: public, as health is
    if (r.url === DOCS_PREFIX || r.url.startsWith(`${DOCS_PREFIX}/`)) r.config = { ...(r.config as object), public: true } as typeof r.config;
    const isPublic = Boolean((r.config as { public?: boolean } | undefined)?.public);
    for (const m of methods) routes.push({ method: m, url: r.url, public: isPublic });
  });
  app.addHook('onRequest', async (_req, reply) => {
    if (lifecycle.draining) reply.header('connection', 'close');
  });
  // close() without the two steps before it (tests, embedding) still ends streams cleanly first
  app.addHook('preClose', async () => lifecycle.endStreams());

  // our own JSON parser: an empty body is "no body" (which every POST refuses: guards.ts),
  // a body that is not UTF-8 (RFC 8259 §8.1) is a 400 problem naming `body` (decoding it would put
  // U+FFFD in the job's text), and malformed JSON is a 400 problem naming the position
  app.removeContentTypeParser(['application/json', 'text/plain']); // JSON only: anything else is a 415
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // a BOM stays (and is malformed JSON)
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(new SpecError([{ field: 'body', message: 'body must be valid UTF-8 (RFC 8259): it holds a byte sequence that is not' }]), undefined);
    }
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(new SpecError([{ field: '', message: `malformed JSON: ${(e as Error).message}` }]), undefined);
    }
  });

  app.setErrorHandler(errorHandler(bodyLimit));
  // a known path asked with a method it does not have: 405 with Allow (from the route table)
  app.setNotFoundHandler(notFoundHandler(routes));
  const streams = opts.streams ?? new StreamLimiter(32);
  registerAuth(app, opts.apiKeys ?? [], opts.authThrottle ?? new AuthThrottle(10, 60), opts.keyRing);
  registerGuards(app, {
    authEnabled: (opts.apiKeys ?? []).some((k) => k.length > 0),
    allowedHosts: opts.allowedHosts,
    allowedOrigins: opts.allowedOrigins,
    listenHost: opts.listenHost,
  });
  registerMetrics(app, typeof opts.service.stats === 'function' ? (opts.service as StatsSource) : undefined);

  const openapi = buildOpenApi({ auth: (opts.apiKeys ?? []).length > 0 });
  app.get('/docs/openapi.json', { config: { public: true } }, async () => openapi);
  await app.register(docsRoutes, { document: openapi });

  await app.register(healthRoutes, { service: opts.service, lifecycle });
  const authEnabled = (opts.apiKeys ?? []).some((k) => k.length > 0);
  await app.register(jobRoutes, { service: opts.service, authEnabled });
  await app.register(eventRoutes, { service: opts.service, heartbeatMs, streamsSignal: lifecycle.streamsSignal, streams, authEnabled });
  await app.register(generateRoutes, { service: opts.service, heartbeatMs, streams, authEnabled });
  await app.register(modelRoutes, { service: opts.service });
  const corpora = (opts.service as { corpora?: CorpusStore }).corpora;
  if (corpora) await app.register(corpusRoutes, { corpora, service: opts.service, maxBytes: opts.corpusMaxBytes ?? DEFAULT_CORPUS_MAX_BYTES });
  await app.register(modelUploadRoutes, { service: opts.service });
  await app.register(experimentRoutes, { service: opts.service, authEnabled });
  if (opts.dashboard) await app.register(opts.dashboard);
  return app;
}
