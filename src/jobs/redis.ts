// Redis connections, the key layout, and the Lua scripts that make every state change atomic.
//
// Keys (P = QUEUE_PREFIX):
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
import { Redis, type RedisOptions } from 'ioredis';
import type { JobState } from './types.js';
import { DEFAULT_REDIS_URL } from './config.js';

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

/**
 * A connection for commands. `failFast`: commands fail after one reconnect try instead of
 * queueing forever, so the API answers 503 while Redis is down (workers prefer to wait).
 */
export function connectRedis(url: string | undefined, opts: { failFast?: boolean; name?: string } = {}): Redis {
  const options: RedisOptions = {
    connectionName: opts.name,
    maxRetriesPerRequest: opts.failFast ? 1 : null,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
  };
  const redis = new Redis(url ?? DEFAULT_REDIS_URL, options);
  // errors surface through commands; without a listener ioredis would print every reconnect failure
  redis.on('error', () => {});
  return redis;
}

/** Options for BullMQ's own connections (it requires maxRetriesPerRequest null for workers). */
export function bullConnection(url: string | undefined): RedisOptions {
  const u = new URL(url ?? DEFAULT_REDIS_URL);
  const db = u.pathname && u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  };
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

// ---------------------------------------------------------------------------------------------
// Lua scripts. Each is one atomic step of the job's life; see docs/service.md.

/**
 * Create a job (or return the one its idempotency key names, if its spec is the same).
 * KEYS: job, events, all, byState(queued), idem, clientQueued (zset of the client's waiting jobs)
 * ARGV: useIdem, jobKeyPrefix, maxQueued, queuedEventJson, notifyChannel, maxQueuedPerClient, id,
 *       specJson, field, value, …
 * → {1, id} created | {0, existingId} | {-1, ''} queue full | {-2, ''} the client has too many waiting |
 *   {-3, existingId} the key names a job with another spec
 */
const CREATE = `
if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[5])
  if existing and redis.call('EXISTS', ARGV[2] .. existing) == 1 then
    if redis.call('HGET', ARGV[2] .. existing, 'spec') ~= ARGV[8] then return {-3, existing} end
    return {0, existing}
  end
end
local maxQ = tonumber(ARGV[3])
if maxQ > 0 and redis.call('ZCARD', KEYS[4]) >= maxQ then return {-1, ''} end
local maxC = tonumber(ARGV[6])
if maxC > 0 then
  -- the client's set holds only its waiting jobs: drop those that left the queued state
  local n = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
    if redis.call('HGET', ARGV[2] .. m, 'state') == 'queued' then n = n + 1 else redis.call('ZREM', KEYS[6], m) end
  end
  if n >= maxC then return {-2, ''} end
end
local id = ARGV[7]
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('HSET', KEYS[1], 'state', 'queued', 'lastSeq', 1, 'lastEpoch', 0)
redis.call('ZADD', KEYS[3], 0, id)
redis.call('ZADD', KEYS[4], 0, id)
redis.call('XADD', KEYS[2], '1-0', 'd', ARGV[4])
if ARGV[1] == '1' then redis.call('SET', KEYS[5], id) end
if maxC > 0 then redis.call('ZADD', KEYS[6], 0, id) end
redis.call('PUBLISH', ARGV[5], id)
return {1, id}
`;

/**
 * Fixed-window counter shared by every api process (HTTP and gRPC): one per client and window.
 * KEYS: counter  ARGV: windowSeconds → {count, ttlSeconds}
 */
const RATE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
`;

/**
 * Change state and append the state event, in one step.
 * KEYS: job, events, queued, running, succeeded, failed, cancelled (zsets), bullLock, ckpt, log, init
 * ARGV: newState, allowedFrom (comma list), requireOwner ('' = any), setOwner ('' keep, '-' clear),
 *       ifLastSeq ('' = any), eventJson, notifyChannel, id, retentionSeconds, requireNoLock ('1'/'0'),
 *       field, value, …
 * → {seq, state} | {0, cur} not allowed from cur | {-1, cur} not the owner | {-2, cur} lastSeq moved |
 *   {-3, ''} no such job | {-4, cur} someone holds the queue lock
 */
const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {-3, ''} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then allowed = true end end
if not allowed then return {0, cur} end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[3] then return {-1, cur} end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'lastSeq') ~= ARGV[5] then return {-2, cur} end
if ARGV[10] == '1' and redis.call('EXISTS', KEYS[8]) == 1 then return {-4, cur} end
local seq = redis.call('HINCRBY', KEYS[1], 'lastSeq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'd', ARGV[6])
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if #ARGV >= 11 then redis.call('HSET', KEYS[1], unpack(ARGV, 11)) end
if ARGV[4] == '-' then redis.call('HDEL', KEYS[1], 'owner') elseif ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[4]) end
local idx = {queued = 3, running = 4, succeeded = 5, failed = 6, cancelled = 7}
if cur ~= ARGV[1] then
  redis.call('ZREM', KEYS[idx[cur]], ARGV[8])
  redis.call('ZADD', KEYS[idx[ARGV[1]]], 0, ARGV[8])
end
local ttl = tonumber(ARGV[9])
if ttl > 0 and (ARGV[1] == 'succeeded' or ARGV[1] == 'failed' or ARGV[1] == 'cancelled') then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[9], ttl)
  redis.call('EXPIRE', KEYS[10], ttl)
  redis.call('EXPIRE', KEYS[11], ttl)
  local ik = redis.call('HGET', KEYS[1], 'idemKey')
  if ik then redis.call('EXPIRE', ik, ttl) end
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {seq, ARGV[1]}
`;

/**
 * Append an epoch event: only by the job's current owner while running, and only the epoch right
 * after the last one published — so a retried or resumed worker can never publish an epoch twice.
 * KEYS: job, events, stats
 * ARGV: token, epoch, eventJson, notifyChannel, id, field, value, …
 * → seq | 0 already published | -1 not running / not the owner | -2 would leave a gap
 */
const APPEND_EPOCH = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return -1 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return -1 end
local last = tonumber(redis.call('HGET', KEYS[1], 'lastEpoch') or '0')
local e = tonumber(ARGV[2])
if e <= last then return 0 end
if e ~= last + 1 then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'lastSeq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'd', ARGV[3])
redis.call('HSET', KEYS[1], 'lastEpoch', e)
if #ARGV >= 6 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
redis.call('HINCRBY', KEYS[3], 'epochs', 1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return seq
`;

/**
 * Append a line to a job's log, keeping the last ARGV[2]; only while the job exists (no orphan log
 * of a deleted or expired job), and expiring with the record when retention set it to expire.
 * KEYS: log, job  ARGV: lineJson, maxLines → 1 appended | 0 no such job
 */
const APPEND_LOG = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`;

/**
 * Store a checkpoint if it is newer than the stored one, and (when a job record is given and an
 * owner token) only from the job's owner. The replaced one is kept as the previous checkpoint.
 * KEYS: ckpt, job
 * ARGV: epoch, data, token ('' = no fencing)
 * → 1 stored | 0 not newer | -1 not the owner
 */
const PUT_CHECKPOINT = `
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], 'owner') ~= ARGV[3] then return -1 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
local e = tonumber(ARGV[1])
if e <= cur then return 0 end
if cur >= 0 then
  redis.call('HSET', KEYS[1], 'prevEpoch', cur, 'prevData', redis.call('HGET', KEYS[1], 'data'))
end
redis.call('HSET', KEYS[1], 'epoch', e, 'data', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'checkpointEpoch', e) end
return 1
`;

/**
 * Set aside a damaged latest checkpoint: if the latest is still of epoch ARGV[1], the previous one
 * becomes the latest (or, without one, the key goes), and the job record's checkpointEpoch follows.
 * KEYS: ckpt, job  ARGV: epoch → the latest epoch afterwards, -1 when none is left
 */
const DISCARD_CHECKPOINT = `
local cur = redis.call('HGET', KEYS[1], 'epoch')
if cur and tonumber(cur) == tonumber(ARGV[1]) then
  local pe = redis.call('HGET', KEYS[1], 'prevEpoch')
  if pe then
    redis.call('HSET', KEYS[1], 'epoch', pe, 'data', redis.call('HGET', KEYS[1], 'prevData'))
    redis.call('HDEL', KEYS[1], 'prevEpoch', 'prevData')
  else
    redis.call('DEL', KEYS[1])
  end
end
local now = redis.call('HGET', KEYS[1], 'epoch')
if redis.call('EXISTS', KEYS[2]) == 1 then
  if now then redis.call('HSET', KEYS[2], 'checkpointEpoch', now) else redis.call('HDEL', KEYS[2], 'checkpointEpoch') end
end
if now then return tonumber(now) end
return -1
`;

export interface ScriptedRedis extends Redis {
  lstmDiscardCheckpoint(...args: (string | number)[]): Promise<number>;
  lstmCreate(...args: (string | number)[]): Promise<[number, string]>;
  lstmTransition(...args: (string | number)[]): Promise<[number, string]>;
  lstmAppendEpoch(...args: (string | number)[]): Promise<number>;
  lstmPutCheckpoint(...args: (string | number | Buffer)[]): Promise<number>;
  lstmRate(...args: (string | number)[]): Promise<[number, number]>;
  lstmAppendLog(...args: (string | number)[]): Promise<number>;
}

/** Registers the scripts (EVALSHA with automatic fallback to EVAL) on a connection. */
export function withScripts(redis: Redis): ScriptedRedis {
  const r = redis as ScriptedRedis;
  if (typeof r.lstmCreate === 'function') return r;
  redis.defineCommand('lstmCreate', { numberOfKeys: 6, lua: CREATE });
  redis.defineCommand('lstmRate', { numberOfKeys: 1, lua: RATE });
  redis.defineCommand('lstmTransition', { numberOfKeys: 11, lua: TRANSITION });
  redis.defineCommand('lstmAppendLog', { numberOfKeys: 2, lua: APPEND_LOG });
  redis.defineCommand('lstmAppendEpoch', { numberOfKeys: 3, lua: APPEND_EPOCH });
  redis.defineCommand('lstmPutCheckpoint', { numberOfKeys: 2, lua: PUT_CHECKPOINT });
  redis.defineCommand('lstmDiscardCheckpoint', { numberOfKeys: 2, lua: DISCARD_CHECKPOINT });
  return r;
}

/** Deletes every key under a prefix (tests, and `lstm-trainer` maintenance). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) n += await redis.del(...keys);
  } while (cursor !== '0');
  return n;
}
