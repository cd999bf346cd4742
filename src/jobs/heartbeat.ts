// Worker heartbeats: every worker process writes, every HEARTBEAT_MS, who it is (host, pid,
// engine/backend, concurrency, the jobs it runs) under P:worker:<id> with a time to live of three
// beats, and its id with the time in the sorted set P:workers. The api reads them for /readyz and
// /metrics (live workers, their engines, their last heartbeat); the worker itself uses the time of
// its last successful beat to notice that it has lost Redis (docs/service.md, "Failover").
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Keys, RedisClient } from './redis.js';

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  engine: string;
  backend: string;
  concurrency: number;
  /** Ids of the jobs it trains now. */
  jobs: string[];
  startedAt: string;
  /** The time of this beat (the worker's clock). */
  heartbeatAt: string;
}

export function newWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export class WorkerHeartbeat {
  /** When a beat last reached Redis (ms since the epoch); the start counts as one. */
  lastOkAt = Date.now();
  private timer?: NodeJS.Timeout;
  private inFlight = false;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly id: string,
    private readonly info: () => Omit<WorkerInfo, 'id' | 'startedAt' | 'heartbeatAt'>,
    readonly intervalMs: number,
  ) {}

  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  async beat(): Promise<void> {
    // while Redis is away a beat waits in the connection's queue: one at a time
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const now = Date.now();
      const info: WorkerInfo = { id: this.id, ...this.info(), startedAt: this.startedAt, heartbeatAt: new Date(now).toISOString() };
      await this.redis
        .multi()
        .set(this.keys.worker(this.id), JSON.stringify(info), 'PX', this.intervalMs * 3)
        .zadd(this.keys.workers, now, this.id)
        .exec();
      this.lastOkAt = Date.now();
    } catch {
      // unreachable: lastOkAt stays where it was
    } finally {
      this.inFlight = false;
    }
  }

  /** Stops beating and removes this worker from the list (a clean exit). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis
      .multi()
      .del(this.keys.worker(this.id))
      .zrem(this.keys.workers, this.id)
      .exec()
      .catch(() => undefined);
  }
}

/** The workers whose last heartbeat has not expired; the expired ones are pruned from the list. */
export async function liveWorkers(redis: RedisClient, keys: Keys): Promise<WorkerInfo[]> {
  const ids = await redis.zrange(keys.workers, 0, -1);
  if (ids.length === 0) return [];
  const vals = await redis.mget(ids.map((id) => keys.worker(id)));
  const out: WorkerInfo[] = [];
  const gone: string[] = [];
  vals.forEach((v, i) => {
    if (!v) return void gone.push(ids[i]);
    try {
      out.push(JSON.parse(v) as WorkerInfo);
    } catch {
      gone.push(ids[i]);
    }
  });
  if (gone.length) await redis.zrem(keys.workers, ...gone).catch(() => undefined);
  return out;
}
