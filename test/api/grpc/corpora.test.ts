// UploadCorpus / ListCorpora / GetCorpus end to end: the real @grpc/grpc-js client
// (test/support/grpc-client.ts) -> the api as `lstm-trainer api` composes it (startApi: HTTP and
// gRPC over one RedisJobService, the configured CORPUS_MAX_BYTES) -> real Redis under a key prefix
// of its own (deleted afterwards).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { startApi, type ApiProcess } from '../../../src/api/app.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { connectRedis } from '../../../src/jobs/redis.js';
import { REDIS_URL, redisReachable, deletePrefix } from '../../support/processes.js';
import { call, callError, trainerClient, type Client } from '../../support/grpc-client.js';

const S = grpc.status;
const skip = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;
const MAX_BYTES = 256 * 1024;

// German and Russian written for this test: multi-byte characters that chunks split in two
const TEXT = `Der Zeitreisende erzählte uns von seiner Maschine: „Die Zeit ist die vierte Dimension.“
Однажды вечером Путешественник во Времени рассказал нам о своей машине — 1895.
`;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A client-streaming UploadCorpus call: each buffer one message, the final one marked `last` (a
 * message of its own when there are no buffers; none with `last: false`); resolves with the
 * response or the error.
 */
function upload(c: Client, chunks: Buffer[], o: { last?: boolean } = {}): Promise<{ res?: any; err?: grpc.ServiceError }> {
  const messages: { data?: Buffer; last?: boolean }[] = chunks.map((data) => ({ data }));
  if (o.last !== false) {
    if (messages.length) messages[messages.length - 1].last = true;
    else messages.push({ last: true });
  }
  return new Promise((resolve) => {
    const stream = c.UploadCorpus(new grpc.Metadata(), (err: grpc.ServiceError | null, res: unknown) => resolve(err ? { err } : { res }));
    stream.on('error', () => {}); // the callback has the status
    for (const m of messages) stream.write(m);
    stream.end();
  });
}

/** `buf` in pieces of `size` bytes (the last shorter). */
function pieces(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; at += size) out.push(buf.subarray(at, at + size));
  return out;
}

describe('gRPC corpora (UploadCorpus, ListCorpora, GetCorpus, DeleteCorpus)', { skip }, () => {
  const prefix = `grpccorpus-${process.pid}-${Date.now().toString(36)}`;
  const env = {
    ...process.env,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    HOST: '127.0.0.1',
    API_KEYS: '',
    LOG_LEVEL: 'warn',
    CORPUS_MAX_BYTES: String(MAX_BYTES),
  };
  let api: ApiProcess;
  let c: Client;
  const redis = connectRedis(REDIS_URL);

  before(async () => {
    api = await startApi(loadConfig(env), () => {});
    c = trainerClient(api.grpcPort!);
  });
  after(async () => {
    c?.close();
    await api?.close();
    await deletePrefix(prefix);
    redis.disconnect();
  });

  const httpUpload = (body: Buffer) =>
    fetch(`${api.httpAddress}/v1/corpora`, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: new Uint8Array(body) });
  const uploadsInProgress = async () => (await redis.keys(`${prefix}:corpus-upload:*`)).length;
  const stored = async () => (await redis.zrange(`${prefix}:corpora`, 0, -1)).sort();

  test("a text in chunks that split characters: the HTTP upload's id and answer; HTTP then finds the same corpus", async () => {
    const bytes = Buffer.from(TEXT.repeat(20), 'utf8');
    // 7-byte chunks: many of them end inside a two-byte character (ä, „, Cyrillic)
    const { res, err } = await upload(c, pieces(bytes, 7));
    assert.equal(err, undefined, err?.details);
    assert.equal(res.created, true);
    assert.deepEqual(
      { id: res.corpus.id, bytes: res.corpus.bytes, characters: res.corpus.characters },
      { id: sha256(bytes), bytes: bytes.length, characters: [...TEXT.repeat(20)].length },
    );
    assert.ok(res.corpus.preview.startsWith('Der Zeitreisende erzählte'), res.corpus.preview);
    const http = await httpUpload(bytes);
    assert.equal(http.status, 200, 'the same bytes over HTTP: the corpus that exists');
    const body = (await http.json()) as Record<string, unknown>;
    assert.deepEqual(body, {
      id: res.corpus.id,
      bytes: res.corpus.bytes,
      characters: res.corpus.characters,
      preview: res.corpus.preview,
      createdAt: res.corpus.created_at,
      created: false,
    });
    const again = await upload(c, [bytes]);
    assert.equal(again.res.created, false);
    assert.deepEqual(again.res.corpus, res.corpus);
    assert.deepEqual(await call(c, 'GetCorpus', { corpus_id: res.corpus.id }), res.corpus);
  });

  test('HTTP first, then gRPC: the same id, created false; ListCorpora lists it; a job can name it', async () => {
    const bytes = Buffer.from(`Ein anderer Text, nur für diesen Test. ${'Zeit und Raum. '.repeat(300)}`, 'utf8');
    const http = await httpUpload(bytes);
    assert.equal(http.status, 201);
    const id = ((await http.json()) as { id: string }).id;
    const { res } = await upload(c, pieces(bytes, 1000));
    assert.equal(res.corpus.id, id);
    assert.equal(res.created, false);
    const list = await call(c, 'ListCorpora', {});
    assert.ok(
      list.corpora.some((x: { id: string }) => x.id === id),
      JSON.stringify(list.corpora.map((x: { id: string }) => x.id)),
    );
    const submitted = await call(c, 'SubmitJob', { spec: { data: { corpus: { id }, tokenizer: 'chars', batch_size: 4, num_steps: 8 }, train: { epochs: 1 } } });
    assert.equal(submitted.job.spec.data.corpus.id, id);
  });

  test('exactly CORPUS_MAX_BYTES is taken; one byte over is RESOURCE_EXHAUSTED naming the limit, nothing stored', async () => {
    const before = await stored();
    const big = Buffer.alloc(MAX_BYTES + 1, 'a');
    const { err } = await upload(c, pieces(big, 64 * 1024));
    assert.equal(err?.code, S.RESOURCE_EXHAUSTED, err?.details);
    assert.match(err!.details, /larger than 262144 bytes \(CORPUS_MAX_BYTES\)/);
    assert.deepEqual(await stored(), before);
    assert.equal(await uploadsInProgress(), 0, 'the partial upload is deleted');
    // exactly the limit is taken
    const atLimit = await upload(c, pieces(Buffer.alloc(MAX_BYTES, 'b'), 100_000));
    assert.equal(atLimit.err, undefined, atLimit.err?.details);
    assert.equal(atLimit.res.corpus.bytes, MAX_BYTES);
  });

  test('invalid UTF-8, an empty stream, a stream without (or past) its last message are INVALID_ARGUMENT; nothing is stored', async () => {
    const before = await stored();
    const bad = await upload(c, [Buffer.from('gut, dann '), Buffer.from([0xc3, 0x28]), Buffer.from(' weiter')]);
    assert.equal(bad.err?.code, S.INVALID_ARGUMENT);
    assert.match(bad.err!.details, /not valid UTF-8.*first 12 bytes/);
    const cut = await upload(c, [Buffer.from('endet mitten in ä').subarray(0, -1)]);
    assert.equal(cut.err?.code, S.INVALID_ARGUMENT);
    assert.match(cut.err!.details, /ends inside a multi-byte character/);
    const empty = await upload(c, []);
    assert.equal(empty.err?.code, S.INVALID_ARGUMENT);
    assert.match(empty.err!.details, /empty/);
    // a stream that ends without its last message was cut short: refused, whatever it carried
    const unmarked = await upload(c, [Buffer.from('ein ganzer Satz, aber ohne Ende. ')], { last: false });
    assert.equal(unmarked.err?.code, S.INVALID_ARGUMENT);
    assert.match(unmarked.err!.details, /^last: the stream ended without a message marked last: true/);
    const after = await new Promise<grpc.ServiceError | null>((resolve) => {
      const stream = c.UploadCorpus(new grpc.Metadata(), (err: grpc.ServiceError | null) => resolve(err));
      stream.on('error', () => {});
      stream.write({ data: Buffer.from('Anfang '), last: true });
      stream.write({ data: Buffer.from('und mehr') });
      stream.end();
    });
    assert.equal(after?.code, S.INVALID_ARGUMENT);
    assert.match(after!.details, /after the one marked last/);
    assert.deepEqual(await stored(), before);
    assert.equal(await uploadsInProgress(), 0);
  });

  test('a client that cancels mid-stream leaves nothing behind (no corpus, no upload in progress)', async () => {
    const before = await stored();
    const stream = c.UploadCorpus(new grpc.Metadata(), () => {});
    stream.on('error', () => {});
    stream.write({ data: Buffer.from('Ein Anfang, dann nichts mehr. '.repeat(100)) });
    await new Promise((r) => setTimeout(r, 300)); // the chunk reaches the server's upload
    stream.cancel();
    await new Promise((r) => setTimeout(r, 700)); // had the server taken the cut stream for the whole text, it would be stored by now
    assert.equal(await uploadsInProgress(), 0);
    assert.deepEqual(await stored(), before);
  });

  test('GetCorpus: NOT_FOUND for an unknown id, INVALID_ARGUMENT naming corpusId for a malformed one', async () => {
    const missing = await callError(c, 'GetCorpus', { corpus_id: '0'.repeat(64) });
    assert.equal(missing.code, S.NOT_FOUND);
    for (const corpus_id of ['', 'abc', `${'0'.repeat(64)}:text`]) {
      const e = await callError(c, 'GetCorpus', { corpus_id });
      assert.equal(e.code, S.INVALID_ARGUMENT, corpus_id);
      assert.match(e.details, /corpusId/);
    }
  });

  test('DeleteCorpus: FAILED_PRECONDITION while a queued job uses it, then deleted (the corpus answered, NOT_FOUND after, over HTTP too)', async () => {
    const bytes = Buffer.from(`Nur für den Löschtest. ${'Vom Ende der Zeit. '.repeat(200)}`, 'utf8');
    const { res } = await upload(c, [bytes]);
    const id = res.corpus.id as string;
    const submitted = await call(c, 'SubmitJob', { spec: { data: { corpus: { id }, tokenizer: 'chars', batch_size: 4, num_steps: 8 }, train: { epochs: 1 } } });
    const inUse = await callError(c, 'DeleteCorpus', { corpus_id: id });
    assert.equal(inUse.code, S.FAILED_PRECONDITION);
    assert.match(inUse.details, new RegExp(submitted.job.id));
    await call(c, 'CancelJob', { job_id: submitted.job.id });
    assert.deepEqual(await call(c, 'DeleteCorpus', { corpus_id: id }), res.corpus);
    assert.equal((await callError(c, 'GetCorpus', { corpus_id: id })).code, S.NOT_FOUND);
    assert.equal((await fetch(`${api.httpAddress}/v1/corpora/${id}`)).status, 404);
    assert.ok(!(await stored()).includes(id));
    assert.equal((await callError(c, 'DeleteCorpus', { corpus_id: 'abc' })).code, S.INVALID_ARGUMENT);
  });
});
