// Liveness (the process answers) and readiness (the job store answers), both without an API key.
import type { FastifyInstance } from 'fastify';
import type { JobService } from '../../../jobs/types.js';
import { sendProblem } from '../problem.js';

export async function healthRoutes(app: FastifyInstance, opts: { service: JobService; lifecycle?: { draining: boolean } }): Promise<void> {
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true } }, async (_req, reply) => {
    const draining = opts.lifecycle?.draining ?? false;
    if (!draining && (await opts.service.ready())) return { status: 'ready' };
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
