// POST /v1/corpora (a text/plain body, streamed), GET /v1/corpora, GET /v1/corpora/:id,
// DELETE /v1/corpora/:id. docs/corpora.md. With API keys on, each acts as req.caller: a key lists and
// reads only corpora it uploaded (another's answers 404 as a missing one; docs/service.md "Owners").
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import { type CorpusStore, isCorpusId, jobStateReader } from '../../../jobs/corpora.js';
import { PayloadTooLargeError } from '../../../jobs/errors.js';
import type { JobService } from '../../../jobs/types.js';
import { SpecError } from '../../../train/spec.js';

const TEXT_TYPE = /^text\/plain\s*(;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)"?/i;

function corpusId(raw: string): string {
  if (!isCorpusId(raw)) throw new SpecError([{ field: 'id', message: 'id must be a corpus id (64 lower-case hex digits, the SHA-256 of its bytes)' }]);
  return raw;
}

export async function corpusRoutes(app: FastifyInstance, opts: { corpora: CorpusStore; service: JobService; maxBytes: number }): Promise<void> {
  const { corpora, service, maxBytes } = opts;

  // the body stays a stream: the route reads it chunk by chunk into Redis (never whole in memory);
  // registered in this plugin only, so every other POST still takes JSON alone
  app.addContentTypeParser('text/plain', (_req, payload, done) => done(null, payload));

  app.post('/v1/corpora', { config: { rawBody: true } }, async (req, reply) => {
    const type = String(req.headers['content-type'] ?? '');
    if (!TEXT_TYPE.test(type)) {
      const e = new Error('send the corpus as text/plain (UTF-8)') as Error & { statusCode: number; code: string };
      e.statusCode = 415;
      e.code = 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
      throw e;
    }
    const charset = CHARSET.exec(type)?.[1];
    if (charset && !/^utf-?8$/i.test(charset)) throw new SpecError([{ field: 'content-type', message: `charset ${charset}: corpora are UTF-8 only` }]);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      // refused before reading a byte; the connection closes (the body is not drained)
      reply.header('connection', 'close');
      throw new PayloadTooLargeError(`the corpus is ${declared} bytes; at most ${maxBytes} (CORPUS_MAX_BYTES)`, maxBytes);
    }
    const body = (req.body as Readable | undefined) ?? (async function* () {})();
    const { corpus, created } = await corpora.upload(body as AsyncIterable<Buffer>, maxBytes, req.caller);
    return reply
      .code(created ? 201 : 200)
      .header('location', `/v1/corpora/${corpus.id}`)
      .send({ ...corpus, created });
  });

  app.get('/v1/corpora', async (req) => ({ corpora: await corpora.list(100, req.caller) }));

  app.get<{ Params: { id: string } }>('/v1/corpora/:id', async (req) => corpora.mustGet(corpusId(req.params.id), req.caller));

  // answers the corpus it deleted (as job cancel answers the job)
  app.delete<{ Params: { id: string } }>('/v1/corpora/:id', async (req) => {
    const id = corpusId(req.params.id);
    return corpora.delete(id, jobStateReader(service), req.caller);
  });
}
