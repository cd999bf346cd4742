// The dashboard's job view for a job on an uploaded corpus with a held-out part, in a real
// Chromium: the validation perplexity as a second curve, the vocabulary, the early-stopping reason.
// Real api (in-process, as the service runs it), Redis and a `lstm-trainer worker` process; the
// page is saved as test/artifacts/dashboard-validation.png (the curve image).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startApi, type ApiProcess } from '../../../src/api/app.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { REDIS_URL, ROOT, WorkerProcess, redisReachable, deletePrefix } from '../../support/processes.js';

const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : !(await redisReachable(REDIS_URL)) ? `no Redis at ${REDIS_URL}` : false;

const TEXT = `Однажды вечером, в 1895 году, Путешественник во Времени рассказал нам о своей машине.
«Время — это четвёртое измерение», — сказал он, и все мы засмеялись.
Но он не шутил: машина стояла в лаборатории, блестящая, из никеля и слоновой кости!
`.repeat(12);

describe('dashboard: validation perplexity and vocabulary', { skip }, () => {
  const prefix = `dashcorpus-${process.pid}-${Date.now().toString(36)}`;
  const env = { ...process.env, REDIS_URL, QUEUE_PREFIX: prefix, HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', API_KEYS: '', LOG_LEVEL: 'warn' };
  let api: ApiProcess;
  let worker: WorkerProcess;
  let browser: Browser;
  let base = '';

  before(async () => {
    [api, worker, browser] = await Promise.all([
      startApi(loadConfig(env), () => {}),
      WorkerProcess.start(env, { readyTimeoutMs: 60_000 }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] }),
    ]);
    base = api.httpAddress;
  });
  after(async () => {
    await browser?.close();
    await worker?.stop(10_000);
    await api?.close();
    await deletePrefix(prefix);
  });

  test('two curves (training and validation), the vocabulary with its most frequent tokens, the stop reason', async () => {
    const up = await fetch(`${base}/v1/corpora`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: TEXT });
    const corpus = (await up.json()) as { id: string };
    const spec = {
      model: { kind: 'scratch', numHiddens: 48 },
      data: { corpus: { id: corpus.id }, tokenizer: 'chars', batchSize: 8, numSteps: 16, validFraction: 0.2 },
      train: { epochs: 40, seed: 1, lr: 2, earlyStopping: { patience: 4, minDelta: 0.05 } },
      report: { predictEvery: 10, numPreds: 40 },
    };
    const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    const job = (await res.json()) as { id: string };
    assert.equal(res.status, 201, JSON.stringify(job));
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/#job=${encodeURIComponent(job.id)}`);
    await page.waitForFunction(() => /finished/.test(document.getElementById('job-status-text')!.textContent ?? ''), null, { timeout: 120_000 });
    const n = Number(await page.locator('#chart').getAttribute('data-points'));
    assert.ok(n >= 2, `${n} points`);
    // legend: epoch, perplexity, validation perplexity, tokens/s
    const labels = await page.locator('#chart .u-legend .u-series th').allTextContents();
    assert.deepEqual(
      labels.map((l) => l.trim()),
      ['epoch', 'perplexity', 'validation perplexity', 'tokens/s'],
    );
    assert.match((await page.locator('#chart-caption').textContent()) ?? '', /validation \d/);
    // generation starts from the job's own first prefix (the corpus's first words)
    assert.equal(await page.locator('#g-prefix').inputValue(), 'Однажды вечером,');
    const vocab = (await page.locator('#stat-vocab').textContent()) ?? '';
    assert.match(vocab, /^\d+ chars tokens · ␣ /);
    const status = (await page.locator('#job-status-text').textContent()) ?? '';
    if (n < 40) assert.match(status, /early stopping/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-validation.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });
});
