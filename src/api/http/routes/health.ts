// Liveness (the process answers) and readiness (the job store answers), both without an API key.
// Readiness also reports the live workers (their heartbeats): jobs are accepted without any — they
// wait in the queue — so none is not "unready", but it is said.
import type { FastifyInstance } from 'fastify';
import type { JobService } from '../../../jobs/types.js';
import { sendProblem } from '../problem.js';

export async function healthRoutes(app: FastifyInstance, opts: { service: JobService; lifecycle?: { draining: boolean } }): Promise<void> {
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true } }, async (_req, reply) => {
    const draining = opts.lifecycle?.draining ?? false;
    if (!draining && (await opts.service.ready())) {
      const workers = await opts.service.workers?.().catch(() => undefined);
      if (!workers) return { status: 'ready' };
      return {
        status: 'ready',
        workers: {
          live: workers.length,
          list: workers.map((w) => ({
            id: w.id,
            host: w.host,
            engine: w.engine,
            backend: w.backend,
            jobs: w.jobs.length,
            concurrency: w.concurrency,
            lastHeartbeat: w.lastHeartbeat,
          })),
        },
        ...(workers.length === 0 ? { warning: 'no live worker: submitted jobs wait in the queue until one starts' } : {}),
      };
    }
    return sendProblem(
      reply,
      {
        type: 'urn:lstm-trainer:problem:unavailable',
        title: 'Service Unavailable',
        status: 503,
        detail: draining ? 'the api process is shutting down' : 'the job store (Redis) is not reachable',
      },
      { 'retry-after': '5' },
    );
  });
}
