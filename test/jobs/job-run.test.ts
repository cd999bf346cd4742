// JobRun (src/jobs/lifecycle.ts) against a real Redis under its own prefix: each state change is
// allowed only from its states, a worker's steps only by the token that owns the job, markLost only
// while nobody holds the queue lock, cancel only from queued/running with an unchanged history, and
// the final states are final. No worker process: the job records are made with JobStore directly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog } from '../../src/jobs/events.js';
import { JobRun } from '../../src/jobs/lifecycle.js';
import { Keys, connectRedis } from '../../src/jobs/redis.js';
import { JobStore } from '../../src/jobs/job-records.js';
import type { JobSummary } from '../../src/jobs/types.js';
import { parseJobSpec } from '../../src/train/spec.js';
import { REDIS_URL, deletePrefix } from '../support/service.js';

const prefix = `jobrun-${process.pid}-${Date.now().toString(36)}`;
const keys = new Keys(prefix);
const redis = connectRedis(REDIS_URL, { name: 'job-run-test' });
const store = new JobStore(redis, keys);
const events = new EventLog(redis, keys);
const spec = parseJobSpec({ train: { epochs: 3 } });
const summary: JobSummary = { finalPerplexity: 1.5, epochs: 1, totalMs: 10, engine: 'tfjs', backend: 'cpu' };
const epoch = (n: number) => ({ epoch: n, epochs: 3, perplexity: 2, tokensPerSec: 100, elapsedMs: n * 10 });

before(async () => {
  await redis.ping();
});
after(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

async function newJob(): Promise<string> {
  return (await store.create(spec, { maxQueued: 1000 })).id;
}
async function record(id: string) {
  const rec = await store.get(id);
  assert.ok(rec, `job ${id} exists`);
  return rec;
}
/** A job running under `token`. */
async function running(token: string): Promise<string> {
  const id = await newJob();
  const r = await new JobRun(events, id, token).start({ attempt: 1 });
  assert.equal(r.ok, true);
  return id;
}
async function stateEvents(id: string) {
  return (await events.history(id, 0)).flatMap((e) => (e.type === 'state' ? [{ state: e.state, message: e.message, error: e.error }] : []));
}

test('start: queued → running, once; the token becomes the owner; a worker step without a token is a programming error', async () => {
  const id = await newJob();
  assert.throws(() => new JobRun(events, id).start({ attempt: 1 }), /needs its lock token/);
  const a = new JobRun(events, id, 'tokA');
  const r = await a.start({ attempt: 1, message: 'resuming', fields: { engine: 'tfjs' } });
  assert.equal(r.ok, true);
  const rec = await record(id);
  assert.equal(rec.state, 'running');
  assert.equal(rec.owner, 'tokA');
  assert.equal(rec.engine, 'tfjs');
  assert.deepEqual(await new JobRun(events, id, 'tokB').start({ attempt: 2 }), { ok: false, reason: 'state', current: 'running' });
  assert.equal((await record(id)).owner, 'tokA');
  assert.deepEqual(await new JobRun(events, 'nosuchjob', 'tokA').start({ attempt: 1 }), { ok: false, reason: 'missing', current: undefined });
});

test('publishEpoch: only by the owner, only lastEpoch+1', async () => {
  const id = await running('tokA');
  assert.equal(await new JobRun(events, id, 'stale').publishEpoch(epoch(1)), 'fenced');
  const a = new JobRun(events, id, 'tokA');
  assert.equal(await a.publishEpoch(epoch(1)), 'appended');
  assert.equal(await a.publishEpoch(epoch(1)), 'duplicate');
  assert.equal(await a.publishEpoch(epoch(3)), 'gap');
  assert.equal((await record(id)).lastEpoch, 1);
});

test('succeed: refused for a stale token, done by the owner, which it clears; then final', async () => {
  const id = await running('tokA');
  assert.deepEqual(await new JobRun(events, id, 'stale').succeed({ summary }), { ok: false, reason: 'owner', current: 'running' });
  assert.equal((await record(id)).state, 'running');
  const r = await new JobRun(events, id, 'tokA').succeed({ summary });
  assert.equal(r.ok, true);
  const rec = await record(id);
  assert.equal(rec.state, 'succeeded');
  assert.equal(rec.owner, undefined);
  // nothing leaves a final state, not even for the token that owned it
  const a = new JobRun(events, id, 'tokA');
  for (const step of [
    () => a.succeed({ summary }),
    () => a.fail({ error: 'x' }),
    () => a.retry({ message: 'x' }),
    () => a.handBack({ message: 'x' }),
    () => a.timeOut({ summary, message: 'x' }),
    () => a.markLost({ message: 'x' }),
    () => a.takeOver({ previousOwner: '', message: 'x' }),
    () => a.giveUp({ error: 'x' }),
    () => a.start({ attempt: 2 }),
  ]) {
    assert.deepEqual(await step(), { ok: false, reason: 'state', current: 'succeeded' });
  }
  assert.deepEqual(await a.cancel({ seen: { state: 'succeeded', lastSeq: rec.lastSeq }, summary, message: 'x' }), {
    ok: false,
    reason: 'state',
    current: 'succeeded',
  });
  assert.equal(await a.publishEpoch(epoch(1)), 'fenced');
  assert.deepEqual(
    (await stateEvents(id)).map((e) => e.state),
    ['queued', 'running', 'succeeded'],
  );
});

test('fail, retry, handBack, timeOut: from running, by the owner only', async () => {
  const cases = [
    { step: (r: JobRun) => r.fail({ error: 'boom' }), to: 'failed' },
    { step: (r: JobRun) => r.retry({ message: 'attempt 1 failed (boom); retrying' }), to: 'queued' },
    { step: (r: JobRun) => r.handBack({ message: 'worker shut down; resumes from the start' }), to: 'queued' },
    { step: (r: JobRun) => r.timeOut({ summary, message: 'cancelled: its training time exceeded' }), to: 'cancelled' },
  ] as const;
  for (const { step, to } of cases) {
    const id = await running('tokA');
    assert.deepEqual(await step(new JobRun(events, id, 'stale')), { ok: false, reason: 'owner', current: 'running' }, to);
    assert.equal((await step(new JobRun(events, id, 'tokA'))).ok, true, to);
    const rec = await record(id);
    assert.equal(rec.state, to);
    assert.equal(rec.owner, undefined);
    // not from queued
    const q = await newJob();
    assert.deepEqual(await step(new JobRun(events, q, 'tokA')), { ok: false, reason: 'state', current: 'queued' }, to);
  }
  // the words are the caller's: the state events carry them
  const id = await running('tokA');
  await new JobRun(events, id, 'tokA').retry({ message: 'attempt 1 failed (boom); retrying' });
  assert.deepEqual((await stateEvents(id)).at(-1), { state: 'queued', message: 'attempt 1 failed (boom); retrying', error: undefined });
});

test('markLost: running → queued only while nobody holds the queue lock', async () => {
  const id = await running('tokA');
  await redis.set(keys.bullLock(id), 'tokA');
  const other = new JobRun(events, id); // the stalled checker of another worker: no token
  assert.deepEqual(await other.markLost({ message: 'worker lost; waiting for another worker' }), { ok: false, reason: 'locked', current: 'running' });
  assert.equal((await record(id)).state, 'running');
  await redis.del(keys.bullLock(id));
  assert.equal((await other.markLost({ message: 'worker lost; waiting for another worker' })).ok, true);
  const rec = await record(id);
  assert.equal(rec.state, 'queued');
  assert.equal(rec.owner, undefined);
  // the lost worker, back from a freeze, is fenced out
  assert.deepEqual(await new JobRun(events, id, 'tokA').succeed({ summary }), { ok: false, reason: 'state', current: 'queued' });
  assert.equal(await new JobRun(events, id, 'tokA').publishEpoch(epoch(1)), 'fenced');
  // and a queued job is not "lost"
  assert.deepEqual(await other.markLost({ message: 'x' }), { ok: false, reason: 'state', current: 'queued' });
});

test('takeOver: running → queued only while the previous owner still owns it; then the new worker starts it', async () => {
  const id = await running('tokA');
  const b = new JobRun(events, id, 'tokB');
  assert.deepEqual(await b.takeOver({ previousOwner: 'tokX', message: 'worker lost; resuming from the start' }), {
    ok: false,
    reason: 'owner',
    current: 'running',
  });
  assert.equal((await b.takeOver({ previousOwner: 'tokA', message: 'worker lost; resuming from the start' })).ok, true);
  assert.equal((await b.start({ attempt: 2 })).ok, true);
  assert.equal((await record(id)).owner, 'tokB');
  assert.deepEqual(await new JobRun(events, id, 'tokA').fail({ error: 'late' }), { ok: false, reason: 'owner', current: 'running' });
});

test('giveUp: queued or running → failed, unfenced', async () => {
  const q = await newJob();
  assert.equal((await new JobRun(events, q).giveUp({ error: 'gave up after 3 attempts' })).ok, true);
  const r = await running('tokA');
  assert.equal((await new JobRun(events, r).giveUp({ error: 'its worker was lost 3 times' })).ok, true);
  for (const id of [q, r]) {
    const rec = await record(id);
    assert.equal(rec.state, 'failed');
    assert.equal(rec.owner, undefined);
  }
  assert.equal((await record(q)).error, 'gave up after 3 attempts');
});

test('cancel: from queued or running as read, only if nothing was appended since', async () => {
  // queued
  const q = await newJob();
  let rec = await record(q);
  const api = new JobRun(events, q);
  assert.deepEqual(await api.cancel({ seen: { state: 'queued', lastSeq: rec.lastSeq - 1 }, summary, message: 'cancelled while queued' }), {
    ok: false,
    reason: 'moved',
    current: 'queued',
  });
  assert.equal((await api.cancel({ seen: { state: 'queued', lastSeq: rec.lastSeq }, summary, message: 'cancelled while queued' })).ok, true);
  assert.equal((await record(q)).state, 'cancelled');

  // running: a read from before it started is refused (state), and one from before an epoch (moved)
  const id = await newJob();
  const before = await record(id);
  await new JobRun(events, id, 'tokA').start({ attempt: 1 });
  assert.deepEqual(await new JobRun(events, id).cancel({ seen: { state: before.state, lastSeq: before.lastSeq }, summary, message: 'x' }), {
    ok: false,
    reason: 'state',
    current: 'running',
  });
  rec = await record(id);
  await new JobRun(events, id, 'tokA').publishEpoch(epoch(1));
  assert.deepEqual(await new JobRun(events, id).cancel({ seen: { state: rec.state, lastSeq: rec.lastSeq }, summary, message: 'x' }), {
    ok: false,
    reason: 'moved',
    current: 'running',
  });
  rec = await record(id);
  assert.equal((await new JobRun(events, id).cancel({ seen: { state: rec.state, lastSeq: rec.lastSeq }, summary, message: 'cancelled at epoch 1' })).ok, true);
  assert.equal((await record(id)).state, 'cancelled');
  // the worker that owned it is fenced out
  assert.equal(await new JobRun(events, id, 'tokA').publishEpoch(epoch(2)), 'fenced');
  assert.deepEqual(await new JobRun(events, id, 'tokA').succeed({ summary }), { ok: false, reason: 'state', current: 'cancelled' });
  assert.deepEqual(
    (await stateEvents(id)).map((e) => [e.state, e.message]),
    [
      ['queued', undefined],
      ['running', undefined],
      ['cancelled', 'cancelled at epoch 1'],
    ],
  );
});
