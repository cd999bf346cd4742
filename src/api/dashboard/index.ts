// The web dashboard (`GET /`, docs/dashboard.md): a fastify plugin that serves the page and its assets
// (plain ES-module JS, CSS, and uPlot's dist files from node_modules). Everything the page loads
// comes from this service; the page talks to the /v1 API with the user's key.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The page makes no request outside this origin; uPlot styles its elements through the CSSOM. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Routes the dashboard serves; they need no API key (the page's own API calls carry it). */
export const DASHBOARD_PUBLIC_PATHS: readonly string[] = ['/', '/assets/*'];

/** The folder of the page's files, in the source tree or next to a tsc build in dist/. */
export function publicDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'public'), path.resolve(here, '../../../src/api/dashboard/public')];
  const found = candidates.find((d) => existsSync(path.join(d, 'index.html')));
  if (!found) throw new Error(`dashboard: index.html not found in ${candidates.join(' or ')}`);
  return found;
}

function uplotDist(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');
}

function load(file: string): Asset {
  return { body: readFileSync(file), type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
}

/** Every asset the page uses, read once at registration: a missing file fails start-up, not a page view. */
export function loadAssets(): { index: Asset; assets: Map<string, Asset> } {
  const dir = publicDir();
  const vendor = uplotDist();
  // the page's own modules and styles: every .js and .css in the folder (not its .d.ts or tsconfig)
  const own = readdirSync(dir).filter((f) => /\.(js|css)$/.test(f));
  const assets = new Map<string, Asset>([
    ...own.map((f): [string, Asset] => [f, load(path.join(dir, f))]),
    ['uPlot.esm.js', load(path.join(vendor, 'uPlot.esm.js'))],
    ['uPlot.min.css', load(path.join(vendor, 'uPlot.min.css'))],
  ]);
  return { index: load(path.join(dir, 'index.html')), assets };
}

function send(reply: FastifyReply, asset: Asset, cache: string): FastifyReply {
  return reply
    .header('content-type', asset.type)
    .header('cache-control', cache)
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', CSP)
    .header('referrer-policy', 'no-referrer')
    .send(asset.body);
}

/** `app.register(dashboardRoutes)`: serves `/` and `/assets/*`. */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const { index, assets } = loadAssets();
  // no-cache: the browser revalidates, so a new deployment's page and scripts are picked up together
  app.get('/', { config: { public: true } }, async (_req, reply) => send(reply, index, 'no-cache'));
  app.get<{ Params: { file: string } }>('/assets/:file', { config: { public: true } }, async (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset) {
      return reply
        .code(404)
        .type('application/problem+json')
        .send({ type: 'about:blank', title: 'Not Found', status: 404, detail: `no dashboard asset ${req.params.file}` });
    }
    return send(reply, asset, 'no-cache');
  });
}

export default dashboardRoutes;
