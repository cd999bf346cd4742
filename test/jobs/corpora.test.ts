// Uploaded corpora and the tokenizers that keep what a text has (docs/corpora.md): POST/GET/DELETE
// /v1/corpora against real Redis, and jobs that name an upload trained by a real worker process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { connectRedis } from '../../src/jobs/redis.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { REDIS_URL, WorkerProcess, deletePrefix, startTestApi, streamEvents, testEnv, type TestApi } from '../support/service.js';

// a Russian text written for this test (public-domain style prose): Cyrillic in both cases, digits,
// punctuation and line breaks — all of which d2l's rule would throw away
const RUSSIAN = `Однажды вечером, в 1895 году, Путешественник во Времени рассказал нам о своей машине.
«Время — это четвёртое измерение», — сказал он, и все мы засмеялись.
Но он не шутил: машина стояла в лаборатории, блестящая, из никеля и слоновой кости!
Утром мы вернулись; его не было. Где он? Когда он? Никто не знал.
`;
const GERMAN_WORDS = `Der Zeitreisende erzählte uns von seiner Maschine . Die Zeit ist die vierte Dimension , sagte er .
Wir lachten , aber er meinte es ernst . Die Maschine stand im Labor , und am Morgen war er fort .
`;

let api: TestApi;
let worker: WorkerProcess;
const env = testEnv({ CORPUS_MAX_BYTES: String(1024 * 1024), CHECKPOINT_EVERY: '2' });

before(async () => {
  api = await startTestApi(env);
  worker = new WorkerProcess(env);
  await worker.ready;
});

after(async () => {
  worker?.kill('SIGKILL');
  await worker?.exited;
  await api?.close();
  await deletePrefix(env.QUEUE_PREFIX);
});

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function upload(body: Buffer | string, type = 'text/plain; charset=utf-8') {
  return request(api.url)
    .post('/v1/corpora')
    .set('content-type', type)
    .send(Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'));
}

function finalState(events: JobEvent[]): JobEvent & { type: 'state' } {
  const last = events.at(-1)!;
  assert.equal(last.type, 'state', JSON.stringify(last));
  return last as JobEvent & { type: 'state' };
}

test('upload: content-addressed (the same text twice is one corpus), stored whole in Redis under the prefix, listed, read', async () => {
  const text = RUSSIAN.repeat(3);
  const first = await upload(text).expect(201);
  assert.equal(first.body.id, sha256(text));
  assert.equal(first.body.bytes, Buffer.byteLength(text));
  assert.equal(first.body.characters, [...text].length);
  assert.ok(first.body.preview.startsWith('Однажды вечером, в 1895 году'), first.body.preview);
  assert.equal(first.headers.location, `/v1/corpora/${first.body.id}`);
  const again = await upload(text).expect(200);
  assert.equal(again.body.id, first.body.id);
  assert.equal(again.body.created, false);

  const { body: list } = await request(api.url).get('/v1/corpora').expect(200);
  assert.deepEqual(
    list.corpora.map((c: { id: string }) => c.id).filter((id: string) => id === first.body.id),
    [first.body.id],
  );
  const { body: one } = await request(api.url).get(`/v1/corpora/${first.body.id}`).expect(200);
  assert.equal(one.characters, [...text].length);

  const redis = connectRedis(REDIS_URL);
  try {
    const stored = await redis.getBuffer(`${env.QUEUE_PREFIX}:corpus:${first.body.id}:text`);
    assert.ok(stored?.equals(Buffer.from(text, 'utf8')));
    assert.deepEqual(await redis.keys(`${env.QUEUE_PREFIX}:corpus-upload:*`), []); // no temporary key left
  } finally {
    redis.disconnect();
  }
});

test('upload refusals: invalid UTF-8 400, empty 400, over CORPUS_MAX_BYTES 413 (nothing stored), not text/plain 415, unknown id 404, malformed id 400', async () => {
  const bad = Buffer.concat([Buffer.from('Привет '), Buffer.from([0xd0]), Buffer.from(' мир')]);
  const r1 = await upload(bad).expect(400);
  assert.match(r1.body.detail, /not valid UTF-8/);
  const r2 = await upload('').expect(400);
  assert.match(r2.body.detail, /empty/);
  const big = Buffer.alloc(1024 * 1024 + 1, 'a');
  const r3 = await upload(big).expect(413);
  assert.match(r3.body.detail, /1048576/);
  await request(api.url).post('/v1/corpora').set('content-type', 'application/octet-stream').send(Buffer.from('abc')).expect(415);
  await request(api.url)
    .get(`/v1/corpora/${'0'.repeat(64)}`)
    .expect(404);
  await request(api.url).get('/v1/corpora/nothex').expect(400);
  const redis = connectRedis(REDIS_URL);
  try {
    assert.equal(await redis.exists(`${env.QUEUE_PREFIX}:corpus:${sha256(big)}`), 0);
    assert.deepEqual(await redis.keys(`${env.QUEUE_PREFIX}:corpus-upload:*`), []);
  } finally {
    redis.disconnect();
  }
});

test('DELETE with keys off removes the corpus outright, in one step: record, text, jobs set, an owners hash from a keyed upload, and its list entry', async () => {
  const text = `${GERMAN_WORDS}outright`;
  const { body: corpus } = await upload(text).expect(201);
  const P = env.QUEUE_PREFIX;
  const keys = [`${P}:corpus:${corpus.id}`, `${P}:corpus:${corpus.id}:text`, `${P}:corpus:${corpus.id}:jobs`, `${P}:corpus:${corpus.id}:owners`];
  const redis = connectRedis(REDIS_URL);
  try {
    // a job that named it, and an owner from a time keys were on: neither holds back a keys-off DELETE
    await redis.sadd(keys[2], 'j-finished');
    await redis.hset(keys[3], 'a-fingerprint', String(Date.now()));
    assert.equal(await redis.exists(...keys), 4);
    const { body: deleted } = await request(api.url).delete(`/v1/corpora/${corpus.id}`).expect(200);
    assert.deepEqual([deleted.id, deleted.createdAt], [corpus.id, corpus.createdAt], 'the corpus as it was');
    assert.equal(await redis.exists(...keys), 0, 'every key of the corpus is gone');
    assert.equal(await redis.zscore(`${P}:corpora`, corpus.id), null);
    await request(api.url).get(`/v1/corpora/${corpus.id}`).expect(404);
  } finally {
    redis.disconnect();
  }
});

test('a chars job on an uploaded Russian text: whole corpus by default, the vocabulary keeps case/digits/punctuation, samples and generation keep the alphabet; DELETE 409 while queued/running, 200 after', async () => {
  const text = RUSSIAN.repeat(6);
  const { body: corpus } = await upload(text).expect((r) => assert.ok(r.status === 201 || r.status === 200));
  const spec = {
    model: { kind: 'scratch', numHiddens: 32 },
    data: { corpus: { id: corpus.id }, tokenizer: 'chars', batchSize: 4, numSteps: 16 },
    train: { epochs: 30, seed: 3, lr: 1 },
    report: { predictEvery: 15, numPreds: 30 },
  };
  const { body: job } = await request(api.url).post('/v1/jobs').send(spec).expect(201);
  // no silent cut: maxTokens is the whole corpus, stated in the answer with the vocabulary
  assert.equal(job.spec.data.maxTokens, [...text].length);
  assert.equal(job.data.totalTokens, [...text].length);
  assert.equal(job.data.truncated, false);
  const alphabet = new Set([...text]);
  assert.equal(job.data.vocabSize, alphabet.size + 1);
  for (const ch of ['О', 'о', '1', '«', '—', '\n', '!']) assert.ok(alphabet.has(ch), ch);
  assert.equal(job.data.topTokens[0][0], ' ');
  // prefixes from the corpus's own first words
  assert.deepEqual(job.spec.report.prefixes, ['Однажды вечером,', 'Однажды']);
  // the job names the corpus by id; no view carries its text
  assert.deepEqual(job.spec.data.corpus, { id: corpus.id });
  const { text: listed } = await request(api.url).get('/v1/jobs').expect(200);
  assert.ok(!listed.includes('Путешественник'));

  // in use: DELETE is refused while the job is queued or running
  const del = await request(api.url).delete(`/v1/corpora/${corpus.id}`).expect(409);
  assert.match(del.body.detail, new RegExp(job.id));

  const events = await streamEvents(api.url, job.id, { timeoutMs: 120_000 });
  assert.equal(finalState(events).state, 'succeeded', JSON.stringify(events.at(-1)));
  const sampled = events.filter((e) => e.type === 'epoch' && e.samples).flatMap((e) => (e.type === 'epoch' ? e.samples! : []));
  assert.ok(sampled.length >= 2);
  for (const s of sampled) {
    assert.ok(s.text.startsWith(s.prefix), JSON.stringify(s));
    for (const ch of s.text) assert.ok(alphabet.has(ch), `${JSON.stringify(ch)} is not in the corpus: ${JSON.stringify(s.text)}`);
  }
  const { body: gen } = await request(api.url).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'Время', numChars: 40, temperature: 1, seed: 2 }).expect(200);
  assert.equal(gen.prefix, 'Время');
  assert.equal([...gen.generated].length, 40);
  for (const ch of gen.generated) assert.ok(alphabet.has(ch), `${JSON.stringify(ch)} in ${JSON.stringify(gen.generated)}`);
  assert.match(gen.generated, /[а-яё]/);

  const { body: deleted } = await request(api.url).delete(`/v1/corpora/${corpus.id}`).expect(200);
  assert.equal(deleted.id, corpus.id);
  await request(api.url).get(`/v1/corpora/${corpus.id}`).expect(404);
  // a job naming a deleted corpus is refused at submission
  const gone = await request(api.url).post('/v1/jobs').send(spec).expect(400);
  assert.match(gone.body.detail, /not found/);
});

test('a words job: d2l word tokens with minFreq → <unk>; samples and generation are words joined by spaces', async () => {
  const text = GERMAN_WORDS.repeat(20);
  const { body: corpus } = await upload(text).expect(201);
  const spec = {
    model: { kind: 'scratch', numHiddens: 32 },
    data: { corpus: { id: corpus.id }, tokenizer: 'words', minFreq: 2, batchSize: 4, numSteps: 8 },
    train: { epochs: 6, seed: 5 },
    report: { predictEvery: 3, numPreds: 6 },
  };
  const { body: job } = await request(api.url).post('/v1/jobs').send(spec).expect(201);
  const words = text.split(/\s+/).filter(Boolean);
  assert.equal(job.data.totalTokens, words.length);
  assert.equal(job.data.vocabSize, new Set(words).size + 1);
  assert.deepEqual(job.spec.report.prefixes, ['Der Zeitreisende', 'Der']);
  const events = await streamEvents(api.url, job.id, { timeoutMs: 120_000 });
  assert.equal(finalState(events).state, 'succeeded');
  const last = events.filter((e) => e.type === 'epoch').at(-1)!;
  assert.ok(last.type === 'epoch' && last.samples);
  const vocab = new Set(words);
  for (const s of last.samples!) {
    const got = s.text.split(' ');
    assert.equal(got.length, s.prefix.split(' ').length + 6, JSON.stringify(s));
    for (const w of got) assert.ok(vocab.has(w), `${w} in ${JSON.stringify(s.text)}`);
  }
  const { body: gen } = await request(api.url).post(`/v1/jobs/${job.id}/generate`).send({ prefix: 'Die  Zeit', numChars: 5 }).expect(200);
  assert.equal(gen.prefix, 'Die Zeit');
  assert.equal(gen.generated.split(' ').filter(Boolean).length, 5);
  assert.ok(gen.generated.startsWith(' '));

  // a vocabulary over the model's limit is refused naming it; minFreq is the way out
  const many = Array.from({ length: 50_001 }, (_, i) => `w${i}`).join(' ');
  const { body: big } = await upload(many).expect(201);
  const r = await request(api.url)
    .post('/v1/jobs')
    .send({ ...spec, data: { ...spec.data, corpus: { id: big.id }, minFreq: 0 } })
    .expect(400);
  assert.match(r.body.detail, /vocabulary has 50002 tokens.*at most 50000/);
  assert.equal(r.body.errors[0].field, 'data.minFreq');
});

test('held-out perplexity and early stopping: each epoch carries validPerplexity; a job whose validation stops improving succeeds early with the reason, and its model is the best epoch', async () => {
  const text = RUSSIAN.repeat(6);
  const { body: corpus } = await upload(text).expect((r) => assert.ok(r.status === 201 || r.status === 200));
  const spec = {
    model: { kind: 'scratch', numHiddens: 32 },
    data: { corpus: { id: corpus.id }, tokenizer: 'chars', batchSize: 4, numSteps: 16, validFraction: 0.2 },
    // minDelta larger than any improvement: epoch 1 is the best, the job stops after patience more
    train: { epochs: 50, seed: 3, earlyStopping: { patience: 2, minDelta: 1000 } },
    report: { predictEvery: 100, numPreds: 10 },
  };
  const { body: job } = await request(api.url).post('/v1/jobs').send(spec).expect(201);
  const n = [...text].length;
  assert.equal(job.data.validTokens, Math.floor(n * 0.2));
  assert.equal(job.data.trainTokens, n - Math.floor(n * 0.2));
  const events = await streamEvents(api.url, job.id, { timeoutMs: 120_000 });
  const fin = finalState(events);
  assert.equal(fin.state, 'succeeded');
  const epochs = events.filter((e) => e.type === 'epoch');
  assert.equal(epochs.length, 3);
  for (const e of epochs) assert.ok(e.type === 'epoch' && Number.isFinite(e.validPerplexity) && e.validPerplexity! > 1, JSON.stringify(e));
  const { body: done } = await request(api.url).get(`/v1/jobs/${job.id}`).expect(200);
  assert.match(done.summary.stopReason, /early stopping.*epoch 1/);
  assert.equal(done.summary.bestEpoch, 1);
  assert.equal(done.summary.epochs, 3);
  assert.equal(done.checkpointEpoch, 3);

  // early stopping without a held-out part is refused
  const r = await request(api.url)
    .post('/v1/jobs')
    .send({ ...spec, data: { ...spec.data, validFraction: 0 } })
    .expect(400);
  assert.match(r.body.detail, /earlyStopping needs data.validFraction/);
  // a held-out part shorter than one step is refused
  const r2 = await request(api.url)
    .post('/v1/jobs')
    .send({ ...spec, data: { ...spec.data, validFraction: 0.5, maxTokens: 700, numSteps: 16, batchSize: 24 } })
    .expect(400);
  assert.match(r2.body.detail, /minibatch/);
});
