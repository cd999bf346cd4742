// The dashboard's browser modules that need no DOM (api.js, format.js), and the plugin's routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { ApiError, SseParser, createApi } from '../../../src/api/dashboard/public/api.js';
import {
  buildBody,
  cleanText,
  describeCorpus,
  fieldFor,
  fmtDuration,
  fmtPerplexity,
  fmtRate,
  fmtWhen,
  logTicks,
  splitSample,
  stateNotice,
} from '../../../src/api/dashboard/public/format.js';
import { dashboardRoutes } from '../../../src/api/dashboard/index.js';

test('SseParser: events split across chunks, CRLF, comments, ids kept until changed', () => {
  const p = new SseParser();
  assert.deepEqual(p.push(': keep-alive\n\nid: 1\nevent: epoch\ndata: {"a"'), []);
  assert.deepEqual(p.push(':1}\n\n'), [{ event: 'epoch', data: '{"a":1}', id: '1' }]);
  assert.deepEqual(p.push('data: x\r\ndata:  y\r'), []); // a lone CR at the end may be half of CRLF
  assert.deepEqual(p.push('\n\r\n'), [{ event: 'message', data: 'x\n y', id: '1' }]);
  assert.deepEqual(p.push('id: 7\ndata\n\n'), [{ event: 'message', data: '', id: '7' }]);
  assert.equal(p.lastEventId, '7');
});

type Call = { url: string; init: RequestInit };
function fakeFetch(respond: (call: Call) => Response) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    const call = { url: String(url), init };
    calls.push(call);
    return respond(call);
  }) as unknown as typeof fetch;
  return { f, calls };
}
const header = (c: Call, name: string) => (c.init.headers as Record<string, string>)[name];
function sseBody(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(ctrl) {
      for (const c of chunks) ctrl.enqueue(enc.encode(c));
      ctrl.close();
    },
  });
}

test('api: bearer key, JSON body, problem+json errors with fields', async () => {
  const { f, calls } = fakeFetch(
    () =>
      new Response(
        JSON.stringify({
          title: 'Bad Request',
          status: 400,
          detail: 'invalid spec',
          errors: [{ field: 'model.numHiddens', message: 'model.numHiddens must be ≤ 1024' }],
        }),
        {
          status: 400,
          headers: { 'content-type': 'application/problem+json' },
        },
      ),
  );
  let key = '';
  const api = createApi({ getKey: () => key, fetch: f });
  key = 's3cret';
  const err = await api.submit({ model: { numHiddens: 5000 } }).catch((e: unknown) => e);
  assert.ok(err instanceof ApiError);
  assert.equal(err.status, 400);
  assert.equal(err.message, 'invalid spec');
  assert.deepEqual(err.errors, [{ field: 'model.numHiddens', message: 'model.numHiddens must be ≤ 1024' }]);
  assert.equal(calls[0].url, 'v1/jobs');
  assert.equal(calls[0].init.method, 'POST');
  assert.equal(header(calls[0], 'authorization'), 'Bearer s3cret');
  assert.equal(header(calls[0], 'content-type'), 'application/json');
  assert.deepEqual(JSON.parse(String(calls[0].init.body)), { model: { numHiddens: 5000 } });

  key = '';
  const { f: f2, calls: calls2 } = fakeFetch(() => new Response('{"jobs":[]}', { status: 200 }));
  const api2 = createApi({ getKey: () => key, fetch: f2 });
  assert.deepEqual(await api2.listJobs({ state: 'running', limit: 5 }), { jobs: [] });
  assert.equal(calls2[0].url, 'v1/jobs?state=running&limit=5');
  assert.equal(header(calls2[0], 'authorization'), undefined);
  // the reads the page repeats are marked (the service logs them at debug); a submit is not
  assert.equal(header(calls2[0], 'x-dashboard-poll'), '1');
  assert.equal(header(calls[0], 'x-dashboard-poll'), undefined);
});

test('api.streamEvents: resumes with Last-Event-ID and applies each seq once', async () => {
  const ev = (seq: number, epoch: number) =>
    `id: ${seq}\nevent: epoch\ndata: ${JSON.stringify({ seq, type: 'epoch', epoch, epochs: 9, perplexity: 3, tokensPerSec: 1, elapsedMs: 1, time: '' })}\n\n`;
  const { f, calls } = fakeFetch(
    () =>
      new Response(sseBody([ev(3, 2), ev(4, 3).slice(0, 20), ev(4, 3).slice(20), ': ping\n\n', ev(4, 3), ev(5, 4)]), {
        headers: { 'content-type': 'text/event-stream' },
      }),
  );
  const api = createApi({ getKey: () => '', fetch: f });
  const seen: number[] = [];
  const last = await api.streamEvents('j 1', 2, (e) => seen.push(e.seq));
  assert.deepEqual(seen, [3, 4, 5]);
  assert.equal(last, 5);
  assert.equal(calls[0].url, 'v1/jobs/j%201/events');
  assert.equal(header(calls[0], 'last-event-id'), '2');
  await api.streamEvents('j', 0, () => {});
  assert.equal(header(calls[1], 'last-event-id'), undefined);

  // a stream the server cannot continue ends with an error event: a rejection, after the events before it
  const broken = fakeFetch(
    () =>
      new Response(sseBody([ev(1, 1), 'event: error\ndata: {"status":503,"title":"Service Unavailable","detail":"redis down"}\n\n']), {
        headers: { 'content-type': 'text/event-stream' },
      }),
  );
  const got: number[] = [];
  const err = await createApi({ getKey: () => '', fetch: broken.f })
    .streamEvents('j', 0, (e) => got.push(e.seq))
    .catch((e: unknown) => e);
  assert.deepEqual(got, [1]);
  assert.ok(err instanceof ApiError && err.status === 503 && err.message === 'redis down');
});

test('api.generate: streamed chunks or one JSON answer', async () => {
  const streamed = fakeFetch(
    () =>
      new Response(sseBody(['data: {"text":"ab"}\n\n', 'data: {"text":"c"}\n\nevent: done\ndata: {}\n\n']), {
        headers: { 'content-type': 'text/event-stream' },
      }),
  );
  const chunks: string[] = [];
  const api = createApi({ getKey: () => '', fetch: streamed.f });
  assert.equal(await api.generate('j', { prefix: 'x', numChars: 3 }, { onText: (c) => chunks.push(c) }), 'abc');
  assert.deepEqual(chunks, ['ab', 'c']);
  assert.match(header(streamed.calls[0], 'accept'), /text\/event-stream/);

  const plain = fakeFetch(() => new Response('{"text":"time traveller the"}', { headers: { 'content-type': 'application/json' } }));
  const api2 = createApi({ getKey: () => '', fetch: plain.f });
  assert.equal(await api2.generate('j', { prefix: 'time traveller', numChars: 4 }), 'time traveller the');

  const failing = fakeFetch(
    () => new Response(sseBody(['event: error\ndata: {"status":409,"detail":"no checkpoint"}\n\n']), { headers: { 'content-type': 'text/event-stream' } }),
  );
  const err = await createApi({ getKey: () => '', fetch: failing.f })
    .generate('j', { prefix: 'a', numChars: 1 })
    .catch((e: unknown) => e);
  assert.ok(err instanceof ApiError && err.status === 409 && err.message === 'no checkpoint');
});

test('format: spec body from form entries, error field mapping, sample split, numbers', () => {
  assert.deepEqual(
    buildBody([
      { path: 'model.numHiddens', value: '16', type: 'int' },
      { path: 'train.lr', value: ' 0.5 ', type: 'number' },
      { path: 'train.seed', value: '', type: 'int' },
      { path: 'data.batchSize', value: 'lots', type: 'int' },
      { path: 'report.prefixes', value: 'time traveller, traveller,', type: 'list' },
      { path: 'name', value: 'n', type: 'string' },
    ]),
    { model: { numHiddens: 16 }, train: { lr: 0.5 }, data: { batchSize: 'lots' }, report: { prefixes: ['time traveller', 'traveller'] }, name: 'n' },
  );
  const known = new Set(['model.numHiddens', 'report.prefixes', 'data.corpus', 'data.corpus.text']);
  assert.equal(fieldFor('report.prefixes.1', known), 'report.prefixes');
  assert.equal(fieldFor('data.corpus.text', known), 'data.corpus.text');
  assert.equal(fieldFor('data.maxTokens', known), undefined);
  assert.equal(fieldFor('', known), undefined);
  assert.equal(cleanText('  Time-Traveller! '), 'time traveller');
  assert.deepEqual(splitSample('Time Traveller', 'time traveller for so'), { prefix: 'time traveller', continuation: ' for so' });
  assert.deepEqual(splitSample('zz', 'abc'), { prefix: '', continuation: 'abc' });
  assert.equal(fmtPerplexity(1.04567), '1.046');
  assert.equal(fmtPerplexity(17.456), '17.46');
  assert.equal(fmtPerplexity(NaN), '–');
  assert.equal(fmtRate(15432.6), '15,433');
  assert.equal(fmtDuration(65_000), '1 min 5 s');
  // the jobs table's compact times (local): today, this year, before
  const now = new Date(2025, 5, 14, 12, 0, 0);
  assert.equal(fmtWhen(new Date(2025, 5, 14, 9, 5, 7).toISOString(), now), '09:05:07');
  assert.equal(fmtWhen(new Date(2025, 2, 5, 14, 3).toISOString(), now), '5 Mar 14:03');
  assert.equal(fmtWhen(new Date(2024, 11, 31, 23, 59).toISOString(), now), '2024-12-31');
  assert.equal(fmtWhen(undefined, now), '–');
});

test('logTicks: the perplexity axis from 1 — 1, 2, 5, 10, 20 for a d2l run, finer for a short range, coarser for a long one', () => {
  assert.deepEqual(logTicks(1, 28.9), [1, 2, 5, 10, 20]);
  assert.deepEqual(logTicks(1, 2.3), [1, 1.5, 2]);
  assert.deepEqual(logTicks(1, 1.35), [1, 1.1, 1.2, 1.3]);
  assert.deepEqual(logTicks(1, 1500), [1, 3, 10, 30, 100, 300, 1000]);
  assert.deepEqual(logTicks(1, 1500, 4), [1, 10, 100, 1000]);
  assert.deepEqual(logTicks(0, 10), []);
});

test("stateNotice: grammatical, by the label given, with a failed job's error", () => {
  assert.equal(stateNotice('d2l default (scratch)', 'succeeded'), 'Job d2l default (scratch) succeeded.');
  assert.equal(stateNotice('tiny', 'running'), 'Job tiny is running.');
  assert.equal(stateNotice('tiny', 'queued', 'worker shut down; resumes from epoch 7'), 'Job tiny is queued (worker shut down; resumes from epoch 7).');
  assert.equal(stateNotice('tiny', 'cancelled', 'cancelled at epoch 3'), 'Job tiny was cancelled.');
  assert.equal(stateNotice('tiny', 'failed', 'perplexity is NaN at epoch 4'), 'Job tiny failed: perplexity is NaN at epoch 4.');
  assert.equal(stateNotice('tiny', 'failed', 'out of memory.'), 'Job tiny failed: out of memory.');
  assert.equal(stateNotice('tiny', 'failed'), 'Job tiny failed.');
});

test('dashboardRoutes: page and assets with their content types, a strict CSP, nothing external', async () => {
  const app = Fastify();
  await app.register(dashboardRoutes);
  try {
    const page = await app.inject({ method: 'GET', url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'.*connect-src 'self'/);
    const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((r) => !r.startsWith('#') && !r.startsWith('data:'));
    assert.ok(refs.length >= 3, refs.join());
    for (const ref of refs) {
      assert.doesNotMatch(ref, /^(https?:)?\/\//, `external reference ${ref}`);
      const r = await app.inject({ method: 'GET', url: `/${ref}` });
      assert.equal(r.statusCode, 200, ref);
    }
    const types: Record<string, RegExp> = {
      'app.js': /^text\/javascript/,
      'uPlot.esm.js': /^text\/javascript/,
      'style.css': /^text\/css/,
      'uPlot.min.css': /^text\/css/,
    };
    for (const [file, type] of Object.entries(types)) {
      const r = await app.inject({ method: 'GET', url: `/assets/${file}` });
      assert.equal(r.statusCode, 200, file);
      assert.match(String(r.headers['content-type']), type, file);
      assert.doesNotMatch(r.body, /\bimport\s[^;]*from\s*['"]https?:/, `${file} imports from the network`);
    }
    // the app's modules import only each other, and each one they import (transitively) is served
    const seen = new Set<string>();
    const queue = ['app.js'];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const r = await app.inject({ method: 'GET', url: `/assets/${file}` });
      assert.equal(r.statusCode, 200, file);
      for (const m of r.body.matchAll(/(?:from|import) '([^']+)'/g)) {
        assert.match(m[1], /^\.\/[\w.-]+\.js$/, `${file} imports ${m[1]}`);
        queue.push(m[1].slice(2));
      }
    }
    assert.ok(seen.has('sse.js') && seen.has('job-view.js') && seen.has('uPlot.esm.js'), [...seen].join());
    const missing = await app.inject({ method: 'GET', url: '/assets/..%2Fpackage.json' });
    assert.equal(missing.statusCode, 404);
    assert.match(String(missing.headers['content-type']), /problem\+json/);
  } finally {
    await app.close();
  }
});

test('describeCorpus: the book by name, pasted text by size and hash (views carry no text)', () => {
  assert.equal(describeCorpus('timemachine'), 'The Time Machine (H. G. Wells), d2l’s corpus');
  assert.equal(describeCorpus({ bytes: 123456, sha256: 'ab'.repeat(32) }), 'pasted text, 123,456 bytes, SHA-256 abababababab…');
  assert.equal(describeCorpus({ bytes: 1, sha256: 'cd'.repeat(32) }), 'pasted text, 1 byte, SHA-256 cdcdcdcdcdcd…');
  assert.equal(describeCorpus({ text: 'hello world' }), 'pasted text, 11 characters');
});
