// POST /v1/experiments (a sweep: a base spec and a grid of dotted paths → values, or a list of
// specs; one job per point, all validated before any is queued), GET /v1/experiments/:id (the
// table: each job's varied values, state and results). Owners apply as to jobs.
import type { FastifyInstance } from 'fastify';
import type { JobService } from '../../../jobs/types.js';
import { FailedPreconditionError } from '../../../jobs/errors.js';
import { parseExperimentId } from '../../schemas.js';
import { clientIdOf } from '../../client-id.js';
import { bearerToken } from '../auth.js';

export async function experimentRoutes(app: FastifyInstance, opts: { service: JobService; authEnabled?: boolean }): Promise<void> {
  const { service } = opts;
  const unsupported = () => new FailedPreconditionError('this service has no experiments');

  app.post('/v1/experiments', async (req, reply) => {
    if (!service.createExperiment) throw unsupported();
    const clientId = clientIdOf({ authEnabled: opts.authEnabled ?? false, token: bearerToken(req), address: req.socket.remoteAddress });
    const exp = await service.createExperiment(req.body ?? {}, { clientId, owner: req.caller });
    return reply.code(201).header('location', `/v1/experiments/${exp.id}`).send(exp);
  });

  app.get<{ Params: { id: string } }>('/v1/experiments/:id', async (req) => {
    if (!service.getExperiment) throw unsupported();
    return service.getExperiment(parseExperimentId(req.params.id, 'id'), { as: req.caller });
  });
}
