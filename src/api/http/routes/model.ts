// A trained model out of the service (docs/export.md), from the job's latest checkpoint — finished,
// cancelled or still running (the `x-model-epoch` header says which epoch):
//   GET /v1/jobs/:id/model?format=safetensors|onnx|checkpoint   one file, as a download
//   GET /v1/jobs/:id/model/model.json, …/model/weights.bin       a tfjs LayersModel at URLs that
//       tf.loadLayersModel('…/model/model.json') loads as it is (weights.bin is relative to it)
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { JobService } from '../../../jobs/types.js';
import { jobModelExport, type JobModelExport } from '../../model-export.js';
import { parseMessage } from '../../schemas.js';
import { ModelQuery } from '../schemas.js';
import { jobId } from './jobs.js';

export async function modelRoutes(app: FastifyInstance, opts: { service: JobService }): Promise<void> {
  const send = (reply: FastifyReply, out: JobModelExport, name: string, download: boolean) => {
    const file = out.files.find((f) => f.name === name)!;
    reply.header('content-type', file.contentType).header('x-model-epoch', String(out.epoch)).header('cache-control', 'no-store');
    if (download) reply.header('content-disposition', `attachment; filename="${file.filename}"`);
    return reply.send(file.data);
  };

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/model', async (req, reply) => {
    const id = jobId(req.params.id);
    const { format } = parseMessage(ModelQuery, req.query);
    const out = await jobModelExport(opts.service, id, format, req.caller);
    return send(reply, out, out.files[0].name, true);
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/model/model.json', async (req, reply) => {
    const id = jobId(req.params.id);
    return send(reply, await jobModelExport(opts.service, id, 'tfjs', req.caller), 'model.json', false);
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/model/weights.bin', async (req, reply) => {
    const id = jobId(req.params.id);
    return send(reply, await jobModelExport(opts.service, id, 'tfjs', req.caller), 'weights.bin', false);
  });
}
