// /metrics (Prometheus text format): jobs by state, epochs trained, tokens/s of running jobs, HTTP
// request latency, and the process's default metrics. One registry per app (tests build several).
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ServiceStats } from '../../jobs/types.js';

export interface StatsSource {
  stats(): Promise<ServiceStats>;
}

export function createMetrics(source?: StatsSource) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // one Redis round of reads per scrape, shared by the collectors below
  let cached: { at: number; p: Promise<ServiceStats | null> } | undefined;
  const stats = () => {
    if (!source) return Promise.resolve(null);
    if (!cached || Date.now() - cached.at > 500) cached = { at: Date.now(), p: source.stats().catch(() => null) };
    return cached.p;
  };

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route (streaming responses are not included)',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  new Gauge({
    name: 'lstm_jobs',
    help: 'Jobs by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const s = await stats();
      if (!s) return;
      for (const [state, n] of Object.entries(s.jobsByState)) this.set({ state }, n);
    },
  });

  let seen = 0;
  new Counter({
    name: 'lstm_epochs_trained_total',
    help: 'Epochs trained by all workers (from the job store)',
    registers: [registry],
    async collect() {
      const s = await stats();
      if (!s) return;
      if (s.epochsTrained > seen) this.inc(s.epochsTrained - seen);
      seen = Math.max(seen, s.epochsTrained);
    },
  });

  new Gauge({
    name: 'lstm_job_tokens_per_second',
    help: 'Training speed of each running job (its latest epoch)',
    labelNames: ['job_id', 'engine'],
    registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      if (!s) return;
      for (const r of s.running) this.set({ job_id: r.id, engine: r.engine ?? '' }, r.tokensPerSec);
    },
  });

  new Gauge({
    name: 'lstm_training_tokens_per_second',
    help: 'Sum of the training speed of all running jobs',
    registers: [registry],
    async collect() {
      const s = await stats();
      this.set(s ? s.running.reduce((a, r) => a + r.tokensPerSec, 0) : 0);
    },
  });

  new Gauge({
    name: 'lstm_workers',
    help: 'Workers with a live heartbeat, by engine and backend',
    labelNames: ['engine', 'backend'],
    registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      if (!s?.workers) return;
      const n = new Map<string, number>();
      for (const w of s.workers) n.set(`${w.engine}\n${w.backend}`, (n.get(`${w.engine}\n${w.backend}`) ?? 0) + 1);
      for (const [k, v] of n) {
        const [engine, backend] = k.split('\n');
        this.set({ engine, backend }, v);
      }
    },
  });

  new Gauge({
    name: 'lstm_worker_heartbeat_age_seconds',
    help: 'Seconds since each live worker last wrote its heartbeat',
    labelNames: ['worker', 'engine', 'backend'],
    registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      for (const w of s?.workers ?? []) this.set({ worker: w.id, engine: w.engine, backend: w.backend }, w.heartbeatAgeSeconds);
    },
  });

  new Gauge({
    name: 'lstm_worker_jobs',
    help: 'Jobs each live worker trains now',
    labelNames: ['worker'],
    registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      for (const w of s?.workers ?? []) this.set({ worker: w.id }, w.jobs.length);
    },
  });

  return { registry, httpDuration };
}

export function registerMetrics(app: FastifyInstance, source?: StatsSource): void {
  const { registry, httpDuration } = createMetrics(source);
  app.addHook('onResponse', async (req, reply) => {
    httpDuration.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (req, reply) => {
    let body = await registry.metrics();
    // owners: per-job series name job ids, so only admin keys (and everyone with keys off) see them;
    // the service-wide figures are for every key
    if (req.caller && !req.caller.admin) body = body.replace(/^lstm_job_tokens_per_second\{.*\n/gm, '');
    return reply.type(registry.contentType).send(body);
  });
}
