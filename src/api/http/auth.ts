// Bearer-token auth (docs/service.md, "Auth"): off when no keys are configured; otherwise every route needs a
// key except those marked `config: { public: true }` (health, the API document, the dashboard's
// static page — the page's own API calls carry the key). Parsing and the constant-time key check
// are shared with gRPC (src/api/auth.ts); keys are never logged.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiKeyCheck, type AuthThrottle, authThrottledMessage, parseBearer } from '../auth.js';
import { normalizeAddress } from '../client-id.js';
import { ResourceExhaustedError } from '../../jobs/errors.js';
import { UnauthorizedError } from './problem.js';
import { KeyRing, type Caller } from '../../jobs/owners.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking (src/jobs/owners.ts): set by the auth hook; undefined with API keys off. */
    caller?: Caller;
  }
}

export { ApiKeyCheck } from '../auth.js';

/** The request's bearer token by the rule gRPC uses too (src/api/auth.ts parseBearer). */
export function bearerToken(req: FastifyRequest): string | undefined {
  return parseBearer(req.headers.authorization);
}

/**
 * `throttle`: failed authentications per address (shared with gRPC in the api process); `ring`: the
 * keys' names and admin flags (default: `keys`, unnamed, none admin). A request that passes gets its
 * `caller`, which every job route hands to the service (owners: src/jobs/owners.ts).
 */
export function registerAuth(app: FastifyInstance, keys: readonly string[], throttle?: AuthThrottle, ring: KeyRing = KeyRing.of(keys)): void {
  const check = new ApiKeyCheck(keys);
  app.decorateRequest('caller', undefined);
  if (!check.enabled) return;
  app.addHook('onRequest', async (req) => {
    if ((req.routeOptions.config as { public?: boolean } | undefined)?.public) return;
    const address = normalizeAddress(req.socket.remoteAddress);
    const wait = throttle?.blockedFor(address) ?? 0;
    if (wait > 0) throw new ResourceExhaustedError(authThrottledMessage(wait), wait);
    const token = bearerToken(req);
    const ok = token !== undefined && check.check(token);
    if (ok) {
      req.caller = ring.callerOf(token);
      return;
    }
    throttle?.fail(address);
    throw new UnauthorizedError(token ? 'the API key is not valid' : 'this route needs an API key: Authorization: Bearer <key>');
  });
}
