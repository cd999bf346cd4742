// Service configuration from the environment (docs/service.md, "Configuration"), validated once at start-up so a bad
// value is one clear line, not a crash later.
import { parseKeyList, type KeyEntry } from './owners.js';

export interface ServiceConfig {
  /** undefined: 127.0.0.1:6379, and `serve` may start its own redis-server. */
  redisUrl?: string;
  /** REDIS_CLUSTER_NODES: run against a Redis Cluster reached through these nodes (docs/redis.md). */
  redisClusterNodes?: { host: string; port: number }[];
  /**
   * Prefix of every Redis key this service writes (BullMQ's and ours): QUEUE_PREFIX, and on a
   * cluster "{QUEUE_PREFIX}", a hash tag that keeps every key in one slot (docs/redis.md).
   */
  prefix: string;
  httpPort: number;
  grpcPort: number;
  host: string;
  /** Every accepted key (API_KEYS and ADMIN_KEYS, names stripped). */
  apiKeys: string[];
  /** The same keys with their names and admin flags (src/jobs/owners.ts). */
  keyEntries: KeyEntry[];
  /** With API keys off: Host names accepted besides IP literals, localhost and HOST ('*' = any). */
  allowedHosts: string[];
  /** With API keys off: Origins accepted besides the server's own ('*' = any). */
  allowedOrigins: string[];
  /** Checkpoint every K epochs (plus after epoch 1, at the end, on shutdown/cancel). */
  checkpointEvery: number;
  /** ...and at least this often in wall time, so a slow job loses little on a crash. */
  checkpointSeconds: number;
  workerConcurrency: number;
  /** Tries per job (processor errors and worker losses); then the job fails with the reason. */
  attempts: number;
  /**
   * BullMQ lock of a running job, renewed every quarter of it by the worker process (which does no
   * training itself, so a long minibatch never delays a renewal). A worker silent this long has lost
   * its jobs: with the stalled check, this bounds failover (docs/service.md, "Failover").
   */
  lockDurationMs: number;
  /** How often (any) worker looks for jobs whose lock expired. */
  stalledIntervalMs: number;
  /** Worker heartbeat interval (the heartbeat expires after three). */
  heartbeatMs: number;
  /** Seconds a finished job (record, events, checkpoint) is kept; 0 = forever. */
  retentionSeconds: number;
  /** Submissions are refused (429) while this many jobs wait; 0 = no limit. */
  maxQueued: number;
  /** Concurrent text generations per API process (429 beyond). */
  generateConcurrency: number;
  /** Models kept loaded for generation per API process. */
  modelCacheSize: number;
  sseHeartbeatMs: number;
  engine?: string;
  /** HTTP request body limit in bytes. */
  bodyLimit: number;
  /** The largest corpus POST /v1/corpora takes (CORPUS_MAX_BYTES, default 64 MiB). */
  corpusMaxBytes: number;
  /** Per-job caps on the spec's estimated cost (src/jobs/limits.ts); 0 = no cap. */
  maxJobMemoryMb: number;
  maxJobTokenEpochs: number;
  maxJobTeraflops: number;
  /** Submissions per client (API key, else address) per window, across every api process; 0 = no limit. */
  rateLimitSubmits: number;
  rateLimitWindowSeconds: number;
  /** Jobs one client may have waiting at once; 0 = no limit. */
  maxQueuedPerClient: number;
  /** On SIGTERM the api reports not-ready this long before it ends streams and stops listening. */
  shutdownDrainMs: number;
  /** HTTP: the whole request (headers and body) must arrive within this (408 otherwise); 0 = no limit. */
  requestTimeoutMs: number;
  /** HTTP: a connection with no traffic either way this long is closed (above the SSE heartbeat). */
  idleTimeoutMs: number;
  /** Open event streams (SSE and gRPC) per client per api process; 0 = no cap. */
  maxStreamsPerClient: number;
  /** Failed authentications per address per window before the address is refused (429); 0 = off. */
  authFailLimit: number;
  authFailWindowSeconds: number;
}

export class ConfigError extends Error {}

/**
 * The default cap on a job's estimated training work (src/jobs/limits.ts), in TFLOP: about what one
 * two-core CPU worker trains in 15 hours (the native engine's ≈ 100,000 tokens/s on the d2l recipe
 * are ≈ 0.18 TFLOP/s by the estimate's own count, ≈ 650 TFLOP an hour), 1,100 × the d2l recipe
 * (9 TFLOP). Deployments with bigger workers or GPUs raise it; 0 turns it off.
 */
export const DEFAULT_MAX_JOB_TFLOP = 10_000;

type Env = Record<string, string | undefined>;

function intVar(env: Env, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${raw} is invalid: expected an integer between ${min} and ${max}`);
  }
  return n;
}

function listVar(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
}

/** REDIS_CLUSTER_NODES=host:port,host:port,… (any reachable subset of the cluster; [v6]:port for IPv6). */
function clusterNodesVar(env: Env): { host: string; port: number }[] | undefined {
  const items = listVar(env, 'REDIS_CLUSTER_NODES');
  if (items.length === 0) return undefined;
  return items.map((item) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) throw new ConfigError(`REDIS_CLUSTER_NODES: ${JSON.stringify(item)} is not host:port`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  });
}

export function loadConfig(env: Env = process.env): ServiceConfig {
  const prefix = (env.QUEUE_PREFIX ?? 'lstm').trim() || 'lstm';
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new ConfigError(`QUEUE_PREFIX=${prefix} is invalid: use letters, digits, _ . -`);
  const engine = env.ENGINE?.trim() || undefined;
  if (engine && engine !== 'native' && engine !== 'tfjs') throw new ConfigError(`ENGINE=${engine} is invalid: expected native or tfjs`);
  const keyEntries = [...parseKeyList(env.API_KEYS, false), ...parseKeyList(env.ADMIN_KEYS, true)];
  const redisClusterNodes = clusterNodesVar(env);
  return {
    redisUrl: env.REDIS_URL?.trim() || undefined,
    redisClusterNodes,
    prefix: redisClusterNodes ? `{${prefix}}` : prefix,
    httpPort: intVar(env, 'HTTP_PORT', 8080, 0, 65535),
    grpcPort: intVar(env, 'GRPC_PORT', 50051, 0, 65535),
    host: env.HOST?.trim() || '127.0.0.1',
    apiKeys: [...new Set(keyEntries.map((e) => e.key))],
    keyEntries,
    allowedHosts: listVar(env, 'ALLOWED_HOSTS'),
    allowedOrigins: listVar(env, 'ALLOWED_ORIGINS'),
    checkpointEvery: intVar(env, 'CHECKPOINT_EVERY', 10, 1),
    checkpointSeconds: intVar(env, 'CHECKPOINT_SECONDS', 300, 1),
    workerConcurrency: intVar(env, 'WORKER_CONCURRENCY', 1, 1, 64),
    attempts: intVar(env, 'JOB_ATTEMPTS', 3, 1, 100),
    lockDurationMs: intVar(env, 'LOCK_DURATION_MS', 5000, 1000),
    stalledIntervalMs: intVar(env, 'STALLED_INTERVAL_MS', 1000, 200),
    heartbeatMs: intVar(env, 'HEARTBEAT_MS', 1000, 100, 60_000),
    retentionSeconds: intVar(env, 'JOB_RETENTION_SECONDS', 0, 0),
    maxQueued: intVar(env, 'MAX_QUEUED_JOBS', 1000, 0),
    generateConcurrency: intVar(env, 'GENERATE_CONCURRENCY', 4, 1, 1000),
    modelCacheSize: intVar(env, 'MODEL_CACHE_SIZE', 4, 1, 1000),
    sseHeartbeatMs: intVar(env, 'SSE_HEARTBEAT_MS', 15_000, 100),
    engine,
    bodyLimit: intVar(env, 'BODY_LIMIT_BYTES', 4 * 1024 * 1024, 1024),
    corpusMaxBytes: intVar(env, 'CORPUS_MAX_BYTES', 64 * 1024 * 1024, 1),
    maxJobMemoryMb: intVar(env, 'MAX_JOB_MEMORY_MB', 4096, 0),
    maxJobTokenEpochs: intVar(env, 'MAX_JOB_TOKEN_EPOCHS', 1_000_000_000, 0),
    maxJobTeraflops: intVar(env, 'MAX_JOB_TFLOP', DEFAULT_MAX_JOB_TFLOP, 0),
    rateLimitSubmits: intVar(env, 'RATE_LIMIT_SUBMITS', 60, 0),
    rateLimitWindowSeconds: intVar(env, 'RATE_LIMIT_WINDOW_SECONDS', 60, 1, 86_400),
    maxQueuedPerClient: intVar(env, 'MAX_QUEUED_PER_CLIENT', 100, 0),
    shutdownDrainMs: intVar(env, 'SHUTDOWN_DRAIN_MS', 2000, 0, 120_000),
    requestTimeoutMs: intVar(env, 'REQUEST_TIMEOUT_MS', 30_000, 0),
    idleTimeoutMs: intVar(env, 'IDLE_TIMEOUT_MS', 120_000, 0),
    maxStreamsPerClient: intVar(env, 'MAX_STREAMS_PER_CLIENT', 32, 0),
    authFailLimit: intVar(env, 'AUTH_FAIL_LIMIT', 10, 0),
    authFailWindowSeconds: intVar(env, 'AUTH_FAIL_WINDOW_SECONDS', 60, 1, 86_400),
  };
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
