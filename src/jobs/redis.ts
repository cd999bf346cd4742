// Redis connections (one Redis, or a Redis Cluster with REDIS_CLUSTER_NODES) and the key layout. The
// Lua scripts that make every state change atomic are in scripts/ (scripts.ts loads them).
//
// Keys (P = QUEUE_PREFIX; on a cluster "{QUEUE_PREFIX}", a hash tag that puts every key in one slot):
//   P:train:*            BullMQ's queue "train" (delivery, locks, stalled detection, attempts)
//   P:job:<id>           hash: the job record (spec, state, progress, owner token, lastSeq, lastEpoch…)
//   P:job:<id>:events    stream: the job's history; entry id "<seq>-0", field d = event JSON
//   P:job:<id>:ckpt      hash: {epoch, data} the latest checkpoint (binary), {prevEpoch, prevData} the one before
//   P:job:<id>:log       list: the job's log, the worker's lines about it (JSON {time, level, msg}), the last JOB_LOG_LINES
//   P:job:<id>:init      hash: {data} the weights the job starts from (spec.init), copied at submission (src/jobs/models.ts)
//   P:model:<mid>        hash: {meta, data} an uploaded model (POST /v1/models); P:models zset: their ids by upload time
//   P:jobs               zset (score 0, ids sort by time): every job, for listing newest first
//   P:jobs:<state>       zset: jobs by state
//   P:idem:<sha256>      idempotencyKey (scoped to the client's key fingerprint when auth is on) → job id
//   P:experiment:<xid>   hash: an experiment (name, owner, varied paths, its jobs' ids and values: src/jobs/experiments.ts)
//   P:stats              hash: epochs (epochs trained, all jobs)
//   P:worker:<wid>       string: a worker's heartbeat (JSON: host, pid, engine, jobs…), expires after 3 beats
//   P:workers            zset: worker id → time of its last heartbeat (ms)
//   channel P:notify     "<id>": the job's history grew (wakes SSE / gRPC watchers)
//   channel P:cancel     "<id>": stop the job now (workers)
import { createHash } from 'node:crypto';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import type { JobState } from './types.js';
import { DEFAULT_REDIS_URL, type ServiceConfig } from './config.js';
import { UnavailableError } from './errors.js';

/** A connection for commands: to one Redis, or to a Redis Cluster (the same commands). */
export type RedisClient = Redis | Cluster;

/** Where the service's Redis is: REDIS_URL, or REDIS_CLUSTER_NODES (then REDIS_URL only lends its credentials and TLS). */
export type RedisTarget = Pick<ServiceConfig, 'redisUrl' | 'redisClusterNodes'>;

export const QUEUE_NAME = 'train';
export const STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export class Keys {
  constructor(readonly prefix: string) {}
  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }
  events(id: string): string {
    return `${this.prefix}:job:${id}:events`;
  }
  ckpt(id: string): string {
    return `${this.prefix}:job:${id}:ckpt`;
  }
  /** hash {data}: the weights a job with spec.init starts from (src/jobs/models.ts). */
  init(id: string): string {
    return `${this.prefix}:job:${id}:init`;
  }
  /** hash: an uploaded corpus's owners, fingerprint → upload time ms (src/jobs/upload-owners.ts). */
  corpusOwners(id: string): string {
    return `${this.prefix}:corpus:${id}:owners`;
  }
  /** hash: an uploaded model's owners, fingerprint → upload time ms (src/jobs/upload-owners.ts). */
  modelOwners(id: string): string {
    return `${this.prefix}:model:${id}:owners`;
  }
  /** list: the job's log lines (JSON), capped (src/jobs/job-log.ts). */
  log(id: string): string {
    return `${this.prefix}:job:${id}:log`;
  }
  /** BullMQ's lock of the queue job (held by the worker processing it). */
  bullLock(id: string): string {
    return `${this.prefix}:${QUEUE_NAME}:${id}:lock`;
  }
  get all(): string {
    return `${this.prefix}:jobs`;
  }
  byState(state: JobState): string {
    return `${this.prefix}:jobs:${state}`;
  }
  /**
   * An idempotency key's record, within `scope` (the submitting API key's fingerprint when keys are
   * on; none = global). Hashed: the client's key may hold any characters and up to 200 of them.
   */
  idem(key: string, scope?: string): string {
    const h = createHash('sha256');
    if (scope) h.update(`${scope}\n`);
    return `${this.prefix}:idem:${h.update(key).digest('hex')}`;
  }
  /** The waiting jobs of one client (API key fingerprint or address), for MAX_QUEUED_PER_CLIENT. */
  clientQueued(client: string): string {
    return `${this.prefix}:client:${client}:queued`;
  }
  /** The client's submissions in the current rate-limit window. */
  rate(client: string): string {
    return `${this.prefix}:rate:${client}`;
  }
  get stats(): string {
    return `${this.prefix}:stats`;
  }
  /** hash: an experiment (src/jobs/experiments.ts). */
  experiment(id: string): string {
    return `${this.prefix}:experiment:${id}`;
  }
  /** A worker's heartbeat (JSON, expires after three beats). */
  worker(id: string): string {
    return `${this.prefix}:worker:${id}`;
  }
  /** zset: worker id → time of its last heartbeat (ms). */
  get workers(): string {
    return `${this.prefix}:workers`;
  }
  get notifyChannel(): string {
    return `${this.prefix}:notify`;
  }
  get cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }
}

/** host, port, credentials and TLS of REDIS_URL (or the default), as ioredis options. */
function urlOptions(url: string | undefined): RedisOptions {
  const u = new URL(url ?? DEFAULT_REDIS_URL);
  const db = u.pathname && u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

const retryStrategy = (times: number) => Math.min(times * 200, 2000);

/**
 * A Cluster client. The nodes' options (`node`) apply to every connection it opens; REDIS_URL, when
 * set, lends them its user, password and TLS (a cluster has no databases: db is always 0).
 */
function connectCluster(target: RedisTarget, node: RedisOptions, name?: string): Cluster {
  const { username, password, tls } = target.redisUrl ? urlOptions(target.redisUrl) : ({} as RedisOptions);
  const options: ClusterOptions = {
    redisOptions: { username, password, tls, connectionName: name, ...node },
    clusterRetryStrategy: retryStrategy,
    // a moved or failed-over slot is retried after this, not at once (ioredis' default is 100 ms)
    retryDelayOnFailover: 200,
  };
  return new Cluster(target.redisClusterNodes!, options);
}

/**
 * A connection for commands. `failFast`: commands fail after one reconnect try instead of
 * queueing forever, so the API answers 503 while Redis is down (workers prefer to wait). `where`:
 * the service's config (REDIS_URL or REDIS_CLUSTER_NODES), or a URL of one Redis.
 */
export function connectRedis(where: RedisTarget | string | undefined, opts: { failFast?: boolean; name?: string } = {}): RedisClient {
  const target: RedisTarget = typeof where === 'object' ? where : { redisUrl: where };
  const maxRetriesPerRequest = opts.failFast ? 1 : null;
  const redis: RedisClient = target.redisClusterNodes?.length
    ? connectCluster(target, { maxRetriesPerRequest }, opts.name)
    : new Redis(target.redisUrl ?? DEFAULT_REDIS_URL, { connectionName: opts.name, maxRetriesPerRequest, retryStrategy, lazyConnect: false });
  // errors surface through commands; without a listener ioredis would print every reconnect failure
  redis.on('error', () => {});
  return redis;
}

/** Options for BullMQ's own connections to one Redis (it requires maxRetriesPerRequest null for workers). */
export function bullConnection(url: string | undefined): RedisOptions {
  return { ...urlOptions(url), maxRetriesPerRequest: null, retryStrategy };
}

/**
 * BullMQ's connection for a Queue or Worker: options for one Redis (BullMQ opens and closes its
 * connections), or, on a cluster, a Cluster client — BullMQ cannot build one from options — that
 * BullMQ shares and close() ends after BullMQ is done with it.
 */
export function bullConnectionFor(target: RedisTarget, node: RedisOptions = {}): { connection: ConnectionOptions; close(): Promise<void> } {
  if (!target.redisClusterNodes?.length) return { connection: { ...bullConnection(target.redisUrl), ...node }, close: async () => {} };
  const cluster = connectCluster(target, { maxRetriesPerRequest: null, ...node });
  cluster.on('error', () => {});
  return { connection: cluster, close: async () => void cluster.disconnect() };
}

/** True for errors that mean "Redis is not reachable" rather than a bug. */
export function isRedisDown(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const msg = e.message ?? '';
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|Connection is closed|Stream isn't writeable|connect ETIMEDOUT|LOADING/.test(msg)
  );
}

/** The error an api caller sees for `e`: Redis unreachable is UnavailableError (503 / UNAVAILABLE), anything else itself. */
export function redisDownAsUnavailable(e: unknown): unknown {
  return isRedisDown(e) ? new UnavailableError('the job store (Redis) is unreachable; try again shortly') : e;
}

/** Runs `fn`, a Redis error that means unreachable turned into UnavailableError (redisDownAsUnavailable). */
export async function guardRedis<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw redisDownAsUnavailable(e);
  }
}

/** Deletes every key under a prefix (tests, and `lstm-trainer` maintenance); on a cluster, on every master. */
export async function deleteKeysWithPrefix(redis: RedisClient, prefix: string): Promise<number> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  let n = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      // one DEL per key: on a cluster a multi-key DEL must stay within one slot
      if (keys.length) {
        const res = (await keys.reduce((p, k) => p.del(k), node.pipeline()).exec()) ?? [];
        for (const [err, count] of res) if (!err) n += Number(count);
      }
    } while (cursor !== '0');
  }
  return n;
}
