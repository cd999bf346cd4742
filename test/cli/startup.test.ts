// Start-up (docs/architecture.md, "Processes"): `lstm-trainer serve` runs the api and a worker child process and stops
// both on SIGTERM; the local redis-server helper starts and stops its own Redis, or says what to
// install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureLocalRedis, redisAnswers, RedisUnavailableError } from '../../src/jobs/localRedis.js';
import { ROOT, TINY, deletePrefix, streamEvents, testEnv } from '../support/service.js';
import { readyLine } from '../support/processes.js';

test('serve: api + worker child; a job runs; SIGTERM stops everything with exit code 0', async () => {
  const env = testEnv({ HTTP_PORT: '0', GRPC_PORT: '0', LOG_LEVEL: 'warn' });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30_000);
      const check = () => {
        const api = readyLine(out, 'api');
        if (api && readyLine(out, 'worker')) {
          clearTimeout(t);
          resolve(String(api.http));
        }
      };
      child.stdout.on('data', check);
      child.stderr.on('data', check);
    });
    assert.match(out, /gRPC on 127\.0\.0\.1:\d+/);
    const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(TINY) });
    assert.equal(res.status, 201);
    const job = (await res.json()) as { id: string };
    const events = await streamEvents(url, job.id, { timeoutMs: 30_000 });
    assert.equal((events[events.length - 1] as { state?: string }).state, 'succeeded');
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200); // the dashboard is mounted
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.match(out, /worker: SIGTERM/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await deletePrefix(env.QUEUE_PREFIX);
  }
});

test('local Redis: starts redis-server with its own data dir (AOF) when none answers, stops it', async (t) => {
  if (!existsSync('/usr/bin/redis-server') && !process.env.PATH?.split(':').some((d) => existsSync(path.join(d, 'redis-server')))) {
    t.skip('redis-server not installed');
    return;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'lstm-redis-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  try {
    assert.equal(await redisAnswers('127.0.0.1', port), false);
    const r = await ensureLocalRedis({ dataDir: dir, port, log: () => {} });
    assert.ok(r.child, 'started its own');
    assert.equal(r.url, `redis://127.0.0.1:${port}`);
    assert.equal(await redisAnswers('127.0.0.1', port), true);
    // a second call finds it answering and starts nothing
    const again = await ensureLocalRedis({ dataDir: dir, port, log: () => {} });
    assert.equal(again.child, undefined);
    await r.stop();
    assert.equal(await redisAnswers('127.0.0.1', port), false);
    assert.ok(existsSync(path.join(dir, 'appendonlydir')) || existsSync(path.join(dir, 'appendonly.aof')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('local Redis: without redis-server on PATH, one line says what to install', async () => {
  const port = 40000 + Math.floor(Math.random() * 20000);
  const path0 = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await assert.rejects(ensureLocalRedis({ dataDir: path.join(tmpdir(), 'lstm-none'), port, log: () => {} }), (e: Error) => {
      assert.ok(e instanceof RedisUnavailableError);
      assert.match(e.message, /install Redis .* or set REDIS_URL/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  } finally {
    process.env.PATH = path0;
    rmSync(path.join(tmpdir(), 'lstm-none'), { recursive: true, force: true });
  }
});
