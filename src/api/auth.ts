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

/**
 * Failed authentications per client address (HTTP and gRPC alike, one instance per api process):
 * after `limit` failures within a fixed window of `windowSeconds`, every authenticated request from
 * that address is refused until the window ends — 429 with Retry-After / RESOURCE_EXHAUSTED with a
 * retry-after trailer — valid key or not, so a guess cannot be confirmed while throttled. Other
 * addresses are unaffected. `limit` 0 turns it off. At most `maxAddresses` addresses are tracked
 * (the oldest windows are dropped first).
 */
export class AuthThrottle {
  private readonly windows = new Map<string, { failures: number; endsAt: number }>();

  constructor(
    readonly limit: number,
    readonly windowSeconds: number,
    private readonly maxAddresses = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the address may try again; 0 when it is not throttled. */
  blockedFor(address: string): number {
    if (this.limit <= 0) return 0;
    const w = this.windows.get(address);
    if (!w) return 0;
    const left = w.endsAt - this.now();
    if (left <= 0) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures >= this.limit ? Math.ceil(left / 1000) : 0;
  }

  /** Counts one failed authentication of the address. */
  fail(address: string): void {
    if (this.limit <= 0) return;
    const t = this.now();
    let w = this.windows.get(address);
    if (!w || w.endsAt <= t) {
      if (w) this.windows.delete(address);
      w = { failures: 0, endsAt: t + this.windowSeconds * 1000 };
      this.windows.set(address, w);
      if (this.windows.size > this.maxAddresses) this.windows.delete(this.windows.keys().next().value as string);
    }
    w.failures++;
  }
}

export const authThrottledMessage = (seconds: number) => `too many failed authentications from this address; retry after ${seconds} s`;
