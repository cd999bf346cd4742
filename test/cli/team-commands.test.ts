// lstm-trainer list / get / cancel / delete / sweep / experiment / generate --job, as a user runs them,
// against a real api process and a real worker with named API keys; and the pure parts (grid flags,
// unambiguous labels).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gridValues, sweepRequest, uniqueLabels } from '../../src/cli/team-commands.js';
import { REDIS_URL, TINY, testEnv } from '../support/service.js';
import { type ApiProcess, type CliRun, runCli, type Service, startService } from '../support/processes.js';

test('grid flags: numbers stay numbers; every flag is a dotted path; --grid takes any path', () => {
  assert.deepEqual(gridValues('0.5,1,2'), [0.5, 1, 2]);
  assert.deepEqual(gridValues('scratch, concise'), ['scratch', 'concise']);
  const r = sweepRequest({ lr: '0.5,1', kind: 'scratch,concise', seed: '1,2', grid: ['report.numPreds=5,10'], name: 's', tag: ['t1'] });
  assert.deepEqual(r, {
    name: 's',
    base: { tags: ['t1'] },
    grid: { 'train.lr': [0.5, 1], 'model.kind': ['scratch', 'concise'], 'train.seed': [1, 2], 'report.numPreds': [5, 10] },
  });
  assert.throws(() => sweepRequest({}), /at least one grid flag/);
  assert.throws(() => sweepRequest({ grid: ['nonsense'] }), /path=v1,v2/);
});

test('labels are never ambiguous: a unique name, else the shortest unique id prefix', () => {
  const jobs = [
    { id: 'j0mx316yaa11111111aa', name: 'run' },
    { id: 'j0mx316yab22222222bb', name: 'run' },
    { id: 'j0mx316zcc33333333cc', name: 'solo' },
    { id: 'j0mx316zdd44444444dd' },
  ];
  assert.deepEqual(uniqueLabels(jobs), ['run (j0mx316yaa)', 'run (j0mx316yab)', 'solo', 'j0mx316zd']);
  assert.equal(new Set(uniqueLabels(jobs)).size, jobs.length);
});

const ALICE = 'alice-cli-key-1';
const BOB = 'bob-cli-key-2';
const env = testEnv({ REDIS_URL, API_KEYS: `alice:${ALICE},bob:${BOB}`, SHUTDOWN_DRAIN_MS: '0', AUTH_FAIL_LIMIT: '0' });

/** The CLI against this file's api, as the given key (killed after timeoutMs). */
function cli(args: string[], key: string, timeoutMs = 240_000): Promise<CliRun> {
  return runCli(args, { killAfterMs: timeoutMs, signal: 'SIGKILL', env: { LSTM_TRAINER_URL: api.httpUrl, LSTM_TRAINER_API_KEY: key } });
}

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

  test('sweep --lr 0.5,1 --kind scratch,concise --seed 1,2 --watch: 8 jobs run and the table is printed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sweep-'));
    const base = path.join(dir, 'base.json');
    writeFileSync(base, JSON.stringify({ ...TINY, train: { epochs: 4 } }));
    const r = await cli(
      ['sweep', '-f', base, '--lr', '0.5,1', '--kind', 'scratch,concise', '--seed', '1,2', '--name', 'cli-sweep', '--tag', 'cli', '--watch'],
      ALICE,
      400_000,
    );
    console.log(r.stdout);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^experiment x[0-9a-z]{19} \(cli-sweep\): 8 jobs$/);
    assert.match(lines[1], /^lr\s+kind\s+seed\s+job\s+state/);
    assert.equal(lines.length, 10);
    for (const l of lines.slice(2)) assert.match(l, /succeeded\s+4\/4\s+\d+\.\d{3}\s+\d+\.\d{3}/);
    const expId = /experiment (x[0-9a-z]{19})/.exec(lines[0])![1];

    // list, as the owner and as another key
    const mine = await cli(['list', '--experiment', expId, '--limit', '100'], ALICE);
    assert.equal(mine.code, 0, mine.stderr);
    assert.equal(mine.stdout.trim().split('\n').length, 9);
    assert.match(mine.stdout, /cli-sweep lr=0\.5 kind=scratch seed=1\s+j[0-9a-z]{19}\s+alice\s+succeeded/);
    const bobs = await cli(['list', '--experiment', expId], BOB);
    assert.equal(bobs.stdout.trim(), 'no jobs');
    const table = await cli(['experiment', expId], ALICE);
    assert.equal(table.stdout.trim(), r.stdout.trim());
    assert.equal((await cli(['experiment', expId], BOB)).code, 2);

    // get, generate --job, delete
    const id = /(j[0-9a-z]{19})/.exec(lines[2])![1];
    const got = await cli(['get', id], ALICE);
    assert.equal(JSON.parse(got.stdout).experiment, expId);
    const gen = await cli(['generate', '--job', id, '--prefix', 'time traveller', '--chars', '20', '--seed', '3'], ALICE);
    assert.equal(gen.code, 0, gen.stderr);
    // the prefix and 20 generated characters (a 4-epoch model may well generate spaces)
    assert.equal(gen.stdout.replace(/\n$/, '').length, 'time traveller'.length + 20, JSON.stringify(gen.stdout));
    assert.ok(gen.stdout.startsWith('time traveller'));
    const other = await cli(['delete', id], BOB);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /HTTP 404: job .* not found/);
    const del = await cli(['delete', id], ALICE);
    assert.equal(del.stdout.trim(), `job ${id} deleted`);
    assert.equal((await cli(['get', id], ALICE)).code, 2);
  });

  test('cancel: a queued job is cancelled', async () => {
    const res = await fetch(`${api.httpUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BOB}` },
      body: JSON.stringify({ ...TINY, train: { epochs: 3000 } }),
    });
    const { id } = (await res.json()) as { id: string };
    const r = await cli(['cancel', id], BOB);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `job ${id} cancelled`);
  });
});
