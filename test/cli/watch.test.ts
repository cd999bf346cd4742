// `lstm-trainer watch` as a user runs it, against a real API over Redis (no worker: jobs stay
// queued until cancelled): how a job that never trained ends, an event stream with nothing left
// to show, and a server that does not answer.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { redisReachable, REDIS_URL, runCli } from '../support/processes.js';
import { startTestApi, testEnv, TINY, type TestApi } from '../support/service.js';

/** Runs `lstm-trainer watch …`; with killAfterMs, interrupts it (SIGINT) then. */
const watch = (args: string[], killAfterMs?: number) => runCli(['watch', ...args], { killAfterMs });

const skip = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;

describe('CLI watch', { skip }, () => {
  let api: TestApi;
  let cancelledId: string;

  before(async () => {
    api = await startTestApi(testEnv());
    const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(TINY) });
    cancelledId = ((await res.json()) as { id: string }).id;
    const c = await fetch(`${api.url}/v1/jobs/${cancelledId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(c.status, 200);
  });

  after(async () => {
    await api?.close();
  });

  it('a job cancelled while queued: its history, "before any epoch was trained", exit 1', async () => {
    const r = await watch([cancelledId, '--url', api.url]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^state queued$/m);
    assert.match(r.stdout, /^state cancelled.* — before any epoch was trained$/m);
    assert.doesNotMatch(r.stdout, / on \/$/m);
  });

  it('--from-seq past the last event: says how the job ended, exit 1 (0 only when it succeeded)', async () => {
    const r = await watch([cancelledId, '--url', api.url, '--from-seq', '5']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout.trim(), `job ${cancelledId} is cancelled (no events after seq 5)`);
  });

  it('a server that does not answer is said at once, not after a minute of silence', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await watch([cancelledId, '--url', `http://127.0.0.1:${port}`], 8000);
    assert.match(
      r.stderr,
      new RegExp(`^lstm-trainer watch: http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*; retrying every 2 s for up to 60 s \\(Ctrl-C to stop\\)$`, 'm'),
    );
    assert.equal(r.stderr.match(/retrying every/g)?.length, 1, 'said once');
  });
});
