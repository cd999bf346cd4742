// lstm-trainer model upload / list / get / delete and submit --init-model / --init-job, as a user runs them,
// against a real api process and a real worker: a job trains, its model is exported as
// safetensors, uploaded, and a new job starts from it (its view says so).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initSpec } from '../../src/cli/client-commands.js';
import { sweepRequest } from '../../src/cli/team-commands.js';
import { REDIS_URL, testEnv } from '../support/service.js';
import { type ApiProcess, type CliRun, runCli, type Service, startService } from '../support/processes.js';

test("--init-job / --init-model become the spec's init (one of them), on submit and sweep", () => {
  assert.deepEqual(initSpec({ initJob: 'j1' }), { fromJob: 'j1' });
  assert.deepEqual(initSpec({ initModel: 'm1' }), { model: 'm1' });
  assert.equal(initSpec({}), undefined);
  assert.throws(() => initSpec({ initJob: 'j1', initModel: 'm1' }), /give one of them/);
  assert.deepEqual(sweepRequest({ lr: '0.5,1', initModel: 'm1' }).base, { init: { model: 'm1' } });
});

const KEY = 'model-cli-key-1';
const env = testEnv({ REDIS_URL, API_KEYS: `alice:${KEY}`, SHUTDOWN_DRAIN_MS: '0', AUTH_FAIL_LIMIT: '0' });

/** The CLI against this file's api with its key (killed after timeoutMs). */
function cli(args: string[], timeoutMs = 240_000): Promise<CliRun> {
  return runCli(args, { killAfterMs: timeoutMs, signal: 'SIGKILL', env: { LSTM_TRAINER_URL: api.httpUrl, LSTM_TRAINER_API_KEY: KEY } });
}

/** A job's view over HTTP (`lstm-trainer get` itself is tested in team-commands.test.ts). */
async function jobView(id: string) {
  const res = await fetch(`${api.httpUrl}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(res.status, 200, id);
  return (await res.json()) as { state: string; init: { model?: string; fromJob?: string; epoch: number }; progress: { epoch: number } };
}

// a small concise model on the book's first 2,000 characters
const MODEL_FLAGS = ['--kind', 'concise', '--hidden', '8', '--max-tokens', '2000', '--batch-size', '4', '--num-steps', '5', '--seed', '7'];

let api: ApiProcess;
let service: Service | undefined;

describe('on a real api process and worker', () => {
  before(async () => {
    service = await startService(env);
    api = service.api;
  });
  after(async () => {
    await service?.stop();
  });

  test('export → model upload → submit --init-model: the job starts from the upload; --init-job from the job', async () => {
    const first = await cli(['submit', ...MODEL_FLAGS, '--epochs', '3', '--watch']);
    assert.equal(first.code, 0, first.stderr);
    const sourceJob = first.stdout.split('\n')[0].trim();
    assert.match(sourceJob, /^j[0-9a-z]{19}$/);

    const dir = mkdtempSync(path.join(tmpdir(), 'model-cli-'));
    const file = path.join(dir, 'model.safetensors');
    const exp = await cli(['export', sourceJob, '--format', 'safetensors', '-o', file]);
    assert.equal(exp.code, 0, exp.stderr);

    const up = await cli(['model', 'upload', file]);
    assert.equal(up.code, 0, up.stderr);
    const modelId = up.stdout.trim();
    assert.match(modelId, /^m[0-9a-f]{19}$/);
    assert.match(up.stderr, /^lstm-trainer: model uploaded: concise, 1 layer × 8 hidden units, vocabulary 28, epoch 3 \(perplexity \d+\.\d{3}\), \d+ bytes\n$/);
    const again = await cli(['model', 'upload', file]);
    assert.equal(again.stdout.trim(), modelId);
    assert.match(again.stderr, /model already there/);

    const list = await cli(['model', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${modelId}  \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ  concise, 1 layer × 8 hidden units`, 'm'));
    const got = await cli(['model', 'get', modelId]);
    assert.equal(got.code, 0, got.stderr);
    const view = JSON.parse(got.stdout);
    assert.deepEqual([view.id, view.kind, view.numHiddens, view.vocabSize, view.epoch], [modelId, 'concise', 8, 28, 3]);

    const fromModel = await cli(['submit', ...MODEL_FLAGS, '--epochs', '2', '--init-model', modelId, '--watch']);
    assert.equal(fromModel.code, 0, fromModel.stderr);
    const job = await jobView(fromModel.stdout.split('\n')[0].trim());
    assert.equal(job.state, 'succeeded');
    assert.equal(job.init.model, modelId);
    assert.equal(job.init.epoch, 3);
    assert.equal(job.progress.epoch, 2);

    const fromJob = await cli(['submit', ...MODEL_FLAGS, '--epochs', '1', '--init-job', sourceJob]);
    assert.equal(fromJob.code, 0, fromJob.stderr);
    const job2 = await jobView(fromJob.stdout.trim());
    assert.equal(job2.init.fromJob, sourceJob);
    assert.equal(job2.init.epoch, 3);

    // model delete: what corpus delete says, on stderr; then the model is gone
    const del = await cli(['model', 'delete', modelId]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stderr, `lstm-trainer: model ${modelId} deleted\n`);
    assert.equal(del.stdout, '');
    const after = await cli(['model', 'get', modelId]);
    assert.equal(after.code, 2);
    assert.match(after.stderr, /HTTP 404: .*not found/s);
    assert.equal((await cli(['model', 'list'])).stdout, 'no models\n');
  });

  test('bad input: one line each, exit code 2, no stack trace', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'model-cli-'));
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'not a model at all');
    const r = await cli(['model', 'upload', text]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^lstm-trainer: HTTP 400: .*model file/);
    assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace

    const missing = await cli(['model', 'upload', path.join(dir, 'nope.safetensors')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.safetensors: cannot read it: ENOENT/);

    const bad = await cli(['model', 'get', 'nonsense']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /HTTP 400: .*id must be a model id/s);
    const none = await cli(['model', 'get', 'm0000000000000000000']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /HTTP 404/);
    const delBad = await cli(['model', 'delete', 'nonsense']);
    assert.equal(delBad.code, 2);
    assert.match(delBad.stderr, /HTTP 400: .*id must be a model id/s);
    assert.doesNotMatch(delBad.stderr, /\n\s+at /);
    const delNone = await cli(['model', 'delete', 'm0000000000000000000']);
    assert.equal(delNone.code, 2);
    assert.match(delNone.stderr, /^lstm-trainer: HTTP 404: model m0000000000000000000 not found/);

    const unknown = await cli(['submit', ...MODEL_FLAGS, '--init-model', 'm0000000000000000000']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /init\.model: no model m0000000000000000000/);
    const both = await cli(['submit', '--init-model', 'm1', '--init-job', 'j1']);
    assert.equal(both.code, 2);
    assert.equal(both.stderr, 'lstm-trainer: --init-job and --init-model are two ways to start: give one of them\n');
  });
});
