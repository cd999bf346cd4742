// A job's own log: the worker's lines about one job (taken, started or resumed, checkpoints,
// failed attempts and crashes, handed back, cancelled, timed out, succeeded), kept in Redis beside
// the job (P:job:<id>:log, the last JOB_LOG_LINES) and read through GET /v1/jobs/:id/logs. The
// list expires with the job's record when retention applies (the state-change script and the
// append script both set it), so it never outlives the job.
import type { Keys, RedisClient } from './redis.js';
import { withScripts, type ScriptedRedis } from './scripts.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface JobLogLine {
  /** ISO time the worker wrote it. */
  time: string;
  level: LogLevel;
  msg: string;
}

/** Lines kept per job (older ones are dropped). */
export const JOB_LOG_LINES = 500;

export class JobLog {
  private readonly redis: ScriptedRedis;
  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    private readonly maxLines = JOB_LOG_LINES,
  ) {
    this.redis = withScripts(redis);
  }

  /** Appends a line; false when the job is gone (nothing is written then). */
  async append(id: string, level: LogLevel, msg: string, time = new Date()): Promise<boolean> {
    const line: JobLogLine = { time: time.toISOString(), level, msg };
    return Number(await this.redis.lstmAppendLog(this.keys.log(id), this.keys.job(id), JSON.stringify(line), this.maxLines)) === 1;
  }

  /** The kept lines, oldest first. */
  async lines(id: string): Promise<JobLogLine[]> {
    const raw = await this.redis.lrange(this.keys.log(id), 0, -1);
    const out: JobLogLine[] = [];
    for (const r of raw) {
      try {
        const l = JSON.parse(r) as JobLogLine;
        out.push({ time: String(l.time), level: l.level, msg: String(l.msg) });
      } catch {
        // a line this build cannot read is left out
      }
    }
    return out;
  }
}
