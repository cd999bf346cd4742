// The api process (docs/architecture.md, "Processes"): the JobService over Redis, the HTTP app with
// the dashboard, and the gRPC server, on their ports; close() drains and stops them in order.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ServiceConfig } from '../jobs/config.js';
import { createLogger, requestLogger, type Logger } from '../jobs/log.js';
import { RedisJobService } from '../jobs/service.js';
import { buildHttpApp } from './http/app.js';
import { AuthThrottle } from './auth.js';
import { StreamLimiter } from './streams.js';
import { KeyRing } from '../jobs/owners.js';
import { dashboardRoutes } from './dashboard/index.js';
import { startGrpcServer, type GrpcServer } from './grpc/index.js';

/** The dashboard's routes, for buildHttpApp's `dashboard` option (the api always serves it). */
export async function loadDashboard(): Promise<FastifyPluginAsync> {
  return dashboardRoutes;
}

export interface ApiProcess {
  service: RedisJobService;
  http: FastifyInstance;
  httpAddress: string;
  grpcPort?: number;
  close(): Promise<void>;
}

/**
 * `logger` (default: the service logger, src/jobs/log.ts, named api) is fastify's logger too, so
 * request lines and the process's own lines share one format; `log` (default: that logger, info)
 * takes the process's own lines.
 */
export async function startApi(config: ServiceConfig, log?: (line: string) => void, logger: Logger = createLogger({ name: 'api' })): Promise<ApiProcess> {
  log ??= (l) => logger.info(l);
  const service = new RedisJobService({ config, log: (l) => logger.info(l) });
  // one count of open streams per client and one of failed authentications per address, for HTTP and gRPC together
  const streams = new StreamLimiter(config.maxStreamsPerClient);
  const authThrottle = new AuthThrottle(config.authFailLimit, config.authFailWindowSeconds);
  const keyRing = new KeyRing(config.keyEntries);
  const http = await buildHttpApp({
    service,
    apiKeys: config.apiKeys,
    keyRing,
    bodyLimit: config.bodyLimit,
    corpusMaxBytes: config.corpusMaxBytes,
    sseHeartbeatMs: config.sseHeartbeatMs,
    dashboard: await loadDashboard(),
    allowedHosts: config.allowedHosts,
    allowedOrigins: config.allowedOrigins,
    listenHost: config.host,
    requestTimeoutMs: config.requestTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    streams,
    authThrottle,
    loggerInstance: requestLogger(logger),
  });
  const httpAddress = await http.listen({ host: config.host, port: config.httpPort });
  log(
    `lstm-trainer api: HTTP on ${httpAddress} (dashboard ${httpAddress}/, API docs ${httpAddress}/docs/openapi.json)${config.apiKeys.length ? ', API keys required' : ''}`,
  );

  let grpc: GrpcServer;
  try {
    grpc = await startGrpcServer({
      service,
      port: config.grpcPort,
      host: config.host,
      apiKeys: config.apiKeys,
      keyRing,
      streams,
      authThrottle,
      corpusMaxBytes: config.corpusMaxBytes,
      onInternalError: (err, method) => logger.error({ err }, `gRPC ${method}: internal error`),
    });
    log(`lstm-trainer api: gRPC on ${config.host}:${grpc.port}`);
  } catch (e) {
    await http.close();
    await service.close();
    throw e;
  }
  // the machine-readable readiness line (tests and scripts read these fields, not the text above)
  logger.info({ ready: 'api', http: httpAddress, grpc: `${config.host}:${grpc.port}` }, 'lstm-trainer api ready');
  if (!(await service.ready()))
    log(
      `lstm-trainer api: Redis at ${config.redisClusterNodes ? `the cluster ${config.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}` : (config.redisUrl ?? 'redis://127.0.0.1:6379')} is not answering yet (readyz says 503 until it does)`,
    );

  return {
    service,
    http,
    httpAddress,
    grpcPort: grpc.port,
    async close() {
      // 1. not ready (HTTP /readyz 503, gRPC health NOT_SERVING): load balancers stop sending,
      //    while requests still get answers
      grpc.setServing(false);
      http.lifecycle.drain();
      if (config.shutdownDrainMs > 0) await new Promise((r) => setTimeout(r, config.shutdownDrainMs));
      // 2. end event streams between two events (SSE: clean end; gRPC: UNAVAILABLE "call again");
      //    both close() wait for requests in flight
      http.lifecycle.endStreams();
      const hard = setTimeout(() => http.server.closeAllConnections(), 15_000);
      hard.unref();
      await Promise.allSettled([http.close(), grpc.close()]);
      clearTimeout(hard);
      await service.close();
    },
  };
}
