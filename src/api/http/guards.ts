// Two guards for the HTTP API that matter most when API keys are off (the default, a local run):
//
// 1. Writes take JSON only. Every POST needs `content-type: application/json` (415 otherwise) and a
//    JSON body (400 naming `body` when there is none; `{}` asks for every default). A browser can
//    send a cross-origin POST without asking the server first ("simple requests": no content type,
//    text/plain, forms — also `fetch(…, {mode: 'no-cors'})`); it must ask first (a CORS preflight,
//    which this server never grants) for application/json. So no web page can queue jobs here.
// 2. Host and Origin are checked (only with API keys off: with keys a page cannot send the key).
//    - Host: an IP literal, `localhost` (and `*.localhost`), the listen host, or a name in
//      ALLOWED_HOSTS. DNS rebinding makes a browser send the attacker's own name as Host
//      (`evil.example:8080` resolving to 127.0.0.1); an IP literal cannot be rebound.
//    - Origin, when sent: the request's own origin (`http://<Host>` — the dashboard), or one in
//      ALLOWED_ORIGINS; anything else (another site, `null`) is 403, reads included.
//    Both answer 403 problem+json naming the header. `*` in either list turns that check off.
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SpecError } from '../../train/spec.js';
import { ForbiddenError } from './problem.js';

export interface OriginPolicy {
  /** Host names (no port) accepted besides IP literals, localhost and the listen host; '*' = any. */
  allowedHosts?: readonly string[];
  /** Origins (`scheme://host[:port]`) accepted besides the request's own; '*' = any. */
  allowedOrigins?: readonly string[];
  /** The listen host (HOST): accepted as a Host name too. */
  listenHost?: string;
}

/** The name part of a Host header value (`[::1]:8080` → `::1`, `Example.COM:80` → `example.com`). */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d*)?$/.exec(h);
  if (v6) return v6[1];
  return h.replace(/:\d*$/, '').replace(/\.$/, '');
}

export function hostAllowed(host: string | undefined, p: OriginPolicy): boolean {
  if (host === undefined) return true; // HTTP/1.0 without Host: not a browser
  const allowed = p.allowedHosts ?? [];
  if (allowed.includes('*')) return true;
  const name = hostName(host);
  if (!name) return false;
  if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost')) return true;
  if (p.listenHost && name === hostName(p.listenHost)) return true;
  return allowed.some((a) => hostName(a) === name);
}

export function originAllowed(origin: string | undefined, host: string | undefined, p: OriginPolicy): boolean {
  if (origin === undefined) return true; // not sent: same-origin GETs, curl, the CLI
  const allowed = p.allowedOrigins ?? [];
  if (allowed.includes('*')) return true;
  const o = origin.trim().toLowerCase();
  if (host !== undefined && (o === `http://${host.trim().toLowerCase()}` || o === `https://${host.trim().toLowerCase()}`)) return true;
  return allowed.some((a) => a.trim().toLowerCase().replace(/\/$/, '') === o);
}

const JSON_TYPE = /^application\/json\s*(;|$)/i;
/** Routes with `config: { octetStream: true }` (POST /v1/models) take raw bytes; a browser must ask first for these too. */
const OCTET_TYPE = /^application\/octet-stream\s*(;|$)/i;

export function registerGuards(app: FastifyInstance, o: { authEnabled: boolean } & OriginPolicy): void {
  if (!o.authEnabled) {
    app.addHook('onRequest', async (req) => {
      const host = req.headers.host;
      if (!hostAllowed(host, o)) {
        throw new ForbiddenError(`Host ${JSON.stringify(host)} is not one this server answers to (an IP address, localhost, or ALLOWED_HOSTS)`, 'host');
      }
      const origin = req.headers.origin;
      if (!originAllowed(origin, host, o)) {
        throw new ForbiddenError(`requests from origin ${JSON.stringify(origin)} are refused (this server's own pages, or ALLOWED_ORIGINS)`, 'origin');
      }
    });
  }
  // after the body is parsed (and after auth: a request without a key is 401 first)
  app.addHook('preValidation', async (req: FastifyRequest) => {
    if (req.method !== 'POST' || req.is404) return; // no such route: 404 / 405 (problem.ts), not 415
    if ((req.routeOptions.config as { rawBody?: boolean } | undefined)?.rawBody) return; // an upload (routes/corpora.ts) checks its own type
    if ((req.routeOptions.config as { octetStream?: boolean }).octetStream) {
      if (!OCTET_TYPE.test(String(req.headers['content-type'] ?? ''))) {
        const e = new Error('send the model file as application/octet-stream') as Error & { statusCode: number; code: string };
        e.statusCode = 415;
        e.code = 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
        throw e;
      }
      return;
    }
    if (!JSON_TYPE.test(String(req.headers['content-type'] ?? ''))) {
      const e = new Error('send the body as application/json') as Error & { statusCode: number; code: string };
      e.statusCode = 415;
      e.code = 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
      throw e;
    }
    if (req.body === undefined) throw new SpecError([{ field: 'body', message: 'body is required: a JSON object ({} for every default)' }]);
  });
}
