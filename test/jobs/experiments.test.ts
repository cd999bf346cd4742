// Experiments and sweeps: the plan (grid → points, specs over a base, every point validated, the
// caps on the sum), then on a real api process and worker: POST /v1/experiments queues one job per
// point, GET /v1/experiments/:id gives the table with results, lists filter by experiment, tag and
// name, and another key sees neither the experiment nor its jobs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkExperimentCaps, formatExperimentTable, planExperiment } from '../../src/jobs/experiments.js';
import type { ExperimentView } from '../../src/jobs/types.js';
import { SpecError } from '../../src/train/spec.js';
import { REDIS_URL, TINY, testEnv, waitFor } from '../support/service.js';
import { type ApiProcess, type Service, startService } from '../support/processes.js';

const ALICE = 'alice-exp-key-123';
const BOB = 'bob-exp-key-456';
const env = testEnv({ REDIS_URL, API_KEYS: `alice:${ALICE},bob:${BOB}`, SHUTDOWN_DRAIN_MS: '0', AUTH_FAIL_LIMIT: '0', MAX_JOB_TOKEN_EPOCHS: '1000000' });

const base = { ...TINY, train: { ...TINY.train, epochs: 3 }, tags: ['exp-test'] };

function issuesOf(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecError) return e.issues;
    throw e;
  }
  assert.fail('expected a SpecError');
}

test('plan: a grid makes every combination, first path slowest; names say the varied values', () => {
  const plan = planExperiment({ name: 'lr-kind', base, grid: { 'train.lr': [0.5, 1, 2], 'model.kind': ['scratch', 'concise'] } });
  assert.equal(plan.points.length, 6);
  assert.deepEqual(plan.varied, ['train.lr', 'model.kind']);
  assert.deepEqual(
    plan.points.map((p) => [p.spec.train.lr, p.spec.model.kind]),
    [
      [0.5, 'scratch'],
      [0.5, 'concise'],
      [1, 'scratch'],
      [1, 'concise'],
      [2, 'scratch'],
      [2, 'concise'],
    ],
  );
  assert.equal(plan.points[1].spec.name, 'lr-kind lr=0.5 kind=concise');
  assert.equal(plan.points[0].spec.model.numHiddens, 8, 'the base is kept');
  assert.deepEqual(plan.points[0].spec.tags, ['exp-test']);
  // a path with one value is not "varied"
  assert.deepEqual(planExperiment({ base, grid: { 'train.lr': [1], 'train.seed': [1, 2] } }).varied, ['train.seed']);
});

test('plan: specs are laid over the base; the varied paths are the leaves that differ', () => {
  const plan = planExperiment({ base, specs: [{ train: { lr: 0.5 } }, { train: { lr: 2 }, model: { kind: 'concise' } }] });
  assert.deepEqual(plan.varied.sort(), ['model.kind', 'train.lr']);
  assert.equal(plan.points[1].spec.model.numHiddens, 8);
  assert.equal(plan.points[1].spec.train.epochs, 3);
});

test('plan: every point is validated and each bad one named; nothing else decides', () => {
  let issues = issuesOf(() => planExperiment({ base, grid: { 'train.lr': [1, -1, 1000] } }));
  assert.deepEqual(
    issues.map((i) => i.field),
    ['grid.train.lr', 'grid.train.lr'],
  );
  assert.match(issues[0].message, /at lr=-1: .*train.lr must be > 0/);
  issues = issuesOf(() => planExperiment({ base, grid: { 'model.kindd': ['scratch'] } }));
  assert.match(issues[0].message, /unknown field model.kindd/);
  issues = issuesOf(() => planExperiment({ base, specs: [{}, { model: { numLayers: 2 } }] }));
  assert.equal(issues[0].field, 'specs[1].model.numLayers');
  assert.equal(issuesOf(() => planExperiment({ base })).at(0)?.field, 'grid');
  assert.equal(issuesOf(() => planExperiment({ base, grid: { a: [1] }, specs: [{}] })).at(0)?.field, 'grid');
  assert.match(
    issuesOf(() =>
      planExperiment({ base, grid: { 'train.lr': Array.from({ length: 11 }, (_, i) => i + 1), 'train.seed': Array.from({ length: 10 }, (_, i) => i) } }),
    )[0].message,
    /110 jobs/,
  );
  assert.equal(issuesOf(() => planExperiment({ base: { ...base, idempotencyKey: 'k' }, grid: { 'train.lr': [1, 2] } }))[0].field, 'base.idempotencyKey');
  assert.equal(issuesOf(() => planExperiment({ base, grid: { 'train.lr': [1] }, extra: 1 }))[0].field, 'extra');
  assert.equal(issuesOf(() => planExperiment([]))[0].field, '');
});

test('caps apply to the sum of the estimates', () => {
  const est = { params: 1, tokens: 1000, tokenEpochs: 600, flopsPerToken: 1, teraflops: 0.2, memoryMb: 10 };
  checkExperimentCaps([est, est], { maxMemoryMb: 0, maxTokenEpochs: 1200, maxTeraflops: 0.5 });
  assert.match(
    issuesOf(() => checkExperimentCaps([est, est, est], { maxMemoryMb: 0, maxTokenEpochs: 1200, maxTeraflops: 0 }))[0].message,
    /1800 token-epochs together/,
  );
  assert.match(
    issuesOf(() => checkExperimentCaps([est, est, est], { maxMemoryMb: 0, maxTokenEpochs: 0, maxTeraflops: 0.5 }))[0].message,
    /0.600 TFLOP together/,
  );
});

// ---- on a real api process and worker ----------------------------------------------------------

describe('on a real api process and worker', () => {
  let api: ApiProcess;
  let service: Service | undefined;

  async function http(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`${api.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  before(async () => {
    service = await startService(env);
    api = service.api;
  });
  after(async () => {
    await service?.stop();
  });

  test('POST /v1/experiments: one bad point refuses the whole request and queues nothing', async () => {
    const r = await http('POST', '/v1/experiments', ALICE, { base, grid: { 'train.lr': [1, 0], 'train.seed': [1, 2] } });
    assert.equal(r.status, 400);
    assert.equal(r.json.errors[0].field, 'grid.train.lr');
    // the caps on the sum: each job fits MAX_JOB_TOKEN_EPOCHS, fifty of them do not
    const big = { ...base, model: { kind: 'scratch', numHiddens: 8 }, data: { maxTokens: 20000, batchSize: 8, numSteps: 10 }, train: { epochs: 20 } };
    const one = await http('POST', '/v1/experiments', ALICE, { base: big, grid: { 'train.seed': [1] } });
    assert.equal(one.status, 201, JSON.stringify(one.json));
    await http('DELETE', `/v1/jobs/${one.json.jobs[0].id}`, ALICE);
    const many = await http('POST', '/v1/experiments', ALICE, { base: big, grid: { 'train.seed': Array.from({ length: 50 }, (_, i) => i) } });
    assert.equal(many.status, 400);
    assert.match(many.json.errors[0].message, /together; MAX_JOB_TOKEN_EPOCHS/);
    const list = await http('GET', '/v1/jobs?tag=exp-test', ALICE);
    assert.deepEqual(list.json.jobs, []);
  });

  test('a sweep runs end to end: the table has every point with its varied values and results; filters and owners', async () => {
    const r = await http('POST', '/v1/experiments', ALICE, { name: 'sweep-test', base, grid: { 'train.lr': [0.5, 2], 'model.kind': ['scratch', 'concise'] } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const exp = r.json as ExperimentView;
    assert.match(exp.id, /^x[0-9a-z]{19}$/);
    assert.equal(exp.jobs.length, 4);
    assert.equal(exp.owner, 'alice');
    let table: ExperimentView = exp;
    await waitFor(
      'every job finished',
      async () => {
        table = (await http('GET', `/v1/experiments/${exp.id}`, ALICE)).json;
        return table.jobs.every((j) => j.state === 'succeeded');
      },
      180_000,
      300,
    );
    console.log(formatExperimentTable(table));
    for (const j of table.jobs) {
      assert.equal(j.epoch, 3);
      assert.ok(j.finalPerplexity! > 1 && j.bestPerplexity! <= j.finalPerplexity!, JSON.stringify(j));
      assert.ok(j.tokensPerSec! > 0 && j.elapsedMs! > 0);
    }
    assert.deepEqual(
      table.jobs.map((j) => j.values),
      [
        { 'train.lr': 0.5, 'model.kind': 'scratch' },
        { 'train.lr': 0.5, 'model.kind': 'concise' },
        { 'train.lr': 2, 'model.kind': 'scratch' },
        { 'train.lr': 2, 'model.kind': 'concise' },
      ],
    );
    // list filters
    const ids = (q: string, key = ALICE) => http('GET', `/v1/jobs${q}`, key).then((x) => (x.json.jobs as { id: string }[]).map((j) => j.id).sort());
    const expected = exp.jobs.map((j) => j.id).sort();
    assert.deepEqual(await ids(`?experiment=${exp.id}`), expected);
    assert.deepEqual(await ids(`?tag=exp-test&experiment=${exp.id}`), expected);
    assert.deepEqual(await ids(`?name=${encodeURIComponent('sweep-test lr=2 kind=concise')}`), [exp.jobs[3].id]);
    assert.deepEqual(await ids(`?experiment=${exp.id}&state=failed`), []);
    assert.equal((await http('GET', '/v1/jobs?experiment=nope', ALICE)).status, 400);
    // owners: bob sees neither the experiment nor its jobs
    const other = await http('GET', `/v1/experiments/${exp.id}`, BOB);
    const none = await http('GET', '/v1/experiments/x000000000aaaaaaaaaa', BOB);
    assert.equal(other.status, 404);
    assert.equal(JSON.stringify(other.json).replaceAll(exp.id, 'ID'), JSON.stringify(none.json).replaceAll('x000000000aaaaaaaaaa', 'ID'));
    assert.deepEqual(await ids(`?experiment=${exp.id}`, BOB), []);
    assert.equal((await http('GET', `/v1/jobs/${exp.jobs[0].id}`, BOB)).status, 404);
    // a deleted job keeps its row, marked deleted
    assert.equal((await http('DELETE', `/v1/jobs/${exp.jobs[0].id}`, ALICE)).status, 200);
    const after = (await http('GET', `/v1/experiments/${exp.id}`, ALICE)).json as ExperimentView;
    assert.equal(after.jobs[0].state, 'deleted');
    assert.equal((await http('GET', '/v1/experiments/not-an-id', ALICE)).status, 400);
  });
});
