// Hostile input, generated from a seed (FUZZ_SEED to replay): ≥ 500 malformed requests over HTTP
// and gRPC against a real api process (auth off, the default: writes without JSON and
// cross-origin or DNS-rebound writes must be refused without queuing anything). Nothing may crash it, nothing may be a 5xx / INTERNAL,
// and every 400 / INVALID_ARGUMENT names the offending field (problem+json errors[].field; gRPC:
// the lstm-trainer-errors-bin trailer).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { ERRORS_TRAILER } from '../../src/api/grpc/index.js';
import { REDIS_URL, WorkerProcess, deletePrefix, testEnv, waitFor } from '../support/service.js';
import { trainerClient, type Client } from '../support/grpc-client.js';
import { ApiProcess, rng } from '../support/faults.js';
import { parseJobSpec } from '../../src/train/spec.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const HTTP_CASES = 400;
const GRPC_CASES = 200;
const env = testEnv({
  REDIS_URL,
  // no per-client limits here: this test is about input handling (limits.test.ts covers them)
  RATE_LIMIT_SUBMITS: '0',
  MAX_QUEUED_PER_CLIENT: '0',
  MAX_QUEUED_JOBS: '0',
  LOG_LEVEL: 'warn',
  SHUTDOWN_DRAIN_MS: '0',
});
let api: ApiProcess;
let client: Client;
/**
 * A real, trained job (a worker trains it in before(), then stops, so nothing else trains): its Redis
 * key suffixes (`:events`, `:ckpt`) are the ids that once answered 500, and it serves the sampling cases.
 */
let existing = '';
const suffixIds = () => [`${existing}:events`, `${existing}:ckpt`, `${existing}:`, `${existing}:events:x`];

before(async () => {
  api = await ApiProcess.start(env);
  client = trainerClient(api.grpcPort);
  const spec = {
    name: 'fuzz-existing',
    model: { numHiddens: 16 },
    data: { maxTokens: 3000, batchSize: 8, numSteps: 10 },
    train: { epochs: 2, seed: 3 },
    report: { predictEvery: 100 },
  };
  const res = await fetch(`${api.httpUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  existing = ((await res.json()) as { id: string }).id;
  const worker = await WorkerProcess.start(env, { readyTimeoutMs: 60_000 });
  try {
    await waitFor(
      'the job to succeed',
      async () => ((await (await fetch(`${api.httpUrl}/v1/jobs/${existing}`)).json()) as { state: string }).state === 'succeeded',
      120_000,
      200,
    );
  } finally {
    await worker.stop();
  }
});
after(async () => {
  client?.close();
  await api?.stop();
  await deletePrefix(env.QUEUE_PREFIX);
});

const r = rng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const UNICODE = ['ünïcödé', '时间旅行者', '🦀🔥', '\u0000nul', '\u202eRTL', 'a\u0301', '\uFFFF', '𝔱𝔦𝔪𝔢', 'x'.repeat(300), ' ', ''];
const SPEC_FIELDS = [
  'model.kind',
  'model.numHiddens',
  'model.numLayers',
  'data.corpus',
  'data.corpus.text',
  'data.maxTokens',
  'data.batchSize',
  'data.numSteps',
  'data.sampling',
  'train.epochs',
  'train.lr',
  'train.clipTheta',
  'train.seed',
  'report.predictEvery',
  'report.prefixes',
  'report.numPreds',
  'name',
  'idempotencyKey',
  'tags',
];
/** JSON text of a hostile value (raw text, so 1e999 and friends reach the server as written). */
function hostileJson(): string {
  return pick([
    () => String(-int(1, 1e9)),
    () => '0',
    () => String(int(1e6, 2 ** 31)),
    () => '1.5',
    () => '1e999',
    () => '-1e999',
    () => '1e-999',
    () => '"NaN"',
    () => '"Infinity"',
    () => '"-Infinity"',
    () => '"12"',
    () => 'true',
    () => 'null',
    () => '[]',
    () => '[1,2,3]',
    () => '{}',
    () => '{"a":1}',
    () => JSON.stringify(pick(UNICODE)),
    () => String(Number.MAX_SAFE_INTEGER + 2),
    () => '9'.repeat(400),
    () => '-0',
    () => '['.repeat(50) + ']'.repeat(50),
  ])();
}

function setPath(path: string, valueJson: string): string {
  const parts = path.split('.');
  let out = valueJson;
  for (let i = parts.length - 1; i >= 0; i--) out = `{${JSON.stringify(parts[i])}:${out}}`;
  return out;
}

/**
 * Idempotency: a few keys, submitted over HTTP and gRPC (one global namespace: auth is off) with
 * specs that are sometimes the same once defaulted and sometimes not. The expected answer follows
 * from what each key was first submitted with: new → created, same spec → that job, else a conflict.
 */
const idemFirst = new Map<string, string>();
function idemSubmission(): { spec: Record<string, unknown>; outcome: 'created' | 'same' | 'conflict' } {
  const key = pick(['fz-a', 'fz-b', 'fz-c', 'fz-d']);
  const spec: Record<string, unknown> = {
    idempotencyKey: key,
    model: { numHiddens: pick([8, 16]) },
    data: { maxTokens: 2000, batchSize: 4, numSteps: 5 },
    train: pick([{ epochs: 1 }, { epochs: 1, lr: 1 }, { epochs: 2 }]),
  };
  if (r() < 0.2) spec.name = pick(['n1', 'n2']);
  const canonical = JSON.stringify(parseJobSpec(spec));
  const first = idemFirst.get(key);
  if (first === undefined) idemFirst.set(key, canonical);
  return { spec, outcome: first === undefined ? 'created' : first === canonical ? 'same' : 'conflict' };
}

interface HttpCase {
  what: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The exact answer this case must get (beyond "no 5xx"): a status and the field errors[] names. */
  expect?: { status: number; field?: string };
}

const BAD_IDS = ['', 'x', '..%2F..%2Fetc%2Fpasswd', '%00', `j${'z'.repeat(300)}`, '%F0%9F%A6%80', 'job%20id', 'j000000000zzzzzzzzzz', '%E2%80%AE', "'%3B--"];
/** Ids the router itself refused before (fastify's 414 body for 101–200 characters, a plain 400 for `%ff`): now 400 problems naming `id`. */
const ROUTER_BAD_IDS = () => ['j'.repeat(int(101, 200)), 'j'.repeat(int(21, 100)), '%ff', '%c0%af', `j0mwy3g8821106b38b1c%ff`, '%'];

/** Write routes for the cases below: the real job's (a valid write there would be a 409 or a generation). */
const writePaths = () => ['/v1/jobs', `/v1/jobs/${existing}/cancel`, `/v1/jobs/${existing}/generate`];
/** Origins and Hosts a web page elsewhere (or a DNS-rebound name) would send. */
const FOREIGN_ORIGINS = [
  'http://evil.example',
  'https://evil.example',
  'null',
  'http://127.0.0.1.evil.example',
  'http://localhost.evil.example:8080',
  'file://',
  'chrome-extension://abc',
];
const FOREIGN_HOSTS = ['evil.example', 'evil.example:8080', '127.0.0.1.nip.io', 'localhost.evil.example', 'xn--80ak6aa92e.com'];
const CROSS_NAME = 'fz-cross-origin';

function httpCase(i: number): HttpCase {
  const json = { 'content-type': 'application/json' };
  const kind = i % 15;
  switch (kind) {
    case 13: {
      // a write without JSON: what a page can send cross-origin without a preflight (no-cors
      // fetch, a form, text/plain), and an empty body — never a job, whatever the route
      const path = pick(writePaths());
      const v = pick<{ headers: Record<string, string>; body?: string; status: number; field: string }>([
        { headers: {}, body: undefined, status: 415, field: 'content-type' },
        { headers: {}, body: '{}', status: 415, field: 'content-type' },
        { headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: CROSS_NAME }), status: 415, field: 'content-type' },
        { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name=${CROSS_NAME}`, status: 415, field: 'content-type' },
        { headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--', status: 415, field: 'content-type' },
        { headers: { 'content-type': 'application/json' }, body: undefined, status: 400, field: 'body' },
        { headers: { 'content-type': 'application/json' }, body: '   ', status: 400, field: 'body' },
      ]);
      return {
        what: `write without JSON ${JSON.stringify(v.headers)} ${JSON.stringify(v.body)} ${path}`,
        method: 'POST',
        path,
        headers: v.headers,
        body: v.body,
        expect: { status: v.status, field: v.field },
      };
    }
    case 14: {
      // a cross-origin (or DNS-rebound) write with auth off: refused before anything is queued
      const host = r() < 0.3;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        ...(host ? { host: pick(FOREIGN_HOSTS) } : { origin: pick(FOREIGN_ORIGINS) }),
      };
      const path = pick(writePaths());
      const body =
        path === '/v1/jobs'
          ? JSON.stringify({ name: CROSS_NAME, model: { numHiddens: 8 }, data: { maxTokens: 2000, batchSize: 4, numSteps: 5 }, train: { epochs: 1 } })
          : path.endsWith('/generate')
            ? '{"prefix":"time"}'
            : '{}';
      return {
        what: `cross-origin write ${JSON.stringify(headers)} ${path}`,
        method: 'POST',
        path,
        headers,
        body,
        expect: { status: 403, field: host ? 'host' : 'origin' },
      };
    }
    case 12: {
      const { spec, outcome } = idemSubmission();
      const expect = { created: { status: 201 }, same: { status: 200 }, conflict: { status: 409, field: 'idempotencyKey' } }[outcome];
      return { what: `idempotency ${outcome} ${JSON.stringify(spec)}`, method: 'POST', path: '/v1/jobs', headers: json, body: JSON.stringify(spec), expect };
    }
    case 0:
    case 1:
    case 2: {
      // one field of the spec set to something hostile, possibly next to unknown fields
      const f = pick(SPEC_FIELDS);
      let body = setPath(f, hostileJson());
      if (r() < 0.3) body = `${body.slice(0, -1)},${JSON.stringify(pick(['zzz', '__proto__', 'constructor', 'model2', '']))}:1}`;
      return { what: `spec ${f}`, method: 'POST', path: '/v1/jobs', headers: json, body };
    }
    case 3: {
      const depth = pick([100, 1000, 5000, 20000]);
      const inner = pick(['[', '{"a":']);
      const close = inner === '[' ? ']' : '}';
      return { what: `deep JSON ${depth}`, method: 'POST', path: '/v1/jobs', headers: json, body: `{"name":${inner.repeat(depth)}1${close.repeat(depth)}}` };
    }
    case 4: {
      const variants: (() => string)[] = [
        () => `{"data":{"corpus":{"text":${JSON.stringify('a'.repeat(2_000_001))}}}}`, // 1 byte over the corpus limit
        () => `{"data":{"corpus":{"text":${JSON.stringify('é'.repeat(1_000_001))}}}}`, // 2,000,002 UTF-8 bytes
        () => `{"data":{"corpus":{"text":${JSON.stringify('🦀'.repeat(200))}},"batchSize":4,"numSteps":5}}`, // no letters at all
        () => `{"data":{"corpus":{"text":"${'x'.repeat(5_000_000)}"}}}`, // over the body limit: 413
        () => `{"report":{"prefixes":${JSON.stringify(Array.from({ length: 50 }, () => pick(UNICODE)))}}}`,
      ];
      return { what: 'huge corpus / arrays', method: 'POST', path: '/v1/jobs', headers: json, body: pick(variants)() };
    }
    case 5: {
      if (r() < 0.3) {
        // not UTF-8: once decoded with U+FFFD in place of the bad bytes, and accepted
        const bad = pick([[0xff], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]]);
        const [head, tail] = pick([
          ['{"name":"', '"}'],
          ['{"report":{"prefixes":["time ', '"]}}'],
          ['{"data":{"corpus":{"text":"', '"}}}'],
        ]);
        const body = Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]);
        return {
          what: `invalid UTF-8 ${Buffer.from(bad).toString('hex')}`,
          method: 'POST',
          path: pick(['/v1/jobs', '/v1/jobs/j000000000aaaaaaaaaa/generate']),
          headers: json,
          body,
          expect: { status: 400, field: 'body' },
        };
      }
      const bodies = ['{', '{"a":}', 'nul', '"just a string"', '[]', '42', 'null', '\u0000', '{"model":{"kind":"scratch"}}}', '\uFEFF{}', '{"a":1,"a":2,}'];
      return { what: 'malformed JSON', method: 'POST', path: '/v1/jobs', headers: json, body: pick(bodies) };
    }
    case 6: {
      const ct = pick([
        'text/plain',
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded',
        'application/jsonx',
        'image/png',
        '',
      ]);
      return {
        what: `content-type ${ct}`,
        method: 'POST',
        path: pick(['/v1/jobs', '/v1/jobs/j000000000aaaaaaaaaa/generate']),
        headers: ct ? { 'content-type': ct } : {},
        body: '{}',
      };
    }
    case 7: {
      const q = pick([
        `state=${encodeURIComponent(pick(UNICODE))}`,
        `limit=${pick(['-1', '0', '101', 'abc', '1e999', 'NaN', 'Infinity', '1.5', '', '9'.repeat(40)])}`,
        `cursor=${'c'.repeat(int(190, 400))}`,
        `unknown=1`,
        `limit=1&limit=2`,
        `state[]=queued`,
      ]);
      return { what: `list ?${q.slice(0, 40)}`, method: 'GET', path: `/v1/jobs?${q}` };
    }
    case 8: {
      const which = r();
      const suffixed = which < 0.5;
      const routerBad = !suffixed && which < 0.75;
      const id = suffixed ? pick(suffixIds()) : routerBad ? pick(ROUTER_BAD_IDS()) : pick(BAD_IDS);
      const sub = pick(['', '/epochs', '/cancel', '/events', '/generate']);
      const post = sub === '/cancel' || sub === '/generate';
      return {
        what: `${suffixed ? 'suffix' : 'bad'} id ${id.slice(0, 30)}${sub}`,
        method: post ? 'POST' : 'GET',
        path: `/v1/jobs/${id}${sub}`,
        headers: post ? { 'content-type': 'application/json' } : undefined,
        body: sub === '/generate' ? '{"prefix":"time"}' : sub === '/cancel' ? '{}' : undefined,
        expect: suffixed || routerBad ? { status: 400, field: 'id' } : undefined,
      };
    }
    case 9: {
      const v = pick(['-1', 'abc', '1e999', 'NaN', '1.5', '99999999999999999999', ' ', '0x10', '١٢', '\u00001']);
      if (r() < 0.5) return { what: `epochs after=${v}`, method: 'GET', path: `/v1/jobs/j000000000aaaaaaaaaa/epochs?after=${encodeURIComponent(v)}` };
      return { what: `events fromSeq=${v}`, method: 'GET', path: `/v1/jobs/j000000000aaaaaaaaaa/events?fromSeq=${encodeURIComponent(v)}` };
    }
    case 10: {
      // (header values are bytes: fetch sends Latin-1 only)
      const v = pick(['-1', 'abc', '1e999', 'NaN', '1.5', '99999999999999999999', '0x10', '12abc', '\u00e91', '\u00ff\u00fe', 'Infinity', '1,2']);
      return {
        what: `Last-Event-ID ${v}`,
        method: 'GET',
        path: '/v1/jobs/j000000000aaaaaaaaaa/events',
        headers: { 'last-event-id': v, accept: 'text/event-stream' },
      };
    }
    default: {
      const fields: Record<string, () => string> = {
        prefix: () => pick(['""', '"🦀🦀"', '"123 456"', JSON.stringify('a'.repeat(1001)), '5', 'null', JSON.stringify(pick(UNICODE))]),
        numChars: () => pick(['0', '-5', '5001', '1e999', '"10"', '2.5', 'null']),
        temperature: () => pick(['-1', '1e999', '"NaN"', '101', 'true']),
        topK: () => pick(['0', '1.5', '1001', '-1e999', '"5"']),
        seed: () => pick(['-1', '4294967296', '1.5', '"x"']),
        extra: () => '1',
      };
      const f = pick(Object.keys(fields));
      const body = f === 'prefix' ? `{"prefix":${fields[f]()}}` : `{"prefix":"the",${JSON.stringify(f)}:${fields[f]()}}`;
      return { what: `generate ${f}`, method: 'POST', path: '/v1/jobs/j000000000aaaaaaaaaa/generate', headers: json, body };
    }
  }
}

/**
 * One request with node:http: a server that answers early (413 on a body over the limit) and
 * closes may make writing the rest fail — the answer still counts.
 */
function send(url: string, c: HttpCase): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve, reject) => {
    const body = c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body, 'utf8');
    const headers: Record<string, string | number> = { ...(c.headers ?? {}) };
    if (body) headers['content-length'] = body.length;
    const req = http.request(url + c.path, { method: c.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    if (body && body.length > 4 * 1024 * 1024) {
      // over the limit: the server answers 413 from the content-length alone and closes, so
      // send the headers first and the body only if no answer comes
      req.flushHeaders();
      const t = setTimeout(() => !answered && req.end(body), 2000);
      req.once('response', () => clearTimeout(t));
      return;
    }
    if (body) req.write(body);
    req.end();
  });
}

test(`HTTP: ${HTTP_CASES} hostile requests (seed ${SEED}): no 5xx, every 400 names a field, the api stays up`, async () => {
  const statuses: Record<number, number> = {};
  for (let i = 0; i < HTTP_CASES; i++) {
    const c = httpCase(i);
    let res: { status: number; contentType: string; text: string };
    try {
      res = await send(api.httpUrl, c);
    } catch (e) {
      assert.fail(`case ${i} (${c.what}): no response (${(e as Error).message}); api alive: ${api.alive}\n${api.output.slice(-2000)}`);
    }
    const text = res.text;
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    assert.ok(res.status < 500, `case ${i} (${c.what}): ${res.status} ${text.slice(0, 300)}`);
    if (c.expect) {
      assert.equal(res.status, c.expect.status, `case ${i} (${c.what}): ${text.slice(0, 300)}`);
      if (c.expect.field)
        assert.ok(
          JSON.parse(text).errors.some((e: { field: string }) => e.field === c.expect!.field),
          `case ${i} (${c.what}): ${text.slice(0, 300)}`,
        );
      if (c.expect.status >= 400) assert.match(res.contentType, /application\/problem\+json/, `case ${i} (${c.what})`);
    }
    // every error, the router's own included (414, undecodable paths), is a problem
    if (res.status >= 400)
      assert.match(res.contentType, /application\/problem\+json/, `case ${i} (${c.what}): ${res.status} ${res.contentType} ${text.slice(0, 200)}`);
    if (res.status === 400) {
      const p = JSON.parse(text) as { errors?: { field: unknown; message: unknown }[] };
      assert.ok(Array.isArray(p.errors) && p.errors.length > 0, `case ${i} (${c.what}): no errors[]: ${text.slice(0, 300)}`);
      for (const e of p.errors!) {
        assert.equal(typeof e.field, 'string', `case ${i} (${c.what}): ${text.slice(0, 300)}`);
        assert.ok((e.field as string).length > 0, `case ${i} (${c.what}): empty field: ${text.slice(0, 300)}`);
        assert.equal(typeof e.message, 'string');
      }
    }
  }
  assert.ok(api.alive, api.output.slice(-2000));
  // the generator reached the interesting answers, not only 404s
  assert.ok((statuses[400] ?? 0) > HTTP_CASES / 3, JSON.stringify(statuses));
  assert.ok((statuses[413] ?? 0) + (statuses[415] ?? 0) > 0, JSON.stringify(statuses));
  assert.ok((statuses[409] ?? 0) > 0 && (statuses[200] ?? 0) > 0, `idempotency conflicts and repeats reached: ${JSON.stringify(statuses)}`);
  assert.ok((statuses[403] ?? 0) > 0 && (statuses[415] ?? 0) > 0, `cross-origin writes and writes without JSON reached: ${JSON.stringify(statuses)}`);
  // no write without JSON and no cross-origin write queued a job, or cancelled or touched the real one
  const listed = (await (await fetch(`${api.httpUrl}/v1/jobs?limit=100`)).json()) as { jobs: { name?: string }[] };
  assert.equal(listed.jobs.filter((j) => j.name === CROSS_NAME).length, 0);
  assert.equal(((await (await fetch(`${api.httpUrl}/v1/jobs/${existing}`)).json()) as { state: string }).state, 'succeeded');
  const health = await fetch(`${api.httpUrl}/readyz`);
  assert.equal(health.status, 200);
  console.log(`# HTTP statuses: ${JSON.stringify(statuses)}`);
});

function grpcSpec(): Record<string, unknown> {
  const f = pick([
    'num_hiddens',
    'num_layers',
    'kind',
    'max_tokens',
    'batch_size',
    'num_steps',
    'sampling',
    'epochs',
    'lr',
    'clip_theta',
    'seed',
    'predict_every',
    'prefixes',
    'num_preds',
    'name',
    'idempotency_key',
    'text',
  ]);
  const int32 = () => pick([-1, 0, -(2 ** 31), 2 ** 31 - 1, int(5001, 1e9)]);
  const dbl = () => pick([NaN, Infinity, -Infinity, -1, 0, 1e308, -0, 5e-324]);
  const str = () => pick([...UNICODE, 'z'.repeat(5000)]);
  switch (f) {
    case 'num_hiddens':
    case 'num_layers':
      return { model: { [f]: int32() } };
    case 'kind':
      return { model: { kind: pick([7, 99, -1, 'MODEL_KIND_CONCISE']), num_layers: int(2, 9) } };
    case 'max_tokens':
    case 'batch_size':
    case 'num_steps':
      return { data: { [f]: int32() } };
    case 'sampling':
      return { data: { sampling: pick([3, 99, -5]) } };
    case 'epochs':
      return { train: { epochs: int32() } };
    case 'lr':
    case 'clip_theta':
      return { train: { [f]: dbl() } };
    case 'seed':
      return { train: { seed: pick([0, 2 ** 32 - 1]) }, model: { num_hiddens: 0 } };
    case 'predict_every':
    case 'num_preds':
      return { report: { [f]: int32() } };
    case 'prefixes':
      return { report: { prefixes: Array.from({ length: int(1, 12) }, str) } };
    case 'name':
    case 'idempotency_key':
      return { [f]: pick(['x'.repeat(201), '']), model: { num_hiddens: -1 } };
    default:
      return { data: { corpus: { text: pick(['', '🦀'.repeat(100), 'a'.repeat(2_000_001)]) } } };
  }
}

function grpcCase(i: number): { what: string; method: string; req: Record<string, unknown>; expect?: grpc.status } {
  const badId = () => pick(['', ' ', '../x', '🦀', 'a'.repeat(201), '\u0000', '-x', 'j000000000aaaaaaaaaa\n', ...suffixIds()]);
  switch (i % 8) {
    case 7: {
      const { spec, outcome } = idemSubmission();
      const p = spec as {
        idempotencyKey: string;
        model: { numHiddens: number };
        data: { maxTokens: number; batchSize: number; numSteps: number };
        train: { epochs: number; lr?: number };
        name?: string;
      };
      const req = {
        spec: {
          idempotency_key: p.idempotencyKey,
          name: p.name,
          model: { num_hiddens: p.model.numHiddens },
          data: { max_tokens: p.data.maxTokens, batch_size: p.data.batchSize, num_steps: p.data.numSteps },
          train: { epochs: p.train.epochs, lr: p.train.lr },
        },
      };
      return {
        what: `SubmitJob idempotency ${outcome} ${JSON.stringify(spec)}`,
        method: 'SubmitJob',
        req,
        expect: outcome === 'conflict' ? grpc.status.ALREADY_EXISTS : grpc.status.OK,
      };
    }
    case 0:
    case 1: {
      const spec = grpcSpec();
      return { what: `SubmitJob ${JSON.stringify(spec).slice(0, 80)}`, method: 'SubmitJob', req: { spec } };
    }
    case 2:
      return { what: 'GetJob bad id', method: pick(['GetJob', 'CancelJob']), req: { job_id: badId() }, expect: grpc.status.INVALID_ARGUMENT };
    case 3:
      return {
        what: 'ListJobs',
        method: 'ListJobs',
        req: pick([
          { page_size: -1 },
          { page_size: 101 },
          { page_size: 2 ** 31 - 1 },
          { state: 99 },
          { page_token: 'x'.repeat(500) },
          { view: 42 },
          { view: -1 },
        ]),
        expect: grpc.status.INVALID_ARGUMENT, // an unknown view was once accepted
      };
    case 4:
      if (r() < 0.5) return { what: 'WatchJob from_seq', method: 'WatchJob', req: { job_id: 'j000000000aaaaaaaaaa', from_seq: pick([-1, -(2 ** 40)]) } };
      // a bad id: once OK with no events for `<id>:ckpt`, INTERNAL for `<id>:events`
      return { what: 'WatchJob bad id', method: 'WatchJob', req: { job_id: badId() }, expect: grpc.status.INVALID_ARGUMENT };
    default: {
      const req: Record<string, unknown> = { job_id: 'j000000000aaaaaaaaaa', prefix: 'the' };
      const f = pick(['prefix', 'num_chars', 'temperature', 'top_k', 'seed', 'job_id']);
      if (f === 'prefix') req.prefix = pick(['', '🦀', '123', 'a'.repeat(1001)]);
      if (f === 'num_chars') req.num_chars = pick([-1, 5001, 2 ** 31 - 1]);
      if (f === 'temperature') req.temperature = pick([NaN, Infinity, -1, 101]);
      if (f === 'top_k') req.top_k = pick([-1, 1001, 2 ** 31 - 1]);
      if (f === 'seed') req.seed = pick([-1, 2 ** 33]);
      if (f === 'job_id') req.job_id = badId();
      return {
        what: `Generate ${f} ${JSON.stringify(req[f]).slice(0, 40)}`,
        method: pick(['Generate', 'GenerateStream']),
        req,
        expect: f === 'job_id' ? grpc.status.INVALID_ARGUMENT : undefined,
      };
    }
  }
}

function grpcOutcome(method: string, req: Record<string, unknown>): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const deadline = Date.now() + 10_000;
    if (method === 'WatchJob' || method === 'GenerateStream') {
      const s = client[method](req, new grpc.Metadata(), { deadline });
      s.on('data', () => {});
      s.on('error', (e: grpc.ServiceError) => resolve(e));
      s.on('end', () => resolve(null));
      return;
    }
    client[method](req, new grpc.Metadata(), { deadline }, (err: grpc.ServiceError | null) => resolve(err));
  });
}

test(`gRPC: ${GRPC_CASES} hostile requests (seed ${SEED}): no INTERNAL/UNKNOWN, every INVALID_ARGUMENT names a field`, async () => {
  const codes: Record<string, number> = {};
  for (let i = 0; i < GRPC_CASES; i++) {
    const c = grpcCase(i);
    let err: grpc.ServiceError | null;
    try {
      err = await grpcOutcome(c.method, c.req);
    } catch (_e) {
      // the client refused to serialize it (e.g. a value outside the proto type): not sent
      codes['client-rejected'] = (codes['client-rejected'] ?? 0) + 1;
      continue;
    }
    const code = err ? grpc.status[err.code] : 'OK';
    codes[code] = (codes[code] ?? 0) + 1;
    if (c.expect !== undefined) assert.equal(code, grpc.status[c.expect], `case ${i} (${c.what}): ${err?.details}`);
    assert.ok(
      !err || ![grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.UNAVAILABLE, grpc.status.DATA_LOSS].includes(err.code),
      `case ${i} (${c.what}): ${code} ${err?.details}`,
    );
    if (err?.code === grpc.status.INVALID_ARGUMENT) {
      const raw = err.metadata.get(ERRORS_TRAILER)[0];
      assert.ok(Buffer.isBuffer(raw), `case ${i} (${c.what}): no ${ERRORS_TRAILER} trailer: ${err.details}`);
      const issues = JSON.parse(raw.toString('utf8')) as { field: string; message: string }[];
      assert.ok(issues.length > 0 && issues.every((x) => typeof x.field === 'string' && x.field.length > 0), `case ${i} (${c.what}): ${raw}`);
      assert.ok(issues.some((x) => err!.details.includes(x.field)) || issues.every((x) => x.message.includes(x.field)), `case ${i}: ${err.details}`);
    }
  }
  assert.ok(api.alive, api.output.slice(-2000));
  assert.ok((codes.INVALID_ARGUMENT ?? 0) > GRPC_CASES / 3, JSON.stringify(codes));
  console.log(`# gRPC codes: ${JSON.stringify(codes)}`);
});

test(`generate: 80 seeded sampling requests (HTTP and gRPC) against a trained job: exactly numChars characters, never <unk>`, async () => {
  const letters = 'abcdefghijklmnopqrstuvwxyz ';
  for (let i = 0; i < 80; i++) {
    const req: Record<string, unknown> = {
      prefix: `t${Array.from({ length: int(0, 30) }, () => pick([...letters])).join('')}`,
      numChars: pick([1, 2, int(1, 100), int(100, 5000), 5000]),
      temperature: pick([undefined, 0, 1e-6, 0.5, 1, 5, 20, 100]),
      topK: pick([undefined, 1, 2, 3, int(1, 1000), 1000]),
      seed: pick([undefined, 0, int(0, 2 ** 32 - 1)]),
    };
    for (const k of Object.keys(req)) if (req[k] === undefined) delete req[k];
    const what = `case ${i} ${JSON.stringify(req)}`;
    let generated: string;
    if (i % 4 === 3) {
      const res = await new Promise<{ generated: string }>((resolve, reject) =>
        client.Generate(
          { job_id: existing, prefix: req.prefix, num_chars: req.numChars, temperature: req.temperature, top_k: req.topK, seed: req.seed },
          (e: grpc.ServiceError | null, r: { generated: string }) => (e ? reject(e) : resolve(r)),
        ),
      );
      generated = res.generated;
    } else {
      const res = await fetch(`${api.httpUrl}/v1/jobs/${existing}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(req),
      });
      assert.equal(res.status, 200, `${what}: ${res.status}`);
      generated = ((await res.json()) as { generated: string }).generated;
    }
    assert.equal(generated.length, req.numChars, what);
    assert.ok(!generated.includes('<unk>'), `${what}: ${generated.slice(0, 200)}`);
    assert.match(generated, /^[a-z ]*$/, what);
  }
});

test('gRPC: strings that are not UTF-8 are INVALID_ARGUMENT naming the field (a real U+FFFD is kept)', async () => {
  const raw = new grpc.Client(`127.0.0.1:${api.grpcPort}`, grpc.credentials.createInsecure());
  const send = (method: string, bytes: Buffer) =>
    new Promise<{ err: grpc.ServiceError | null; res?: Buffer }>((resolve) =>
      raw.makeUnaryRequest(
        `/lstm_trainer.v1.LstmTrainer/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        (err, res) => resolve({ err, res }),
      ),
    );
  const field = (no: number, payload: Buffer) => Buffer.concat([Buffer.from([(no << 3) | 2, payload.length]), payload]);
  const tiny = field(2, Buffer.from([0x10, 0xd0, 0x0f, 0x18, 4, 0x20, 5])); // data {max_tokens 2000, batch_size 4, num_steps 5}
  try {
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const name = Buffer.concat([Buffer.from('x'), Buffer.from(bad), Buffer.from(' y')]);
      const submit = await send('SubmitJob', field(1, Buffer.concat([tiny, field(5, name)]))); // spec {data, name}
      assert.equal(submit.err && grpc.status[submit.err.code], 'INVALID_ARGUMENT', `name ${Buffer.from(bad).toString('hex')}`);
      assert.deepEqual(
        JSON.parse(submit.err!.metadata.get(ERRORS_TRAILER)[0].toString()).map((x: { field: string }) => x.field),
        ['name'],
      );
      const gen = await send('Generate', Buffer.concat([field(1, Buffer.from(existing)), field(2, Buffer.concat([Buffer.from('time'), Buffer.from(bad)]))]));
      assert.equal(gen.err && grpc.status[gen.err.code], 'INVALID_ARGUMENT');
      assert.match(gen.err!.details, /prefix/);
    }
    // a U+FFFD that was sent as such is text like any other
    const ok = await send('SubmitJob', field(1, Buffer.concat([tiny, field(5, Buffer.from('x \uFFFD y'))])));
    assert.equal(ok.err, null, ok.err?.details);
  } finally {
    raw.close();
  }
});

test('gRPC: garbage bytes where a request message belongs are INVALID_ARGUMENT, not INTERNAL', async () => {
  const raw = new grpc.Client(`127.0.0.1:${api.grpcPort}`, grpc.credentials.createInsecure());
  try {
    const garbage = [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x7f]), Buffer.from('{"spec":{}}'), Buffer.from([0x08, 0x80])];
    for (const [i, bytes] of garbage.entries()) {
      for (const m of ['SubmitJob', 'GetJob', 'ListJobs']) {
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          raw.makeUnaryRequest(
            `/lstm_trainer.v1.LstmTrainer/${m}`,
            (b: Buffer) => b,
            (b: Buffer) => b,
            bytes,
            (e) => resolve(e),
          ),
        );
        assert.ok(err, `${m} #${i}: accepted garbage`);
        assert.equal(grpc.status[err.code], 'INVALID_ARGUMENT', `${m} #${i}: ${err.details}`);
        const issues = JSON.parse(err.metadata.get(ERRORS_TRAILER)[0].toString()) as { field: string }[];
        assert.ok(issues[0].field.length > 0);
      }
    }
  } finally {
    raw.close();
  }
  assert.ok(api.alive);
});
