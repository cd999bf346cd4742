// One logger for every service process (api, worker, serve): pino, writing to stderr. JSON lines by
// default — one object per line: time (ISO), level (a word), msg, the process's name, and fields
// such as jobId —, one line of text per entry when stderr is a terminal ("11:33:00.728 INFO  msg
// jobId=…"). LOG_FORMAT=json|pretty overrides the choice. LOG_LEVEL (default info) sets the request
// logs' level; the process's own lines always show at info (debug, trace: those too).
// The api's fastify logger is this same logger, so its request lines have the same shape.
import { pino, type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';
export type { Logger };

export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stderr.isTTY)): LogFormat {
  const f = env.LOG_FORMAT?.trim().toLowerCase();
  if (f === 'json' || f === 'pretty') return f;
  return isTTY ? 'pretty' : 'json';
}

export interface LoggerOptions {
  /** The process: api, worker, serve. */
  name: string;
  level?: string;
  format?: LogFormat;
  /** Where lines go (default: stderr, written synchronously so no line is lost at exit). */
  stream?: { write(line: string): unknown };
}

export function createLogger(o: LoggerOptions): Logger {
  const format = o.format ?? logFormat();
  const out = o.stream ?? pino.destination({ dest: 2, sync: true });
  const dest: DestinationStream = format === 'pretty' ? prettyStream(out) : (out as DestinationStream);
  return pino(
    {
      name: o.name,
      // the process's own lines (ready, waiting for Redis, a job's lines) show at info whatever
      // LOG_LEVEL says; a LOG_LEVEL above info quiets the request logs only (requestLogger)
      level: o.level ?? verbose(process.env.LOG_LEVEL),
      base: undefined, // no pid / hostname in every line
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

const ORDER = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** LOG_LEVEL when it shows more than info, else info. */
function verbose(level: string | undefined): string {
  return level && ORDER.includes(level) && ORDER.indexOf(level) < ORDER.indexOf('info') ? level : 'info';
}

/** The api's request logger: `logger` at LOG_LEVEL (default info), e.g. warn for no request lines. */
export function requestLogger(logger: Logger, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return logger.child({}, { level: ORDER.includes(level) ? level : 'info' });
}

const SKIP = new Set(['time', 'level', 'msg', 'name']);

/** JSON lines in, one line of text out: time (local, to the ms), level, msg, then the other fields. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const t = new Date(String(o.time));
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const time = Number.isNaN(t.getTime()) ? String(o.time) : `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return `${time} ${String(o.level ?? '')
    .toUpperCase()
    .padEnd(5)} ${String(o.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}

function prettyStream(out: { write(line: string): unknown }): DestinationStream {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) out.write(prettyLine(line));
    },
  };
}
