// Request logs: the probes (/healthz, /readyz, /metrics) and the dashboard's polling reads (marked
// with the x-dashboard-poll header) log at debug level, every other request at info — checked on
// the lines the app's logger (pino) writes, against a real job service on Redis.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildHttpApp, POLL_HEADER } from '../../../src/api/http/app.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { RedisJobService } from '../../../src/jobs/service.js';
import { REDIS_URL, redisReachable, deletePrefix } from '../../support/processes.js';

const skip = !(await redisReachable(REDIS_URL)) ? `no Redis at ${REDIS_URL}` : false;

interface Line {
  level: number;
  msg: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

describe('request logs', { skip }, () => {
  const prefix = `reqlogtest-${process.pid}-${Date.now().toString(36)}`;
  let service: RedisJobService;
  const apps: FastifyInstance[] = [];

  /** An app whose logger writes to `lines` at `level` (the default level of `lstm-trainer api` is info). */
  async function appAt(level: string): Promise<{ app: FastifyInstance; lines: Line[] }> {
    const lines: Line[] = [];
    const app = await buildHttpApp({ service, logger: { level, stream: { write: (s: string) => void lines.push(JSON.parse(s)) } } });
    apps.push(app);
    return { app, lines };
  }

  before(() => {
    service = new RedisJobService({ config: loadConfig({ ...process.env, REDIS_URL, QUEUE_PREFIX: prefix, API_KEYS: '' }) });
  });

  after(async () => {
    await Promise.allSettled(apps.map((a) => a.close()));
    await service?.close();
    await deletePrefix(prefix);
  });

  test('at info: probes and polling reads write nothing, a submit and a plain read write their two lines', async () => {
    const { app, lines } = await appAt('info');
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/v1/jobs?limit=5', headers: { [POLL_HEADER]: '1' } })).statusCode, 200);
    assert.deepEqual(
      lines.map((l) => l.msg),
      [],
      'no log line for the probes and the dashboard’s polling',
    );

    const submit = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'content-type': 'application/json' },
      payload: { name: 'log-test', model: { kind: 'scratch', numHiddens: 8 }, data: { maxTokens: 2000, batchSize: 8, numSteps: 10 }, train: { epochs: 1 } },
    });
    assert.equal(submit.statusCode, 201, submit.body);
    const id = submit.json().id as string;
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.req?.method ?? l.res?.statusCode]),
      [
        [30, 'incoming request', 'POST'],
        [30, 'request completed', 201],
      ],
    );
    assert.equal(lines[0].req?.url, '/v1/jobs');

    // the same read without the header (a person's or a script's) is logged
    lines.length = 0;
    assert.equal((await app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).statusCode, 200);
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['incoming request', 'request completed'],
    );
    // and a polling read of that job is not
    lines.length = 0;
    assert.equal((await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: { [POLL_HEADER]: '1' } })).statusCode, 200);
    assert.deepEqual(
      lines.map((l) => l.msg),
      [],
    );
    // the header quiets reads only: a cancel carrying it is still logged
    const cancel = await app.inject({
      method: 'POST',
      url: `/v1/jobs/${id}/cancel`,
      headers: { 'content-type': 'application/json', [POLL_HEADER]: '1' },
      payload: {},
    });
    assert.equal(cancel.statusCode, 200, cancel.body);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [
        [30, 'incoming request'],
        [30, 'request completed'],
      ],
    );
  });

  test('at debug: the probes are logged, at debug level', async () => {
    const { app, lines } = await appAt('debug');
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.req?.url ?? l.res?.statusCode]),
      [
        [20, 'incoming request', '/healthz'],
        [20, 'request completed', 200],
      ],
    );
  });
});
