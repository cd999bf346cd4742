// GET /v1/jobs/:id/events — the job's history then its live events as Server-Sent Events.
// `id:` is the event's seq, so a reconnecting EventSource sends Last-Event-ID and gets exactly
// the events after it; `?fromSeq=N` does the same for clients that cannot set headers. The
// stream ends after the terminal state event; asking a finished job for events after its last
// one answers 204 (which also stops EventSource's reconnecting).
import type { FastifyInstance } from 'fastify';
import { parseMessage } from '../../schemas.js';
import { TERMINAL_STATES, type JobService } from '../../../jobs/types.js';
import { SpecError } from '../../../train/spec.js';
import { problemFor } from '../problem.js';
import { EventsQuery, LastEventId } from '../schemas.js';
import { SseStream } from '../sse.js';
import { jobId } from './jobs.js';
import { clientIdOf } from '../../client-id.js';
import type { StreamLimiter } from '../../streams.js';
import { bearerToken } from '../auth.js';

export async function eventRoutes(
  app: FastifyInstance,
  opts: { service: JobService; heartbeatMs: number; streamsSignal?: AbortSignal; streams?: StreamLimiter; authEnabled?: boolean },
): Promise<void> {
  const { service, heartbeatMs } = opts;

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (req, reply) => {
    // who the client is, before any await (a client that leaves meanwhile has no address any more)
    const client = clientIdOf({ authEnabled: opts.authEnabled ?? false, token: bearerToken(req), address: req.socket.remoteAddress });
    const id = jobId(req.params.id);
    const q = parseMessage(EventsQuery, req.query);
    let fromSeq = q.fromSeq ?? 0;
    const header = req.headers['last-event-id'];
    if (typeof header === 'string' && header.trim() !== '') {
      const r = LastEventId.safeParse(header.trim());
      if (!r.success) throw new SpecError([{ field: 'Last-Event-ID', message: 'Last-Event-ID must be a sequence number (integer ≥ 0)' }]);
      fromSeq = Math.max(fromSeq, r.data);
    }
    const job = await service.get(id, { as: req.caller }); // 404 as a problem, before the stream starts
    // HEAD (fastify adds it for GET): the headers of a stream, never an open-ended response
    if (req.method === 'HEAD') return reply.code(200).header('content-type', 'text/event-stream; charset=utf-8').send();
    // a finished job whose every event the client has: 204 tells EventSource not to reconnect
    if (TERMINAL_STATES.includes(job.state) && job.lastSeq !== undefined && fromSeq >= job.lastSeq) return reply.code(204).send();

    // a place among the client's open streams (429 beyond MAX_STREAMS_PER_CLIENT), given back at the end
    const release = opts.streams?.acquire(client) ?? (() => {});
    const sse = new SseStream(req, reply, heartbeatMs);
    // the client leaving, or the server shutting down: either ends the stream between two events
    const signal = opts.streamsSignal ? AbortSignal.any([sse.signal, opts.streamsSignal]) : sse.signal;
    try {
      for await (const ev of service.watch(id, fromSeq, signal, { as: req.caller })) {
        await sse.send({ id: ev.seq, event: ev.type, data: ev });
        if (signal.aborted) break;
      }
      // shutting down: the client reconnects (to another api process) with Last-Event-ID
      if (opts.streamsSignal?.aborted && !sse.signal.aborted) sse.comment('server shutting down; reconnect with Last-Event-ID');
    } catch (e) {
      if (!signal.aborted) {
        const { problem, fault } = problemFor(e);
        if (fault) req.log.error({ err: e }, 'event stream failed');
        await sse.send({ event: 'error', data: problem });
      }
    } finally {
      release();
      sse.end();
      if (opts.streamsSignal?.aborted) reply.raw.socket?.end(); // no keep-alive on a closing server
    }
  });
}
