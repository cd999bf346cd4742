// The document's share for routes/model.ts: a job's model as a file (safetensors, ONNX,
// checkpoint) or as a TensorFlow.js LayersModel, from its latest checkpoint.
import { ModelQuery } from '../schemas.js';
import { jobIdParam, queryParams } from './params.js';
import { type OpenApiPart, problem } from './responses.js';

export const modelDoc: OpenApiPart = {
  paths: (ctx) => ({
    '/v1/jobs/{id}/model': {
      get: {
        tags: ['models'],
        summary: "The job's model as a file, from its latest checkpoint",
        description:
          'Finished, cancelled or running jobs. The x-model-epoch header says which epoch; the file carries the vocabulary, kind and sizes as metadata.',
        parameters: [jobIdParam, ...queryParams(ModelQuery)],
        responses: {
          '200': {
            description: 'the file (Content-Disposition: attachment; filename=<id>-epoch<N>.<ext>)',
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'the model file' }, example: '<binary>' } },
          },
          '400': problem(400, 'a malformed id, or an unknown format (named)'),
          '404': problem(404, 'no job with this id'),
          '409': problem(409, 'no checkpoint yet (the first is written after epoch 1), or it cannot be read'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
    '/v1/jobs/{id}/model/model.json': {
      get: {
        tags: ['models'],
        summary: 'The model as a TensorFlow.js LayersModel (model.json)',
        description:
          "tf.loadLayersModel('<base>/v1/jobs/<id>/model/model.json') loads it; its weights are the sibling weights.bin. Both read the latest checkpoint: on a running job, read them together.",
        parameters: [jobIdParam],
        responses: {
          '200': {
            description: 'the LayersModel JSON (weightsManifest paths: weights.bin)',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  description: "a TensorFlow.js LayersModel: modelTopology, weightsManifest, userDefinedMetadata (the model's vocabulary, kind, sizes, epoch)",
                },
                example: { format: 'layers-model', generatedBy: 'lstm-trainer', weightsManifest: [{ paths: ['weights.bin'], weights: [] }] },
              },
            },
          },
          '400': problem(400, 'a malformed id'),
          '404': problem(404, 'no job with this id'),
          '409': problem(409, 'no checkpoint yet, or it cannot be read'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
    '/v1/jobs/{id}/model/weights.bin': {
      get: {
        tags: ['models'],
        summary: "The TensorFlow.js model's weights (weights.bin)",
        parameters: [jobIdParam],
        responses: {
          '200': {
            description: "the float32 weights, in model.json's order",
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'the weights' }, example: '<binary>' } },
          },
          '400': problem(400, 'a malformed id'),
          '404': problem(404, 'no job with this id'),
          '409': problem(409, 'no checkpoint yet, or it cannot be read'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
  }),
};
