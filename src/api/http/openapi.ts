// GET /docs/openapi.json (and the page at /docs): the OpenAPI 3.1 document, assembled here from
// one part per route module (openapi/<module>.ts documents routes/<module>.ts; openapi/service.ts
// the health, metrics and docs routes): each part holds its operations, the zod schemas of its
// answers (fields described with .describe()) and its examples. Request schemas are the zod
// schemas the routes validate with (z.toJSONSchema). The document is complete by rule
// (test/api/dashboard/docs.test.ts walks it): every field has a description, every operation lists
// every status it can answer and has an example request (where it takes one) and an example answer.
import { corporaDoc } from './openapi/corpora.js';
import { eventsDoc } from './openapi/events.js';
import { experimentsDoc } from './openapi/experiments.js';
import { generateDoc } from './openapi/generate.js';
import { jobsDoc } from './openapi/jobs.js';
import type { JsonObject } from './openapi/json-schema.js';
import { modelDoc } from './openapi/model.js';
import { modelsDoc } from './openapi/models.js';
import { docContext, type OpenApiPart, problemSchemas } from './openapi/responses.js';
import { serviceDoc } from './openapi/service.js';

const PARTS: OpenApiPart[] = [jobsDoc, experimentsDoc, eventsDoc, corporaDoc, generateDoc, modelDoc, modelsDoc, serviceDoc];

/** The union of the parts' paths; two parts documenting one method of one path is a mistake. */
function unionOfPaths(parts: ReturnType<OpenApiPart['paths']>[]): Record<string, Record<string, JsonObject>> {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const part of parts) {
    for (const [path, item] of Object.entries(part)) {
      for (const method of Object.keys(item)) if (paths[path]?.[method]) throw new Error(`${method} ${path} is documented twice`);
      paths[path] = { ...paths[path], ...item };
    }
  }
  return paths;
}

export function buildOpenApi(opts: { auth: boolean }): Record<string, unknown> {
  const ctx = docContext(opts.auth);
  const schemas: Record<string, JsonObject> = Object.assign({}, ...PARTS.map((p) => p.schemas?.() ?? {}), problemSchemas());
  return {
    openapi: '3.1.0',
    info: {
      title: 'lstm-trainer',
      version: '1',
      description:
        "Train d2l's character-level LSTM as a service: submit jobs, follow them, generate text.\n\n" +
        'Errors are `application/problem+json` (RFC 9457) and name the fields at fault. Writes take JSON only. ' +
        'A method a path does not have answers 405 with an `Allow` header listing those it has. ' +
        'The same operations are offered over gRPC (lstm_trainer.v1.LstmTrainer, with reflection).' +
        (opts.auth ? '\n\nAPI keys are on: every route but health, the docs and the dashboard page needs `Authorization: Bearer <key>`.' : ''),
    },
    components: {
      ...(opts.auth ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of the API_KEYS' } } } : {}),
      schemas,
    },
    security: opts.auth ? [{ bearer: [] }] : [],
    tags: [
      { name: 'jobs', description: 'submit, list, read, cancel and delete training jobs (with API keys on, each key sees only its own; ADMIN_KEYS see all)' },
      { name: 'experiments', description: 'sweeps: one job per point of a grid or list of specs, and their results side by side' },
      { name: 'events', description: "a job's history and live progress" },
      { name: 'generation', description: "text from a job's model" },
      { name: 'corpora', description: 'your own texts, uploaded once and named by jobs (docs/corpora.md)' },
      { name: 'models', description: "a job's model as a file: PyTorch safetensors, ONNX, TensorFlow.js, checkpoint (docs/export.md)" },
      { name: 'service', description: 'health, metrics and this document' },
    ],
    paths: unionOfPaths(PARTS.map((p) => p.paths(ctx))),
  };
}
