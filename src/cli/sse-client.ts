// A small Server-Sent Events client over fetch (Node 20), for `lstm-trainer watch` and the tests:
// follows a job's event stream and reconnects with Last-Event-ID, so nothing is missed or repeated.
// The parsing is the dashboard's DOM-free sse.js, the project's one SSE reader.
import type { JobEvent } from '../jobs/types.js';
import { readSse } from '../api/dashboard/public/sse.js';

export class HttpProblemError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; errors?: { field: string; message: string }[] } | undefined,
  ) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
  }
}

export function authHeaders(apiKey?: string): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

export interface FollowOptions {
  baseUrl: string;
  apiKey?: string;
  /** Resume after this seq (0: from the beginning). */
  fromSeq?: number;
  signal?: AbortSignal;
  /** Reconnect tries after a dropped connection (each waits retryMs). */
  retries?: number;
  retryMs?: number;
  /** Told before each wait for a retry: why, and how many tries are left after this one. */
  onRetry?: (reason: string, retriesLeft: number) => void;
}

/**
 * A job's events from fromSeq to its final state event, across reconnects (Last-Event-ID is the
 * last seq received, so the server sends exactly what came after it).
 */
export async function* followJob(jobId: string, o: FollowOptions): AsyncGenerator<JobEvent> {
  let last = o.fromSeq ?? 0;
  let retriesLeft = o.retries ?? 5;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(`${o.baseUrl}/v1/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: { accept: 'text/event-stream', ...authHeaders(o.apiKey), ...(last > 0 ? { 'last-event-id': String(last) } : {}) },
        signal: o.signal,
      });
    } catch (e) {
      if (o.signal?.aborted || retriesLeft-- <= 0) throw e;
      o.onRetry?.((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message, retriesLeft);
      await new Promise((r) => setTimeout(r, o.retryMs ?? 1000));
      continue;
    }
    if (res.status === 503 && retriesLeft-- > 0) {
      // the service is up but its store (Redis) is not: try again shortly
      await res.body?.cancel().catch(() => undefined);
      o.onRetry?.('the service answers 503 (its Redis is not reachable)', retriesLeft);
      await new Promise((r) => setTimeout(r, o.retryMs ?? 1000));
      continue;
    }
    if (!res.ok) throw new HttpProblemError(res.status, await res.json().catch(() => undefined));
    if (res.status === 204) return; // the job is finished and we have all its events
    try {
      for await (const ev of readSse(res, o.signal)) {
        if (ev.event === 'error') {
          const problem = JSON.parse(ev.data) as { status?: number; title?: string; detail?: string };
          throw new HttpProblemError(problem.status ?? 500, problem);
        }
        if (ev.event !== 'state' && ev.event !== 'epoch') continue;
        const data = JSON.parse(ev.data) as JobEvent;
        if (data.seq <= last) continue;
        last = data.seq;
        yield data;
        if (data.type === 'state' && (data.state === 'succeeded' || data.state === 'failed' || data.state === 'cancelled')) return;
      }
    } catch (e) {
      // a 503 in the stream (Redis went away) is resumable like a dropped connection
      const resumable = !(e instanceof HttpProblemError) || e.status === 503;
      if (!resumable || o.signal?.aborted || retriesLeft-- <= 0) throw e;
    }
    if (o.signal?.aborted) return;
    // the server ended the stream before the final state (restart, proxy timeout): resume
    await new Promise((r) => setTimeout(r, o.retryMs ?? 1000));
  }
}
