// A cancelled job's checkpoint is its last published epoch. The race this guards: the api cancels
// after the worker finished training epoch N+1 (and its samples) but before N+1's event is appended
// — the append is refused, the trainer is one epoch ahead of the history, and the worker used to
// keep no checkpoint at all then (the stored one stayed at the last periodic epoch: 30 vs 37).
// Epochs here are mostly sampling (predictEvery 1, 2 × 1980 characters: the most the history budget
// allows per epoch, for at most 250 epochs — src/train/spec.ts), so a cancel sent part-way
// between two epoch events lands in that window; periodic checkpoints are rare (CHECKPOINT_EVERY 1000).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobEvent } from '../../src/jobs/types.js';
import { WorkerProcess, deletePrefix, startTestApi, streamEvents, testEnv, type TestApi } from '../support/service.js';

const env = testEnv({ CHECKPOINT_EVERY: '1000', CHECKPOINT_SECONDS: '3600' });
let api: TestApi;
let worker: WorkerProcess;

before(async () => {
  [api, worker] = await Promise.all([startTestApi(env), WorkerProcess.start(env, { readyTimeoutMs: 60_000 })]);
});
after(async () => {
  await worker?.stop();
  await api?.close();
  await deletePrefix(env.QUEUE_PREFIX);
});

const spec = (seed: number) => ({
  model: { kind: 'scratch', numHiddens: 16 },
  data: { maxTokens: 2000, batchSize: 8, numSteps: 10 },
  train: { epochs: 250, seed },
  report: { predictEvery: 1, numPreds: 1980, prefixes: ['time traveller', 'the'] },
});

async function post(path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(api.url + path, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('cancel a running job at several points between two epochs: checkpointEpoch == the last epoch event, generation works', async () => {
  // fractions of the time between two epoch events at which to cancel
  for (const [i, fraction] of [0.5, 0.75, 0.9, 0.6, 0.3].entries()) {
    const { body: job } = await post('/v1/jobs', spec(i + 1));
    const id = job.id as string;
    // the time between epoch events, then a cancel that fraction of it after the next one
    const arrivals: number[] = [];
    await streamEvents(api.url, id, { until: (ev) => ev.type === 'epoch' && arrivals.push(Date.now()) >= 6, timeoutMs: 120_000 });
    const gap = (arrivals[5] - arrivals[3]) / 2;
    const stream = streamEvents(api.url, id, { fromSeq: 0, timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, Math.round(gap * fraction)));
    const cancelled = await post(`/v1/jobs/${id}/cancel`, {});
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    const events: JobEvent[] = await stream;
    const lastEpoch = events.filter((e) => e.type === 'epoch').at(-1) as JobEvent & { type: 'epoch' };
    const final = events.at(-1) as JobEvent & { type: 'state' };
    assert.equal(final.state, 'cancelled');
    assert.equal(final.summary!.epochs, lastEpoch.epoch);
    // the worker keeps its checkpoint once it has stopped (within a minibatch, or after the samples it was writing)
    let view: Record<string, unknown> = {};
    for (let t = 0; t < 200; t++) {
      view = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as Record<string, unknown>;
      if (view.checkpointEpoch === lastEpoch.epoch) break;
      if (worker.output.includes(`job ${id} stopped (cancel)`) && t > 5) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(
      view.checkpointEpoch,
      lastEpoch.epoch,
      `cancel ${i} (at ${fraction} of ${Math.round(gap)} ms): checkpoint ${view.checkpointEpoch}, last epoch event ${lastEpoch.epoch}`,
    );
    assert.equal((view.progress as { epoch: number }).epoch, lastEpoch.epoch);
    // and generation after the cancel uses it
    const gen = await post(`/v1/jobs/${id}/generate`, { prefix: 'time', numChars: 5 });
    assert.equal(gen.status, 200, JSON.stringify(gen.body));
  }
});
