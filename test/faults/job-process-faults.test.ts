// A job's own training process crashes — abort() (SIGABRT, as a native fault does), SIGKILL (as
// the out-of-memory killer does), an uncaught error — in the middle of an epoch. Only that process
// ends: the job is retried from its checkpoint (every epoch once) or, after its attempts, `failed`
// with what happened (signal or exit code, and the last stderr line); the worker process lives on
// and trains other jobs, one of them at the same time as the crash.
//
// The crashes come from the training process's test-only hook (LSTM_TEST_CRASH,
// src/jobs/train-child.ts), for jobs of one name only.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import type { JobEvent } from '../../src/jobs/types.js';
import { FAST_RECOVERY, TestProcesses, assertSeqs, epochNumbers, startTestApi, streamEvents, testEnv } from '../support/service.js';

const processes = new TestProcesses();
after(() => processes.cleanUp());

function spec(name: string, epochs: number) {
  return {
    name,
    model: { kind: 'scratch', numHiddens: 16 },
    data: { maxTokens: 2000, batchSize: 4, numSteps: 10 },
    train: { epochs, seed: 3 },
    report: { predictEvery: 5, prefixes: ['time traveller'], numPreds: 10 },
  };
}

const states = (events: JobEvent[]) => events.filter((e): e is JobEvent & { type: 'state' } => e.type === 'state');

test('a training process that aborts (SIGABRT) mid-epoch: the job is retried from its checkpoint, every epoch once; a job beside it on the same worker is untouched', async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '3', WORKER_CONCURRENCY: '2' }));
  const api = await startTestApi(env);
  try {
    const w = await processes.startWorker({
      ...env,
      LSTM_TEST_CRASH: 'abort',
      LSTM_TEST_CRASH_EPOCH: '5',
      LSTM_TEST_CRASH_ATTEMPTS: '1',
      LSTM_TEST_CRASH_NAME: 'crash-once',
    });
    const { body: crashing } = await request(api.url).post('/v1/jobs').send(spec('crash-once', 12)).expect(201);
    const { body: healthy } = await request(api.url).post('/v1/jobs').send(spec('healthy', 40)).expect(201);
    const [events, besides] = await Promise.all([
      streamEvents(api.url, crashing.id, { timeoutMs: 90_000 }),
      streamEvents(api.url, healthy.id, { timeoutMs: 90_000 }),
    ]);

    assertSeqs(events);
    assert.deepEqual(
      epochNumbers(events),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    const st = states(events);
    assert.deepEqual(
      st.map((e) => e.state),
      ['queued', 'running', 'queued', 'running', 'succeeded'],
    );
    // what happened, in the state message: the signal and the process's last stderr line
    assert.match(
      st[2].message ?? '',
      /^attempt 1 failed \(the training process was killed by SIGABRT \(a native fault\); its last stderr line: LSTM_TEST_CRASH abort in epoch 5 \(attempt 1\)\); retrying$/,
    );
    // the crash came mid-epoch 5: epochs 1–4 were published by attempt 1, and attempt 2 resumed from
    // the checkpoint of epoch 3 (it re-trained epoch 4 without publishing it again)
    assert.equal(events.indexOf(st[2]), 1 + 1 + 4);
    assert.equal(st[3].attempt, 2);
    assert.equal(st[3].message, 'resuming from the checkpoint at epoch 3');

    // the other job trained on the same worker through the crash, and the worker is still up
    assertSeqs(besides);
    assert.deepEqual(
      states(besides).map((e) => e.state),
      ['queued', 'running', 'succeeded'],
    );
    assert.deepEqual(
      epochNumbers(besides),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    assert.ok(w.alive, w.output);
    assert.match(w.output, new RegExp(`job ${crashing.id} attempt 1 failed: the training process was killed by SIGABRT`));
    await w.stop();
  } finally {
    await api.close();
  }
});

test('a training process that keeps crashing (SIGKILL, then an uncaught error): failed after its attempts with the signal / exit code and last stderr line; the worker serves the next job', async () => {
  const env = processes.own(testEnv({ ...FAST_RECOVERY, CHECKPOINT_EVERY: '3', JOB_ATTEMPTS: '2' }));
  const api = await startTestApi(env);
  try {
    // SIGKILL (what the out-of-memory killer sends) in every attempt
    const w1 = await processes.startWorker({ ...env, LSTM_TEST_CRASH: 'sigkill', LSTM_TEST_CRASH_EPOCH: '2', LSTM_TEST_CRASH_NAME: 'crash-always' });
    const { body: killed } = await request(api.url).post('/v1/jobs').send(spec('crash-always', 12)).expect(201);
    const e1 = await streamEvents(api.url, killed.id, { timeoutMs: 60_000 });
    assertSeqs(e1);
    const s1 = states(e1);
    assert.deepEqual(
      s1.map((e) => e.state),
      ['queued', 'running', 'queued', 'running', 'failed'],
    );
    assert.match(
      s1[2].message ?? '',
      /^attempt 1 failed \(the training process was killed by SIGKILL \(out of memory, or killed\); its last stderr line: LSTM_TEST_CRASH sigkill in epoch 2 \(attempt 1\)\); retrying$/,
    );
    assert.equal(
      s1[4].error,
      'the training process was killed by SIGKILL (out of memory, or killed); its last stderr line: LSTM_TEST_CRASH sigkill in epoch 2 (attempt 2)',
    );
    assert.deepEqual(epochNumbers(e1), [1]); // epoch 1 once; epoch 2 never finished
    const { body: view } = await request(api.url).get(`/v1/jobs/${killed.id}`).expect(200);
    assert.equal(view.state, 'failed');
    assert.match(view.error, /SIGKILL/);
    // the same worker process trains the next job
    const { body: next } = await request(api.url).post('/v1/jobs').send(spec('next', 4)).expect(201);
    assert.equal(states(await streamEvents(api.url, next.id, { timeoutMs: 60_000 })).at(-1)?.state, 'succeeded');
    assert.ok(w1.alive);
    await w1.stop();

    // an uncaught error: exit code 1, and the error's line (not the stack or node's footer)
    const w2 = await processes.startWorker({ ...env, LSTM_TEST_CRASH: 'throw', LSTM_TEST_CRASH_EPOCH: '1', LSTM_TEST_CRASH_NAME: 'crash-always' });
    const { body: thrown } = await request(api.url).post('/v1/jobs').send(spec('crash-always', 12)).expect(201);
    const s2 = states(await streamEvents(api.url, thrown.id, { timeoutMs: 60_000 }));
    assert.deepEqual(
      s2.map((e) => e.state),
      ['queued', 'running', 'queued', 'running', 'failed'],
    );
    assert.equal(s2[4].error, 'the training process exited with code 1; its last stderr line: Error: LSTM_TEST_CRASH: training blew up in epoch 1');
    assert.ok(w2.alive);
    await w2.stop();
  } finally {
    await api.close();
  }
});
