// POST /v1/jobs/:id/generate — text from the job's latest checkpoint (running or finished).
// JSON {text} by default; with Accept: text/event-stream the characters stream as `chunk` events
// ({text}), the first being the cleaned prefix, then one `done` event with the whole text.
import { parseGenerateRequest, tokenizerOf } from '../../generate-request.js';
import type { FastifyInstance } from 'fastify';
import type { JobService } from '../../../jobs/types.js';
import { problemFor } from '../problem.js';
import { SseStream, wantsEventStream } from '../sse.js';
import { jobId } from './jobs.js';
import { clientIdOf } from '../../client-id.js';
import type { StreamLimiter } from '../../streams.js';
import { bearerToken } from '../auth.js';

export async function generateRoutes(
  app: FastifyInstance,
  opts: { service: JobService; heartbeatMs: number; streams?: StreamLimiter; authEnabled?: boolean },
): Promise<void> {
  const { service, heartbeatMs } = opts;

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/generate', async (req, reply) => {
    // who the client is, before any await (a client that leaves meanwhile has no address any more)
    const client = clientIdOf({ authEnabled: opts.authEnabled ?? false, token: bearerToken(req), address: req.socket.remoteAddress });
    const id = jobId(req.params.id);
    // the prefix as the job's tokenizer reads it
    const { g: body, prefix } = parseGenerateRequest(req.body, await tokenizerOf(service, id, req.caller));
    const controller = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort('client disconnected');
    });
    const it = service.generate(id, body, controller.signal, { as: req.caller })[Symbol.asyncIterator]();
    // the first character before answering, so "not found" / "no checkpoint yet" are problems
    const first = await it.next();

    if (!wantsEventStream(req)) {
      let generated = first.done ? '' : first.value;
      for (let r = await it.next(); !r.done; r = await it.next()) generated += r.value;
      return { jobId: id, prefix, generated, text: prefix + generated };
    }

    let release: () => void;
    try {
      release = opts.streams?.acquire(client) ?? (() => {});
    } catch (e) {
      await it.return?.(undefined);
      throw e;
    }
    const sse = new SseStream(req, reply, heartbeatMs);
    let text = prefix;
    try {
      await sse.send({ event: 'chunk', data: { text: prefix } });
      for (let r = first; !r.done; r = await it.next()) {
        if (sse.signal.aborted) break;
        text += r.value;
        await sse.send({ event: 'chunk', data: { text: r.value } });
      }
      if (!sse.signal.aborted) await sse.send({ event: 'done', data: { jobId: id, prefix, generated: text.slice(prefix.length), text } });
    } catch (e) {
      const { problem, fault } = problemFor(e);
      if (fault) req.log.error({ err: e }, 'generation failed');
      await sse.send({ event: 'error', data: problem });
    } finally {
      release();
      await it.return?.(undefined);
      sse.end();
    }
  });
}
