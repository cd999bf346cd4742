// npx tsx bench/dashboard-screenshot.ts [--out docs/img] [--seed 1] [--only-scratch] [--samples 4]
// Screenshots of the dashboard showing a FINISHED default d2l run (a script, not a test): the api
// (HTTP on a free port) and one `lstm-trainer worker` child process under a Redis key prefix of
// their own; submits d2l's recipe — scratch LSTM, 256 hidden units, lr 1, batch 32, 35 steps,
// 500 epochs, the first 10,000 characters of The Time Machine — through POST /v1/jobs (and the
// same recipe with the concise kind first, unless --only-scratch), waits until they succeed,
// opens the scratch job's view (#job=<id>) in Chromium at 1360 px (as soon as it is submitted, so the page
// follows it live to the end) and, once it has finished, at 390 px; asks each for a greedy
// 100-character generation from the final checkpoint, and writes
//   <out>/dashboard-d2l-desktop.png   (the page down to the newest --samples samples)
//   <out>/dashboard-d2l-phone.png     (the job view, from its title down to the two newest samples)
// then stops everything and deletes its Redis keys. Engine: ENGINE, else native where it loads.
// The worker child process is the tests' WorkerProcess (test/support/processes.ts).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startApi, type ApiProcess } from '../src/api/app.js';
import { loadConfig } from '../src/jobs/config.js';
import { deleteKeysWithPrefix } from '../src/jobs/redis.js';
import type { JobView } from '../src/jobs/types.js';
import { REDIS_URL, ROOT, WorkerProcess, redisReachable } from '../test/support/processes.js';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(ROOT, 'docs/img') },
    seed: { type: 'string', default: '1' },
    'only-scratch': { type: 'boolean', default: false },
    samples: { type: 'string', default: '4' },
    'timeout-min': { type: 'string', default: '30' },
  },
});
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PREFIX = `shot-${process.pid}-${Date.now().toString(36)}`;
const SAMPLES_SHOWN = Math.max(1, Number(args.samples));
const DEADLINE = Date.now() + Number(args['timeout-min']) * 60_000;

const log = (line: string) => console.error(`[screenshot] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(): Record<string, string | undefined> {
  return { ...process.env, REDIS_URL, QUEUE_PREFIX: PREFIX, HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', API_KEYS: '' };
}

async function http<T>(base: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(
    `${base}${route}`,
    body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
  );
  const text = await res.text();
  if (!res.ok) throw new Error(`${body === undefined ? 'GET' : 'POST'} ${route}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** d2l's recipe, every field spelled out (they are also the service's defaults). */
function d2lSpec(kind: 'scratch' | 'concise'): Record<string, unknown> {
  return {
    name: `d2l default (${kind})`,
    model: { kind, numHiddens: 256 },
    data: { corpus: 'timemachine', maxTokens: 10000, batchSize: 32, numSteps: 35 },
    train: { epochs: 500, lr: 1, clipTheta: 1, seed: Number(args.seed) },
    report: { predictEvery: 10, prefixes: ['time traveller', 'traveller'], numPreds: 50 },
  };
}

async function waitForJob(base: string, id: string, label: string): Promise<JobView> {
  let lastShown = -1;
  for (;;) {
    const job = await http<JobView>(base, `/v1/jobs/${id}`);
    if (job.state === 'succeeded') return job;
    if (job.state === 'failed' || job.state === 'cancelled') throw new Error(`job ${label} ${job.state}: ${job.error ?? ''}`);
    if (Date.now() > DEADLINE) throw new Error(`job ${label} not finished before the deadline (${job.state}, epoch ${job.progress.epoch})`);
    if (job.progress.epoch >= lastShown + 50) {
      lastShown = job.progress.epoch;
      log(`${label}: ${job.state}, epoch ${job.progress.epoch}/${job.progress.epochs}, perplexity ${job.perplexity?.toFixed(2) ?? '–'}`);
    }
    await sleep(2000);
  }
}

/** Waits until the job view shows the finished job: badge, 500 points, every sample, the spec. */
async function waitForView(page: Page, job: JobView): Promise<void> {
  const epochs = job.progress.epochs;
  const samples = Math.floor(epochs / job.spec.report.predictEvery) + (epochs % job.spec.report.predictEvery ? 1 : 0);
  await page.locator('#job-state .state-succeeded').waitFor({ timeout: 30_000 });
  await page.waitForFunction((n) => Number(document.getElementById('chart')!.dataset.points) === n, epochs, { timeout: 30_000 });
  await page.waitForFunction((n) => document.querySelectorAll('#samples > li').length === n, samples, { timeout: 30_000 });
  await page.waitForFunction((t) => document.getElementById('stat-epoch')!.textContent === t, `${epochs}/${epochs}`, { timeout: 30_000 });
  await page.locator(`tr[data-job-id="${job.id}"] .state-succeeded`).waitFor({ timeout: 30_000 });
  await page.locator('#generate-section').waitFor({ state: 'visible', timeout: 30_000 });
}

/** Greedy generation through the page's form (streamed); returns the continuation. */
async function generate(page: Page): Promise<string> {
  const form = page.getByRole('form', { name: 'Generate text' });
  await form.getByLabel('Prefix').fill('time traveller');
  await form.getByLabel('Length (characters)').fill('100');
  await form.getByRole('button', { name: 'Generate', exact: true }).click();
  await page.waitForFunction(() => document.getElementById('gen-output')!.dataset.done === 'true', null, { timeout: 60_000 });
  return (await page.locator('#gen-output').textContent()) ?? '';
}

/** The page's own figures, as a reader of the screenshot sees them. */
async function readView(page: Page) {
  const text = async (id: string) => ((await page.locator(`#${id}`).textContent()) ?? '').trim();
  const newest = page.locator('#samples > li').first();
  // (no named functions inside evaluate: tsx would wrap them in a __name helper the page lacks)
  const size = await page.evaluate(() => [document.documentElement.scrollWidth - document.documentElement.clientWidth, document.documentElement.scrollHeight]);
  return {
    notice: await text('notice'),
    title: await text('job-title'),
    state: await text('job-state'),
    status: await text('job-status-text'),
    epoch: await text('stat-epoch'),
    perplexity: await text('stat-ppl'),
    tokensPerSec: await text('stat-tps'),
    elapsed: await text('stat-elapsed'),
    engine: await text('stat-engine'),
    checkpoint: await text('stat-ckpt'),
    caption: await text('chart-caption'),
    newestSample: await newest.locator('p').allTextContents(),
    generated: await text('gen-output'),
    overflowX: size[0],
    pageHeight: size[1],
  };
}

/** Where (page coordinates) the n newest samples end: just above the next one, or below the list. */
async function samplesBottom(page: Page, n: number): Promise<number> {
  return page.evaluate((k) => {
    const items = document.querySelectorAll('#samples > li');
    const next = items[k];
    if (next) return Math.floor(next.getBoundingClientRect().top + window.scrollY) - 2;
    return Math.ceil(document.getElementById('samples')!.getBoundingClientRect().bottom + window.scrollY) + 12;
  }, n);
}

async function shoot(page: Page, file: string, clip: { x: number; y: number; width: number; height: number }): Promise<void> {
  await page.screenshot({ path: file, fullPage: true, clip });
  log(`${path.relative(ROOT, file)}: ${clip.width}×${clip.height} px, ${(statSync(file).size / 1024).toFixed(0)} KB`);
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`);
  if (!(await redisReachable(REDIS_URL))) throw new Error(`no Redis at ${REDIS_URL} (set REDIS_URL)`);
  mkdirSync(args.out, { recursive: true });
  process.env.LOG_LEVEL ??= 'warn';
  let api: ApiProcess | undefined;
  let worker: WorkerProcess | undefined;
  let browser: Browser | undefined;
  try {
    worker = new WorkerProcess(env(), { readyTimeoutMs: 60_000 });
    [api] = await Promise.all([startApi(loadConfig(env()), log), worker.ready]);
    log(/lstm-trainer worker ready[^"\n]*/.exec(worker.output)?.[0] ?? 'worker ready');
    const base = api.httpAddress;

    // the concise job first, so both have finished when the scratch one has
    const concise = args['only-scratch'] ? undefined : await http<JobView>(base, '/v1/jobs', d2lSpec('concise'));
    const scratch = await http<JobView>(base, '/v1/jobs', d2lSpec('scratch'));
    log(`submitted ${scratch.id} (scratch)${concise ? ` after ${concise.id} (concise)` : ''}; prefix ${PREFIX}`);

    browser = await chromium.launch({ executablePath: CHROMIUM });
    const errors: string[] = [];
    const openPage = async (width: number, height: number) => {
      const context = await browser!.newContext({ viewport: { width, height }, deviceScaleFactor: 1, colorScheme: 'light' });
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      await page.goto(`${base}/#job=${encodeURIComponent(scratch.id)}`);
      return page;
    };
    const finishView = async (page: Page, job: JobView) => {
      await waitForView(page, job);
      const generated = await generate(page);
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.waitForTimeout(500); // uPlot's resize, fonts
      return generated;
    };
    // the desktop page watches the scratch job live, from the queue to the end, as a user would
    const deskPage = await openPage(1360, 900);

    if (concise) {
      const c = await waitForJob(base, concise.id, 'concise');
      log(
        `concise: succeeded, final perplexity ${c.summary?.finalPerplexity?.toFixed(3)}, ${((c.summary?.totalMs ?? 0) / 1000).toFixed(1)} s on ${c.engine}/${c.backend}`,
      );
    }
    const done = await waitForJob(base, scratch.id, 'scratch');
    log(
      `scratch: succeeded, final perplexity ${done.summary?.finalPerplexity?.toFixed(3)}, ${((done.summary?.totalMs ?? 0) / 1000).toFixed(1)} s on ${done.engine}/${done.backend}`,
    );
    const desk = { page: deskPage, generated: await finishView(deskPage, done) };

    // desktop: two columns; the whole page down to the newest samples
    const deskView = await readView(desk.page);
    const leftBottom = await desk.page.evaluate(() => Math.ceil(document.querySelector('.side')!.getBoundingClientRect().bottom + window.scrollY));
    const deskHeight = Math.min(deskView.pageHeight, Math.max(leftBottom + 16, await samplesBottom(desk.page, SAMPLES_SHOWN)));
    await shoot(desk.page, path.join(args.out, 'dashboard-d2l-desktop.png'), { x: 0, y: 0, width: 1360, height: deskHeight });

    // phone: one column, the job view first; from the job panel's top down to the newest samples
    const phonePage = await openPage(390, 844);
    const phone = { page: phonePage, generated: await finishView(phonePage, done) };
    const phoneView = await readView(phone.page);
    const panelTop = await phone.page.evaluate(() => Math.floor(document.getElementById('job-panel')!.getBoundingClientRect().top + window.scrollY));
    const phoneBottom = await samplesBottom(phone.page, Math.min(2, SAMPLES_SHOWN));
    await shoot(phone.page, path.join(args.out, 'dashboard-d2l-phone.png'), {
      x: 0,
      y: Math.max(0, panelTop - 8),
      width: 390,
      height: phoneBottom - panelTop + 8,
    });

    console.log(JSON.stringify({ jobId: scratch.id, desktop: deskView, phone: phoneView, pageErrors: errors }, null, 2));
  } catch (e) {
    if (worker?.output) log(`worker output (tail):\n${worker.output.slice(-3000)}`);
    throw e;
  } finally {
    await browser?.close().catch(() => {});
    await worker?.stop(10_000); // SIGTERM, SIGKILL after 10 s
    await api?.close().catch(() => {});
    const r = new Redis(REDIS_URL);
    try {
      log(`deleted ${await deleteKeysWithPrefix(r, PREFIX)} Redis keys under ${PREFIX}:`);
    } finally {
      r.disconnect();
    }
  }
}

await main();
