// A TEST DOUBLE of the JobService contract (src/jobs/types.ts), in memory, driven by the test:
// it lets the gRPC tests cover every state, error and stream edge without Redis or training.
// It validates with the real parseJobSpec and keeps the contract's semantics (idempotency, newest
// first, watch = history after fromSeq then live, ends after the terminal event, honours abort).
// The end-to-end test (test/api/grpc/e2e.test.ts) runs the same API against the real Redis-backed service.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, ResourceExhaustedError, UnavailableError } from '../../src/jobs/errors.js';
import { describeUpload } from '../../src/jobs/models.js';
import { experimentTable, planExperiment, type ExperimentRecord } from '../../src/jobs/experiments.js';
import {
  TERMINAL_STATES,
  type ExperimentView,
  type GenerateRequest,
  type JobEvent,
  type JobService,
  type JobState,
  type JobView,
  type ModelView,
} from '../../src/jobs/types.js';
import type { ExportFormat, ModelExport } from '../../src/train/export.js';
import { ModelFileError } from '../../src/train/import.js';
import { parseJobSpec, SpecError, type JobSpec } from '../../src/train/spec.js';
import type { EpochEvent } from '../../src/train/trainer.js';

/** The id of the n-th job: shaped like the real ones (JobId), so the gRPC layer accepts it. */
export const memId = (n: number): string => `j${n.toString(36).padStart(9, '0')}0000000000`;
/** The id of the n-th experiment, shaped like the real ones (EXPERIMENT_ID_RE). */
export const memExperimentId = (n: number): string => `x${n.toString(36).padStart(9, '0')}0000000000`;

/** A JobEvent before the service numbers and stamps it (Omit distributed over the union). */
type EventBody = JobEvent extends infer E ? (E extends JobEvent ? Omit<E, 'seq' | 'time'> : never) : never;

interface Rec {
  view: JobView;
  events: JobEvent[];
  key?: string;
}

export class InMemoryJobService implements JobService {
  private readonly jobs = new Map<string, Rec>();
  private readonly order: string[] = [];
  private readonly experiments = new Map<string, ExperimentRecord>();
  private readonly bus = new EventEmitter();
  /** Uploaded models by id, in upload order (no owners: the double has one caller). */
  private readonly models = new Map<string, ModelView>();
  private next = 1;
  /** Simulates Redis being down: every call throws UnavailableError. */
  down = false;
  /** submit() refuses with ResourceExhaustedError beyond this many queued jobs. */
  maxQueued = Infinity;
  /** When set, the next call throws it (a server fault the API must not leak). */
  failNext?: Error;
  /** Open watch()/generate() iterators, to prove the API passes the client's cancellation on. */
  openStreams = 0;
  readonly clientIds: (string | undefined)[] = [];

  constructor() {
    this.bus.setMaxListeners(0);
  }

  private check(): void {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    if (this.down) throw new UnavailableError('redis is unreachable');
  }

  private rec(id: string): Rec {
    const r = this.jobs.get(id);
    if (!r) throw new NotFoundError(`no job ${id}`);
    return r;
  }

  private emit(r: Rec, ev: EventBody): void {
    const full = { ...ev, seq: r.events.length + 1, time: new Date().toISOString() } as JobEvent;
    r.events.push(full);
    r.view.lastSeq = full.seq;
    this.bus.emit(r.view.id);
  }

  async submit(spec: unknown, opts?: { clientId?: string; idempotencyScope?: string }) {
    this.check();
    const s = parseJobSpec(spec);
    this.clientIds.push(opts?.clientId);
    const key = s.idempotencyKey ? `${opts?.idempotencyScope ?? ''}\n${s.idempotencyKey}` : undefined;
    if (key) {
      const same = [...this.jobs.values()].find((r) => r.key === key);
      if (same && JSON.stringify(same.view.spec) !== JSON.stringify(s)) {
        throw new AlreadyExistsError(`idempotencyKey already names job ${same.view.id}, submitted with another spec`, 'idempotencyKey', same.view.id);
      }
      if (same) return { job: structuredClone(same.view), created: false };
    }
    const queued = [...this.jobs.values()].filter((r) => r.view.state === 'queued').length;
    if (queued >= this.maxQueued) throw new ResourceExhaustedError(`at most ${this.maxQueued} queued jobs`);
    return { job: structuredClone(this.add(s, key)), created: true };
  }

  /** A new queued job of a parsed spec. */
  private add(s: JobSpec, key?: string, experiment?: string): JobView {
    const id = memId(this.next++);
    const view: JobView = {
      id,
      name: s.name,
      state: 'queued',
      spec: s,
      createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, this.next)).toISOString(),
      progress: { epoch: 0, epochs: s.train.epochs },
      lastEpochs: [],
      experiment,
    };
    if (view.name === undefined) delete view.name;
    if (view.experiment === undefined) delete view.experiment;
    const r: Rec = { view, events: [], key };
    this.jobs.set(id, r);
    this.order.push(id);
    this.emit(r, { type: 'state', state: 'queued' });
    return view;
  }

  /** The real plan (every point validated before any job is made), its jobs queued here; no caps, no owners. */
  async createExperiment(input: unknown, opts?: { clientId?: string }): Promise<ExperimentView> {
    this.check();
    const plan = planExperiment(input);
    this.clientIds.push(opts?.clientId);
    const id = memExperimentId(this.experiments.size + 1);
    const jobs = plan.points.map((p) => ({ id: this.add(p.spec, undefined, id).id, values: p.values }));
    const rec: ExperimentRecord = { id, name: plan.name, createdAt: new Date(Date.UTC(2025, 0, 2)).toISOString(), varied: plan.varied, jobs };
    this.experiments.set(id, rec);
    return this.table(rec);
  }

  async getExperiment(id: string): Promise<ExperimentView> {
    this.check();
    const rec = this.experiments.get(id);
    if (!rec) throw new NotFoundError(`experiment ${id} not found`);
    return this.table(rec);
  }

  private table(rec: ExperimentRecord): ExperimentView {
    const recs = rec.jobs.map((j) => this.jobs.get(j.id));
    const epochs = recs.map((r) => (r?.events ?? []).flatMap((e) => (e.type === 'epoch' ? [e] : [])));
    return experimentTable(
      rec,
      recs.map((r) => (r ? structuredClone(r.view) : null)),
      epochs.map((es) => (es.length ? Math.min(...es.map((e) => e.perplexity)) : undefined)),
      epochs.map((es) => es.at(-1)?.elapsedMs),
    );
  }

  async get(id: string) {
    this.check();
    return structuredClone(this.rec(id).view);
  }

  async list(q: { state?: JobState; experiment?: string; limit: number; cursor?: string }) {
    this.check();
    const ids = [...this.order]
      .reverse()
      .filter((id) => (!q.state || this.jobs.get(id)!.view.state === q.state) && (!q.experiment || this.jobs.get(id)!.view.experiment === q.experiment));
    const start = q.cursor ? Number(q.cursor) : 0;
    const page = ids.slice(start, start + q.limit);
    const more = start + q.limit < ids.length;
    return { jobs: page.map((id) => structuredClone(this.jobs.get(id)!.view)), nextCursor: more ? String(start + q.limit) : undefined };
  }

  async cancel(id: string) {
    this.check();
    const r = this.rec(id);
    if (TERMINAL_STATES.includes(r.view.state)) throw new FailedPreconditionError(`job ${id} is already ${r.view.state}`);
    this.finish(id, 'cancelled');
    return structuredClone(r.view);
  }

  async *watch(id: string, fromSeq: number, signal?: AbortSignal): AsyncIterable<JobEvent> {
    this.check();
    const r = this.rec(id);
    this.openStreams++;
    try {
      let i = fromSeq;
      for (;;) {
        while (i < r.events.length) {
          const ev = r.events[i++];
          yield ev;
          if (ev.type === 'state' && TERMINAL_STATES.includes(ev.state)) return;
        }
        // Asked from past the terminal event: nothing more will come.
        if (TERMINAL_STATES.includes(r.view.state)) return;
        if (signal?.aborted) return;
        await new Promise<void>((resolve) => {
          const done = () => {
            this.bus.off(id, done);
            signal?.removeEventListener('abort', done);
            resolve();
          };
          this.bus.on(id, done);
          signal?.addEventListener('abort', done, { once: true });
        });
        if (signal?.aborted) return;
      }
    } finally {
      this.openStreams--;
    }
  }

  async epochs(id: string, after: number): Promise<EpochEvent[]> {
    this.check();
    return this.rec(id).view.lastEpochs.filter((e) => e.epoch > after);
  }

  /** Deterministic "model": characters cycle through the prefix's letters, shifted by the seed. */
  async *generate(id: string, req: GenerateRequest, signal?: AbortSignal): AsyncIterable<string> {
    this.check();
    const r = this.rec(id);
    if (r.view.checkpointEpoch === undefined) throw new FailedPreconditionError(`job ${id} has no checkpoint yet`);
    const letters = req.prefix.replace(/[^a-z]/gi, '').toLowerCase();
    this.openStreams++;
    try {
      for (let k = 0; k < req.numChars; k++) {
        if (signal?.aborted) return;
        await new Promise((res) => setTimeout(res, 1)); // characters arrive over time, as from a model
        yield letters[(k + (req.seed ?? 0)) % letters.length];
      }
    } finally {
      this.openStreams--;
    }
  }

  /** A deterministic "model file": 150,000 bytes (several 64 KiB chunks) derived from the epoch; tfjs as two files. */
  async exportModel(id: string, format: ExportFormat): Promise<ModelExport> {
    this.check();
    const r = this.rec(id);
    const epoch = r.view.checkpointEpoch;
    if (epoch === undefined) throw new FailedPreconditionError(`job ${id} has no checkpoint yet (the first is written after epoch 1)`);
    const bytes = (n: number, salt: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + epoch + salt) & 0xff));
    if (format === 'tfjs')
      return {
        format,
        epoch,
        files: [
          { name: 'model.json', data: Buffer.from('{"format":"layers-model"}') },
          { name: 'weights.bin', data: bytes(70_000, 1) },
        ],
      };
    return { format, epoch, files: [{ name: `model.${format === 'checkpoint' ? 'ckpt' : format}`, data: bytes(150_000, 0) }] };
  }

  /** Validated with the real describeUpload; the id from the bytes' SHA-256, as the real store's. */
  async uploadModel(data: Buffer): Promise<{ model: ModelView; created: boolean }> {
    this.check();
    let info: ReturnType<typeof describeUpload>;
    try {
      info = describeUpload(data);
    } catch (e) {
      if (e instanceof ModelFileError) throw new SpecError([{ field: 'body', message: `model file: ${e.message}` }]);
      throw e;
    }
    const sha256 = createHash('sha256').update(data).digest('hex');
    const id = `m${sha256.slice(0, 19)}`;
    const had = this.models.get(id);
    if (had) return { model: structuredClone(had), created: false };
    const { kind, numHiddens, numLayers } = info.config;
    const model: ModelView = {
      id,
      kind,
      numHiddens,
      numLayers,
      vocabSize: info.vocab.length,
      vocab: info.vocab,
      bytes: data.length,
      sha256,
      uploadedAt: new Date().toISOString(),
    };
    if (info.epoch !== undefined) model.epoch = info.epoch;
    this.models.set(id, model);
    return { model: structuredClone(model), created: true };
  }

  async getModel(id: string): Promise<ModelView> {
    this.check();
    const m = this.models.get(id);
    if (!m) throw new NotFoundError(`model ${id} not found`);
    return structuredClone(m);
  }

  async listModels(limit: number): Promise<ModelView[]> {
    this.check();
    return [...this.models.values()]
      .reverse()
      .slice(0, limit)
      .map((m) => structuredClone(m));
  }

  async deleteModel(id: string): Promise<ModelView> {
    const m = await this.getModel(id);
    this.models.delete(id);
    return m;
  }

  async ready() {
    return !this.down;
  }

  async close() {}

  // ---- driving the double (what a worker would do) ----

  start(id: string): void {
    const r = this.rec(id);
    r.view.state = 'running';
    r.view.startedAt = new Date().toISOString();
    r.view.engine = 'native';
    r.view.backend = 'test';
    r.view.attempt = 1;
    this.emit(r, { type: 'state', state: 'running', attempt: 1, message: 'taken by worker w1' });
  }

  epoch(id: string, perplexity: number, withSamples = false): EpochEvent {
    const r = this.rec(id);
    const n = r.view.progress.epoch + 1;
    const ev: EpochEvent = { epoch: n, epochs: r.view.progress.epochs, perplexity, tokensPerSec: 1000 + n, elapsedMs: 10 * n };
    if (withSamples) ev.samples = r.view.spec.report.prefixes.map((p) => ({ prefix: p, text: `${p} the time` }));
    r.view.progress.epoch = n;
    r.view.perplexity = perplexity;
    r.view.tokensPerSec = ev.tokensPerSec;
    r.view.checkpointEpoch = n;
    r.view.lastEpochs = [...r.view.lastEpochs, ev].slice(-5);
    this.emit(r, { type: 'epoch', ...ev });
    return ev;
  }

  finish(id: string, state: 'succeeded' | 'failed' | 'cancelled', error?: string): void {
    const r = this.rec(id);
    r.view.state = state;
    r.view.finishedAt = new Date().toISOString();
    const summary = {
      finalPerplexity: r.view.perplexity ?? null,
      epochs: r.view.progress.epoch,
      totalMs: 10 * r.view.progress.epoch,
      engine: 'native',
      backend: 'test',
    };
    r.view.summary = summary;
    if (error) r.view.error = error;
    this.emit(r, { type: 'state', state, summary, ...(error ? { error } : {}) });
  }
}
