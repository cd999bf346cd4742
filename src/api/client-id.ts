// Who a request comes from, for per-client limits (rate and queued jobs): the API key's
// fingerprint when keys are on (never the key), else the peer address. HTTP and gRPC compute the
// same id for the same client, so both APIs draw on one limit (the counters are in Redis).
import { createHash } from 'node:crypto';

/** A short stable name for a key, never the key itself. */
export function keyFingerprint(token: string): string {
  return `key:${createHash('sha256').update(token, 'utf8').digest().subarray(0, 6).toString('hex')}`;
}

/** An address as both APIs see it: no port, no IPv4-mapped prefix, no brackets. */
export function normalizeAddress(addr: string | undefined): string {
  let a = (addr ?? '').trim();
  if (a.startsWith('ipv4:') || a.startsWith('ipv6:')) a = a.slice(5);
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracket) a = bracket[1];
  else if (/^[^:]+:\d+$/.test(a)) a = a.replace(/:\d+$/, ''); // v4:port
  if (a.startsWith('::ffff:') && a.includes('.')) a = a.slice(7);
  return a || 'unknown';
}

export function clientIdOf(o: { authEnabled: boolean; token?: string; address?: string }): string {
  if (o.authEnabled && o.token) return keyFingerprint(o.token);
  return `ip:${normalizeAddress(o.address)}`;
}

/**
 * The scope of a client's idempotency keys: with API keys on, the submitting key's full SHA-256
 * (never the key), so two clients' equal keys never meet; with auth off, none — keys are global.
 */
export function idempotencyScopeOf(o: { authEnabled: boolean; token?: string }): string | undefined {
  if (!o.authEnabled || !o.token) return undefined;
  return `key:${createHash('sha256').update(o.token, 'utf8').digest('hex')}`;
}
