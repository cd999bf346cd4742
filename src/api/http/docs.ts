// GET /docs — the OpenAPI document for people: Swagger UI (@fastify/swagger-ui, its files served
// from the package, nothing from a CDN) over the same document as GET /docs/openapi.json
// (@fastify/swagger in static mode: it only holds the document we built). Every route under /docs
// is public (app.ts), like the document itself.
import type { FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';

export const DOCS_PREFIX = '/docs';

/**
 * The page's Content-Security-Policy: its scripts and styles from this server only (Swagger UI
 * sets inline styles, and draws some icons as data: images), requests to this server only.
 */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The top bar's mark (in place of Swagger UI's fastify logo). */
const LOGO =
  '<svg xmlns="http://www.w3.org/2000/svg" width="220" height="40" viewBox="0 0 220 40"><text x="0" y="28" font-family="system-ui, sans-serif" font-size="24" font-weight="600" fill="#fff">lstm-trainer API</text></svg>';

export async function docsRoutes(app: FastifyInstance, opts: { document: Record<string, unknown> }): Promise<void> {
  await app.register(fastifySwagger, { mode: 'static', specification: { document: opts.document as never } });
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: DOCS_CSP,
    // no "valid" badge fetched from validator.swagger.io; no top bar (it offers to load other documents)
    uiConfig: {
      layout: 'BaseLayout',
      validatorUrl: null,
      deepLinking: true,
      docExpansion: 'list',
      defaultModelsExpandDepth: 0,
      tryItOutEnabled: false,
      displayRequestDuration: true,
    },
    theme: { title: 'lstm-trainer API' },
    logo: { type: 'image/svg+xml', content: Buffer.from(LOGO) },
  });
}
