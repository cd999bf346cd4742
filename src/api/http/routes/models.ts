// Models in (docs/export.md, "Models in"):
//   POST /v1/models       a safetensors state dict as the body (application/octet-stream, at most
//                         MODEL_UPLOAD_MAX_BYTES), validated in full: 201 {id, kind, numHiddens, …}
//                         (200 with the same id when that file was uploaded before); 400 naming what is wrong
//   GET  /v1/models/:id   the model as described at upload
//   GET  /v1/models       the models, newest first (?limit=, 1–100, default 20)
//   DELETE /v1/models/:id the model as it was; with keys on the caller's ownership goes, and the
//                         file with its last owner. Jobs keep their weights (copied at submission)
// A job starts from one with spec `init: {model: "<id>"}`. With API keys on, each acts as req.caller:
// a key sees only models it uploaded (another's answers 404 as a missing one; docs/service.md "Owners").
import type { FastifyInstance } from 'fastify';
import { FailedPreconditionError } from '../../../jobs/errors.js';
import { MODEL_UPLOAD_MAX_BYTES } from '../../../jobs/models.js';
import type { JobService } from '../../../jobs/types.js';
import { SpecError } from '../../../train/spec.js';
import { ModelsQuery, parseMessage, parseModelId } from '../../schemas.js';

export async function modelUploadRoutes(app: FastifyInstance, opts: { service: JobService }): Promise<void> {
  const { service } = opts;
  const need = <K extends 'uploadModel' | 'getModel' | 'listModels' | 'deleteModel'>(k: K): Required<JobService> => {
    if (!service[k]) throw new FailedPreconditionError('this service does not store models');
    return service as Required<JobService>;
  };
  // the raw bytes (this plugin only: every other POST takes JSON)
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MODEL_UPLOAD_MAX_BYTES }, (_req, body, done) => done(null, body));

  app.post('/v1/models', { bodyLimit: MODEL_UPLOAD_MAX_BYTES, config: { octetStream: true } }, async (req, reply) => {
    const body = req.body as Buffer | undefined;
    if (!body || body.length === 0)
      throw new SpecError([{ field: 'body', message: 'body is required: the model file (safetensors) as application/octet-stream' }]);
    const { model, created } = await need('uploadModel').uploadModel(body, { as: req.caller });
    return reply
      .code(created ? 201 : 200)
      .header('location', `/v1/models/${model.id}`)
      .send(model);
  });

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const id = parseModelId(req.params.id, 'id');
    return need('getModel').getModel(id, { as: req.caller });
  });

  app.get('/v1/models', async (req) => {
    const { limit } = parseMessage(ModelsQuery, req.query);
    return { models: await need('listModels').listModels(limit, { as: req.caller }) };
  });

  // answers the model it deleted (as DELETE /v1/corpora/:id answers the corpus)
  app.delete<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const id = parseModelId(req.params.id, 'id');
    return need('deleteModel').deleteModel(id, { as: req.caller });
  });
}
