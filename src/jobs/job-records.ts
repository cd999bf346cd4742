// Job records: one Redis hash per job, created with its first event and indexed by state and
// creation time; the job-id rule, the submission limits (queue size, per client, rate) and the
// reads the API and the workers make. Checkpoints are in checkpoint-store.ts, the API view of a
// record in job-view.ts.
import { createHash, randomBytes } from 'node:crypto';
import type { JobSpec } from '../train/spec.js';
import { AlreadyExistsError, ResourceExhaustedError } from './errors.js';
import { type Keys, STATES, type RedisClient } from './redis.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import type { CostEstimate, DataInfo, JobInit, JobSpecView, JobState, JobSummary } from './types.js';

/** The job record as stored (a Redis hash of strings), decoded. */
export interface JobRecord<S extends JobSpecView = JobSpec> {
  id: string;
  name?: string;
  spec: S;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  epoch: number;
  epochs: number;
  perplexity?: number;
  tokensPerSec?: number;
  elapsedMs?: number;
  engine?: string;
  backend?: string;
  summary?: JobSummary;
  error?: string;
  checkpointEpoch?: number;
  lastSeq: number;
  lastEpoch: number;
  attempt?: number;
  owner?: string;
  estimate?: CostEstimate;
  data?: DataInfo;
  /** Where its weights started (spec.init resolved at submission: the epoch of the checkpoint or model). */
  init?: JobInit;
  /** The submitting key's fingerprint and shown name (src/jobs/owners.ts; `owner` is the worker's lock token). */
  ownerKey?: string;
  ownerName?: string;
  experiment?: string;
}

/** Sortable by creation time as strings (base-36 ms, fixed width), unique by the random tail. */
export function newJobId(now = Date.now()): string {
  return `j${now.toString(36).padStart(9, '0')}${randomBytes(5).toString('hex')}`;
}

/**
 * The shape of every id newJobId makes: "j", 9 base-36 digits of the creation time, 10 hex digits.
 * The one job-id rule: the APIs check it (api/schemas.ts JobId) before any Redis access, and the
 * service refuses anything else, so no id can name another key (`<id>:events`, `<id>:ckpt`).
 */
export const JOB_ID_RE = /^j[0-9a-z]{9}[0-9a-f]{10}$/;
export const JOB_ID_LENGTH = 20;

export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID_RE.test(id);
}

const num = (s: string | undefined): number | undefined => (s === undefined || s === '' ? undefined : Number(s));

/**
 * The spec as views show it: a custom corpus text replaced by its size in UTF-8 bytes and its
 * SHA-256 (hex). Stored next to the spec at creation (`specView`), so views never read the text.
 */
export function specViewOf(spec: JobSpec): JobSpecView {
  const c = spec.data.corpus;
  if (c === 'timemachine' || 'id' in c) return spec; // an uploaded corpus is named by its id only
  return {
    ...spec,
    data: { ...spec.data, corpus: { bytes: Buffer.byteLength(c.text, 'utf8'), sha256: createHash('sha256').update(c.text, 'utf8').digest('hex') } },
  };
}

/** Every record field a view needs: all but `spec` (which may hold a 2 MB corpus text). */
const VIEW_FIELDS = [
  'id',
  'name',
  'specView',
  'state',
  'createdAt',
  'startedAt',
  'finishedAt',
  'epoch',
  'epochs',
  'perplexity',
  'tokensPerSec',
  'elapsedMs',
  'engine',
  'backend',
  'summary',
  'error',
  'checkpointEpoch',
  'lastSeq',
  'lastEpoch',
  'attempt',
  'estimate',
  'dataInfo',
  'init',
  'ownerKey',
  'ownerName',
  'experiment',
] as const;

export function decodeRecord(h: Record<string, string>): JobRecord | null {
  if (!h?.id || !h.state) return null;
  return decodeFields(h, JSON.parse(h.spec) as JobSpec);
}

function decodeFields<S extends JobSpecView>(h: Record<string, string>, spec: S): JobRecord<S> {
  return {
    id: h.id,
    name: h.name || undefined,
    spec,
    state: h.state as JobState,
    createdAt: h.createdAt,
    startedAt: h.startedAt || undefined,
    finishedAt: h.finishedAt || undefined,
    epoch: num(h.epoch) ?? 0,
    epochs: num(h.epochs) ?? 0,
    perplexity: num(h.perplexity),
    tokensPerSec: num(h.tokensPerSec),
    elapsedMs: num(h.elapsedMs),
    engine: h.engine || undefined,
    backend: h.backend || undefined,
    summary: h.summary ? (JSON.parse(h.summary) as JobSummary) : undefined,
    error: h.error || undefined,
    checkpointEpoch: num(h.checkpointEpoch),
    lastSeq: num(h.lastSeq) ?? 0,
    lastEpoch: num(h.lastEpoch) ?? 0,
    attempt: num(h.attempt),
    owner: h.owner || undefined,
    estimate: h.estimate ? (JSON.parse(h.estimate) as CostEstimate) : undefined,
    data: h.dataInfo ? (JSON.parse(h.dataInfo) as DataInfo) : undefined,
    init: h.init ? (JSON.parse(h.init) as JobInit) : undefined,
    ownerKey: h.ownerKey || undefined,
    ownerName: h.ownerName || undefined,
    experiment: h.experiment || undefined,
  };
}

export class JobStore {
  readonly redis: ScriptedRedis;
  constructor(
    redis: RedisClient,
    readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
  }

  /**
   * Creates the record and its first event (`queued`) atomically; with an idempotency key, the
   * existing job it names (within `idempotencyScope`, else globally) is returned instead
   * (created=false) if its spec is the same, and AlreadyExistsError (field idempotencyKey) thrown
   * if it is not. Throws ResourceExhaustedError when maxQueued jobs are already waiting.
   */
  async create(
    spec: JobSpec,
    opts: {
      maxQueued: number;
      clientId?: string;
      maxQueuedPerClient?: number;
      idempotencyScope?: string;
      now?: Date;
      estimate?: CostEstimate;
      data?: DataInfo;
      init?: JobInit;
      /** The owner (keys on) and the experiment, stored with the record; `id` chosen beforehand (experiments). */
      owner?: { key: string; name: string };
      experiment?: string;
      id?: string;
      /** With an idempotency key: the digest of the spec as submitted (submission.ts), kept for retries. */
      submittedDigest?: string;
    },
  ): Promise<{ id: string; created: boolean }> {
    const now = opts.now ?? new Date();
    const id = opts.id ?? newJobId(now.getTime());
    const idemKey = spec.idempotencyKey ? this.keys.idem(spec.idempotencyKey, opts.idempotencyScope) : this.keys.idem('');
    // the spec with every default filled in: the same key with the same spec is the same job
    const specJson = JSON.stringify(spec);
    const fields: string[] = [
      'id',
      id,
      'spec',
      specJson,
      'specView',
      JSON.stringify(specViewOf(spec)),
      'createdAt',
      now.toISOString(),
      'epoch',
      '0',
      'epochs',
      String(spec.train.epochs),
    ];
    if (spec.name !== undefined) fields.push('name', spec.name);
    if (opts.estimate) fields.push('estimate', JSON.stringify(opts.estimate));
    if (opts.data) fields.push('dataInfo', JSON.stringify(opts.data));
    if (opts.init) fields.push('init', JSON.stringify(opts.init));
    if (spec.idempotencyKey) fields.push('idemKey', idemKey);
    if (opts.submittedDigest) fields.push('submittedDigest', opts.submittedDigest);
    if (opts.owner) fields.push('ownerKey', opts.owner.key, 'ownerName', opts.owner.name);
    if (opts.experiment) fields.push('experiment', opts.experiment);
    if (spec.tags?.length) fields.push('tags', JSON.stringify(spec.tags));
    const event = JSON.stringify({ time: now.toISOString(), type: 'state', state: 'queued' });
    // the job an idempotency key names is read first, so that the script is given its record as a
    // key (every key a script touches is one of its KEYS, for Redis Cluster); -5: the key changed
    // in between (a concurrent submission with the same key), read again
    let code: number | string = -5;
    let jobId = '';
    for (let tries = 0; Number(code) === -5; tries++) {
      if (tries >= 10) throw new Error(`idempotencyKey ${JSON.stringify(spec.idempotencyKey)}: the key kept changing while this job was submitted`);
      const existing = spec.idempotencyKey ? ((await this.redis.get(idemKey)) ?? '') : '';
      [code, jobId] = await this.redis.lstmCreate(
        this.keys.job(id),
        this.keys.events(id),
        this.keys.all,
        this.keys.byState('queued'),
        idemKey,
        this.keys.clientQueued(opts.clientId ?? '-'),
        existing ? this.keys.job(existing) : this.keys.job(id),
        spec.idempotencyKey ? '1' : '0',
        existing,
        opts.maxQueued,
        event,
        this.keys.notifyChannel,
        opts.clientId ? (opts.maxQueuedPerClient ?? 0) : 0,
        id,
        specJson,
        ...fields,
      );
    }
    if (Number(code) === -1) throw new ResourceExhaustedError(`the queue is full (${opts.maxQueued} jobs waiting); try again later`);
    if (Number(code) === -2) {
      throw new ResourceExhaustedError(
        `this client already has ${opts.maxQueuedPerClient} jobs waiting (MAX_QUEUED_PER_CLIENT); try again when one has started`,
        10,
      );
    }
    if (Number(code) === -3) {
      throw new AlreadyExistsError(
        `idempotencyKey ${JSON.stringify(spec.idempotencyKey)} already names job ${jobId}, submitted with another spec; use a new key, or the same spec to get that job`,
        'idempotencyKey',
        String(jobId),
      );
    }
    return { id: String(jobId), created: Number(code) === 1 };
  }

  /** The job an idempotency key names (within `scope`), with the digest of the spec it was submitted with; null when none. */
  async idempotentJob(idempotencyKey: string, scope?: string): Promise<{ id: string; submittedDigest: string | null } | null> {
    const id = await this.redis.get(this.keys.idem(idempotencyKey, scope));
    if (!id) return null;
    const [exists, submittedDigest] = await this.redis.hmget(this.keys.job(id), 'id', 'submittedDigest');
    return exists ? { id, submittedDigest } : null;
  }

  /**
   * Counts one submission of `client` in the current window; throws ResourceExhaustedError (with
   * the seconds left in the window) beyond `limit`.
   */
  async rateLimit(client: string, limit: number, windowSeconds: number): Promise<void> {
    if (limit <= 0) return;
    const [n, ttl] = await this.redis.lstmRate(this.keys.rate(client), windowSeconds);
    if (Number(n) > limit) {
      const retry = Math.max(1, Number(ttl));
      throw new ResourceExhaustedError(`rate limit: at most ${limit} submissions per ${windowSeconds} s per client; retry after ${retry} s`, retry);
    }
  }

  async get(id: string): Promise<JobRecord | null> {
    return decodeRecord(await this.redis.hgetall(this.keys.job(id)));
  }

  /**
   * Records for views: every field but the full spec (`specView` instead: the corpus text left
   * out), unless includeCorpus. A record written before `specView` existed is read in full once.
   */
  async getViews(ids: string[], includeCorpus = false): Promise<(JobRecord<JobSpecView> | null)[]> {
    if (includeCorpus) return this.getMany(ids);
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.keys.job(id), ...VIEW_FIELDS);
    const res = (await pipe.exec()) ?? [];
    return Promise.all(
      res.map(async ([err, vals], i) => {
        if (err) throw err; // Redis unreachable: the caller answers 503, not "no such job"
        const v = vals as (string | null)[] | null;
        if (!v || v[0] === null) return null;
        const h: Record<string, string> = {};
        VIEW_FIELDS.forEach((f, k) => {
          if (v[k] !== null) h[f] = v[k]!;
        });
        if (!h.state) return null;
        if (h.specView) return decodeFields(h, JSON.parse(h.specView) as JobSpecView);
        const full = await this.redis.hget(this.keys.job(ids[i]), 'spec');
        return full === null ? null : decodeFields(h, specViewOf(JSON.parse(full) as JobSpec));
      }),
    );
  }

  async getMany(ids: string[]): Promise<(JobRecord | null)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.job(id));
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, h]) => {
      // a failed read (Redis restarting: LOADING) is not "no such job": the list would drop the id from its index
      if (err) throw err;
      return decodeRecord(h as Record<string, string>);
    });
  }

  /** A few fields of many records (no spec: it may hold a 2 MB corpus). */
  async fieldsOf<K extends string>(ids: string[], fields: readonly K[]): Promise<(Record<K, string | null> | null)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.keys.job(id), 'id', ...fields);
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, vals]) => {
      if (err) throw err; // (a worker would take a failed read for a deleted, i.e. cancelled, job)
      const v = vals as (string | null)[] | null;
      if (!v || v[0] === null) return null;
      const out = {} as Record<K, string | null>;
      fields.forEach((f, i) => (out[f] = v[i + 1]));
      return out;
    });
  }

  /** Newest first; `cursor` is the last id of the previous page. */
  async list(
    q: { state?: JobState; limit: number; cursor?: string },
    includeCorpus = false,
  ): Promise<{ records: JobRecord<JobSpecView>[]; nextCursor?: string }> {
    const key = q.state ? this.keys.byState(q.state) : this.keys.all;
    const records: JobRecord<JobSpecView>[] = [];
    let cursor = q.cursor;
    // a few rounds: ids of expired jobs (retention) are skipped and pruned
    for (let round = 0; round < 5 && records.length < q.limit; round++) {
      const want = q.limit - records.length + 1;
      const max = cursor ? `(${cursor}` : '+';
      const ids = (await this.redis.call('ZRANGE', key, max, '-', 'BYLEX', 'REV', 'LIMIT', '0', String(want))) as string[];
      if (ids.length === 0) break;
      const recs = await this.getViews(ids, includeCorpus);
      const stale: string[] = [];
      for (let i = 0; i < ids.length; i++) {
        const r = recs[i];
        if (!r) stale.push(ids[i]);
        else if (!q.state || r.state === q.state) {
          if (records.length === q.limit) return { records, nextCursor: records[records.length - 1].id };
          records.push(r);
        }
        cursor = ids[i];
      }
      if (stale.length) await this.redis.zrem(key, ...stale);
      if (ids.length < want) break;
    }
    return { records };
  }

  async countByState(): Promise<Record<JobState, number>> {
    const pipe = this.redis.pipeline();
    for (const s of STATES) pipe.zcard(this.keys.byState(s));
    const res = (await pipe.exec()) ?? [];
    const out = {} as Record<JobState, number>;
    STATES.forEach((s, i) => (out[s] = Number(res[i]?.[1] ?? 0)));
    return out;
  }

  async idsInState(state: JobState, limit = 1000): Promise<string[]> {
    return (await this.redis.call('ZRANGE', this.keys.byState(state), '+', '-', 'BYLEX', 'REV', 'LIMIT', '0', String(limit))) as string[];
  }

  async epochsTrained(): Promise<number> {
    return Number((await this.redis.hget(this.keys.stats, 'epochs')) ?? 0);
  }

  /** Record which engine/backend the job runs on (shown in the view, kept in the summary). */
  async setFields(id: string, fields: Record<string, string | number>): Promise<void> {
    const flat: (string | number)[] = [];
    for (const [k, v] of Object.entries(fields)) flat.push(k, v);
    if (flat.length) await this.redis.hset(this.keys.job(id), ...flat);
  }
}
