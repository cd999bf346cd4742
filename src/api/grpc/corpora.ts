// UploadCorpus, ListCorpora, GetCorpus: the corpus store (src/jobs/corpora.ts) over gRPC, as
// POST/GET /v1/corpora use it. UploadCorpus hands the stream's chunks to the store's upload, the
// HTTP route's code path: the same UTF-8 check, size limit, content addressing and answer — and the
// same owners (with keys on, a corpus is its uploaders'; another key's answers as a missing one).
import { isCorpusId, jobStateReader, type CorpusStore, type CorpusView } from '../../jobs/corpora.js';
import { invalidArgument } from './errors.js';
import type { Caller } from '../../jobs/owners.js';
import type { PDeleteCorpusRequest, PGetCorpusRequest, PListCorporaResponse, PStoredCorpus, PUploadCorpusRequest, PUploadCorpusResponse } from './proto.js';
import type { JobService } from '../../jobs/types.js';

/** The store and the largest corpus it takes (CORPUS_MAX_BYTES). */
export interface CorpusAccess {
  store: CorpusStore;
  maxBytes: number;
}

export function corpusToProto(c: CorpusView): PStoredCorpus {
  return { id: c.id, bytes: c.bytes, characters: c.characters, preview: c.preview, created_at: c.createdAt };
}

/**
 * The request stream's `data` bytes, chunk by chunk (a message without data adds nothing), up to
 * the message marked `last`. A stream that ends without one was cut short (grpc-js can end a
 * cancelled client's stream as if it were complete): refused, so the store keeps nothing.
 */
async function* chunks(requests: AsyncIterable<PUploadCorpusRequest>): AsyncGenerator<Buffer> {
  let last = false;
  for await (const req of requests) {
    if (last) throw invalidArgument([{ field: 'last', message: 'a message after the one marked last: true' }]);
    if (req.data?.length) yield req.data;
    last = req.last === true;
  }
  if (!last) throw invalidArgument([{ field: 'last', message: 'the stream ended without a message marked last: true (cut short?); nothing was stored' }]);
}

export async function uploadCorpus(corpora: CorpusAccess, requests: AsyncIterable<PUploadCorpusRequest>, as?: Caller): Promise<PUploadCorpusResponse> {
  const { corpus, created } = await corpora.store.upload(chunks(requests), corpora.maxBytes, as);
  return { corpus: corpusToProto(corpus), created };
}

export async function listCorpora(corpora: CorpusAccess, as?: Caller): Promise<PListCorporaResponse> {
  return { corpora: (await corpora.store.list(100, as)).map(corpusToProto) };
}

/** The request's corpus id, or INVALID_ARGUMENT naming corpusId. */
function corpusIdOf(req: PGetCorpusRequest): string {
  const id = req.corpus_id ?? '';
  if (!isCorpusId(id))
    throw invalidArgument([
      { field: 'corpusId', message: id ? 'corpusId must be a corpus id (64 lower-case hex digits, the SHA-256 of its bytes)' : 'corpusId is required' },
    ]);
  return id;
}

export async function getCorpus(corpora: CorpusAccess, req: PGetCorpusRequest, as?: Caller): Promise<PStoredCorpus> {
  return corpusToProto(await corpora.store.mustGet(corpusIdOf(req), as));
}

/** DELETE /v1/corpora/:id over gRPC: the same store call, with the same reader of its jobs' states. */
export async function deleteCorpus(corpora: CorpusAccess, service: JobService, req: PDeleteCorpusRequest, as?: Caller): Promise<PStoredCorpus> {
  return corpusToProto(await corpora.store.delete(corpusIdOf(req), jobStateReader(service), as));
}
