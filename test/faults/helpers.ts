// Shared by the fault tests: the api as a real process (`lstm-trainer api`, its output captured),
// a private redis-server on a free port, and a seeded random generator.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CliProcess, readyLine } from '../support/processes.js';

export { ROOT } from '../support/processes.js';

/** `lstm-trainer api` as a child process (ports chosen by the OS); `output` holds everything it printed. */
export class ApiProcess extends CliProcess {
  httpUrl = '';
  grpcPort = 0;

  constructor(env: Record<string, string>) {
    super('api', { env: { HTTP_PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', ...env }, killAfterMs: 20_000 });
  }

  /** Ready once it logged its readiness line (its addresses kept in httpUrl and grpcPort). */
  protected isReady(output: string): boolean {
    if (this.httpUrl) return true;
    const ready = readyLine(output, 'api');
    if (!ready) return false;
    this.httpUrl = String(ready.http);
    this.grpcPort = Number(String(ready.grpc).split(':').pop());
    return true;
  }

  static async start(env: Record<string, string>): Promise<ApiProcess> {
    const a = new ApiProcess(env);
    await a.ready;
    return a;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A private redis-server (own port, own data dir, AOF on), restartable on the same port and dir. */
export class RedisServer {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-redis-fault-'));
  private child?: ChildProcess;
  output = '';

  constructor(
    readonly port: number,
    private readonly extraArgs: string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--save', '', ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        this.output += d.toString();
        if (/Ready to accept connections/.test(this.output.slice(-2000))) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${this.output}`)));
    });
  }

  /** SIGSTOP / SIGCONT: a Redis that stops answering without closing its connections. */
  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  /** SIGKILL (no final AOF rewrite: what survives is what appendfsync wrote). */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** mulberry32: a small seeded PRNG, so a failing fuzz case can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
