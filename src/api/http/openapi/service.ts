// The document's share for the service's own routes: health (routes/health.ts), metrics
// (metrics.ts), and this document and its page (app.ts, docs.ts).
import { z } from 'zod';
import { jsonSchema } from './json-schema.js';
import { common, ok, type OpenApiPart } from './responses.js';

const Health = z.object({ status: z.enum(['ok', 'ready']).describe('"ok" (healthz) or "ready" (readyz)') });

export const serviceDoc: OpenApiPart = {
  schemas: () => ({ Health: jsonSchema(Health) }),
  paths: (ctx) => ({
    '/healthz': {
      get: {
        tags: ['service'],
        summary: 'Liveness: the process answers',
        security: [],
        responses: { '200': ok('alive', 'Health', { status: 'ok' }), ...common({ auth: false, store: false }) },
      },
    },
    '/readyz': {
      get: {
        tags: ['service'],
        summary: 'Readiness: the job store (Redis) answers and the process is not shutting down',
        security: [],
        responses: { '200': ok('ready', 'Health', { status: 'ready' }), ...common({ auth: false, store: true }) },
      },
    },
    '/metrics': {
      get: {
        tags: ['service'],
        summary: 'Prometheus metrics (jobs by state, epochs, tokens/s, request latencies)',
        responses: {
          '200': {
            description: 'the text exposition format',
            content: {
              'text/plain': {
                schema: { type: 'string', description: 'Prometheus text format 0.0.4' },
                example: '# TYPE lstm_jobs gauge\nlstm_jobs{state="queued"} 2\nlstm_jobs{state="running"} 1\n',
              },
            },
          },
          ...ctx.authFailures,
          ...common({ auth: ctx.auth, store: false }),
        },
      },
    },
    '/docs/openapi.json': {
      get: {
        tags: ['service'],
        summary: 'This document',
        security: [],
        responses: {
          '200': {
            description: 'OpenAPI 3.1',
            content: {
              'application/json': {
                schema: { type: 'object', description: 'an OpenAPI 3.1 document' },
                example: { openapi: '3.1.0', info: { title: 'lstm-trainer', version: '1' } },
              },
            },
          },
          ...common({ auth: false, store: false }),
        },
      },
    },
    '/docs': {
      get: {
        tags: ['service'],
        summary: 'This document, for people (Swagger UI, served by this server)',
        security: [],
        responses: {
          '200': {
            description: 'an HTML page',
            content: { 'text/html': { schema: { type: 'string', description: 'the page' }, example: '<!DOCTYPE html>…' } },
          },
          ...common({ auth: false, store: false }),
        },
      },
    },
  }),
};
