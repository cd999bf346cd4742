// The compare view in Chromium against the real service (api + worker): an experiment's curves
// overlaid (one series per job, the legend naming each by its varied values), its table sorted by a
// column header click, jobs picked in the jobs table and compared, and job names in the table never
// ambiguous. Saves test/artifacts/dashboard-compare.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startApi, type ApiProcess } from '../../../src/api/app.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { REDIS_URL, ROOT, WorkerProcess, redisReachable, deletePrefix } from '../../support/processes.js';

const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : !(await redisReachable(REDIS_URL)) ? `no Redis at ${REDIS_URL}` : false;
const prefix = `cmptest-${process.pid}-${Date.now().toString(36)}`;
const env = { REDIS_URL, QUEUE_PREFIX: prefix, HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', API_KEYS: '', CHECKPOINT_EVERY: '1000' };
const BASE = {
  model: { numHiddens: 16 },
  data: { maxTokens: 4000, batchSize: 8, numSteps: 10 },
  train: { epochs: 12 },
  report: { predictEvery: 100, prefixes: ['time traveller'], numPreds: 10 },
};

describe('compare view in Chromium', { skip, timeout: 300_000 }, () => {
  let api: ApiProcess;
  let worker: WorkerProcess;
  let browser: Browser;
  let base: string;
  let expId: string;
  let jobIds: string[];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    process.env.LOG_LEVEL ??= 'warn';
    [api, worker, browser] = await Promise.all([
      startApi(loadConfig(env), () => {}),
      WorkerProcess.start({ ...process.env, ...env }, { readyTimeoutMs: 60_000 }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] }),
    ]);
    base = api.httpAddress;
    const res = await fetch(`${base}/v1/experiments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'cmp', base: BASE, grid: { 'train.lr': [0.5, 2], 'model.kind': ['scratch', 'concise'] } }),
    });
    assert.equal(res.status, 201);
    const exp = (await res.json()) as { id: string; jobs: { id: string }[] };
    expId = exp.id;
    jobIds = exp.jobs.map((j) => j.id);
    // two more jobs with the same name: the table must tell them apart (only their names matter:
    // cancelled while the worker trains the experiment, they cost no training process)
    for (const seed of [1, 2]) {
      const r = await fetch(`${base}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...BASE, name: 'same-name', train: { epochs: 3, seed } }),
      });
      assert.equal(r.status, 201);
      const { id } = (await r.json()) as { id: string };
      const c = await fetch(`${base}/v1/jobs/${id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(c.status, 200);
    }
    for (;;) {
      const t = (await (await fetch(`${base}/v1/experiments/${expId}`)).json()) as { jobs: { state: string }[] };
      if (t.jobs.every((j) => j.state === 'succeeded')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  after(async () => {
    await browser?.close();
    await worker?.stop(10_000);
    await api?.close();
    await deletePrefix(prefix);
  });

  async function page(): Promise<{ page: Page; errors: string[] }> {
    const p = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    return { page: p, errors };
  }

  test('an experiment: one curve per job with its varied values in the legend; the table sorts by a header', async () => {
    const { page: p, errors } = await page();
    await p.goto(`${base}/#experiment=${expId}`);
    await p.locator('#compare-chart[data-series="4"]').waitFor();
    assert.match((await p.locator('#compare-title').textContent()) ?? '', /Experiment cmp/);
    const legend = await p.locator('#compare-chart .u-legend .u-series .u-label').allTextContents();
    assert.deepEqual(legend.slice(1), ['lr=0.5 kind=scratch', 'lr=0.5 kind=concise', 'lr=2 kind=scratch', 'lr=2 kind=concise']);
    // one distinct colour per curve
    const strokes = await p.locator('#compare-body .swatch').evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
    assert.equal(new Set(strokes).size, 4);
    const rows = p.locator('#compare-body tr');
    assert.equal(await rows.count(), 4);
    const head = await p.locator('#compare-head th').allTextContents();
    assert.deepEqual(
      head.map((h) => h.replace(/ [▲▼]$/, '')),
      ['Job', 'train.lr', 'model.kind', 'State', 'Epoch', 'Final ppl', 'Best ppl', 'Tokens/s', 'Time'],
    );
    const finals = async () => (await p.locator('#compare-body td[data-label="Final ppl"]').allTextContents()).map(Number);
    // sorted by final perplexity, ascending, by default; a click on the header reverses it
    const asc = await finals();
    assert.deepEqual(
      asc,
      [...asc].sort((a, b) => a - b),
    );
    await p.getByRole('button', { name: /^Final ppl/ }).click();
    const desc = await finals();
    assert.deepEqual(
      desc,
      [...asc].sort((a, b) => b - a),
    );
    assert.equal(await p.locator('#compare-head th[aria-sort="descending"]').count(), 1);
    await p.getByRole('button', { name: /^train\.lr/ }).click();
    assert.deepEqual(await p.locator('#compare-body td[data-label="train.lr"]').allTextContents(), ['0.5', '0.5', '2', '2']);
    await p.getByRole('button', { name: /^Final ppl/ }).click();
    await p.screenshot({ path: path.join(ARTIFACTS, 'dashboard-compare.png'), fullPage: true });
    // a job's name links to its own view
    await p.locator('#compare-body a').first().click();
    await p.locator('#job-panel').waitFor({ state: 'visible' });
    assert.equal(await p.locator('#compare-panel').isHidden(), true);
    assert.deepEqual(errors, []);
  });

  test('the jobs table: unambiguous names with the id on hover; tick jobs, Compare overlays them', async () => {
    const { page: p, errors } = await page();
    await p.goto(base);
    await p.locator('#jobs-body tr').nth(5).waitFor();
    const names = await p.locator('#jobs-body .job-name').allTextContents();
    assert.equal(names.length, 6);
    assert.equal(new Set(names).size, 6, `ambiguous names: ${names.join(' | ')}`);
    const same = names.filter((n) => n.startsWith('same-name'));
    assert.equal(same.length, 2);
    for (const n of same) assert.match(n, /^same-name \(j[0-9a-z]{7,}\)$/);
    const title = await p.locator('#jobs-body .job-name').first().getAttribute('title');
    assert.match(title ?? '', /\nj[0-9a-z]{19}/);
    assert.equal(await p.locator('#compare-picked').isDisabled(), true);
    const pick = (id: string) => p.locator(`#jobs-body tr[data-job-id="${id}"] input.pick-box`).check();
    await pick(jobIds[0]);
    await pick(jobIds[3]);
    await p.locator('#compare-picked').click();
    await p.locator('#compare-chart[data-series="2"]').waitFor();
    assert.match(p.url(), new RegExp(`#compare=(${jobIds[0]},${jobIds[3]}|${jobIds[3]},${jobIds[0]})`));
    // the varied values are worked out from the two specs (paths in the spec's order: model first)
    const legend = await p.locator('#compare-chart .u-legend .u-series .u-label').allTextContents();
    assert.deepEqual(legend.slice(1).sort(), ['kind=concise lr=2', 'kind=scratch lr=0.5']);
    await p.screenshot({ path: path.join(ARTIFACTS, 'dashboard-compare-picked.png'), fullPage: true });
    await p.locator('#compare-close').click();
    assert.equal(await p.locator('#compare-panel').isHidden(), true);
    assert.deepEqual(errors, []);
  });
});
