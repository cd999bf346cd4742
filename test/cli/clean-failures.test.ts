// The CLI's clean failures: a bad setting or path is one line naming the problem and the fix, exit
// code 2, no stack trace — and it is found before any training starts.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { redisReachable, REDIS_URL, ROOT } from '../support/processes.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, QUEUE_PREFIX: `tcli${process.pid}`, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lstm-trainer ${args.join(' ')} still running after ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit code 2 with `pattern` on stderr, and no stack trace anywhere. */
function assertCleanFailure(r: Run, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr:\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr + r.stdout, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
}

/** A TCP server on a free loopback port, to make that port busy. */
async function occupyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function freePort(): Promise<number> {
  const p = await occupyPort();
  await p.close();
  return p.port;
}

// (npm may lay the optional package out without running its install script: present but unloadable)
const tfjsNodeInstalled = (() => {
  try {
    createRequire(import.meta.url)('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();

const noRedis = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;

describe('CLI clean failures', () => {
  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it("train's help shows d2l's defaults", async () => {
    const r = await cli(['train', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--epochs <n>\s+epochs \(default 500\)/);
    assert.match(r.stdout, /--hidden <n>\s+hidden units \(default 256\)/);
    assert.match(r.stdout, /--batch-size <n>\s+minibatch size \(default 32\)/);
  });

  it('a bad flag value is named by its flag, not by the spec field', async () => {
    assertCleanFailure(await cli(['train', '--epochs', '0']), /^lstm-trainer: --epochs must be ≥ 1$/m);
    assertCleanFailure(await cli(['train', '--hidden', '100000']), /^lstm-trainer: --hidden /m);
  });

  it('train --save into a missing directory fails before training', async () => {
    const r = await cli(['train', '--epochs', '1', '--save', '/nonexistent-dir/x.ckpt']);
    assertCleanFailure(r, /--save \/nonexistent-dir\/x\.ckpt: directory \/nonexistent-dir does not exist/);
    assert.doesNotMatch(r.stdout, /perplexity|epoch/, 'no training ran');
  });

  it('export: an unknown format or a missing checkpoint is one line, exit 2', async () => {
    assertCleanFailure(
      await cli(['export', '--checkpoint', 'x.ckpt', '--format', 'pt', '-o', 'x.pt']),
      /--format must be one of safetensors, onnx, tfjs, checkpoint, got 'pt'/,
    );
    assertCleanFailure(
      await cli(['export', '--checkpoint', '/nonexistent-dir/x.ckpt', '-o', 'x.safetensors']),
      /cannot read checkpoint \/nonexistent-dir\/x\.ckpt: ENOENT/,
    );
  });

  it('TFJS_BACKEND=bogus names the variable and its values', async () => {
    assertCleanFailure(
      await cli(['train', '--engine', 'tfjs', '--epochs', '1'], { TFJS_BACKEND: 'bogus' }),
      /unknown TFJS_BACKEND 'bogus' \(use tensorflow-gpu, tensorflow, wasm or cpu\)/,
    );
  });

  it('TFJS_BACKEND=tensorflow without tfjs-node says what to install or unset', {
    skip: tfjsNodeInstalled ? '@tensorflow/tfjs-node loads here' : false,
  }, async () => {
    assertCleanFailure(
      await cli(['train', '--engine', 'tfjs', '--epochs', '1'], { TFJS_BACKEND: 'tensorflow' }),
      /TFJS_BACKEND=tensorflow but backend tensorflow is unavailable: .*install @tensorflow\/tfjs-node, or unset TFJS_BACKEND/,
    );
  });

  it('DEVICE=gpu is refused with the values it takes', async () => {
    assertCleanFailure(await cli(['train', '--epochs', '1'], { DEVICE: 'gpu' }), /DEVICE must be 'cpu', 'cuda' or 'auto', got 'gpu'/);
  });

  it('api with its HTTP port in use: one line, exit 2', async () => {
    const busy = await occupyPort();
    try {
      const r = await cli(['api'], { HTTP_PORT: String(busy.port), GRPC_PORT: String(await freePort()) });
      assertCleanFailure(r, new RegExp(`HTTP port ${busy.port} on 127\\.0\\.0\\.1 is already in use: stop what is listening there or set HTTP_PORT`));
    } finally {
      await busy.close();
    }
  });

  it('api with its gRPC port in use: one line, exit 2, and the HTTP server does not stay up', async () => {
    const busy = await occupyPort();
    const httpPort = await freePort();
    try {
      const r = await cli(['api'], { HTTP_PORT: String(httpPort), GRPC_PORT: String(busy.port) });
      assertCleanFailure(r, new RegExp(`gRPC port ${busy.port} on 127\\.0\\.0\\.1 is already in use: stop what is listening there or set GRPC_PORT`));
      // the process has exited, so its HTTP port is free again
      const again = net.createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(httpPort, '127.0.0.1', resolve);
      });
      await new Promise<void>((resolve) => again.close(() => resolve()));
    } finally {
      await busy.close();
    }
  });

  it('serve whose worker cannot start gives up after three exits before it was ready and exits non-zero', { skip: noRedis }, async () => {
    const r = await cli(['serve'], { REDIS_URL, HTTP_PORT: String(await freePort()), GRPC_PORT: String(await freePort()), DEVICE: 'gpu' }, 90_000);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.match(/DEVICE must be 'cpu', 'cuda' or 'auto', got 'gpu'/g)?.length, 3, "the worker's reason, once per try");
    assert.match(r.stderr, /worker 1 exited 3 times before it was ready \(last: code 2; its reason is above\); giving up and stopping the service/);
  });

  it('worker without Redis says once that it waits (not a line a second), and says when Redis answers', {
    skip: spawnSyncOk('redis-server') ? false : 'redis-server not installed',
  }, async () => {
    const port = await freePort();
    const worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PREFIX: `tcliw${process.pid}` },
    });
    let err = '';
    worker.stderr.on('data', (d) => (err += d));
    let redis: ChildProcess | undefined;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-redis-'));
    try {
      await waitFor(
        () => /waiting for Redis/.test(err),
        30_000,
        () => err,
      );
      await new Promise((r) => setTimeout(r, 4000)); // BullMQ retries every second or two meanwhile
      assert.equal(err.match(/waiting for Redis/g)?.length, 1, err);
      // stderr is not a terminal: JSON lines (src/jobs/log.ts), one object per line
      const lines = err
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as { time: string; level: string; msg: string; name: string });
      for (const l of lines) {
        assert.ok(!Number.isNaN(Date.parse(l.time)) && typeof l.msg === 'string' && l.name === 'worker', JSON.stringify(l));
        assert.match(l.level, /^(debug|info|warn|error)$/);
      }
      const waiting = lines.filter((l) => l.msg.startsWith('worker: waiting for Redis'));
      assert.equal(waiting.length, 1);
      assert.match(waiting[0].msg, new RegExp(`^worker: waiting for Redis at redis://127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED`));
      assert.equal(waiting[0].level, 'warn');
      assert.ok(!lines.some((l) => l.msg.startsWith('worker: connect ECONNREFUSED')), err);
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
      await waitFor(
        () => /Redis at .* answers again/.test(err),
        30_000,
        () => err,
      );
    } finally {
      worker.kill('SIGKILL');
      redis?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('LOG_FORMAT=pretty: one line of text per entry (time, level, message); the default on a terminal', async () => {
    const port = await freePort();
    const worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PREFIX: `tcliw${process.pid}p`, LOG_FORMAT: 'pretty' },
    });
    let err = '';
    worker.stderr.on('data', (d) => (err += d));
    try {
      await waitFor(
        () => /waiting for Redis/.test(err),
        30_000,
        () => err,
      );
      assert.match(
        err,
        new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} WARN  worker: waiting for Redis at redis://127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED`, 'm'),
      );
      assert.doesNotMatch(err, /^\{/m, 'no JSON lines');
    } finally {
      worker.kill('SIGKILL');
    }
  });
});

function spawnSyncOk(cmd: string): boolean {
  try {
    return spawnSync(cmd, ['--version']).status === 0;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out; output so far:\n${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
