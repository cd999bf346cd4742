// Open event streams per client (HTTP SSE — job events and streamed generation — and gRPC
// WatchJob / GenerateStream together), per api process: a client (its API key's fingerprint, else
// its address: src/api/client-id.ts) may hold at most `max` at once; one more is refused with 429 /
// RESOURCE_EXHAUSTED until one closes. A stalled stream costs memory (buffers, a Redis reader) for as
// long as it stays open; the cap bounds what one client can hold. 0 = no cap.
import { ResourceExhaustedError } from '../jobs/errors.js';

export class StreamLimiter {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes a place for `client` (ResourceExhaustedError when it has `max` open); call the result once to give it back. */
  acquire(client: string): () => void {
    const n = this.open.get(client) ?? 0;
    if (this.max > 0 && n >= this.max) {
      throw new ResourceExhaustedError(`this client has ${n} event streams open (MAX_STREAMS_PER_CLIENT = ${this.max}); close one and try again`, 5);
    }
    this.open.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(client) ?? 1) - 1;
      if (left > 0) this.open.set(client, left);
      else this.open.delete(client);
    };
  }

  /** Open streams of a client (for tests and metrics). */
  count(client: string): number {
    return this.open.get(client) ?? 0;
  }
}
