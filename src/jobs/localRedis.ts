// The single-machine start-up (docs/service.md, "Processes"): with no REDIS_URL, use the Redis on 127.0.0.1:6379, or
// start a `redis-server` child with its own data directory (AOF on) and stop it on exit — or say
// in one line what to install.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export class RedisUnavailableError extends Error {}

/** PING over a raw socket: true when something answers +PONG (or needs auth: it is a Redis). */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => finish(false));
    sock.on('error', () => finish(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => finish(/^\+PONG|^-NOAUTH/.test(d.toString('latin1'))));
  });
}

export interface LocalRedis {
  url: string;
  /** The child we started, if any. */
  child?: ChildProcess;
  stop(): Promise<void>;
}

export async function ensureLocalRedis(opts: { dataDir?: string; port?: number; log?: (l: string) => void } = {}): Promise<LocalRedis> {
  const port = opts.port ?? 6379;
  const log = opts.log ?? ((l) => console.error(l));
  const url = `redis://127.0.0.1:${port}`;
  if (await redisAnswers('127.0.0.1', port)) return { url, stop: async () => {} };

  const dir = path.resolve(opts.dataDir ?? '.redis-data');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const spawned = await new Promise<Error | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (e) => resolve(e));
  });
  if (spawned) {
    const missing = (spawned as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RedisUnavailableError(
      missing
        ? `no Redis answers on 127.0.0.1:${port} and redis-server is not installed: install Redis (apt-get install redis-server, brew install redis) or set REDIS_URL`
        : `no Redis answers on 127.0.0.1:${port} and redis-server failed to start: ${spawned.message}`,
    );
  }
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    if (await redisAnswers('127.0.0.1', port, 200)) {
      log(`lstm-trainer: started redis-server on ${url} (data in ${dir}, AOF on)`);
      return {
        url,
        child,
        async stop() {
          if (child.exitCode !== null) return;
          child.kill('SIGTERM'); // redis-server flushes the AOF and exits
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
        },
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new RedisUnavailableError(`redis-server did not start on 127.0.0.1:${port}: ${stderr.trim().split('\n').pop() ?? 'no output'}`);
}
