// Bearer-token auth (design §5): off when no keys are configured; otherwise every route needs a
// key except those marked `config: { public: true }` (health, the API document, the dashboard's
// static page — the page's own API calls carry the key). Keys are compared in constant time
// (SHA-256 digests of equal length, every key compared) and never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError } from './problem.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class ApiKeyCheck {
  private readonly digests: Buffer[];
  constructor(keys: readonly string[]) {
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }
  get enabled(): boolean {
    return this.digests.length > 0;
  }
  check(token: string): boolean {
    const d = digest(token);
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok; // no early exit
    return ok;
  }
}

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(h);
  return m?.[1];
}

export function registerAuth(app: FastifyInstance, keys: readonly string[]): void {
  const check = new ApiKeyCheck(keys);
  if (!check.enabled) return;
  app.addHook('onRequest', async (req) => {
    if ((req.routeOptions.config as { public?: boolean } | undefined)?.public) return;
    const token = bearerToken(req);
    if (!token) throw new UnauthorizedError('this route needs an API key: Authorization: Bearer <key>');
    if (!check.check(token)) throw new UnauthorizedError('the API key is not valid');
  });
}
