// The API reference: the OpenAPI document is complete (walked: every field described, every
// operation with its statuses and examples, every route of the app in it, every status the routes
// really answer documented), wrong methods answer 405 with Allow, and /docs renders it in a real
// Chromium (Swagger UI from the package: nothing from another origin). The app is the real HTTP
// app over the Redis-backed service.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { loadDashboard } from '../../../src/api/app.js';
import { buildHttpApp } from '../../../src/api/http/app.js';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../../src/jobs/config.js';
import { RedisJobService } from '../../../src/jobs/service.js';
import { REDIS_URL, ROOT, redisReachable, deletePrefix } from '../../support/processes.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const noRedis = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;
const noBrowser = existsSync(CHROMIUM) ? noRedis : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

type Json = Record<string, any>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
/** `/v1/jobs/:id` → `/v1/jobs/{id}` */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/** Every property of a schema without a description, as dotted paths. */
function undescribed(s: unknown, at: string, out: string[] = []): string[] {
  if (!s || typeof s !== 'object') return out;
  const o = s as Json;
  for (const [k, v] of Object.entries<Json>(o.properties ?? {})) {
    if (typeof v.description !== 'string' || v.description.length < 3) out.push(`${at}.${k}`);
    undescribed(v, `${at}.${k}`, out);
  }
  if (o.items) undescribed(o.items, `${at}[]`, out);
  for (const k of ['anyOf', 'oneOf', 'allOf']) (o[k] ?? []).forEach((b: unknown, i: number) => undescribed(b, `${at}|${i}`, out));
  return out;
}

describe('the API reference (OpenAPI document, 405s, /docs)', { skip: noRedis }, () => {
  const prefix = `docstest-${process.pid}-${Date.now().toString(36)}`;
  const env = { ...process.env, REDIS_URL, QUEUE_PREFIX: prefix, API_KEYS: '' };
  let service: RedisJobService;
  let app: FastifyInstance;
  let base = '';
  let doc: Json;

  before(async () => {
    service = new RedisJobService({ config: loadConfig(env) });
    app = await buildHttpApp({ service, bodyLimit: 64 * 1024, dashboard: await loadDashboard() });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    doc = (await (await fetch(`${base}/docs/openapi.json`)).json()) as Json;
  });
  after(async () => {
    await app?.close();
    await service?.close();
    await deletePrefix(prefix);
  });

  test('every field of every schema, parameter and operation is described', () => {
    const missing = Object.entries<Json>(doc.components.schemas).flatMap(([name, s]) => undescribed(s, name));
    assert.deepEqual(missing, []);
    for (const [p, item] of Object.entries<Json>(doc.paths)) {
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        assert.ok(op.summary, `${m} ${p}: summary`);
        for (const param of op.parameters ?? []) assert.ok(param.description, `${m} ${p}: parameter ${param.name}`);
        for (const [status, r] of Object.entries<Json>(op.responses)) assert.ok(r.description, `${m} ${p} ${status}: description`);
      }
    }
  });

  test('every operation has an example answer, and an example request when it takes a body', () => {
    for (const [p, item] of Object.entries<Json>(doc.paths)) {
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const success = Object.entries<Json>(op.responses).filter(([s]) => s.startsWith('2') && s !== '204');
        assert.ok(success.length > 0, `${m} ${p}: a 2xx answer`);
        for (const [s, r] of success) {
          for (const [type, c] of Object.entries<Json>(r.content ?? {})) assert.ok(c.example !== undefined, `${m} ${p} ${s} ${type}: example`);
        }
        for (const [s, r] of Object.entries<Json>(op.responses)) {
          if (s.startsWith('4') || s.startsWith('5')) {
            const ex = r.content?.['application/problem+json']?.example;
            assert.equal(ex?.status, Number(s), `${m} ${p} ${s}: a problem example with its status`);
          }
        }
        if (op.requestBody) {
          for (const [type, c] of Object.entries<Json>(op.requestBody.content)) assert.ok(c.example !== undefined, `${m} ${p} request ${type}: example`);
        }
      }
    }
  });

  test('every route of the app is documented, with the statuses each can answer', () => {
    const docOps = new Set(Object.entries<Json>(doc.paths).flatMap(([p, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${p}`)));
    // Swagger UI's own files and copies of the document under /docs, and the dashboard's, are not API
    const api = app.routeList.filter((r) => r.method !== 'HEAD' && !/^\/docs\/(static|json|yaml)/.test(r.url) && r.url !== '/' && !r.url.startsWith('/assets'));
    for (const r of api) assert.ok(docOps.has(`${r.method} ${openApiPath(r.url)}`), `${r.method} ${r.url} is not in the document`);

    const statuses = (m: string, p: string) => Object.keys(doc.paths[p][m].responses).sort();
    const must: [string, string, string[]][] = [
      ['post', '/v1/jobs', ['200', '201', '400', '403', '408', '409', '413', '415', '429', '500', '503']],
      ['get', '/v1/jobs', ['200', '400', '403', '408', '500', '503']],
      ['get', '/v1/jobs/{id}', ['200', '400', '403', '404', '408', '500', '503']],
      ['get', '/v1/jobs/{id}/epochs', ['200', '400', '403', '404', '408', '500', '503']],
      ['get', '/v1/jobs/{id}/events', ['200', '204', '400', '403', '404', '408', '429', '500', '503']],
      ['post', '/v1/jobs/{id}/cancel', ['200', '400', '403', '404', '408', '409', '413', '415', '500', '503']],
      ['post', '/v1/jobs/{id}/generate', ['200', '400', '403', '404', '408', '409', '413', '415', '429', '500', '503']],
      ['delete', '/v1/models/{id}', ['200', '400', '403', '404', '408', '500', '503']],
      ['get', '/readyz', ['200', '403', '408', '500', '503']],
    ];
    for (const [m, p, want] of must)
      for (const s of want) assert.ok(statuses(m, p).includes(s), `${m.toUpperCase()} ${p} does not document ${s}: ${statuses(m, p)}`);
  });

  test('the statuses the routes really answer are the documented ones', async () => {
    const id = 'j0000000000000000000'; // well-formed, no such job
    const probes: { m: string; p: string; url: string; init?: RequestInit }[] = [
      { m: 'post', p: '/v1/jobs', url: '/v1/jobs', init: { method: 'POST', body: '{}' } }, // no content type: 415
      {
        m: 'post',
        p: '/v1/jobs',
        url: '/v1/jobs',
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { corpus: { text: 'x'.repeat(70_000) } } }) },
      }, // 413
      {
        m: 'post',
        p: '/v1/jobs',
        url: '/v1/jobs',
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":{"numHiddens":0}}' },
      }, // 400
      {
        m: 'post',
        p: '/v1/jobs',
        url: '/v1/jobs',
        init: { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: '{}' },
      }, // 403
      { m: 'get', p: '/v1/jobs', url: '/v1/jobs?limit=0' },
      { m: 'get', p: '/v1/jobs/{id}', url: `/v1/jobs/${id}` },
      { m: 'get', p: '/v1/jobs/{id}', url: '/v1/jobs/nope' },
      { m: 'get', p: '/v1/jobs/{id}/epochs', url: `/v1/jobs/${id}/epochs` },
      { m: 'get', p: '/v1/jobs/{id}/events', url: `/v1/jobs/${id}/events` },
      {
        m: 'post',
        p: '/v1/jobs/{id}/cancel',
        url: `/v1/jobs/${id}/cancel`,
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
      },
      { m: 'post', p: '/v1/jobs/{id}/cancel', url: `/v1/jobs/${id}/cancel`, init: { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' } },
      {
        m: 'post',
        p: '/v1/jobs/{id}/generate',
        url: `/v1/jobs/${id}/generate`,
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prefix":"time"}' },
      },
      { m: 'delete', p: '/v1/models/{id}', url: '/v1/models/m0000000000000000000', init: { method: 'DELETE' } },
      { m: 'delete', p: '/v1/models/{id}', url: '/v1/models/nope', init: { method: 'DELETE' } },
      { m: 'get', p: '/healthz', url: '/healthz' },
      { m: 'get', p: '/readyz', url: '/readyz' },
      { m: 'get', p: '/metrics', url: '/metrics' },
      { m: 'get', p: '/docs', url: '/docs' },
    ];
    for (const probe of probes) {
      const res = await fetch(base + probe.url, probe.init);
      await res.arrayBuffer();
      const documented = Object.keys(doc.paths[probe.p][probe.m].responses);
      assert.ok(documented.includes(String(res.status)), `${probe.m.toUpperCase()} ${probe.url} answered ${res.status}, not documented (${documented})`);
    }
    // a finished job's stream, asked for after its last event: 204
    const sub = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"train":{"epochs":1}}' });
    const job = (await sub.json()) as Json;
    await fetch(`${base}/v1/jobs/${job.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const after = (await (await fetch(`${base}/v1/jobs/${job.id}`)).json()) as Json;
    const done = await fetch(`${base}/v1/jobs/${job.id}/events?fromSeq=${after.lastSeq}`);
    assert.equal(done.status, 204);
    assert.ok(doc.paths['/v1/jobs/{id}/events'].get.responses['204']);
  });

  test('a method a known path does not have: 405 problem+json with Allow', async () => {
    const allowed = new Map<string, Set<string>>();
    for (const r of app.routeList) {
      const url = r.url.length > 1 ? r.url.replace(/\/$/, '') : r.url; // `/docs/` is `/docs`
      if (!allowed.has(url)) allowed.set(url, new Set());
      allowed.get(url)!.add(r.method);
    }
    const concrete = (url: string) => url.replace(':id', 'j0000000000000000000').replace(':file', 'app.js').replace('*', 'swagger-ui.css');
    let checked = 0;
    for (const [url, methods] of allowed) {
      for (const m of ['DELETE', 'PUT', 'PATCH', 'POST', 'GET', 'OPTIONS']) {
        if (methods.has(m)) continue;
        const res = await fetch(base + concrete(url), { method: m, headers: { 'content-type': 'application/json' }, body: m === 'GET' ? undefined : '{}' });
        assert.equal(res.status, 405, `${m} ${url} → ${res.status}`);
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const allow = (res.headers.get('allow') ?? '').split(', ').sort();
        assert.deepEqual(allow, [...methods].sort(), `${m} ${url}: Allow`);
        const body = (await res.json()) as Json;
        assert.equal(body.status, 405);
        assert.match(body.detail, new RegExp(`^${m} is not allowed`));
        checked++;
      }
    }
    assert.ok(checked > 40, `${checked} checked`);
    assert.equal((await fetch(`${base}/no/such/path`, { method: 'DELETE' })).status, 404, 'an unknown path stays 404');
  });

  test('/docs renders the document in Chromium, from this server only', { skip: noBrowser }, async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const origin = new URL(base).origin;
      const external: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        if (new URL(r.url()).origin !== origin && !r.url().startsWith('data:')) external.push(r.url());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => (m.type() === 'error' ? errors.push(m.text()) : undefined));
      const res = await page.goto(`${base}/docs`);
      assert.equal(res?.status(), 200);
      assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'none'/);
      await page.locator('.opblock').first().waitFor({ timeout: 20_000 });
      assert.equal(
        await page
          .locator('.info .title')
          .first()
          // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText() is the rendered text, line breaks included
          .innerText()
          .then((t) => t.split('\n')[0].trim()),
        'lstm-trainer',
      );
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'api-docs.png'), fullPage: true });
      // one operation per documented method and path
      const ops = Object.values<Json>(doc.paths).reduce((n, item) => n + METHODS.filter((m) => item[m]).length, 0);
      assert.equal(await page.locator('.opblock').count(), ops);
      // open Submit: its example request and the documented statuses are shown
      await page.locator('.opblock-post', { hasText: 'Submit a training job' }).locator('.opblock-summary').click();
      const submit = page.locator('.opblock-post.is-open');
      await submit.locator('.responses-table').first().waitFor();
      // biome-ignore lint/performance/useDomNodeTextContent: as above (the rendered text)
      const text = await submit.innerText();
      for (const s of ['201', '409', '413', '415', '429']) assert.match(text, new RegExp(`\\b${s}\\b`), `status ${s} shown`);
      assert.match(text, /"idempotencyKey": "run-1"/, 'the example request');
      await page.screenshot({ path: path.join(ARTIFACTS, 'api-docs-submit.png'), fullPage: false });
      assert.deepEqual(external, [], 'no request leaves the server');
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
    }
  });
});
