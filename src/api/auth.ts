// API-key auth shared by HTTP and gRPC: one parser for the `authorization` value and one key check,
// so both APIs accept and refuse exactly the same credentials.
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The bearer token of an `authorization` value, or undefined. The one rule (RFC 6750 §2.1):
 * `Bearer` in any case, one or more spaces (not tabs), then the token — visible ASCII without
 * spaces; nothing may follow it. Spaces and tabs around the whole value are HTTP's optional
 * whitespace (RFC 9110 §5.5) and are ignored (HTTP/1.1 strips them before any code sees the value).
 *
 * What the transports do before this parser runs: HTTP/2, and so gRPC, holds a field value with
 * leading or trailing whitespace malformed (RFC 9113 §8.2.1) and Node's HTTP/2 drops it, so
 * `Bearer <key> ` over gRPC arrives as no key at all (UNAUTHENTICATED), where HTTP/1.1 accepts it.
 */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^[ \t]*Bearer +([\x21-\x7e]+)[ \t]*$/i.exec(value);
  return m?.[1];
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The configured keys. Compared in constant time in the key's content: both sides are hashed to
 * SHA-256 (so lengths never differ) and every configured key is compared, without an early exit.
 */
export class ApiKeyCheck {
  private readonly digests: Buffer[];
  constructor(keys: readonly string[]) {
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }
  get enabled(): boolean {
    return this.digests.length > 0;
  }
  check(token: string | undefined): boolean {
    const d = digest(token ?? '');
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok; // no early exit
    return ok && token !== undefined;
  }
}
