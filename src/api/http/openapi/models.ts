// The document's share for routes/models.ts: models in (a safetensors upload a job can start
// from), listed, read back and deleted.
import { z } from 'zod';
import { MODEL_UPLOAD_MAX_BYTES } from '../../../jobs/models.js';
import { jsonSchema } from './json-schema.js';
import { ok, type OpenApiPart, problem } from './responses.js';

const ModelView = z.object({
  id: z
    .string()
    .describe('the model id ("m" then 19 hex digits of the file\'s SHA-256: the same file, the same id); a job starts from it with init: {model: id}'),
  kind: z.enum(['scratch', 'concise']).describe('scratch (the 14 seed tensors) or concise (rnn.* and linear.*), from the tensor names'),
  numHiddens: z.number().int().describe('hidden units, from the tensor shapes'),
  numLayers: z.number().int().describe('LSTM layers (rnn.weight_ih_l0, _l1, …)'),
  vocabSize: z.number().int().describe("tokens of its vocabulary (the output layer's rows)"),
  vocab: z.array(z.string()).describe('index → token, from __metadata__.vocab; index 0 is <unk>'),
  bytes: z.number().int().describe("the file's size"),
  sha256: z.string().describe("the file's SHA-256 (hex)"),
  uploadedAt: z.string().describe('when it was first uploaded (RFC 3339)'),
  epoch: z.number().int().optional().describe('the epoch its __metadata__ says it was trained to, when it says'),
  perplexity: z.number().optional().describe('the perplexity its __metadata__ gives, when it does'),
});
const ModelList = z.object({ models: z.array(ModelView).describe('uploaded models, newest first') });

const exampleModel = {
  id: 'm3f1c2a9b8d7e6f5a4b3',
  kind: 'concise',
  numHiddens: 256,
  numLayers: 1,
  vocabSize: 28,
  vocab: ['<unk>', ' ', 'e', 't', 'a', 'i', 'n', 'o', 's', 'h', 'r', 'd', 'l', 'm', 'u', 'c', 'f', 'w', 'g', 'y', 'p', 'b', 'v', 'k', 'x', 'z', 'j', 'q'],
  bytes: 1_222_000,
  sha256: '3f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a',
  uploadedAt: '2025-03-05T15:20:00.000Z',
  epoch: 5,
  perplexity: 9.8,
};
const modelIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'the model id POST /v1/models returned',
  schema: { type: 'string', pattern: '^m[0-9a-f]{19}$' },
  example: exampleModel.id,
};
const location = { Location: { description: 'the model: /v1/models/{id}', schema: { type: 'string' } } };

export const modelsDoc: OpenApiPart = {
  schemas: () => ({ ModelView: jsonSchema(ModelView), ModelList: jsonSchema(ModelList) }),
  paths: (ctx) => ({
    '/v1/models': {
      post: {
        tags: ['models'],
        summary: 'Upload a model a job can start from (a safetensors state dict)',
        description:
          "The file as the safetensors export writes it: a concise model's rnn.*/linear.* tensors (d2l's RNNModel) or a scratch model's 14 seed tensors, float32, with the vocabulary as __metadata__.vocab (a JSON list, <unk> first). It is validated in full (kind and sizes from the tensors, every shape, finite values, the vocabulary's length) and stored in Redis; a job starts from it with init: {model: id}.",
        requestBody: {
          required: true,
          description: `the file's bytes (application/octet-stream), at most ${MODEL_UPLOAD_MAX_BYTES} bytes`,
          content: {
            'application/octet-stream': {
              schema: { type: 'string', format: 'binary', description: 'a safetensors file' },
              example: '<binary safetensors file>',
            },
          },
        },
        responses: {
          '201': ok('stored', 'ModelView', exampleModel, location),
          '200': ok('the same file was uploaded before: the same model', 'ModelView', exampleModel, location),
          '400': problem(
            400,
            'not a model file this service can use: the problem names what is wrong (not safetensors, no __metadata__.vocab, a missing tensor, a shape, a value that is not finite, …)',
          ),
          '413': problem(413, `the file is larger than ${MODEL_UPLOAD_MAX_BYTES} bytes`),
          '415': problem(415, 'the body is not application/octet-stream'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
      get: {
        tags: ['models'],
        summary: 'Uploaded models, newest first',
        parameters: [
          {
            name: 'limit',
            in: 'query',
            required: false,
            description: 'at most this many (1–100, default 20)',
            schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
          },
        ],
        responses: {
          '200': ok('the models', 'ModelList', { models: [exampleModel] }),
          '400': problem(400, 'an invalid limit'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
    '/v1/models/{id}': {
      get: {
        tags: ['models'],
        summary: 'An uploaded model',
        parameters: [modelIdParam],
        responses: {
          '200': ok('the model', 'ModelView', exampleModel),
          '400': problem(400, 'a malformed id'),
          '404': problem(404, 'no model with this id'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
      delete: {
        tags: ['models'],
        summary: 'Delete an uploaded model',
        description:
          "With API keys on, the caller's ownership goes and the file goes with its last owner (an admin's DELETE removes it for every owner). Jobs are not affected: each job's init weights were copied at submission; a job submitted afterwards with init: {model: id} is refused (400 naming init.model).",
        parameters: [modelIdParam],
        responses: {
          '200': ok('deleted: the model as it was', 'ModelView', exampleModel),
          '400': problem(400, 'a malformed id (named)'),
          '404': problem(404, 'no model with this id'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
  }),
};
