// Shared by the fault tests (and the owners tests, a benchmark): the api as a real process
// (ApiProcess, from processes.ts), a private redis-server on a free port, and a seeded random generator.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
export { ApiProcess, ROOT } from './processes.js';

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
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--save', '', ...this.extraArgs],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
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

/** Whether a TCP port on 127.0.0.1 can be listened on now. */
async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A real Redis Cluster of `masters` redis-servers on free loopback ports (no replicas, no
 * persistence), created with `redis-cli --cluster create`. A cluster node also listens on its
 * port + 10000 (the cluster bus), so both must be free.
 */
export class RedisCluster {
  readonly servers: RedisServer[] = [];

  /** "127.0.0.1:P1,127.0.0.1:P2,…", as REDIS_CLUSTER_NODES takes it. */
  get nodes(): string {
    return this.servers.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const c = new RedisCluster();
    try {
      const ports = new Set<number>();
      while (ports.size < masters) {
        const p = await freePort();
        if (p + 10000 < 65536 && !ports.has(p) && (await portFree(p + 10000))) ports.add(p);
      }
      for (const p of ports) {
        const s = new RedisServer(p, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '5000',
          '--appendonly',
          'no',
        ]);
        c.servers.push(s);
        await s.start();
      }
      await c.redisCli(['--cluster', 'create', ...c.servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes']);
      // every node must agree that all slots are served before the cluster takes commands
      const end = Date.now() + 30_000;
      for (const s of c.servers) {
        while (!/cluster_state:ok/.test(await c.redisCli(['-p', String(s.port), 'cluster', 'info']))) {
          if (Date.now() > end) throw new Error(`cluster not ok after 30 s (node ${s.port})`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      return c;
    } catch (e) {
      await c.destroy();
      throw e;
    }
  }

  redisCli(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${out}`))));
    });
  }

  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.destroy()));
  }
}
