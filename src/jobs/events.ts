// Each job's durable, ordered history (docs/architecture.md, "Events"): a Redis stream per job whose entry ids are the
// sequence numbers themselves ("<seq>-0"), written only by the Lua scripts in redis.ts, so
// - seq is 1, 2, 3… with no gap (the scripts increment lastSeq and XADD in one step);
// - an epoch is appended only if it is exactly lastEpoch+1 and only by the job's current owner
//   (a retried, resumed or zombie worker cannot publish an epoch twice);
// - readers resume with "everything after seq N" (XRANGE from N+1), and live tailing is the same
//   read repeated after a wake-up on the notify channel, so history and live never gap or overlap.
import type { EpochEvent } from '../train/trainer.js';
import { NotFoundError } from './errors.js';
import { type Keys, STATES, type RedisClient } from './redis.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import { TERMINAL_STATES, type JobEvent, type JobState, type JobSummary } from './types.js';

export type AppendResult = 'appended' | 'duplicate' | 'fenced' | 'gap';

export interface TransitionOptions {
  /** States the job may be in for the change to happen. */
  from: readonly JobState[];
  /** Only if this token owns the job. */
  requireOwner?: string;
  /** New owner token; '-' clears it. */
  setOwner?: string;
  /** Only if no event was appended since the caller read lastSeq (optimistic concurrency). */
  ifLastSeq?: number;
  /** Only if nobody holds the job's queue lock (i.e. its worker is really gone). */
  requireNoLock?: boolean;
  summary?: JobSummary;
  error?: string;
  attempt?: number;
  message?: string;
  /** Extra record fields set in the same step. */
  fields?: Record<string, string | number>;
}

export type TransitionResult = { ok: true; seq: number } | { ok: false; reason: 'state' | 'owner' | 'moved' | 'missing' | 'locked'; current?: JobState };

export class EventLog {
  readonly redis: ScriptedRedis;
  constructor(
    redis: RedisClient,
    readonly keys: Keys,
    private readonly retentionSeconds = 0,
  ) {
    this.redis = withScripts(redis);
  }

  /** The raw step; callers use JobRun (lifecycle.ts), whose methods name each allowed change. */
  async transition(id: string, to: JobState, o: TransitionOptions): Promise<TransitionResult> {
    const time = new Date().toISOString();
    const event: Record<string, unknown> = { time, type: 'state', state: to };
    if (o.summary) event.summary = o.summary;
    if (o.error) event.error = o.error;
    if (o.attempt !== undefined) event.attempt = o.attempt;
    if (o.message) event.message = o.message;
    const fields: (string | number)[] = [];
    for (const [k, v] of Object.entries(o.fields ?? {})) fields.push(k, v);
    if (o.summary) fields.push('summary', JSON.stringify(o.summary));
    if (o.error) fields.push('error', o.error);
    if (o.attempt !== undefined) fields.push('attempt', o.attempt);
    if (to === 'running') fields.push('startedAt', time);
    if (TERMINAL_STATES.includes(to)) fields.push('finishedAt', time);
    // a final state with retention expires the job's idempotency key too: the script is given it
    // (every key a script touches is one of its KEYS, for Redis Cluster), read from the record,
    // where it never changes once the job exists; -5 means the read was stale (the job is new)
    const expires = this.retentionSeconds > 0 && TERMINAL_STATES.includes(to);
    let tries = 0;
    for (;;) {
      const idemKey = (expires && (await this.redis.hget(this.keys.job(id), 'idemKey'))) || this.keys.job(id);
      const r = await this.transitionOnce(id, to, o, idemKey, event, fields);
      if (r !== 'retry') return r;
      if (++tries >= 5) return { ok: false, reason: 'moved' };
    }
  }

  private async transitionOnce(
    id: string,
    to: JobState,
    o: TransitionOptions,
    idemKey: string,
    event: Record<string, unknown>,
    fields: (string | number)[],
  ): Promise<TransitionResult | 'retry'> {
    const [code, cur] = await this.redis.lstmTransition(
      this.keys.job(id),
      this.keys.events(id),
      ...STATES.map((s) => this.keys.byState(s)),
      this.keys.bullLock(id),
      this.keys.ckpt(id),
      this.keys.log(id),
      this.keys.init(id),
      idemKey,
      to,
      o.from.join(','),
      o.requireOwner ?? '',
      o.setOwner ?? '',
      o.ifLastSeq === undefined ? '' : String(o.ifLastSeq),
      JSON.stringify(event),
      this.keys.notifyChannel,
      id,
      this.retentionSeconds,
      o.requireNoLock ? '1' : '0',
      ...fields,
    );
    const c = Number(code);
    if (c === -5) return 'retry';
    if (c > 0) return { ok: true, seq: c };
    const reason = ({ 0: 'state', [-1]: 'owner', [-2]: 'moved', [-3]: 'missing', [-4]: 'locked' } as const)[c as 0 | -1 | -2 | -3 | -4];
    return { ok: false, reason: reason ?? 'state', current: (cur || undefined) as JobState | undefined };
  }

  async appendEpoch(id: string, ownerToken: string, ev: EpochEvent): Promise<AppendResult> {
    const data = JSON.stringify({ time: new Date().toISOString(), type: 'epoch', ...ev });
    const r = Number(
      await this.redis.lstmAppendEpoch(
        this.keys.job(id),
        this.keys.events(id),
        this.keys.stats,
        ownerToken,
        ev.epoch,
        data,
        this.keys.notifyChannel,
        id,
        'epoch',
        ev.epoch,
        'epochs',
        ev.epochs,
        'perplexity',
        String(ev.perplexity),
        'tokensPerSec',
        String(ev.tokensPerSec),
        'elapsedMs',
        ev.elapsedMs,
      ),
    );
    if (r > 0) return 'appended';
    return r === 0 ? 'duplicate' : r === -1 ? 'fenced' : 'gap';
  }

  private readonly reads = new Map<string, Promise<JobEvent[]>>();

  /**
   * history(), with concurrent identical reads shared: the watchers of one job wake together on
   * each notification and mostly ask for the same range, so N watchers cost one XRANGE, not N.
   * The events are shared between callers and must not be mutated.
   */
  sharedHistory(id: string, afterSeq: number, count: number): Promise<JobEvent[]> {
    const key = `${id}|${afterSeq}|${count}`;
    let p = this.reads.get(key);
    if (!p) {
      p = this.history(id, afterSeq, count);
      this.reads.set(key, p);
      const done = () => this.reads.delete(key);
      p.then(done, done);
    }
    return p;
  }

  /** Events with seq > afterSeq, oldest first (at most `count`). */
  async history(id: string, afterSeq: number, count?: number): Promise<JobEvent[]> {
    const args: (string | number)[] = [this.keys.events(id), `${Math.max(0, Math.floor(afterSeq)) + 1}-0`, '+'];
    if (count !== undefined) args.push('COUNT', count);
    const entries = (await this.redis.call('XRANGE', ...args)) as [string, string[]][];
    return entries.map(decodeEntry);
  }

  /** The last `n` epoch events, oldest first. */
  async lastEpochs(id: string, n: number): Promise<EpochEvent[]> {
    // state events are few (a handful per attempt), so 2n+8 entries always hold the last n epochs
    const entries = (await this.redis.call('XREVRANGE', this.keys.events(id), '+', '-', 'COUNT', 2 * n + 8)) as [string, string[]][];
    const out: EpochEvent[] = [];
    for (const e of entries) {
      const ev = decodeEntry(e);
      if (ev.type === 'epoch') out.push(stripEpoch(ev));
      if (out.length === n) break;
    }
    return out.reverse();
  }

  /**
   * Up to `limit` epoch events with epoch > after, oldest first. An epoch's seq is at least epoch + 1
   * (the `queued` event comes first), so the read starts at seq after + 1 and skips only the few
   * state events in between, never the history before `after`.
   */
  async epochs(id: string, after: number, limit: number): Promise<EpochEvent[]> {
    const out: EpochEvent[] = [];
    let seq = Math.max(0, Math.floor(after));
    const page = Math.min(1000, limit + 16);
    for (;;) {
      const events = await this.history(id, seq, page);
      for (const ev of events) {
        if (ev.type === 'epoch' && ev.epoch > after) {
          out.push(stripEpoch(ev));
          if (out.length === limit) return out;
        }
      }
      if (events.length < page) return out;
      seq = events[events.length - 1].seq;
    }
  }

  /**
   * History after fromSeq, then live events, until the terminal state event (or abort). The
   * wake-up is registered before each read, so an event appended between a read and the wait is
   * never missed; a periodic re-read covers notifications lost while reconnecting.
   */
  async *watch(id: string, fromSeq: number, notifier: Notifier, signal?: AbortSignal, pollMs = 5000): AsyncGenerator<JobEvent> {
    let last = Math.max(0, Math.floor(fromSeq));
    if (!(await this.redis.exists(this.keys.job(id)))) throw new NotFoundError(`job ${id} not found`);
    await notifier.subscribed(); // before the first read, or a wake-up right after it could be lost
    while (!signal?.aborted) {
      const woken = notifier.waitFor(id, pollMs, signal);
      let events: JobEvent[];
      try {
        events = await this.sharedHistory(id, last, 500);
      } catch (e) {
        woken.cancel();
        throw e;
      }
      if (events.length > 0) {
        woken.cancel();
        for (const ev of events) {
          if (signal?.aborted) return;
          yield ev;
          last = ev.seq;
          if (ev.type === 'state' && TERMINAL_STATES.includes(ev.state)) return;
        }
        continue;
      }
      // nothing new: finished jobs whose terminal event the caller already has end here
      const [state, lastSeq] = await this.redis.hmget(this.keys.job(id), 'state', 'lastSeq');
      if (state === null) {
        woken.cancel();
        return; // expired (retention) or deleted
      }
      if (TERMINAL_STATES.includes(state as JobState) && Number(lastSeq) <= last) {
        woken.cancel();
        return;
      }
      await woken.promise;
    }
  }
}

function decodeEntry([streamId, fields]: [string, string[]]): JobEvent {
  const seq = Number(streamId.slice(0, streamId.indexOf('-')));
  let data = '{}';
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'd') data = fields[i + 1];
  return { seq, ...JSON.parse(data) } as JobEvent;
}

function stripEpoch(ev: JobEvent): EpochEvent {
  const { seq, time, type, ...rest } = ev as JobEvent & { type: 'epoch' };
  void seq;
  void time;
  void type;
  return rest as EpochEvent;
}

/**
 * One subscriber connection per process for the notify channel; watchers wait on it by job id.
 * Cheap for many concurrent SSE/gRPC streams (no blocking connection per watcher).
 */
export class Notifier {
  private readonly waiters = new Map<string, Set<() => void>>();
  private ready: Promise<unknown>;

  constructor(
    private readonly sub: RedisClient,
    channel: string,
  ) {
    sub.on('message', (ch: string, id: string) => {
      if (ch !== channel) return;
      const set = this.waiters.get(id);
      if (!set) return;
      this.waiters.delete(id);
      for (const wake of set) wake();
    });
    this.ready = sub.subscribe(channel).catch(() => undefined);
  }

  /** Resolves on the next notification for `id`, after `timeoutMs`, or on abort. */
  waitFor(id: string, timeoutMs: number, signal?: AbortSignal): { promise: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      const set = this.waiters.get(id);
      if (set) {
        set.delete(done);
        if (set.size === 0) this.waiters.delete(id);
      }
      wake();
    };
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(done);
    timer = setTimeout(done, timeoutMs);
    signal?.addEventListener('abort', done, { once: true });
    return { promise, cancel: done };
  }

  subscribed(): Promise<unknown> {
    return this.ready;
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.waiters.clear();
    this.sub.disconnect();
  }
}
