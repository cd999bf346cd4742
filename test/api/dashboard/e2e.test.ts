// The dashboard end to end: Chromium (Debian's, driven by playwright-core) against the real
// service — the HTTP app of `lstm-trainer api` (startApi, with the dashboard plugin it loads),
// Redis, and a `lstm-trainer worker` child process — under a queue prefix of its own.
// Screenshots go to test/artifacts/ (ignored by git).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startApi, type ApiProcess } from '../../../src/api/app.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { REDIS_URL, ROOT, WorkerProcess, redisReachable, deletePrefix } from '../../support/processes.js';

const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'dash-test-key-7f3a';

const skip = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium)`
  : !(await redisReachable(REDIS_URL))
    ? `no Redis at ${REDIS_URL}`
    : false;

interface Stack {
  prefix: string;
  open: ApiProcess; // no API keys
  authed: ApiProcess; // API_KEYS set; same Redis prefix, so the same jobs and worker
  worker: WorkerProcess; // its output: worker.output
}

function env(prefix: string, apiKeys = ''): Record<string, string | undefined> {
  return {
    ...process.env,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    HOST: '127.0.0.1',
    API_KEYS: apiKeys,
    // an admin key: the keyed page must see the jobs submitted through the keyless api (they have
    // no owner, and only admin keys see ownerless jobs: docs/service.md, "Owners")
    ADMIN_KEYS: apiKeys,
    // checkpoints after epoch 1 and at the end only (a cancelled job's last one is always newer
    // than the one before it, see the cancel below)
    CHECKPOINT_EVERY: '1000',
    SSE_HEARTBEAT_MS: '2000',
  };
}

async function startStack(): Promise<Stack> {
  const prefix = `dashtest-${process.pid}-${Date.now().toString(36)}`;
  const quiet = () => {};
  process.env.LOG_LEVEL ??= 'warn';
  const [open, authed, worker] = await Promise.all([
    startApi(loadConfig(env(prefix)), quiet),
    startApi(loadConfig(env(prefix, KEY)), quiet),
    WorkerProcess.start(env(prefix), { readyTimeoutMs: 60_000 }),
  ]);
  return { prefix, open, authed, worker };
}

async function stopStack(s: Stack): Promise<void> {
  await s.worker.stop(10_000);
  await Promise.allSettled([s.open.close(), s.authed.close()]);
  await deletePrefix(s.prefix);
}

/** A page that records what it must not do: requests off the service's origin, script errors. */
async function watchedPage(context: BrowserContext, base: string) {
  const page = await context.newPage();
  const origin = new URL(base).origin;
  const external: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).origin !== origin && !r.url().startsWith('data:')) external.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // the browser logs each 4xx answer (the validation and 401 checks provoke some on purpose)
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[019]/.test(m.text())) errors.push(m.text());
  });
  return { page, external, errors };
}

const points = (page: Page) => page.locator('#chart').getAttribute('data-points').then(Number);

/** Every text the notice area (`#notice`) shows, in order, from the page's start: `noticesOf(page)`. */
const RECORD_NOTICES = `window.__notices = [];
document.addEventListener('DOMContentLoaded', () => {
  const n = document.getElementById('notice');
  // each notice() puts a new text node in: its text, even when several come in one batch of records
  new MutationObserver((records) => {
    for (const r of records) for (const node of r.addedNodes) window.__notices.push(node.textContent);
  }).observe(n, { childList: true });
});`;
const noticesOf = (page: Page) => page.evaluate('window.__notices') as Promise<string[]>;

async function fillJob(page: Page, o: { name: string; epochs: number; seed?: number; hidden?: number; maxTokens?: number }) {
  const form = page.getByRole('form', { name: 'New job' });
  await form.getByLabel('Name', { exact: true }).fill(o.name);
  await form.getByLabel('Model kind').selectOption('scratch');
  await form.getByLabel('Hidden units').fill(String(o.hidden ?? 16));
  await form.getByLabel('Epochs', { exact: true }).fill(String(o.epochs));
  await form.getByLabel('Batch size').fill('8');
  await form.getByLabel('Steps per sequence').fill('10');
  const more = form.locator('details.more');
  if (!(await more.evaluate((d) => (d as HTMLDetailsElement).open))) await more.locator('summary').click();
  await form.getByLabel('Max tokens').fill(String(o.maxTokens ?? 2000));
  await form.getByLabel('Sample every (epochs)').fill('5');
  await form.getByLabel('Sample length').fill('20');
  await form.getByLabel('Seed', { exact: true }).fill(String(o.seed ?? 1));
}

describe('dashboard in Chromium against the real service', { skip, timeout: 120_000 }, () => {
  let stack: Stack;
  let browser: Browser;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    [stack, browser] = await Promise.all([
      startStack(),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--disable-quic',
        ],
      }),
    ]);
  });

  after(async () => {
    await browser?.close();
    if (stack) await stopStack(stack);
  });

  test('submit through the form, watch the curve and samples, generate, cancel, see a validation message', async () => {
    const base = stack.open.httpAddress;
    const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
    const { page, external, errors } = await watchedPage(context, base);
    try {
      await page.goto(`${base}/`);
      await assert.doesNotReject(page.getByRole('heading', { name: 'Jobs' }).waitFor());
      // auth is off: once the first list has answered (no 401), there is no API key button
      await page.waitForFunction(() => document.getElementById('jobs-updated')!.textContent !== '');
      assert.equal(await page.locator('#auth-toggle').isHidden(), true, 'no API key button without auth');

      // a value out of bounds: the server's message appears under that input, nothing is queued
      await page.getByRole('form', { name: 'New job' }).getByLabel('Hidden units').fill('5000');
      await page.getByRole('button', { name: 'Submit job' }).click();
      const fieldError = page.locator('#f-hiddens-error');
      await fieldError.waitFor();
      assert.equal(await fieldError.textContent(), 'model.numHiddens must be ≤ 1024');
      assert.equal(await page.getByLabel('Hidden units').getAttribute('aria-invalid'), 'true');
      assert.match((await page.getByLabel('Hidden units').getAttribute('aria-describedby')) ?? '', /f-hiddens-error/);
      assert.equal(await fieldError.evaluate((p) => p.closest('.field')?.querySelector('#f-hiddens') !== null), true, 'the message sits in the input’s field');
      assert.equal((await stack.open.service.list({ limit: 10 })).jobs.length, 0, 'an invalid spec queues nothing');

      // the tiny job: the curve gets its points, samples appear, the job succeeds
      await fillJob(page, { name: 'dash-tiny', epochs: 15 });
      await page.getByRole('button', { name: 'Submit job' }).click();
      await page.waitForURL(/#job=/);
      assert.equal(await fieldError.count(), 0, 'the old message is gone after a valid submission');
      const tinyId = decodeURIComponent(new URL(page.url()).hash.slice('#job='.length));
      await page.getByRole('heading', { name: 'Job dash-tiny' }).waitFor();
      await page.waitForFunction(() => Number(document.getElementById('chart')!.dataset.points) >= 1, null, { timeout: 45_000 });
      await page.locator('#samples li').first().waitFor({ timeout: 45_000 });
      await page.locator('#job-state .state-succeeded').waitFor({ timeout: 45_000 });
      assert.equal(await points(page), 15);
      assert.equal(await page.locator('#stat-epoch').textContent(), '15/15');
      assert.equal(await page.locator('#chart canvas').count(), 1, 'uPlot drew its canvas');
      // the mouse is not over the chart: its legend shows the latest epoch (it used to read "--", "–")
      await page.mouse.move(1, 1);
      assert.deepEqual(await page.locator('#chart .u-legend .u-value').allTextContents(), [
        '15',
        await page.locator('#stat-ppl').textContent(),
        await page.locator('#stat-tps').textContent(),
      ]);
      // the epoch table mirrors the stream: epochs 1..15 once each, perplexity from the server
      const rows = await page.locator('#epochs-body tr td:first-child').allTextContents();
      assert.deepEqual(
        rows,
        Array.from({ length: 15 }, (_, i) => String(i + 1)),
      );
      const history = await stack.open.service.epochs(tinyId, 0);
      const shownPpl = await page.locator('#epochs-body tr td:nth-child(2)').allTextContents();
      assert.deepEqual(
        shownPpl,
        history.map((e) => (e.perplexity >= 10 ? e.perplexity.toFixed(2) : e.perplexity.toFixed(3))),
      );
      assert.ok(history[14].perplexity < history[0].perplexity, 'training lowered the perplexity');
      // samples at epochs 5, 10, 15, newest first; the prefix styled apart from the continuation
      assert.deepEqual(await page.locator('#samples .sample-head strong').allTextContents(), ['Epoch 15', 'Epoch 10', 'Epoch 5']);
      const last = history[14].samples!;
      const first = page.locator('#samples li').first().locator('.sample').first();
      assert.equal(await first.locator('.prefix').textContent(), 'time traveller');
      assert.equal(await first.locator('.continuation').textContent(), last[0].text.slice('time traveller'.length));
      assert.equal((await first.locator('.continuation').textContent())!.length, 20);
      assert.notEqual(
        await first.locator('.prefix').evaluate((e) => getComputedStyle(e).backgroundColor),
        await first.locator('.continuation').evaluate((e) => getComputedStyle(e).backgroundColor),
      );
      // the jobs table row shows the same job, finished
      const row = page.locator(`tr[data-job-id="${tinyId}"]`);
      await row.locator('.state-succeeded').waitFor({ timeout: 10_000 });
      assert.equal(await row.locator('td[data-label="Epoch"]').textContent(), '15/15');
      assert.match((await row.locator('.job-meta').textContent()) ?? '', /^scratch · \w+/, 'kind · engine under the name');
      assert.match((await row.locator('time.finished').textContent()) ?? '', /^\d\d:\d\d:\d\d$/);

      // generate from the checkpoint: streamed (text/event-stream), greedy, 40 characters
      const gen = page.getByRole('region', { name: 'Generate text' });
      await gen.waitFor();
      const genForm = page.getByRole('form', { name: 'Generate text' });
      // its inputs line up (a label that wraps used to push its input down)
      const tops = await page.evaluate(() => ['g-chars', 'g-temp', 'g-topk'].map((id) => document.getElementById(id)!.getBoundingClientRect().top));
      assert.equal(new Set(tops).size, 1, `generate inputs at ${tops.join(', ')} px`);
      await genForm.getByLabel('Prefix').fill('Time Traveller');
      await genForm.getByLabel('Length (characters)').fill('40');
      const streamed = page.waitForResponse((r) => r.url().endsWith(`/v1/jobs/${tinyId}/generate`));
      await genForm.getByRole('button', { name: 'Generate', exact: true }).click();
      assert.match((await streamed).headers()['content-type'] ?? '', /text\/event-stream/);
      await page.waitForFunction(() => document.getElementById('gen-output')!.dataset.done === 'true', null, { timeout: 20_000 });
      assert.equal(await page.locator('#gen-output .prefix').textContent(), 'time traveller');
      const generated = (await page.locator('#gen-output .continuation').textContent()) ?? '';
      assert.equal(generated.length, 40);
      // greedy, so the service's own answer for the same request is the same text
      let expected = '';
      for await (const ch of stack.open.service.generate(tinyId, { prefix: 'Time Traveller', numChars: 40, temperature: 0 })) expected += ch;
      assert.equal(generated, expected);

      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-desktop.png'), fullPage: true });

      // the finished job opened afresh: its history is replayed (queued → running → succeeded),
      // which is no news — the notice area stays empty (it used to say "Job <id> is running.")
      {
        const fresh = await watchedPage(context, base);
        try {
          await fresh.page.addInitScript({ content: RECORD_NOTICES });
          await fresh.page.goto(`${base}/#job=${encodeURIComponent(tinyId)}`);
          await fresh.page.getByRole('heading', { name: 'Job dash-tiny' }).waitFor();
          await fresh.page.locator('#job-state .state-succeeded').waitFor({ timeout: 10_000 });
          await fresh.page.waitForFunction(() => Number(document.getElementById('chart')!.dataset.points) === 15, null, { timeout: 10_000 });
          await fresh.page.waitForFunction(() => document.querySelectorAll('#samples li').length === 3, null, { timeout: 10_000 });
          await fresh.page.waitForTimeout(500);
          assert.deepEqual(await noticesOf(fresh.page), [], 'no notice for the replayed history');
          assert.equal(await fresh.page.locator('#notice').textContent(), '');
          assert.deepEqual(fresh.external, []);
          assert.deepEqual(fresh.errors, []);
        } finally {
          await fresh.page.close();
        }
      }

      // the spec panel says which corpus, in words
      await page.locator('details.spec summary').click();
      assert.equal(await page.locator('#job-corpus').textContent(), 'The Time Machine (H. G. Wells), d2l’s corpus');

      // the Log panel (collapsed until opened) shows the worker's lines about the job, as /logs has them
      assert.equal(await page.locator('#job-log-details').evaluate((d) => (d as HTMLDetailsElement).open), false);
      await page.locator('#job-log-details summary').click();
      await page.waitForFunction(() => /succeeded: 15 epochs/.test(document.getElementById('job-log')!.textContent ?? ''), null, { timeout: 10_000 });
      const logLines = await page.locator('#job-log li').allTextContents();
      const served = (await stack.open.service.logs(tinyId)).map((l) => ` ${l.level} ${l.msg}`);
      assert.deepEqual(
        logLines.map((t) => t.slice(t.indexOf(' '))),
        served,
      );
      assert.match(logLines[1], /attempt 1 started from epoch 1/);
      assert.equal(await page.locator('#job-log-empty').isHidden(), true);

      // the Download menu (shown once the job has a checkpoint): each format saved under the
      // server's file name with the route's bytes; TensorFlow.js as its two files
      await page.locator('#job-download summary').click();
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'safetensors (PyTorch)' }).click()]);
      assert.equal(download.suggestedFilename(), `${tinyId}-epoch15.safetensors`);
      const direct = Buffer.from(await (await fetch(`${base}/v1/jobs/${tinyId}/model`)).arrayBuffer());
      assert.ok(readFileSync((await download.path())!).equals(direct), 'the bytes of GET /v1/jobs/:id/model');
      const tfjsFiles: string[] = [];
      page.on('download', (d) => tfjsFiles.push(d.suggestedFilename()));
      await page.getByRole('button', { name: 'TensorFlow.js' }).click();
      await page.waitForFunction(
        () => /Saved model\.json and weights\.bin \(epoch 15\)/.test(document.getElementById('job-download-status')!.textContent ?? ''),
        null,
        { timeout: 10_000 },
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(tfjsFiles.sort(), ['model.json', 'weights.bin']);

      // a phone opening a job from its card lands on the job's title (it used to land on the
      // Generate form, the title scrolled off the top, as the view grew while it loaded)
      {
        const phone = await watchedPage(await browser.newContext({ viewport: { width: 390, height: 844 } }), base);
        try {
          await phone.page.goto(`${base}/`);
          const card = phone.page.locator(`tr[data-job-id="${tinyId}"] a`);
          await card.scrollIntoViewIfNeeded();
          await card.click();
          await phone.page.getByRole('heading', { name: 'Job dash-tiny' }).waitFor();
          // loaded: all 15 epochs drawn, the three samples, and the Generate form (shown once the view says there is a checkpoint)
          await phone.page.waitForFunction(
            () => Number(document.getElementById('chart')!.dataset.points) === 15 && document.querySelectorAll('#samples li').length === 3,
            null,
            { timeout: 10_000 },
          );
          await phone.page.locator('#generate-section').waitFor();
          await phone.page.waitForFunction(() => document.querySelector('#chart canvas') !== null);
          const at = await phone.page.evaluate(() => {
            const r = document.getElementById('job-title')!.getBoundingClientRect();
            return { top: r.top, bottom: r.bottom, scrollY: window.scrollY, chart: document.getElementById('chart')!.getBoundingClientRect().top };
          });
          assert.ok(
            at.top >= 0 && at.bottom <= 844,
            `the job's title is in view after opening it at 390 px (title at ${at.top}..${at.bottom} px, scrolled to ${at.scrollY})`,
          );
          assert.ok(at.chart < 844, `the curve starts in view (at ${at.chart} px)`);
          await phone.page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone-job.png') });
          assert.deepEqual(phone.errors, []);
        } finally {
          await phone.page.context().close();
        }
      }

      // a long job: its curve grows while we watch; leave it and come back: the stream resumes
      // after the last event seen (Last-Event-ID), no epoch twice; then cancel it with the button
      await fillJob(page, { name: 'dash-long', epochs: 5000, seed: 2, hidden: 32, maxTokens: 10000 });
      await page.getByRole('button', { name: 'Submit job' }).click();
      await page.getByRole('heading', { name: 'Job dash-long' }).waitFor();
      const longId = decodeURIComponent(new URL(page.url()).hash.slice('#job='.length));
      assert.notEqual(longId, tinyId);
      const grows = async (than: number) =>
        page.waitForFunction((n) => Number(document.getElementById('chart')!.dataset.points) > n, than, { timeout: 45_000 });
      await grows(1);
      await grows(await points(page));
      await page.locator(`tr[data-job-id="${tinyId}"] a`).click();
      await page.getByRole('heading', { name: 'Job dash-tiny' }).waitFor();
      const resumed = page.waitForRequest((r) => r.url().endsWith(`/v1/jobs/${longId}/events`));
      await page.locator(`tr[data-job-id="${longId}"] a`).click();
      const lastEventId = Number((await resumed).headers()['last-event-id']);
      assert.ok(Number.isInteger(lastEventId) && lastEventId > 2, `resumed with Last-Event-ID ${lastEventId}`);
      await grows(await points(page));
      const seen = (await page.locator('#epochs-body tr td:first-child').allTextContents()).map(Number);
      assert.deepEqual(
        seen,
        Array.from({ length: seen.length }, (_, i) => i + 1),
        'every epoch once, in order',
      );

      // a job queued behind dash-long, watched on a second page: its changes arrive live and are told
      const next = (
        await stack.open.service.submit({
          name: 'dash-next',
          model: { kind: 'scratch', numHiddens: 16 },
          data: { corpus: 'timemachine', maxTokens: 2000, batchSize: 8, numSteps: 10 },
          train: { epochs: 3, seed: 4 },
          report: { predictEvery: 5, numPreds: 20 },
        })
      ).job;
      const watcher = await watchedPage(context, base);
      await watcher.page.addInitScript({ content: RECORD_NOTICES });
      await watcher.page.goto(`${base}/#job=${encodeURIComponent(next.id)}`);
      await watcher.page.getByRole('heading', { name: 'Job dash-next' }).waitFor();
      await watcher.page.locator('#job-state .state-queued').waitFor();

      // Cancel asks first; "Keep it running" sends nothing and the job goes on
      const cancels: string[] = [];
      page.on('request', (r) => {
        if (r.url().endsWith('/cancel')) cancels.push(r.url());
      });
      await page.getByRole('button', { name: 'Cancel job' }).click();
      const confirm = page.getByRole('group', { name: /Cancel job dash-long\?/ });
      await confirm.waitFor();
      assert.equal(
        await page.getByRole('button', { name: 'Keep it running' }).evaluate((b) => b === document.activeElement),
        true,
        'the safe answer has the focus',
      );
      await page.getByRole('button', { name: 'Keep it running' }).click();
      await confirm.waitFor({ state: 'hidden' });
      await page.getByRole('button', { name: 'Cancel job' }).waitFor();
      const before = await points(page);
      await grows(before);
      assert.deepEqual(cancels, [], 'no cancel request for "Keep it running"');
      assert.equal((await stack.open.service.get(longId)).state, 'running');
      // and "Yes, cancel job" cancels it. The worker writes the checkpoint of the last epoch after
      // the cancelled state is published; it is held (SIGSTOP) until the page has read the
      // cancelled job once, so that first read shows an older checkpoint, as a slow worker's would
      await page.getByRole('button', { name: 'Cancel job' }).click();
      const workerPid = stack.worker.child.pid!;
      process.kill(workerPid, 'SIGSTOP');
      try {
        const reread = page.waitForResponse(
          async (r) => r.url().endsWith(`/v1/jobs/${longId}`) && r.request().method() === 'GET' && (await r.json()).state === 'cancelled',
          { timeout: 20_000 },
        );
        await page.getByRole('button', { name: 'Yes, cancel job' }).click();
        await page.locator('#job-state .state-cancelled').waitFor({ timeout: 20_000 });
        const first = await (await reread).json();
        assert.ok(
          first.checkpointEpoch < first.progress.epoch,
          `the page's first read of the cancelled job has checkpoint ${first.checkpointEpoch} before epoch ${first.progress.epoch}`,
        );
      } finally {
        process.kill(workerPid, 'SIGCONT');
      }
      assert.equal(cancels.length, 1);
      assert.equal(await page.locator('#notice').textContent(), 'Job dash-long was cancelled.');
      assert.equal(await confirm.isHidden(), true);
      // the view ends on the checkpoint the worker wrote after the cancel: the last published epoch
      // (it used to keep the one read with the cancel's answer, a few epochs before)
      let final = await stack.open.service.get(longId);
      for (let i = 0; i < 100 && final.checkpointEpoch !== final.progress.epoch; i++) {
        await new Promise((r) => setTimeout(r, 100));
        final = await stack.open.service.get(longId);
      }
      assert.equal(final.checkpointEpoch, final.progress.epoch, 'the worker wrote the cancel’s checkpoint');
      await page
        .waitForFunction((e) => document.getElementById('stat-ckpt')!.textContent === `epoch ${e}`, final.checkpointEpoch, { timeout: 10_000 })
        .catch(async () => {
          assert.fail(`the view shows checkpoint ${await page.locator('#stat-ckpt').textContent()}, the job has epoch ${final.checkpointEpoch}`);
        });
      // with dash-long gone the worker takes dash-next: running, then succeeded, told by name
      await watcher.page.waitForFunction(() => document.getElementById('notice')!.textContent === 'Job dash-next succeeded.', null, { timeout: 45_000 });
      assert.deepEqual(await noticesOf(watcher.page), ['Job dash-next is running.', 'Job dash-next succeeded.']);
      assert.deepEqual(watcher.external, []);
      assert.deepEqual(watcher.errors, []);
      await watcher.page.close();
      assert.equal(await page.getByRole('button', { name: 'Cancel job' }).isHidden(), true);
      await page.locator(`tr[data-job-id="${longId}"] .state-cancelled`).waitFor({ timeout: 10_000 });
      const cancelled = await stack.open.service.get(longId);
      assert.equal(cancelled.state, 'cancelled');
      assert.ok(cancelled.progress.epoch < 5000);

      // filter by state: only the cancelled job
      await page.getByLabel('State', { exact: true }).selectOption('cancelled');
      await page.waitForFunction(() => document.querySelectorAll('#jobs-body tr').length === 1, null, { timeout: 10_000 });
      assert.equal(await page.locator('#jobs-body tr').getAttribute('data-job-id'), longId);
      await page.getByLabel('State', { exact: true }).selectOption('');

      // the jobs table fits its panel at desktop widths: no column cut off or reached by scrolling
      // sideways (three finished rows, started and finished times filled in)
      await page.locator(`tr[data-job-id="${next.id}"] .state-succeeded`).waitFor({ timeout: 10_000 });
      assert.equal(await page.locator('#jobs-body tr').count(), 3);
      for (const width of [1360, 1100]) {
        await page.setViewportSize({ width, height: 1000 });
        await page.waitForTimeout(200);
        const [table, wrap, panel] = await page
          .locator('#jobs-table')
          .evaluate((t) => [t.scrollWidth, t.parentElement!.scrollWidth, t.parentElement!.clientWidth]);
        assert.ok(table <= panel && wrap <= panel, `at ${width} px the jobs table is ${table} px wide (scrolls ${wrap}) in a ${panel} px panel`);
      }
      await page.setViewportSize({ width: 1360, height: 1000 });

      // reopening the finished job draws its whole history again
      await page.locator(`tr[data-job-id="${tinyId}"] a`).click();
      await page.getByRole('heading', { name: 'Job dash-tiny' }).waitFor();
      await page.waitForFunction(() => Number(document.getElementById('chart')!.dataset.points) === 15, null, { timeout: 10_000 });

      // a phone-width screen: one column, the jobs table as cards, nothing wider than the screen
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone screen`);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });

      // every input has a label
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea')].filter((i) => (i as HTMLInputElement).labels?.length === 0).map((i) => i.id),
      );
      assert.deepEqual(unlabelled, []);
      assert.deepEqual(external, [], 'requests off the service');
      assert.deepEqual(errors, []);
    } catch (e) {
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-failure.png'), fullPage: true }).catch(() => {});
      throw new Error(`${(e as Error).message}\nworker log:\n${stack.worker.output.slice(-3000)}`, { cause: e });
    } finally {
      await context.close();
    }
  });

  test('with API keys: the page asks for the key on the first 401, then works', async () => {
    const base = stack.authed.httpAddress;
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, external, errors } = await watchedPage(context, base);
    try {
      // the page itself needs no key; its first API call gets a 401 and the key prompt opens
      const res = await page.goto(`${base}/`);
      assert.equal(res?.status(), 200);
      const prompt = page.getByRole('region', { name: 'API key' });
      await prompt.waitFor();
      // auth is on: the 401 told the page, so the API key button is there
      assert.equal(await page.locator('#auth-toggle').isVisible(), true);
      assert.match((await page.locator('#auth-message').textContent()) ?? '', /needs an API key/);
      assert.equal(await page.locator('#jobs-body tr').count(), 0);

      // a wrong key is rejected and asked for again
      await page.getByLabel('kept for this browser tab').fill('wrong-key');
      await page.getByRole('button', { name: 'Use key' }).click();
      await page.waitForFunction(() => /rejected/.test(document.getElementById('auth-message')!.textContent ?? ''), null, { timeout: 10_000 });
      assert.equal(await prompt.isVisible(), true);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-auth-prompt.png') });

      // the right key: the prompt closes, the jobs of this service appear, submit works
      await page.getByLabel('kept for this browser tab').fill(KEY);
      await page.getByRole('button', { name: 'Use key' }).click();
      await prompt.waitFor({ state: 'hidden' });
      await page.locator('#jobs-body tr').first().waitFor({ timeout: 10_000 });
      assert.equal(await page.evaluate(() => sessionStorage.getItem('lstm-trainer.apiKey')), KEY);
      await page.getByText('API key accepted').waitFor();
      assert.equal(await page.locator('#auth-toggle').textContent(), 'API key ✓');

      await fillJob(page, { name: 'dash-auth', epochs: 5, seed: 3 });
      // sample prefixes, one input each: a comma is part of a prefix; a prefix the server refuses
      // gets its message under its own input; a removed prefix is not sent
      const form = page.getByRole('form', { name: 'New job' });
      await form.getByLabel('Prefix 2', { exact: true }).fill('by the time, he said');
      await form.getByRole('button', { name: 'Add prefix' }).click();
      await form.getByLabel('Prefix 3', { exact: true }).fill(', ;');
      await page.getByRole('button', { name: 'Submit job' }).click();
      await page.locator('#f-prefix-3-error').waitFor();
      assert.equal(await page.locator('#f-prefix-3-error').textContent(), 'report.prefixes entries must contain at least one letter (A-Z, a-z)');
      assert.equal(await form.getByLabel('Prefix 3', { exact: true }).getAttribute('aria-invalid'), 'true');
      await form.getByRole('button', { name: 'Remove prefix 3' }).click();
      assert.equal(await form.getByLabel('Prefix 3', { exact: true }).count(), 0);
      await page.getByRole('button', { name: 'Submit job' }).click();
      await page.getByRole('heading', { name: 'Job dash-auth' }).waitFor();
      const authId = decodeURIComponent(new URL(page.url()).hash.slice('#job='.length));
      assert.deepEqual((await stack.authed.service.get(authId)).spec.report.prefixes, ['time traveller', 'by the time, he said']);
      await page.locator('#job-state .state-succeeded').waitFor({ timeout: 45_000 });
      assert.equal(await points(page), 5);
      assert.equal(await page.locator('#samples li').count(), 1);
      assert.deepEqual(await page.locator('#samples .sample .prefix').allTextContents(), ['time traveller', 'by the time he said']);

      // a pasted corpus: the view carries its size and hash, and the spec panel says so in words
      const text = 'the time machine, by h. g. wells. '.repeat(20);
      const pasted = (
        await stack.authed.service.submit({
          name: 'dash-pasted',
          model: { kind: 'scratch', numHiddens: 8 },
          data: { corpus: { text }, batchSize: 2, numSteps: 5 },
          train: { epochs: 1, seed: 5 },
        })
      ).job;
      await stack.authed.service.cancel(pasted.id).catch(() => undefined); // it need not train
      await page.goto(`${base}/#job=${encodeURIComponent(pasted.id)}`);
      await page.getByRole('heading', { name: 'Job dash-pasted' }).waitFor();
      await page.locator('details.spec summary').click();
      const sha = createHash('sha256').update(text).digest('hex');
      await page.waitForFunction(() => document.getElementById('job-corpus')!.textContent !== '');
      assert.equal(
        await page.locator('#job-corpus').textContent(),
        `pasted text, ${Buffer.byteLength(text).toLocaleString('en-US')} bytes, SHA-256 ${sha.slice(0, 12)}…`,
      );
      assert.equal(await page.locator('#job-corpus').getAttribute('title'), `SHA-256 ${sha}`);
      await page.goto(`${base}/#job=${encodeURIComponent(authId)}`);

      // a reload keeps the key for this tab: no prompt
      await page.reload();
      await page.getByRole('heading', { name: 'Job dash-auth' }).waitFor();
      await page.waitForFunction(() => Number(document.getElementById('chart')!.dataset.points) === 5, null, { timeout: 10_000 });
      assert.equal(await prompt.isHidden(), true);
      assert.deepEqual(external, []);
      assert.deepEqual(errors, []);
    } catch (e) {
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-auth-failure.png'), fullPage: true }).catch(() => {});
      throw e;
    } finally {
      await context.close();
    }
  });
});
