// Shared by the tests that run the service (test/jobs, test/api/http, test/cli, test/faults): a
// private key prefix per test file (deleted at the end), the API in-process (fastify + supertest /
// fetch), and real worker processes (`lstm-trainer worker`, from processes.ts).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ServiceConfig } from '../../src/jobs/config.js';
import type { RedisJobService } from '../../src/jobs/service.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { followJob } from '../../src/cli/sse-client.js';
import { REDIS_URL } from './processes.js';

// defined in processes.ts; the tests that run the service take them from here
export { REDIS_URL, ROOT, TestProcesses, WorkerProcess, deletePrefix, processAlive } from './processes.js';

/** Settings that make worker loss visible in seconds rather than a minute. */
export const FAST_RECOVERY = { LOCK_DURATION_MS: '2000', STALLED_INTERVAL_MS: '1000' };

export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL,
    QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`,
    CHECKPOINT_EVERY: '3',
    SSE_HEARTBEAT_MS: '200',
    ...extra,
  };
}

/** A tiny job: a few ms per epoch. */
export const TINY = {
  model: { kind: 'scratch', numHiddens: 8 },
  data: { maxTokens: 2000, batchSize: 4, numSteps: 5 },
  train: { epochs: 6, seed: 7 },
  report: { predictEvery: 3, prefixes: ['time traveller'], numPreds: 10 },
} as const;

/** A job slow enough to act on mid-run (tens of ms per epoch on the native engine). */
export function slowSpec(epochs: number, extra: Record<string, unknown> = {}) {
  return {
    model: { kind: 'scratch', numHiddens: 48 },
    data: { maxTokens: 12000, batchSize: 8, numSteps: 10 },
    train: { epochs, seed: 11 },
    report: { predictEvery: 1000, prefixes: ['time traveller'], numPreds: 10 },
    ...extra,
  };
}

export interface TestApi {
  config: ServiceConfig;
  service: RedisJobService;
  app: FastifyInstance;
  /** http://127.0.0.1:<port> */
  url: string;
  close(): Promise<void>;
}

// The HTTP app, the JobService and BullMQ are imported when first used: a test file that takes only
// testEnv, TINY or streamEvents from here (most that run the api as a process) does not load them
// (about 2 s of CPU per file).
export async function startTestApi(env: Record<string, string>, opts: { apiKeys?: string[] } = {}): Promise<TestApi> {
  const [{ loadConfig }, { RedisJobService }, { buildHttpApp }] = await Promise.all([
    import('../../src/jobs/config.js'),
    import('../../src/jobs/service.js'),
    import('../../src/api/http/app.js'),
  ]);
  const config = loadConfig(env);
  const service = new RedisJobService({ config });
  const app = await buildHttpApp({
    service,
    apiKeys: opts.apiKeys ?? config.apiKeys,
    bodyLimit: config.bodyLimit,
    corpusMaxBytes: config.corpusMaxBytes,
    sseHeartbeatMs: config.sseHeartbeatMs,
    allowedHosts: config.allowedHosts,
    allowedOrigins: config.allowedOrigins,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    config,
    service,
    app,
    url,
    async close() {
      await app.close();
      await service.close();
    },
  };
}

/** BullMQ's view of the queue (what a worker would take next). */
export async function queueCounts(prefix: string): Promise<Record<string, number>> {
  const [{ Queue }, { QUEUE_NAME, bullConnection }] = await Promise.all([import('bullmq'), import('../../src/jobs/redis.js')]);
  const q = new Queue(QUEUE_NAME, { connection: bullConnection(REDIS_URL), prefix });
  try {
    return await q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'paused');
  } finally {
    await q.close();
  }
}

/** Every event of a job over SSE until its final state (or `until` says stop). */
export async function streamEvents(
  url: string,
  id: string,
  o: { fromSeq?: number; apiKey?: string; until?: (ev: JobEvent) => boolean; timeoutMs?: number } = {},
): Promise<JobEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), o.timeoutMs ?? 60_000);
  const out: JobEvent[] = [];
  try {
    for await (const ev of followJob(id, { baseUrl: url, apiKey: o.apiKey, fromSeq: o.fromSeq, signal: ac.signal, retries: 0 })) {
      out.push(ev);
      if (o.until?.(ev)) break;
    }
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`timed out streaming job ${id}; got ${out.length} events: ${JSON.stringify(out.slice(-3))}`);
    throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The epochs of a history, checked to be exactly 1..n with none repeated or missing. */
export function epochNumbers(events: JobEvent[]): number[] {
  return events.filter((e) => e.type === 'epoch').map((e) => (e as { epoch: number }).epoch);
}

export function assertSeqs(events: JobEvent[], from = 1): void {
  events.forEach((e, i) => {
    if (e.seq !== from + i) throw new Error(`seq ${e.seq} at position ${i}, expected ${from + i}: ${JSON.stringify(events.map((x) => x.seq))}`);
  });
}
