// API-key auth for every method but the standard health service (probes and load balancers call
// it without credentials). Server reflection needs the key too (design §5: "every gRPC method but
// health"); grpcurl sends its -H headers on reflection requests as well, so one flag covers both.
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { keyFingerprint } from '../client-id.js';

export const UNAUTHENTICATED_MESSAGE = 'missing or invalid API key: send metadata "authorization: Bearer <key>"';
const OPEN_PREFIXES = ['/grpc.health.v1.Health/'];

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The bearer token of `authorization` metadata, or undefined. */
export function bearerToken(md: grpc.Metadata): string | undefined {
  const v = md.get('authorization')[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(v.trim());
  return m ? m[1].trim() : undefined;
}

export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    if (keys.some((k) => typeof k !== 'string' || k.trim() === '')) throw new Error('API keys must be non-empty strings');
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * Constant time in the key's content: both sides are hashed to 32 bytes (so lengths never
   * differ) and every configured key is compared, without stopping at the first match.
   */
  matches(token: string | undefined): boolean {
    const d = digest(token ?? '');
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok;
    return ok && token !== undefined;
  }

  /** A short stable name for the key (for per-client accounting), never the key itself. */
  static fingerprint(token: string): string {
    return keyFingerprint(token);
  }

  interceptor(): grpc.ServerInterceptor {
    return (method, call) => {
      const open = OPEN_PREFIXES.some((p) => method.path.startsWith(p));
      const listener = new grpc.ServerListenerBuilder()
        .withOnReceiveMetadata((metadata, next) => {
          if (open || this.matches(bearerToken(metadata))) next(metadata);
          else call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE, metadata: new grpc.Metadata() });
        })
        .build();
      const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
      return new grpc.ServerInterceptingCall(call, responder);
    };
  }
}
