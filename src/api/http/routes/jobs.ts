// POST /v1/jobs, GET /v1/jobs, GET /v1/jobs/:id, GET /v1/jobs/:id/epochs, GET /v1/jobs/:id/logs,
// POST /v1/jobs/:id/cancel, DELETE /v1/jobs/:id. With API keys on, a key reaches only its own jobs
// (req.caller; admins all): another key's job answers 404 as a job that does not exist.
import type { FastifyInstance } from 'fastify';
import { ListQuery, parseJobId, parseMessage } from '../../schemas.js';
import type { JobService } from '../../../jobs/types.js';
import { EpochsQuery, JobQuery } from '../schemas.js';
import { clientIdOf, idempotencyScopeOf } from '../../client-id.js';
import { bearerToken } from '../auth.js';
import { FailedPreconditionError } from '../../../jobs/errors.js';

/** The path's `:id`, checked with the shared JobId rule (400 naming `id` when malformed) before any Redis access. */
export function jobId(raw: string): string {
  return parseJobId(raw, 'id');
}

export async function jobRoutes(app: FastifyInstance, opts: { service: JobService; authEnabled?: boolean }): Promise<void> {
  const { service } = opts;

  app.post('/v1/jobs', async (req, reply) => {
    const authEnabled = opts.authEnabled ?? false;
    const token = bearerToken(req);
    const clientId = clientIdOf({ authEnabled, token, address: req.socket.remoteAddress });
    const idempotencyScope = idempotencyScopeOf({ authEnabled, token });
    // an empty body is the all-defaults job, as `{}` is
    const { job, created } = await service.submit(req.body === undefined ? {} : req.body, { clientId, idempotencyScope, owner: req.caller });
    return reply
      .code(created ? 201 : 200)
      .header('location', `/v1/jobs/${job.id}`)
      .send(job);
  });

  app.get('/v1/jobs', async (req) => {
    const q = parseMessage(ListQuery, req.query);
    return service.list(q, { as: req.caller });
  });

  // the corpus text only when asked for (?include=corpus); by default its size and digest
  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const id = jobId(req.params.id);
    const { include } = parseMessage(JobQuery, req.query);
    return service.get(id, { includeCorpus: include === 'corpus', as: req.caller });
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/epochs', async (req) => {
    const { after, limit } = parseMessage(EpochsQuery, req.query);
    const id = jobId(req.params.id);
    const epochs = await service.epochs(id, after, limit, { as: req.caller });
    // a full page may have more after it: ask again with after = nextAfter
    return epochs.length === limit ? { jobId: id, after, epochs, nextAfter: epochs[epochs.length - 1].epoch } : { jobId: id, after, epochs };
  });

  // the job's own log (src/jobs/job-log.ts): the worker's lines about it, the last 500
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/logs', async (req) => {
    const id = jobId(req.params.id);
    if (!service.logs) throw new FailedPreconditionError('this service keeps no job logs');
    return { jobId: id, lines: await service.logs(id, { as: req.caller }) };
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', async (req) => service.cancel(jobId(req.params.id), { as: req.caller }));

  // a running job is cancelled first; then everything of it goes, and it is 404 afterwards
  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const id = jobId(req.params.id);
    if (!service.delete) throw new FailedPreconditionError('this service cannot delete jobs');
    await service.delete(id, { as: req.caller });
    return { jobId: id, deleted: true };
  });
}
